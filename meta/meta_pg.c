/*
 * meta_pg.c — the metadata store in a PostgreSQL database (libpq), for an
 * instance that several machines mount at once.
 *
 * Same tables, columns, indexes and semantics as meta_sqlite.c (PostgreSQL
 * types where they are the natural ones: is_latest BOOLEAN, _aux JSONB as
 * LaminDB has them; times stay integer nanoseconds); the database keeps the
 * invariants, not this process: the partial unique index
 * artifact_latest_key allows one latest live version per key, uids are
 * unique, and every write runs in a SERIALIZABLE transaction, so two mounts
 * (two handles, two machines) working on the same keys at once behave as if
 * one ran after the other.  Transactions that lose a conflict (40001
 * serialization failure, 40P01 deadlock, 23505 unique violation: a concurrent
 * insert of the same uid, folder or latest version) are rolled back and run
 * again, a bounded number of times with a random back-off.
 *
 * Connection loss (the server restarts, a session is terminated): the handle
 * reconnects, waiting up to PG_RECONNECT_WAIT_MS for the server to come back,
 * and runs the transaction again, once.  When the connection broke during
 * COMMIT the outcome is unknown to us, so the transaction's id (fetched at
 * BEGIN) is looked up with pg_xact_status() after reconnecting: committed
 * means done, aborted means run it again.  A call therefore never reports a
 * failure for a change that committed, nor success for one that did not.
 *
 * Every statement is prepared once per connection (PQprepare) from a constant
 * string; user data only travels as parameters of PQexecPrepared.  The only
 * PQexec strings are constant: transaction control and the schema DDL.
 *
 * Keys are compared byte-wise (every key column is COLLATE "C"), so folder
 * subtrees are index range scans, as in SQLite: everything strictly inside
 * folder "a" sorts in ["a/", "a0").  A key that is not valid UTF-8 cannot be
 * stored (key_check() refuses it), so lookups of one answer "nothing there"
 * without asking the server, which would refuse the bytes.
 *
 * Names are unqualified: the tables live in the first schema of the
 * connection's search_path (public by default; options=-csearch_path%3Dx in
 * the url puts an instance in schema x).  Needs PostgreSQL 13 or newer.
 * Named prepared statements need a session of our own: behind PgBouncer, use
 * session pooling (or PgBouncer 1.21+, which tracks prepared statements).
 *
 * readdir reads a folder's listing into memory in its transaction and calls
 * back after it ended (a transaction may run twice; the callbacks must not).
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "key.h"
#include "lamindb.h"
#include "log.h"
#include "meta_impl.h"
#include "uid.h"

#define PG_TXN_TRIES 40                 /* attempts of a transaction that loses conflicts */
#define PG_BACKOFF_MAX_MS 100           /* cap of the random wait between them */
#define PG_RECONNECT_WAIT_MS 30000      /* how long a lost connection is waited for */
#define PG_XACT_WAIT_MS 10000           /* how long a COMMIT "in progress" is waited for */
#define PG_MIN_SERVER 130000            /* pg_current_xact_id(), pg_xact_status(xid8) */
#define PG_PATH_MAX (LAMFS_KEY_MAX + 2) /* a key plus "/" or "0", and the NUL */
#define PG_URL_LOG_MAX 512
#define PG_MAX_ARGS 16
/* pg_advisory_xact_lock() key that serialises creating and migrating the
 * schema between lamfs processes ("lamfs" in ASCII, then 1). */
#define PG_SCHEMA_LOCK_KEY "478560445299"

/* ---- schema and migrations ---- */

static const char pg_schema_v1[] =
	"CREATE TABLE lamfs_schema (version INTEGER NOT NULL);\n"
	"INSERT INTO lamfs_schema (version) VALUES (0);\n"
	"CREATE TABLE storage (id INTEGER PRIMARY KEY, root TEXT);\n"
	"INSERT INTO storage (id, root) VALUES (1, '');\n"
	"CREATE TABLE folder (\n"
	"  path TEXT COLLATE \"C\" PRIMARY KEY,\n"
	"  parent TEXT COLLATE \"C\" NOT NULL,\n"
	"  name TEXT COLLATE \"C\" NOT NULL,\n"
	"  mode INTEGER,\n"
	"  owner_uid BIGINT,\n"
	"  owner_gid BIGINT,\n"
	"  mtime_ns BIGINT);\n"
	"CREATE INDEX folder_parent_name ON folder (parent, name);\n"
	"CREATE TABLE artifact (\n"
	"  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"   /* never reused */
	"  uid TEXT COLLATE \"C\" NOT NULL UNIQUE,\n"
	"  key TEXT COLLATE \"C\" NOT NULL,\n"
	"  parent TEXT COLLATE \"C\" NOT NULL,\n"
	"  name TEXT COLLATE \"C\" NOT NULL,\n"
	"  suffix TEXT NOT NULL,\n"
	"  size BIGINT,\n"
	"  hash TEXT,\n"
	"  _hash_type TEXT,\n"
	"  checksum TEXT,\n"
	"  is_latest BOOLEAN NOT NULL,\n"
	"  _aux JSONB NULL,\n"
	"  branch_id INTEGER NOT NULL DEFAULT 1,\n"
	"  storage_id INTEGER NOT NULL REFERENCES storage (id),\n"
	"  created_at BIGINT,\n"
	"  updated_at BIGINT,\n"
	"  mode INTEGER,\n"
	"  owner_uid BIGINT,\n"
	"  owner_gid BIGINT,\n"
	"  mtime_ns BIGINT);\n"
	/* The database itself keeps one latest live version per key. */
	"CREATE UNIQUE INDEX artifact_latest_key ON artifact (key)\n"
	"  WHERE is_latest AND branch_id = 1;\n"
	/* readdir of one folder; flagged records are never latest. */
	"CREATE INDEX artifact_parent_name ON artifact (parent, name) WHERE is_latest;\n"
	/* versions, renames, subtree ranges. */
	"CREATE INDEX artifact_key ON artifact (key);\n"
	/* repair's scan of storage-ongoing records. */
	"CREATE INDEX artifact_flagged ON artifact (id) WHERE _aux IS NOT NULL;\n";

/* Schema 2: leases of the mounts and repairs using the store (meta.h). */
static const char pg_schema_v2[] =
	"CREATE TABLE lease (\n"
	"  id TEXT PRIMARY KEY,\n"
	"  kind TEXT NOT NULL CHECK (kind IN ('mount', 'repair')),\n"
	"  host TEXT NOT NULL,\n"
	"  pid BIGINT NOT NULL,\n"
	"  instance TEXT NOT NULL,\n"
	"  mountpoint TEXT NOT NULL,\n"
	"  started_ms BIGINT NOT NULL,\n"
	"  expires_ms BIGINT NOT NULL);\n";

/* Schema 3: the storage this instance saves into (meta_storage_attach). */
static const char pg_schema_v3[] =
	"CREATE TABLE lamfs_storage (\n"
	"  one INTEGER PRIMARY KEY CHECK (one = 1),\n"
	"  storage_id INTEGER NOT NULL REFERENCES lamindb_storage (id));\n";

/* pg_migrations[v]: version v -> v + 1.  Constant DDL only.  LaminDB's own
 * tables are not among them: they come from LaminDB's dump (lamindb_load). */
static const char *const pg_migrations[] = {
	pg_schema_v1,
	pg_schema_v2,
	pg_schema_v3,
};
_Static_assert(sizeof(pg_migrations) / sizeof(pg_migrations[0]) == META_SCHEMA_VERSION,
	       "one migration step per schema version");

/* ---- statements ---- */

#define PG_VISIBLE "is_latest AND branch_id = 1 AND _aux IS NULL"
/* Read by row_record(), in this order. */
#define PG_REC_COLS                                                                  \
	"id, uid, key, suffix, size, hash, _hash_type, checksum, is_latest, "        \
	"_aux IS NOT NULL, branch_id, storage_id, created_at, updated_at, mode, "    \
	"owner_uid, owner_gid, mtime_ns"
#define PG_REC_COLS_A                                                                \
	"a.id, a.uid, a.key, a.suffix, a.size, a.hash, a._hash_type, a.checksum, "   \
	"a.is_latest, a._aux IS NOT NULL, a.branch_id, a.storage_id, a.created_at, " \
	"a.updated_at, a.mode, a.owner_uid, a.owner_gid, a.mtime_ns"
#define PG_REC_NCOLS 18
/* Read by row_folder(), in this order. */
#define PG_FOLDER_COLS "path, mode, owner_uid, owner_gid, mtime_ns"
#define PG_FOLDER_COLS_F "f.path, f.mode, f.owner_uid, f.owner_gid, f.mtime_ns"
#define PG_FOLDER_NCOLS 5
#define PG_FOLDER_INSERT                                                             \
	"INSERT INTO folder (path, parent, name, mode, owner_uid, owner_gid, mtime_ns) " \
	"VALUES ($1, $2, $3, $4, $5, $6, $7)"
/* ENTRY_AT's columns: folder found, folder, file found, record. */
#define PG_ENTRY_DIR 0
#define PG_ENTRY_FILE (1 + PG_FOLDER_NCOLS)

