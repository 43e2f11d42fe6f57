/*
 * inodes.h — the inode table of a mount served through FUSE's low-level API
 * (docs/inodes.md): which node id the kernel holds for a folder, a version, a
 * /.lamfs/uid version or a stage, how many lookups it holds of each, and the
 * st_ino each shows.
 *
 * A node id is never reused while the table lives (the generation is always
 * 1).  An inode lives while the kernel holds lookups of it (nlookup, from
 * lookup/create/readdirplus replies; FORGET subtracts) or a file of it is
 * open (opens); then it is freed.  Versions do not keep their key (up to
 * 1 KiB): an inode keeps its name and its folder's inode, and
 * core_inode_key() builds the key by walking up, so a rename of a folder
 * moves everything below it by changing one inode.
 *
 * Thread-safety: every function takes the table's lock.  An inode pointer
 * stays valid while the caller holds a lookup or an open of it (the kernel
 * sends no request for a node id it has forgotten).
 */
#ifndef LAMFS_INODES_H
#define LAMFS_INODES_H

#include <stddef.h>
#include <stdint.h>

#include "lamfs.h"

#define CORE_ROOT_INO 1

enum core_inode_kind {
	CORE_INO_FOLDER = 1,    /* a folder key; the root is CORE_ROOT_INO */
	CORE_INO_VERSION,       /* a committed record reached by its key */
	CORE_INO_UID_VERSION,   /* a committed record reached as /.lamfs/uid/UID */
	CORE_INO_STAGE,         /* a file being written on this mount (W1, W2) */
};

struct core_inodes;

struct core_inode_info {
	uint64_t ino;           /* node id */
	enum core_inode_kind kind;
	int64_t rec_id;         /* versions: the record's id; else 0 */
	uint64_t st_ino;        /* what stat shows (core_st_ino_*) */
};

/* A table holding the root folder (CORE_ROOT_INO, never freed). */
int core_inodes_new(struct core_inodes **out);
void core_inodes_free(struct core_inodes *t);

/*
 * The kernel got an inode for `name` in folder `parent` (a lookup,
 * create or readdirplus reply): find or make it and count one lookup.
 *   CORE_INO_FOLDER: one inode per (parent, name);
 *   CORE_INO_VERSION, CORE_INO_UID_VERSION: one per (kind, rec_id), uid its
 *     record's uid (the inode's st_ino comes from it);
 *   CORE_INO_STAGE: a new inode every time (uid: the stem it will be saved
 *     under, LAMFS_STEM_LEN characters at least).
 * A version found again under another name (a rename) takes the new name.
 * 0 and *out, -ENOENT (unknown parent), -EINVAL, -ENOMEM.
 */
int core_inode_found(struct core_inodes *t, uint64_t parent, const char *name,
		     enum core_inode_kind kind, int64_t rec_id, const char *uid,
		     struct core_inode_info *out);

/* The kernel forgot n lookups of ino.  -ENOENT for an unknown ino. */
int core_inode_forget(struct core_inodes *t, uint64_t ino, uint64_t n);
/* A file of ino was opened (+1) or released (-1). */
int core_inode_open(struct core_inodes *t, uint64_t ino, int delta);
/* What ino is; -ENOENT when the table has no such inode. */
int core_inode_get(struct core_inodes *t, uint64_t ino, struct core_inode_info *out);
/* Its key ("" for the root) into key (LAMFS_KEY_MAX + 1 bytes): -ENOENT,
 * -ENAMETOOLONG. */
int core_inode_key(struct core_inodes *t, uint64_t ino, char *key);
/* A rename moved ino to (parent, name). */
int core_inode_move(struct core_inodes *t, uint64_t ino, uint64_t parent, const char *name);
/* Inodes in the table (the root included). */
size_t core_inodes_count(struct core_inodes *t);

/* st_ino of every version (and stage) of the key whose uid stem this is:
 * 63 bits, top bit clear, the same on every mount and across renames. */
uint64_t core_st_ino_stem(const char *uid);
/* st_ino of /.lamfs/uid/UID: from the whole uid, top bit set. */
uint64_t core_st_ino_uid(const char *uid);
/* st_ino of a folder: from its key, top bit clear. */
uint64_t core_st_ino_folder(const char *key);

#endif
