/*
 * test_hash.c — the LaminDB hash and the sha256 checksum against values the
 * test computes itself with OpenSSL over the whole buffer.
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
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "hash.h"

#define MIB (1024ull * 1024)

static char tmpdir[] = "/tmp/lamfs-test-hash.XXXXXX";

static int setup_dir(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	(void)state;
	return rmdir(tmpdir);
}

/* Deterministic, non-repeating test bytes (xorshift). */
static unsigned char *make_bytes(size_t len, uint32_t seed)
{
	unsigned char *buf = malloc(len ? len : 1);
	uint32_t x = seed | 1;
	size_t i;

	assert_non_null(buf);
	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
	return buf;
}

/* A temporary file holding buf; returns an fd open for reading. */
static int file_of(const unsigned char *buf, size_t len, const char *name)
{
	char path[256];
	size_t done = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	while (done < len) {
		ssize_t n = write(fd, buf + done, len - done);

		assert_true(n > 0);
		done += (size_t)n;
	}
	assert_int_equal(unlink(path), 0);
	return fd;
}

/* url-safe base64 without '=' via OpenSSL's standard encoder, cut to 22. */
static void expect_b64(const unsigned char *digest, int len, char out[LAMFS_HASH_LEN + 1])
{
	unsigned char std[64];
	int i, n = EVP_EncodeBlock(std, digest, len);

	for (i = 0; i < n; i++)
		std[i] = std[i] == '+' ? '-' : std[i] == '/' ? '_' : std[i];
	memcpy(out, std, LAMFS_HASH_LEN);
	out[LAMFS_HASH_LEN] = '\0';
}

static void digest(const EVP_MD *md, const void *buf, size_t len, unsigned char *out)
{
	assert_int_equal(EVP_Digest(buf, len, out, NULL, md, NULL), 1);
}

/* The hash, type and checksum LaminDB and lamfs expect for buf. */
static void expected(const unsigned char *buf, size_t len, struct hash_result *exp)
{
	unsigned char d[64];
	int i;

	memset(exp, 0, sizeof(*exp));
	exp->size = len;
	/* md5 only when it is the hash: beyond the chunk, nothing needs it */
	exp->md5_ok = len <= LAMFS_HASH_CHUNK;
	if (exp->md5_ok)
		digest(EVP_md5(), buf, len, exp->md5);
	if (len <= LAMFS_HASH_CHUNK) {
		expect_b64(exp->md5, 16, exp->hash);
		strcpy(exp->hash_type, "md5");
	} else {
		unsigned char both[40];

		digest(EVP_sha1(), buf, LAMFS_HASH_CHUNK, both);
		digest(EVP_sha1(), buf + len - LAMFS_HASH_CHUNK, LAMFS_HASH_CHUNK, both + 20);
		digest(EVP_sha1(), both, 40, d);
		expect_b64(d, 20, exp->hash);
		strcpy(exp->hash_type, "sha1-fl");
	}
	digest(EVP_sha256(), buf, len, d);
	for (i = 0; i < 32; i++)
		sprintf(exp->checksum + 2 * i, "%02x", d[i]);
}

static void assert_result(const struct hash_result *got, const struct hash_result *exp)
{
	assert_string_equal(got->hash, exp->hash);
	assert_string_equal(got->hash_type, exp->hash_type);
	assert_string_equal(got->checksum, exp->checksum);
	assert_int_equal(got->md5_ok, exp->md5_ok);
	assert_memory_equal(got->md5, exp->md5, 16);
	assert_int_equal(got->size, exp->size);
}

/* Stream buf in the given chunk sizes (cycled), finish against fd. */
static void stream(const unsigned char *buf, size_t len, const size_t *chunks, size_t nchunks,
		   int fd, struct hash_result *out)
{
	struct hash_state *h = NULL;
	size_t off = 0, i = 0;

	assert_int_equal(hash_new(&h), 0);
	while (off < len) {
		size_t n = chunks[i++ % nchunks];

		if (n > len - off)
			n = len - off;
		hash_update(h, buf + off, n);
		off += n;
	}
	assert_int_equal(hash_fed(h), len);
	assert_int_equal(hash_finish(h, fd, out), 0);
	hash_free(h);
}

