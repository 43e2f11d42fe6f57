/*
 * hash.c — streaming LaminDB hash (md5 / sha1-fl) and sha256 checksum.
 *
 * One pass feeds sha256 with every byte, and md5 and sha1 with the first
 * LAMFS_HASH_CHUNK bytes (md5 is needed only when that is all there is: for
 * the hash, and for S3's Content-MD5 of a single PUT; it is the slowest of
 * the three on CPUs with SHA extensions).  hash_finish() decides, as
 * LaminDB's hash_file does:
 *   size <= CHUNK: md5 of everything, type "md5";
 *   size >  CHUNK: sha1(sha1(first CHUNK) || sha1(last CHUNK)), "sha1-fl",
 * then url-safe base64 without '=' cut to 22 characters.  The last chunk is
 * read back from the file, since it is unknown until the end of the stream.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "hash.h"

#define HASH_IO_SIZE (1024 * 1024)

struct hash_state {
	EVP_MD_CTX *md5;
	EVP_MD_CTX *sha256;
	EVP_MD_CTX *sha1_first;   /* over the first LAMFS_HASH_CHUNK bytes */
	uint64_t fed;
	int finished;             /* finish called; reset before reuse */
};

void hash_free(struct hash_state *h)
{
	if (h) {
		EVP_MD_CTX_free(h->md5);
		EVP_MD_CTX_free(h->sha256);
		EVP_MD_CTX_free(h->sha1_first);
		free(h);
	}
}

/* (Re)initialise the three digests; 0 or -ENOMEM (OpenSSL only fails to
 * initialise a digest for lack of memory or a missing provider). */
static int hash_init(struct hash_state *h)
{
	int ok = EVP_DigestInit_ex(h->md5, EVP_md5(), NULL) &&
		 EVP_DigestInit_ex(h->sha256, EVP_sha256(), NULL) &&
		 EVP_DigestInit_ex(h->sha1_first, EVP_sha1(), NULL);

	h->fed = 0;
	h->finished = 0;
	return ok ? 0 : -ENOMEM;
}

int hash_new(struct hash_state **out)
{
	struct hash_state *h = calloc(1, sizeof(*h));
	int rc = -ENOMEM;

	*out = NULL;
	if (!h)
		goto out;
	h->md5 = EVP_MD_CTX_new();
	h->sha256 = EVP_MD_CTX_new();
	h->sha1_first = EVP_MD_CTX_new();
	if (!h->md5 || !h->sha256 || !h->sha1_first)
		goto out;
	rc = hash_init(h);
	if (rc == 0) {
		*out = h;
		h = NULL;
	}
out:
	hash_free(h);
	return rc;
}

void hash_reset(struct hash_state *h)
{
	/* Cannot fail once the contexts exist: the algorithms were fetched. */
	(void)hash_init(h);
}

void hash_update(struct hash_state *h, const void *buf, size_t len)
{
	if (len == 0 || h->finished)
		return;
	EVP_DigestUpdate(h->sha256, buf, len);
	if (h->fed < LAMFS_HASH_CHUNK) {
		uint64_t room = LAMFS_HASH_CHUNK - h->fed;
		size_t n = len < room ? len : (size_t)room;

		EVP_DigestUpdate(h->md5, buf, n);
		EVP_DigestUpdate(h->sha1_first, buf, n);
	}
	h->fed += len;
}

uint64_t hash_fed(const struct hash_state *h)
{
	return h->fed;
}

void hash_b64url(const unsigned char *in, size_t len, char *out)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i;
	char *o = out;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		*o++ = tbl[v >> 18 & 63];
		*o++ = tbl[v >> 12 & 63];
		*o++ = tbl[v >> 6 & 63];
		*o++ = tbl[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		*o++ = tbl[v >> 18 & 63];
		*o++ = tbl[v >> 12 & 63];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		*o++ = tbl[v >> 18 & 63];
		*o++ = tbl[v >> 12 & 63];
		*o++ = tbl[v >> 6 & 63];
	}
	*o = '\0';
}

/* Store the 22-character LaminDB hash of digest in out->hash. */
static void hash_store_b64(const unsigned char *digest, size_t len, struct hash_result *out)
{
	char b64[64];

	hash_b64url(digest, len, b64);
	memcpy(out->hash, b64, LAMFS_HASH_LEN);
	out->hash[LAMFS_HASH_LEN] = '\0';
}

/* sha1 of the `len` bytes of fd at off, pread in HASH_IO_SIZE pieces.
 * 0, -errno, or -EIO when the file is shorter than promised. */
