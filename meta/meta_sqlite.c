/*
 * meta_sqlite.c — the metadata store in one SQLite file.
 *
 * WAL journal, synchronous=FULL (a commit is on disk when COMMIT returns),
 * foreign keys on, a 10 s busy timeout so several processes (the daemon,
 * `lamfs ls`, lamfs-repair) can share the file.  Every statement is prepared
 * once per handle from a constant string and cached; user data only ever
 * travels as bound parameters.  Writes run in BEGIN IMMEDIATE transactions
 * (the write lock is taken up front, so a transaction never fails half-way on
 * a lock upgrade); multi-statement reads run in a deferred BEGIN so they see
 * one snapshot.
 *
 * Keys are byte strings compared with SQLite's BINARY collation.  Everything
 * strictly inside folder "a" sorts in ["a/", "a0") because '0' is '/' + 1:
 * subtree queries (rename, rmdir, emptiness) are index range scans.
 *
 * The schema is versioned (table lamfs_schema).  sq_migrations[v] takes a
 * database from version v to v + 1; step 0 creates everything.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "key.h"
#include "lamindb.h"
#include "log.h"
#include "meta_impl.h"
#include "uid.h"

#define SQ_BUSY_TIMEOUT_MS 10000
#define SQ_UID_TRIES 5                  /* save_begin attempts on a uid collision */
#define SQ_PATH_MAX (LAMFS_KEY_MAX + 2) /* a key plus "/" or "0", and the NUL */

/* ---- schema and migrations ---- */

static const char sq_schema_v1[] =
	"CREATE TABLE lamfs_schema (version INTEGER NOT NULL);\n"
	"INSERT INTO lamfs_schema (version) VALUES (0);\n"
	"CREATE TABLE storage (id INTEGER PRIMARY KEY, root TEXT);\n"
	"INSERT INTO storage (id, root) VALUES (1, '');\n"
	"CREATE TABLE folder (\n"
	"  path TEXT PRIMARY KEY,\n"
	"  parent TEXT NOT NULL,\n"
	"  name TEXT NOT NULL,\n"
	"  mode INTEGER,\n"
	"  owner_uid INTEGER,\n"
	"  owner_gid INTEGER,\n"
	"  mtime_ns INTEGER);\n"
	"CREATE INDEX folder_parent_name ON folder (parent, name);\n"
	"CREATE TABLE artifact (\n"
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"   /* ids are never reused */
	"  uid TEXT NOT NULL UNIQUE,\n"
	"  key TEXT NOT NULL,\n"
	"  parent TEXT NOT NULL,\n"
	"  name TEXT NOT NULL,\n"
	"  suffix TEXT NOT NULL,\n"
	"  size INTEGER,\n"
	"  hash TEXT,\n"
	"  _hash_type TEXT,\n"
	"  checksum TEXT,\n"
	"  is_latest INTEGER NOT NULL,\n"
	"  _aux TEXT NULL,\n"
	"  branch_id INTEGER NOT NULL DEFAULT 1,\n"
	"  storage_id INTEGER NOT NULL REFERENCES storage (id),\n"
	"  created_at INTEGER,\n"
	"  updated_at INTEGER,\n"
	"  mode INTEGER,\n"
	"  owner_uid INTEGER,\n"
	"  owner_gid INTEGER,\n"
	"  mtime_ns INTEGER);\n"
	/* The database itself keeps one latest live version per key. */
	"CREATE UNIQUE INDEX artifact_latest_key ON artifact (key)\n"
	"  WHERE is_latest = 1 AND branch_id = 1;\n"
	/* readdir of one folder; flagged records are never latest. */
	"CREATE INDEX artifact_parent_name ON artifact (parent, name) WHERE is_latest = 1;\n"
	/* versions, renames, subtree ranges. */
	"CREATE INDEX artifact_key ON artifact (key);\n"
	/* repair's scan of storage-ongoing records. */
	"CREATE INDEX artifact_flagged ON artifact (id) WHERE _aux IS NOT NULL;\n";

/* Schema 2: leases of the mounts and repairs using the store (meta.h). */
static const char sq_schema_v2[] =
	"CREATE TABLE lease (\n"
	"  id TEXT PRIMARY KEY,\n"
	"  kind TEXT NOT NULL CHECK (kind IN ('mount', 'repair')),\n"
	"  host TEXT NOT NULL,\n"
	"  pid INTEGER NOT NULL,\n"
	"  instance TEXT NOT NULL,\n"
	"  mountpoint TEXT NOT NULL,\n"
	"  started_ms INTEGER NOT NULL,\n"
	"  expires_ms INTEGER NOT NULL);\n";

/* Schema 3: the storage this instance saves into (meta_storage_attach). */
static const char sq_schema_v3[] =
	"CREATE TABLE lamfs_storage (\n"
	"  one INTEGER PRIMARY KEY CHECK (one = 1),\n"
	"  storage_id INTEGER NOT NULL REFERENCES lamindb_storage (id));\n";

/* sq_migrations[v]: version v -> v + 1.  Constant DDL only.  LaminDB's own
 * tables are not among them: they come from LaminDB's file (file_create). */
static const char *const sq_migrations[] = {
	sq_schema_v1,
	sq_schema_v2,
	sq_schema_v3,
};
_Static_assert(sizeof(sq_migrations) / sizeof(sq_migrations[0]) == META_SCHEMA_VERSION,
	       "one migration step per schema version");

/* ---- statements ---- */

#define SQ_AUX_ONGOING "'{\"so\": 1}'"
#define SQ_VISIBLE "is_latest = 1 AND branch_id = 1 AND _aux IS NULL"
/* Read by row_record(), in this order. */
#define SQ_REC_COLS                                                                  \
	"id, uid, key, suffix, size, hash, _hash_type, checksum, is_latest, "        \
	"_aux IS NOT NULL, branch_id, storage_id, created_at, updated_at, mode, "    \
	"owner_uid, owner_gid, mtime_ns"
#define SQ_REC_NCOLS 18
/* Read by row_folder(), in this order. */
#define SQ_FOLDER_COLS "path, mode, owner_uid, owner_gid, mtime_ns"
#define SQ_FOLDER_NCOLS 5
#define SQ_FOLDER_INSERT                                                             \
	"INTO folder (path, parent, name, mode, owner_uid, owner_gid, mtime_ns) "   \
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"

#define SQ_STATEMENTS(X)                                                             \
	X(BEGIN, "BEGIN")                                                            \
	X(BEGIN_WRITE, "BEGIN IMMEDIATE")                                            \
	X(COMMIT, "COMMIT")                                                          \
	X(ROLLBACK, "ROLLBACK")                                                      \
	X(SAVEPOINT, "SAVEPOINT sq_job")                                             \
	X(RELEASE, "RELEASE sq_job")                                                 \
	X(ROLLBACK_TO, "ROLLBACK TO sq_job")                                         \
	X(PRAGMA_SCHEMA, "PRAGMA schema_version")                                    \
	X(PRAGMA_WAL, "PRAGMA journal_mode = WAL")                                   \
	X(SYNC_FULL, "PRAGMA synchronous = FULL")                                    \
	X(SYNC_NORMAL, "PRAGMA synchronous = NORMAL")                                \
	X(MASTER_COUNT, "SELECT count(*) FROM sqlite_master")                        \
	X(SCHEMA_HAS, "SELECT count(*) FROM sqlite_master "                          \
		      "WHERE type = 'table' AND name = 'lamfs_schema'")              \
	X(LAMINDB_HAS, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "  \
		       "name IN ('django_migrations', 'lamindb_artifact', 'lamindb_storage')") \
	X(SCHEMA_GET, "SELECT max(version) FROM lamfs_schema")                       \
	X(SCHEMA_SET, "UPDATE lamfs_schema SET version = ?1")                        \
	X(STORAGE_HAS, "SELECT 1 FROM storage WHERE id = ?1")                        \
	X(FOLDER_GET, "SELECT " SQ_FOLDER_COLS " FROM folder WHERE path = ?1")       \
	X(FOLDER_CHILDREN, "SELECT " SQ_FOLDER_COLS ", name FROM folder "            \
			   "WHERE parent = ?1 ORDER BY name")                        \
	X(FOLDER_ADD, "INSERT " SQ_FOLDER_INSERT)                                    \
	X(FOLDER_ADD_MISSING, "INSERT OR IGNORE " SQ_FOLDER_INSERT)                  \
	X(FOLDER_DEL, "DELETE FROM folder WHERE path = ?1")                          \
	X(FOLDER_SET, "UPDATE folder SET mode = ?2, owner_uid = ?3, owner_gid = ?4, " \
		      "mtime_ns = ?5 WHERE path = ?1")                               \
	X(FOLDER_UNDER, "SELECT 1 FROM folder WHERE path >= ?1 AND path < ?2 LIMIT 1") \
	X(FOLDER_UNDER_LEN, "SELECT coalesce(max(length(CAST(path AS BLOB))), 0) "   \
			    "FROM folder WHERE path >= ?1 AND path < ?2")            \
	X(FOLDER_MOVE, "UPDATE folder SET path = ?1, parent = ?2, name = ?3 "        \
		       "WHERE path = ?4")                                            \
	X(FOLDER_MOVE_UNDER, "UPDATE folder SET "                                    \
			     "path = ?1 || substr(path, length(?2) + 1), "           \
			     "parent = ?1 || substr(parent, length(?2) + 1) "        \
			     "WHERE path >= ?3 AND path < ?4")                       \
	X(ART_VISIBLE, "SELECT " SQ_REC_COLS " FROM artifact "                       \
		       "WHERE key = ?1 AND " SQ_VISIBLE)                             \
	X(ART_CHILDREN, "SELECT " SQ_REC_COLS ", name FROM artifact "                \
			"WHERE parent = ?1 AND " SQ_VISIBLE " ORDER BY name")        \
	X(ART_BY_UID, "SELECT " SQ_REC_COLS " FROM artifact WHERE uid = ?1")         \
	X(ART_BY_ID, "SELECT " SQ_REC_COLS " FROM artifact WHERE id = ?1")           \
	X(ART_AT_KEY, "SELECT " SQ_REC_COLS " FROM artifact WHERE key = ?1 ORDER BY id") \
	X(ART_FLAGGED_SAME, "SELECT " SQ_REC_COLS " FROM artifact "                  \
			    "WHERE key = ?1 AND _aux IS NOT NULL AND size = ?2 "     \
			    "AND checksum = ?3 ORDER BY id DESC LIMIT 1")            \
	X(ART_KEY_STEM, "SELECT substr(uid, 1, 16) FROM artifact WHERE key = ?1 "    \
			"ORDER BY is_latest DESC, id DESC LIMIT 1")                  \
	X(ART_STEM_MAX, "SELECT max(uid) FROM artifact WHERE uid >= ?1 AND uid <= ?2") \
	X(ART_ADD, "INSERT INTO artifact (uid, key, parent, name, suffix, size, hash, " \
		   "_hash_type, checksum, is_latest, _aux, branch_id, storage_id, "  \
		   "created_at, updated_at, mode, owner_uid, owner_gid, mtime_ns) "  \
		   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, " SQ_AUX_ONGOING  \
		   ", 1, ?10, ?11, ?11, ?12, ?13, ?14, ?15)")                        \
	X(ART_SET_ATTR, "UPDATE artifact SET mode = ?2, owner_uid = ?3, owner_gid = ?4, " \
			"mtime_ns = ?5, updated_at = ?6 WHERE id = ?1")              \
	X(ART_UNLATEST, "UPDATE artifact SET is_latest = 0 "                         \
			"WHERE key = ?1 AND is_latest = 1 AND id < ?2")              \
	X(ART_COMMIT, "UPDATE artifact SET _aux = NULL, updated_at = ?2, is_latest = " \
		      "NOT EXISTS (SELECT 1 FROM artifact n WHERE n.key = artifact.key " \
		      "AND n.id > artifact.id AND n._aux IS NULL AND n.branch_id = 1) " \
		      "WHERE id = ?1")                                               \
	X(ART_SET_LATEST, "UPDATE artifact SET is_latest = 1 WHERE id = ?1")         \
	X(ART_DEL, "DELETE FROM artifact WHERE id = ?1")                             \
	X(ART_DROP_KEY, "DELETE FROM artifact WHERE key = ?1 "                       \
			"RETURNING uid, suffix, storage_id")                         \
	X(ART_NEWEST_DONE, "SELECT id, uid FROM artifact WHERE key = ?1 AND "        \
			   "branch_id = ?2 AND _aux IS NULL ORDER BY id DESC LIMIT 1") \
	X(ART_UNDER, "SELECT 1 FROM artifact WHERE key >= ?1 AND key < ?2 LIMIT 1")  \
	X(ART_UNDER_LEN, "SELECT coalesce(max(length(CAST(key AS BLOB))), 0) "       \
			 "FROM artifact WHERE key >= ?1 AND key < ?2")               \
	X(ART_MOVE, "UPDATE artifact SET key = ?1, parent = ?2, name = ?3 WHERE key = ?4") \
	X(ART_MOVE_UNDER, "UPDATE artifact SET "                                     \
			  "key = ?1 || substr(key, length(?2) + 1), "                \
			  "parent = ?1 || substr(parent, length(?2) + 1) "           \
			  "WHERE key >= ?3 AND key < ?4")                            \
	X(ART_MAX_ID, "SELECT coalesce(max(id), 0) FROM artifact")                   \
	X(ART_PAGE, "SELECT " SQ_REC_COLS " FROM artifact "                          \
		    "WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3")               \
	X(ART_PAGE_FLAGGED, "SELECT " SQ_REC_COLS " FROM artifact "                  \
			    "WHERE _aux IS NOT NULL AND id > ?1 AND id <= ?2 "       \
			    "ORDER BY id LIMIT ?3")                                  \
	X(ART_TOTALS, "SELECT count(*), coalesce(sum(size), 0) FROM artifact "       \
		      "WHERE " SQ_VISIBLE)                                           \

