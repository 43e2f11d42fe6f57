/*
 * core_internal.h — what core.c and stage.c share; not for other modules.
 */
#ifndef LAMFS_CORE_INTERNAL_H
#define LAMFS_CORE_INTERNAL_H

#include <pthread.h>

#include "backend.h"
#include "core.h"
#include "hash.h"
#include "instance.h"

struct core {
	struct instance_config cfg;
	struct meta *meta;
	struct backend *backend;
	int storage_id;              /* lamindb_storage.id saves go to (meta_storage_get) */
	unsigned flags;
	int lock_fd;                 /* INSTANCE/lamfs.lock while locked, else -1 */
};

struct core_stage {
	struct core *c;
	int fd;                      /* staging file; -1 while spent */
	char path[4096];             /* its name in the staging folder */
	uint64_t size;
	struct hash_state *h;        /* fed bytes [0, hash_fed) in order */
	int hash_ok;                 /* 0 after an out-of-order write or a truncate */
	struct hash_follower *follow; /* hashing [hash_fed, size) in a thread, or NULL;
	                                 while set, h is the follower's */
	int dirty;                   /* content differs from `base` (or no base) */
	int spent;                   /* the file was renamed into storage by a save;
	                                the content is `base`'s object */
	int have_base;
	struct lamfs_record base;    /* the record the content came from / was saved as */
};

/* A record for the save of hr's content at key with attrs a (fill_record). */
void core_record_fill(const struct core *c, struct lamfs_record *rec, const char *key,
		      const struct hash_result *hr,
		      const struct core_attrs *a);
/* Roll back a save whose flagged record is committed: the record, then its
 * object unless object_written < 0 (the put found another object under the
 * name: EEXIST).  Logs what it cannot undo. */
void core_save_undo(struct core *c, const struct lamfs_record *rec, int object_written);

/* Create an empty staging file for s (s->fd, s->path).  0 or -errno. */
int stage_create_file(struct core_stage *s);
/* Make a spent stage usable again: copy base's object into a new staging file. */
int stage_restore(struct core_stage *s);
/* Copy the object of rec into s (empty) through the backend, hashing it. */
int stage_fill_from(struct core_stage *s, const struct lamfs_record *rec);
/* Finish the hashes of the current content (rehash when needed). */
int stage_hash(struct core_stage *s, struct hash_result *res);

#endif
