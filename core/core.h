/*
 * core.h — the save/read/delete logic that owns lamfs's invariants.
 *
 * The core knows the metadata store (meta/) and the storage backend
 * (backend/), never FUSE: the daemon (fs/), the CLI and lamfs-repair all link
 * it.  Every function returns 0 (or a byte count where said) or a negative
 * errno that fs/ hands to the kernel unchanged.
 *
 * The save sequence (DESIGN.md), run by core_save():
 *   stage: writes go to a staging file, hashed as they stream in
 *   fsync staging, finish hashes               (fault point save.staged)
 *   meta_save_begin: insert the record flagged  (fault point save.flagged;
 *     committed lazily: the finish's durable commit makes it durable; a
 *     deferred save, whose close() returns here, commits it durably)
 *   backend_put: upload                          (fault point save.uploaded)
 *   meta_save_finish: clear the flag, move is_latest
 *   drop staging
 * On any failure after the insert: meta_save_abort, remove any object, drop
 * staging; the caller gets the errno.  A failed save leaves nothing.
 *
 * Thread-safety: a struct core is shared by every FUSE thread.  A stage or a
 * reader is used by one thread at a time (fs/ locks its file handle).
 */
#ifndef LAMFS_CORE_H
#define LAMFS_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lamfs.h"
#include "meta.h"

struct core;
struct core_stage;
struct core_reader;

enum core_open_flags {
	CORE_READONLY = 1u << 0,  /* open meta read-only, never write anything */
	CORE_READ_CACHE = 1u << 1, /* read through the [cache] of lamfs.conf, if any
				    * (the mount; never repair, which must see storage) */
};

/*
 * Open the instance in directory `instance`: its config, metadata store,
 * storage backend and staging folder.  On failure *errmsg (if not NULL) gets a
 * one-line explanation for the user, which the caller frees:
 *   -ENOENT   not an instance (no lamfs.conf) / database missing
 *   -EPROTO   database from a newer lamfs
 *   -EBADMSG  config or database damaged
 *   -EACCES   permission denied on a part of it
 */
int core_open(const char *instance, unsigned flags, struct core **out, char **errmsg);
void core_close(struct core *c);

/*
 * Instance lock (INSTANCE/lamfs.lock, flock): every mount holds it shared for
 * its lifetime; lamfs-repair takes it exclusive, so it never runs beside a
 * live mount.  -EBUSY when it cannot be had now.  Released by core_close().
 */
int core_lock(struct core *c, int exclusive);

/* The handles inside, for tools that need them (repair, status). */
struct meta *core_meta(struct core *c);
struct backend *core_backend(struct core *c);
const char *core_instance_dir(const struct core *c);
const char *core_staging_dir(const struct core *c);

/* ---- names ---- */

/* What is visible at key ("" root).  Hidden names (.lamindb, .lamfs) -ENOENT. */
int core_lookup(struct core *c, const char *key, struct meta_entry *out);
int core_readdir(struct core *c, const char *key, meta_dirent_cb cb, void *ctx);

/* ---- staging and saving ---- */

/*
 * A stage is a private staging file holding the next content of one key.
 * base: the record whose bytes the stage starts from (copy-on-write for an
 * overwrite without O_TRUNC), or NULL to start empty.
 */
int core_stage_open(struct core *c, const struct lamfs_record *base, struct core_stage **out);
/* Write len bytes at off; returns len or -errno (-ENOSPC on a full staging disk). */
ssize_t core_stage_write(struct core_stage *s, const void *buf, size_t len, uint64_t off);
/* Read into buf; returns the byte count (short at the end) or -errno. */
ssize_t core_stage_pread(struct core_stage *s, void *buf, size_t len, uint64_t off);
int core_stage_truncate(struct core_stage *s, uint64_t size);
uint64_t core_stage_size(const struct core_stage *s);
/* 1 when the stage holds bytes not yet saved (written, truncated, or new). */
int core_stage_dirty(const struct core_stage *s);
/* Make the stage hold its own copy of the bytes it started from (an
 * overwrite copies them lazily), before those bytes are deleted. */
int core_stage_materialize(struct core_stage *s);
/* Drop the stage and its staging file. */
void core_stage_free(struct core_stage *s);

/* POSIX attributes a save records. */
struct core_attrs {
	uint32_t mode;       /* permission bits */
	uint32_t owner_uid;
	uint32_t owner_gid;
	int64_t mtime_ns;    /* 0: now */
};

/*
 * Save the stage's content as the next version of `key` (the whole sequence
 * above; synchronous).  Identical content at key makes nothing new; a flagged
 * record with the same content is resumed (same uid).  On 0 the stage is clean
 * and *out (if not NULL) is the committed record.  Errors: -EACCES/-EPERM
 * upload denied, -ENOSPC full, -EIO the rest, key errors from key_check(),
 * -EISDIR/-ENOTDIR from the store.  On error nothing of this save remains and
 * the stage is still dirty (the caller may retry).
 */
int core_save(struct core *c, struct core_stage *s, const char *key,
	      const struct core_attrs *attrs, struct lamfs_record *out);