enum sq_stmt {
#define SQ_ENUM(name, sql) SQ_##name,
	SQ_STATEMENTS(SQ_ENUM)
#undef SQ_ENUM
	SQ_NSTMT
};

static const char *const sq_sql[SQ_NSTMT] = {
#define SQ_TEXT(name, sql) [SQ_##name] = sql,
	SQ_STATEMENTS(SQ_TEXT)
#undef SQ_TEXT
};

struct msq;

/*
 * One save step (save_begin or save_finish) waiting to be committed with
 * others: see "group commit" below.  Embedded first in the step's own
 * arguments, on its caller's stack.
 */
struct sq_job {
	int (*run)(struct msq *q, struct sq_job *j);  /* the step's body, in a transaction */
	int lazy;              /* its commit need not be durable (META_BEGIN_LAZY) */
	int rc;                /* 1 until run; then its result (or the group's error) */
	int done;              /* its group has ended: rc is final */
	struct sq_job *next;   /* the next job in the queue or in the running group */
};

/*
 * The handle.  Every field is guarded by base.lock (meta.c takes it around
 * each op).  One exception to "the lock is held across an op": a group's
 * COMMIT runs with base.lock released and `busy` set; while busy, only the
 * committing thread touches db, and every other thread waits on `idle`
 * (sq_prep) before its first statement.
 */
struct msq {
	struct meta base;             /* first: a struct meta * is a struct msq * */
	sqlite3 *db;
	int readonly;                 /* opened with META_READONLY: writes say -EROFS */
	sqlite3_stmt *st[SQ_NSTMT];   /* prepared on first use, finalised at close */
	int busy;                     /* a group COMMIT is running on db, lock released */
	int sync_normal;              /* synchronous=NORMAL set for a lazy group (sq_sync) */
	pthread_cond_t idle;          /* with base.lock: busy dropped, or a group ended */
	struct sq_job *queue;         /* save steps waiting for the next group, FIFO */
	struct sq_job **queue_tail;   /* where the next job is linked in */
	const struct meta_storage *upgrade;   /* meta_upgrade's storage, during open */
};

static const struct meta_ops sq_ops;

static struct msq *msq(struct meta *m)
{
	assert(m && m->ops == &sq_ops);
	return (struct msq *)m;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- statement helpers ---- */

/* Map a SQLite failure to -errno and log it (lock waits that ran out only
 * as a warning: they are a load problem, not a fault). */
static int sq_fail(struct msq *q, int src, const char *what)
{
	int rc = meta_sqlite_errno(src, sqlite3_system_errno(q->db));

	if (rc == -EBUSY)
		log_warn("meta: %s: %s", what, sqlite3_errmsg(q->db));
	else
		log_err("meta: %s: %s (sqlite %d)", what, sqlite3_errmsg(q->db), src);
	return rc;
}

/* Wait until no group COMMIT is using the connection.  Called before every
 * statement; it waits only before an op's first one (a thread inside a
 * transaction holds base.lock, so no COMMIT can start meanwhile). */
static void sq_wait_idle(struct msq *q)
{
	while (q->busy)
		pthread_cond_wait(&q->idle, &q->base.lock);
}

/* The cached statement `id`, prepared on first use.  Callers bind, step and
 * always sq_done() it. */
static int sq_prep(struct msq *q, enum sq_stmt id, sqlite3_stmt **out)
{
	int src, rc = 0;

	*out = NULL;
	sq_wait_idle(q);
	if (!q->st[id]) {
		src = sqlite3_prepare_v3(q->db, sq_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
					 &q->st[id], NULL);
		if (src != SQLITE_OK) {
			rc = sq_fail(q, src, sq_sql[id]);
			goto out;
		}
	}
	*out = q->st[id];
out:
	return rc;
}

/* Reset s for its next use (also ends the read it held open); NULL is fine. */
static void sq_done(sqlite3_stmt *s)
{
	if (s) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	}
}

/* 1 a row, 0 done, or -errno. */
static int sq_step(struct msq *q, sqlite3_stmt *s)
{
	int src = sqlite3_step(s);
	int rc = 0;

	if (src == SQLITE_ROW)
		rc = 1;
	else if (src != SQLITE_DONE)
		rc = sq_fail(q, src, sqlite3_sql(s));
	return rc;
}

/* `any` is the OR of some sqlite3_bind_* results: 0 when all bound. */
static int sq_bound(struct msq *q, int any)
{
	return any ? sq_fail(q, sqlite3_extended_errcode(q->db), "bind") : 0;
}

static int bt(sqlite3_stmt *s, int i, const char *v)
{
	return sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

static int bi(sqlite3_stmt *s, int i, int64_t v)
{
	return sqlite3_bind_int64(s, i, v);
}

/* Run a statement that needs only ?1 = text (NULL: no parameter) to its end. */
static int sq_run1(struct msq *q, enum sq_stmt id, const char *t1)
{
	sqlite3_stmt *s = NULL;
	int rc = sq_prep(q, id, &s);

	if (rc == 0 && t1)
		rc = sq_bound(q, bt(s, 1, t1));
	while (rc == 0 && (rc = sq_step(q, s)) == 1)
		rc = 0;
	sq_done(s);
	return rc;
}

/* The first column of the first row as an integer; 0 when no row. */
static int sq_int1(struct msq *q, enum sq_stmt id, int64_t *out)
{
	sqlite3_stmt *s = NULL;
	int rc = sq_prep(q, id, &s);

	*out = 0;
	if (rc == 0)
		rc = sq_step(q, s);
	if (rc == 1) {
		*out = sqlite3_column_int64(s, 0);
		rc = 0;
	}
	sq_done(s);
	return rc;
}

/* Copy text column i into buf (size bytes, always terminated). */
static void col_str(sqlite3_stmt *s, int i, char *buf, size_t size)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	size_t n = t ? (size_t)sqlite3_column_bytes(s, i) : 0;

	if (n >= size)
		n = size - 1;
	if (n)
		memcpy(buf, t, n);
	buf[n] = '\0';
}

static void row_record(sqlite3_stmt *s, struct lamfs_record *r)
{
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(s, 0);
	col_str(s, 1, r->uid, sizeof(r->uid));
	col_str(s, 2, r->key, sizeof(r->key));
	col_str(s, 3, r->suffix, sizeof(r->suffix));
	r->size = sqlite3_column_int64(s, 4);
	col_str(s, 5, r->hash, sizeof(r->hash));
	col_str(s, 6, r->hash_type, sizeof(r->hash_type));
	col_str(s, 7, r->checksum, sizeof(r->checksum));
	r->is_latest = sqlite3_column_int(s, 8);
	r->storage_ongoing = sqlite3_column_int(s, 9);
	r->branch_id = sqlite3_column_int(s, 10);
	r->storage_id = sqlite3_column_int(s, 11);
	r->created_at = sqlite3_column_int64(s, 12);
	r->updated_at = sqlite3_column_int64(s, 13);
	r->mode = (uint32_t)sqlite3_column_int64(s, 14);
	r->owner_uid = (uint32_t)sqlite3_column_int64(s, 15);
	r->owner_gid = (uint32_t)sqlite3_column_int64(s, 16);
	r->mtime_ns = sqlite3_column_int64(s, 17);
}

static void row_folder(sqlite3_stmt *s, struct lamfs_folder *f)
{
	memset(f, 0, sizeof(*f));
	col_str(s, 0, f->path, sizeof(f->path));
	f->mode = (uint32_t)sqlite3_column_int64(s, 1);
	f->owner_uid = (uint32_t)sqlite3_column_int64(s, 2);
	f->owner_gid = (uint32_t)sqlite3_column_int64(s, 3);
	f->mtime_ns = sqlite3_column_int64(s, 4);
}

/* Step a bound record query once: 1 and *out set (when not NULL) on a row,
 * 0 when none, or -errno.  Resets s. */
static int rec_step(struct msq *q, sqlite3_stmt *s, struct lamfs_record *out)
{
	int rc = sq_step(q, s);

	if (rc == 1 && out)
		row_record(s, out);
	sq_done(s);
	return rc;
}

/* ---- transactions ---- */

/* Make commits durable (full = 1: synchronous=FULL, as the connection
 * opens) or not (0: NORMAL, for a group of lazy save steps only).  Outside a
 * transaction; 0 or -errno. */
static int sq_sync(struct msq *q, int full)
{
	int rc = 0;

	if (q->sync_normal == !full)
		goto out;
	rc = sq_run1(q, full ? SQ_SYNC_FULL : SQ_SYNC_NORMAL, NULL);
	if (rc == 0)
		q->sync_normal = !full;
	else
		log_err("meta: cannot set synchronous = %s: %s", full ? "FULL" : "NORMAL",
			sqlite3_errmsg(q->db));
out:
	return rc;
}

