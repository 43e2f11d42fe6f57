/*
 * test_backend_local.c — what only the local backend promises: opening a
 * root, temporaries named ".lamindb/.tmp.*" and their cleanup, a crash in
 * the middle of a put, a read-only or full storage root (on real mounts in a
 * private mount namespace), staging on another file system, puts and
 * removes from many threads at once (they share the folder's fsync).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend.h"
#include "contract_backend.h"

#define MIB (1024 * 1024)
#define EXIT_SKIP 77

static char tmp[] = "/tmp/lamfs-local.XXXXXX";
static char root[128];      /* tmp/storage */
static char staging[128];   /* tmp/staging, same fs */
static char lamindb[160];   /* root/.lamindb */

static int setup(void **state)
{
	(void)state;
	unsetenv("LAMFS_FAULT");
	unsetenv("LAMFS_FAULT_FILE");
	if (!mkdtemp(tmp))
		return -1;
	snprintf(root, sizeof(root), "%s/storage", tmp);
	snprintf(staging, sizeof(staging), "%s/staging", tmp);
	snprintf(lamindb, sizeof(lamindb), "%s/.lamindb", root);
	return mkdir(root, 0755) || mkdir(staging, 0700);
}

static int teardown(void **state)
{
	char cmd[200];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	return system(cmd);
}

static struct backend *open_root(void)
{
	struct backend *b = NULL;
	char *err = NULL;

	assert_int_equal(backend_local_open(root, &b, &err), 0);
	assert_null(err);
	return b;
}

/* Names in root/.lamindb that start with ".tmp.". */
static unsigned count_temps(void)
{
	DIR *d = opendir(lamindb);
	struct dirent *e;
	unsigned n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += strncmp(e->d_name, ".tmp.", 5) == 0;
	closedir(d);
	return n;
}

