/*
 * test_s3_server.c — the S3 backend against a real S3 server that checks
 * every signature (Swift + s3api, tests/s3server/run-unit.sh starts one).
 *
 * Needs S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION and S3_BUCKET
 * (an existing bucket); skips cleanly when S3_ENDPOINT is unset.  With
 * S3_SERVER_CTL (the directory of start.sh/stop.sh) and S3TEST_DIR it also
 * stops the server's object service in the middle of an upload and starts it
 * again.  The server must accept parts of 1 MiB (S3TEST_MIN_PART).
 *
 * White box where only the S3 API can tell (open multipart uploads, the ETag
 * that proves a multipart upload, a secret that stops working): s3_int.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "backend.h"
#include "contract_backend.h"
#include "s3.h"
#include "s3_int.h"
#include "uid.h"

#define MIB (1024 * 1024)

static const char *endpoint, *bucket;
static char url[512];           /* s3://bucket/unit-<random> */
static char tmpdir[256];        /* staging files */
static char pfx[64];            /* ".lamindb/<random>-" per test */

/* ---- helpers ---- */

static void set_env_defaults(void)
{
	setenv("AWS_ACCESS_KEY_ID", getenv("S3_ACCESS_KEY"), 1);
	setenv("AWS_SECRET_ACCESS_KEY", getenv("S3_SECRET_KEY"), 1);
	setenv("AWS_REGION", getenv("S3_REGION") ? getenv("S3_REGION") : "us-east-1", 1);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_DEFAULT_REGION");
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_S3");
	unsetenv("AWS_CA_BUNDLE");
	unsetenv("LAMFS_S3_ADDRESSING");
	unsetenv("LAMFS_S3_MULTIPART_THRESHOLD");
	unsetenv("LAMFS_S3_PART_SIZE");
	unsetenv("LAMFS_S3_PARALLEL");
	unsetenv("LAMFS_S3_STALL_TIMEOUT");
	/* no profile files of the machine running the tests */
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
	/* fast retries: the failure tests wait for every try */
	setenv("LAMFS_S3_ATTEMPTS", "3", 1);
	setenv("LAMFS_S3_RETRY_BASE_MS", "50", 1);
}

static int setup(void **state)
{
	char uid[LAMFS_UID_LEN + 1];

	(void)state;
	set_env_defaults();
	assert_int_equal(uid_new(uid), 0);
	snprintf(pfx, sizeof(pfx), ".lamindb/%.*s-", LAMFS_STEM_LEN, uid);
	return 0;
}

static struct backend *open_ok(const char *u, int create)
{
	struct backend_opts o = { .s3_endpoint = endpoint, .s3_create = create };
	struct backend *b = NULL;
	char *err = NULL;
	int rc = backend_open(u, &o, &b, &err);

	if (rc)
		fail_msg("backend_open(%s) = %d: %s", u, rc, err ? err : "");
	assert_null(err);
	assert_string_equal(backend_name(b), "s3");
	return b;
}

/* backend_open expected to fail with rc; returns the message (caller frees). */
static char *open_fail(const char *u, const struct backend_opts *o, int want)
{
	struct backend *b = NULL;
	char *err = NULL;
	int rc = backend_open(u, o, &b, &err);

	if (rc != want)
		fail_msg("backend_open(%s) = %d, want %d (%s)", u, rc, want, err ? err : "");
	assert_null(b);
	assert_non_null(err);
	assert_null(strchr(err, '\n'));
	assert_null(strstr(err, getenv("S3_SECRET_KEY")));
	printf("  message: %s\n", err);
	return err;
}

static void obj(const char *tail, char *out, size_t n)
{
	snprintf(out, n, "%s%s", pfx, tail);
}

/* A staging file of buf with its md5 and sha256 as the core supplies them. */
struct staged {
	struct test_staging st;
	unsigned char md5[16];
	char sha[65];
};

static void stage(struct staged *s, const void *buf, size_t len, int with_hashes)
{
	test_staging_make(&s->st, tmpdir, "stage", buf, len, 0);
	if (with_hashes) {
		assert_int_equal(s3_hash_range(s->st.src.fd, 0, len, s->md5, s->sha), 0);
		s->st.src.md5 = s->md5;
		s->st.src.sha256_hex = s->sha;
	}
}

