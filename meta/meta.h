/*
 * meta.h — the metadata store: artifact records and folders, as transactions.
 *
 * Every function below that changes something is one transaction: it commits
 * durably before it returns 0, or it changes nothing.  The store owns the
 * invariants that live in the database (exactly one latest version per key,
 * flagged records invisible, folders as a tree); the core owns the order of a
 * save (insert flagged -> upload -> finish).
 *
 * Backends behind the same functions (struct meta carries an ops table, see
 * meta_impl.h): SQLite (WAL, synchronous=FULL, prepared statements only) and
 * PostgreSQL (libpq, prepared statements only, SERIALIZABLE transactions
 * retried on conflicts; meta_pg.c), the store several machines share.  A
 * handle is thread-safe: calls are serialised inside (one connection per
 * handle).  Several handles, in one process or on many machines, may use one
 * store at once: each call is one transaction and the database keeps the
 * invariants (two saves of one key at the same moment make two versions,
 * exactly one of them latest).
 *
 * Visibility: a record is visible (lookup, readdir) when is_latest = 1,
 * branch_id = 1 and it is not storage-ongoing.  A save in progress is a record
 * with storage_ongoing = 1 and is_latest = 0; the previous version, if any,
 * stays latest and visible until meta_save_finish().
 *
 * Folders: every ancestor of a saved key exists as a folder row; mkdir makes
 * one explicitly.  Folders persist when they become empty (as on a disk).
 *
 * Errors: 0 or a negative errno.  SQLite codes map in one place
 * (meta_sqlite_errno() in meta.c):
 * BUSY/LOCKED -> -EBUSY, FULL -> -ENOSPC, READONLY/PERM/AUTH -> -EACCES,
 * CORRUPT/NOTADB -> -EBADMSG, CANTOPEN -> -ENOENT or -EACCES, NOMEM -> -ENOMEM,
 * anything else -> -EIO.  A database written by a newer lamfs -> -EPROTO.
 * PostgreSQL SQLSTATEs map in one place too (meta_pg_errno() in meta.c), after
 * the store's own retries: a transaction that loses a conflict (40001, 40P01,
 * or 23505 from a concurrent insert) runs again, up to 40 times, then
 * -EBUSY; a lost connection (08xxx, 57P01-03, a restart) is reconnected,
 * waiting up to 30 s, and the transaction runs again once, else -EIO (a
 * COMMIT cut off on its way is looked up, so a call never fails for a change
 * that committed).  42501 and 28xxx -> -EACCES, 53100 -> -ENOSPC, 53200 ->
 * -ENOMEM, 25006 (a standby) -> -EROFS, 22021 -> -EILSEQ, other data errors
 * -> -EINVAL, anything else -> -EIO.
 * Every function that writes returns -EROFS on a META_READONLY handle.  Keys
 * longer than LAMFS_KEY_MAX are -ENAMETOOLONG; a key that names something new
 * (save_begin, mkdir, rename's target) must pass key_check() (its errno).
 */
#ifndef LAMFS_META_H
#define LAMFS_META_H

#include <stddef.h>
#include <stdint.h>

#include "lamfs.h"

struct meta;

/* The schema version of lamfs's own tables this build writes.  Older ones
 * are migrated on open (see meta_open for stores from before LaminDB's
 * schema). */
/* 2: the lease table (mounts and repairs of the instance, see below). */
/* 3: LaminDB's schema beside lamfs's tables, and lamfs_storage (the
 *    lamindb_storage row this instance saves into, meta_storage_attach). */
#define META_SCHEMA_VERSION 3

enum meta_open_flags {
	META_CREATE = 1u << 0,   /* create a new store; SQLite: -EEXIST if one exists,
	                            PostgreSQL: attach to it (see meta_open) */
	META_READONLY = 1u << 1, /* never write (lamfs ls, repair --dry-run) */
};

