/*
 * open.h — open files: the writers of one mount and the rules of when they save.
 *
 * A table (struct core_files) holds the files one mount (or one `lamfs save`
 * run) has open.  A writer owns a core stage (its private staging file); a
 * reader holds a committed version, or shares this mount's own writer of a
 * name that has no committed version yet.  The front end (fs/) translates
 * kernel requests into these calls and hands their errno back unchanged; the
 * rules live here:
 *
 *   - close (core_file_flush) saves a file that was written or truncated
 *     through it and returns the save's errno;
 *   - a file only created or opened with O_TRUNC is saved at release instead
 *     (so the close of a dup'ed descriptor, a shell's `>`, makes no empty
 *     version before the writes); a save at release that another save of the
 *     name superseded meanwhile is dropped;
 *   - a write or truncate that failed poisons the file: it is never saved,
 *     and flush/fsync report the error;
 *   - a failed save discards the file (the name vanishes at once);
 *   - with a write-back queue (lamfs's -o writeback) a save returns once the
 *     staged bytes and the flagged record are durable; the upload follows.
 *
 * A file this mount is still writing is visible to this mount (lookups,
 * listings, reads of a name without a committed version); other mounts see
 * only committed records.
 *
 * Errors: 0 or -errno (ssize_t counts where said), as core.h.
 * Thread-safety: every function may be called from any thread.  Lock order:
 * the table's lock before a file's own lock; core calls are made with at most
 * a file's lock held.
 */
#ifndef LAMFS_OPEN_H
#define LAMFS_OPEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core.h"

struct core_files;
struct core_file;
struct upq;

/* A table of open files over c; upq: the write-back queue, or NULL to save
 * synchronously.  Neither is owned. */
int core_files_new(struct core *c, struct upq *upq, struct core_files **out);
/* Free the table; every file must have been released. */
void core_files_free(struct core_files *t);

/* ---- opening ---- */

enum core_file_flags {
	CORE_FILE_TRUNC = 1u << 0,      /* start empty (O_TRUNC, O_CREAT of a new name) */
	CORE_FILE_APPEND = 1u << 1,     /* every write goes to the end (O_APPEND) */
	CORE_FILE_OWN_ATTRS = 1u << 2,  /* save with the attrs given, not those of the
	                                   version it replaces (lamfs save) */
};

/*
 * Open key for writing: a new stage, empty (CORE_FILE_TRUNC, or no committed
 * version) or, lazily, the committed bytes.  a: the attributes a new file
 * gets.  opener: the process that opens (see core_files_truncate_key).
 * Waits for this mount's save of key that is about to land (a file closed but
 * not released yet), and with write-back for its upload.  -EISDIR for a
 * folder, store errors.  *out is released with core_file_release().
 */
int core_file_open_write(struct core_files *t, const char *key, unsigned flags,
			 const struct core_attrs *a, pid_t opener, struct core_file **out);
/* Open key for reading: its committed version, else this mount's unsaved
 * writer of it.  -ENOENT, -EISDIR, store and backend errors. */
int core_file_open_read(struct core_files *t, const char *key, struct core_file **out);
/* Open the committed version uid (/.lamfs/uid/UID), read-only. */
int core_file_open_version(struct core_files *t, const char *uid, struct core_file **out);

/* ---- an open file ---- */

/* 1 for a writer (a stage), 0 for a reader. */
int core_file_is_writer(const struct core_file *f);
/* Read from what f reads (its version, its stage, or the writer it shares).
 * Returns the byte count (short only at the end) or -errno. */
ssize_t core_file_read(struct core_file *f, void *buf, size_t len, uint64_t off);
/* Write to a writer's stage; returns len or -errno (-EBADF for a reader).  An
 * error poisons the file. */
ssize_t core_file_write(struct core_file *f, const void *buf, size_t len, uint64_t off);
/* Set a writer's size; -EBADF for a reader.  An error poisons the file. */
int core_file_truncate(struct core_file *f, uint64_t size);
/* The attributes of what f shows: for a writer its stage's size and the
 * attributes it will be saved with (key, size, mode, owners, mtime_ns,
 * updated_at; no uid), for a reader its version's record. */
