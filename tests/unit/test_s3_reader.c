/*
 * test_s3_reader.c — the S3 reader's read-ahead and background prefetch
 * against a real S3 server (Swift + s3api, tests/s3server/run-unit.sh starts
 * one): every read pattern returns the object's bytes, exactly.
 *
 * Sequential reads of several sizes (the prefetch path), random reads, reads
 * going backwards, streams that restart elsewhere, reads across the end, a
 * close while prefetches are in flight, a read-ahead maximum smaller than
 * the reads, and 1 to 8 GETs in flight.  Needs S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION and
 * S3_BUCKET (an existing bucket); skips when S3_ENDPOINT is unset.
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

#include "backend.h"
#include "uid.h"

#define MIB (1024 * 1024)
#define OBJ_SIZE (5 * MIB + 777)

static unsigned char *data;
static char obj[64];
static char url[512];

static struct backend *open_backend(void)
{
	struct backend_opts o = { .s3_endpoint = getenv("S3_ENDPOINT") };
	struct backend *b = NULL;
	char *err = NULL;
	int rc = backend_open(url, &o, &b, &err);

	if (rc)
		fail_msg("backend_open(%s) = %d: %s", url, rc, err ? err : "");
	free(err);
	return b;
}

static int group_setup(void **state)
{
	char uid[LAMFS_UID_LEN + 1], path[] = "/tmp/lamfs-s3-reader-XXXXXX";
	struct backend_src src = { 0 };
	struct backend *b;
	int fd, consumed = 0;
	size_t i;

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", getenv("S3_ACCESS_KEY"), 1);
	setenv("AWS_SECRET_ACCESS_KEY", getenv("S3_SECRET_KEY"), 1);
	setenv("AWS_REGION", getenv("S3_REGION") ? getenv("S3_REGION") : "us-east-1", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("LAMFS_S3_READAHEAD");
	unsetenv("LAMFS_S3_READ_PARALLEL");
	if (uid_new(uid))
		return -1;
	snprintf(url, sizeof(url), "s3://%s/reader-%.*s", getenv("S3_BUCKET"),
		 LAMFS_STEM_LEN, uid);
	snprintf(obj, sizeof(obj), ".lamindb/%s.bin", uid);
	data = malloc(OBJ_SIZE);
	if (!data)
		return -1;
	srand(42);
	for (i = 0; i < OBJ_SIZE; i++)
		data[i] = (unsigned char)(rand() >> 7);
	fd = mkstemp(path);
	if (fd < 0 || write(fd, data, OBJ_SIZE) != OBJ_SIZE)
		return -1;
	unlink(path);
	src.path = path;
	src.fd = fd;
	src.size = OBJ_SIZE;
	b = open_backend();
	if (backend_put(b, obj, &src, &consumed))
		return -1;
	backend_free(b);
	close(fd);
	return 0;
}

static int group_teardown(void **state)
{
	struct backend *b;

	(void)state;
	if (data) {
		b = open_backend();
		(void)backend_remove(b, obj);
		backend_free(b);
	}
	free(data);
	return 0;
}

/* One pread that must give the object's bytes at off, short only at the end. */
static void read_check(struct backend_reader *r, uint64_t off, size_t len)
{
	unsigned char *buf = malloc(len ? len : 1);
	size_t got = 99, want;
	int rc;

	assert_non_null(buf);
	rc = backend_reader_pread(r, buf, len, off, &got);
	if (rc)
		fail_msg("pread(%zu at %llu) = %d", len, (unsigned long long)off, rc);
	want = off >= OBJ_SIZE ? 0 : (OBJ_SIZE - off < len ? OBJ_SIZE - off : len);
	assert_int_equal(got, want);
	if (want && memcmp(buf, data + off, want))
		fail_msg("pread(%zu at %llu): wrong bytes", len, (unsigned long long)off);
	free(buf);
}

static struct backend_reader *reader_open(struct backend *b)
{
	struct backend_reader *r = NULL;
	uint64_t size = 0;

	assert_int_equal(backend_reader_open(b, obj, &r, &size), 0);
	assert_int_equal(size, OBJ_SIZE);
	return r;
}