/* Start a transaction: a write one takes the write lock now, and commits
 * durably (every write transaction but a lazy group's). */
static int sq_begin(struct msq *q, int write)
{
	int rc = 0;

	if (write && q->readonly)
		rc = -EROFS;
	if (rc == 0 && write)
		rc = sq_sync(q, 1);
	if (rc == 0)
		rc = sq_run1(q, write ? SQ_BEGIN_WRITE : SQ_BEGIN, NULL);
	return rc;
}

/* End the transaction sq_begin() started: commit when rc is 0 (a failed
 * commit is rolled back and returned), else roll back and return rc. */
static int sq_end(struct msq *q, int rc)
{
	if (rc == 0)
		rc = sq_run1(q, SQ_COMMIT, NULL);
	if (rc != 0 && !sqlite3_get_autocommit(q->db) && sq_run1(q, SQ_ROLLBACK, NULL) != 0)
		log_err("meta: rollback failed: %s", sqlite3_errmsg(q->db));
	return rc;
}

/*
 * ---- group commit ----
 *
 * A durable commit costs a WAL fsync.  Saves that reach the store while
 * another group's COMMIT is running queue up, and the next group runs them
 * all in one transaction, each inside its own SAVEPOINT (a step that fails
 * rolls back only itself), and commits once.  A save alone leads its own
 * group at once: nobody waits for company.
 *
 * Every member returns only after the COMMIT holding its change is durable;
 * when the COMMIT (or BEGIN) fails, every member gets that error, and the core
 * fails its save as it always did.  The one exception: a group of lazy jobs
 * only (META_BEGIN_LAZY) commits with synchronous=NORMAL, no WAL fsync; the
 * WAL is append-only, so the next durable commit (the save's finish) makes it
 * durable too.  The connection is back at FULL before anything else runs.  Nothing uncommitted is ever read as
 * committed: this process's reads use this connection and wait (sq_prep) while
 * a COMMIT is running, so they see the group either not yet begun or
 * committed; other connections and processes see a WAL commit only once it is
 * synced (synchronous=FULL).  Other processes' writers meet BEGIN IMMEDIATE's
 * busy timeout, as before.
 */

/* Run one job in its SAVEPOINT; a uid collision (-EAGAIN) tries again with
 * a fresh uid.  The group's transaction is open. */
static int job_run(struct msq *q, struct sq_job *j)
{
	int tries = 0, rc;

	do {
		rc = sq_run1(q, SQ_SAVEPOINT, NULL);
		if (rc == 0)
			rc = j->run(q, j);
		if (rc < 0 && !sqlite3_get_autocommit(q->db) &&
		    sq_run1(q, SQ_ROLLBACK_TO, NULL) != 0)
			log_err("meta: rollback to savepoint failed: %s", sqlite3_errmsg(q->db));
		if (!sqlite3_get_autocommit(q->db) && sq_run1(q, SQ_RELEASE, NULL) != 0 &&
		    rc == 0)
			rc = -EIO;
		/* never again once SQLite dropped the transaction: a SAVEPOINT
		 * would open a new one, outside the group's */
	} while (rc == -EAGAIN && !sqlite3_get_autocommit(q->db) && ++tries < SQ_UID_TRIES);
	return rc;
}

/* COMMIT the group's transaction with base.lock released, so more saves can
 * queue meanwhile; on failure roll back.  0 or -errno. */
static int group_commit(struct msq *q)
{
	sqlite3_stmt *s = NULL;
	int src, rc = sq_prep(q, SQ_COMMIT, &s);

	if (rc == 0) {
		q->busy = 1;
		pthread_mutex_unlock(&q->base.lock);
		src = sqlite3_step(s);
		pthread_mutex_lock(&q->base.lock);
		q->busy = 0;
		if (src != SQLITE_DONE)
			rc = sq_fail(q, src, "COMMIT");
		sq_done(s);
	}
	if (rc != 0 && !sqlite3_get_autocommit(q->db) && sq_run1(q, SQ_ROLLBACK, NULL) != 0)
		log_err("meta: rollback failed: %s", sqlite3_errmsg(q->db));
	return rc;
}

/* Take every queued job, run them in one transaction and commit it; set each
 * job's final rc and wake its owner. */
static void group_lead(struct msq *q)
{
	struct sq_job *list = q->queue, *j;
	int lazy = 1, rc = 0;

	q->queue = NULL;
	q->queue_tail = &q->queue;
	for (j = list; j; j = j->next)
		lazy = lazy && j->lazy;
	if (q->readonly)
		rc = -EROFS;
	if (rc == 0)
		rc = sq_sync(q, !lazy);
	if (rc == 0)
		rc = sq_run1(q, SQ_BEGIN_WRITE, NULL);
	for (j = list; rc == 0 && j; j = j->next) {
		j->rc = job_run(q, j);
		if (sqlite3_get_autocommit(q->db))   /* SQLite dropped the whole transaction */
			rc = j->rc < 0 ? j->rc : -EIO;
	}
	if (rc == 0)
		rc = group_commit(q);
	if (lazy)
		sq_sync(q, 1);   /* on failure the next write's sq_begin tries again */
	for (j = list; j; j = j->next) {
		if (rc < 0 && j->rc >= 0)
			j->rc = rc;
		j->done = 1;
	}
	pthread_cond_broadcast(&q->idle);
}

/* GCC 12+ cannot see that group_lead unlinks every job before its owner
 * returns, and calls the queued stack address dangling. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
/* Run j (its `run` set, the rest zero) in the next group commit; returns
 * once that commit is durable (0) or the step or its group failed (-errno).
 * j is out of the queue again when this returns. */
static int group_run(struct msq *q, struct sq_job *j)
{
	j->rc = 1;
	j->done = 0;
	j->next = NULL;
	*q->queue_tail = j;
	q->queue_tail = &j->next;
	while (!j->done) {
		if (q->busy)
			pthread_cond_wait(&q->idle, &q->base.lock);
		else
			group_lead(q);
	}
	return j->rc;
}
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif

/* ---- small queries, used inside transactions ---- */

/* 1 and *out (when not NULL) when folder row `path` exists, 0 when not. */
static int folder_get(struct msq *q, const char *path, struct lamfs_folder *out)
{
	sqlite3_stmt *s = NULL;
	int rc = sq_prep(q, SQ_FOLDER_GET, &s);

	if (rc == 0)
		rc = sq_bound(q, bt(s, 1, path));
	if (rc == 0)
		rc = sq_step(q, s);
	if (rc == 1 && out)
		row_folder(s, out);
	sq_done(s);
	return rc;
}

/* A record query with ?1 = text: 1 and *out on a row, 0 none. */
static int rec_by_text(struct msq *q, enum sq_stmt id, const char *t1,
		       struct lamfs_record *out)
{
	sqlite3_stmt *s = NULL;
	int rc = sq_prep(q, id, &s);

	if (rc == 0)
		rc = sq_bound(q, bt(s, 1, t1));
	if (rc == 0)
		rc = rec_step(q, s, out);
	sq_done(s);
	return rc;
}

/* The visible file at key: 1 and *out (when not NULL), 0 none. */
static int rec_visible(struct msq *q, const char *key, struct lamfs_record *out)
{
	return rec_by_text(q, SQ_ART_VISIBLE, key, out);
}

static int rec_by_uid(struct msq *q, const char *uid, struct lamfs_record *out)
{
	return rec_by_text(q, SQ_ART_BY_UID, uid, out);
}

static int rec_by_id(struct msq *q, int64_t id, struct lamfs_record *out)
{
	sqlite3_stmt *s = NULL;
	int rc = sq_prep(q, SQ_ART_BY_ID, &s);

	if (rc == 0)
		rc = sq_bound(q, bi(s, 1, id));
	if (rc == 0)
		rc = rec_step(q, s, out);
	sq_done(s);
	if (rc == 0)
		rc = -ENOENT;   /* callers ask for a row they know exists */
	return rc == 1 ? 0 : rc;
}

/* What is visible at key: META_DIR, META_FILE or META_NONE into *type. */
static int type_at(struct msq *q, const char *key, enum meta_type *type)
{
	int rc = key[0] ? folder_get(q, key, NULL) : 1;

	*type = META_NONE;
	if (rc == 1)
		*type = META_DIR;
	else if (rc == 0 && (rc = rec_visible(q, key, NULL)) == 1)
		*type = META_FILE;
	return rc < 0 ? rc : 0;
}

/* lo = key + "/", hi = key + "0": keys strictly inside folder key are the
 * ones in [lo, hi).  key is not the root. */
static void subtree_bounds(const char *key, char lo[SQ_PATH_MAX], char hi[SQ_PATH_MAX])
{
	snprintf(lo, SQ_PATH_MAX, "%s/", key);
	snprintf(hi, SQ_PATH_MAX, "%s0", key);
}

/* 1 when a folder row or any record (committed or flagged) is inside key. */
static int subtree_used(struct msq *q, const char *key)
{
	char lo[SQ_PATH_MAX], hi[SQ_PATH_MAX];
	enum sq_stmt ids[2] = { SQ_FOLDER_UNDER, SQ_ART_UNDER };
	sqlite3_stmt *s = NULL;
	int i, rc = 0;

	subtree_bounds(key, lo, hi);
	for (i = 0; i < 2 && rc == 0; i++) {
		rc = sq_prep(q, ids[i], &s);
		if (rc == 0)
			rc = sq_bound(q, bt(s, 1, lo) | bt(s, 2, hi));
		if (rc == 0)
			rc = sq_step(q, s);
		sq_done(s);
	}
	return rc;
}

/* Longest key in bytes strictly inside folder key (folders and records). */
static int subtree_max_len(struct msq *q, const char *key, int64_t *len)
{
	char lo[SQ_PATH_MAX], hi[SQ_PATH_MAX];
	enum sq_stmt ids[2] = { SQ_FOLDER_UNDER_LEN, SQ_ART_UNDER_LEN };
	sqlite3_stmt *s = NULL;
	int i, rc = 0;

	*len = 0;
	subtree_bounds(key, lo, hi);
	for (i = 0; i < 2 && rc == 0; i++) {
		rc = sq_prep(q, ids[i], &s);
		if (rc == 0)
			rc = sq_bound(q, bt(s, 1, lo) | bt(s, 2, hi));
		if (rc == 0)
			rc = sq_step(q, s);
		if (rc == 1 && sqlite3_column_int64(s, 0) > *len)
			*len = sqlite3_column_int64(s, 0);
		if (rc == 1)
			rc = 0;
		sq_done(s);
	}
	return rc;
}

/* meta_walk_ancestors callback: -ENOTDIR when prefix is a visible file. */
static int not_a_file(void *ctx, const char *prefix)
{
	int rc = rec_visible(ctx, prefix, NULL);

	return rc > 0 ? -ENOTDIR : rc;
}

/*
 * Can key's ancestors hold it?  0 when its parent folder exists (folder rows
 * form a tree, so every ancestor is a folder) or, with need_parent 0, when
 * the missing ones can be made; -ENOTDIR when an ancestor is a visible file;
 * -ENOENT when need_parent and the parent is missing.
 */