/*
 * Open the store at `url`: "sqlite:/abs/path.db" or a plain path (SQLite);
 * "postgresql://..." or "postgres://..." (PostgreSQL: a libpq connection URI,
 * so PGPASSFILE/~/.pgpass, PGSSLMODE and the other PG* variables apply; the
 * tables live in the first schema of the search_path, which the url may set:
 * "?options=-csearch_path%3Dmyschema"); any other "scheme://" is
 * -EPROTONOSUPPORT.
 *
 * A store is a LaminDB instance's database: LaminDB's own tables (made from
 * the files LaminDB ships, meta/lamindb/, never by hand) plus lamfs's tables
 * (docs/schema.md).  META_CREATE on a database without LaminDB's tables
 * creates LaminDB's schema and the rows `lamin init` writes (branches
 * -1/0/1, space 1, the anonymous user 00000000), then lamfs's tables; on a
 * database with LaminDB's tables and none of lamfs's (made by `lamin init`)
 * it attaches: lamfs's tables are added, LaminDB's rows are not touched.
 * LaminDB's tables at another migration than the one this build supports
 * (meta_lamindb_migration) are -EPROTO, with both versions in the log, and
 * nothing is changed; so is a lamfs store from before LaminDB's schema
 * (schema 2 or older without LaminDB's tables: it needs `lamfs upgrade
 * INSTANCE`, meta_upgrade below; meta_open never converts one).
 *
 * SQLite: META_CREATE on a missing file writes LaminDB's empty database
 * there; on an existing file with lamfs's tables, or with no LaminDB
 * tables, it is -EEXIST.  Without META_CREATE a missing database is -ENOENT,
 * a LaminDB database without lamfs's tables -ENOENT, an older lamfs schema
 * is migrated (unless META_READONLY: then -EPROTO).  A file that is not a
 * database, or is damaged, or is empty, is -EBADMSG and is not modified; a
 * directory is -EISDIR.  META_CREATE with META_READONLY is -EINVAL.  A
 * create that fails removes what it made.
 * PostgreSQL: META_CREATE creates the schema, or attaches when a lamfs schema
 * is there already (that is how a second machine joins an instance; creates
 * racing each other take turns and all succeed): never -EEXIST.  A newer
 * schema is -EPROTO, an older one is migrated; tables named artifact, folder
 * or storage without lamfs_schema are -EBADMSG (someone else's) and are not
 * touched; no lamfs schema without META_CREATE is -ENOENT.  A url libpq cannot
 * parse is -EINVAL; a server that cannot be reached -EIO, a missing or wrong
 * password -EACCES; PostgreSQL older than 13 -EPROTONOSUPPORT.  Logs show the
 * url with its password masked ("user:***@host").
 * On success *out owns the handle; free with meta_close().
 */
int meta_open(const char *url, unsigned flags, struct meta **out);
/* After meta_open() failed with -EPROTO in this thread: why, in words for the
 * user ("written by a newer lamfs; upgrade lamfs", "LaminDB's schema is at
 * migration A; this lamfs supports B only", ...); "" when it has no more to
 * say than the errno.  Valid until this thread's next meta_open(). */
const char *meta_open_why(void);
void meta_close(struct meta *m);
/* The schema version stored in the database (or a negative errno). */
int meta_schema_version(struct meta *m);

/* ---- the LaminDB instance ---- */

/* LaminDB's newest applied migration of app "lamindb" (django_migrations;
 * lamindb.h says which one counts as newest), e.g. "0189_v2_6", into out
 * (len bytes, at least LAMINDB_MIGRATION_MAX + 1 = 128).  A store opens only
 * at the one migration this build supports (the one in meta/lamindb's
 * files), so this is it; -ENOENT when the table has no such row. */
int meta_lamindb_migration(struct meta *m, char *out, size_t len);