static int sha1_of_range(int fd, uint64_t off, uint64_t len, unsigned char digest[20])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *buf = malloc(HASH_IO_SIZE);
	int rc = 0;

	if (!ctx || !buf || !EVP_DigestInit_ex(ctx, EVP_sha1(), NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	while (len > 0) {
		size_t want = len < HASH_IO_SIZE ? (size_t)len : HASH_IO_SIZE;
		ssize_t n = pread(fd, buf, want, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;   /* EOF: fd holds fewer bytes than fed */
			goto out;
		}
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	EVP_DigestFinal_ex(ctx, digest, NULL);
out:
	free(buf);
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* The sha1-fl hash: sha1(sha1(first chunk) || sha1(last chunk)). */
static int hash_finish_sha1fl(struct hash_state *h, int fd, struct hash_result *out)
{
	unsigned char both[40];
	unsigned char digest[20];
	int rc;

	EVP_DigestFinal_ex(h->sha1_first, both, NULL);
	rc = sha1_of_range(fd, h->fed - LAMFS_HASH_CHUNK, LAMFS_HASH_CHUNK, both + 20);
	if (rc == 0) {
		EVP_Digest(both, sizeof(both), digest, NULL, EVP_sha1(), NULL);
		hash_store_b64(digest, sizeof(digest), out);
		strcpy(out->hash_type, "sha1-fl");
	}
	return rc;
}

void hash_hex(const unsigned char *in, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int hash_finish(struct hash_state *h, int fd, struct hash_result *out)
{
	unsigned char sha256[32];
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (h->finished) {
		rc = -EINVAL;
		goto out;
	}
	h->finished = 1;
	out->size = h->fed;
	EVP_DigestFinal_ex(h->md5, out->md5, NULL);
	out->md5_ok = h->fed <= LAMFS_HASH_CHUNK;
	if (!out->md5_ok)
		memset(out->md5, 0, sizeof(out->md5));   /* of the first chunk only */
	EVP_DigestFinal_ex(h->sha256, sha256, NULL);
	hash_hex(sha256, sizeof(sha256), out->checksum);
	if (h->fed <= LAMFS_HASH_CHUNK) {
		hash_store_b64(out->md5, sizeof(out->md5), out);
		strcpy(out->hash_type, "md5");
	} else {
		rc = hash_finish_sha1fl(h, fd, out);
	}
out:
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

int hash_fd(int fd, struct hash_result *out)
{
	return hash_fd_progress(fd, NULL, NULL, out);
}

int hash_fd_progress(int fd, void (*progress)(void *ctx, uint64_t done), void *ctx,
		     struct hash_result *out)
{
	struct hash_state *h = NULL;
	unsigned char *buf = malloc(HASH_IO_SIZE);
	uint64_t off = 0;
	int rc = buf ? hash_new(&h) : -ENOMEM;

	while (rc == 0) {
		ssize_t n = pread(fd, buf, HASH_IO_SIZE, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = -errno;
		if (n <= 0)
			break;
		hash_update(h, buf, (size_t)n);
		off += (uint64_t)n;
		if (progress)
			progress(ctx, off);
	}
	if (rc == 0)
		rc = hash_finish(h, fd, out);
	hash_free(h);
	free(buf);
	return rc;
}

/* ---- the follower ---- */

struct hash_follower {
	struct hash_state *h;   /* fed by the thread only, until stop */
	int fd;
	unsigned char *buf;     /* the thread's read buffer */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;      /* limit grew, or stop was asked */
	uint64_t limit;         /* lock: the writer's promise, [0, limit) in fd */
	int stop;               /* lock: 1 complete and stop, 2 stop at once */
	int err;                /* lock: -errno of a failed read; the thread ended */
};

static void *follow_main(void *p)
{
	struct hash_follower *f = p;
	uint64_t pos = f->h->fed, limit;
	ssize_t n;
	int stop;

	pthread_mutex_lock(&f->lock);
	for (;;) {
		while (f->limit == pos && !f->stop)
			pthread_cond_wait(&f->cv, &f->lock);
		limit = f->limit;
		stop = f->stop;
		if (stop == 2 || (stop && limit == pos))
			break;
		pthread_mutex_unlock(&f->lock);
		n = pread(f->fd, f->buf,
			  limit - pos < HASH_IO_SIZE ? (size_t)(limit - pos) : HASH_IO_SIZE,
			  (off_t)pos);
		if (n > 0) {
			hash_update(f->h, f->buf, (size_t)n);
			pos += (uint64_t)n;
		}
		pthread_mutex_lock(&f->lock);
		if (n < 0 && errno != EINTR) {
			f->err = -errno;
			break;
		}
		if (n == 0) {   /* the writer promised bytes the file does not have */
			f->err = -EIO;
			break;
		}
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

static void follow_free(struct hash_follower *f)
{
	if (f) {
		pthread_cond_destroy(&f->cv);
		pthread_mutex_destroy(&f->lock);
		free(f->buf);
		free(f);
	}
}

int hash_follow_start(struct hash_state *h, int fd, struct hash_follower **out)
{
	struct hash_follower *f = calloc(1, sizeof(*f));
	int rc = -ENOMEM;

	*out = NULL;
	if (!f)
		goto out;
	f->h = h;
	f->fd = fd;
	f->limit = h->fed;
	f->buf = malloc(HASH_IO_SIZE);
	if (!f->buf)
		goto out;
	rc = -pthread_mutex_init(&f->lock, NULL);
	if (rc == 0)
		rc = -pthread_cond_init(&f->cv, NULL);
	if (rc == 0)
		rc = -pthread_create(&f->thread, NULL, follow_main, f);
	if (rc == 0) {
		*out = f;
		f = NULL;
	}
out:
	follow_free(f);
	return rc;
}

void hash_follow_extend(struct hash_follower *f, uint64_t limit)
{
	pthread_mutex_lock(&f->lock);
	if (limit > f->limit) {
		f->limit = limit;
		pthread_cond_signal(&f->cv);
	}
	pthread_mutex_unlock(&f->lock);
}

int hash_follow_stop(struct hash_follower *f, int complete)
{
	int rc;

	pthread_mutex_lock(&f->lock);
	f->stop = complete ? 1 : 2;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	rc = f->err;
	follow_free(f);
	return rc;
}