void core_file_attr(struct core_file *f, struct lamfs_record *out);
/* Change the attributes a writer will be saved with (mask: META_ATTR_*);
 * the committed record is not touched.  -EBADF for a reader. */
int core_file_set_attrs(struct core_file *f, unsigned mask, const struct meta_attr *a);

/* What a flush, fsync or release did, for the front end's caches. */
struct core_file_done {
	int saved;       /* a save was attempted (its result is the return value) */
	int uploading;   /* the save went to the write-back queue (not committed yet) */
	int writer;      /* f was a writer */
	char key[LAMFS_KEY_MAX + 1]; /* the writer's key at that moment ("" else) */
};

/* close(): save if written or truncated through f (see above).  On error the
 * file is discarded: nothing of it is saved, now or at release. */
int core_file_flush(struct core_file *f, struct core_file_done *done);
/* fsync(): save now if there is anything to save; errors as flush. */
int core_file_fsync(struct core_file *f, struct core_file_done *done);
/*
 * The last reference is gone: save what is left unsaved (unless poisoned or
 * superseded), log a failure (no program can be told), take f off the table
 * and free it.  Returns the save's result.
 */
int core_file_release(struct core_file *f, struct core_file_done *done);

/* ---- names, around the core's namespace calls ---- */

/* core_lookup, but with write-back a name whose upload is pending on this
 * mount waits for it (at most LAMFS_WB_WAIT seconds, default 30). */
int core_files_lookup(struct core_files *t, const char *key, struct meta_entry *out);
/*
 * The attributes of this mount's live writer of key into *out (as
 * core_file_attr): 1 when one answers, 0 when the committed record does (no
 * writer, or one closed whose bytes are committed).
 */
int core_files_writer_attr(struct core_files *t, const char *key, struct lamfs_record *out);
/* 1 when this mount has a live writer of key. */
int core_files_has_writer(struct core_files *t, const char *key);
/* 1 when a live writer's key lies under folder key. */
int core_files_writer_under(struct core_files *t, const char *key);
/* Names of live writers directly inside folder key: *names (n entries of
 * LAMFS_NAME_MAX + 1 bytes, caller frees; NULL when none).  0 or -ENOMEM. */
int core_files_live_names(struct core_files *t, const char *key, char (**names)[LAMFS_NAME_MAX + 1],
			  size_t *n);
/* unlink: live writers of key keep their bytes (copied before the committed
 * ones go) and are discarded at close; 0 when only an unsaved file had it. */
int core_files_unlink(struct core_files *t, const char *key);
/* rename (flags: META_RENAME_NOREPLACE): live writers move with their names;
 * -ENOTEMPTY when the target folder holds a file being written. */
int core_files_rename(struct core_files *t, const char *from, const char *to, unsigned flags);
/* rmdir: -ENOTEMPTY when a file is being written below it. */
int core_files_rmdir(struct core_files *t, const char *key);
/* chmod/chown/touch of key (and of the writer f, when not NULL, or of this
 * mount's writer of key): the writer saves with them; 0 when only an unsaved
 * file had the name.  key NULL: only f (a removed file): -ENOENT. */
int core_files_setattr(struct core_files *t, struct core_file *f, const char *key,
		       unsigned mask, const struct meta_attr *a);
/*
 * truncate(2) by name: the kernel's O_TRUNC arrives this way from the process
 * that has just opened key (opener): it goes to that process's writer, not
 * closed yet.  Else a new version of that length is saved now; a: the
 * attributes if the name is new; *saved: 1 when a new version was saved (or
 * its save failed), 0 when an open writer took it.
 */
int core_files_truncate_key(struct core_files *t, const char *key, uint64_t size, pid_t opener,
			    const struct core_attrs *a, int *saved);

#endif
