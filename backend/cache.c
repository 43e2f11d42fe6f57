/*
 * cache.c — an on-disk read cache that wraps any backend.
 *
 * Objects never change once stored (an object's name carries its uid, and a
 * uid is never reused), so a chunk of an object, cached under the object's
 * name and the chunk's offset, never goes stale and needs no invalidation.
 * Everything but reading goes straight to the wrapped backend.
 *
 * Layout: one file per chunk of CACHE_CHUNK bytes, "<h>-<index>" in the
 * cache directory, where h is the first 32 hex digits of the sha256 of the
 * storage url and the object name.  A file is a struct chunk_hdr followed by the chunk's bytes;
 * it is written as ".tmp.*" and renamed into place.  A file is served only
 * when its length, header (magic, object hash, size, offset, length) and the
 * crc32 of its bytes all match; anything else is deleted and fetched again.
 *
 * Size: the bytes the files use (st_blocks) are counted; when a store takes
 * the total over the limit, the least recently used files (mtime, touched on
 * every hit) are deleted down to 90% of it.
 *
 * Errors of the cache directory never fail a read: the first one is logged
 * and the cache stops storing (hits are still served); reads go to the
 * wrapped backend.
 *
 * Threads: readers are used by one thread at a time; the shared state (used,
 * store_off) is guarded by struct cache's lock, which nests inside nothing.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "backend.h"
#include "log.h"

#define CACHE_CHUNK (1u << 20)
#define CACHE_MAGIC "lamfsC1"        /* 8 bytes with the NUL */
#define CACHE_NAME_HEX 32

struct chunk_hdr {
	char magic[8];
	unsigned char obj_sha[32];    /* cache_name_hash() of the object */
	uint64_t obj_size;
	uint64_t off;
	uint32_t len;
	uint32_t crc;                 /* crc32 of the len bytes that follow */
};

struct cache {
	struct backend base;          /* first */
	struct backend *inner;        /* owned */
	char *dir;
	uint64_t limit;
	pthread_mutex_t lock;
	uint64_t used;                /* bytes the chunk files use; lock */
	int store_off;                /* a store failed: store no more; lock */
	unsigned long tmp_seq;        /* lock */
};

struct cache_reader {
	struct backend_reader base;   /* first */
	struct cache *c;
	char *obj;
	unsigned char obj_sha[32];
	char hex[CACHE_NAME_HEX + 1];
	struct backend_reader *in;    /* the wrapped backend's, opened on a miss */
	uint64_t size;
	char *chunk;                  /* CACHE_CHUNK bytes */
	uint64_t chunk_off;           /* of the chunk in `chunk`; UINT64_MAX: none */
	size_t chunk_len;
};

static const struct backend_ops cache_ops;

static struct cache *cache_of(struct backend *b)
{
	assert(b && b->ops == &cache_ops);
	return (struct cache *)b;
}

static struct cache_reader *cache_reader_of(struct backend_reader *r)
{
	(void)cache_of(r->b);
	return (struct cache_reader *)r;
}

/* Bytes a file of len bytes uses on disk, as st_blocks counts them (4 KiB blocks). */
static uint64_t disk_bytes(uint64_t len)
{
	return (len + 4095) & ~4095ull;
}

static void chunk_path(const struct cache_reader *r, uint64_t idx, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s-%08llx", r->c->dir, r->hex, (unsigned long long)idx);
}

/* Length of the chunk at idx of an object of r->size bytes. */
static size_t chunk_want(const struct cache_reader *r, uint64_t idx)
{
	uint64_t off = idx * CACHE_CHUNK;

	return r->size - off < CACHE_CHUNK ? (size_t)(r->size - off) : CACHE_CHUNK;
}

/* The first store error: logged once, and no store after it. */
static void store_failed(struct cache *c, const char *what, int err)
{
	int first;

	pthread_mutex_lock(&c->lock);
	first = !c->store_off;
	c->store_off = 1;
	pthread_mutex_unlock(&c->lock);
	if (first)
		log_err("read cache %s: %s: %s; reading without storing in the cache", c->dir,
			what, strerror(err));
}

/*
 * Read and check the cache file of chunk idx into dst (which has room for
 * CACHE_CHUNK bytes).  want: the chunk's length, or 0 when the object's size
 * is not known yet (chunk 0 at open; *size is set from the header then).
 * 0 on a valid hit; -ENOENT on a miss; -EBADMSG when the file was damaged
 * (deleted here).
 */