/* The instance's storage: a row of lamindb_storage. */
struct meta_storage {
	char root[LAMFS_KEY_MAX + 1];  /* lamindb_storage.root: exactly the storage root,
	                                  "/abs/path" or "s3://bucket[/prefix]" */
	char type[8];                  /* "local" or "s3" */
	char region[64];               /* "" when none */
	char uid[13];                  /* lamindb_storage.uid: 12 base62 characters */
	char instance_uid[13];         /* lamindb_storage.instance_uid: 12 characters
	                                  ("" when the row has none) */
};
/*
 * Find the lamindb_storage row whose root is st->root, or insert it
 * (created_by the anonymous user 00000000, added when missing; LaminDB's
 * column defaults for the rest), and record it in lamfs's own tables
 * (lamfs_storage) as the storage this instance saves into, in one
 * transaction.  *id (when not NULL): the row's id.
 * A row with that root but another instance_uid: -EXDEV, *found (when not
 * NULL) set to it, nothing changed.  st->uid taken by a row of another
 * root: -EEXIST.  Empty root or uid, or a type other than local/s3:
 * -EINVAL.  A found row keeps its own uid, type and region (LaminDB's rows
 * are not changed); *found, when not NULL, is set to the row on 0 too.
 */
int meta_storage_attach(struct meta *m, const struct meta_storage *st, int64_t *id,
			struct meta_storage *found);
/* The storage recorded by meta_storage_attach: 0 and *id, *out (either may
 * be NULL), or -ENOENT when none yet. */
int meta_storage_get(struct meta *m, int64_t *id, struct meta_storage *out);

/*
 * Bring a store made before LaminDB's schema (lamfs schema 1 or 2, no
 * LaminDB tables) to this build's schema in place, in one transaction that
 * changes nothing when it fails: LaminDB's tables and the rows `lamin init`
 * writes, exactly as a new store gets them (SQLite: copied from LaminDB's
 * own file, attached; PostgreSQL: the same dump and seed rows as a create),
 * then lamfs's migrations, then st recorded as meta_storage_attach does
 * (every artifact row then refers to it).  Records, versions, folders,
 * flags and leases are kept; uids are unchanged, so no object moves.
 * SQLite writes a copy of the store first, at the file's path plus
 * META_UPGRADE_BACKUP (an older copy there is replaced); PostgreSQL has none
 * (pg_dump before, if wanted).  The caller keeps this machine's mounts
 * away (the instance lock); a live lease in the store (a mount or repair
 * on any machine) is -EBUSY with meta_open_why().  0 upgraded; 1 already
 * current (nothing written beyond
 * what meta_open does: a current store is opened and closed); -EPROTO with
 * meta_open_why() for a store newer than this lamfs or at another LaminDB
 * migration; otherwise meta_open's errors.
 */
#define META_UPGRADE_BACKUP ".before-upgrade"
int meta_upgrade(const char *url, const struct meta_storage *st);

/* ---- lookups (visible entries only) ---- */

enum meta_type { META_NONE = 0, META_FILE = 1, META_DIR = 2 };

struct meta_entry {
	enum meta_type type;
	struct lamfs_record rec;    /* META_FILE */
	struct lamfs_folder dir;    /* META_DIR */
};

/* What is visible at key ("" = root, always a folder: mode 0755, owner 0:0,
 * mtime 0 — it has no row).  -ENOENT when nothing. */
int meta_lookup(struct meta *m, const char *key, struct meta_entry *out);

/* Called once per child of a folder, name is the last component: folders
 * first, then files, each in byte order of their names.  Return non-zero to
 * stop: a negative value is what meta_readdir() returns, a positive one makes
 * it return 0.  Called with the store's lock held: must not call meta. */
typedef int (*meta_dirent_cb)(void *ctx, const char *name, const struct meta_entry *e);
/* Visible children of folder `key`, served by an index on the parent folder
 * (never a scan of all keys).  -ENOENT no such folder, -ENOTDIR a file. */
int meta_readdir(struct meta *m, const char *key, meta_dirent_cb cb, void *ctx);

