/*
 * hash.h — streaming content hashes of an artifact.
 *
 * lamfs computes, in one pass where it can, the LaminDB hash (md5 of the whole
 * file up to LAMFS_HASH_CHUNK bytes; above that sha1(sha1(first chunk) ||
 * sha1(last chunk)), url-safe base64 cut to 22 characters) and a sha256 of the
 * whole content.  The caller feeds bytes in order; the last chunk of a large
 * file cannot be known while streaming, so hash_finish() reads it back from the
 * file descriptor it is given.
 *
 * Not thread-safe per object; distinct objects are independent.
 */
#ifndef LAMFS_HASH_H
#define LAMFS_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "lamfs.h"

struct hash_state;

struct hash_result {
	char hash[LAMFS_HASH_LEN + 1];
	char hash_type[LAMFS_HASH_TYPE_MAX + 1];   /* "md5" or "sha1-fl" */
	char checksum[LAMFS_CHECKSUM_LEN + 1];      /* sha256, hex */
	unsigned char md5[16];                      /* md5 of the whole content, */
	int md5_ok;                                 /* when this is 1: only up to
						     * LAMFS_HASH_CHUNK bytes (beyond,
						     * nothing needs it) */
	uint64_t size;
};

/* Allocates a state; returns 0 or -ENOMEM.  Free with hash_free(). */
int hash_new(struct hash_state **out);
void hash_free(struct hash_state *h);
/* Forget everything fed so far. */
void hash_reset(struct hash_state *h);
/* Feed the next len bytes (in order). */
void hash_update(struct hash_state *h, const void *buf, size_t len);
/* Bytes fed so far. */
uint64_t hash_fed(const struct hash_state *h);
/*
 * Finish.  `fd` must hold exactly the bytes fed (hash_fed(h) bytes); for files
 * above LAMFS_HASH_CHUNK the last chunk is pread from it.  Returns 0 or -errno
 * from the read (-EIO when fd holds fewer bytes).  The state must be reset
 * before reuse: a second finish returns -EINVAL and hash_update() after a
 * finish is ignored.  On error *out is zeroed.
 */
int hash_finish(struct hash_state *h, int fd, struct hash_result *out);
/* Hash a whole file from offset 0 (re-hash after out-of-order writes). */
int hash_fd(int fd, struct hash_result *out);
/* hash_fd, calling progress(ctx, bytes read so far) after every chunk
 * (progress may be NULL). */
int hash_fd_progress(int fd, void (*progress)(void *ctx, uint64_t done), void *ctx,
		     struct hash_result *out);

/*
 * A follower: a thread that feeds h from fd behind a writer, so the hashing
 * runs beside the writes instead of inside them.  Between start and stop the
 * caller must not touch h; it promises with extend that fd holds the final
 * bytes of [0, limit), and limit only grows.
 *
 * hash_follow_start: the follower begins at hash_fed(h); 0, -ENOMEM or the
 * -errno of pthread_create (the caller then hashes inline).
 * hash_follow_stop: with `complete`, waits until h has been fed up to the
 * last limit and returns 0, or the -errno of a failed read (h is then short:
 * re-hash); without it, stops as soon as it can and h is partial.  Frees f;
 * h is the caller's again.
 */
struct hash_follower;

int hash_follow_start(struct hash_state *h, int fd, struct hash_follower **out);
void hash_follow_extend(struct hash_follower *f, uint64_t limit);
int hash_follow_stop(struct hash_follower *f, int complete);

/* url-safe base64 without '=' of len bytes into out (size >= 4*ceil(len/3)+1). */
void hash_b64url(const unsigned char *in, size_t len, char *out);

/* len bytes as 2*len lowercase hex digits and a NUL into out. */
void hash_hex(const unsigned char *in, size_t len, char *out);

#endif