static int chunk_load(struct cache_reader *r, uint64_t idx, size_t want, char *dst,
		      uint64_t *size)
{
	char path[PATH_MAX];
	struct chunk_hdr h;
	struct stat st;
	ssize_t n;
	int fd, rc = -EBADMSG;

	chunk_path(r, idx, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -ENOENT;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(h))
		goto out;
	n = pread(fd, &h, sizeof(h), 0);
	if (n != (ssize_t)sizeof(h) || memcmp(h.magic, CACHE_MAGIC, sizeof(h.magic)) ||
	    memcmp(h.obj_sha, r->obj_sha, sizeof(h.obj_sha)) || h.off != idx * CACHE_CHUNK ||
	    h.len > CACHE_CHUNK || st.st_size != (off_t)(sizeof(h) + h.len) ||
	    h.off >= h.obj_size || h.len != (h.obj_size - h.off < CACHE_CHUNK ?
					      h.obj_size - h.off : CACHE_CHUNK) ||
	    (want && (h.len != want || h.obj_size != r->size)))
		goto out;
	n = pread(fd, dst, h.len, sizeof(h));
	if (n != (ssize_t)h.len || crc32(0, (const Bytef *)dst, h.len) != h.crc)
		goto out;
	if (size)
		*size = h.obj_size;
	(void)futimens(fd, NULL);     /* most recently used */
	rc = 0;
out:
	close(fd);
	if (rc == -EBADMSG) {
		log_warn("read cache: %s is damaged; deleted, reading from storage", path);
		(void)unlink(path);
	}
	return rc;
}

static int entry_is_chunk(const char *name)
{
	return strlen(name) > CACHE_NAME_HEX && name[CACHE_NAME_HEX] == '-' && name[0] != '.';
}

struct entry {
	char name[64];
	time_t mtime;
	uint64_t bytes;
};

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/*
 * Count the chunk files (and delete temporaries when drop_tmp) into c->used;
 * when over `target`, delete the least recently used down to it.  Called with
 * c->lock held (or before the cache is shared).  0 or -errno of opendir.
 */
static int cache_scan(struct cache *c, uint64_t target, int drop_tmp)
{
	struct entry *e = NULL, *p;
	size_t n = 0, cap = 0, i;
	struct dirent *d;
	struct stat st;
	uint64_t total = 0;
	DIR *dir = opendir(c->dir);
	int rc = 0;

	if (!dir) {
		rc = -errno;
		goto out;
	}
	while ((d = readdir(dir)) != NULL) {
		/* a temporary older than a minute was left by a crash (another
		 * mount sharing the directory may be writing younger ones) */
		if (drop_tmp && !strncmp(d->d_name, ".tmp.", 5)) {
			if (!fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) &&
			    st.st_mtime < time(NULL) - 60)
				(void)unlinkat(dirfd(dir), d->d_name, 0);
			continue;
		}
		if (!entry_is_chunk(d->d_name) || strlen(d->d_name) >= sizeof(e->name) ||
		    fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			p = realloc(e, cap * sizeof(*e));
			if (!p) {
				rc = -ENOMEM;
				goto out;
			}
			e = p;
		}
		strcpy(e[n].name, d->d_name);
		e[n].mtime = st.st_mtime;
		e[n].bytes = (uint64_t)st.st_blocks * 512;
		total += e[n].bytes;
		n++;
	}
	if (total > target) {
		qsort(e, n, sizeof(*e), entry_cmp);
		for (i = 0; i < n && total > target; i++) {
			if (unlinkat(dirfd(dir), e[i].name, 0) == 0 || errno == ENOENT)
				total -= e[i].bytes;
		}
	}
	c->used = total;
out:
	if (dir)
		closedir(dir);
	free(e);
	return rc;
}

