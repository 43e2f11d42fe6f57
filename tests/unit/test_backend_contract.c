/*
 * test_backend_contract.c — the contract every backend keeps (backend.h),
 * as a table of cases run against a list of backends.
 *
 * Backends: "local" always (a temporary directory); "s3" when S3_ENDPOINT is
 * set (S3_BUCKET names the bucket, default "lamfs-test"; AWS_* credentials
 * from the environment).  An S3 entry in a build without S3 is skipped.
 * Each case uses object names under a fresh random prefix, so cases do not
 * see each other's objects even in a shared bucket.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend.h"
#include "contract_backend.h"
#include "uid.h"

#define MIB (1024 * 1024)

/* One backend under test. */
struct fixture {
	const char *name;
	/* Open the backend; 0, or -1 to skip this backend (with a message). */
	int (*open)(struct fixture *fx);
	void (*close)(struct fixture *fx);
	int consumes_same_fs;      /* put links a staging file on its fs in */
	struct backend *b;
	char tmp[256];             /* scratch directory of the run */
	char staging[300];         /* staging directory (on the storage fs if local) */
	char prefix[64];           /* ".lamindb/<random>-" of the current case */
};

/* One case: a test of the contract run against fx->b. */
struct contract_case {
	const char *name;
	void (*run)(struct fixture *fx);
};

/* ---- helpers ---- */

static void obj_name(struct fixture *fx, const char *tail, char *out, size_t len)
{
	snprintf(out, len, "%s%s", fx->prefix, tail);
}

static void rm_tree(const char *path)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
}

/* ---- backends ---- */

static int local_open(struct fixture *fx)
{
	char root[300];
	char *err = NULL;

	snprintf(fx->tmp, sizeof(fx->tmp), "/tmp/lamfs-contract.XXXXXX");
	assert_non_null(mkdtemp(fx->tmp));
	snprintf(root, sizeof(root), "%s/storage", fx->tmp);
	snprintf(fx->staging, sizeof(fx->staging), "%s/staging", fx->tmp);
	assert_int_equal(mkdir(root, 0700), 0);
	assert_int_equal(mkdir(fx->staging, 0700), 0);
	assert_int_equal(backend_open(root, NULL, &fx->b, &err), 0);
	assert_null(err);
	assert_string_equal(backend_name(fx->b), "local");
	return 0;
}

static void local_close(struct fixture *fx)
{
	backend_free(fx->b);
	fx->b = NULL;
	rm_tree(fx->tmp);
}

static int s3_open(struct fixture *fx)
{
	const char *endpoint = getenv("S3_ENDPOINT");
	const char *bucket = getenv("S3_BUCKET");
	struct backend_opts opts = { .s3_endpoint = endpoint };
	char url[300];
	char *err = NULL;
	int rc;

	if (!endpoint || !*endpoint) {
		printf("contract: S3_ENDPOINT not set, S3 backend not tested\n");
		return -1;
	}
	snprintf(url, sizeof(url), "s3://%s/contract", bucket ? bucket : "lamfs-test");
	snprintf(fx->tmp, sizeof(fx->tmp), "/tmp/lamfs-contract-s3.XXXXXX");
	assert_non_null(mkdtemp(fx->tmp));
	snprintf(fx->staging, sizeof(fx->staging), "%s", fx->tmp);
	rc = backend_open(url, &opts, &fx->b, &err);
	if (rc == -EPROTONOSUPPORT) {
		printf("contract: %s, S3 backend not tested\n", err ? err : "no S3");
		free(err);
		rmdir(fx->tmp);
		return -1;
	}
	if (rc != 0)
		fail_msg("backend_open(%s) = %d: %s", url, rc, err ? err : "");
	return 0;
}

static void s3_close(struct fixture *fx)
{
	backend_free(fx->b);
	fx->b = NULL;
	rm_tree(fx->tmp);
}

/* ---- cases ---- */

/* Byte-exact round trips at the sizes that matter: 0, 1, 3 MiB. */
static void case_put_read(struct fixture *fx)
{
	static const size_t sizes[] = { 0, 1, 3 * MIB, 4097 };
	char obj[128];
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *buf = test_bytes(sizes[i], (uint32_t)i + 1);
		char tail[32];

		snprintf(tail, sizeof(tail), "size%zu.bin", sizes[i]);
		obj_name(fx, tail, obj, sizeof(obj));
		test_put_check(fx->b, fx->staging, obj, buf, sizes[i]);
		assert_int_equal(backend_remove(fx->b, obj), 0);
		free(buf);
	}
}