/* Read the whole object front to back in reads of len bytes. */
static void read_sequential(struct backend *b, size_t len)
{
	struct backend_reader *r = reader_open(b);
	uint64_t off;

	for (off = 0; off < OBJ_SIZE; off += len)
		read_check(r, off, len);
	read_check(r, OBJ_SIZE, len);      /* at the end: 0 bytes */
	backend_reader_close(r);
}

static void test_sequential_sizes(void **state)
{
	static const size_t sizes[] = { 4096, 128 << 10, 300001, 1 << 20, 3 << 20, 8 << 20 };
	struct backend *b = open_backend();
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		read_sequential(b, sizes[i]);
	backend_free(b);
}

static void test_random_and_backwards(void **state)
{
	struct backend *b = open_backend();
	struct backend_reader *r = reader_open(b);
	uint64_t off;
	int i;

	(void)state;
	srand(7);
	for (i = 0; i < 60; i++)
		read_check(r, (uint64_t)rand() % (OBJ_SIZE + 100), (size_t)rand() % (3 * MIB) + 1);
	for (off = OBJ_SIZE - 65536; off >= 4 * 65536; off -= 3 * 65536)
		read_check(r, off, 65536);
	backend_reader_close(r);
	backend_free(b);
}

/* A stream, a jump, a new stream, a jump back into what was prefetched. */
static void test_streams_restart(void **state)
{
	struct backend *b = open_backend();
	struct backend_reader *r = reader_open(b);
	uint64_t off;

	(void)state;
	for (off = 0; off < 3 * MIB; off += MIB)
		read_check(r, off, MIB);
	read_check(r, 100, 1000);
	for (off = 1100; off < 2 * MIB; off += 200000)
		read_check(r, off, 200000);
	for (off = 3 * MIB; off < OBJ_SIZE; off += 777777)
		read_check(r, off, 777777);
	read_check(r, 3 * MIB - 10, 20);
	read_check(r, OBJ_SIZE - 5, 100);
	backend_reader_close(r);
	backend_free(b);
}

/* Closing while background GETs are in flight waits for them, cleanly. */
static void test_close_while_prefetching(void **state)
{
	struct backend *b = open_backend();
	struct backend_reader *r;
	int i;

	(void)state;
	for (i = 0; i < 5; i++) {
		r = reader_open(b);
		read_check(r, 0, MIB);
		read_check(r, MIB, MIB);   /* a stream: prefetches start */
		backend_reader_close(r);
	}
	backend_free(b);
}

/* A read-ahead maximum below the read size: windows stay at the maximum. */
static void test_small_readahead(void **state)
{
	struct backend *b;

	(void)state;
	setenv("LAMFS_S3_READAHEAD", "64K", 1);
	b = open_backend();
	read_sequential(b, MIB);
	read_sequential(b, 5000);
	backend_free(b);
	unsetenv("LAMFS_S3_READAHEAD");
}

/* Any number of GETs in flight (LAMFS_S3_READ_PARALLEL) gives the same bytes:
 * one, the most, and a value out of range (ignored, the default). */
static void test_read_parallel(void **state)
{
	static const char *const vals[] = { "1", "8", "0", "9", "x" };
	struct backend *b;
	size_t i;

	(void)state;
	setenv("LAMFS_S3_READAHEAD", "256K", 1);   /* many windows in 5 MiB */
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		setenv("LAMFS_S3_READ_PARALLEL", vals[i], 1);
		b = open_backend();
		read_sequential(b, 128 << 10);
		read_sequential(b, 300001);
		backend_free(b);
	}
	unsetenv("LAMFS_S3_READ_PARALLEL");
	unsetenv("LAMFS_S3_READAHEAD");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sequential_sizes),
		cmocka_unit_test(test_random_and_backwards),
		cmocka_unit_test(test_streams_restart),
		cmocka_unit_test(test_close_while_prefetching),
		cmocka_unit_test(test_small_readahead),
		cmocka_unit_test(test_read_parallel),
	};

	if (!getenv("S3_ENDPOINT") || !*getenv("S3_ENDPOINT")) {
		printf("test_s3_reader: S3_ENDPOINT not set, skipped "
		       "(tests/s3server/run-unit.sh starts a server and sets it)\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