#define PG_STATEMENTS(X)                                                             \
	X(SCHEMA_LOCK, "SELECT pg_advisory_xact_lock(" PG_SCHEMA_LOCK_KEY ")")       \
	X(SCHEMA_PROBE, "SELECT to_regclass('lamfs_schema') IS NOT NULL, "           \
			"to_regclass('artifact') IS NOT NULL OR "                    \
			"to_regclass('folder') IS NOT NULL OR "                      \
			"to_regclass('storage') IS NOT NULL, "                       \
			"to_regclass('django_migrations') IS NOT NULL AND "          \
			"to_regclass('lamindb_artifact') IS NOT NULL AND "           \
			"to_regclass('lamindb_storage') IS NOT NULL, "               \
			"quote_ident(current_schema())")                             \
	X(SCHEMA_GET, "SELECT max(version) FROM lamfs_schema")                       \
	X(SCHEMA_SET, "UPDATE lamfs_schema SET version = $1")                        \
	/* an id at or past the first unassigned one was never logged: a server \
	 * that crashed (immediate restart) lost it, so it cannot have committed \
	 * (pg_xact_status would fail: "transaction ID is in the future") */      \
	X(XACT_STATUS, "SELECT CASE WHEN $1::xid8 >= "                               \
		       "pg_snapshot_xmax(pg_current_snapshot()) THEN 'aborted' "    \
		       "ELSE pg_xact_status($1::xid8) END")                          \
	X(STORAGE_HAS, "SELECT 1 FROM storage WHERE id = $1")                        \
	X(ENTRY_AT, "SELECT f.path IS NOT NULL, " PG_FOLDER_COLS_F ", "              \
		    "a.id IS NOT NULL, " PG_REC_COLS_A " "                           \
		    "FROM (SELECT $1::text COLLATE \"C\" AS k) x "                   \
		    "LEFT JOIN folder f ON f.path = x.k "                            \
		    "LEFT JOIN artifact a ON a.key = x.k AND a.is_latest AND "       \
		    "a.branch_id = 1 AND a._aux IS NULL")                            \
	X(FOLDER_GET, "SELECT " PG_FOLDER_COLS " FROM folder WHERE path = $1")       \
	X(FOLDER_CHILDREN, "SELECT " PG_FOLDER_COLS ", name FROM folder "            \
			   "WHERE parent = $1 ORDER BY name")                        \
	X(FOLDER_ADD, PG_FOLDER_INSERT)                                              \
	X(FOLDER_ADD_MISSING, PG_FOLDER_INSERT " ON CONFLICT (path) DO NOTHING")     \
	X(FOLDER_DEL, "DELETE FROM folder WHERE path = $1")                          \
	X(FOLDER_SET, "UPDATE folder SET mode = $2, owner_uid = $3, owner_gid = $4, " \
		      "mtime_ns = $5 WHERE path = $1")                               \
	X(FOLDER_UNDER, "SELECT 1 FROM folder WHERE path >= $1 AND path < $2 LIMIT 1") \
	X(FOLDER_UNDER_LEN, "SELECT coalesce(max(octet_length(path)), 0) "           \
			    "FROM folder WHERE path >= $1 AND path < $2")            \
	X(FOLDER_MOVE, "UPDATE folder SET path = $1, parent = $2, name = $3 "        \
		       "WHERE path = $4")                                            \
	X(FOLDER_MOVE_UNDER, "UPDATE folder SET "                                    \
			     "path = $1::text || substr(path, char_length($2::text) + 1), " \
			     "parent = $1::text || substr(parent, char_length($2::text) + 1) " \
			     "WHERE path >= $3 AND path < $4")                       \
	X(ART_VISIBLE, "SELECT " PG_REC_COLS " FROM artifact "                       \
		       "WHERE key = $1 AND " PG_VISIBLE)                             \
	X(ART_CHILDREN, "SELECT " PG_REC_COLS ", name FROM artifact "                \
			"WHERE parent = $1 AND " PG_VISIBLE " ORDER BY name")        \
	X(ART_BY_UID, "SELECT " PG_REC_COLS " FROM artifact WHERE uid = $1")         \
	X(ART_BY_ID, "SELECT " PG_REC_COLS " FROM artifact WHERE id = $1")           \
	X(ART_AT_KEY, "SELECT " PG_REC_COLS " FROM artifact WHERE key = $1 ORDER BY id") \
	X(ART_FLAGGED_SAME, "SELECT " PG_REC_COLS " FROM artifact "                  \
			    "WHERE key = $1 AND _aux IS NOT NULL AND size = $2 "     \
			    "AND checksum = $3 ORDER BY id DESC LIMIT 1")            \
	X(ART_KEY_STEM, "SELECT substr(uid, 1, 16) FROM artifact WHERE key = $1 "    \
			"ORDER BY is_latest DESC, id DESC LIMIT 1")                  \
	X(ART_STEM_MAX, "SELECT max(uid) FROM artifact WHERE uid >= $1 AND uid <= $2") \
	X(ART_ADD, "INSERT INTO artifact (uid, key, parent, name, suffix, size, hash, " \
		   "_hash_type, checksum, is_latest, _aux, branch_id, storage_id, "  \
		   "created_at, updated_at, mode, owner_uid, owner_gid, mtime_ns) "  \
		   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, false, "             \
		   "'{\"so\": 1}', 1, $10, $11, $11, $12, $13, $14, $15) RETURNING id") \
	X(ART_SET_ATTR, "UPDATE artifact SET mode = $2, owner_uid = $3, owner_gid = $4, " \
			"mtime_ns = $5, updated_at = $6 WHERE id = $1")              \
	X(ART_UNLATEST, "UPDATE artifact SET is_latest = false "                     \
			"WHERE key = $1 AND is_latest AND id < $2")                  \
	/* latest unless a newer save at the key finished first (write-back      \
	 * uploads finish out of order: old bytes never become latest again) */  \
	X(ART_COMMIT, "UPDATE artifact SET _aux = NULL, updated_at = $2, is_latest = " \
		      "NOT EXISTS (SELECT 1 FROM artifact n WHERE n.key = artifact.key " \
		      "AND n.id > artifact.id AND n._aux IS NULL AND n.branch_id = 1) " \
		      "WHERE id = $1")                                               \
	X(ART_SET_LATEST, "UPDATE artifact SET is_latest = true WHERE id = $1")      \
	X(ART_DEL, "DELETE FROM artifact WHERE id = $1")                             \
	X(ART_DROP_KEY, "DELETE FROM artifact WHERE key = $1 "                       \
			"RETURNING uid, suffix, storage_id")                         \
	X(ART_NEWEST_DONE, "SELECT id, uid FROM artifact WHERE key = $1 AND "        \
			   "branch_id = $2 AND _aux IS NULL ORDER BY id DESC LIMIT 1") \
	X(ART_UNDER, "SELECT 1 FROM artifact WHERE key >= $1 AND key < $2 LIMIT 1")  \
	X(ART_UNDER_LEN, "SELECT coalesce(max(octet_length(key)), 0) "               \
			 "FROM artifact WHERE key >= $1 AND key < $2")               \
	X(ART_MOVE, "UPDATE artifact SET key = $1, parent = $2, name = $3 WHERE key = $4") \
	X(ART_MOVE_UNDER, "UPDATE artifact SET "                                     \
			  "key = $1::text || substr(key, char_length($2::text) + 1), " \
			  "parent = $1::text || substr(parent, char_length($2::text) + 1) " \
			  "WHERE key >= $3 AND key < $4")                            \
	X(ART_MAX_ID, "SELECT coalesce(max(id), 0) FROM artifact")                   \
	X(ART_PAGE, "SELECT " PG_REC_COLS " FROM artifact "                          \
		    "WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3")               \
	X(ART_PAGE_FLAGGED, "SELECT " PG_REC_COLS " FROM artifact "                  \
			    "WHERE _aux IS NOT NULL AND id > $1 AND id <= $2 "       \
			    "ORDER BY id LIMIT $3")                                  \
	X(ART_TOTALS, "SELECT count(*), coalesce(sum(size), 0)::bigint FROM artifact " \
		      "WHERE " PG_VISIBLE)                                           \

enum pg_stmt {
#define PG_ENUM(name, sql) PG_##name,
	PG_STATEMENTS(PG_ENUM)
#undef PG_ENUM
	PG_NSTMT
};

static const char *const pg_sql[PG_NSTMT] = {
#define PG_TEXT(name, sql) [PG_##name] = sql,
	PG_STATEMENTS(PG_TEXT)
#undef PG_TEXT
};

/* How a transaction runs (pg_txn()). */
enum pg_mode {
	PG_AUTO = 0,   /* no BEGIN: the body is one statement, its own snapshot */
	PG_READ,       /* one snapshot for several reads */
	PG_WRITE,      /* SERIALIZABLE, retried on conflicts */
	PG_SCHEMA,     /* create/migrate: READ COMMITTED under an advisory lock */
};

/* Constant strings only. */
static const char *const pg_begin_sql[] = {
	[PG_READ] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	[PG_WRITE] = "BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT pg_current_xact_id()",
	[PG_SCHEMA] = "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_current_xact_id()",
};

/* What the last failed statement says about retrying (pg_fail()). */
enum pg_fail {
	PG_FAIL_NONE = 0,
	PG_FAIL_OTHER,      /* an error: roll back, return its errno */
	PG_FAIL_CONFLICT,   /* 40001, 40P01, 23505: roll back and run again */
	PG_FAIL_LOST,       /* the connection is gone: reconnect and run again */
};

/* The handle.  Every field is guarded by base.lock (meta.c takes it). */
struct mpg {
	struct meta base;                 /* first: a struct meta * is a struct mpg * */
	PGconn *conn;                     /* NULL while disconnected */
	char *url;                        /* as given; holds the password: never logged */
	char url_log[PG_URL_LOG_MAX];     /* url with its password masked */
	int readonly;                     /* opened with META_READONLY: writes say -EROFS */
	unsigned char prepared[PG_NSTMT]; /* prepared on this connection */
	enum pg_fail fail;                /* of the statement that failed last */
	int down;                         /* the last reconnect window ran out */
	char xid[32];                     /* id of the open write transaction, "" none */
	unsigned seed;                    /* back-off jitter */
};

/* Parameters of one statement, all passed as text. */
struct pg_args {
	int n;
	const char *v[PG_MAX_ARGS];
	char num[PG_MAX_ARGS][24];
};
#define PG_ARGS_INIT { 0 }

static const struct meta_ops pg_ops;

static struct mpg *mpg(struct meta *m)
{
	assert(m && m->ops == &pg_ops);
	return (struct mpg *)m;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void at(struct pg_args *a, const char *s)
{
	assert(a->n < PG_MAX_ARGS);
	a->v[a->n++] = s;
}

static void ai(struct pg_args *a, int64_t x)
{
	assert(a->n < PG_MAX_ARGS);
	snprintf(a->num[a->n], sizeof(a->num[a->n]), "%" PRId64, x);
	a->v[a->n] = a->num[a->n];
	a->n++;
}

/* 1 when s is valid UTF-8 (the only text a key or uid can be stored as). */
static int text_ok(const char *s)
{
	return meta_utf8_ok(s);
}

/* ---- the url in logs ---- */

/* Append [s, s + n) to out (size bytes, *len used, always terminated). */
static void put(char *out, size_t size, size_t *len, const char *s, size_t n)
{
	if (*len + 1 >= size)
		return;
	if (n > size - 1 - *len)
		n = size - 1 - *len;
	memcpy(out + *len, s, n);
	*len += n;
	out[*len] = '\0';
}

void meta_pg_redact(const char *url, char *out, size_t size)
{
	const char *p = strstr(url, "://");
	const char *auth = p ? p + 3 : url;
	const char *query = strchr(auth, '?');
	const char *end = query ? query : auth + strlen(auth);
	const char *at_sign = NULL, *colon, *q;
	size_t len = 0;

	if (size == 0)
		return;
	out[0] = '\0';
	/* userinfo: up to the last '@' before the query (a raw '@' or '/' in a
	 * password is masked too: masking more is the safe side) */
	for (q = auth; p && q < end; q++)
		if (*q == '@')
			at_sign = q;
	colon = at_sign ? memchr(auth, ':', (size_t)(at_sign - auth)) : NULL;
	if (colon) {
		put(out, size, &len, url, (size_t)(colon + 1 - url));
		put(out, size, &len, "***", 3);
		p = at_sign;
	} else {
		p = url;
	}
	/* any "...password=value" (password, sslpassword) up to '&' or a space */
	while (*p) {
		const char *hit = strcasestr(p, "password=");

		if (!hit) {
			put(out, size, &len, p, strlen(p));
			break;
		}
		hit += strlen("password=");
		put(out, size, &len, p, (size_t)(hit - p));
		put(out, size, &len, "***", 3);
		p = hit + strcspn(hit, "& \t");
	}
}

/* ---- statements and errors ---- */

/* Record why a statement failed, log it and return its errno.  res may be
 * NULL (libpq could not send it). */
static int pg_fail(struct mpg *p, const PGresult *res, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : "";
	int rc = meta_pg_errno(state);

	if (!msg || !msg[0])
		msg = p->conn ? PQerrorMessage(p->conn) : "no connection";
	if (!p->conn || PQstatus(p->conn) == CONNECTION_BAD || !state || !state[0] ||
	    !strncmp(state, "08", 2) || !strcmp(state, "57P01") || !strcmp(state, "57P02") ||
	    !strcmp(state, "57P03")) {
		p->fail = PG_FAIL_LOST;
		rc = -EIO;
		if (p->conn)   /* while down, pg_reconnect() says it once */
			log_warn("meta: %s: %.*s", p->url_log, (int)strcspn(msg, "\n"), msg);
	} else if (!strcmp(state, "40001") || !strcmp(state, "40P01") ||
		   !strcmp(state, "23505")) {
		p->fail = PG_FAIL_CONFLICT;
		log_debug("meta: conflict (%s), will retry: %.*s", state,
			  (int)strcspn(msg, "\n"), msg);
	} else {
		p->fail = PG_FAIL_OTHER;
		log_err("meta: %s: %.*s (SQLSTATE %s)", what, (int)strcspn(msg, "\n"), msg, state);
	}
	return rc;
}

/* 0 when res is a success (then kept in *out when out is not NULL, else
 * cleared); else -errno and res is cleared. */
static int pg_result(struct mpg *p, PGresult *res, const char *what, PGresult **out)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	int rc = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		rc = pg_fail(p, res, what);
		PQclear(res);
		res = NULL;
	}
	if (out)
		*out = res;
	else
		PQclear(res);
	return rc;
}