static int check_ancestors(struct msq *q, const char *key, int need_parent)
{
	char buf[LAMFS_KEY_MAX + 1];
	int rc;

	key_split(key, buf);
	rc = buf[0] ? folder_get(q, buf, NULL) : 1;
	if (rc != 0) {
		rc = rc > 0 ? 0 : rc;
		goto out;
	}
	rc = meta_walk_ancestors(key, not_a_file, q);
	if (rc == 0 && need_parent)
		rc = -ENOENT;
out:
	return rc;
}

/* Insert folder row `path` (its parent and name derived); or_ignore keeps an
 * existing one. */
static int folder_add(struct msq *q, const char *path, int or_ignore, uint32_t mode,
		      uint32_t uid, uint32_t gid, int64_t mtime_ns)
{
	char parent[LAMFS_KEY_MAX + 1];
	const char *name = key_split(path, parent);
	sqlite3_stmt *s = NULL;
	int rc = sq_prep(q, or_ignore ? SQ_FOLDER_ADD_MISSING : SQ_FOLDER_ADD, &s);

	if (rc == 0)
		rc = sq_bound(q, bt(s, 1, path) | bt(s, 2, parent) | bt(s, 3, name) |
				     bi(s, 4, mode & 07777) | bi(s, 5, uid) | bi(s, 6, gid) |
				     bi(s, 7, mtime_ns));
	if (rc == 0)
		rc = sq_step(q, s);
	sq_done(s);
	return rc;
}

struct add_folder_ctx {
	struct msq *q;
	uint32_t uid, gid;
	int64_t now;
};

/* meta_walk_ancestors callback: make the folder prefix if it is missing. */
static int add_folder(void *ctx, const char *prefix)
{
	struct add_folder_ctx *a = ctx;

	return folder_add(a->q, prefix, 1, 0755, a->uid, a->gid, a->now);
}

/* Make every missing ancestor folder of key (mode 0755, the given owner).
 * The caller has run check_ancestors(). */
static int ensure_ancestors(struct msq *q, const char *key, uint32_t uid, uint32_t gid,
			    int64_t now)
{
	struct add_folder_ctx a = { q, uid, gid, now };
	char buf[LAMFS_KEY_MAX + 1];
	int rc;

	key_split(key, buf);
	rc = buf[0] ? folder_get(q, buf, NULL) : 1;
	if (rc != 0) {
		rc = rc > 0 ? 0 : rc;
		goto out;
	}
	rc = meta_walk_ancestors(key, add_folder, &a);
out:
	return rc;
}

/* Delete every record at key, saves in flight too (their upload then finds
 * the record gone and drops its bytes), appending each to d. */
static int drop_key(struct msq *q, const char *key, struct meta_dropped *d)
{
	char uid[LAMFS_UID_LEN + 1], suffix[LAMFS_SUFFIX_MAX + 1];
	sqlite3_stmt *s = NULL;
	int rc = sq_prep(q, SQ_ART_DROP_KEY, &s);

	if (rc == 0)
		rc = sq_bound(q, bt(s, 1, key));
	while (rc == 0 && (rc = sq_step(q, s)) == 1) {
		col_str(s, 0, uid, sizeof(uid));
		col_str(s, 1, suffix, sizeof(suffix));
		rc = meta_dropped_add(d, uid, suffix, sqlite3_column_int(s, 2));
	}
	sq_done(s);
	return rc;
}

/* Run a statement whose one parameter ?1 is a row id; 0 or -errno. */
static int sq_run_id(struct msq *q, enum sq_stmt id, int64_t i1)
{
	sqlite3_stmt *s = NULL;
	int rc = sq_prep(q, id, &s);

	if (rc == 0)
		rc = sq_bound(q, bi(s, 1, i1));
	if (rc == 0)
		rc = sq_step(q, s);
	sq_done(s);
	return rc < 0 ? rc : 0;
}

/* ---- open, create, migrate, close ---- */

/* The version of lamfs's tables in the database (0: none) and whether
 * LaminDB's tables are there (*lamindb); -EBADMSG for a database with
 * tables that are neither (someone else's). */
static int schema_read(struct msq *q, int64_t *version, int *lamindb)
{
	int64_t n = 0, l = 0;
	int rc = sq_int1(q, SQ_SCHEMA_HAS, &n);

	*version = 0;
	if (rc == 0)
		rc = sq_int1(q, SQ_LAMINDB_HAS, &l);
	if (lamindb)
		*lamindb = l == 3;
	if (rc == 0 && n == 0) {
		rc = sq_int1(q, SQ_MASTER_COUNT, &n);
		if (rc == 0 && n != 0 && l != 3) {
			log_err("meta: %s: neither a lamfs nor a LaminDB database",
				sqlite3_db_filename(q->db, "main"));
			rc = -EBADMSG;
		}
		goto out;
	}
	if (rc == 0)
		rc = sq_int1(q, SQ_SCHEMA_GET, version);
	if (rc == 0 && *version <= 0)
		rc = -EBADMSG;
out:
	return rc;
}

/* The rows `lamin init` writes (LaminDB's seed file: the anonymous user,
 * branches -1/0/1; space 1 and the migrations are in LaminDB's SQLite file
 * already), as Django would insert them into SQLite: times without the
 * "+00" of PostgreSQL's text. */
static int seed_rows(struct msq *q)
{
	struct lamindb_script sc;
	char table[64], cols[256], sql[512], *piece = NULL;
	const char *vals[16];
	int kind, n = 0, rc = 0;

	lamindb_script_init(&sc, (const char *)lamindb_pg_seed, lamindb_pg_seed_len);
	while (rc >= 0 && (kind = lamindb_script_next(&sc, "public", &piece)) > 0) {
		if (kind == LAMINDB_SQL && !strncmp(piece, "COPY ", 5)) {
			size_t len;
			int i;

			rc = lamindb_copy_header(piece, table, sizeof(table), cols, sizeof(cols));
			for (n = 1, i = 0; cols[i]; i++)
				n += cols[i] == ',';
			len = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO %s (%s) VALUES (",
					       table, cols);
			for (i = 1; i <= n && len < sizeof(sql); i++)
				len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s$%d",
							i > 1 ? ", " : "", i);
			if (len < sizeof(sql))
				len += (size_t)snprintf(sql + len, sizeof(sql) - len,
							") ON CONFLICT DO NOTHING");
			if (rc == 0 && (n > 16 || len >= sizeof(sql)))
				rc = -EINVAL;
		} else if (kind == LAMINDB_COPY_ROW) {
			char *f = piece, *e;
			int i;

			for (i = 0; i < n; i++) {
				e = f + strcspn(f, "\t");
				if (*e)
					*e++ = '\0';
				/* "...:22.440236+00": Django's SQLite text has no zone */
				if (strlen(f) > 19 && f[4] == '-' && f[10] == ' ' &&
				    !strcmp(f + strlen(f) - 3, "+00"))
					f[strlen(f) - 3] = '\0';
				vals[i] = strcmp(f, "\\N") ? f : NULL;
				f = e;
			}
			rc = q->base.ops->sql(&q->base, sql, n, vals, NULL, NULL);
		}
		free(piece);
		piece = NULL;
	}
	if (rc < 0)
		log_err("meta: cannot write LaminDB's seed rows (%s)", strerror(-rc));
	return rc < 0 ? rc : 0;
}

struct master_rows {
	char **v;      /* name, sql, name, sql, ... */
	size_t n, cap;
};