static void test_check_value(void **state)
{
	struct hash_state *h = NULL;
	struct hash_result r;

	(void)state;
	assert_int_equal(hash_new(&h), 0);
	hash_update(h, ">seq1\n", 6);
	hash_update(h, "ACGT\n", 5);
	assert_int_equal(hash_finish(h, -1, &r), 0);   /* small: fd never read */
	assert_string_equal(r.hash, "83rEPcAoBHmYiIuyBYrFKg");
	assert_string_equal(r.hash_type, "md5");
	assert_int_equal(r.size, 11);
	/* finishing twice without a reset is refused */
	assert_int_equal(hash_finish(h, -1, &r), -EINVAL);
	hash_reset(h);
	hash_update(h, ">seq1\nACGT\n", 11);
	assert_int_equal(hash_finish(h, -1, &r), 0);
	assert_string_equal(r.hash, "83rEPcAoBHmYiIuyBYrFKg");
	hash_free(h);
}

static void test_empty(void **state)
{
	struct hash_result got, exp;
	int fd = file_of((const unsigned char *)"", 0, "empty");

	(void)state;
	expected((const unsigned char *)"", 0, &exp);
	assert_int_equal(hash_fd(fd, &got), 0);
	assert_result(&got, &exp);
	assert_string_equal(got.hash, "1B2M2Y8AsgTpgAmY7PhCfg");
	assert_string_equal(got.checksum,
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	close(fd);
}

static void test_b64url(void **state)
{
	static const unsigned char bytes[] = { 0xfb, 0xff, 0xbf };
	char out[16];

	(void)state;
	hash_b64url((const unsigned char *)"", 0, out);
	assert_string_equal(out, "");
	hash_b64url((const unsigned char *)"f", 1, out);
	assert_string_equal(out, "Zg");
	hash_b64url((const unsigned char *)"fo", 2, out);
	assert_string_equal(out, "Zm8");
	hash_b64url((const unsigned char *)"foo", 3, out);
	assert_string_equal(out, "Zm9v");
	hash_b64url(bytes, 3, out);
	assert_string_equal(out, "-_-_");
	hash_b64url(bytes, 2, out);
	assert_string_equal(out, "-_8");
}

/* A file of len bytes: hash_fd, and streaming in odd chunks, both match. */
static void check_size(size_t len, const char *type)
{
	static const size_t odd[] = { 7, 4093, MIB + 3, 1, 65521 };
	static const size_t whole[] = { 64 * MIB };
	unsigned char *buf = make_bytes(len, (uint32_t)len);
	struct hash_result exp, got;
	int fd = file_of(buf, len, "big");

	expected(buf, len, &exp);
	assert_string_equal(exp.hash_type, type);
	assert_int_equal(hash_fd(fd, &got), 0);
	assert_result(&got, &exp);
	stream(buf, len, odd, sizeof(odd) / sizeof(odd[0]), fd, &got);
	assert_result(&got, &exp);
	stream(buf, len, whole, 1, fd, &got);
	assert_result(&got, &exp);
	close(fd);
	free(buf);
}

static void test_exact_chunk_is_md5(void **state)
{
	(void)state;
	check_size(LAMFS_HASH_CHUNK, "md5");
}

static void test_chunk_plus_one_is_sha1fl(void **state)
{
	(void)state;
	check_size(LAMFS_HASH_CHUNK + 1, "sha1-fl");
}

static void test_large_sha1fl(void **state)
{
	(void)state;
	check_size(LAMFS_HASH_CHUNK + 3 * MIB + 17, "sha1-fl");
}

/* A file shorter than what was fed cannot give the last chunk. */
static void test_sha1fl_short_fd(void **state)
{
	unsigned char *buf = make_bytes(LAMFS_HASH_CHUNK + 10, 99);
	struct hash_state *h = NULL;
	struct hash_result r;
	int fd = file_of(buf, 100, "short");

	(void)state;
	assert_int_equal(hash_new(&h), 0);
	hash_update(h, buf, LAMFS_HASH_CHUNK + 10);
	assert_int_equal(hash_finish(h, fd, &r), -EIO);
	hash_reset(h);
	hash_update(h, buf, LAMFS_HASH_CHUNK + 10);
	assert_int_equal(hash_finish(h, -1, &r), -EBADF);
	hash_free(h);
	close(fd);
	free(buf);
}

/* Write buf into an empty file in odd chunks while a follower hashes it
 * behind the writes (the first `inline_len` bytes fed inline, as a stage does
 * before it starts one); the result matches the whole file's hashes. */
static void follow_size(size_t len, size_t inline_len)
{
	static const size_t odd[] = { 7, 131072, MIB + 3, 1, 65521, 4 * MIB };
	unsigned char *buf = make_bytes(len, (uint32_t)len ^ 0x5a5a);
	struct hash_follower *f = NULL;
	struct hash_state *h = NULL;
	struct hash_result exp, got;
	size_t off = 0, i = 0;
	int fd = file_of(buf, 0, "follow");

	expected(buf, len, &exp);
	assert_int_equal(hash_new(&h), 0);
	assert_int_equal(pwrite(fd, buf, inline_len, 0), (ssize_t)inline_len);
	hash_update(h, buf, inline_len);
	off = inline_len;
	assert_int_equal(hash_follow_start(h, fd, &f), 0);
	while (off < len) {
		size_t n = odd[i++ % (sizeof(odd) / sizeof(odd[0]))];

		if (n > len - off)
			n = len - off;
		assert_int_equal(pwrite(fd, buf + off, n, (off_t)off), (ssize_t)n);
		off += n;
		hash_follow_extend(f, off);
	}
	assert_int_equal(hash_follow_stop(f, 1), 0);
	assert_int_equal(hash_fed(h), len);
	assert_int_equal(hash_finish(h, fd, &got), 0);
	assert_result(&got, &exp);
	hash_free(h);
	close(fd);
	free(buf);
}

static void test_follow_md5(void **state)
{
	(void)state;
	follow_size(9 * MIB + 5, 4093);
}

static void test_follow_sha1fl(void **state)
{
	(void)state;
	follow_size(LAMFS_HASH_CHUNK + 2 * MIB + 3, 0);
}

/* Stopping at once leaves a partial hash and no thread; a promise the file
 * does not keep (bytes past its end) is a read error at stop. */
static void test_follow_abandon_and_short(void **state)
{
	unsigned char *buf = make_bytes(3 * MIB, 7);
	struct hash_follower *f = NULL;
	struct hash_state *h = NULL;
	int fd = file_of(buf, 3 * MIB, "short-follow");

	(void)state;
	assert_int_equal(hash_new(&h), 0);
	assert_int_equal(hash_follow_start(h, fd, &f), 0);
	hash_follow_extend(f, 3 * MIB);
	assert_int_equal(hash_follow_stop(f, 0), 0);
	assert_true(hash_fed(h) <= 3 * MIB);
	hash_reset(h);
	assert_int_equal(hash_follow_start(h, fd, &f), 0);
	hash_follow_extend(f, 4 * MIB);
	assert_int_equal(hash_follow_stop(f, 1), -EIO);
	assert_int_equal(hash_fed(h), 3 * MIB);
	hash_free(h);
	close(fd);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_value),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_b64url),
		cmocka_unit_test(test_exact_chunk_is_md5),
		cmocka_unit_test(test_chunk_plus_one_is_sha1fl),
		cmocka_unit_test(test_large_sha1fl),
		cmocka_unit_test(test_sha1fl_short_fd),
		cmocka_unit_test(test_follow_md5),
		cmocka_unit_test(test_follow_sha1fl),
		cmocka_unit_test(test_follow_abandon_and_short),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