/* Run constant SQL (transaction control, DDL) with the simple protocol. */
static int pg_simple(struct mpg *p, const char *sql, PGresult **out)
{
	if (out)
		*out = NULL;
	if (!p->conn)
		return pg_fail(p, NULL, sql);
	return pg_result(p, PQexec(p->conn, sql), sql, out);
}

/* Run prepared statement id with the parameters a (NULL: none).  0 and
 * *out (when out is not NULL; the caller PQclear()s it), or -errno. */
static int pg_run(struct mpg *p, enum pg_stmt id, const struct pg_args *a, PGresult **out)
{
	char name[24];
	int rc = 0;

	if (out)
		*out = NULL;
	if (!p->conn)
		return pg_fail(p, NULL, pg_sql[id]);
	snprintf(name, sizeof(name), "lamfs_%d", (int)id);
	if (!p->prepared[id]) {
		/* parameter types are inferred from the statement */
		rc = pg_result(p, PQprepare(p->conn, name, pg_sql[id], 0, NULL), pg_sql[id], NULL);
		if (rc < 0)
			goto out;
		p->prepared[id] = 1;
	}
	rc = pg_result(p, PQexecPrepared(p->conn, name, a ? a->n : 0, a ? a->v : NULL, NULL,
					 NULL, 0), pg_sql[id], out);
out:
	return rc;
}

/* Run a query: 1 with the first row in *out (the caller clears it), 0 when
 * there is none (*out NULL), or -errno. */
static int pg_one(struct mpg *p, enum pg_stmt id, const struct pg_args *a, PGresult **out)
{
	int rc = pg_run(p, id, a, out);

	if (rc == 0 && PQntuples(*out) > 0)
		rc = 1;
	if (rc != 1) {
		PQclear(*out);
		*out = NULL;
	}
	return rc;
}

static int64_t gi(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static int gb(const PGresult *r, int row, int col)
{
	return PQgetvalue(r, row, col)[0] == 't';
}

/* Copy text column col into buf (size bytes, always terminated). */
static void gs(const PGresult *r, int row, int col, char *buf, size_t size)
{
	size_t n = (size_t)PQgetlength(r, row, col);

	if (n >= size)
		n = size - 1;
	memcpy(buf, PQgetvalue(r, row, col), n);
	buf[n] = '\0';
}

/* The record in columns c0.. of a row (PG_REC_COLS order). */
static void row_record(const PGresult *r, int row, int c0, struct lamfs_record *out)
{
	memset(out, 0, sizeof(*out));
	out->id = gi(r, row, c0 + 0);
	gs(r, row, c0 + 1, out->uid, sizeof(out->uid));
	gs(r, row, c0 + 2, out->key, sizeof(out->key));
	gs(r, row, c0 + 3, out->suffix, sizeof(out->suffix));
	out->size = gi(r, row, c0 + 4);
	gs(r, row, c0 + 5, out->hash, sizeof(out->hash));
	gs(r, row, c0 + 6, out->hash_type, sizeof(out->hash_type));
	gs(r, row, c0 + 7, out->checksum, sizeof(out->checksum));
	out->is_latest = gb(r, row, c0 + 8);
	out->storage_ongoing = gb(r, row, c0 + 9);
	out->branch_id = (int)gi(r, row, c0 + 10);
	out->storage_id = (int)gi(r, row, c0 + 11);
	out->created_at = gi(r, row, c0 + 12);
	out->updated_at = gi(r, row, c0 + 13);
	out->mode = (uint32_t)gi(r, row, c0 + 14);
	out->owner_uid = (uint32_t)gi(r, row, c0 + 15);
	out->owner_gid = (uint32_t)gi(r, row, c0 + 16);
	out->mtime_ns = gi(r, row, c0 + 17);
}

static void row_folder(const PGresult *r, int row, int c0, struct lamfs_folder *f)
{
	memset(f, 0, sizeof(*f));
	gs(r, row, c0 + 0, f->path, sizeof(f->path));
	f->mode = (uint32_t)gi(r, row, c0 + 1);
	f->owner_uid = (uint32_t)gi(r, row, c0 + 2);
	f->owner_gid = (uint32_t)gi(r, row, c0 + 3);
	f->mtime_ns = gi(r, row, c0 + 4);
}

/* ---- connections ---- */

static void pg_notice(void *ctx, const char *msg)
{
	(void)ctx;
	log_debug("meta: server: %.*s", (int)strcspn(msg, "\n"), msg);
}

static void pg_disconnect(struct mpg *p)
{
	if (p->conn)
		PQfinish(p->conn);
	p->conn = NULL;
	memset(p->prepared, 0, sizeof(p->prepared));
}

/* Connect to p->url.  quiet: failures are logged at debug level only (the
 * reconnect loop logs the outcome).  -EACCES when a password is missing or
 * refused, -EPROTONOSUPPORT for a server older than PostgreSQL 13, -EIO
 * when the server cannot be reached. */
static int pg_connect(struct mpg *p, int quiet)
{
	/* before dbname: the url may override them */
	static const char *const kw[] = {
		"connect_timeout", "fallback_application_name", "keepalives_idle",
		"keepalives_interval", "keepalives_count", "dbname", NULL,
	};
	const char *val[] = { "10", "lamfs", "30", "10", "3", p->url, NULL };
	PGresult *res = NULL;
	PGconn *c;
	int rc = 0;

	pg_disconnect(p);
	c = PQconnectdbParams(kw, val, 1);
	if (!c) {
		rc = -ENOMEM;
		goto out;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		const char *msg = PQerrorMessage(c);

		rc = PQconnectionNeedsPassword(c) || strstr(msg, "password authentication failed")
			? -EACCES : -EIO;
		if (quiet)
			log_debug("meta: cannot connect to %s: %.*s", p->url_log,
				  (int)strcspn(msg, "\n"), msg);
		else
			log_err("meta: cannot connect to %s: %.*s", p->url_log,
				(int)strcspn(msg, "\n"), msg);
		goto out;
	}
	if (PQserverVersion(c) < PG_MIN_SERVER) {
		log_err("meta: %s: PostgreSQL %d.%d is too old (13 or newer needed)", p->url_log,
			PQserverVersion(c) / 10000, PQserverVersion(c) / 100 % 100);
		rc = -EPROTONOSUPPORT;
		goto out;
	}
	PQsetNoticeProcessor(c, pg_notice, NULL);
	if (PQsetClientEncoding(c, "UTF8") != 0) {
		log_err("meta: %s: cannot use UTF8: %s", p->url_log, PQerrorMessage(c));
		rc = -EIO;
		goto out;
	}
	/* A commit is durable when COMMIT returns, whatever the server's default. */
	res = PQexec(c, "SET synchronous_commit = on");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		log_err("meta: %s: %s", p->url_log, PQerrorMessage(c));
		rc = -EIO;
		goto out;
	}
	p->conn = c;
	c = NULL;
out:
	PQclear(res);
	if (c)
		PQfinish(c);
	return rc;
}

/* The connection broke: connect again, waiting up to PG_RECONNECT_WAIT_MS
 * for the server to come back.  0, or -EIO (-EACCES, -EPROTONOSUPPORT).
 * Once a window has run out, calls try one connect each and fail at once
 * (each holds the handle's lock: they must not queue up behind 30 s waits)
 * until the server answers again. */
static int pg_reconnect(struct mpg *p)
{
	int64_t deadline = mono_ms() + (p->down ? 0 : PG_RECONNECT_WAIT_MS);
	int delay = 50;
	int rc;

	if (!p->down)
		log_warn("meta: lost the connection to %s; reconnecting", p->url_log);
	for (;;) {
		rc = pg_connect(p, 1);
		if (rc == 0 || rc == -EACCES || rc == -EPROTONOSUPPORT || rc == -ENOMEM)
			break;
		if (mono_ms() + delay > deadline)
			break;
		sleep_ms(delay);
		delay = delay * 2 > 1000 ? 1000 : delay * 2;
	}
	if (rc == 0) {
		log_info("meta: reconnected to %s", p->url_log);
	} else {
		if (!p->down)
			log_err("meta: cannot reconnect to %s within %d s; failing calls "
				"until it answers", p->url_log, PG_RECONNECT_WAIT_MS / 1000);
		rc = rc == -EACCES || rc == -ENOMEM ? rc : -EIO;
	}
	p->down = rc != 0;
	return rc;
}

/* After a COMMIT whose answer was lost: 1 when transaction xid committed,
 * 0 when it did not, or -errno. */
