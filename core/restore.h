/*
 * restore.h — objects saved after the metadata backup an instance was
 * restored from (lamfs init --from-backup; backup.h).
 *
 * Such an object has no record in the restored store.  In a restored
 * instance lamfs-repair lists it instead of removing it as an orphan, and
 * with REPAIR_REGISTER saves it again at its key.  Its key is known, in this
 * order: from another version of the same uid stem in the store (a new
 * version of a key the backup has); from the key kept with the object (local
 * storage: the xattr user.lamfs.key, written by every save); else it is
 * "lost+found/<uid><suffix>".
 */
#ifndef LAMFS_RESTORE_H
#define LAMFS_RESTORE_H

#include <stddef.h>

#include "core.h"

/* The backup the instance was restored from ([restore] from in its config),
 * or NULL when it was not. */
const char *restore_backup_of(const struct core *c);

/* How restore_object_key found the key. */
enum restore_key_source {
	RESTORE_KEY_STEM = 0,       /* an earlier version of the uid's stem */
	RESTORE_KEY_OBJECT,         /* kept with the object */
	RESTORE_KEY_UNKNOWN,        /* lost+found/<uid><suffix> */
};

/* The key of object obj (".lamindb/<uid><suffix>") of uid into key
 * (LAMFS_KEY_MAX + 1 bytes); returns its source.  Never fails. */
enum restore_key_source restore_object_key(struct core *c, const char *uid, const char *obj,
					   char *key, size_t keylen);

/* "an earlier version", "kept with the object", "unknown" */
const char *restore_key_source_name(enum restore_key_source src);

/*
 * Save the bytes of obj again at key through the core's save sequence
 * (fetched into a file in the staging folder, saved from there:
 * core_save_file).  When the store
 * gives the same uid (the next version of the stem is this one), the stored
 * object is obj itself; otherwise obj is removed once the new version is
 * committed (its bytes now live under out->uid).  0 or -errno; on failure
 * obj is untouched.
 */
int restore_register(struct core *c, const char *obj, const char *key, struct lamfs_record *out);

#endif