/* A second put under the same name replaces the object entirely. */
static void case_replace(struct fixture *fx)
{
	unsigned char *a = test_bytes(100000, 1);
	unsigned char *c = test_bytes(777, 2);
	char obj[128];

	struct test_staging st;
	unsigned char *back;
	size_t got;
	int consumed = 7;

	/* A put never replaces an object: the same bytes again are "stored
	 * already" (a resumed save), other bytes -EEXIST (a restored metadata
	 * backup must not clobber what was saved after it). */
	obj_name(fx, "replace.csv", obj, sizeof(obj));
	test_put_check(fx->b, fx->staging, obj, a, 100000);
	test_put_check(fx->b, fx->staging, obj, a, 100000);
	test_staging_make(&st, fx->staging, "other", c, 777, 0);
	assert_int_equal(backend_put(fx->b, obj, &st.src, &consumed), -EEXIST);
	assert_int_equal(consumed, 0);
	test_staging_drop(&st);
	back = test_read_all(fx->b, obj, 4096, &got);
	assert_int_equal(got, 100000);
	assert_memory_equal(back, a, 100000);
	free(back);
	test_staging_drop(&st);
	assert_int_equal(backend_remove(fx->b, obj), 0);
	free(a);
	free(c);
}

/* Missing objects say -ENOENT everywhere; remove makes an object missing. */
static void case_missing_and_remove(struct fixture *fx)
{
	struct backend_reader *r = (struct backend_reader *)1;
	unsigned char *buf = test_bytes(10, 3);
	uint64_t size = 5;
	char obj[128];

	obj_name(fx, "gone.txt", obj, sizeof(obj));
	assert_int_equal(backend_stat(fx->b, obj, &size), -ENOENT);
	assert_int_equal(backend_reader_open(fx->b, obj, &r, &size), -ENOENT);
	assert_null(r);
	assert_int_equal(backend_remove(fx->b, obj), -ENOENT);
	test_put_check(fx->b, fx->staging, obj, buf, 10);
	assert_int_equal(backend_remove(fx->b, obj), 0);
	assert_int_equal(backend_stat(fx->b, obj, &size), -ENOENT);
	assert_int_equal(backend_reader_open(fx->b, obj, &r, &size), -ENOENT);
	assert_int_equal(backend_remove(fx->b, obj), -ENOENT);
	free(buf);
}