static int pg_xact_outcome(struct mpg *p, const char *xid)
{
	int64_t deadline = mono_ms() + PG_XACT_WAIT_MS;
	struct pg_args a = PG_ARGS_INIT;
	PGresult *r = NULL;
	int rc;

	at(&a, xid);
	for (;;) {
		rc = pg_one(p, PG_XACT_STATUS, &a, &r);
		if (rc == 1 && PQgetisnull(r, 0, 0))
			rc = -EIO;   /* too old to know: cannot happen within seconds */
		if (rc == 1 && strcmp(PQgetvalue(r, 0, 0), "in progress") != 0)
			break;
		PQclear(r);
		r = NULL;
		if (rc < 0 || rc == 0 || mono_ms() > deadline) {
			rc = rc < 0 ? rc : -EIO;
			break;
		}
		sleep_ms(100);
	}
	if (rc == 1) {
		rc = !strcmp(PQgetvalue(r, 0, 0), "committed");
		log_info("meta: the transaction cut off during COMMIT %s",
			 rc ? "committed" : "was rolled back; running it again");
	} else {
		log_err("meta: cannot learn whether a transaction committed (%d)", rc);
	}
	PQclear(r);
	return rc;
}

/* ---- transactions ---- */

static void pg_rollback(struct mpg *p)
{
	PGTransactionStatusType ts;

	if (!p->conn || PQstatus(p->conn) != CONNECTION_OK)
		return;
	ts = PQtransactionStatus(p->conn);
	if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
		PGresult *res = PQexec(p->conn, "ROLLBACK");

		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			log_err("meta: rollback failed: %s", PQerrorMessage(p->conn));
		PQclear(res);
	}
}

static int pg_begin(struct mpg *p, enum pg_mode mode)
{
	PGresult *res = NULL;
	int rc = pg_simple(p, pg_begin_sql[mode], &res);

	if (rc == 0 && mode != PG_READ && PQntuples(res) == 1)
		gs(res, 0, 0, p->xid, sizeof(p->xid));
	PQclear(res);
	return rc;
}

/* A random wait before attempt `tries` + 1: up to 1, 2, 4 ... ms, capped. */
static void pg_backoff(struct mpg *p, int tries)
{
	int cap = tries < 7 ? 1 << tries : PG_BACKOFF_MAX_MS;

	if (cap > PG_BACKOFF_MAX_MS)
		cap = PG_BACKOFF_MAX_MS;
	sleep_ms(1 + rand_r(&p->seed) % cap);
}

typedef int (*pg_body_fn)(struct mpg *p, void *arg);

/*
 * Run body(p, arg) as one transaction (mode), committing when it returns 0.
 * A body may be run several times: it must start from scratch each time
 * (reset its outputs) and do nothing outside the database.  A body error
 * that is not the database's (-ENOENT, ...) rolls back and is returned.
 * Conflicts (and -EAGAIN from the body: a uid taken) run it again, up to
 * PG_TXN_TRIES times, then -EBUSY.  A lost connection is reconnected once.
 */
static int pg_txn(struct mpg *p, enum pg_mode mode, pg_body_fn body, void *arg)
{
	int tries = 0, reconnected = 0;
	int rc;

	if ((mode == PG_WRITE || mode == PG_SCHEMA) && p->readonly)
		return -EROFS;
	for (;;) {
		int committing = 0;

		p->fail = PG_FAIL_NONE;
		p->xid[0] = '\0';
		rc = mode == PG_AUTO ? 0 : pg_begin(p, mode);
		if (rc == 0 && mode == PG_AUTO && !p->conn)
			rc = pg_fail(p, NULL, "connect");
		if (rc == 0)
			rc = body(p, arg);
		if (rc == 0 && mode != PG_AUTO) {
			committing = 1;
			rc = pg_simple(p, "COMMIT", NULL);
		}
		if (rc == 0)
			break;
		if (p->fail == PG_FAIL_LOST) {
			char xid[sizeof(p->xid)];

			memcpy(xid, p->xid, sizeof(xid));
			if (reconnected) {
				rc = -EIO;
				break;
			}
			reconnected = 1;
			rc = pg_reconnect(p);
			if (rc == 0 && committing && xid[0]) {
				rc = pg_xact_outcome(p, xid);
				if (rc == 1) {
					rc = 0;
					break;
				}
			}
			if (rc < 0)
				break;
			continue;
		}
		pg_rollback(p);
		if (p->fail == PG_FAIL_CONFLICT || rc == -EAGAIN) {
			if (++tries < PG_TXN_TRIES) {
				pg_backoff(p, tries);
				continue;
			}
			log_err("meta: a transaction lost %d conflicts in a row; giving up", tries);
			rc = -EBUSY;
		}
		break;
	}
	return rc;
}

/* ---- small queries, used inside transactions ---- */

/* 1 and *out (when not NULL) when folder row `path` exists, 0 when not. */
static int folder_get(struct mpg *p, const char *path, struct lamfs_folder *out)
{
	struct pg_args a = PG_ARGS_INIT;
	PGresult *r = NULL;
	int rc;

	at(&a, path);
	rc = pg_one(p, PG_FOLDER_GET, &a, &r);
	if (rc == 1 && out)
		row_folder(r, 0, 0, out);
	PQclear(r);
	return rc;
}

/* A record query with $1 = text: 1 and *out (when not NULL) on a row, 0 none. */
static int rec_by_text(struct mpg *p, enum pg_stmt id, const char *t1, struct lamfs_record *out)
{
	struct pg_args a = PG_ARGS_INIT;
	PGresult *r = NULL;
	int rc;

	if (!text_ok(t1))
		return 0;   /* not storable, so not stored */
	at(&a, t1);
	rc = pg_one(p, id, &a, &r);
	if (rc == 1 && out)
		row_record(r, 0, 0, out);
	PQclear(r);
	return rc;
}

/* The visible file at key: 1 and *out (when not NULL), 0 none. */
static int rec_visible(struct mpg *p, const char *key, struct lamfs_record *out)
{
	return rec_by_text(p, PG_ART_VISIBLE, key, out);
}

static int rec_by_uid(struct mpg *p, const char *uid, struct lamfs_record *out)
{
	return rec_by_text(p, PG_ART_BY_UID, uid, out);
}

static int rec_by_id(struct mpg *p, int64_t id, struct lamfs_record *out)
{
	struct pg_args a = PG_ARGS_INIT;
	PGresult *r = NULL;
	int rc;

	ai(&a, id);
	rc = pg_one(p, PG_ART_BY_ID, &a, &r);
	if (rc == 1)
		row_record(r, 0, 0, out);
	PQclear(r);
	if (rc == 0)
		rc = -ENOENT;   /* callers ask for a row they know exists */
	return rc == 1 ? 0 : rc;
}

/* What is visible at key, in one statement: e->type META_DIR (e->dir set),
 * META_FILE (e->rec set) or META_NONE. */
static int entry_at(struct mpg *p, const char *key, struct meta_entry *e)
{
	struct pg_args a = PG_ARGS_INIT;
	PGresult *r = NULL;
	int rc = 0;

	memset(e, 0, sizeof(*e));
	if (key[0] == '\0') {
		e->type = META_DIR;
		e->dir.mode = META_ROOT_MODE;
		goto out;
	}
	if (!text_ok(key))
		goto out;
	at(&a, key);
	rc = pg_one(p, PG_ENTRY_AT, &a, &r);
	if (rc == 1 && gb(r, 0, PG_ENTRY_DIR)) {
		e->type = META_DIR;
		row_folder(r, 0, PG_ENTRY_DIR + 1, &e->dir);
	} else if (rc == 1 && gb(r, 0, PG_ENTRY_FILE)) {
		e->type = META_FILE;
		row_record(r, 0, PG_ENTRY_FILE + 1, &e->rec);
	}
	rc = rc < 0 ? rc : 0;
out:
	PQclear(r);
	return rc;
}

/* What is visible at key: META_DIR, META_FILE or META_NONE into *type. */
static int type_at(struct mpg *p, const char *key, enum meta_type *type)
{
	struct meta_entry e;
	int rc = entry_at(p, key, &e);

	*type = e.type;
	return rc;
}

/* lo = key + "/", hi = key + "0": keys strictly inside folder key are the
 * ones in [lo, hi).  key is not the root. */
static void subtree_bounds(const char *key, char lo[PG_PATH_MAX], char hi[PG_PATH_MAX])
{
	snprintf(lo, PG_PATH_MAX, "%s/", key);
	snprintf(hi, PG_PATH_MAX, "%s0", key);
}

/* 1 when a folder row or any record (committed or flagged) is inside key. */
static int subtree_used(struct mpg *p, const char *key)
{
	char lo[PG_PATH_MAX], hi[PG_PATH_MAX];
	enum pg_stmt ids[2] = { PG_FOLDER_UNDER, PG_ART_UNDER };
	PGresult *r = NULL;
	int i, rc = 0;

	subtree_bounds(key, lo, hi);
	for (i = 0; i < 2 && rc == 0; i++) {
		struct pg_args a = PG_ARGS_INIT;

		at(&a, lo);
		at(&a, hi);
		rc = pg_one(p, ids[i], &a, &r);
		PQclear(r);
	}
	return rc;
}

