/*
 * backend.h — storage backends behind one ops table.
 *
 * A backend stores objects under a root (a local directory, an S3 bucket and
 * prefix).  Object names are relative to the root: ".lamindb/<uid><suffix>".
 * Contracts every backend keeps (the contract suite in tests/ checks them):
 *  - put is atomic: a reader sees the old object, no object, or the whole new
 *    one, never a part, under the final name; on error nothing is left under
 *    the final name and no temporary is left behind (best effort on a crash:
 *    temporaries are named so lamfs-repair finds them);
 *  - put returns only once the object is durable (fsync / S3 200 OK);
 *  - a short read happens only at the end of the object;
 *  - errors are negative errnos: -ENOENT missing, -EACCES/-EPERM denied,
 *    -ENOSPC full, -EIO the rest (see each backend for its mapping).
 *
 * Call backends only through the backend_*() wrappers (backend.c): one place
 * for argument checks, tracing and fault injection (fault.h points
 * "backend.put", "backend.read", "backend.remove").
 *
 * Backends are thread-safe: one handle serves every FUSE thread.  A reader is
 * used by one thread at a time.
 */
#ifndef LAMFS_BACKEND_H
#define LAMFS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

struct backend;
struct backend_reader;

/* What put uploads: a complete, fsynced staging file and what is known of it. */
struct backend_src {
	const char *path;          /* staging file */
	int fd;                    /* open read fd on it (position unspecified) */
	uint64_t size;
	const unsigned char *md5;  /* 16 bytes, md5 of the whole content, or NULL */
	const char *sha256_hex;    /* sha256 of the whole content, or NULL */
	int may_consume;           /* the backend may hard-link `path` into storage
	                              (the object then shares the staging inode) */
	int synced;                /* the caller has fsynced fd: its bytes are
	                              durable, a linking put need not sync again */
	const char *key;           /* the artifact's key, kept with the object where
	                              the backend can (local: the xattr
	                              user.lamfs.key), so that an object saved after
	                              a metadata backup can be registered again at
	                              its key; NULL: none */
	/* Called with the bytes of fd as a backend reads them to store them,
	 * in order, once each (the local backend's copy); a backend that reads
	 * otherwise (S3's parallel parts) does not call it.  Lets the caller
	 * hash what was sent and show progress.  NULL: none. */
	void (*on_read)(void *ctx, const void *buf, size_t len);
	void *on_read_ctx;
};

/* Listing callback: object name relative to the root, its size.  Non-zero stops. */
typedef int (*backend_list_cb)(void *ctx, const char *name, uint64_t size);

#define BACKEND_OPS_VERSION 1

struct backend_ops {
	unsigned version;          /* BACKEND_OPS_VERSION */
	const char *name;          /* "local", "s3" */
	/* Store src as `obj`.  An existing object of that name is never
	 * replaced: when it holds the same bytes the put succeeds without
	 * writing (a resumed save), else it fails with -EEXIST (a restored
	 * metadata backup must not clobber what was saved after it).  Sets *consumed
	 * to 1 when it hard-linked src->path into storage instead of copying (only
	 * when src->may_consume; the staging name stays, and the caller must never
	 * write that file again).  The staging file is intact either way, so a
	 * caller can still roll back and retry. */
	int (*put)(struct backend *b, const char *obj, const struct backend_src *src,
		   int *consumed);
	/* Open obj for reading; -ENOENT when missing.  *size is its size. */
	int (*reader_open)(struct backend *b, const char *obj, struct backend_reader **out,
			   uint64_t *size);
	/* Read up to len bytes at off into buf; *got < len only at the end. */
	int (*reader_pread)(struct backend_reader *r, void *buf, size_t len, uint64_t off,
			    size_t *got);
	void (*reader_close)(struct backend_reader *r);
	/* Delete obj; -ENOENT when it was not there. */
	int (*remove)(struct backend *b, const char *obj);
	/* Size of obj; -ENOENT when missing. */
	int (*stat)(struct backend *b, const char *obj, uint64_t *size);
	/* Every object whose name starts with prefix (temporaries included), at
	 * any depth.  Returns 0, the callback's non-zero value when it stopped
	 * the listing, or -errno.  A prefix with no objects is not an error. */
	int (*list)(struct backend *b, const char *prefix, backend_list_cb cb, void *ctx);
	/* Abort/remove interrupted uploads left by earlier runs (S3 multipart,
	 * local temporaries); *n counts them.  May be NULL. */
	int (*cleanup_incomplete)(struct backend *b, int dry_run, unsigned *n);
	/* Free space in bytes for statfs, or -ENOTSUP.  May be NULL. */
	int (*space)(struct backend *b, uint64_t *total, uint64_t *avail);
	void (*free)(struct backend *b);
	/* put itself refuses atomically to replace an object (local:
	 * renameat2 RENAME_NOREPLACE).  0: backend_put() checks first with
	 * stat (S3: a HEAD), which a concurrent writer of the same name
	 * could race, and which only refuses when it sees the object (a HEAD
	 * that fails lets the put go on); lamfs's names carry fresh uids, so
	 * only a restored backup's next versions can meet an object. */
	int put_noreplace;
};

