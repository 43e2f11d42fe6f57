/*
 * save_file.h — save a local file from where it is, without a copy in staging
 * (lamfs save).
 *
 * The save sequence of core_save with the file itself as the source:
 *   hash the file (read 1) ─► txn: flagged insert (or the identical artifact:
 *   done) ─► upload from the file (read 2; the backend's reads are hashed
 *   where it shows them: local storage) ─► check the file did not change
 *   ─► txn: finish.
 * "Did not change": its size, mtime and ctime are those it had before the
 * hash pass (any write, or a touch that restores the mtime, moves the
 * ctime), and the sha256 of the bytes the backend read is the record's.
 * Otherwise the save is rolled back (record and object) with -ESTALE.
 * A failure leaves nothing; a process killed in the middle leaves the flagged
 * record (no staging file): saving the same bytes at the key again resumes it
 * (same uid), and lamfs-repair clears its flag when the object is complete,
 * else rolls it back.  Nothing is written to the staging folder.
 */
#ifndef LAMFS_SAVE_FILE_H
#define LAMFS_SAVE_FILE_H

#include <stdint.h>

#include "core.h"

enum core_save_phase { CORE_SAVE_HASHING = 0, CORE_SAVE_STORING = 1 };

/* Progress of one file: phase, bytes of it done, the file's size.  Called
 * on the saving thread, often (every chunk). */
struct core_save_progress {
	void (*fn)(void *ctx, enum core_save_phase phase, uint64_t done, uint64_t size);
	void *ctx;
};

/*
 * Save the regular file at path as the next version of key (as core_save:
 * the same content at key is the existing artifact; out, when not NULL, is
 * the record).  pg may be NULL.  0, or -errno: -ESTALE the file changed while
 * it was saved, -EINVAL not a regular file, and core_save's errors (EEXIST:
 * storage holds other bytes under the new version's name).
 */
int core_save_file(struct core *c, const char *path, const char *key,
		   const struct core_attrs *attrs, const struct core_save_progress *pg,
		   struct lamfs_record *out);

#endif