/* A (name, sql) row of sqlite_master appended to a master_rows. */
static int master_row(void *ctx, int ncols, const char *const *vals)
{
	struct master_rows *r = ctx;
	char **nv;
	int i;

	if (ncols != 2 || !vals[0] || !vals[1])
		return -EIO;
	if (r->n + 2 > r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		nv = realloc(r->v, r->cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		r->v = nv;
	}
	for (i = 0; i < 2; i++) {
		r->v[r->n] = strdup(vals[i]);
		if (!r->v[r->n])
			return -ENOMEM;
		r->n++;
	}
	return 0;
}

static void master_rows_free(struct master_rows *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* Run sql (NULL: no memory) in main; what failed is logged with name. */
static int exec_on(struct msq *q, const char *sql, const char *name)
{
	char *err = NULL;
	int src = sql ? sqlite3_exec(q->db, sql, NULL, NULL, &err) : SQLITE_NOMEM;

	if (src != SQLITE_OK)
		log_err("meta: copying LaminDB's %s: %s", name, err ? err : "?");
	sqlite3_free(err);
	return src == SQLITE_OK ? 0 : meta_sqlite_errno(src, 0);
}

#define IS_TABLE(sql) (!strncmp((sql), "CREATE TABLE", 12))

/* meta_upgrade: LaminDB's schema and rows from its own file (attached as
 * lamindb_src) into main, exactly as a new store has them: every table
 * (foreign keys need their targets), then the rows, then indexes and the
 * rest of sqlite_master in the file's order, then the AUTOINCREMENT
 * counters. */
static int lamindb_copy(struct msq *q)
{
	struct master_rows t = { 0 };
	char *copy;
	size_t i;
	int rc = q->base.ops->sql(&q->base, "SELECT name, sql FROM lamindb_src.sqlite_master "
				  "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite^_%' ESCAPE '^' "
				  "ORDER BY type <> 'table', rowid", 0, NULL, master_row, &t);

	for (i = 0; rc >= 0 && i < t.n; i += 2)
		if (IS_TABLE(t.v[i + 1]))
			rc = exec_on(q, t.v[i + 1], t.v[i]);
	for (i = 0; rc >= 0 && i < t.n; i += 2) {
		if (!IS_TABLE(t.v[i + 1]))
			continue;
		copy = sqlite3_mprintf("INSERT INTO main.\"%w\" SELECT * FROM lamindb_src.\"%w\"",
				       t.v[i], t.v[i]);
		rc = exec_on(q, copy, t.v[i]);
		sqlite3_free(copy);
	}
	for (i = 0; rc >= 0 && i < t.n; i += 2)
		if (!IS_TABLE(t.v[i + 1]))
			rc = exec_on(q, t.v[i + 1], t.v[i]);
	/* the counters as the file has them, not as the row copies left them */
	if (rc >= 0)
		rc = q->base.ops->sql(&q->base, "DELETE FROM main.sqlite_sequence WHERE name IN "
				      "(SELECT name FROM lamindb_src.sqlite_master)", 0, NULL,
				      NULL, NULL);
	if (rc >= 0)
		rc = q->base.ops->sql(&q->base, "INSERT INTO main.sqlite_sequence SELECT * FROM "
				      "lamindb_src.sqlite_sequence", 0, NULL, NULL, NULL);
	master_rows_free(&t);
	return rc < 0 ? rc : 0;
}

/* In a write transaction: bring the schema to META_SCHEMA_VERSION. */
static int migrate_body(struct msq *q, int created)
{
	char *err = NULL;
	int64_t v = 0;
	int lamindb = 0;
	int src, rc = schema_read(q, &v, &lamindb);
	/* meta_upgrade of a store from before LaminDB's schema */
	int adding = !created && !lamindb && q->upgrade;

	if (rc == 0 && v > META_SCHEMA_VERSION)
		rc = -EPROTO;   /* a newer lamfs migrated it meanwhile */
	if (rc == 0 && adding)
		rc = lamindb_copy(q);
	if (rc == 0 && (created || adding))
		rc = seed_rows(q);
	for (; rc == 0 && v < META_SCHEMA_VERSION; v++) {
		src = sqlite3_exec(q->db, sq_migrations[v], NULL, NULL, &err);
		if (src != SQLITE_OK) {
			log_err("meta: schema step %lld -> %lld: %s", (long long)v,
				(long long)v + 1, err ? err : "?");
			rc = meta_sqlite_errno(src, 0);
		}
		sqlite3_free(err);
		err = NULL;
	}
	if (rc == 0 && adding)
		rc = meta_sql_upgrade_storage(&q->base, q->upgrade);
	if (rc == 0) {
		sqlite3_stmt *s = NULL;

		rc = sq_prep(q, SQ_SCHEMA_SET, &s);
		if (rc == 0)
			rc = sq_bound(q, bi(s, 1, META_SCHEMA_VERSION));
		if (rc == 0)
			rc = sq_step(q, s);
		sq_done(s);
	}
	return rc;
}

static int migrate(struct msq *q, int created)
{
	int rc = sq_begin(q, 1);

	if (rc == 0)
		rc = sq_end(q, migrate_body(q, created));
	return rc;
}

static int lamindb_write(int fd);

/*
 * meta_upgrade (meta.h) of a store from before LaminDB's schema, outside
 * any transaction (VACUUM INTO and ATTACH cannot run inside one): the
 * backup copy, LaminDB's file written beside the store and attached, then
 * migrate() in one transaction, which copies from it.
 */
static int upgrade(struct msq *q, const char *name, int64_t from)
{
	char bak[PATH_MAX], tmp[PATH_MAX];
	const char *p = bak;
	int fd = -1, attached = 0, rc = 0;

	if (snprintf(bak, sizeof(bak), "%s%s", name, META_UPGRADE_BACKUP) >= (int)sizeof(bak) ||
	    snprintf(tmp, sizeof(tmp), "%s.lamindb-XXXXXX", name) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	if (unlink(bak) != 0 && errno != ENOENT)
		rc = -errno;
	if (rc == 0)
		rc = q->base.ops->sql(&q->base, "VACUUM INTO $1", 1, &p, NULL, NULL);
	if (rc >= 0) {
		fd = mkstemp(tmp);
		rc = fd < 0 ? -errno : lamindb_write(fd);
	}
	if (rc >= 0) {
		p = tmp;
		rc = q->base.ops->sql(&q->base, "ATTACH $1 AS lamindb_src", 1, &p, NULL, NULL);
		attached = rc >= 0;
	}
	if (rc >= 0) {
		log_info("meta: upgrading %s from lamfs schema %lld to %d (LaminDB's schema "
			 "added); its copy from before is %s", name, (long long)from,
			 META_SCHEMA_VERSION, bak);
		rc = migrate(q, 0);
	}
	if (attached)
		sqlite3_exec(q->db, "DETACH lamindb_src", NULL, NULL, NULL);
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	if (rc < 0)
		log_err("meta: %s: the upgrade failed (%s); nothing was changed", name,
			strerror(-rc));
	else
		q->base.upgraded = 1;
	return rc < 0 ? rc : 0;
}

/* Per-connection settings.  Writes nothing when the handle is read-only. */
static int configure(struct msq *q)
{
	const unsigned char *mode = NULL;
	sqlite3_stmt *s = NULL;
	int src, rc = 0;

	/* LaminDB's file keeps its own 4 KiB pages.  (8 KiB pages made a folder
	 * rename about 10% faster, but rewriting the 5 MiB file at every create
	 * cost 0.5 s per init and doubled the store's size.) */
	src = sqlite3_exec(q->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
	/* Room for the pages a big rename rewrites, so they are not spilled to
	 * the WAL and read back mid-transaction (the default is 2 MiB).  The
	 * cache grows only as it is used. */
	if (src == SQLITE_OK)
		src = sqlite3_exec(q->db, "PRAGMA cache_size = -32768", NULL, NULL, NULL);
	if (src == SQLITE_OK && !q->readonly)
		src = sqlite3_exec(q->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
	if (src != SQLITE_OK) {
		rc = sq_fail(q, src, "pragma");
		goto out;
	}
	if (q->readonly)
		goto out;
	rc = sq_prep(q, SQ_PRAGMA_WAL, &s);
	if (rc == 0)
		rc = sq_step(q, s);
	if (rc == 1)
		mode = sqlite3_column_text(s, 0);
	if (rc >= 0 && (!mode || strcmp((const char *)mode, "wal") != 0)) {
		log_err("meta: %s: cannot use the WAL journal (got %s)",
			sqlite3_db_filename(q->db, "main"), mode ? (const char *)mode : "?");
		rc = -EIO;
	}
	if (rc == 1)
		rc = 0;
	sq_done(s);
out:
	return rc;
}

/* Open the file with SQLite; nothing is read or written yet. */
static int db_open(struct msq *q, const char *path)
{
	int how = (q->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
		  SQLITE_OPEN_NOMUTEX;   /* base.lock serialises the handle */
	int src = sqlite3_open_v2(path, &q->db, how, NULL);
	int rc = 0;

	if (src != SQLITE_OK) {
		rc = q->db ? sq_fail(q, src, path) : -ENOMEM;
		goto out;
	}
	sqlite3_extended_result_codes(q->db, 1);
	sqlite3_busy_timeout(q->db, SQ_BUSY_TIMEOUT_MS);
out:
	return rc;
}

/* Read the database header and schema: -EBADMSG (logged with the file's
 * name) when the file is not a database or is damaged. */
static int db_readable(struct msq *q)
{
	sqlite3_stmt *s = NULL;
	int src, rc = sq_prep(q, SQ_PRAGMA_SCHEMA, &s);

	if (rc == 0) {
		src = sqlite3_step(s);
		if (src != SQLITE_ROW && src != SQLITE_DONE) {
			rc = meta_sqlite_errno(src, sqlite3_system_errno(q->db));
			log_err("meta: %s: %s", sqlite3_db_filename(q->db, "main"),
				rc == -EBADMSG ? "not a database, or damaged"
				: sqlite3_errmsg(q->db));
		}
	}
	sq_done(s);
	return rc;
}

/* PRAGMA quick_check: a damaged page is found when the store is opened for
 * writing (a mount, a save, a repair), not by the first unlucky read.  It reads
 * every page once, about a tenth of a second per 100,000 artifacts. */
static int db_quick_check(struct msq *q)
{
	sqlite3_stmt *s = NULL;
	int src = sqlite3_prepare_v2(q->db, "PRAGMA quick_check(1)", -1, &s, NULL);
	int rc = 0;

	if (src == SQLITE_OK)
		src = sqlite3_step(s);
	if (src == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(s, 0);

		if (!t || strcmp((const char *)t, "ok") != 0) {
			log_err("meta: %s: damaged (quick_check: %s)",
				sqlite3_db_filename(q->db, "main"), t ? (const char *)t : "?");
			rc = -EBADMSG;
		}
	} else {
		rc = meta_sqlite_errno(src, sqlite3_system_errno(q->db));
	}
	sqlite3_finalize(s);
	return rc;
}

/* Bring an opened database into use.  Reads before anything writes: a file
 * that is not a database, or is damaged, or is newer, or holds another
 * LaminDB migration, is left untouched.  created: we wrote LaminDB's file
 * just now; create: META_CREATE (an existing file may be attached only when
 * it is LaminDB's without lamfs's tables). */
static int db_attach(struct msq *q, int created, int create)
{
	const char *name;
	int64_t v = 0;
	int lamindb = 0, upgrading = 0;
	int rc = db_readable(q);

	name = sqlite3_db_filename(q->db, "main");
	if (rc == 0)
		rc = schema_read(q, &v, &lamindb);
	if (create && !created && (rc == -EBADMSG || (rc == 0 && (v != 0 || !lamindb))))
		rc = -EEXIST;   /* a lamfs store already, or not LaminDB's: left alone */
	if (rc == 0 && v > META_SCHEMA_VERSION) {
		log_err("meta: %s: schema version %lld is newer than this lamfs (%d)", name,
			(long long)v, META_SCHEMA_VERSION);
		meta_set_open_why("written by a newer lamfs; upgrade lamfs");
		rc = -EPROTO;
	}
	if (rc == 0 && v == 0 && !lamindb) {
		/* An empty file where a store should be is a lost or truncated
		 * database, never one to set up afresh (that would drop every record). */
		log_err("meta: %s: empty: not a lamfs database (lost or truncated?)", name);
		rc = -EBADMSG;
	}
	if (rc == 0 && v == 0 && !create) {
		log_err("meta: %s: a LaminDB database without lamfs's tables (lamfs init "
			"attaches to it)", name);
		rc = -ENOENT;
	}
	if (rc == 0 && !lamindb && q->upgrade && !q->readonly) {
		upgrading = 1;
	} else if (rc == 0 && !lamindb) {
		meta_set_open_why("made by a lamfs from before LaminDB's schema (schema %lld): "
				  "run `lamfs upgrade INSTANCE` once, with no mount", (long long)v);
		log_err("meta: %s: %s", name, meta_open_why());
		rc = -EPROTO;
	}
	if (rc == 0 && !upgrading)
		rc = meta_sql_lamindb_check(&q->base, name);
	if (rc == 0 && v < META_SCHEMA_VERSION && q->readonly) {
		meta_set_open_why("written by an older lamfs: a read-write open migrates it");
		rc = -EPROTO;   /* it needs a migration, which a read-only open cannot do */
	}
	if (rc == 0 && !created && !q->readonly)
		rc = db_quick_check(q);
	if (rc == 0)
		rc = configure(q);
	if (rc == 0 && v < META_SCHEMA_VERSION) {
		if (v != 0 && !upgrading)
			log_info("meta: migrating %s from schema %lld to %d", name, (long long)v,
				 META_SCHEMA_VERSION);
		else if (!created && !upgrading)
			log_info("meta: %s: adding lamfs's tables to LaminDB's", name);
		rc = upgrading ? upgrade(q, name, v) : migrate(q, created);
	}
	return rc;
}

/* LaminDB's empty database (its own file's bytes) into fd, synced. */
static int lamindb_write(int fd)
{
	unsigned char *db = NULL;
	size_t len = 0, off = 0;
	ssize_t w;
	int rc = lamindb_gunzip(lamindb_db_gz, lamindb_db_gz_len, &db, &len);

	while (rc == 0 && off < len) {
		w = write(fd, db + off, len - off);
		if (w < 0 && errno != EINTR)
			rc = -errno;
		else if (w > 0)
			off += (size_t)w;
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	free(db);
	return rc;
}

/* Write LaminDB's empty database (its own file's bytes) where a new store
 * will live; -EEXIST when there is a file.  A -wal or -shm file beside a
 * file we just made belongs to a deleted database: SQLite must not replay it
 * into ours. */
static int file_create(const char *path)
{
	char side[PATH_MAX];
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	int rc = fd < 0 ? -errno : 0;

	if (rc < 0)
		goto out;
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
	rc = lamindb_write(fd);
	if (rc < 0)
		unlink(path);
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Remove a store that a failed create left (the file and its side files). */
static void file_remove(const char *path)
{
	static const char *const sides[] = { "", "-wal", "-shm", "-journal" };
	char p[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(sides) / sizeof(sides[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, sides[i]);
		unlink(p);
	}
}

/* 0 when path is an existing regular file (SQLite would make a missing one
 * or fail obscurely on a directory). */
static int file_check(const char *path)
{
	struct stat st;
	int rc = 0;

	if (stat(path, &st) != 0)
		rc = -errno;
	else if (S_ISDIR(st.st_mode))
		rc = -EISDIR;
	return rc;
}

static void sq_free(struct msq *q)
{
	int i;

	if (!q)
		return;
	for (i = 0; i < SQ_NSTMT; i++)
		sqlite3_finalize(q->st[i]);
	if (q->db && sqlite3_close(q->db) != SQLITE_OK)
		log_err("meta: close: %s", sqlite3_errmsg(q->db));
	pthread_cond_destroy(&q->idle);
	free(q);
}

int meta_sqlite_open(const char *path, unsigned flags, const struct meta_storage *upgrade,
		     struct meta **out)
{
	struct msq *q = calloc(1, sizeof(*q));
	int created = 0;
	int rc = q ? 0 : -ENOMEM;

	*out = NULL;
	if (rc < 0)
		goto out;
	q->base.ops = &sq_ops;
	q->readonly = !!(flags & META_READONLY);
	q->upgrade = upgrade;
	q->queue_tail = &q->queue;
	rc = -pthread_cond_init(&q->idle, NULL);
	if (rc < 0) {
		free(q);
		q = NULL;
		goto out;
	}
	if (flags & META_CREATE) {
		rc = file_create(path);
		created = rc == 0;
	}
	/* An existing file: LaminDB's is attached to.  Any other failure to
	 * create (ENOSPC, EACCES) is the answer as it is. */
	if (!(flags & META_CREATE) || rc == -EEXIST)
		rc = file_check(path);
	if (rc == 0)
		rc = db_open(q, path);
	if (rc == 0)
		rc = db_attach(q, created, !!(flags & META_CREATE));
	if (q)
		q->upgrade = NULL;   /* the caller's, valid during open only */
out:
	if (rc < 0) {
		sq_free(q);
		q = NULL;
		if (created)
			file_remove(path);
	}
	*out = q ? &q->base : NULL;
	return rc;
}

static void sq_close(struct meta *m)
{
	sq_free(msq(m));
}

static int sq_schema_version(struct meta *m)
{
	struct msq *q = msq(m);
	int64_t v = 0;
	int rc = schema_read(q, &v, NULL);

	return rc < 0 ? rc : (int)v;
}

/* ---- lookups ---- */

static int lookup_body(struct msq *q, const char *key, struct meta_entry *out)
{
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (key[0] == '\0') {
		out->type = META_DIR;
		out->dir.mode = META_ROOT_MODE;
		goto out;
	}
	rc = folder_get(q, key, &out->dir);
	if (rc == 1) {
		out->type = META_DIR;
		rc = 0;
		goto out;
	}
	if (rc == 0)
		rc = rec_visible(q, key, &out->rec);
	if (rc == 1) {
		out->type = META_FILE;
		rc = 0;
	} else if (rc == 0) {
		rc = -ENOENT;
	}
out:
	return rc;
}

static int sq_lookup(struct meta *m, const char *key, struct meta_entry *out)
{
	struct msq *q = msq(m);
	int rc = sq_begin(q, 0);

	if (rc == 0)
		rc = sq_end(q, lookup_body(q, key, out));
	return rc;
}

/* Call cb on every child row of the bound statement s: folders when dirs,
 * else records (the name is the last column).  *stopped when cb said so. */
static int list_children(struct msq *q, sqlite3_stmt *s, int dirs, meta_dirent_cb cb,
			 void *ctx, int *stopped)
{
	struct meta_entry e;
	int name_col = dirs ? SQ_FOLDER_NCOLS : SQ_REC_NCOLS;
	int r, rc;

	while ((rc = sq_step(q, s)) == 1) {
		memset(&e, 0, sizeof(e));
		e.type = dirs ? META_DIR : META_FILE;
		if (dirs)
			row_folder(s, &e.dir);
		else
			row_record(s, &e.rec);
		r = cb(ctx, (const char *)sqlite3_column_text(s, name_col), &e);
		if (r != 0) {
			*stopped = 1;
			rc = r < 0 ? r : 0;
			break;
		}
	}
	return rc;
}

static int readdir_body(struct msq *q, const char *key, meta_dirent_cb cb, void *ctx)
{
	enum sq_stmt ids[2] = { SQ_FOLDER_CHILDREN, SQ_ART_CHILDREN };
	enum meta_type type = META_NONE;
	sqlite3_stmt *s = NULL;
	int i, stopped = 0;
	int rc = type_at(q, key, &type);

	if (rc == 0 && type != META_DIR)
		rc = type == META_FILE ? -ENOTDIR : -ENOENT;
	for (i = 0; i < 2 && rc == 0 && !stopped; i++) {
		rc = sq_prep(q, ids[i], &s);
		if (rc == 0)
			rc = sq_bound(q, bt(s, 1, key));
		if (rc == 0)
			rc = list_children(q, s, i == 0, cb, ctx, &stopped);
		sq_done(s);
	}
	return rc;
}

static int sq_readdir(struct meta *m, const char *key, meta_dirent_cb cb, void *ctx)
{
	struct msq *q = msq(m);
	int rc = sq_begin(q, 0);

	if (rc == 0)
		rc = sq_end(q, readdir_body(q, key, cb, ctx));
	return rc;
}

static int sq_get_uid(struct meta *m, const char *uid, struct lamfs_record *out)
{
	struct lamfs_record r;
	int rc = rec_by_uid(msq(m), uid, &r);

	if (rc == 1 && out)
		*out = r;
	return rc == 1 ? 0 : rc == 0 ? -ENOENT : rc;
}

/* Append the current row of s to the growing array *v (*n used, *cap room). */
static int push_row(sqlite3_stmt *s, struct lamfs_record **v, size_t *n, size_t *cap)
{
	struct lamfs_record *nv;
	int rc = 0;

	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;

		nv = realloc(*v, ncap * sizeof(**v));
		if (!nv) {
			rc = -ENOMEM;
			goto out;
		}
		*v = nv;
		*cap = ncap;
	}
	row_record(s, &(*v)[(*n)++]);
out:
	return rc;
}

static int sq_versions(struct meta *m, const char *key, struct lamfs_record **v, size_t *n)
{
	struct msq *q = msq(m);
	sqlite3_stmt *s = NULL;
	size_t cap = 0;
	int rc = sq_prep(q, SQ_ART_AT_KEY, &s);

	*v = NULL;
	*n = 0;
	if (rc == 0)
		rc = sq_bound(q, bt(s, 1, key));
	while (rc == 0 && (rc = sq_step(q, s)) == 1)
		rc = push_row(s, v, n, &cap);
	sq_done(s);
	if (rc < 0) {
		free(*v);
		*v = NULL;
		*n = 0;
	}
	return rc;
}

static int sq_max_id(struct meta *m, int64_t *out)
{
	return sq_int1(msq(m), SQ_ART_MAX_ID, out);
}

static int sq_page(struct meta *m, enum meta_foreach_which which, int64_t after, int64_t upto,
		   struct lamfs_record *v, size_t cap, size_t *n)
{
	struct msq *q = msq(m);
	sqlite3_stmt *s = NULL;
	int rc = sq_prep(q, which == META_FLAGGED_RECORDS ? SQ_ART_PAGE_FLAGGED : SQ_ART_PAGE, &s);

	*n = 0;
	if (rc == 0)
		rc = sq_bound(q, bi(s, 1, after) | bi(s, 2, upto) | bi(s, 3, (int64_t)cap));
	while (rc == 0 && *n < cap && (rc = sq_step(q, s)) == 1) {
		row_record(s, &v[(*n)++]);
		rc = 0;
	}
	sq_done(s);
	return rc;
}

static int sq_totals(struct meta *m, uint64_t *files, uint64_t *bytes)
{
	struct msq *q = msq(m);
	sqlite3_stmt *s = NULL;
	int rc = sq_prep(q, SQ_ART_TOTALS, &s);

	*files = 0;
	*bytes = 0;
	if (rc == 0)
		rc = sq_step(q, s);
	if (rc == 1) {
		*files = (uint64_t)sqlite3_column_int64(s, 0);
		*bytes = (uint64_t)sqlite3_column_int64(s, 1);
		rc = 0;
	}
	sq_done(s);
	return rc;
}

/* ---- the save sequence ---- */

/* 0 when a file may live at key: no folder there, no file among its
 * ancestors (missing ones can be made). */
static int file_place_ok(struct msq *q, const char *key)
{
	int rc = folder_get(q, key, NULL);

	if (rc == 1)
		rc = -EISDIR;
	if (rc == 0)
		rc = check_ancestors(q, key, 0);
	return rc;
}

/* The stem the next version at key uses: the key's own (1), else none (0). */
static int key_stem(struct msq *q, const char *key, char stem[LAMFS_STEM_LEN + 1])
{
	sqlite3_stmt *s = NULL;
	int rc = sq_prep(q, SQ_ART_KEY_STEM, &s);

	stem[0] = '\0';
	if (rc == 0)
		rc = sq_bound(q, bt(s, 1, key));
	if (rc == 0)
		rc = sq_step(q, s);
	if (rc == 1)
		col_str(s, 0, stem, LAMFS_STEM_LEN + 1);
	sq_done(s);
	return rc;
}

/* The highest uid with this stem into max (1), or none (0).  Base62 digits
 * sort like their values in ASCII, so the highest uid is the newest version. */
static int stem_max(struct msq *q, const char *stem, char max[LAMFS_UID_LEN + 1])
{
	char lo[LAMFS_UID_LEN + 1], hi[LAMFS_UID_LEN + 1];
	sqlite3_stmt *s = NULL;
	int rc = sq_prep(q, SQ_ART_STEM_MAX, &s);

	snprintf(lo, sizeof(lo), "%.16s0000", stem);
	snprintf(hi, sizeof(hi), "%.16szzzz", stem);
	max[0] = '\0';
	if (rc == 0)
		rc = sq_bound(q, bt(s, 1, lo) | bt(s, 2, hi));
	if (rc == 0)
		rc = sq_step(q, s);
	if (rc == 1 && sqlite3_column_type(s, 0) == SQLITE_NULL)
		rc = 0;
	if (rc == 1)
		col_str(s, 0, max, LAMFS_UID_LEN + 1);
	sq_done(s);
	return rc;
}

/* The uid of a new version at key.  -EAGAIN when a fresh random stem is in
 * use already (the caller retries). */
static int next_uid(struct msq *q, const char *key, char uid[LAMFS_UID_LEN + 1])
{
	char stem[LAMFS_STEM_LEN + 1], max[LAMFS_UID_LEN + 1];
	long v = 0;
	int fresh = 0;
	int rc = key_stem(q, key, stem);

	if (rc == 0) {
		fresh = 1;
		rc = uid_new(uid);
		memcpy(stem, uid, LAMFS_STEM_LEN);
		stem[LAMFS_STEM_LEN] = '\0';
	}
	if (rc >= 0)
		rc = stem_max(q, stem, max);
	if (rc == 1 && fresh)
		rc = -EAGAIN;
	if (rc == 1) {
		v = uid_version(max);
		rc = v < 0 ? -EIO : 0;
		v++;
	}
	if (rc == 0)
		rc = uid_make(stem, v, uid);
	return rc;
}

/* Insert the flagged record for `in` with a new uid; *id is its row id. */
static int insert_new(struct msq *q, const struct lamfs_record *in, int64_t now, int64_t *id)
{
	char uid[LAMFS_UID_LEN + 1], parent[LAMFS_KEY_MAX + 1];
	const char *name = key_split(in->key, parent);
	sqlite3_stmt *s = NULL;
	int src, rc = next_uid(q, in->key, uid);

	if (rc == 0)
		rc = sq_prep(q, SQ_ART_ADD, &s);
	if (rc == 0)
		rc = sq_bound(q, bt(s, 1, uid) | bt(s, 2, in->key) | bt(s, 3, parent) |
				     bt(s, 4, name) | bt(s, 5, in->suffix) | bi(s, 6, in->size) |
				     bt(s, 7, in->hash) | bt(s, 8, in->hash_type) |
				     bt(s, 9, in->checksum) | bi(s, 10, in->storage_id) |
				     bi(s, 11, now) | bi(s, 12, in->mode & 07777) |
				     bi(s, 13, in->owner_uid) | bi(s, 14, in->owner_gid) |
				     bi(s, 15, in->mtime_ns));
	if (rc == 0) {
		src = sqlite3_step(s);
		if (src == SQLITE_DONE)
			*id = sqlite3_last_insert_rowid(q->db);
		else if (src == SQLITE_CONSTRAINT_UNIQUE || src == SQLITE_CONSTRAINT_PRIMARYKEY)
			rc = -EAGAIN;   /* the uid is taken */
		else
			rc = sq_fail(q, src, "insert artifact");
	}
	sq_done(s);
	return rc;
}

/* Resuming: the newest save request's attributes win. */
static int resume_attrs(struct msq *q, const struct lamfs_record *in, int64_t id, int64_t now)
{
	sqlite3_stmt *s = NULL;
	int rc = sq_prep(q, SQ_ART_SET_ATTR, &s);

	if (rc == 0)
		rc = sq_bound(q, bi(s, 1, id) | bi(s, 2, in->mode & 07777) |
				     bi(s, 3, in->owner_uid) | bi(s, 4, in->owner_gid) |
				     bi(s, 5, in->mtime_ns) | bi(s, 6, now));
	if (rc == 0)
		rc = sq_step(q, s);
	sq_done(s);
	return rc;
}

static int storage_check(struct msq *q, int storage_id)
{
	sqlite3_stmt *s = NULL;
	int rc = sq_prep(q, SQ_STORAGE_HAS, &s);

	if (rc == 0)
		rc = sq_bound(q, bi(s, 1, storage_id));
	if (rc == 0)
		rc = sq_step(q, s);
	sq_done(s);
	return rc == 1 ? 0 : rc == 0 ? -EINVAL : rc;
}

/* 1 when the flagged record at in->key with in's size and checksum exists
 * (*cur set), 0 when not. */
static int flagged_same(struct msq *q, const struct lamfs_record *in, struct lamfs_record *cur)
{
	sqlite3_stmt *s = NULL;
	int rc = sq_prep(q, SQ_ART_FLAGGED_SAME, &s);

	if (rc == 0)
		rc = sq_bound(q, bt(s, 1, in->key) | bi(s, 2, in->size) | bt(s, 3, in->checksum));
	if (rc == 0)
		rc = rec_step(q, s, cur);
	sq_done(s);
	return rc;
}

static int begin_body(struct msq *q, const struct lamfs_record *in, struct lamfs_record *res,
		      enum meta_save_state *state, int64_t now)
{
	struct lamfs_record cur;
	int64_t id = 0;
	int rc = file_place_ok(q, in->key);

	if (rc == 0)
		rc = storage_check(q, in->storage_id);
	if (rc == 0)
		rc = rec_visible(q, in->key, &cur);
	if (rc == 1 && cur.size == in->size && !strcmp(cur.checksum, in->checksum)) {
		*state = META_SAVE_EXISTS;
		*res = cur;
		rc = 0;
		goto out;
	}
	if (rc >= 0)
		rc = flagged_same(q, in, &cur);
	if (rc == 1) {
		*state = META_SAVE_RESUME;
		id = cur.id;
		rc = resume_attrs(q, in, id, now);
	} else if (rc == 0) {
		*state = META_SAVE_NEW;
		rc = insert_new(q, in, now, &id);
	}
	/* No folder is made here: a save that fails must leave nothing, not even
	 * its parent folders.  meta_save_finish makes them with the commit. */
	if (rc == 0)
		rc = rec_by_id(q, id, res);
out:
	return rc;
}

struct begin_job {
	struct sq_job job;   /* first: a struct sq_job * is a struct begin_job * */
	const struct lamfs_record *in;
	struct lamfs_record res;
	enum meta_save_state st;
};

static int begin_job_run(struct msq *q, struct sq_job *j)
{
	struct begin_job *b = (struct begin_job *)j;

	b->st = META_SAVE_NEW;
	return begin_body(q, b->in, &b->res, &b->st, now_ns());
}

static int sq_save_begin(struct meta *m, struct lamfs_record *rec, enum meta_save_state *state,
			 unsigned flags)
{
	struct begin_job b = {
		.job.run = begin_job_run,
		.job.lazy = (flags & META_BEGIN_LAZY) != 0,
		.in = rec,
	};
	int rc = group_run(msq(m), &b.job);

	if (rc == -EAGAIN) {
		log_err("meta: save %s: no free uid after %d tries", rec->key, SQ_UID_TRIES);
		rc = -EBUSY;
	}
	if (rc == 0) {
		*rec = b.res;
		*state = b.st;
	}
	return rc;
}

static int finish_body(struct msq *q, const char *uid, struct lamfs_record *res, int64_t now)
{
	struct lamfs_record r;
	int rc = rec_by_uid(q, uid, &r);

	if (rc == 0)
		rc = -ENOENT;
	if (rc < 0)
		goto out;
	rc = 0;
	if (!r.storage_ongoing) {
		*res = r;   /* finished already: nothing to move */
		goto out;
	}
	rc = file_place_ok(q, r.key);
	if (rc == 0)
		rc = ensure_ancestors(q, r.key, r.owner_uid, r.owner_gid, now);
	if (rc == 0) {
		sqlite3_stmt *s = NULL;

		rc = sq_prep(q, SQ_ART_UNLATEST, &s);
		if (rc == 0)
			rc = sq_bound(q, bt(s, 1, r.key) | bi(s, 2, r.id));
		if (rc == 0)
			rc = sq_step(q, s);
		sq_done(s);
	}
	if (rc == 0) {
		sqlite3_stmt *s = NULL;

		rc = sq_prep(q, SQ_ART_COMMIT, &s);
		if (rc == 0)
			rc = sq_bound(q, bi(s, 1, r.id) | bi(s, 2, now));
		if (rc == 0)
			rc = sq_step(q, s);
		sq_done(s);
	}
	if (rc == 0)
		rc = rec_by_id(q, r.id, res);
out:
	return rc;
}

struct finish_job {
	struct sq_job job;   /* first */
	const char *uid;
	struct lamfs_record res;
};

static int finish_job_run(struct msq *q, struct sq_job *j)
{
	struct finish_job *f = (struct finish_job *)j;

	return finish_body(q, f->uid, &f->res, now_ns());
}

static int sq_save_finish(struct meta *m, const char *uid, struct lamfs_record *rec)
{
	struct finish_job f = { .job.run = finish_job_run, .uid = uid };
	int rc = group_run(msq(m), &f.job);

	if (rc == 0 && rec)
		*rec = f.res;
	return rc;
}

static int abort_body(struct msq *q, const char *uid)
{
	struct lamfs_record r;
	int rc = rec_by_uid(q, uid, &r);

	if (rc == 0)
		rc = -ENOENT;
	else if (rc == 1 && !r.storage_ongoing)
		rc = -EBUSY;
	else if (rc == 1)
		rc = sq_run_id(q, SQ_ART_DEL, r.id);
	return rc;
}

static int sq_save_abort(struct meta *m, const char *uid)
{
	struct msq *q = msq(m);
	int rc = sq_begin(q, 1);

	if (rc == 0)
		rc = sq_end(q, abort_body(q, uid));
	return rc;
}

/* ---- namespace changes ---- */

static int unlink_body(struct msq *q, const char *key, struct meta_dropped *d)
{
	enum meta_type type = META_NONE;
	int rc = type_at(q, key, &type);

	if (rc == 0 && type != META_FILE)
		rc = type == META_DIR ? -EISDIR : -ENOENT;
	if (rc == 0)
		rc = drop_key(q, key, d);
	return rc;
}

static int sq_unlink(struct meta *m, const char *key, struct meta_dropped *dropped)
{
	struct msq *q = msq(m);
	int rc = sq_begin(q, 1);

	if (rc == 0)
		rc = sq_end(q, unlink_body(q, key, dropped));
	return rc;
}

/* 1 when key lies strictly inside folder dir. */
static int key_inside(const char *key, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(key, dir, n) && key[n] == '/';
}

/* Move every record at file key `from` (all versions, flagged too) to `to`,
 * after dropping the committed records at `to`. */
static int rename_file(struct msq *q, const char *from, const char *to, enum meta_type tt,
		       struct meta_dropped *d)
{
	char parent[LAMFS_KEY_MAX + 1];
	const char *name = key_split(to, parent);
	sqlite3_stmt *s = NULL;
	int rc = tt == META_DIR ? -EISDIR : 0;

	if (rc == 0)
		rc = drop_key(q, to, d);
	if (rc == 0)
		rc = sq_prep(q, SQ_ART_MOVE, &s);
	if (rc == 0)
		rc = sq_bound(q, bt(s, 1, to) | bt(s, 2, parent) | bt(s, 3, name) |
				     bt(s, 4, from));
	if (rc == 0)
		rc = sq_step(q, s);
	sq_done(s);
	return rc;
}

/* Rewrite the prefix `from` to `to` of every folder row and record strictly
 * inside folder `from`: two range updates, served by indexes. */
static int move_subtree(struct msq *q, const char *from, const char *to)
{
	char lo[SQ_PATH_MAX], hi[SQ_PATH_MAX];
	enum sq_stmt ids[2] = { SQ_FOLDER_MOVE_UNDER, SQ_ART_MOVE_UNDER };
	sqlite3_stmt *s = NULL;
	int64_t len = 0;
	int i, rc = 0;

	if (strlen(to) > strlen(from)) {
		rc = subtree_max_len(q, from, &len);
		if (rc == 0 && len - (int64_t)strlen(from) + (int64_t)strlen(to) > LAMFS_KEY_MAX)
			rc = -ENAMETOOLONG;
	}
	subtree_bounds(from, lo, hi);
	for (i = 0; i < 2 && rc == 0; i++) {
		rc = sq_prep(q, ids[i], &s);
		if (rc == 0)
			rc = sq_bound(q, bt(s, 1, to) | bt(s, 2, from) | bt(s, 3, lo) |
					     bt(s, 4, hi));
		if (rc == 0)
			rc = sq_step(q, s);
		sq_done(s);
	}
	return rc;
}

/* Move folder `from` with everything inside it to `to` (replacing an empty
 * folder there). */
static int rename_dir(struct msq *q, const char *from, const char *to, enum meta_type tt)
{
	char parent[LAMFS_KEY_MAX + 1];
	const char *name = key_split(to, parent);
	sqlite3_stmt *s = NULL;
	int rc = tt == META_FILE ? -ENOTDIR : 0;

	if (rc == 0 && tt == META_DIR) {
		rc = subtree_used(q, to);
		if (rc == 1)
			rc = -ENOTEMPTY;
		if (rc == 0)
			rc = sq_run1(q, SQ_FOLDER_DEL, to);
	}
	if (rc == 0)
		rc = move_subtree(q, from, to);
	if (rc == 0)
		rc = sq_prep(q, SQ_FOLDER_MOVE, &s);
	if (rc == 0)
		rc = sq_bound(q, bt(s, 1, to) | bt(s, 2, parent) | bt(s, 3, name) |
				     bt(s, 4, from));
	if (rc == 0)
		rc = sq_step(q, s);
	sq_done(s);
	return rc;
}

static int rename_body(struct msq *q, const char *from, const char *to, unsigned flags,
		       struct meta_dropped *d)
{
	enum meta_type ft = META_NONE, tt = META_NONE;
	int rc = type_at(q, from, &ft);

	if (rc == 0 && ft == META_NONE)
		rc = -ENOENT;
	if (rc < 0 || !strcmp(from, to))
		goto out;
	if (ft == META_DIR && key_inside(to, from)) {
		rc = -EINVAL;
		goto out;
	}
	rc = check_ancestors(q, to, 1);
	if (rc == 0)
		rc = type_at(q, to, &tt);
	if (rc == 0 && tt != META_NONE && (flags & META_RENAME_NOREPLACE))
		rc = -EEXIST;
	if (rc == 0)
		rc = ft == META_FILE ? rename_file(q, from, to, tt, d) : rename_dir(q, from, to, tt);
out:
	return rc;
}

static int sq_rename(struct meta *m, const char *from, const char *to, unsigned flags,
		     struct meta_dropped *dropped)
{
	struct msq *q = msq(m);
	int rc = sq_begin(q, 1);

	if (rc == 0)
		rc = sq_end(q, rename_body(q, from, to, flags, dropped));
	return rc;
}

static int mkdir_body(struct msq *q, const struct lamfs_folder *dir)
{
	enum meta_type type = META_NONE;
	int rc = type_at(q, dir->path, &type);

	if (rc == 0 && type != META_NONE)
		rc = -EEXIST;
	if (rc == 0)
		rc = check_ancestors(q, dir->path, 1);
	if (rc == 0)
		rc = folder_add(q, dir->path, 0, dir->mode, dir->owner_uid, dir->owner_gid,
				dir->mtime_ns ? dir->mtime_ns : now_ns());
	return rc;
}

static int sq_mkdir(struct meta *m, const struct lamfs_folder *dir)
{
	struct msq *q = msq(m);
	int rc = sq_begin(q, 1);

	if (rc == 0)
		rc = sq_end(q, mkdir_body(q, dir));
	return rc;
}

static int rmdir_body(struct msq *q, const char *key)
{
	enum meta_type type = META_NONE;
	int rc = type_at(q, key, &type);

	if (rc == 0 && type != META_DIR)
		rc = type == META_FILE ? -ENOTDIR : -ENOENT;
	if (rc == 0)
		rc = subtree_used(q, key);
	if (rc == 1)
		rc = -ENOTEMPTY;
	if (rc == 0)
		rc = sq_run1(q, SQ_FOLDER_DEL, key);
	return rc;
}

static int sq_rmdir(struct meta *m, const char *key)
{
	struct msq *q = msq(m);
	int rc = sq_begin(q, 1);

	if (rc == 0)
		rc = sq_end(q, rmdir_body(q, key));
	return rc;
}

/* Apply the masked fields of a to the four attributes. */
static void attr_apply(unsigned mask, const struct meta_attr *a, uint32_t *mode, uint32_t *uid,
		       uint32_t *gid, int64_t *mtime_ns)
{
	if (mask & META_ATTR_MODE)
		*mode = a->mode & 07777;
	if (mask & META_ATTR_OWNER_UID)
		*uid = a->owner_uid;
	if (mask & META_ATTR_OWNER_GID)
		*gid = a->owner_gid;
	if (mask & META_ATTR_MTIME)
		*mtime_ns = a->mtime_ns;
}

static int setattr_body(struct msq *q, const char *key, unsigned mask, const struct meta_attr *a)
{
	struct meta_entry e;
	sqlite3_stmt *s = NULL;
	int rc = lookup_body(q, key, &e);

	if (rc == 0 && e.type == META_DIR) {
		attr_apply(mask, a, &e.dir.mode, &e.dir.owner_uid, &e.dir.owner_gid,
			   &e.dir.mtime_ns);
		rc = sq_prep(q, SQ_FOLDER_SET, &s);
		if (rc == 0)
			rc = sq_bound(q, bt(s, 1, key) | bi(s, 2, e.dir.mode) |
					     bi(s, 3, e.dir.owner_uid) | bi(s, 4, e.dir.owner_gid) |
					     bi(s, 5, e.dir.mtime_ns));
	} else if (rc == 0) {
		attr_apply(mask, a, &e.rec.mode, &e.rec.owner_uid, &e.rec.owner_gid,
			   &e.rec.mtime_ns);
		rc = sq_prep(q, SQ_ART_SET_ATTR, &s);
		if (rc == 0)
			rc = sq_bound(q, bi(s, 1, e.rec.id) | bi(s, 2, e.rec.mode) |
					     bi(s, 3, e.rec.owner_uid) | bi(s, 4, e.rec.owner_gid) |
					     bi(s, 5, e.rec.mtime_ns) | bi(s, 6, now_ns()));
	}
	if (rc == 0)
		rc = sq_step(q, s);
	sq_done(s);
	return rc;
}

static int sq_setattr(struct meta *m, const char *key, unsigned mask, const struct meta_attr *a)
{
	struct msq *q = msq(m);
	int rc = sq_begin(q, 1);

	if (rc == 0)
		rc = sq_end(q, setattr_body(q, key, mask, a));
	return rc;
}

/* ---- repair ---- */

/* Make the newest committed version of key (on branch) the latest; its uid
 * into promoted ("" when none). */
static int promote_newest(struct msq *q, const char *key, int branch,
			  char promoted[LAMFS_UID_LEN + 1])
{
	char uid[LAMFS_UID_LEN + 1] = "";
	sqlite3_stmt *s = NULL;
	int64_t id = 0;
	int rc = sq_prep(q, SQ_ART_NEWEST_DONE, &s);

	if (rc == 0)
		rc = sq_bound(q, bt(s, 1, key) | bi(s, 2, branch));
	if (rc == 0)
		rc = sq_step(q, s);
	if (rc == 1) {
		id = sqlite3_column_int64(s, 0);
		col_str(s, 1, uid, sizeof(uid));
	}
	sq_done(s);
	if (rc == 1)
		rc = sq_run_id(q, SQ_ART_SET_LATEST, id);
	if (rc == 0 && promoted)
		memcpy(promoted, uid, sizeof(uid));
	return rc;
}

static int record_delete_body(struct msq *q, const char *uid, char promoted[LAMFS_UID_LEN + 1])
{
	struct lamfs_record r;
	int rc = rec_by_uid(q, uid, &r);

	if (rc == 0)
		rc = -ENOENT;
	if (rc == 1)
		rc = sq_run_id(q, SQ_ART_DEL, r.id);
	if (rc == 0 && r.is_latest)
		rc = promote_newest(q, r.key, r.branch_id, promoted);
	return rc;
}

static int sq_record_delete(struct meta *m, const char *uid, char promoted[LAMFS_UID_LEN + 1])
{
	struct msq *q = msq(m);
	int rc = sq_begin(q, 1);

	if (rc == 0)
		rc = sq_end(q, record_delete_body(q, uid, promoted));
	return rc;
}

/* ---- the shared SQL layer's dialect (meta_impl.h, meta_sql.c) ---- */

/* The database's clock in ms since the epoch (one value per statement). */
#define SQ_NOW_MS "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"

static int sq_txn_op(struct meta *m, int write, int (*body)(struct meta *m, void *arg), void *arg)
{
	struct msq *q = msq(m);
	int rc;

	sq_wait_idle(q);
	if (!sqlite3_get_autocommit(q->db))
		return body(m, arg);   /* inside open's own transaction */
	rc = sq_begin(q, write);
	if (rc == 0)
		rc = sq_end(q, body(m, arg));
	return rc;
}

static int sq_sql_op(struct meta *m, const char *sql, int n, const char *const *params,
		     meta_sql_row_fn cb, void *ctx)
{
	struct msq *q = msq(m);
	const char *vals[META_SQL_COLS_MAX];
	sqlite3_stmt *s = NULL;
	char name[16];
	int i, idx, ncols, src, rows = 0, rc = 0;

	sq_wait_idle(q);
	src = sqlite3_prepare_v2(q->db, sql, -1, &s, NULL);
	for (i = 0; src == SQLITE_OK && i < n; i++) {
		snprintf(name, sizeof(name), "$%d", i + 1);
		idx = sqlite3_bind_parameter_index(s, name);
		if (idx > 0 && params[i])
			src = sqlite3_bind_text(s, idx, params[i], -1, SQLITE_STATIC);
	}
	if (src != SQLITE_OK) {
		rc = sq_fail(q, src, sql);
		goto out;
	}
	ncols = sqlite3_column_count(s);
	if (ncols > META_SQL_COLS_MAX)
		ncols = META_SQL_COLS_MAX;
	while ((src = sqlite3_step(s)) == SQLITE_ROW) {
		rows++;
		for (i = 0; cb && i < ncols; i++)
			vals[i] = (const char *)sqlite3_column_text(s, i);
		rc = cb ? cb(ctx, ncols, vals) : 0;
		if (rc != 0)
			goto out;
	}
	if (src != SQLITE_DONE)
		rc = sq_fail(q, src, sql);
out:
	sqlite3_finalize(s);
	return rc < 0 ? rc : rows;
}

static const struct meta_ops sq_ops = {
	.name = "sqlite",
	.close = sq_close,
	.schema_version = sq_schema_version,
	.lookup = sq_lookup,
	.readdir = sq_readdir,
	.get_uid = sq_get_uid,
	.versions = sq_versions,
	.max_id = sq_max_id,
	.page = sq_page,
	.totals = sq_totals,
	.save_begin = sq_save_begin,
	.save_finish = sq_save_finish,
	.save_abort = sq_save_abort,
	.unlink = sq_unlink,
	.rename = sq_rename,
	.mkdir = sq_mkdir,
	.rmdir = sq_rmdir,
	.setattr = sq_setattr,
	.record_delete = sq_record_delete,
	META_SQL_LEASE_OPS,
	.txn = sq_txn_op,
	.sql = sq_sql_op,
	.now_ms = SQ_NOW_MS,
	.utf8_only = 0,
};
