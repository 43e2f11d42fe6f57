/*
 * contract_backend.h — helpers shared by the backend tests: staging files,
 * whole-object reads through the wrappers, listings.  static inline so each
 * test program takes only what it uses.
 */
#ifndef LAMFS_TEST_CONTRACT_BACKEND_H
#define LAMFS_TEST_CONTRACT_BACKEND_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"

/* A staging file as the core hands it to put: written, fsynced, open. */
struct test_staging {
	char path[512];
	struct backend_src src;
};

/* Deterministic bytes; different seeds give different content. */
static inline unsigned char *test_bytes(size_t len, uint32_t seed)
{
	unsigned char *buf = malloc(len ? len : 1);
	uint32_t x = seed * 2654435761u | 1;
	size_t i;

	assert_non_null(buf);
	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)(x >> 7);
	}
	return buf;
}

/* Write buf into dir/name and open it as a put source. */
static inline void test_staging_make(struct test_staging *st, const char *dir,
				     const char *name, const void *buf, size_t len,
				     int may_consume)
{
	size_t done = 0;
	int fd;

	snprintf(st->path, sizeof(st->path), "%s/%s", dir, name);
	fd = open(st->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);

		assert_true(n > 0);
		done += (size_t)n;
	}
	assert_int_equal(fsync(fd), 0);
	/* leave the position at the end: put must not rely on it */
	memset(&st->src, 0, sizeof(st->src));
	st->src.path = st->path;
	st->src.fd = fd;
	st->src.size = len;
	st->src.may_consume = may_consume;
}

/* Close the staging fd and remove its file if it is still there. */
static inline void test_staging_drop(struct test_staging *st)
{
	if (st->src.fd >= 0)
		close(st->src.fd);
	st->src.fd = -1;
	unlink(st->path);
}

static inline int test_exists(const char *path)
{
	struct stat s;

	return stat(path, &s) == 0;
}

/* Read a whole object through a reader in `step`-byte preads; returns a
 * malloc'd buffer, its size in *len. */
static inline unsigned char *test_read_all(struct backend *b, const char *obj, size_t step,
					   size_t *len)
{
	struct backend_reader *r = NULL;
	uint64_t size = 0, off = 0;
	unsigned char *buf;

	assert_int_equal(backend_reader_open(b, obj, &r, &size), 0);
	buf = malloc(size + 1);
	assert_non_null(buf);
	for (;;) {
		size_t want = step, got = 99;

		if (off + want > size + 1)
			want = (size_t)(size + 1 - off);   /* ask one past the end */
		assert_int_equal(backend_reader_pread(r, buf + off, want, off, &got), 0);
		/* a short read only at the end */
		if (got < want)
			assert_int_equal(off + got, size);
		off += got;
		if (got == 0 || off == size + 1)
			break;
	}
	assert_int_equal(off, size);
	backend_reader_close(r);
	*len = (size_t)size;
	return buf;
}

/* Put and check the answer; returns *consumed. */
static inline int test_put(struct backend *b, const char *obj, struct test_staging *st)
{
	int consumed = -1;

	assert_int_equal(backend_put(b, obj, &st->src, &consumed), 0);
	assert_true(consumed == 0 || consumed == 1);
	if (!st->src.may_consume)
		assert_int_equal(consumed, 0);
	return consumed;
}

/* Put buf as obj from a staging file in dir and assert it reads back. */
static inline void test_put_check(struct backend *b, const char *dir, const char *obj,
				  const unsigned char *buf, size_t len)
{
	struct test_staging st;
	unsigned char *back;
	uint64_t size = 1;
	size_t got;

	test_staging_make(&st, dir, "staging.put", buf, len, 0);
	test_put(b, obj, &st);
	test_staging_drop(&st);
	assert_int_equal(backend_stat(b, obj, &size), 0);
	assert_int_equal(size, len);
	back = test_read_all(b, obj, 65536 + 7, &got);
	assert_int_equal(got, len);
	if (len)
		assert_memory_equal(back, buf, len);
	free(back);
}

/* A listing collected into a fixed table. */
struct test_listing {
	unsigned n;
	unsigned stop_after;       /* 0: never stop */
	char names[64][256];
	uint64_t sizes[64];
};

static inline int test_list_cb(void *ctx, const char *name, uint64_t size)
{
	struct test_listing *l = ctx;

	if (l->n < 64) {
		snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
		l->sizes[l->n] = size;
	}
	l->n++;
	return l->stop_after && l->n >= l->stop_after;
}

/* Size of name in the listing, or -1. */
static inline int64_t test_listed(const struct test_listing *l, const char *name)
{
	unsigned i;
	int64_t size = -1;

	for (i = 0; i < l->n && i < 64; i++)
		if (strcmp(l->names[i], name) == 0)
			size = (int64_t)l->sizes[i];
	return size;
}

/* Count of listed names containing "/.tmp." (local temporaries). */
static inline unsigned test_listed_temps(const struct test_listing *l)
{
	unsigned i, n = 0;

	for (i = 0; i < l->n && i < 64; i++)
		n += strstr(l->names[i], "/.tmp.") != NULL;
	return n;
}

#endif