/* The base every backend embeds first. */
struct backend {
	const struct backend_ops *ops;
	char *url;                 /* as configured, no secrets in it */
};

/*
 * Open the backend for a storage url: an absolute path or "file:///abs" (local),
 * "s3://bucket[/prefix]" (S3, with AWS_* settings from the environment or
 * `opts`).  `opts` may be NULL.  On failure *errmsg (when not NULL) gets a
 * one-line explanation the caller frees.  Free the handle with backend_free().
 */
struct backend_opts {
	const char *s3_endpoint;   /* overrides AWS_ENDPOINT_URL */
	const char *s3_region;     /* overrides AWS_REGION */
	const char *s3_profile;    /* overrides AWS_PROFILE */
	int s3_create;             /* init: check the bucket is reachable and writable */
	const char *cache_dir;     /* read cache (cache.c) in this directory, or NULL */
	uint64_t cache_size;       /* its size limit in bytes; 0: no cache */
};
int backend_open(const char *url, const struct backend_opts *opts, struct backend **out,
		 char **errmsg);
void backend_free(struct backend *b);

/* Wrappers: the only callers of the ops table. */
int backend_put(struct backend *b, const char *obj, const struct backend_src *src,
		int *consumed);
int backend_reader_open(struct backend *b, const char *obj, struct backend_reader **out,
			uint64_t *size);
int backend_reader_pread(struct backend_reader *r, void *buf, size_t len, uint64_t off,
			 size_t *got);
void backend_reader_close(struct backend_reader *r);
int backend_remove(struct backend *b, const char *obj);
int backend_stat(struct backend *b, const char *obj, uint64_t *size);
int backend_list(struct backend *b, const char *prefix, backend_list_cb cb, void *ctx);
int backend_cleanup_incomplete(struct backend *b, int dry_run, unsigned *n);
int backend_space(struct backend *b, uint64_t *total, uint64_t *avail);
const char *backend_name(const struct backend *b);

/*
 * For backend implementations only (callers use the wrappers above).
 *
 * The base every backend's reader embeds first, so the wrappers can find the
 * ops table of the backend that opened it.  reader_open sets `b`.
 */
struct backend_reader {
	struct backend *b;
};

/* 1 when obj holds exactly the bytes of src (read through b and compared),
 * 0 when it differs, -errno when it cannot be read (-ENOENT: missing). */
int backend_same_content(struct backend *b, const char *obj, const struct backend_src *src);

/* Set *errmsg (when errmsg is not NULL) to a newly allocated, printf-formatted
 * one-line message the caller frees; any earlier message is freed first.
 * Allocation failure leaves *errmsg NULL. */
void backend_set_errmsg(char **errmsg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Local directory backend (backend/local.c).  root must exist; "<root>/.lamindb"
 * is created (mode 0700) when missing.  Errors: -ENOENT root missing, -ENOTDIR,
 * -EACCES when ".lamindb" is not writable (also on a read-only file system).
 * Temporaries: "<root>/.lamindb/.tmp.<name>.<random>".  put renames the staging
 * file in when src->may_consume and it is on the same file system, else copies.
 * Errors keep the system call's errno, except EROFS -> EACCES (a read-only
 * storage root denies the upload). */
int backend_local_open(const char *root, struct backend **out, char **errmsg);

/*
 * Read cache (backend/cache.c): wrap `inner` so reads are served from chunk
 * files in `dir` (made, mode 0700, when missing) and stored there on a miss,
 * keeping the files under `limit` bytes (least recently used go first).
 * Objects must never change under a name (lamfs's names carry the uid).
 * Every other op goes to inner.  Sets *out to the wrapper, which owns inner
 * (backend_free frees both), and returns 0; when the directory cannot be
 * used it logs why, sets *out to inner itself and returns -errno: reading
 * works, uncached.  Cache errors later never fail a read either.
 */
int backend_cache_wrap(struct backend *inner, const char *dir, uint64_t limit,
		       struct backend **out);

#endif