/* Write chunk idx (len bytes at data) into the cache; failures only log. */
static void chunk_store(struct cache_reader *r, uint64_t idx, const char *data, size_t len)
{
	struct cache *c = r->c;
	char path[PATH_MAX], tmp[PATH_MAX];
	struct chunk_hdr h;
	unsigned long seq;
	int fd = -1, off, err = 0;
	ssize_t n;

	pthread_mutex_lock(&c->lock);
	off = c->store_off;
	seq = ++c->tmp_seq;
	pthread_mutex_unlock(&c->lock);
	if (off)
		return;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, CACHE_MAGIC, sizeof(h.magic));
	memcpy(h.obj_sha, r->obj_sha, sizeof(h.obj_sha));
	h.obj_size = r->size;
	h.off = idx * CACHE_CHUNK;
	h.len = (uint32_t)len;
	h.crc = (uint32_t)crc32(0, (const Bytef *)data, (uInt)len);
	chunk_path(r, idx, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s/.tmp.%s-%08llx.%ld.%lu", c->dir, r->hex,
		 (unsigned long long)idx, (long)getpid(), seq);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		err = errno;
		goto out;
	}
	n = pwrite(fd, &h, sizeof(h), 0);
	if (n == (ssize_t)sizeof(h))
		n = len ? pwrite(fd, data, len, sizeof(h)) : 0;
	else if (n >= 0)
		n = -2;       /* short header write */
	if (n != (ssize_t)len) {
		err = n == -1 ? errno : ENOSPC;   /* a short write: the disk is full */
		goto out;
	}
	if (close(fd)) {
		fd = -1;
		err = errno;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path)) {
		err = errno;
		goto out;
	}
	pthread_mutex_lock(&c->lock);
	c->used += disk_bytes(sizeof(h) + len);
	if (c->used > c->limit && cache_scan(c, c->limit / 10 * 9, 0))
		c->used = 0;  /* the directory went away: the next store says so */
	pthread_mutex_unlock(&c->lock);
out:
	if (fd >= 0)
		close(fd);
	if (err) {
		(void)unlink(tmp);
		store_failed(c, "cannot store a chunk", err);
	}
}

/* Open the wrapped backend's reader (on the first miss); its size must be
 * the one cached. */
static int inner_open(struct cache_reader *r)
{
	uint64_t size;
	int rc = 0;

	if (r->in)
		goto out;
	rc = backend_reader_open(r->c->inner, r->obj, &r->in, &size);
	if (rc == 0 && size != r->size) {
		log_err("read cache: %s has %llu bytes in storage, %llu in the cache", r->obj,
			(unsigned long long)size, (unsigned long long)r->size);
		backend_reader_close(r->in);
		r->in = NULL;
		rc = -EIO;
	}
out:
	return rc;
}

/* Chunk idx into r->chunk, from the cache or the wrapped backend. */
static int chunk_get(struct cache_reader *r, uint64_t idx)
{
	size_t want = chunk_want(r, idx), got, n;
	int rc;

	r->chunk_off = UINT64_MAX;
	rc = chunk_load(r, idx, want, r->chunk, NULL);
	if (rc == 0)
		goto done;
	rc = inner_open(r);
	for (got = 0; rc == 0 && got < want; got += n) {
		rc = backend_reader_pread(r->in, r->chunk + got, want - got,
					  idx * CACHE_CHUNK + got, &n);
		if (rc == 0 && n == 0)
			rc = -EIO;    /* shorter than its size said */
	}
	if (rc)
		goto out;
	chunk_store(r, idx, r->chunk, want);
done:
	r->chunk_off = idx * CACHE_CHUNK;
	r->chunk_len = want;
out:
	return rc;
}

/* sha256 of the storage url and the object name: two instances sharing a
 * cache directory never meet.  0 or -ENOMEM. */
static int cache_name_hash(const struct cache *c, const char *obj, unsigned char *sha)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const char *url = c->inner->url ? c->inner->url : "";
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
		 EVP_DigestUpdate(ctx, url, strlen(url) + 1) &&
		 EVP_DigestUpdate(ctx, obj, strlen(obj)) &&
		 EVP_DigestFinal_ex(ctx, sha, NULL);

	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -ENOMEM;
}

static int cache_reader_open(struct backend *b, const char *obj, struct backend_reader **out,
			     uint64_t *size)
{
	struct cache *c = cache_of(b);
	struct cache_reader *r = calloc(1, sizeof(*r));
	int rc = 0, i;

	*out = NULL;
	if (!r || !(r->obj = strdup(obj)) || !(r->chunk = malloc(CACHE_CHUNK))) {
		rc = -ENOMEM;
		goto out;
	}
	r->base.b = b;
	r->c = c;
	r->chunk_off = UINT64_MAX;
	if (cache_name_hash(c, obj, r->obj_sha)) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < CACHE_NAME_HEX / 2; i++)
		snprintf(r->hex + 2 * i, 3, "%02x", r->obj_sha[i]);
	/* chunk 0 cached: its header has the size, and storage is not asked */
	if (chunk_load(r, 0, 0, r->chunk, &r->size) == 0) {
		r->chunk_off = 0;
		r->chunk_len = chunk_want(r, 0);
	} else {
		rc = backend_reader_open(c->inner, obj, &r->in, &r->size);
	}
	if (rc == 0) {
		*size = r->size;
		*out = &r->base;
	}