/* Any record by uid (also flagged or old versions); out may be NULL (an
 * existence check).  -ENOENT when none. */
int meta_get_uid(struct meta *m, const char *uid, struct lamfs_record *out);

typedef int (*meta_record_cb)(void *ctx, const struct lamfs_record *rec);
/* Every record at key (all versions, flagged ones too), oldest (lowest id)
 * first.  The records are read first; cb runs without the lock and may call
 * meta.  Non-zero from cb stops, as for meta_readdir. */
int meta_versions(struct meta *m, const char *key, meta_record_cb cb, void *ctx);

enum meta_foreach_which { META_ALL_RECORDS = 0, META_FLAGGED_RECORDS = 1 };
/* Every record (or only the storage-ongoing ones), ordered by id.  The callback
 * runs without the lock held and may call meta.  Records are read in pages
 * (a few hundred at a time, so memory stays bounded): the walk covers the
 * records that existed when it began (ids up to the highest one then) and
 * still exist, in their state when their page is read; records made during
 * the walk are not visited (PostgreSQL hands out ids before commit: a record
 * whose save was committing when the walk began may be).  Non-zero from cb
 * stops, as for meta_readdir. */
int meta_foreach(struct meta *m, enum meta_foreach_which which, meta_record_cb cb, void *ctx);

/* Totals of visible artifacts, for statfs. */
int meta_totals(struct meta *m, uint64_t *files, uint64_t *bytes);

/* ---- the save sequence ---- */

enum meta_save_state {
	META_SAVE_NEW = 0,    /* a new flagged record was inserted: upload, then finish */
	META_SAVE_RESUME = 1, /* a flagged record with the same key and checksum exists:
	                         same uid, upload again, then finish */
	META_SAVE_EXISTS = 2, /* the latest visible artifact at key has the same size and
	                         checksum: nothing to do, rec holds it */
};

/*
 * Begin saving.  In: rec->key, suffix, size, hash, hash_type, checksum,
 * storage_id, mode, owner_uid, owner_gid, mtime_ns.  One transaction that:
 *  - EXISTS: finds the latest visible artifact at key with equal size+checksum;
 *  - RESUME: finds a storage-ongoing record at key with equal size+checksum;
 *  - NEW: makes the uid (the stem of the key's existing versions, else a new
 *    random stem; the version one past the highest used at that stem), inserts
 *    the record with storage_ongoing = 1 and is_latest = 0.  Missing ancestor
 *    folders are not made here (a failed save leaves nothing, not even its
 *    folders); meta_save_finish makes them (mode 0755, the record's owner).
 * RESUME also stores rec's mode, owner and mtime on the flagged record (the
 * newest request wins).  EXISTS changes nothing.
 * On 0, *state says which and rec is the full record (uid, id, times set);
 * on an error rec is unchanged.
 * flags: 0, or META_BEGIN_LAZY: the commit need not be durable when this
 * returns, only visible; it becomes durable with the next durable commit of
 * this handle (the save's own meta_save_finish).  For a save whose caller
 * waits for the finish anyway (sync mode): a power loss before it loses the
 * flagged record, and what was stored meanwhile is an orphan object that
 * lamfs-repair removes, as after a crash between a delete's commit and its
 * object removal.  A process crash loses nothing.  A store that could lose
 * the commit while the caller lives on (PostgreSQL: its server restarts)
 * ignores the flag, since the finish would then mistake the lost record for
 * one removed meanwhile.
 * Errors: -EISDIR a folder exists at key, -ENOTDIR an ancestor is a file,
 * -EINVAL no storage row with rec->storage_id, -EBUSY no free uid after a few
 * attempts (random stems collided).
 */
#define META_BEGIN_LAZY 1u
int meta_save_begin(struct meta *m, struct lamfs_record *rec, enum meta_save_state *state,
		    unsigned flags);