/*
 * Write-back: like core_save, but return once the staging file is durable and
 * the flagged record is committed; the staging file is handed over as
 * INSTANCE/staging/<uid> and the upload is left to core_upload_flagged().
 * *staged_fd is the open staging file, holding its owner's lock (flock): the
 * caller keeps it open until the upload is done, then closes it; -1 when
 * nothing is pending (identical content).  The stage becomes clean; reading
 * it again needs the upload to have finished (else -EIO).
 */
int core_save_deferred(struct core *c, struct core_stage *s, const char *key,
		       const struct core_attrs *attrs, struct lamfs_record *out, int *staged_fd);

/*
 * Remove the staging files ("w.*") that no live process holds: writers that
 * died with their daemon.  Each live stage holds an flock on its file, so a
 * file of another live mount is never touched.  *n counts the removed ones.
 */
int core_staging_sweep(struct core *c, unsigned *n);

/*
 * A writer that died between the commit of its flagged record and the rename
 * of its staging file to staging/<uid> left the record's bytes in an anonymous
 * "w.*" file (fsynced and hashed before the commit).  Find an unowned one
 * holding exactly rec's bytes (size and sha256) and, unless dry, rename it
 * staging/<uid>, so the save can be completed like any other pending one.
 * name (if not NULL, len bytes) gets the w.* name.  0 found (renamed unless
 * dry), -ENOENT none, -EEXIST staging/<uid> exists already, -errno.
 */
int core_staged_adopt(struct core *c, const struct lamfs_record *rec, int dry, char *name,
		      size_t len);

/*
 * For a mount starting up, before core_staging_sweep: core_staged_adopt for
 * every flagged record without a staging/<uid>, if any unowned w.* file could
 * hold its bytes (the store is read only when one of the right size exists).
 * *n counts the adopted files.
 */
int core_staging_adopt(struct core *c, unsigned *n);

/*
 * Every staging/<uid> of a save in flight is locked (flock, exclusive) by the
 * process that owns the save, for as long as it does.  Take that lock: on 0
 * *fd is the locked file (the caller closes it); -EBUSY when a live process
 * owns it (another mount: leave it alone), -ENOENT when there is no file.
 */
int core_staged_lock(struct core *c, const char *uid, int *fd);

/*
 * Finish the upload of a storage-ongoing record from INSTANCE/staging/<uid>
 * (write-back worker, lamfs-repair, a mount resuming its queue): check the
 * staged bytes against the record's size and checksum, upload, clear the flag,
 * drop the staging file.  locked_fd: the file as locked by core_staged_lock or
 * handed over by core_save_deferred (not closed here), or -1 to take the lock
 * here.  Errors: -ENOENT no such flagged record or no staging file, -EBUSY
 * another process owns the save, -EBADMSG staged bytes do not match the
 * record, backend errnos (the record stays flagged, ready for another try).
 */
int core_upload_flagged(struct core *c, const char *uid, int locked_fd);

/*
 * Roll a storage-ongoing record back: delete the record (the previous version
 * stays latest), then any object under its name, then its staging file.
 * -EBUSY when the record is no longer flagged (never deletes a committed one).
 */
int core_rollback_flagged(struct core *c, const char *uid);

/* The staging path of a flagged record's bytes: INSTANCE/staging/<uid>. */
void core_staging_path(const struct core *c, const char *uid, char *out, size_t outlen);

/* Save a local file (CLI `lamfs save`): a writer of the open-file API
 * (open.h) that copies the file in and saves it (core_save); in open.c.
 * attrs NULL: mode 0644, the caller's ids, mtime now (as core_save). */
int core_save_path(struct core *c, const char *path, const char *key,
		   const struct core_attrs *attrs, struct lamfs_record *out);

/* ---- namespace ---- */

int core_unlink(struct core *c, const char *key);
/* flags: META_RENAME_NOREPLACE; RENAME_EXCHANGE is not supported (-EINVAL). */
int core_rename(struct core *c, const char *from, const char *to, unsigned flags);
int core_mkdir(struct core *c, const char *key, const struct core_attrs *attrs);
int core_rmdir(struct core *c, const char *key);
int core_setattr(struct core *c, const char *key, unsigned mask, const struct meta_attr *a);

struct core_statfs {
	uint64_t files;
	uint64_t bytes;
	uint64_t space_total;    /* 0 when the backend cannot say */
	uint64_t space_avail;
};
int core_statfs(struct core *c, struct core_statfs *out);

/* ---- reading a stored version ---- */

/* The committed version with this uid (any version, latest or not).  -ENOENT
 * for malformed uids, unknown ones and saves still in flight. */
int core_version(struct core *c, const char *uid, struct lamfs_record *out);

int core_reader_open(struct core *c, const struct lamfs_record *rec, struct core_reader **out);
/* Returns the byte count (short only at the end) or -errno. */
ssize_t core_reader_pread(struct core_reader *r, void *buf, size_t len, uint64_t off);
void core_reader_close(struct core_reader *r);

/* ---- the user.lamfs.* extended attributes ---- */

/* Value of xattr `name` for rec into buf (not NUL-terminated); returns its
 * length, -ENODATA for an unknown name, -ERANGE when size is too small
 * (size 0 asks for the length). */
ssize_t core_xattr_get(const struct lamfs_record *rec, const char *name, char *buf, size_t size);
/* NUL-separated list of the names, as listxattr(2). */
ssize_t core_xattr_list(char *buf, size_t size);

#endif