out:
	if (rc && r) {
		free(r->chunk);
		free(r->obj);
		free(r);
	}
	return rc;
}

static int cache_reader_pread(struct backend_reader *br, void *buf, size_t len, uint64_t off,
			      size_t *got)
{
	struct cache_reader *r = cache_reader_of(br);
	size_t n;
	int rc = 0;

	*got = 0;
	if (off >= r->size)
		goto out;
	if (len > r->size - off)
		len = (size_t)(r->size - off);
	while (*got < len && rc == 0) {
		uint64_t pos = off + *got;

		if (r->chunk_off == UINT64_MAX || pos < r->chunk_off ||
		    pos >= r->chunk_off + r->chunk_len) {
			rc = chunk_get(r, pos / CACHE_CHUNK);
			continue;
		}
		n = (size_t)(r->chunk_off + r->chunk_len - pos);
		if (n > len - *got)
			n = len - *got;
		memcpy((char *)buf + *got, r->chunk + (pos - r->chunk_off), n);
		*got += n;
	}
out:
	if (rc)
		*got = 0;
	return rc;
}

static void cache_reader_close(struct backend_reader *br)
{
	struct cache_reader *r;

	if (!br)
		return;
	r = cache_reader_of(br);
	backend_reader_close(r->in);
	free(r->chunk);
	free(r->obj);
	free(r);
}

static int cache_put(struct backend *b, const char *obj, const struct backend_src *src,
		     int *consumed)
{
	return backend_put(cache_of(b)->inner, obj, src, consumed);
}

static int cache_remove(struct backend *b, const char *obj)
{
	return backend_remove(cache_of(b)->inner, obj);
}

static int cache_stat(struct backend *b, const char *obj, uint64_t *size)
{
	return backend_stat(cache_of(b)->inner, obj, size);
}

static int cache_list(struct backend *b, const char *prefix, backend_list_cb cb, void *ctx)
{
	return backend_list(cache_of(b)->inner, prefix, cb, ctx);
}

static int cache_cleanup(struct backend *b, int dry_run, unsigned *n)
{
	return backend_cleanup_incomplete(cache_of(b)->inner, dry_run, n);
}

static int cache_space(struct backend *b, uint64_t *total, uint64_t *avail)
{
	return backend_space(cache_of(b)->inner, total, avail);
}

static void cache_free(struct backend *b)
{
	struct cache *c = cache_of(b);

	backend_free(c->inner);
	pthread_mutex_destroy(&c->lock);
	free(c->dir);
	free(c);
}

static const struct backend_ops cache_ops = {
	.version = BACKEND_OPS_VERSION,
	.name = "cache",
	.put = cache_put,
	.reader_open = cache_reader_open,
	.reader_pread = cache_reader_pread,
	.reader_close = cache_reader_close,
	.remove = cache_remove,
	.stat = cache_stat,
	.list = cache_list,
	.cleanup_incomplete = cache_cleanup,
	.space = cache_space,
	.free = cache_free,
};

int backend_cache_wrap(struct backend *inner, const char *dir, uint64_t limit,
		       struct backend **out)
{
	struct cache *c = calloc(1, sizeof(*c));
	int rc = 0;

	*out = inner;
	if (!c || !(c->dir = strdup(dir))) {
		rc = -ENOMEM;
		goto out;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		rc = -errno;
		log_err("read cache %s: cannot create it: %s; reading without the cache", dir,
			strerror(errno));
		goto out;
	}
	c->limit = limit;
	rc = cache_scan(c, limit, 1);
	if (rc) {
		log_err("read cache %s: %s; reading without the cache", dir, strerror(-rc));
		goto out;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->base.ops = &cache_ops;
	c->base.url = inner->url;   /* borrowed: messages show the storage */
	c->inner = inner;
	*out = &c->base;
	log_info("read cache %s: %llu of %llu MiB used", dir,
		 (unsigned long long)(c->used >> 20), (unsigned long long)(limit >> 20));
out:
	if (rc && c) {
		free(c->dir);
		free(c);
	}
	return rc;
}