/* Longest key in bytes strictly inside folder key (folders and records). */
static int subtree_max_len(struct mpg *p, const char *key, int64_t *len)
{
	char lo[PG_PATH_MAX], hi[PG_PATH_MAX];
	enum pg_stmt ids[2] = { PG_FOLDER_UNDER_LEN, PG_ART_UNDER_LEN };
	PGresult *r = NULL;
	int i, rc = 0;

	*len = 0;
	subtree_bounds(key, lo, hi);
	for (i = 0; i < 2 && rc == 0; i++) {
		struct pg_args a = PG_ARGS_INIT;

		at(&a, lo);
		at(&a, hi);
		rc = pg_one(p, ids[i], &a, &r);
		if (rc == 1 && gi(r, 0, 0) > *len)
			*len = gi(r, 0, 0);
		if (rc == 1)
			rc = 0;
		PQclear(r);
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
static int check_ancestors(struct mpg *p, const char *key, int need_parent)
{
	char buf[LAMFS_KEY_MAX + 1];
	int rc;

	key_split(key, buf);
	rc = buf[0] ? folder_get(p, buf, NULL) : 1;
	if (rc != 0) {
		rc = rc > 0 ? 0 : rc;
		goto out;
	}
	rc = meta_walk_ancestors(key, not_a_file, p);
	if (rc == 0 && need_parent)
		rc = -ENOENT;
out:
	return rc;
}

/* Insert folder row `path` (its parent and name derived); or_ignore keeps an
 * existing one. */
static int folder_add(struct mpg *p, const char *path, int or_ignore, uint32_t mode,
		      uint32_t uid, uint32_t gid, int64_t mtime_ns)
{
	char parent[LAMFS_KEY_MAX + 1];
	const char *name = key_split(path, parent);
	struct pg_args a = PG_ARGS_INIT;

	at(&a, path);
	at(&a, parent);
	at(&a, name);
	ai(&a, mode & 07777);
	ai(&a, uid);
	ai(&a, gid);
	ai(&a, mtime_ns);
	return pg_run(p, or_ignore ? PG_FOLDER_ADD_MISSING : PG_FOLDER_ADD, &a, NULL);
}

struct add_folder_ctx {
	struct mpg *p;
	uint32_t uid, gid;
	int64_t now;
};

/* meta_walk_ancestors callback: make the folder prefix if it is missing. */
static int add_folder(void *ctx, const char *prefix)
{
	struct add_folder_ctx *a = ctx;

	return folder_add(a->p, prefix, 1, 0755, a->uid, a->gid, a->now);
}

/* Make every missing ancestor folder of key (mode 0755, the given owner).
 * The caller has run check_ancestors(). */
static int ensure_ancestors(struct mpg *p, const char *key, uint32_t uid, uint32_t gid,
			    int64_t now)
{
	struct add_folder_ctx a = { p, uid, gid, now };
	char buf[LAMFS_KEY_MAX + 1];
	int rc;

	key_split(key, buf);
	rc = buf[0] ? folder_get(p, buf, NULL) : 1;
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
static int drop_key(struct mpg *p, const char *key, struct meta_dropped *d)
{
	char uid[LAMFS_UID_LEN + 1], suffix[LAMFS_SUFFIX_MAX + 1];
	struct pg_args a = PG_ARGS_INIT;
	PGresult *r = NULL;
	int i, rc;

	at(&a, key);
	rc = pg_run(p, PG_ART_DROP_KEY, &a, &r);
	for (i = 0; rc == 0 && i < PQntuples(r); i++) {
		gs(r, i, 0, uid, sizeof(uid));
		gs(r, i, 1, suffix, sizeof(suffix));
		rc = meta_dropped_add(d, uid, suffix, (int)gi(r, i, 2));
	}
	PQclear(r);
	return rc;
}

/* Run a statement whose one parameter $1 is a row id. */
static int pg_run_id(struct mpg *p, enum pg_stmt id, int64_t i1)
{
	struct pg_args a = PG_ARGS_INIT;

	ai(&a, i1);
	return pg_run(p, id, &a, NULL);
}

/* ---- open, create, migrate, close ---- */

/* The schema version in the database; -EBADMSG when its table is damaged. */
static int schema_read(struct mpg *p, int64_t *version)
{
	PGresult *r = NULL;
	int rc = pg_one(p, PG_SCHEMA_GET, NULL, &r);

	*version = 0;
	if (rc == 1 && !PQgetisnull(r, 0, 0))
		*version = gi(r, 0, 0);
	PQclear(r);
	if (rc >= 0)
		rc = *version > 0 ? 0 : -EBADMSG;
	return rc;
}

static int schema_read_body(struct mpg *p, void *arg)
{
	return schema_read(p, arg);
}

struct attach_arg {
	int create;    /* META_CREATE: make the schema when there is none */
	const struct meta_storage *upgrade;   /* meta_upgrade's storage, or NULL */
	int64_t from;  /* out: the version found (0: created) */
	int lamindb;   /* out: LaminDB's tables were there */
	int upgraded;  /* out: meta_upgrade added them to a lamfs store */
};

/* ---- LaminDB's schema, from LaminDB's own dump ---- */

/* End a COPY: ok 0 sends its end (and reads the result), else aborts it. */
static int pg_copy_end(struct mpg *p, int ok)
{
	PGresult *r;
	int rc = PQputCopyEnd(p->conn, ok ? NULL : "lamfs gave up") == 1 ? 0
		 : pg_fail(p, NULL, "COPY");

	if (rc == 0)
		rc = pg_result(p, PQgetResult(p->conn), "COPY", NULL);
	while ((r = PQgetResult(p->conn)))
		PQclear(r);
	return ok ? rc : 0;
}

/* Run statements gathered in *buf as one simple query, then empty it. */
static int pg_flush(struct mpg *p, char **buf, size_t *len)
{
	int rc = *len ? pg_simple(p, *buf, NULL) : 0;

	*len = 0;
	if (*buf)
		(*buf)[0] = '\0';
	return rc;
}

/*
 * Run one of LaminDB's pg_dump scripts (text, len) as psql would, in the
 * schema `schema` (quoted) instead of "public": statements go in batches,
 * COPY's rows through libpq's COPY protocol.  In the caller's transaction.
 */
static int pg_script(struct mpg *p, const char *text, size_t len, const char *schema)
{
	struct lamindb_script sc;
	char *piece = NULL, *buf = NULL, *nb;
	size_t blen = 0, cap = 0, n;
	int kind, copying = 0, rc = 0;

	lamindb_script_init(&sc, text, len);
	while (rc == 0 && (kind = lamindb_script_next(&sc, schema, &piece)) > 0) {
		if (kind == LAMINDB_SQL && copying) {
			copying = 0;
			rc = pg_copy_end(p, 1);
		}
		if (rc == 0 && kind == LAMINDB_SQL && !strncmp(piece, "COPY ", 5)) {
			PGresult *r;

			rc = pg_flush(p, &buf, &blen);
			r = rc == 0 ? PQexec(p->conn, piece) : NULL;
			if (rc == 0 && PQresultStatus(r) == PGRES_COPY_IN) {
				copying = 1;
				PQclear(r);
			} else if (rc == 0) {
				rc = pg_result(p, r, piece, NULL);
				rc = rc < 0 ? rc : -EIO;   /* a COPY that did not start */
			}
		} else if (rc == 0 && kind == LAMINDB_SQL) {
			n = strlen(piece);
			if (blen + n + 2 > cap) {
				cap = (blen + n + 2) * 2;
				nb = realloc(buf, cap);
				if (!nb) {
					rc = -ENOMEM;
					break;
				}
				buf = nb;
			}
			memcpy(buf + blen, piece, n);
			blen += n;
			buf[blen++] = '\n';
			buf[blen] = '\0';
		} else if (rc == 0 && kind == LAMINDB_COPY_ROW) {
			if (PQputCopyData(p->conn, piece, (int)strlen(piece)) != 1 ||
			    PQputCopyData(p->conn, "\n", 1) != 1)
				rc = pg_fail(p, NULL, "COPY");
		}
		free(piece);
		piece = NULL;
	}
	if (rc == 0 && kind < 0)
		rc = kind;
	if (copying)
		rc = rc == 0 ? pg_copy_end(p, 1) : pg_copy_end(p, 0) + rc;
	if (rc == 0)
		rc = pg_flush(p, &buf, &blen);
	free(piece);
	free(buf);
	return rc;
}

/* Create LaminDB's schema and seed rows in the current schema. */
static int lamindb_load(struct mpg *p, const char *schema)
{
	unsigned char *dump = NULL;
	size_t len = 0;
	int rc = lamindb_gunzip(lamindb_pg_schema_gz, lamindb_pg_schema_gz_len, &dump, &len);

	if (rc == 0)
		rc = pg_script(p, (const char *)dump, len, schema);
	if (rc == 0)
		rc = pg_script(p, (const char *)lamindb_pg_seed, lamindb_pg_seed_len, schema);
	if (rc < 0)
		log_err("meta: %s: cannot create LaminDB's schema (%s)", p->url_log,
			strerror(-rc));
	free(dump);
	return rc;
}

/*
 * Find the lamfs schema and bring it to META_SCHEMA_VERSION: create it
 * (create only), migrate it (not on a read-only handle: -EPROTO), or refuse a
 * newer one (-EPROTO).  Writers hold an advisory lock first, so machines that
 * create or migrate at the same moment take turns and the later ones attach.
 */
static int attach_body(struct mpg *p, void *arg)
{
	struct attach_arg *aa = arg;
	PGresult *r = NULL;
	int64_t v = 0;
	int has = 0, foreign = 0;
	char schema[256] = "";
	int rc = p->readonly ? 0 : pg_run(p, PG_SCHEMA_LOCK, NULL, NULL);

	aa->lamindb = 0;
	if (rc == 0)
		rc = pg_one(p, PG_SCHEMA_PROBE, NULL, &r);
	if (rc == 1) {
		has = gb(r, 0, 0);
		foreign = gb(r, 0, 1);
		aa->lamindb = gb(r, 0, 2);
		if (!PQgetisnull(r, 0, 3))
			gs(r, 0, 3, schema, sizeof(schema));
		rc = 0;
	}
	PQclear(r);
	if (rc == 0 && !has && foreign) {
		log_err("meta: %s: not a lamfs database (tables artifact, folder or storage "
			"exist without lamfs_schema)", p->url_log);
		rc = -EBADMSG;
	} else if (rc == 0 && !has && !aa->create) {
		rc = -ENOENT;
	} else if (rc == 0 && has) {
		rc = schema_read(p, &v);
		if (rc == -EBADMSG)
			log_err("meta: %s: table lamfs_schema holds no version", p->url_log);
	}
	if (rc == 0 && v > META_SCHEMA_VERSION) {
		log_err("meta: %s: schema version %" PRId64 " is newer than this lamfs (%d)",
			p->url_log, v, META_SCHEMA_VERSION);
		meta_set_open_why("written by a newer lamfs; upgrade lamfs");
		rc = -EPROTO;
	}
	if (rc == 0 && has && !aa->lamindb && (!aa->upgrade || p->readonly)) {
		meta_set_open_why("made by a lamfs from before LaminDB's schema (schema %" PRId64
				  "): run `lamfs upgrade INSTANCE` once, with no mount", v);
		log_err("meta: %s: %s", p->url_log, meta_open_why());
		rc = -EPROTO;
	}
	if (rc == 0 && aa->lamindb)
		rc = meta_sql_lamindb_check(&p->base, p->url_log);
	if (rc == 0 && v < META_SCHEMA_VERSION && p->readonly) {
		meta_set_open_why("written by an older lamfs: a read-write open migrates it");
		rc = -EPROTO;   /* it needs a migration, which a read-only open cannot do */
	}
	if (rc == 0 && !aa->lamindb && !schema[0]) {
		log_err("meta: %s: no schema to create the tables in (search_path)", p->url_log);
		rc = -ENOENT;
	}
	if (rc == 0 && !aa->lamindb)
		rc = lamindb_load(p, schema);
	aa->from = v;
	for (; rc == 0 && v < META_SCHEMA_VERSION; v++)
		rc = pg_simple(p, pg_migrations[v], NULL);
	/* meta_upgrade: LaminDB's schema was just loaded beside schema 2's tables */
	if (rc == 0 && has && !aa->lamindb)
		rc = meta_sql_upgrade_storage(&p->base, aa->upgrade);
	aa->upgraded = rc == 0 && has && !aa->lamindb;
	if (rc == 0 && aa->from < META_SCHEMA_VERSION) {
		struct pg_args a = PG_ARGS_INIT;

		ai(&a, META_SCHEMA_VERSION);
		rc = pg_run(p, PG_SCHEMA_SET, &a, NULL);
	}
	return rc;
}

static void pg_free(struct mpg *p)
{
	if (!p)
		return;
	pg_disconnect(p);
	if (p->url) {
		explicit_bzero(p->url, strlen(p->url));
		free(p->url);
	}
	free(p);
}

int meta_pg_open(const char *url, unsigned flags, const struct meta_storage *upgrade,
		 struct meta **out)
{
	struct mpg *p = calloc(1, sizeof(*p));
	struct attach_arg aa = { .create = !!(flags & META_CREATE), .upgrade = upgrade };
	PQconninfoOption *opts = NULL;
	char *err = NULL;
	int rc = p ? 0 : -ENOMEM;

	*out = NULL;
	if (rc < 0)
		goto out;
	p->base.ops = &pg_ops;
	p->readonly = !!(flags & META_READONLY);
	p->seed = (unsigned)now_ns() ^ (unsigned)getpid();
	meta_pg_redact(url, p->url_log, sizeof(p->url_log));
	p->url = strdup(url);
	if (!p->url) {
		rc = -ENOMEM;
		goto out;
	}
	opts = PQconninfoParse(url, &err);
	if (!opts) {
		/* libpq's message may quote a piece of the url: not when the url
		 * holds a password */
		if (strcmp(url, p->url_log) != 0)
			log_err("meta: %s: not a valid connection url", p->url_log);
		else
			log_err("meta: %s: %.*s", p->url_log,
				err ? (int)strcspn(err, "\n") : 13, err ? err : "not a url");
		rc = err ? -EINVAL : -ENOMEM;
		goto out;
	}
	rc = pg_connect(p, 0);
	if (rc == 0)
		rc = pg_txn(p, p->readonly ? PG_READ : PG_SCHEMA, attach_body, &aa);
	if (rc == 0 && aa.from == 0)
		log_info("meta: %s the lamfs schema in %s", aa.lamindb ? "added" : "created",
			 p->url_log);
	else if (rc == 0 && aa.from < META_SCHEMA_VERSION)
		log_info("meta: migrated %s from schema %" PRId64 " to %d%s", p->url_log, aa.from,
			 META_SCHEMA_VERSION, aa.upgraded ? " (LaminDB's schema added)" : "");
	if (rc == 0)
		p->base.upgraded = aa.upgraded;
out:
	PQconninfoFree(opts);
	PQfreemem(err);
	if (rc < 0) {
		pg_free(p);
		p = NULL;
	}
	*out = p ? &p->base : NULL;
	return rc;
}

static void pg_close(struct meta *m)
{
	pg_free(mpg(m));
}

static int pg_schema_version(struct meta *m)
{
	int64_t v = 0;
	int rc = pg_txn(mpg(m), PG_AUTO, schema_read_body, &v);

	return rc < 0 ? rc : (int)v;
}

/* ---- lookups ---- */

static int lookup_body(struct mpg *p, const char *key, struct meta_entry *out)
{
	int rc = entry_at(p, key, out);

	if (rc == 0 && out->type == META_NONE)
		rc = -ENOENT;
	return rc;
}

struct lookup_arg {
	const char *key;
	struct meta_entry *out;
};

static int lookup_run(struct mpg *p, void *arg)
{
	struct lookup_arg *la = arg;

	return lookup_body(p, la->key, la->out);
}

static int pg_lookup(struct meta *m, const char *key, struct meta_entry *out)
{
	struct lookup_arg la = { key, out };

	return pg_txn(mpg(m), PG_AUTO, lookup_run, &la);
}

struct readdir_arg {
	const char *key;
	PGresult *res[2];   /* folders, files: read in the transaction */
};

static int readdir_body(struct mpg *p, void *arg)
{
	struct readdir_arg *ra = arg;
	enum pg_stmt ids[2] = { PG_FOLDER_CHILDREN, PG_ART_CHILDREN };
	enum meta_type type = META_NONE;
	int i, rc = type_at(p, ra->key, &type);

	for (i = 0; i < 2; i++) {
		PQclear(ra->res[i]);
		ra->res[i] = NULL;
	}
	if (rc == 0 && type != META_DIR)
		rc = type == META_FILE ? -ENOTDIR : -ENOENT;
	for (i = 0; i < 2 && rc == 0; i++) {
		struct pg_args a = PG_ARGS_INIT;

		at(&a, ra->key);
		rc = pg_run(p, ids[i], &a, &ra->res[i]);
	}
	return rc;
}

/* The callbacks run after the transaction ended (it may have been run twice),
 * still under the handle's lock, as meta.h says. */
static int pg_readdir(struct meta *m, const char *key, meta_dirent_cb cb, void *ctx)
{
	struct readdir_arg ra = { key, { NULL, NULL } };
	struct meta_entry e;
	int i, row, r, stopped = 0;
	int rc = pg_txn(mpg(m), PG_READ, readdir_body, &ra);

	for (i = 0; i < 2 && rc == 0 && !stopped; i++) {
		int name_col = i == 0 ? PG_FOLDER_NCOLS : PG_REC_NCOLS;

		for (row = 0; row < PQntuples(ra.res[i]) && !stopped; row++) {
			memset(&e, 0, sizeof(e));
			e.type = i == 0 ? META_DIR : META_FILE;
			if (i == 0)
				row_folder(ra.res[i], row, 0, &e.dir);
			else
				row_record(ra.res[i], row, 0, &e.rec);
			r = cb(ctx, PQgetvalue(ra.res[i], row, name_col), &e);
			if (r != 0) {
				stopped = 1;
				rc = r < 0 ? r : 0;
			}
		}
	}
	PQclear(ra.res[0]);
	PQclear(ra.res[1]);
	return rc;
}

struct uid_arg {
	const char *uid;
	struct lamfs_record *out;
	char promoted[LAMFS_UID_LEN + 1];
};

static int get_uid_body(struct mpg *p, void *arg)
{
	struct uid_arg *ua = arg;
	int rc = rec_by_uid(p, ua->uid, ua->out);

	return rc == 1 ? 0 : rc == 0 ? -ENOENT : rc;
}

static int pg_get_uid(struct meta *m, const char *uid, struct lamfs_record *out)
{
	struct lamfs_record r;
	struct uid_arg ua = { .uid = uid, .out = &r };
	int rc = pg_txn(mpg(m), PG_AUTO, get_uid_body, &ua);

	if (rc == 0 && out)
		*out = r;
	return rc;
}

struct versions_arg {
	const char *key;
	struct lamfs_record *v;
	size_t n;
};

static int versions_body(struct mpg *p, void *arg)
{
	struct versions_arg *va = arg;
	struct pg_args a = PG_ARGS_INIT;
	PGresult *r = NULL;
	int i, rc = 0;

	free(va->v);
	va->v = NULL;
	va->n = 0;
	if (!text_ok(va->key))
		goto out;
	at(&a, va->key);
	rc = pg_run(p, PG_ART_AT_KEY, &a, &r);
	if (rc == 0 && PQntuples(r) > 0) {
		va->v = calloc((size_t)PQntuples(r), sizeof(*va->v));
		rc = va->v ? 0 : -ENOMEM;
	}
	for (i = 0; rc == 0 && i < PQntuples(r); i++)
		row_record(r, i, 0, &va->v[va->n++]);
out:
	PQclear(r);
	return rc;
}

static int pg_versions(struct meta *m, const char *key, struct lamfs_record **v, size_t *n)
{
	struct versions_arg va = { key, NULL, 0 };
	int rc = pg_txn(mpg(m), PG_AUTO, versions_body, &va);

	if (rc < 0) {
		free(va.v);
		va.v = NULL;
		va.n = 0;
	}
	*v = va.v;
	*n = va.n;
	return rc;
}

static int max_id_body(struct mpg *p, void *arg)
{
	PGresult *r = NULL;
	int rc = pg_one(p, PG_ART_MAX_ID, NULL, &r);

	*(int64_t *)arg = rc == 1 ? gi(r, 0, 0) : 0;
	PQclear(r);
	return rc < 0 ? rc : 0;
}

static int pg_max_id(struct meta *m, int64_t *out)
{
	return pg_txn(mpg(m), PG_AUTO, max_id_body, out);
}

struct page_arg {
	enum meta_foreach_which which;
	int64_t after, upto;
	struct lamfs_record *v;
	size_t cap, n;
};

static int page_body(struct mpg *p, void *arg)
{
	struct page_arg *pa = arg;
	struct pg_args a = PG_ARGS_INIT;
	PGresult *r = NULL;
	int i, rc;

	pa->n = 0;
	ai(&a, pa->after);
	ai(&a, pa->upto);
	ai(&a, (int64_t)pa->cap);
	rc = pg_run(p, pa->which == META_FLAGGED_RECORDS ? PG_ART_PAGE_FLAGGED : PG_ART_PAGE,
		    &a, &r);
	for (i = 0; rc == 0 && i < PQntuples(r) && pa->n < pa->cap; i++)
		row_record(r, i, 0, &pa->v[pa->n++]);
	PQclear(r);
	return rc;
}

static int pg_page(struct meta *m, enum meta_foreach_which which, int64_t after, int64_t upto,
		   struct lamfs_record *v, size_t cap, size_t *n)
{
	struct page_arg pa = { which, after, upto, v, cap, 0 };
	int rc = pg_txn(mpg(m), PG_AUTO, page_body, &pa);

	*n = rc == 0 ? pa.n : 0;
	return rc;
}

static int totals_body(struct mpg *p, void *arg)
{
	uint64_t *t = arg;
	PGresult *r = NULL;
	int rc = pg_one(p, PG_ART_TOTALS, NULL, &r);

	t[0] = rc == 1 ? (uint64_t)gi(r, 0, 0) : 0;
	t[1] = rc == 1 ? (uint64_t)gi(r, 0, 1) : 0;
	PQclear(r);
	return rc < 0 ? rc : 0;
}

static int pg_totals(struct meta *m, uint64_t *files, uint64_t *bytes)
{
	uint64_t t[2] = { 0, 0 };
	int rc = pg_txn(mpg(m), PG_AUTO, totals_body, t);

	*files = t[0];
	*bytes = t[1];
	return rc;
}

/* ---- the save sequence ---- */

/* 0 when a file may live at key: no folder there, no file among its
 * ancestors (missing ones can be made). */
static int file_place_ok(struct mpg *p, const char *key)
{
	int rc = folder_get(p, key, NULL);

	if (rc == 1)
		rc = -EISDIR;
	if (rc == 0)
		rc = check_ancestors(p, key, 0);
	return rc;
}

/* The stem the next version at key uses: the key's own (1), else none (0). */
static int key_stem(struct mpg *p, const char *key, char stem[LAMFS_STEM_LEN + 1])
{
	struct pg_args a = PG_ARGS_INIT;
	PGresult *r = NULL;
	int rc;

	stem[0] = '\0';
	at(&a, key);
	rc = pg_one(p, PG_ART_KEY_STEM, &a, &r);
	if (rc == 1)
		gs(r, 0, 0, stem, LAMFS_STEM_LEN + 1);
	PQclear(r);
	return rc;
}

/* The highest uid with this stem into max (1), or none (0).  Base62 digits
 * sort like their values in ASCII (and in COLLATE "C"), so the highest uid
 * is the newest version. */
static int stem_max(struct mpg *p, const char *stem, char max[LAMFS_UID_LEN + 1])
{
	char lo[LAMFS_UID_LEN + 1], hi[LAMFS_UID_LEN + 1];
	struct pg_args a = PG_ARGS_INIT;
	PGresult *r = NULL;
	int rc;

	snprintf(lo, sizeof(lo), "%.16s0000", stem);
	snprintf(hi, sizeof(hi), "%.16szzzz", stem);
	max[0] = '\0';
	at(&a, lo);
	at(&a, hi);
	rc = pg_one(p, PG_ART_STEM_MAX, &a, &r);
	if (rc == 1 && PQgetisnull(r, 0, 0))
		rc = 0;
	if (rc == 1)
		gs(r, 0, 0, max, LAMFS_UID_LEN + 1);
	PQclear(r);
	return rc;
}

/* The uid of a new version at key.  -EAGAIN when a fresh random stem is in
 * use already (the transaction runs again). */
static int next_uid(struct mpg *p, const char *key, char uid[LAMFS_UID_LEN + 1])
{
	char stem[LAMFS_STEM_LEN + 1], max[LAMFS_UID_LEN + 1];
	long v = 0;
	int fresh = 0;
	int rc = key_stem(p, key, stem);

	if (rc == 0) {
		fresh = 1;
		rc = uid_new(uid);
		memcpy(stem, uid, LAMFS_STEM_LEN);
		stem[LAMFS_STEM_LEN] = '\0';
	}
	if (rc >= 0)
		rc = stem_max(p, stem, max);
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

/* Insert the flagged record for `in` with a new uid; *id is its row id.  A
 * uid taken meanwhile by another transaction is a unique violation, which
 * runs the whole transaction again (pg_txn()). */
static int insert_new(struct mpg *p, const struct lamfs_record *in, int64_t now, int64_t *id)
{
	char uid[LAMFS_UID_LEN + 1], parent[LAMFS_KEY_MAX + 1];
	const char *name = key_split(in->key, parent);
	struct pg_args a = PG_ARGS_INIT;
	PGresult *r = NULL;
	int rc = next_uid(p, in->key, uid);

	if (rc < 0)
		goto out;
	at(&a, uid);
	at(&a, in->key);
	at(&a, parent);
	at(&a, name);
	at(&a, in->suffix);
	ai(&a, in->size);
	at(&a, in->hash);
	at(&a, in->hash_type);
	at(&a, in->checksum);
	ai(&a, in->storage_id);
	ai(&a, now);
	ai(&a, in->mode & 07777);
	ai(&a, in->owner_uid);
	ai(&a, in->owner_gid);
	ai(&a, in->mtime_ns);
	rc = pg_one(p, PG_ART_ADD, &a, &r);
	if (rc == 1)
		*id = gi(r, 0, 0);
	rc = rc == 1 ? 0 : rc == 0 ? -EIO : rc;
out:
	PQclear(r);
	return rc;
}

/* Resuming: the newest save request's attributes win. */
static int resume_attrs(struct mpg *p, const struct lamfs_record *in, int64_t id, int64_t now)
{
	struct pg_args a = PG_ARGS_INIT;

	ai(&a, id);
	ai(&a, in->mode & 07777);
	ai(&a, in->owner_uid);
	ai(&a, in->owner_gid);
	ai(&a, in->mtime_ns);
	ai(&a, now);
	return pg_run(p, PG_ART_SET_ATTR, &a, NULL);
}

static int storage_check(struct mpg *p, int storage_id)
{
	struct pg_args a = PG_ARGS_INIT;
	PGresult *r = NULL;
	int rc;

	ai(&a, storage_id);
	rc = pg_one(p, PG_STORAGE_HAS, &a, &r);
	PQclear(r);
	return rc == 1 ? 0 : rc == 0 ? -EINVAL : rc;
}

/* 1 when the flagged record at in->key with in's size and checksum exists
 * (*cur set), 0 when not. */
static int flagged_same(struct mpg *p, const struct lamfs_record *in, struct lamfs_record *cur)
{
	struct pg_args a = PG_ARGS_INIT;
	PGresult *r = NULL;
	int rc;

	at(&a, in->key);
	ai(&a, in->size);
	at(&a, in->checksum);
	rc = pg_one(p, PG_ART_FLAGGED_SAME, &a, &r);
	if (rc == 1)
		row_record(r, 0, 0, cur);
	PQclear(r);
	return rc;
}

struct begin_arg {
	const struct lamfs_record *in;
	struct lamfs_record res;
	enum meta_save_state state;
};

static int begin_body(struct mpg *p, void *arg)
{
	struct begin_arg *ba = arg;
	const struct lamfs_record *in = ba->in;
	struct lamfs_record cur;
	int64_t id = 0, now = now_ns();
	int rc = file_place_ok(p, in->key);

	if (rc == 0)
		rc = storage_check(p, in->storage_id);
	if (rc == 0)
		rc = rec_visible(p, in->key, &cur);
	if (rc == 1 && cur.size == in->size && !strcmp(cur.checksum, in->checksum)) {
		ba->state = META_SAVE_EXISTS;
		ba->res = cur;
		rc = 0;
		goto out;
	}
	if (rc >= 0)
		rc = flagged_same(p, in, &cur);
	if (rc == 1) {
		ba->state = META_SAVE_RESUME;
		id = cur.id;
		rc = resume_attrs(p, in, id, now);
	} else if (rc == 0) {
		ba->state = META_SAVE_NEW;
		rc = insert_new(p, in, now, &id);
	}
	/* No folder is made here: a save that fails must leave nothing, not even
	 * its parent folders.  meta_save_finish makes them with the commit. */
	if (rc == 0)
		rc = rec_by_id(p, id, &ba->res);
out:
	return rc;
}

/* META_BEGIN_LAZY is not taken up here: the server can restart and lose an
 * unflushed commit while this process goes on, and the save's finish would
 * then find no record and take it for one removed meanwhile (t_multi_pg's
 * "restart immediate" showed close() returning 0 with nothing saved).
 * SQLite loses an unsynced commit only with the machine, and this process. */
static int pg_save_begin(struct meta *m, struct lamfs_record *rec, enum meta_save_state *state,
			 unsigned flags)
{
	struct begin_arg ba = { .in = rec, .state = META_SAVE_NEW };
	int rc;

	(void)flags;
	rc = pg_txn(mpg(m), PG_WRITE, begin_body, &ba);
	if (rc == -EBUSY)
		log_err("meta: save %s: no free uid, or too many concurrent saves", rec->key);
	if (rc == 0) {
		*rec = ba.res;
		*state = ba.state;
	}
	return rc;
}

static int finish_body(struct mpg *p, void *arg)
{
	struct uid_arg *ua = arg;
	struct lamfs_record r;
	int64_t now = now_ns();
	int rc = rec_by_uid(p, ua->uid, &r);

	if (rc == 0)
		rc = -ENOENT;
	if (rc < 0)
		goto out;
	rc = 0;
	if (!r.storage_ongoing) {
		*ua->out = r;   /* finished already: nothing to move */
		goto out;
	}
	rc = file_place_ok(p, r.key);
	if (rc == 0)
		rc = ensure_ancestors(p, r.key, r.owner_uid, r.owner_gid, now);
	if (rc == 0) {
		struct pg_args a = PG_ARGS_INIT;

		at(&a, r.key);
		ai(&a, r.id);
		rc = pg_run(p, PG_ART_UNLATEST, &a, NULL);
	}
	if (rc == 0) {
		struct pg_args a = PG_ARGS_INIT;

		ai(&a, r.id);
		ai(&a, now);
		rc = pg_run(p, PG_ART_COMMIT, &a, NULL);
	}
	if (rc == 0)
		rc = rec_by_id(p, r.id, ua->out);
out:
	return rc;
}

static int pg_save_finish(struct meta *m, const char *uid, struct lamfs_record *rec)
{
	struct lamfs_record res;
	struct uid_arg ua = { .uid = uid, .out = &res };
	int rc = pg_txn(mpg(m), PG_WRITE, finish_body, &ua);

	if (rc == 0 && rec)
		*rec = res;
	return rc;
}

static int abort_body(struct mpg *p, void *arg)
{
	struct uid_arg *ua = arg;
	struct lamfs_record r;
	int rc = rec_by_uid(p, ua->uid, &r);

	if (rc == 0)
		rc = -ENOENT;
	else if (rc == 1 && !r.storage_ongoing)
		rc = -EBUSY;
	else if (rc == 1)
		rc = pg_run_id(p, PG_ART_DEL, r.id);
	return rc;
}

static int pg_save_abort(struct meta *m, const char *uid)
{
	struct uid_arg ua = { .uid = uid };

	return pg_txn(mpg(m), PG_WRITE, abort_body, &ua);
}

/* ---- namespace changes ---- */

/* The arguments of unlink and rename; d is reset to n0 entries before each
 * run of the body. */
struct ns_arg {
	const char *from, *to;
	unsigned flags;
	struct meta_dropped *d;
	size_t n0;
};

static int unlink_body(struct mpg *p, void *arg)
{
	struct ns_arg *na = arg;
	enum meta_type type = META_NONE;
	int rc;

	na->d->n = na->n0;
	rc = type_at(p, na->from, &type);
	if (rc == 0 && type != META_FILE)
		rc = type == META_DIR ? -EISDIR : -ENOENT;
	if (rc == 0)
		rc = drop_key(p, na->from, na->d);
	return rc;
}

static int pg_unlink(struct meta *m, const char *key, struct meta_dropped *dropped)
{
	struct ns_arg na = { .from = key, .d = dropped, .n0 = dropped->n };

	return pg_txn(mpg(m), PG_WRITE, unlink_body, &na);
}

/* 1 when key lies strictly inside folder dir. */
static int key_inside(const char *key, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(key, dir, n) && key[n] == '/';
}

/* Move every record at file key `from` (all versions, flagged too) to `to`,
 * after dropping the records at `to` (drop_key()). */
static int rename_file(struct mpg *p, const char *from, const char *to, enum meta_type tt,
		       struct meta_dropped *d)
{
	char parent[LAMFS_KEY_MAX + 1];
	const char *name = key_split(to, parent);
	struct pg_args a = PG_ARGS_INIT;
	int rc = tt == META_DIR ? -EISDIR : 0;

	if (rc == 0)
		rc = drop_key(p, to, d);
	at(&a, to);
	at(&a, parent);
	at(&a, name);
	at(&a, from);
	if (rc == 0)
		rc = pg_run(p, PG_ART_MOVE, &a, NULL);
	return rc;
}

/* Rewrite the prefix `from` to `to` of every folder row and record strictly
 * inside folder `from`: two range updates, served by indexes. */
static int move_subtree(struct mpg *p, const char *from, const char *to)
{
	char lo[PG_PATH_MAX], hi[PG_PATH_MAX];
	enum pg_stmt ids[2] = { PG_FOLDER_MOVE_UNDER, PG_ART_MOVE_UNDER };
	int64_t len = 0;
	int i, rc = 0;

	if (strlen(to) > strlen(from)) {
		rc = subtree_max_len(p, from, &len);
		if (rc == 0 && len - (int64_t)strlen(from) + (int64_t)strlen(to) > LAMFS_KEY_MAX)
			rc = -ENAMETOOLONG;
	}
	subtree_bounds(from, lo, hi);
	for (i = 0; i < 2 && rc == 0; i++) {
		struct pg_args a = PG_ARGS_INIT;

		at(&a, to);
		at(&a, from);
		at(&a, lo);
		at(&a, hi);
		rc = pg_run(p, ids[i], &a, NULL);
	}
	return rc;
}

/* Move folder `from` with everything inside it to `to` (replacing an empty
 * folder there). */
static int rename_dir(struct mpg *p, const char *from, const char *to, enum meta_type tt)
{
	char parent[LAMFS_KEY_MAX + 1];
	const char *name = key_split(to, parent);
	struct pg_args a = PG_ARGS_INIT;
	int rc = tt == META_FILE ? -ENOTDIR : 0;

	if (rc == 0 && tt == META_DIR) {
		struct pg_args d = PG_ARGS_INIT;

		rc = subtree_used(p, to);
		if (rc == 1)
			rc = -ENOTEMPTY;
		at(&d, to);
		if (rc == 0)
			rc = pg_run(p, PG_FOLDER_DEL, &d, NULL);
	}
	if (rc == 0)
		rc = move_subtree(p, from, to);
	at(&a, to);
	at(&a, parent);
	at(&a, name);
	at(&a, from);
	if (rc == 0)
		rc = pg_run(p, PG_FOLDER_MOVE, &a, NULL);
	return rc;
}

static int rename_body(struct mpg *p, void *arg)
{
	struct ns_arg *na = arg;
	const char *from = na->from, *to = na->to;
	enum meta_type ft = META_NONE, tt = META_NONE;
	int rc;

	na->d->n = na->n0;
	rc = type_at(p, from, &ft);
	if (rc == 0 && ft == META_NONE)
		rc = -ENOENT;
	if (rc < 0 || !strcmp(from, to))
		goto out;
	if (ft == META_DIR && key_inside(to, from)) {
		rc = -EINVAL;
		goto out;
	}
	rc = check_ancestors(p, to, 1);
	if (rc == 0)
		rc = type_at(p, to, &tt);
	if (rc == 0 && tt != META_NONE && (na->flags & META_RENAME_NOREPLACE))
		rc = -EEXIST;
	if (rc == 0)
		rc = ft == META_FILE ? rename_file(p, from, to, tt, na->d)
				     : rename_dir(p, from, to, tt);
out:
	return rc;
}

static int pg_rename(struct meta *m, const char *from, const char *to, unsigned flags,
		     struct meta_dropped *dropped)
{
	struct ns_arg na = { from, to, flags, dropped, dropped->n };

	return pg_txn(mpg(m), PG_WRITE, rename_body, &na);
}

static int mkdir_body(struct mpg *p, void *arg)
{
	const struct lamfs_folder *dir = arg;
	enum meta_type type = META_NONE;
	int rc = type_at(p, dir->path, &type);

	if (rc == 0 && type != META_NONE)
		rc = -EEXIST;
	if (rc == 0)
		rc = check_ancestors(p, dir->path, 1);
	if (rc == 0)
		rc = folder_add(p, dir->path, 0, dir->mode, dir->owner_uid, dir->owner_gid,
				dir->mtime_ns ? dir->mtime_ns : now_ns());
	return rc;
}

static int pg_mkdir(struct meta *m, const struct lamfs_folder *dir)
{
	return pg_txn(mpg(m), PG_WRITE, mkdir_body, (void *)dir);
}

static int rmdir_body(struct mpg *p, void *arg)
{
	const char *key = arg;
	enum meta_type type = META_NONE;
	int rc = type_at(p, key, &type);

	if (rc == 0 && type != META_DIR)
		rc = type == META_FILE ? -ENOTDIR : -ENOENT;
	if (rc == 0)
		rc = subtree_used(p, key);
	if (rc == 1)
		rc = -ENOTEMPTY;
	if (rc == 0) {
		struct pg_args a = PG_ARGS_INIT;

		at(&a, key);
		rc = pg_run(p, PG_FOLDER_DEL, &a, NULL);
	}
	return rc;
}

static int pg_rmdir(struct meta *m, const char *key)
{
	return pg_txn(mpg(m), PG_WRITE, rmdir_body, (void *)key);
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

struct setattr_arg {
	const char *key;
	unsigned mask;
	const struct meta_attr *a;
};

static int setattr_body(struct mpg *p, void *arg)
{
	struct setattr_arg *sa = arg;
	struct pg_args a = PG_ARGS_INIT;
	struct meta_entry e;
	int rc = lookup_body(p, sa->key, &e);

	if (rc == 0 && e.type == META_DIR) {
		attr_apply(sa->mask, sa->a, &e.dir.mode, &e.dir.owner_uid, &e.dir.owner_gid,
			   &e.dir.mtime_ns);
		at(&a, sa->key);
		ai(&a, e.dir.mode);
		ai(&a, e.dir.owner_uid);
		ai(&a, e.dir.owner_gid);
		ai(&a, e.dir.mtime_ns);
		rc = pg_run(p, PG_FOLDER_SET, &a, NULL);
	} else if (rc == 0) {
		attr_apply(sa->mask, sa->a, &e.rec.mode, &e.rec.owner_uid, &e.rec.owner_gid,
			   &e.rec.mtime_ns);
		ai(&a, e.rec.id);
		ai(&a, e.rec.mode);
		ai(&a, e.rec.owner_uid);
		ai(&a, e.rec.owner_gid);
		ai(&a, e.rec.mtime_ns);
		ai(&a, now_ns());
		rc = pg_run(p, PG_ART_SET_ATTR, &a, NULL);
	}
	return rc;
}

static int pg_setattr(struct meta *m, const char *key, unsigned mask, const struct meta_attr *a)
{
	struct setattr_arg sa = { key, mask, a };

	return pg_txn(mpg(m), PG_WRITE, setattr_body, &sa);
}

/* ---- repair ---- */

/* Make the newest committed version of key (on branch) the latest; its uid
 * into promoted ("" when none). */
static int promote_newest(struct mpg *p, const char *key, int branch,
			  char promoted[LAMFS_UID_LEN + 1])
{
	struct pg_args a = PG_ARGS_INIT;
	PGresult *r = NULL;
	int rc;

	promoted[0] = '\0';
	at(&a, key);
	ai(&a, branch);
	rc = pg_one(p, PG_ART_NEWEST_DONE, &a, &r);
	if (rc == 1) {
		gs(r, 0, 1, promoted, LAMFS_UID_LEN + 1);
		rc = pg_run_id(p, PG_ART_SET_LATEST, gi(r, 0, 0));
	}
	PQclear(r);
	return rc;
}

static int record_delete_body(struct mpg *p, void *arg)
{
	struct uid_arg *ua = arg;
	struct lamfs_record r;
	int rc = rec_by_uid(p, ua->uid, &r);

	ua->promoted[0] = '\0';
	if (rc == 0)
		rc = -ENOENT;
	if (rc == 1)
		rc = pg_run_id(p, PG_ART_DEL, r.id);
	if (rc == 0 && r.is_latest)
		rc = promote_newest(p, r.key, r.branch_id, ua->promoted);
	return rc;
}

static int pg_record_delete(struct meta *m, const char *uid, char promoted[LAMFS_UID_LEN + 1])
{
	struct uid_arg ua = { .uid = uid };
	int rc = pg_txn(mpg(m), PG_WRITE, record_delete_body, &ua);

	if (rc == 0 && promoted)
		memcpy(promoted, ua.promoted, sizeof(ua.promoted));
	return rc;
}

/* ---- the shared SQL layer's dialect (meta_impl.h, meta_sql.c) ---- */

/* The database's clock in ms since the epoch (one value per statement). */
#define PG_NOW_MS "(extract(epoch FROM now()) * 1000)::bigint"

struct pg_tramp {
	int (*body)(struct meta *m, void *arg);
	void *arg;
};

static int pg_tramp(struct mpg *p, void *arg)
{
	struct pg_tramp *t = arg;

	return t->body(&p->base, t->arg);
}

static int pg_txn_op(struct meta *m, int write, int (*body)(struct meta *m, void *arg),
		     void *arg)
{
	struct mpg *p = mpg(m);
	struct pg_tramp t = { body, arg };

	if (p->conn && PQtransactionStatus(p->conn) == PQTRANS_INTRANS)
		return body(m, arg);   /* inside open's own transaction */
	return pg_txn(p, write ? PG_WRITE : PG_READ, pg_tramp, &t);
}

static int pg_sql_op(struct meta *m, const char *sql, int n, const char *const *params,
		     meta_sql_row_fn cb, void *ctx)
{
	struct mpg *p = mpg(m);
	const char *vals[META_SQL_COLS_MAX];
	PGresult *r = NULL;
	int i, row, ncols, rc;

	if (!p->conn)
		return pg_fail(p, NULL, sql);
	rc = pg_result(p, PQexecParams(p->conn, sql, n, NULL, params, NULL, NULL, 0), sql, &r);
	if (rc < 0)
		goto out;
	ncols = PQnfields(r) < META_SQL_COLS_MAX ? PQnfields(r) : META_SQL_COLS_MAX;
	for (row = 0; cb && row < PQntuples(r); row++) {
		for (i = 0; i < ncols; i++)
			vals[i] = PQgetisnull(r, row, i) ? NULL : PQgetvalue(r, row, i);
		rc = cb(ctx, ncols, vals);
		if (rc != 0)
			goto out;
	}
	rc = PQntuples(r);
out:
	PQclear(r);
	return rc;
}

static const struct meta_ops pg_ops = {
	.name = "postgresql",
	.close = pg_close,
	.schema_version = pg_schema_version,
	.lookup = pg_lookup,
	.readdir = pg_readdir,
	.get_uid = pg_get_uid,
	.versions = pg_versions,
	.max_id = pg_max_id,
	.page = pg_page,
	.totals = pg_totals,
	.save_begin = pg_save_begin,
	.save_finish = pg_save_finish,
	.save_abort = pg_save_abort,
	.unlink = pg_unlink,
	.rename = pg_rename,
	.mkdir = pg_mkdir,
	.rmdir = pg_rmdir,
	.setattr = pg_setattr,
	.record_delete = pg_record_delete,
	META_SQL_LEASE_OPS,
	.txn = pg_txn_op,
	.sql = pg_sql_op,
	.now_ms = PG_NOW_MS,
	.utf8_only = 1,
};