static void test_open(void **state)
{
	struct backend *b = NULL;
	struct stat st;
	char path[300];
	char *err = NULL;
	int fd;

	(void)state;
	/* the storage folder is created, private */
	b = open_root();
	assert_int_equal(stat(lamindb, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_string_equal(backend_name(b), "local");
	assert_string_equal(b->url, root);
	backend_free(b);
	/* and found again */
	b = open_root();
	backend_free(b);

	snprintf(path, sizeof(path), "%s/missing", tmp);
	assert_int_equal(backend_local_open(path, &b, &err), -ENOENT);
	assert_null(b);
	assert_non_null(err);
	assert_non_null(strstr(err, "does not exist"));
	assert_non_null(strstr(err, path));
	free(err);
	err = NULL;

	snprintf(path, sizeof(path), "%s/afile", tmp);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(backend_open(path, NULL, &b, &err), -ENOTDIR);
	assert_non_null(err);
	free(err);
	err = NULL;
	unlink(path);
}

static void test_open_urls(void **state)
{
	struct backend *b = NULL;
	char url[300];
	char *err = NULL;

	(void)state;
	snprintf(url, sizeof(url), "file://%s", root);
	assert_int_equal(backend_open(url, NULL, &b, &err), 0);
	assert_string_equal(backend_name(b), "local");
	assert_string_equal(b->url, url);    /* as configured */
	backend_free(b);
	b = NULL;

	assert_int_equal(backend_open("file://host/x", NULL, &b, &err), -EINVAL);
	assert_non_null(err);
	free(err);
	err = NULL;
	assert_int_equal(backend_open("relative/dir", NULL, &b, &err), -EINVAL);
	assert_non_null(err);
	assert_non_null(strstr(err, "relative/dir"));
	free(err);
	err = NULL;
	assert_int_equal(backend_open("gs://bucket", NULL, &b, &err), -EINVAL);
	free(err);
	err = NULL;
	assert_int_equal(backend_open("", NULL, &b, NULL), -EINVAL);
	assert_null(b);
#ifndef LAMFS_WITH_S3
	assert_int_equal(backend_open("s3://bucket/prefix", NULL, &b, &err), -EPROTONOSUPPORT);
	assert_non_null(strstr(err, "this build has no S3 support"));
	free(err);
#endif
}

/* A put over an existing object with other bytes fails with EEXIST; the
 * object, and a reader of it, keep the old bytes whole. */
static void test_replace_under_reader(void **state)
{
	unsigned char *a = test_bytes(MIB, 1);
	unsigned char *c = test_bytes(MIB / 2, 2);
	unsigned char *back = malloc(MIB);
	struct backend *b = open_root();
	struct backend_reader *r = NULL;
	uint64_t size = 0;
	size_t got = 0;

	(void)state;
	struct test_staging sc;
	int consumed = 0;

	test_put_check(b, staging, ".lamindb/replaced.bin", a, MIB);
	assert_int_equal(backend_reader_open(b, ".lamindb/replaced.bin", &r, &size), 0);
	test_staging_make(&sc, staging, "rep", c, MIB / 2, 1);
	assert_int_equal(backend_put(b, ".lamindb/replaced.bin", &sc.src, &consumed), -EEXIST);
	assert_int_equal(consumed, 0);
	test_staging_drop(&sc);
	assert_int_equal(count_temps(), 0);
	assert_int_equal(backend_reader_pread(r, back, MIB, 0, &got), 0);
	assert_int_equal(got, MIB);
	assert_memory_equal(back, a, MIB);
	backend_reader_close(r);
	assert_int_equal(backend_remove(b, ".lamindb/replaced.bin"), 0);
	backend_free(b);
	free(back);
	free(a);
	free(c);
}

/* Linking a staging file in: at a free name directly; again over itself (a
 * save resumed after its object was stored); over another object: refused
 * with EEXIST, the object kept.  Never a temporary left. */
static void test_consume_replace(void **state)
{
	unsigned char *a = test_bytes(5000, 11);
	unsigned char *c = test_bytes(7000, 12);
	struct backend *b = open_root();
	struct test_staging sa, sc;
	unsigned char *back;
	size_t got = 0;
	struct stat st1, st2;
	char path[300];

	(void)state;
	snprintf(path, sizeof(path), "%s/r.bin", lamindb);
	test_staging_make(&sa, staging, "ra", a, 5000, 1);
	assert_int_equal(test_put(b, ".lamindb/r.bin", &sa), 1);
	assert_int_equal(stat(path, &st1), 0);
	assert_int_equal(fstat(sa.src.fd, &st2), 0);
	assert_int_equal(st1.st_ino, st2.st_ino);   /* linked, not copied */
	assert_int_equal(test_put(b, ".lamindb/r.bin", &sa), 1);   /* over itself */
	test_staging_make(&sc, staging, "rc", c, 7000, 1);
	{
		int consumed = 5;

		assert_int_equal(backend_put(b, ".lamindb/r.bin", &sc.src, &consumed), -EEXIST);
		assert_int_equal(consumed, 0);
	}
	back = test_read_all(b, ".lamindb/r.bin", 4096, &got);
	assert_int_equal(got, 5000);
	assert_memory_equal(back, a, 5000);
	assert_int_equal(count_temps(), 0);
	assert_int_equal(backend_remove(b, ".lamindb/r.bin"), 0);
	test_staging_drop(&sa);
	test_staging_drop(&sc);
	backend_free(b);
	free(back);
	free(a);
	free(c);
}

/* The key goes with the object (user.lamfs.key), copied or linked in; the
 * reads of a copy are shown to on_read, in order, whole. */
struct seen {
	size_t bytes;
	unsigned char first;
};

static void on_read_cb(void *ctx, const void *buf, size_t len)
{
	struct seen *s = ctx;

	if (!s->bytes && len)
		s->first = *(const unsigned char *)buf;
	s->bytes += len;
}

static void test_key_and_on_read(void **state)
{
	unsigned char *a = test_bytes(300000, 21);
	struct backend *b = open_root();
	struct test_staging sa, sb;
	struct seen seen = { 0, 0 };
	char path[300], got[64];
	ssize_t n;
	int consumed = 5;

	(void)state;
	test_staging_make(&sa, staging, "ka", a, 300000, 0);
	sa.src.key = "runs/a b.csv";
	sa.src.on_read = on_read_cb;
	sa.src.on_read_ctx = &seen;
	assert_int_equal(backend_put(b, ".lamindb/k1.csv", &sa.src, &consumed), 0);
	assert_int_equal(consumed, 0);
	assert_int_equal(seen.bytes, 300000);
	assert_int_equal(seen.first, a[0]);
	snprintf(path, sizeof(path), "%s/k1.csv", lamindb);
	n = getxattr(path, "user.lamfs.key", got, sizeof(got) - 1);
	if (n < 0 && errno == ENOTSUP) {
		skip();
	}
	assert_int_equal(n, 12);
	got[n] = '\0';
	assert_string_equal(got, "runs/a b.csv");
	test_staging_make(&sb, staging, "kb", a, 1000, 1);
	sb.src.key = "x/y";
	assert_int_equal(test_put(b, ".lamindb/k2", &sb), 1);
	snprintf(path, sizeof(path), "%s/k2", lamindb);
	n = getxattr(path, "user.lamfs.key", got, sizeof(got) - 1);
	assert_int_equal(n, 3);
	assert_int_equal(backend_remove(b, ".lamindb/k1.csv"), 0);
	assert_int_equal(backend_remove(b, ".lamindb/k2"), 0);
	test_staging_drop(&sa);
	test_staging_drop(&sb);
	backend_free(b);
	free(a);
}

/* ---- many threads at once ---- */

#define CC_THREADS 6
#define CC_PUTS 40

struct cc_arg {
	struct backend *b;
	int t;
	int errors;   /* calls that did not return 0 */
};

static void cc_obj(int t, int i, char *out, size_t len)
{
	snprintf(out, len, ".lamindb/cc%d_%d.bin", t, i);
}

/* Object i of thread t holds its own name; every third is removed again.
 * Even puts may consume the staging file (link), odd ones are copied. */
static void *cc_worker(void *p)
{
	struct cc_arg *a = p;
	char obj[64], path[256];
	int i;

	for (i = 0; i < CC_PUTS; i++) {
		struct backend_src src = { 0 };
		size_t len;
		int fd, consumed = 0;

		cc_obj(a->t, i, obj, sizeof(obj));
		snprintf(path, sizeof(path), "%s/cc%d", staging, a->t);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		len = strlen(obj);
		if (fd < 0 || write(fd, obj, len) != (ssize_t)len || fsync(fd) != 0) {
			a->errors++;
		} else {
			src.path = path;
			src.fd = fd;
			src.size = len;
			src.may_consume = i % 2 == 0;
			if (backend_put(a->b, obj, &src, &consumed) != 0)
				a->errors++;
			if (i % 3 == 0 && backend_remove(a->b, obj) != 0)
				a->errors++;
		}
		if (fd >= 0)
			close(fd);
		unlink(path);
	}
	return NULL;
}

/* Puts and removes from several threads: every call succeeds, and exactly the
 * objects not removed are there, each with its bytes. */
static void test_concurrent_puts(void **state)
{
	struct backend *b = open_root();
	struct cc_arg args[CC_THREADS];
	pthread_t th[CC_THREADS];
	char obj[64];
	int t, i;

	(void)state;
	for (t = 0; t < CC_THREADS; t++) {
		args[t] = (struct cc_arg){ .b = b, .t = t };
		assert_int_equal(pthread_create(&th[t], NULL, cc_worker, &args[t]), 0);
	}
	for (t = 0; t < CC_THREADS; t++) {
		assert_int_equal(pthread_join(th[t], NULL), 0);
		assert_int_equal(args[t].errors, 0);
	}
	for (t = 0; t < CC_THREADS; t++) {
		for (i = 0; i < CC_PUTS; i++) {
			uint64_t size = 0;

			cc_obj(t, i, obj, sizeof(obj));
			if (i % 3 == 0) {
				assert_int_equal(backend_stat(b, obj, &size), -ENOENT);
			} else {
				size_t got = 0;
				unsigned char *back = test_read_all(b, obj, 4096, &got);

				assert_int_equal(got, strlen(obj));
				assert_memory_equal(back, obj, got);
				free(back);
			}
		}
	}
	assert_int_equal(count_temps(), 0);
	backend_free(b);
}

#ifdef LAMFS_FAULT_INJECTION
/* A failure half-way through the copy leaves no object and no temporary. */
static void test_fault_mid(void **state)
{
	unsigned char *buf = test_bytes(3 * MIB, 3);
	struct backend *b = open_root();
	struct test_staging st;
	uint64_t size;
	int consumed = 9;

	(void)state;
	test_staging_make(&st, staging, "mid", buf, 3 * MIB, 0);
	setenv("LAMFS_FAULT", "backend.put.mid=ENOSPC", 1);
	assert_int_equal(backend_put(b, ".lamindb/mid.bin", &st.src, &consumed), -ENOSPC);
	unsetenv("LAMFS_FAULT");
	assert_int_equal(consumed, 0);
	assert_int_equal(backend_stat(b, ".lamindb/mid.bin", &size), -ENOENT);
	assert_int_equal(count_temps(), 0);
	assert_true(test_exists(st.path));
	test_staging_drop(&st);
	backend_free(b);
	free(buf);
}

/* kill -9 half-way through a put leaves a temporary, never the object;
 * cleanup_incomplete counts it on a dry run and then removes it. */
static void test_crash_mid_and_cleanup(void **state)
{
	unsigned char *buf = test_bytes(2 * MIB, 4);
	struct backend *b = open_root();
	struct test_staging st;
	char path[300];
	unsigned n = 99;
	uint64_t size;
	int status = 0;
	pid_t pid;
	int fd;

	(void)state;
	test_put_check(b, staging, ".lamindb/keep.csv", buf, 100);
	test_staging_make(&st, staging, "crash", buf, 2 * MIB, 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int consumed;

		setenv("LAMFS_FAULT", "backend.put.mid=crash", 1);
		backend_put(b, ".lamindb/crashed.bin", &st.src, &consumed);
		_exit(3);   /* not reached */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_int_equal(backend_stat(b, ".lamindb/crashed.bin", &size), -ENOENT);
	assert_int_equal(count_temps(), 1);
	/* one more left by hand, as an older run might have */
	snprintf(path, sizeof(path), "%s/.tmp.old.csv.abc", lamindb);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);

	assert_int_equal(backend_cleanup_incomplete(b, 1, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(count_temps(), 2);
	assert_int_equal(backend_cleanup_incomplete(b, 0, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(count_temps(), 0);
	assert_int_equal(backend_cleanup_incomplete(b, 0, &n), 0);
	assert_int_equal(n, 0);
	/* real objects are untouched */
	assert_int_equal(backend_stat(b, ".lamindb/keep.csv", &size), 0);
	assert_int_equal(size, 100);
	assert_int_equal(backend_remove(b, ".lamindb/keep.csv"), 0);
	test_staging_drop(&st);
	backend_free(b);
	free(buf);
}
#else
static void test_fault_mid(void **state)
{
	(void)state;
	skip();   /* needs -DLAMFS_FAULT_INJECTION=ON */
}

static void test_crash_mid_and_cleanup(void **state)
{
	(void)state;
	skip();
}
#endif

/*
 * Mount-namespace tests.  Tests run as root, where chmod cannot deny
 * anything, so they use real mounts: a read-only bind mount and a tiny tmpfs.
 * They run in a child with a private mount namespace, so nothing is left
 * mounted whatever happens; the child reports with its exit status.
 */
#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			_exit(1);                                              \
		}                                                              \
	} while (0)

/* Run fn in a child inside a private mount namespace; skip when the
 * system does not allow one. */
static void in_mount_ns(void (*fn)(void), const char *what)
{
	int status = 0;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(EXIT_SKIP);
		fn();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == EXIT_SKIP) {
		printf("skip %s: no private mount namespace (needs CAP_SYS_ADMIN)\n", what);
		skip();
	}
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Put into a root that went read-only: -EACCES, nothing left; reads work;
 * opening a read-only root says it is not writable. */
static void ro_child(void)
{
	unsigned char *buf = test_bytes(MIB, 5);
	struct test_staging st;
	struct backend *b = NULL;
	char *err = NULL;
	uint64_t size = 0;
	int consumed = 5;

	/* open through a bind mount, then make that mount read-only: the
	 * backend's directory fds see the change, as on a remount of the fs */
	CHECK(mount(root, root, "none", MS_BIND, NULL) == 0);
	CHECK(backend_local_open(root, &b, &err) == 0);
	test_staging_make(&st, staging, "ro", buf, MIB, 0);
	CHECK(backend_put(b, ".lamindb/before.bin", &st.src, &consumed) == 0);
	CHECK(mount("none", root, "none", MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) == 0);
	CHECK(backend_put(b, ".lamindb/denied.bin", &st.src, &consumed) == -EACCES);
	CHECK(consumed == 0);
	st.src.may_consume = 1;   /* different mount: rename would be EXDEV */
	CHECK(backend_put(b, ".lamindb/denied.bin", &st.src, &consumed) == -EACCES);
	CHECK(consumed == 0 && test_exists(st.path));
	CHECK(backend_stat(b, ".lamindb/denied.bin", &size) == -ENOENT);
	CHECK(backend_stat(b, ".lamindb/before.bin", &size) == 0 && size == MIB);
	CHECK(backend_remove(b, ".lamindb/before.bin") == -EACCES);
	backend_free(b);
	b = NULL;
	CHECK(backend_local_open(root, &b, &err) == -EACCES);
	CHECK(err && strstr(err, "not writable"));
	free(err);
	test_staging_drop(&st);
	free(buf);
}

static void test_readonly_root(void **state)
{
	(void)state;
	in_mount_ns(ro_child, "read-only root");
	/* the object put before the remount is still there, outside the ns */
	{
		struct backend *b = open_root();
		uint64_t size = 0;

		assert_int_equal(backend_stat(b, ".lamindb/before.bin", &size), 0);
		assert_int_equal(backend_remove(b, ".lamindb/before.bin"), 0);
		backend_free(b);
	}
}

/* A full storage root: -ENOSPC from the copy, no temporary left. */
static void full_child(void)
{
	unsigned char *buf = test_bytes(2 * MIB, 6);
	struct test_staging st;
	struct backend *b = NULL;
	uint64_t size;
	char *err = NULL;
	int consumed = 5;

	CHECK(mount("tmpfs", root, "tmpfs", 0, "size=512k") == 0);
	CHECK(backend_local_open(root, &b, &err) == 0);
	test_staging_make(&st, staging, "big", buf, 2 * MIB, 1);   /* other fs: copy */
	CHECK(backend_put(b, ".lamindb/big.bin", &st.src, &consumed) == -ENOSPC);
	CHECK(consumed == 0 && test_exists(st.path));
	CHECK(backend_stat(b, ".lamindb/big.bin", &size) == -ENOENT);
	CHECK(count_temps() == 0);
	backend_free(b);
	test_staging_drop(&st);
	free(buf);
}

static void test_full_root(void **state)
{
	(void)state;
	in_mount_ns(full_child, "full root");
}

/* Staging on another file system is copied even when it may be consumed. */
static void other_fs_child(void)
{
	unsigned char *buf = test_bytes(MIB + 3, 7);
	struct test_staging st;
	struct backend *b = NULL;
	char *err = NULL;
	unsigned char *back;
	size_t got;
	int consumed = 5;

	CHECK(mount("tmpfs", staging, "tmpfs", 0, "size=8m") == 0);
	CHECK(backend_local_open(root, &b, &err) == 0);
	test_staging_make(&st, staging, "other", buf, MIB + 3, 1);
	CHECK(backend_put(b, ".lamindb/other.bin", &st.src, &consumed) == 0);
	CHECK(consumed == 0 && test_exists(st.path));
	back = test_read_all(b, ".lamindb/other.bin", 4096, &got);
	CHECK(got == MIB + 3 && memcmp(back, buf, got) == 0);
	CHECK(backend_remove(b, ".lamindb/other.bin") == 0);
	CHECK(count_temps() == 0);
	free(back);
	backend_free(b);
	test_staging_drop(&st);
	free(buf);
}

static void test_staging_other_fs(void **state)
{
	(void)state;
	in_mount_ns(other_fs_child, "staging on another fs");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_open_urls),
		cmocka_unit_test(test_replace_under_reader),
		cmocka_unit_test(test_consume_replace),
		cmocka_unit_test(test_key_and_on_read),
		cmocka_unit_test(test_concurrent_puts),
		cmocka_unit_test(test_fault_mid),
		cmocka_unit_test(test_crash_mid_and_cleanup),
		cmocka_unit_test(test_readonly_root),
		cmocka_unit_test(test_full_root),
		cmocka_unit_test(test_staging_other_fs),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
