/*
 * test_backend_cache.c — the read cache (backend/cache.c) wrapped around the
 * local backend in a temporary directory: bytes read through it are the
 * object's, reads are served from the cache once storage has lost the object,
 * damaged chunk files are never served, the size limit holds, and a cache
 * directory that cannot be used leaves reading uncached.
 */
#include <dirent.h>
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

#define MIB (1024 * 1024)

struct fx {
	char root[64];                /* the test's temporary directory */
	char storage[96];
	char cache[96];
	struct backend *b;            /* the cache around the local backend */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->root, "/tmp/lamfs-cache-XXXXXX");
	if (!mkdtemp(f->root))
		return -1;
	snprintf(f->storage, sizeof(f->storage), "%s/storage", f->root);
	snprintf(f->cache, sizeof(f->cache), "%s/cache", f->root);
	if (mkdir(f->storage, 0700))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	backend_free(f->b);
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", f->root);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static int wrap(struct fx *f, const char *dir, uint64_t limit)
{
	struct backend *local = NULL;
	char *err = NULL;
	int rc;

	assert_int_equal(backend_open(f->storage, NULL, &local, &err), 0);
	rc = backend_cache_wrap(local, dir, limit, &f->b);
	assert_non_null(f->b);
	return rc;
}

/* Store size bytes of pattern seed as obj; returns the bytes (caller frees). */
static unsigned char *put(struct fx *f, const char *obj, size_t size, unsigned seed)
{
	char path[128];
	unsigned char *d = malloc(size);
	struct backend_src src = { 0 };
	int fd, consumed = 0;
	size_t i;

	assert_non_null(d);
	for (i = 0; i < size; i++)
		d[i] = (unsigned char)((i * 2654435761u + seed) >> 13);
	snprintf(path, sizeof(path), "%s/src", f->root);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, d, size), (ssize_t)size);
	src.path = path;
	src.fd = fd;
	src.size = size;
	assert_int_equal(backend_put(f->b, obj, &src, &consumed), 0);
	close(fd);
	unlink(path);
	return d;
}

/* Read obj whole through the cache (in odd-sized reads) and compare. */
static void read_all(struct fx *f, const char *obj, const unsigned char *d, size_t size)
{
	struct backend_reader *r = NULL;
	unsigned char *buf = malloc(size + 1);
	uint64_t got_size = 0;
	size_t off, got;

	assert_non_null(buf);
	assert_int_equal(backend_reader_open(f->b, obj, &r, &got_size), 0);
	assert_int_equal(got_size, size);
	for (off = 0; off < size; off += got) {
		/* ask for up to one byte past the end: the reader stops at it */
		size_t want = size + 1 - off < 333333 ? size + 1 - off : 333333;

		assert_int_equal(backend_reader_pread(r, buf + off, want, off, &got), 0);
		assert_true(got > 0);
	}
	assert_int_equal(off, size);
	assert_memory_equal(buf, d, size);
	backend_reader_close(r);
	free(buf);
}

/* Chunk files in dir (not temporaries); their disk use into *bytes. */
static int chunk_files(const char *dir, uint64_t *bytes, char *first, size_t first_size)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;
	char p[512];
	int n = 0;

	*bytes = 0;
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		assert_int_equal(stat(p, &st), 0);
		*bytes += (uint64_t)st.st_blocks * 512;
		if (first && n == 0)
			snprintf(first, first_size, "%s", p);
		n++;
	}
	closedir(d);
	return n;
}

static void test_hits_without_storage(void **state)
{
	struct fx *f = *state;
	const char *obj = ".lamindb/AAAAAAAAAAAAAAAA0000.bin";
	size_t size = 2 * MIB + 5;
	unsigned char *d;
	char path[256];
	uint64_t bytes;
	struct backend_reader *r = NULL;
	uint64_t sz;

	assert_int_equal(wrap(f, f->cache, 64 * MIB), 0);
	d = put(f, obj, size, 1);
	read_all(f, obj, d, size);
	assert_int_equal(chunk_files(f->cache, &bytes, NULL, 0), 3);
	/* storage loses the object: the cache still has every byte */
	snprintf(path, sizeof(path), "%s/%s", f->storage, obj);
	assert_int_equal(unlink(path), 0);
	read_all(f, obj, d, size);
	/* an object never read is not in the cache: storage answers */
	assert_int_equal(backend_reader_open(f->b, ".lamindb/BBBBBBBBBBBBBBBB0000", &r, &sz),
			 -ENOENT);
	free(d);
}

static void test_damaged_chunks(void **state)
{
	struct fx *f = *state;
	const char *obj = ".lamindb/CCCCCCCCCCCCCCCC0000.csv";
	size_t size = MIB + 100;
	unsigned char *d, x = 0;
	char chunk[512];
	uint64_t bytes;
	int fd;

	assert_int_equal(wrap(f, f->cache, 64 * MIB), 0);
	d = put(f, obj, size, 2);
	read_all(f, obj, d, size);
	/* a flipped byte in the data of one of the two chunks */
	assert_int_equal(chunk_files(f->cache, &bytes, chunk, sizeof(chunk)), 2);
	fd = open(chunk, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &x, 1, 90), 1);
	x ^= 0x20;
	assert_int_equal(pwrite(fd, &x, 1, 90), 1);
	close(fd);
	read_all(f, obj, d, size);
	/* a chunk cut short */
	assert_int_equal(truncate(chunk, 70), 0);
	read_all(f, obj, d, size);
	/* a chunk emptied, as a crash before the data reached the disk leaves it */
	assert_int_equal(truncate(chunk, 0), 0);
	read_all(f, obj, d, size);
	/* each time a good chunk was stored again */
	assert_int_equal(chunk_files(f->cache, &bytes, NULL, 0), 2);
	free(d);
}

static void test_limit(void **state)
{
	struct fx *f = *state;
	char obj[64];
	unsigned char *d[6];
	uint64_t bytes;
	int i;

	assert_int_equal(wrap(f, f->cache, 4 * MIB), 0);
	for (i = 0; i < 6; i++) {
		snprintf(obj, sizeof(obj), ".lamindb/DDDDDDDDDDDDDDD%d0000", i);
		d[i] = put(f, obj, 2 * MIB, (unsigned)i);
		read_all(f, obj, d[i], 2 * MIB);
		chunk_files(f->cache, &bytes, NULL, 0);
		assert_true(bytes <= 4 * MIB);
	}
	/* what was evicted reads from storage again */
	for (i = 0; i < 6; i++) {
		snprintf(obj, sizeof(obj), ".lamindb/DDDDDDDDDDDDDDD%d0000", i);
		read_all(f, obj, d[i], 2 * MIB);
		free(d[i]);
	}
	chunk_files(f->cache, &bytes, NULL, 0);
	assert_true(bytes <= 4 * MIB);
}

static void test_unusable_dir(void **state)
{
	struct fx *f = *state;
	const char *obj = ".lamindb/EEEEEEEEEEEEEEEE0000";
	char file[128];
	unsigned char *d;
	int fd;

	snprintf(file, sizeof(file), "%s/a-file", f->root);
	fd = open(file, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(wrap(f, file, 64 * MIB), -ENOTDIR);
	assert_string_equal(backend_name(f->b), "local");
	d = put(f, obj, 3000, 3);
	read_all(f, obj, d, 3000);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hits_without_storage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_chunks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusable_dir, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
