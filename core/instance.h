/*
 * instance.h — an instance directory and its config file.
 *
 *   INSTANCE/lamfs.conf   ini file: [instance] version, [storage] url, [meta] url
 *   <storage root>/.lamindb/lamin.db   SQLite metadata (default store), where
 *                         LaminDB looks; INSTANCE/lamin.db with S3 storage
 *   <storage root>/.lamindb/storage_uid.txt   the LaminDB instance owning the
 *                         storage (marker.h; docs/lamindb.md)
 *   INSTANCE/staging/     staging files of saves in progress
 *   INSTANCE/storage/     default local storage root (objects in .lamindb/)
 *   INSTANCE/lamfs.log    the daemon's log
 *   INSTANCE/cache/       the read cache, when [cache] size is set (dir = elsewhere)
 *
 * Parsing uses inih; unknown sections/keys are refused so typos are seen.
 */
#ifndef LAMFS_INSTANCE_H
#define LAMFS_INSTANCE_H

#include <stdint.h>

#include "lamindb_id.h"

#define INSTANCE_CONF "lamfs.conf"
#define INSTANCE_CONF_VERSION 1
#define INSTANCE_DB "lamin.db"     /* the SQLite database's name, as LaminDB's */

struct instance_config {
	char *dir;          /* absolute instance directory */
	char *storage_url;  /* absolute path or s3://bucket/prefix */
	char *meta_url;     /* "sqlite:/abs/path" or postgresql://... */
	char *staging_dir;  /* absolute */
	char *log_path;     /* absolute */
	char *s3_profile;   /* may be NULL */
	char *s3_endpoint;  /* may be NULL */
	char *s3_region;    /* may be NULL */
	char *cache_dir;    /* [cache] dir, absolute (default INSTANCE/cache); NULL: no cache */
	uint64_t cache_size; /* [cache] size in bytes; 0: no cache */
	char *restored_from; /* [restore] from: the metadata backup this instance was
	                        made from (lamfs init --from-backup), or NULL */
};
#define INSTANCE_CONFIG_INIT { 0 }

/* What instance_init made or joined. */
struct instance_init_info {
	int attached;                   /* 1: an existing LaminDB instance (a marker on
	                                   the root, or a database there already) */
	struct lamindb_ident ident;     /* its identity */
	char storage_root[4096];        /* as lamindb_storage.root holds it */
	char db[4096];                  /* the SQLite file, or the --db URL */
};

/*
 * Create a new instance in `dir` (made with its missing parents, as mkdir -p,
 * and taken back on failure; an existing directory must be empty), or attach it to the LaminDB instance that owns the storage
 * (docs/lamindb.md, "init: new or attach").  storage: a local root path (made
 * if missing), "s3://bucket[/prefix]", or NULL for INSTANCE/storage.  db: NULL
 * for SQLite (<root>/.lamindb/lamin.db; INSTANCE/lamin.db with S3 storage).
 * The root's marker is read first: with one, the instance is the marker's and
 * the database must hold its storage row or take it; without one, a new
 * identity is made (named after the root, lamindb_name_of_root; after the
 * instance folder for the default storage) and the marker is written last.
 * info (may be NULL) is filled on 0.  Nothing is left behind on failure
 * (lamfs's own tables may stay in a database that existed before).
 * -EEXIST: dir already is an instance or is not empty, or the root belongs to
 * an instance whose database is not the one init would use; -EXDEV: the
 * marker and the database's storage row name different instances; -EBADMSG:
 * the marker is damaged; -EPROTO: another LaminDB migration.  *errmsg says
 * which, naming both ids where there are two.
 */
int instance_init(const char *dir, const char *storage, const char *db,
		  struct instance_init_info *info, char **errmsg);

/*
 * instance_init, with the metadata of backup (a file `lamfs backup` wrote)
 * instead of an empty store: SQLite: its pages copied into the new database;
 * PostgreSQL (db): pg_restore into that database, which must hold no lamfs
 * instance yet (-EEXIST otherwise).  storage should be the storage root the
 * backed-up instance used: the objects are there.  A SQLite database that
 * exists where the restore would write it (<root>/.lamindb/lamin.db) is never
 * replaced: -EEXIST, nothing changed (move a lost or damaged one away first).  The config records the
 * backup ([restore] from), so lamfs-repair treats objects without a record
 * as saved after the backup: listed, never removed.  A backup that is not a
 * lamfs store is refused and nothing is left.
 */
int instance_init_from(const char *dir, const char *storage, const char *db, const char *backup,
		       struct instance_init_info *info, char **errmsg);

/* Read INSTANCE/lamfs.conf.  -ENOENT: not an instance; -EBADMSG: bad config
 * (errmsg names the line).  Release with instance_config_release(). */
int instance_load(const char *dir, struct instance_config *cfg, char **errmsg);
void instance_config_release(struct instance_config *cfg);

/*
 * INSTANCE/lamfs.lock (flock, made if missing): mounts hold it shared,
 * lamfs-repair and lamfs upgrade exclusive.  *fd: -1 to open it (then the
 * caller closes it, which releases the lock), or the fd of an earlier call.
 * 0, -EBUSY when it cannot be had now, or -errno.
 */
int instance_lock(const char *dir, int exclusive, int *fd);

/*
 * lamfs upgrade: bring the instance's metadata store from before LaminDB's
 * schema to this build's (meta_upgrade), holding the instance lock
 * exclusively.  The storage row is made as instance_init makes it: the
 * identity of the root's marker, else a new one, whose marker is written
 * once the store is upgraded (a current store gets none).  0
 * upgraded, 1 already current; -EBUSY when mounted or in use; else -errno
 * with *errmsg saying why.  *db: the store's url once the config is read;
 * *backup: the copy written before upgrading (SQLite), else left NULL.
 * The caller frees all three (set them to NULL first).
 */
int instance_upgrade(const char *dir, char **db, char **backup, char **errmsg);

/* Format a message into a new string (for *errmsg); NULL on no memory. */
char *instance_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Put msg (owned, may be NULL) in *errmsg, freeing what was there; with
 * errmsg NULL, free msg. */
void instance_set_msg(char **errmsg, char *msg);

#endif