static int put_buf(struct backend *b, const char *o, const void *buf, size_t len)
{
	struct staged s;
	int consumed = 9, rc;

	stage(&s, buf, len, 1);
	rc = backend_put(b, o, &s.st.src, &consumed);
	assert_int_equal(consumed, 0);
	test_staging_drop(&s.st);
	return rc;
}

struct upload_count {
	unsigned n;
};

static int count_upload(void *ctx, const char *key, const char *upload_id)
{
	struct upload_count *c = ctx;

	(void)key;
	(void)upload_id;
	c->n++;
	return 0;
}

/* Open multipart uploads whose key starts with the full key prefix kp,
 * asked of the server with ListMultipartUploads (?uploads, valueless). */
static unsigned open_uploads(struct backend *b, const char *kp)
{
	struct s3 *s = s3_of(b);
	struct sigv4_param q[] = { { "uploads", NULL }, { "prefix", kp } };
	struct s3_buf xml = S3_BUF_INIT;
	struct s3_request rq = { .method = "GET", .query = q, .nquery = 2, .xml = &xml };
	struct s3_response rs;
	struct s3_xml_page page;
	struct upload_count c = { 0 };

	assert_int_equal(s3_perform(s, &rq, &rs), 0);
	assert_int_equal(s3_xml_list_uploads(xml.data, xml.len, count_upload, &c, &page), 0);
	assert_false(page.truncated);
	s3_xml_page_release(&page);
	s3_buf_release(&xml);
	return c.n;
}

static char *full(struct backend *b, const char *o)
{
	char *k = s3_full_key(s3_of(b), o);

	assert_non_null(k);
	return k;
}

/* ETag of obj as the server reports it. */
static void etag_of(struct backend *b, const char *o, char out[S3_ETAG_MAX])
{
	char *k = full(b, o);
	struct s3_request rq = { .method = "HEAD", .key = k };
	struct s3_response rs;

	assert_int_equal(s3_perform(s3_of(b), &rq, &rs), 0);
	memcpy(out, rs.etag, S3_ETAG_MAX);
	free(k);
}

/* ---- tests ---- */

/* init's probe writes and deletes an object and leaves nothing. */
static void test_open_create(void **state)
{
	static struct test_listing l;
	struct backend *b = open_ok(url, 1);

	(void)state;
	memset(&l, 0, sizeof(l));
	assert_int_equal(backend_list(b, ".lamindb/.tmp.", test_list_cb, &l), 0);
	assert_int_equal(l.n, 0);
	backend_free(b);
}

