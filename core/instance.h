/*
 * instance.h — an instance directory and its config file.
 *
 *   INSTANCE/lamfs.conf   ini file: [instance] version, [storage] url, [meta] url
 *   INSTANCE/lamfs.db     SQLite metadata (default store)
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

#define INSTANCE_CONF "lamfs.conf"
#define INSTANCE_CONF_VERSION 1

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

/*
 * Create a new instance in `dir` (made with its missing parents, as mkdir -p;
 * an existing directory must be empty).  storage: a local root path (made
 * with its missing parents) or NULL for
 * INSTANCE/storage.  db: NULL for INSTANCE/lamfs.db.  Nothing is left behind
 * on failure.  -EEXIST when dir already is an instance or is not empty.
 */
int instance_init(const char *dir, const char *storage, const char *db, char **errmsg);

/*
 * instance_init, with the metadata of backup (a file `lamfs backup` wrote)
 * instead of an empty store: SQLite: its pages copied into the new database;
 * PostgreSQL (db): pg_restore into that database, which must hold no lamfs
 * instance yet (-EINVAL otherwise).  storage should be the storage root the
 * backed-up instance used: the objects are there.  The config records the
 * backup ([restore] from), so lamfs-repair treats objects without a record
 * as saved after the backup: listed, never removed.  A backup that is not a
 * lamfs store is refused and nothing is left.
 */
int instance_init_from(const char *dir, const char *storage, const char *db, const char *backup,
		       char **errmsg);

/* Read INSTANCE/lamfs.conf.  -ENOENT: not an instance; -EBADMSG: bad config
 * (errmsg names the line).  Release with instance_config_release(). */
int instance_load(const char *dir, struct instance_config *cfg, char **errmsg);
void instance_config_release(struct instance_config *cfg);

/* Format a message into a new string (for *errmsg); NULL on no memory. */
char *instance_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Put msg (owned, may be NULL) in *errmsg, freeing what was there; with
 * errmsg NULL, free msg. */
void instance_set_msg(char **errmsg, char *msg);

#endif