/*
 * Finish a save: clear the flag of `uid` and make it the latest version of its
 * key (is_latest moved in the same transaction), update updated_at — unless a
 * newer save (a larger id) at that key has finished first: then it is stored
 * as an older version and the newer one stays latest, so uploads that finish
 * out of order never bring back old bytes.  If the key has become a folder
 * meanwhile: -EISDIR.  -ENOENT when the record is gone (removed by unlink or
 * replaced by a rename while its upload ran).  On 0 and when rec is not NULL,
 * *rec is the finished record.
 */
int meta_save_finish(struct meta *m, const char *uid, struct lamfs_record *rec);

/* Roll back a save: delete the storage-ongoing record `uid`.  -ENOENT when it is
 * gone, -EBUSY when it is no longer flagged (it must not be deleted here). */
int meta_save_abort(struct meta *m, const char *uid);

/* ---- namespace changes; each drops records and says which ---- */

/* Records a transaction removed; their objects are deleted by the caller after
 * the commit.  A call appends to the list on success only (on an error it is
 * as it was).  Initialise with META_DROPPED_INIT, release with
 * meta_dropped_release() (safe on an empty one, and twice). */
struct meta_dropped_obj {
	char uid[LAMFS_UID_LEN + 1];
	char suffix[LAMFS_SUFFIX_MAX + 1];
	int storage_id;
};
struct meta_dropped {
	size_t n;
	struct meta_dropped_obj *v;
};
#define META_DROPPED_INIT { 0, NULL }
void meta_dropped_release(struct meta_dropped *d);

/* Remove the artifact at key: every committed version.  Storage-ongoing records
 * at key (saves in flight) are left alone.  -ENOENT (nothing visible at key),
 * -EISDIR (a folder, or the root). */
int meta_unlink(struct meta *m, const char *key, struct meta_dropped *dropped);

enum meta_rename_flags { META_RENAME_NOREPLACE = 1u << 0 };
/*
 * Rename a file or a folder (with everything under it, every version and
 * in-flight record) in one transaction; no object is touched.  POSIX cases:
 * file onto a file replaces it (its versions are dropped); file onto a folder
 * -EISDIR; folder onto a file -ENOTDIR; folder onto an empty folder replaces
 * it; onto a non-empty one -ENOTEMPTY; a folder into its own subtree -EINVAL;
 * NOREPLACE and the target exists -EEXIST; from missing -ENOENT; the target's
 * parent missing -ENOENT, a file -ENOTDIR; from == to: 0, nothing changes.
 * Also: either key the root -EBUSY; a moved key would grow over LAMFS_KEY_MAX
 * -ENAMETOOLONG.  Moving a file drops every committed record at the target
 * key (visible or not); storage-ongoing records at the target stay, and a
 * later finish makes them latest there.  A folder that is the target is
 * empty when no folder row and no record (committed or flagged) is inside it.
 */
int meta_rename(struct meta *m, const char *from, const char *to, unsigned flags,
		struct meta_dropped *dropped);

/* Make a folder (mode masked to 07777; mtime_ns 0 means now).  -EEXIST (a file
 * or folder there, or the root), -ENOENT parent missing, -ENOTDIR parent is a
 * file. */
int meta_mkdir(struct meta *m, const struct lamfs_folder *dir);
/* Remove an empty folder.  -ENOENT, -ENOTDIR (a file), -ENOTEMPTY (any child,
 * including a storage-ongoing record under it), -EBUSY for the root. */
int meta_rmdir(struct meta *m, const char *key);

enum meta_attr_mask {
	META_ATTR_MODE = 1u << 0,
	META_ATTR_OWNER_UID = 1u << 1,
	META_ATTR_OWNER_GID = 1u << 2,
	META_ATTR_MTIME = 1u << 3,
};
struct meta_attr {
	uint32_t mode;
	uint32_t owner_uid;
	uint32_t owner_gid;
	int64_t mtime_ns;
};
/* Change stored POSIX attributes of the visible file (its latest record; its
 * updated_at too) or folder at key.  -ENOENT when nothing is there, -EPERM for
 * the root (it has no row to keep them in). */