/* put / stat / ranged reads / list / remove on a small object. */
static void test_roundtrip(void **state)
{
	static struct test_listing l;
	struct backend *b = open_ok(url, 0);
	unsigned char *buf = test_bytes(100000, 11), back[5000];
	struct backend_reader *r = NULL;
	uint64_t size = 0;
	size_t got = 0;
	char o[128], o2[128];
	struct staged s;

	(void)state;
	obj("small.csv", o, sizeof(o));
	obj("nohash.bin", o2, sizeof(o2));
	assert_int_equal(put_buf(b, o, buf, 100000), 0);
	/* without md5/sha256 from the caller the backend hashes itself */
	stage(&s, buf, 777, 0);
	assert_int_equal(backend_put(b, o2, &s.st.src, NULL), 0);
	test_staging_drop(&s.st);

	assert_int_equal(backend_stat(b, o, &size), 0);
	assert_int_equal(size, 100000);
	assert_int_equal(backend_reader_open(b, o, &r, &size), 0);
	assert_int_equal(size, 100000);
	assert_int_equal(backend_reader_pread(r, back, 5000, 90000, &got), 0);
	assert_int_equal(got, 5000);
	assert_memory_equal(back, buf + 90000, 5000);
	assert_int_equal(backend_reader_pread(r, back, 10, 3, &got), 0);
	assert_int_equal(got, 10);
	assert_memory_equal(back, buf + 3, 10);
	assert_int_equal(backend_reader_pread(r, back, 5000, 99000, &got), 0);
	assert_int_equal(got, 1000);
	assert_memory_equal(back, buf + 99000, 1000);
	assert_int_equal(backend_reader_pread(r, back, 5000, 100000, &got), 0);
	assert_int_equal(got, 0);
	backend_reader_close(r);

	memset(&l, 0, sizeof(l));
	assert_int_equal(backend_list(b, pfx, test_list_cb, &l), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(test_listed(&l, o), 100000);
	assert_int_equal(test_listed(&l, o2), 777);

	assert_int_equal(backend_remove(b, o), 0);
	assert_int_equal(backend_remove(b, o2), 0);
	assert_int_equal(backend_remove(b, o), -ENOENT);
	assert_int_equal(backend_stat(b, o, &size), -ENOENT);
	assert_int_equal(backend_reader_open(b, o, &r, &size), -ENOENT);
	free(buf);
	backend_free(b);
}

/* A Content-MD5 that does not match the body: the server refuses (BadDigest),
 * put says EIO, and no object appears. */
static void test_bad_md5(void **state)
{
	struct backend *b = open_ok(url, 0);
	unsigned char *buf = test_bytes(4096, 12);
	struct staged s;
	uint64_t size;
	char o[128];

	(void)state;
	obj("corrupt.bin", o, sizeof(o));
	stage(&s, buf, 4096, 1);
	s.md5[0] ^= 1;
	assert_int_equal(backend_put(b, o, &s.st.src, NULL), -EIO);
	s.md5[0] ^= 1;
	s.sha[0] = s.sha[0] == '0' ? '1' : '0';
	assert_int_equal(backend_put(b, o, &s.st.src, NULL), -EIO);
	test_staging_drop(&s.st);
	assert_int_equal(backend_stat(b, o, &size), -ENOENT);
	free(buf);
	backend_free(b);
}

/* ~20 MiB in 1 MiB parts, 4 in flight: bytes and hashes read back identical,
 * the ETag says multipart, no upload stays open. */
static void test_multipart(void **state)
{
	const size_t len = 20 * MIB + 12345;
	unsigned char *buf = test_bytes(len, 13), *back;
	unsigned char md5a[16], md5b[16];
	char o[128], etag[S3_ETAG_MAX], *kp;
	struct backend *b;
	size_t got;

	(void)state;
	setenv("LAMFS_S3_MULTIPART_THRESHOLD", "1M", 1);
	setenv("LAMFS_S3_PART_SIZE", "1M", 1);
	b = open_ok(url, 0);
	obj("big.h5ad", o, sizeof(o));
	assert_int_equal(put_buf(b, o, buf, len), 0);
	etag_of(b, o, etag);
	printf("  multipart ETag %s\n", etag);
	assert_non_null(strstr(etag, "-21"));
	back = test_read_all(b, o, 128 * 1024, &got);
	assert_int_equal(got, len);
	EVP_Digest(buf, len, md5a, NULL, EVP_md5(), NULL);
	EVP_Digest(back, len, md5b, NULL, EVP_md5(), NULL);
	assert_memory_equal(md5a, md5b, 16);
	assert_memory_equal(back, buf, len);
	free(back);
	/* one read larger than the readahead window goes straight through */
	back = malloc(9 * MIB);
	{
		struct backend_reader *r = NULL;
		uint64_t size;

		assert_int_equal(backend_reader_open(b, o, &r, &size), 0);
		assert_int_equal(backend_reader_pread(r, back, 9 * MIB, 5 * MIB + 3, &got), 0);
		assert_int_equal(got, 9 * MIB);
		assert_memory_equal(back, buf + 5 * MIB + 3, 9 * MIB);
		backend_reader_close(r);
	}
	free(back);
	kp = full(b, pfx);
	assert_int_equal(open_uploads(b, kp), 0);
	assert_int_equal(backend_remove(b, o), 0);
	free(kp);
	free(buf);
	backend_free(b);
}

/* Keys that need encoding in the path and in listings. */
static void test_special_keys(void **state)
{
	static const char *const tails[] = {
		"a b.txt", "plus+sign.csv", "star*bang!.fa", "tilde~paren(1)'q'.gz",
		"\xc3\xa9t\xc3\xa9/\xe2\x82\xac\xe6\x97\xa5\xe6\x9c\xac.txt",
		"eq=amp&pct%25hash#semi;comma,at@colon:.bin", "dollar$[brackets]{x}^`|.txt",
		"deep/er/path with space/x.y",
	};
	static struct test_listing l;
	struct backend *b = open_ok(url, 0);
	unsigned char *buf = test_bytes(333, 14), *back;
	char o[256];
	uint64_t size;
	size_t i, got;

	(void)state;
	for (i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		obj(tails[i], o, sizeof(o));
		assert_int_equal(put_buf(b, o, buf, 333 - i), 0);
		assert_int_equal(backend_stat(b, o, &size), 0);
		assert_int_equal(size, 333 - i);
		back = test_read_all(b, o, 100, &got);
		assert_int_equal(got, 333 - i);
		assert_memory_equal(back, buf, got);
		free(back);
	}
	memset(&l, 0, sizeof(l));
	assert_int_equal(backend_list(b, pfx, test_list_cb, &l), 0);
	assert_int_equal(l.n, sizeof(tails) / sizeof(tails[0]));
	for (i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		obj(tails[i], o, sizeof(o));
		assert_int_equal(test_listed(&l, o), (int64_t)(333 - i));
		assert_int_equal(backend_remove(b, o), 0);
	}
	free(buf);
	backend_free(b);
}

/* Sub-resources without values and encoded query values, signed and accepted. */
static void test_query_forms(void **state)
{
	struct backend *b = open_ok(url, 0);
	struct s3 *s = s3_of(b);
	struct sigv4_param q1[] = { { "uploads", NULL } };
	struct sigv4_param q2[] = { { "location", NULL } };
	struct sigv4_param q3[] = { { "list-type", "2" }, { "delimiter", "/" },
				    { "prefix", "a b+c*!/\xc3\xa9=&" }, { "max-keys", "7" } };
	struct s3_buf xml = S3_BUF_INIT;
	struct s3_request rq = { .method = "GET", .xml = &xml };
	struct s3_response rs;

	(void)state;
	rq.query = q1;
	rq.nquery = 1;
	assert_int_equal(s3_perform(s, &rq, &rs), 0);
	assert_non_null(strstr(xml.data, "ListMultipartUploadsResult"));
	rq.query = q2;
	assert_int_equal(s3_perform(s, &rq, &rs), 0);
	assert_non_null(strstr(xml.data, "LocationConstraint"));
	rq.query = q3;
	rq.nquery = 4;
	assert_int_equal(s3_perform(s, &rq, &rs), 0);
	assert_non_null(strstr(xml.data, "ListBucketResult"));
	s3_buf_release(&xml);
	backend_free(b);
}

static void test_wrong_secret(void **state)
{
	struct backend_opts o = { .s3_endpoint = endpoint, .s3_create = 1 };
	char *err;

	(void)state;
	setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret", 1);
	err = open_fail(url, &o, -EACCES);
	assert_string_equal(err, "S3 denied access (SignatureDoesNotMatch): check "
				 "AWS_SECRET_ACCESS_KEY");
	assert_null(strstr(err, "not-the-secret"));
	free(err);
	setenv("AWS_SECRET_ACCESS_KEY", getenv("S3_SECRET_KEY"), 1);
	setenv("AWS_ACCESS_KEY_ID", "nobody", 1);
	err = open_fail(url, &o, -EACCES);
	assert_non_null(strstr(err, "S3 denied access ("));
	free(err);
}

/* Credentials that stop working on an open handle: put says EACCES and
 * leaves no object and no multipart upload. */
static void test_denied_put(void **state)
{
	const size_t len = 3 * MIB + 1;
	struct backend *b, *good;
	unsigned char *buf = test_bytes(len, 15);
	char o[128], o2[128], *kp;
	uint64_t size;
	struct s3 *s;

	(void)state;
	setenv("LAMFS_S3_MULTIPART_THRESHOLD", "1M", 1);
	setenv("LAMFS_S3_PART_SIZE", "1M", 1);
	b = open_ok(url, 0);
	good = open_ok(url, 0);
	s = s3_of(b);
	free(s->cfg.secret_key);
	s->cfg.secret_key = strdup("revoked");
	obj("denied-small.txt", o, sizeof(o));
	obj("denied-big.txt", o2, sizeof(o2));
	assert_int_equal(put_buf(b, o, buf, 1000), -EACCES);
	assert_int_equal(put_buf(b, o2, buf, len), -EACCES);
	assert_int_equal(backend_stat(b, o, &size), -EACCES);
	assert_int_equal(backend_stat(good, o, &size), -ENOENT);
	assert_int_equal(backend_stat(good, o2, &size), -ENOENT);
	kp = full(good, pfx);
	assert_int_equal(open_uploads(good, kp), 0);
	free(kp);
	free(buf);
	backend_free(b);
	backend_free(good);
}

static void test_missing_bucket(void **state)
{
	struct backend_opts o = { .s3_endpoint = endpoint };
	char *err;

	(void)state;
	err = open_fail("s3://lamfs-no-such-bucket/x", &o, -ENOENT);
	assert_string_equal(err, "bucket lamfs-no-such-bucket does not exist");
	free(err);
}

static void test_unreachable(void **state)
{
	struct backend_opts o = { .s3_endpoint = "http://127.0.0.1:1" };
	char *err;

	(void)state;
	setenv("LAMFS_S3_ATTEMPTS", "2", 1);
	err = open_fail(url, &o, -EIO);
	assert_non_null(strstr(err, "cannot reach S3 endpoint http://127.0.0.1:1: "));
	free(err);
	o.s3_endpoint = "ftp://127.0.0.1:1";
	err = open_fail(url, &o, -EINVAL);
	free(err);
	o.s3_endpoint = "http://user:pw@127.0.0.1:1";
	err = open_fail(url, &o, -EINVAL);
	assert_null(strstr(err, "pw"));
	free(err);
	o.s3_endpoint = endpoint;
	err = open_fail("s3://", &o, -EINVAL);
	free(err);
}

static void test_wrong_region(void **state)
{
	struct backend_opts o = { .s3_endpoint = endpoint, .s3_region = "eu-west-3" };
	char *err;

	(void)state;
	err = open_fail(url, &o, -EIO);
	assert_non_null(strstr(err, "check AWS_REGION"));
	free(err);
}

/* Virtual-host addressing: <bucket>.localhost:<port> (curl resolves *.localhost). */
static void test_virtual_host(void **state)
{
	struct backend_opts o = { 0 };
	struct backend *b = NULL;
	unsigned char *buf = test_bytes(5000, 16), *back;
	const char *port = strrchr(endpoint, ':');
	char ep[128], o1[128], *err = NULL;
	size_t got;

	(void)state;
	snprintf(ep, sizeof(ep), "http://localhost%s", port);
	o.s3_endpoint = ep;
	setenv("LAMFS_S3_ADDRESSING", "virtual", 1);
	assert_int_equal(backend_open(url, &o, &b, &err), 0);
	assert_true(s3_of(b)->virtual_host);
	obj("vhost.txt", o1, sizeof(o1));
	assert_int_equal(put_buf(b, o1, buf, 5000), 0);
	back = test_read_all(b, o1, 4096, &got);
	assert_int_equal(got, 5000);
	assert_memory_equal(back, buf, 5000);
	assert_int_equal(backend_remove(b, o1), 0);
	free(back);
	free(buf);
	backend_free(b);
}

/* Credentials and region from profile files; an explicit profile beats
 * the environment's keys. */
static void test_profile(void **state)
{
	struct backend_opts o = { .s3_endpoint = endpoint, .s3_profile = "lamfs-unit" };
	struct backend *b = NULL;
	char cred[300], conf[300], *err = NULL;
	FILE *f;

	(void)state;
	snprintf(cred, sizeof(cred), "%s/credentials", tmpdir);
	snprintf(conf, sizeof(conf), "%s/config", tmpdir);
	f = fopen(cred, "w");
	assert_non_null(f);
	fprintf(f, "[default]\naws_access_key_id = nobody\naws_secret_access_key = x\n\n"
		   "[lamfs-unit]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		getenv("S3_ACCESS_KEY"), getenv("S3_SECRET_KEY"));
	fclose(f);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "[default]\nregion = eu-west-3\n\n[profile lamfs-unit]\nregion = %s\n"
		   "s3 =\n    addressing_style = path\n",
		getenv("S3_REGION") ? getenv("S3_REGION") : "us-east-1");
	fclose(f);
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
	setenv("AWS_CONFIG_FILE", conf, 1);
	setenv("AWS_SECRET_ACCESS_KEY", "wrong-in-env", 1);
	unsetenv("AWS_REGION");
	assert_int_equal(backend_open(url, &o, &b, &err), 0);
	assert_false(s3_of(b)->virtual_host);
	backend_free(b);
	/* AWS_PROFILE picks the same profile; env keys win over it */
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	setenv("AWS_PROFILE", "lamfs-unit", 1);
	o.s3_profile = NULL;
	assert_int_equal(backend_open(url, &o, &b, &err), 0);
	backend_free(b);
	/* the default profile has the wrong keys and region */
	unsetenv("AWS_PROFILE");
	err = open_fail(url, &o, -EIO);
	free(err);
	o.s3_profile = "nosuch";
	err = open_fail(url, &o, -EACCES);
	assert_non_null(strstr(err, "no S3 credentials"));
	free(err);
	unlink(cred);
	unlink(conf);
}

/* cleanup_incomplete aborts interrupted multipart uploads and removes
 * temporaries under the root; a dry run only counts them. */
static void test_cleanup_incomplete(void **state)
{
	struct backend *b = open_ok(url, 0);
	struct s3 *s = s3_of(b);
	struct sigv4_param q[] = { { "uploads", NULL } };
	struct s3_body none = { .mem = "", .fd = -1 };
	struct s3_buf xml = S3_BUF_INIT;
	struct s3_request rq = { .method = "POST", .query = q, .nquery = 1, .body = &none,
				 .xml = &xml };
	struct s3_response rs;
	unsigned char *buf = test_bytes(10, 17);
	char o[128], *key, *kp, *id = NULL;
	unsigned n = 0, i;

	(void)state;
	for (i = 0; i < 2; i++) {
		obj(i ? "interrupted-1.bin" : "interrupted-0.bin", o, sizeof(o));
		key = full(b, o);
		rq.key = key;
		assert_int_equal(s3_perform(s, &rq, &rs), 0);
		assert_int_equal(s3_xml_upload_id(xml.data, xml.len, &id), 0);
		free(id);
		free(key);
	}
	assert_int_equal(put_buf(b, ".lamindb/.tmp.probe-leftover", buf, 10), 0);
	kp = full(b, pfx);
	assert_int_equal(open_uploads(b, kp), 2);
	assert_int_equal(backend_cleanup_incomplete(b, 1, &n), 0);
	assert_true(n >= 3);
	assert_int_equal(open_uploads(b, kp), 2);
	assert_int_equal(backend_cleanup_incomplete(b, 0, &n), 0);
	assert_true(n >= 3);
	assert_int_equal(open_uploads(b, kp), 0);
	free(kp);
	kp = full(b, ".lamindb/");
	assert_int_equal(open_uploads(b, kp), 0);
	free(kp);
	{
		uint64_t size;

		assert_int_equal(backend_stat(b, ".lamindb/.tmp.probe-leftover", &size), -ENOENT);
	}
	s3_buf_release(&xml);
	free(buf);
	backend_free(b);
}

/* ---- one handle, many threads ---- */

struct worker {
	struct backend *b;
	int id;
	int rc;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	size_t len = (w->id % 2) ? 3 * MIB + 77 : 200000 + (size_t)w->id;
	unsigned char *buf = test_bytes(len, 100 + (uint32_t)w->id), *back = malloc(len);
	struct backend_reader *r = NULL;
	char o[128], path[300], tail[32];
	struct backend_src src = { 0 };
	unsigned char md5[16];
	char sha[65];
	uint64_t size = 0, off = 0;
	size_t got;
	int fd = -1, rc;
	FILE *f;

	snprintf(tail, sizeof(tail), "thread-%d.bin", w->id);
	obj(tail, o, sizeof(o));
	snprintf(path, sizeof(path), "%s/thread-%d", tmpdir, w->id);
	f = fopen(path, "w");
	rc = f && back && fwrite(buf, 1, len, f) == len ? 0 : -EIO;
	if (f)
		fclose(f);
	fd = rc ? -1 : open(path, O_RDONLY);
	rc = fd < 0 ? -EIO : s3_hash_range(fd, 0, len, md5, sha);
	src.fd = fd;
	src.size = len;
	src.md5 = md5;
	src.sha256_hex = sha;
	if (rc == 0)
		rc = backend_put(w->b, o, &src, NULL);
	if (rc == 0)
		rc = backend_reader_open(w->b, o, &r, &size);
	while (rc == 0 && off < size) {
		rc = backend_reader_pread(r, back + off, 131072, off, &got);
		off += got;
		if (rc == 0 && got == 0)
			rc = -EIO;
	}
	if (rc == 0 && (size != len || memcmp(back, buf, len) != 0))
		rc = -EBADMSG;
	backend_reader_close(r);
	if (rc == 0)
		rc = backend_remove(w->b, o);
	if (fd >= 0)
		close(fd);
	unlink(path);
	free(buf);
	free(back);
	w->rc = rc;
	return NULL;
}

/* Eight threads put, read and remove through one handle at once (single
 * PUTs and multipart uploads mixed), as FUSE threads do. */
static void test_concurrent(void **state)
{
	struct worker w[8];
	pthread_t t[8];
	struct backend *b;
	int i;

	(void)state;
	setenv("LAMFS_S3_MULTIPART_THRESHOLD", "1M", 1);
	setenv("LAMFS_S3_PART_SIZE", "1M", 1);
	b = open_ok(url, 0);
	for (i = 0; i < 8; i++) {
		w[i].b = b;
		w[i].id = i;
		w[i].rc = 1;
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		if (w[i].rc)
			fail_msg("thread %d: %d", i, w[i].rc);
	}
	backend_free(b);
}

/* ---- a server that stops answering ---- */

static pid_t stopped_pid;

static pid_t server_pid(const char *name)
{
	char path[512];
	FILE *f;
	long pid = 0;

	snprintf(path, sizeof(path), "%s/pids/%s.pid", getenv("S3TEST_DIR"), name);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld", &pid), 1);
	fclose(f);
	return (pid_t)pid;
}

static int teardown_cont(void **state)
{
	(void)state;
	if (stopped_pid > 0)
		kill(stopped_pid, SIGCONT);
	stopped_pid = 0;
	return 0;
}

/* The proxy freezes (SIGSTOP): requests time out after the stall timeout,
 * are retried, then fail with EIO; once it thaws, the same handle works. */
static void test_stall_timeout(void **state)
{
	struct backend *b;
	uint64_t size;
	time_t t0;
	char o[128];

	(void)state;
	if (!getenv("S3_SERVER_CTL") || !getenv("S3TEST_DIR")) {
		printf("  S3_SERVER_CTL/S3TEST_DIR not set: server is not ours to stop\n");
		skip();
	}
	setenv("LAMFS_S3_STALL_TIMEOUT", "1", 1);
	setenv("LAMFS_S3_ATTEMPTS", "2", 1);
	b = open_ok(url, 0);
	unsetenv("LAMFS_S3_STALL_TIMEOUT");
	obj("frozen.txt", o, sizeof(o));
	stopped_pid = server_pid("proxy");
	assert_int_equal(kill(stopped_pid, SIGSTOP), 0);
	t0 = time(NULL);
	assert_int_equal(backend_stat(b, o, &size), -EIO);
	assert_true(time(NULL) - t0 >= 2);
	assert_int_equal(kill(stopped_pid, SIGCONT), 0);
	stopped_pid = 0;
	assert_int_equal(backend_stat(b, o, &size), -ENOENT);
	backend_free(b);
}

/* ---- the server's object service stops in the middle of an upload ---- */

struct bg_put {
	struct backend *b;
	const char *obj;
	const void *buf;
	size_t len;
	int rc;
	int done;                  /* atomic */
};

static void *bg_put_run(void *arg)
{
	struct bg_put *p = arg;

	p->rc = put_buf(p->b, p->obj, p->buf, p->len);
	__atomic_store_n(&p->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* Parts of the upload already stored, as ListParts says; -1 before the
 * upload exists. */
static int parts_stored(struct backend *b, const char *o)
{
	struct s3 *s = s3_of(b);
	char *k = full(b, o), *kp = full(b, o);
	struct sigv4_param q[] = { { "uploads", NULL }, { "prefix", kp } };
	struct s3_buf xml = S3_BUF_INIT;
	struct s3_request rq = { .method = "GET", .query = q, .nquery = 2, .xml = &xml };
	struct s3_response rs;
	int n = -1;
	const char *p;

	if (s3_perform(s, &rq, &rs) == 0 && (p = strstr(xml.data, "<UploadId>")) != NULL) {
		char id[512];
		struct sigv4_param q2[] = { { "uploadId", id } };
		struct s3_request lp = { .method = "GET", .key = k, .query = q2, .nquery = 1,
					 .xml = &xml };

		snprintf(id, sizeof(id), "%.*s", (int)strcspn(p + 10, "<"), p + 10);
		if (s3_perform(s, &lp, &rs) == 0)
			for (n = 0, p = xml.data; (p = strstr(p, "<Part>")) != NULL; p++)
				n++;
	}
	s3_buf_release(&xml);
	free(k);
	free(kp);
	return n;
}

static void test_server_stops_mid_upload(void **state)
{
	const char *ctl = getenv("S3_SERVER_CTL");
	const size_t len = 24 * MIB;
	unsigned char *buf;
	struct bg_put p = { 0 };
	struct backend *b, *watch;
	pthread_t t;
	char o[128], cmd[1024], *kp;
	unsigned n = 0;
	int i, parts = -1;

	(void)state;
	if (!ctl || !getenv("S3TEST_DIR")) {
		printf("  S3_SERVER_CTL/S3TEST_DIR not set: server is not ours to stop\n");
		skip();
	}
	buf = test_bytes(len, 18);
	setenv("LAMFS_S3_MULTIPART_THRESHOLD", "1M", 1);
	setenv("LAMFS_S3_PART_SIZE", "1M", 1);
	setenv("LAMFS_S3_PARALLEL", "1", 1);
	b = open_ok(url, 0);
	unsetenv("LAMFS_S3_PARALLEL");
	watch = open_ok(url, 0);
	obj("stopped.bin", o, sizeof(o));
	p.b = b;
	p.obj = o;
	p.buf = buf;
	p.len = len;
	assert_int_equal(pthread_create(&t, NULL, bg_put_run, &p), 0);
	for (i = 0; i < 600 && !__atomic_load_n(&p.done, __ATOMIC_SEQ_CST) && parts < 2; i++) {
		usleep(20000);
		parts = parts_stored(watch, o);
	}
	assert_true(parts >= 2);
	assert_false(__atomic_load_n(&p.done, __ATOMIC_SEQ_CST));
	printf("  stopping the object server after %d parts\n", parts);
	assert_int_equal(kill(server_pid("object"), SIGTERM), 0);
	pthread_join(t, NULL);
	assert_int_equal(p.rc, -EIO);

	/* back up: a new save works, and cleanup leaves no upload open */
	snprintf(cmd, sizeof(cmd), "S3TEST_FRESH=0 '%s/start.sh' >/dev/null 2>&1", ctl);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(put_buf(watch, o, buf, len), 0);
	assert_int_equal(backend_cleanup_incomplete(watch, 0, &n), 0);
	printf("  cleanup_incomplete aborted %u upload(s)\n", n);
	kp = full(watch, ".lamindb/");
	assert_int_equal(open_uploads(watch, kp), 0);
	free(kp);
	assert_int_equal(backend_remove(watch, o), 0);
	free(buf);
	backend_free(b);
	backend_free(watch);
}

static int teardown(void **state)
{
	(void)state;
	return 0;
}

int main(void)
{
	char uid[LAMFS_UID_LEN + 1];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_md5, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multipart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_special_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_secret, setup, teardown),
		cmocka_unit_test_setup_teardown(test_denied_put, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_bucket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_region, setup, teardown),
		cmocka_unit_test_setup_teardown(test_virtual_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_profile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cleanup_incomplete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stall_timeout, setup, teardown_cont),
		cmocka_unit_test_setup_teardown(test_server_stops_mid_upload, setup, teardown),
	};
	int failed;

	endpoint = getenv("S3_ENDPOINT");
	bucket = getenv("S3_BUCKET");
	if (!endpoint || !*endpoint) {
		printf("test_s3_server: S3_ENDPOINT not set, skipped "
		       "(tests/s3server/run-unit.sh starts a server and sets it)\n");
		return 0;
	}
	if (!getenv("S3_ACCESS_KEY") || !getenv("S3_SECRET_KEY")) {
		printf("test_s3_server: S3_ACCESS_KEY and S3_SECRET_KEY are needed\n");
		return 1;
	}
	assert_int_equal(uid_new(uid), 0);
	snprintf(url, sizeof(url), "s3://%s/unit-%.8s", bucket ? bucket : "lamfs-test", uid);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/lamfs-s3-test.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(tmpdir);
	return failed;
}