/* Reads are short only at the end of the object. */
static void case_short_read(struct fixture *fx)
{
	unsigned char *buf = test_bytes(1000, 4);
	unsigned char back[700];
	struct backend_reader *r = NULL;
	uint64_t size = 0;
	size_t got = 0;
	char obj[128];

	obj_name(fx, "short.bin", obj, sizeof(obj));
	test_put_check(fx->b, fx->staging, obj, buf, 1000);
	assert_int_equal(backend_reader_open(fx->b, obj, &r, &size), 0);
	assert_int_equal(size, 1000);
	assert_int_equal(backend_reader_pread(r, back, 600, 0, &got), 0);
	assert_int_equal(got, 600);
	assert_memory_equal(back, buf, 600);
	assert_int_equal(backend_reader_pread(r, back, 700, 300, &got), 0);
	assert_int_equal(got, 700);
	assert_memory_equal(back, buf + 300, 700);
	assert_int_equal(backend_reader_pread(r, back, 600, 600, &got), 0);
	assert_int_equal(got, 400);
	assert_memory_equal(back, buf + 600, 400);
	assert_int_equal(backend_reader_pread(r, back, 10, 1000, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(backend_reader_pread(r, back, 10, 5000, &got), 0);
	assert_int_equal(got, 0);
	backend_reader_close(r);
	assert_int_equal(backend_remove(fx->b, obj), 0);
	free(buf);
}

/* list finds exactly the objects under a prefix, with their sizes. */
static void case_list(struct fixture *fx)
{
	static struct test_listing l;
	unsigned char *buf = test_bytes(3000, 5);
	char objs[3][128];
	char other[128];
	int i;

	for (i = 0; i < 3; i++) {
		char tail[16];

		snprintf(tail, sizeof(tail), "l%d.csv", i);
		obj_name(fx, tail, objs[i], sizeof(objs[i]));
		test_put_check(fx->b, fx->staging, objs[i], buf, (size_t)(1000 * i));
	}
	snprintf(other, sizeof(other), ".lamindb/zz%s", fx->prefix + strlen(".lamindb/"));
	test_put_check(fx->b, fx->staging, other, buf, 1);

	memset(&l, 0, sizeof(l));
	assert_int_equal(backend_list(fx->b, fx->prefix, test_list_cb, &l), 0);
	assert_int_equal(l.n, 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(test_listed(&l, objs[i]), 1000 * i);

	memset(&l, 0, sizeof(l));
	assert_int_equal(backend_list(fx->b, ".lamindb/", test_list_cb, &l), 0);
	assert_true(l.n >= 4);
	assert_int_equal(test_listed(&l, other), 1);
	assert_int_equal(test_listed(&l, objs[2]), 2000);

	/* a non-zero callback stops the walk */
	memset(&l, 0, sizeof(l));
	l.stop_after = 1;
	backend_list(fx->b, fx->prefix, test_list_cb, &l);
	assert_int_equal(l.n, 1);

	/* a prefix with no objects */
	memset(&l, 0, sizeof(l));
	assert_int_equal(backend_list(fx->b, ".lamindb/nothing-here-", test_list_cb, &l), 0);
	assert_int_equal(l.n, 0);

	for (i = 0; i < 3; i++)
		assert_int_equal(backend_remove(fx->b, objs[i]), 0);
	assert_int_equal(backend_remove(fx->b, other), 0);
	memset(&l, 0, sizeof(l));
	assert_int_equal(backend_list(fx->b, fx->prefix, test_list_cb, &l), 0);
	assert_int_equal(l.n, 0);
	free(buf);
}

/* may_consume = 0: the staging file stays; = 1: a backend that renames it
 * away says so, and then the path is gone. */
static void case_consume_vs_copy(struct fixture *fx)
{
	unsigned char *buf = test_bytes(2 * MIB + 5, 6);
	struct test_staging st;
	unsigned char *back;
	char obj[128];
	size_t got;
	int consumed;

	obj_name(fx, "consume.fastq.gz", obj, sizeof(obj));
	test_staging_make(&st, fx->staging, "keep", buf, 2 * MIB + 5, 0);
	assert_int_equal(test_put(fx->b, obj, &st), 0);
	assert_true(test_exists(st.path));
	test_staging_drop(&st);

	assert_int_equal(backend_remove(fx->b, obj), 0);
	test_staging_make(&st, fx->staging, "consume", buf + 1, 2 * MIB + 4, 1);
	consumed = test_put(fx->b, obj, &st);
	/* Linked in or copied, the staging file stays the caller's either way. */
	assert_true(test_exists(st.path));
	if (fx->consumes_same_fs)
		assert_int_equal(consumed, 1);
	test_staging_drop(&st);

	back = test_read_all(fx->b, obj, MIB, &got);
	assert_int_equal(got, 2 * MIB + 4);
	assert_memory_equal(back, buf + 1, got);
	assert_int_equal(backend_remove(fx->b, obj), 0);
	free(back);
	free(buf);
}

/* Object names that could escape the root are refused before any I/O. */
static void case_bad_names(struct fixture *fx)
{
	static const char *const bad[] = { "", "/abs", "../x", ".lamindb/../x", "a//b",
					   ".lamindb/./x", "x/" };
	unsigned char *buf = test_bytes(4, 7);
	struct test_staging st;
	uint64_t size;
	int consumed = 5;
	size_t i;

	test_staging_make(&st, fx->staging, "bad", buf, 4, 1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(backend_put(fx->b, bad[i], &st.src, &consumed), -EINVAL);
		assert_int_equal(consumed, 0);
		assert_int_equal(backend_stat(fx->b, bad[i], &size), -EINVAL);
		assert_int_equal(backend_remove(fx->b, bad[i]), -EINVAL);
	}
	assert_true(test_exists(st.path));
	test_staging_drop(&st);
	free(buf);
}

static void case_space(struct fixture *fx)
{
	uint64_t total = 0, avail = 0;
	int rc = backend_space(fx->b, &total, &avail);

	assert_true(rc == 0 || rc == -ENOTSUP);
	if (rc == 0)
		assert_true(total > 0 && avail <= total);
}

#ifdef LAMFS_FAULT_INJECTION
/* An armed "backend.put" returns its errno and leaves no object, no
 * temporary, and the staging file untouched. */
static void case_fault_put(struct fixture *fx)
{
	static const char *const arms[] = { "backend.put=ENOSPC", "backend.put=EACCES",
					    "backend.put=EIO" };
	static const int want[] = { -ENOSPC, -EACCES, -EIO };
	static struct test_listing before, after;
	unsigned char *buf = test_bytes(MIB, 8);
	struct test_staging st;
	uint64_t size;
	char obj[128];
	size_t i;

	obj_name(fx, "fault.bin", obj, sizeof(obj));
	memset(&before, 0, sizeof(before));
	assert_int_equal(backend_list(fx->b, ".lamindb/", test_list_cb, &before), 0);
	for (i = 0; i < 3; i++) {
		int consumed = 7;

		test_staging_make(&st, fx->staging, "fault", buf, MIB, (int)(i & 1));
		setenv("LAMFS_FAULT", arms[i], 1);
		assert_int_equal(backend_put(fx->b, obj, &st.src, &consumed), want[i]);
		unsetenv("LAMFS_FAULT");
		assert_int_equal(consumed, 0);
		assert_true(test_exists(st.path));
		assert_int_equal(backend_stat(fx->b, obj, &size), -ENOENT);
		test_staging_drop(&st);
	}
	memset(&after, 0, sizeof(after));
	assert_int_equal(backend_list(fx->b, ".lamindb/", test_list_cb, &after), 0);
	assert_int_equal(after.n, before.n);
	assert_int_equal(test_listed_temps(&after), 0);
	free(buf);
}

/* "backend.read" fails opens and reads; "backend.remove" keeps the object. */
static void case_fault_read_remove(struct fixture *fx)
{
	unsigned char *buf = test_bytes(100, 9);
	struct backend_reader *r = NULL;
	unsigned char back[100];
	uint64_t size;
	size_t got = 3;
	char obj[128];

	obj_name(fx, "faultrr.bin", obj, sizeof(obj));
	test_put_check(fx->b, fx->staging, obj, buf, 100);
	assert_int_equal(backend_reader_open(fx->b, obj, &r, &size), 0);
	setenv("LAMFS_FAULT", "backend.read=ETIMEDOUT,backend.remove=EPERM", 1);
	assert_int_equal(backend_reader_pread(r, back, 100, 0, &got), -ETIMEDOUT);
	assert_int_equal(got, 0);
	backend_reader_close(r);
	r = NULL;
	assert_int_equal(backend_reader_open(fx->b, obj, &r, &size), -ETIMEDOUT);
	assert_null(r);
	assert_int_equal(backend_remove(fx->b, obj), -EPERM);
	unsetenv("LAMFS_FAULT");
	assert_int_equal(backend_stat(fx->b, obj, &size), 0);
	assert_int_equal(size, 100);
	assert_int_equal(backend_remove(fx->b, obj), 0);
	free(buf);
}
#else
static void case_fault_put(struct fixture *fx)
{
	(void)fx;
	skip();   /* needs -DLAMFS_FAULT_INJECTION=ON */
}

static void case_fault_read_remove(struct fixture *fx)
{
	(void)fx;
	skip();
}
#endif

static const struct contract_case cases[] = {
	{ "put_read", case_put_read },
	{ "replace", case_replace },
	{ "missing_and_remove", case_missing_and_remove },
	{ "short_read", case_short_read },
	{ "list", case_list },
	{ "consume_vs_copy", case_consume_vs_copy },
	{ "bad_names", case_bad_names },
	{ "space", case_space },
	{ "fault_put", case_fault_put },
	{ "fault_read_remove", case_fault_read_remove },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

static struct fixture fixtures[] = {
	{ .name = "local", .open = local_open, .close = local_close, .consumes_same_fs = 1 },
	{ .name = "s3", .open = s3_open, .close = s3_close },
};

/* ---- running the table ---- */

/* cmocka state of one test: which case against which backend. */
struct run {
	struct fixture *fx;
	const struct contract_case *c;
};

static void run_case(void **state)
{
	struct run *r = *state;
	char uid[LAMFS_UID_LEN + 1];

	assert_int_equal(uid_new(uid), 0);
	snprintf(r->fx->prefix, sizeof(r->fx->prefix), ".lamindb/%.*s-", LAMFS_STEM_LEN, uid);
	r->c->run(r->fx);
}

static int run_backend(struct fixture *fx)
{
	struct CMUnitTest tests[NCASES];
	struct run runs[NCASES];
	char group[64];
	size_t i;
	int failed;

	if (fx->open(fx) < 0)
		return 0;
	for (i = 0; i < NCASES; i++) {
		runs[i].fx = fx;
		runs[i].c = &cases[i];
		memset(&tests[i], 0, sizeof(tests[i]));
		tests[i].name = cases[i].name;
		tests[i].test_func = run_case;
		tests[i].initial_state = &runs[i];
	}
	snprintf(group, sizeof(group), "backend contract: %s", fx->name);
	failed = _cmocka_run_group_tests(group, tests, NCASES, NULL, NULL);
	fx->close(fx);
	return failed;
}

int main(void)
{
	size_t i;
	int failed = 0;

	unsetenv("LAMFS_FAULT");
	unsetenv("LAMFS_FAULT_FILE");
	for (i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++)
		failed += run_backend(&fixtures[i]);
	return failed;
}