int meta_setattr(struct meta *m, const char *key, unsigned mask, const struct meta_attr *a);

/* ---- repair ---- */

/* Roll a record back whatever its state: delete it; if it was the latest, the
 * newest (highest id) remaining committed version of its key on its branch
 * becomes latest.  *promoted is set to that version's uid, or "" when none
 * (may be NULL).  -ENOENT. */
int meta_record_delete(struct meta *m, const char *uid, char promoted[LAMFS_UID_LEN + 1]);

/* ---- leases: who is using the instance, on any machine ----
 *
 * A lease is a row the store keeps for each live mount and each running
 * lamfs-repair, so that a repair on one machine sees mounts on all the others
 * (the instance lock, an flock, sees only its own machine).  Times come from
 * the DATABASE's clock (PostgreSQL now(), SQLite's 'now'), in milliseconds
 * since the epoch, so machines whose clocks differ still agree on expiry.  A
 * lease is live while expires_ms is in the future; its owner renews it.
 *
 * Rules kept in one transaction by meta_lease_take(): a MOUNT lease is
 * refused while a live REPAIR lease exists; a REPAIR lease is refused while
 * any other live lease (mount or repair) exists.  Expired leases block
 * nothing; meta_lease_sweep() removes them.
 */
enum meta_lease_kind { META_LEASE_MOUNT = 0, META_LEASE_REPAIR = 1 };

#define META_LEASE_ID_MAX 40
#define META_LEASE_HOST_MAX 255
#define META_LEASE_PATH_MAX 1023   /* longer paths are stored cut (they only inform) */

struct meta_lease {
	char id[META_LEASE_ID_MAX + 1];          /* the owner's id, unique */
	enum meta_lease_kind kind;
	char host[META_LEASE_HOST_MAX + 1];
	int64_t pid;
	char instance[META_LEASE_PATH_MAX + 1];  /* the owner's instance directory */
	char mountpoint[META_LEASE_PATH_MAX + 1];/* "" for a repair */
	int64_t started_ms;                      /* database clock */
	int64_t expires_ms;                      /* database clock */
	int64_t remaining_ms;                    /* out: expires_ms - the database's now
	                                            when read; <= 0 expired */
};

enum meta_lease_take_flags {
	META_LEASE_FORCE = 1u << 0,   /* insert whatever else is live (--force-unlocked) */
};

/*
 * Take (insert, or refresh when the id exists already) the lease l->id with
 * l's fields, expiring ttl_ms after the database's now.  When the rules above
 * refuse it: -EBUSY and *blocker (when not NULL) is the live lease in the way
 * (the one expiring last when several).  -EINVAL for an empty id or ttl <= 0.
 */
int meta_lease_take(struct meta *m, const struct meta_lease *l, int64_t ttl_ms,
		    unsigned flags, struct meta_lease *blocker);
/* Push the expiry of lease id to ttl_ms after the database's now (also when
 * it had expired).  -ENOENT when the row is gone (swept after it expired). */
int meta_lease_renew(struct meta *m, const char *id, int64_t ttl_ms);
/* Remove lease id.  -ENOENT when it is gone. */
int meta_lease_release(struct meta *m, const char *id);

typedef int (*meta_lease_cb)(void *ctx, const struct meta_lease *l);
/* Every lease, live or expired, soonest expiry first (remaining_ms set).
 * The rows are read first; cb runs without the lock and may call meta.
 * Non-zero from cb stops, as for meta_readdir. */
int meta_lease_list(struct meta *m, meta_lease_cb cb, void *ctx);
/* Remove lease id only if it has expired (what repair does with a dead
 * owner's lease): 0 removed, -ENOENT gone, -EBUSY live again (renewed). */
int meta_lease_sweep(struct meta *m, const char *id);

#endif
