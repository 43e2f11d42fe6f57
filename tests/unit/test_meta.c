/*
 * test_meta.c — the metadata-store contract (meta.h), one table of cases run
 * against every store: SQLite always; PostgreSQL when LAMFS_TEST_PG_URL names
 * a database the tests may use (tests/pg/run-unit.sh starts a throwaway
 * server and sets it), with a printed skip otherwise.
 *
 * Each case gets a freshly created store (SQLite: a file in a temp dir;
 * PostgreSQL: a schema of its own, named in the url's search_path) and checks
 * the database behind the store's back through the store's own client
 * library: rows present or not, column values the e2e tests and LaminDB rely
 * on.  The SQL of those checks is written once, with ?1 parameters, in the
 * dialect both share.  Cases that only make sense for one store (a damaged
 * SQLite file, a PostgreSQL session killed mid-transaction) say so in the
 * table at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "key.h"
#include "log.h"
#include "lamindb.h"
#include "meta.h"
#include "meta_impl.h"
#include "uid.h"

#define MAX_PLACES 4

struct fx;

/* One metadata store under test, and how to look behind its back. */
struct store {
	const char *name;
	unsigned bit;                 /* S_SQLITE or S_PG: which cases apply */
	/* 0, or -1 when this store cannot be tested here (says why). */
	int (*avail)(void);
	/* A new empty place for a store: its url into url (size bytes). */
	void (*place)(struct fx *f, const char *name, char *url, size_t size);
	/* Remove every place the case made. */
	void (*wipe)(struct fx *f);
	/* First column of the first row of sql (?1 = arg when not NULL), read
	 * behind the store's back: an integer (booleans 1/0), -1 when no row,
	 * -2 for NULL. */
	long long (*q1)(struct fx *f, const char *sql, const char *arg);
	/* Like q1, as text ("<none>", "<null>"). */
	const char *(*q1s)(struct fx *f, const char *sql, const char *arg);
	/* Run constant SQL on the case's store. */
	void (*exec)(struct fx *f, const char *sql);
};

#define S_SQLITE 1u
#define S_PG 2u
#define S_ALL (S_SQLITE | S_PG)

struct fx {
	const struct store *st;
	char dir[64];                 /* scratch directory of the case */
	char url[1024];               /* the store every case starts with */
	char db[128];                 /* SQLite: its file */
	char schema[64];              /* PostgreSQL: its schema */
	char places[MAX_PLACES][64];  /* PostgreSQL: schemas made by place() */
	int nplaces;
	PGconn *bd;                   /* PostgreSQL: the connection behind the store */
	struct meta *m;
};

/* ---- helpers ---- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A side path in the fixture's folder. */
static const char *fx_path(struct fx *f, const char *name)
{
	static char p[256];

	snprintf(p, sizeof(p), "%s/%s", f->dir, name);
	return p;
}

static long long q1(struct fx *f, const char *sql, const char *arg)
{
	return f->st->q1(f, sql, arg);
}

static const char *q1s(struct fx *f, const char *sql, const char *arg)
{
	return f->st->q1s(f, sql, arg);
}

/* ---- SQLite ---- */

static int sq_avail(void)
{
	return 0;
}

static void sq_place(struct fx *f, const char *name, char *url, size_t size)
{
	snprintf(url, size, "%s", fx_path(f, name));
}

static void sq_wipe(struct fx *f)
{
	(void)f;   /* the files are in f->dir */
}

static long long sq_q1(struct fx *f, const char *sql, const char *arg)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	long long v = -1;

	assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (arg)
		sqlite3_bind_text(s, 1, arg, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_type(s, 0) == SQLITE_NULL ? -2 : sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static const char *sq_q1s(struct fx *f, const char *sql, const char *arg)
{
	static char buf[2048];
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;

	snprintf(buf, sizeof(buf), "<none>");
	assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (arg)
		sqlite3_bind_text(s, 1, arg, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW)
		snprintf(buf, sizeof(buf), "%s",
			 sqlite3_column_type(s, 0) == SQLITE_NULL
			 ? "<null>" : (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
	return buf;
}

/* Run constant SQL on the SQLite file at path through a separate connection. */
static void exec_sql(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *err = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
	sqlite3_close(db);
}

static void sq_exec(struct fx *f, const char *sql)
{
	exec_sql(f->db, sql);
}

/* ---- PostgreSQL ---- */

static const char *pg_base_url(void)
{
	const char *u = getenv("LAMFS_TEST_PG_URL");

	return u && u[0] ? u : NULL;
}

static void pg_quiet(void *ctx, const char *msg)
{
	(void)ctx;
	(void)msg;
}

/* A connection to url (application_name `app`), or a failed test. */
static PGconn *pg_connect_as(const char *url, const char *app)
{
	const char *kw[] = { "dbname", "application_name", NULL };
	const char *val[] = { url, app, NULL };
	PGconn *c = PQconnectdbParams(kw, val, 1);

	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("cannot connect to the test database: %s", PQerrorMessage(c));
	PQsetNoticeProcessor(c, pg_quiet, NULL);   /* "drop cascades to ..." */
	return c;
}

/* Run constant SQL (several statements allowed) on c. */
static void pg_exec_on(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
}

static int pg_avail(void)
{
	PGconn *c;

	if (!pg_base_url()) {
		printf("meta contract: LAMFS_TEST_PG_URL is not set: the PostgreSQL store is "
		       "NOT tested (tests/pg/run-unit.sh starts a server and runs them)\n");
		return -1;
	}
	c = pg_connect_as(pg_base_url(), "lamfs-test");
	PQfinish(c);
	return 0;
}

/* The url of schema `schema`: the base url with search_path and an
 * application_name that names the schema (so a test can find the store's
 * sessions in pg_stat_activity). */
static void pg_url_of(const char *schema, char *url, size_t size)
{
	const char *base = pg_base_url();

	snprintf(url, size, "%s%coptions=-csearch_path%%3D%s&application_name=%s", base,
		 strchr(base, '?') ? '&' : '?', schema, schema);
}

static void pg_place(struct fx *f, const char *name, char *url, size_t size)
{
	char sql[256], *schema;

	assert_true(f->nplaces < MAX_PLACES);
	schema = f->places[f->nplaces++];
	assert_true(strlen(f->schema) + 1 + strlen(name) < sizeof(f->places[0]));
	snprintf(schema, sizeof(f->places[0]), "%.40s_%.20s", f->schema, name);
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
	pg_exec_on(f->bd, sql);
	pg_url_of(schema, url, size);
}

static void pg_wipe(struct fx *f)
{
	char sql[256];
	int i;

	if (!f->bd)
		return;
	for (i = 0; i < f->nplaces; i++) {
		snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", f->places[i]);
		pg_exec_on(f->bd, sql);
	}
	PQfinish(f->bd);
	f->bd = NULL;
}

/* sql with its ?N parameters written $N. */
static void pg_dialect(const char *sql, char *out, size_t size)
{
	size_t i, n = 0;

	for (i = 0; sql[i] && n + 1 < size; i++)
		out[n++] = sql[i] == '?' && sql[i + 1] >= '1' && sql[i + 1] <= '9' ? '$' : sql[i];
	out[n] = '\0';
}

/* Run sql on the case's connection; the result, or a failed test. */
static PGresult *pg_query(struct fx *f, const char *sql, const char *arg)
{
	char q[4096];
	PGresult *r;

	pg_dialect(sql, q, sizeof(q));
	r = PQexecParams(f->bd, q, arg ? 1 : 0, NULL, arg ? &arg : NULL, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", q, PQerrorMessage(f->bd));
	return r;
}

static long long pg_q1(struct fx *f, const char *sql, const char *arg)
{
	PGresult *r = pg_query(f, sql, arg);
	long long v = -1;

	if (PQntuples(r) > 0 && PQgetisnull(r, 0, 0))
		v = -2;
	else if (PQntuples(r) > 0 && !strcmp(PQgetvalue(r, 0, 0), "t"))
		v = 1;
	else if (PQntuples(r) > 0 && !strcmp(PQgetvalue(r, 0, 0), "f"))
		v = 0;
	else if (PQntuples(r) > 0)
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

static const char *pg_q1s(struct fx *f, const char *sql, const char *arg)
{
	static char buf[2048];
	PGresult *r = pg_query(f, sql, arg);

	snprintf(buf, sizeof(buf), "<none>");
	if (PQntuples(r) > 0)
		snprintf(buf, sizeof(buf), "%s",
			 PQgetisnull(r, 0, 0) ? "<null>" : PQgetvalue(r, 0, 0));
	PQclear(r);
	return buf;
}

static void pg_exec(struct fx *f, const char *sql)
{
	pg_exec_on(f->bd, sql);
}

static const struct store stores[] = {
	{ "sqlite", S_SQLITE, sq_avail, sq_place, sq_wipe, sq_q1, sq_q1s, sq_exec },
	{ "postgresql", S_PG, pg_avail, pg_place, pg_wipe, pg_q1, pg_q1s, pg_exec },
};

static int setup(void **state)
{
	const struct store *st = *state;
	struct fx *f = calloc(1, sizeof(*f));
	static int serial;

	assert_non_null(f);
	f->st = st;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_meta.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	if (st->bit == S_SQLITE) {
		snprintf(f->db, sizeof(f->db), "%s/meta.db", f->dir);
		snprintf(f->url, sizeof(f->url), "%s", f->db);
	} else {
		/* a schema per case: lamfs_t<pid>_<n> */
		char sql[128];

		snprintf(f->schema, sizeof(f->schema), "lamfs_t%d_%d", (int)getpid(), ++serial);
		snprintf(f->places[f->nplaces++], sizeof(f->places[0]), "%s", f->schema);
		f->bd = pg_connect_as(pg_base_url(), "lamfs-test-backdoor");
		snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", f->schema);
		pg_exec_on(f->bd, sql);
		PQfinish(f->bd);
		/* from now on in the case's schema (also after a PQreset()) */
		pg_url_of(f->schema, f->url, sizeof(f->url));
		f->bd = pg_connect_as(f->url, "lamfs-test-backdoor");
	}
	assert_int_equal(meta_open(f->url, META_CREATE, &f->m), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	meta_close(f->m);
	f->st->wipe(f);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void fake_checksum(const char *content, char out[LAMFS_CHECKSUM_LEN + 1])
{
	uint64_t h = 1469598103934665603ull;
	const char *p;

	for (p = content; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	snprintf(out, LAMFS_CHECKSUM_LEN + 1, "%048x%016llx", 0, (unsigned long long)h);
}

/* A save request for key holding `content`. */
static void rec_init(struct lamfs_record *r, const char *key, const char *content)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->key, sizeof(r->key), "%s", key);
	key_suffix(key, r->suffix);
	r->size = (int64_t)strlen(content);
	snprintf(r->hash, sizeof(r->hash), "%.22s", "hhhhhhhhhhhhhhhhhhhhhh");
	snprintf(r->hash_type, sizeof(r->hash_type), "md5");
	fake_checksum(content, r->checksum);
	r->storage_id = 1;
	r->mode = 0640;
	r->owner_uid = 1000;
	r->owner_gid = 1001;
	r->mtime_ns = 1234567890;
}

/* Begin a save of content at key; the state must be `want`. */
static void begin(struct meta *m, const char *key, const char *content,
		  enum meta_save_state want, struct lamfs_record *out)
{
	enum meta_save_state st = (enum meta_save_state)-1;

	rec_init(out, key, content);
	assert_int_equal(meta_save_begin(m, out, &st, 0), 0);
	assert_int_equal(st, want);
}

/* A whole new save: begin (NEW) and finish.  Returns the finished record. */
static void save(struct meta *m, const char *key, const char *content, struct lamfs_record *out)
{
	struct lamfs_record r;

	begin(m, key, content, META_SAVE_NEW, &r);
	assert_int_equal(meta_save_finish(m, r.uid, out), 0);
	assert_string_equal(out->uid, r.uid);
}

static void mkdir_ok(struct meta *m, const char *path)
{
	struct lamfs_folder d;

	memset(&d, 0, sizeof(d));
	snprintf(d.path, sizeof(d.path), "%s", path);
	d.mode = 0750;
	d.owner_uid = 7;
	d.owner_gid = 8;
	d.mtime_ns = 42;
	assert_int_equal(meta_mkdir(m, &d), 0);
}

static int mkdir_rc(struct meta *m, const char *path)
{
	struct lamfs_folder d;

	memset(&d, 0, sizeof(d));
	snprintf(d.path, sizeof(d.path), "%s", path);
	d.mode = 0755;
	return meta_mkdir(m, &d);
}

static enum meta_type type_of(struct meta *m, const char *key)
{
	struct meta_entry e;
	int rc = meta_lookup(m, key, &e);

	if (rc == -ENOENT)
		return META_NONE;
	assert_int_equal(rc, 0);
	return e.type;
}

static long long nrec(struct fx *f, const char *key)
{
	return q1(f, "SELECT count(*) FROM artifact WHERE key = ?1", key);
}

static long long nfolder(struct fx *f, const char *path)
{
	return q1(f, "SELECT count(*) FROM folder WHERE path = ?1", path);
}

/* readdir into one string: "name/" for folders, "name" for files, sorted
 * by kind then name, separated by ' '. */
struct listing {
	char s[4096];
	int n;
	int stop_after;
};

static int list_cb(void *ctx, const char *name, const struct meta_entry *e)
{
	struct listing *l = ctx;
	size_t len = strlen(l->s);

	snprintf(l->s + len, sizeof(l->s) - len, "%s%s%s", len ? " " : "", name,
		 e->type == META_DIR ? "/" : "");
	l->n++;
	return l->stop_after && l->n >= l->stop_after;
}

static const char *ls(struct meta *m, const char *key)
{
	static struct listing l;

	memset(&l, 0, sizeof(l));
	assert_int_equal(meta_readdir(m, key, list_cb, &l), 0);
	return l.s;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* CPU time of this thread (user + system): the rename's own cost, less
 * sensitive than the wall clock to a busy machine. */
static int64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- open, create, schema ---- */

/* What only one store's create leaves behind. */
static void check_created(struct fx *f)
{
	if (f->st->bit == S_SQLITE) {
		assert_string_equal(q1s(f, "PRAGMA journal_mode", NULL), "wal");
		assert_int_equal(q1(f, "PRAGMA page_size", NULL), 4096);   /* LaminDB's own */
		assert_int_equal(q1(f, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
				    "AND name IN ('artifact_latest_key', 'artifact_parent_name', "
				    "'artifact_key', 'folder_parent_name', 'artifact_flagged')",
				    NULL), 5);
		return;
	}
	assert_int_equal(q1(f, "SELECT count(*) FROM pg_indexes WHERE schemaname = "
			    "current_schema() AND indexname IN ('artifact_latest_key', "
			    "'artifact_parent_name', 'artifact_key', 'folder_parent_name', "
			    "'artifact_flagged')", NULL), 5);
	/* one latest live version per key: a unique index with that predicate */
	assert_int_equal(q1(f, "SELECT indexdef LIKE 'CREATE UNIQUE INDEX % (key) WHERE "
			    "(is_latest AND (branch_id = 1))' FROM pg_indexes WHERE schemaname = "
			    "current_schema() AND indexname = 'artifact_latest_key'", NULL), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM information_schema.columns WHERE "
			    "table_schema = current_schema() AND column_name IN ('key', 'parent', "
			    "'name', 'path', 'uid') AND collation_name = 'C'", NULL), 7);
	assert_string_equal(q1s(f, "SELECT data_type FROM information_schema.columns WHERE "
				"table_schema = current_schema() AND table_name = 'artifact' AND "
				"column_name = '_aux'", NULL), "jsonb");
}

static void test_create_open_reopen(void **state)
{
	struct fx *f = *state;
	struct meta *m = NULL;
	char url[1100];

	assert_int_equal(meta_schema_version(f->m), META_SCHEMA_VERSION);
	assert_int_equal(q1(f, "SELECT version FROM lamfs_schema", NULL), META_SCHEMA_VERSION);
	assert_int_equal(q1(f, "SELECT count(*) FROM storage WHERE id = 1", NULL), 1);
	check_created(f);
	meta_close(f->m);
	f->m = NULL;

	/* create twice: SQLite refuses, PostgreSQL attaches (a second machine) */
	if (f->st->bit == S_SQLITE) {
		assert_int_equal(meta_open(f->url, META_CREATE, &m), -EEXIST);
		assert_null(m);
	} else {
		assert_int_equal(meta_open(f->url, META_CREATE, &m), 0);
		assert_int_equal(meta_schema_version(m), META_SCHEMA_VERSION);
		meta_close(m);
		m = NULL;
		assert_int_equal(q1(f, "SELECT count(*) FROM lamfs_schema", NULL), 1);
		assert_int_equal(q1(f, "SELECT count(*) FROM storage", NULL), 1);
	}
	/* reopen, in each spelling of the url */
	assert_int_equal(meta_open(f->url, 0, &f->m), 0);
	assert_int_equal(meta_schema_version(f->m), META_SCHEMA_VERSION);
	if (f->st->bit == S_SQLITE)
		snprintf(url, sizeof(url), "sqlite:%s", f->db);
	else
		snprintf(url, sizeof(url), "postgres://%s", strstr(f->url, "://") + 3);
	assert_int_equal(meta_open(url, 0, &m), 0);
	meta_close(m);
	m = NULL;
	/* read-only: reads work, writes say EROFS */
	assert_int_equal(meta_open(url, META_READONLY, &m), 0);
	assert_int_equal(type_of(m, ""), META_DIR);
	assert_int_equal(mkdir_rc(m, "x"), -EROFS);
	meta_close(m);
	m = NULL;

	/* missing: nothing is made */
	f->st->place(f, "nope", url, sizeof(url));
	assert_int_equal(meta_open(url, 0, &m), -ENOENT);
	assert_int_equal(meta_open(url, META_READONLY, &m), -ENOENT);
	if (f->st->bit == S_SQLITE)
		assert_int_equal(access(url, F_OK), -1);
	else
		assert_int_equal(q1(f, "SELECT count(*) FROM pg_tables WHERE schemaname = ?1",
				    f->places[f->nplaces - 1]), 0);
	/* other schemes, bad flags */
	assert_int_equal(meta_open("mysql://localhost/lamfs", 0, &m), -EPROTONOSUPPORT);
	assert_int_equal(meta_open("postgresqlx://localhost/lamfs", 0, &m), -EPROTONOSUPPORT);
	assert_int_equal(meta_open(f->url, META_CREATE | META_READONLY, &m), -EINVAL);
	if (f->st->bit == S_SQLITE)
		assert_int_equal(meta_open(f->dir, 0, &m), -EISDIR);
	assert_null(m);
}

static void test_newer_schema(void **state)
{
	struct fx *f = *state;
	struct meta *m = NULL;

	meta_close(f->m);
	f->m = NULL;
	f->st->exec(f, "UPDATE lamfs_schema SET version = 99");
	assert_int_equal(meta_open(f->url, 0, &m), -EPROTO);
	assert_string_equal(meta_open_why(), "written by a newer lamfs; upgrade lamfs");
	assert_int_equal(meta_open(f->url, META_READONLY, &m), -EPROTO);
	if (f->st->bit == S_PG)   /* attaching does not touch a newer schema either */
		assert_int_equal(meta_open(f->url, META_CREATE, &m), -EPROTO);
	assert_null(m);
	assert_int_equal(q1(f, "SELECT version FROM lamfs_schema", NULL), 99);
}

/* A zero-length file (a create that died before its first commit) is
 * version 0: migrated by a read-write open, refused by a read-only one. */
static void test_empty_file_refused(void **state)
{
	struct fx *f = *state;
	const char *p = fx_path(f, "empty.db");
	struct meta *m = NULL;
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);

	struct stat st;

	assert_true(fd >= 0);
	close(fd);
	/* An empty file where the store should be is a lost database: refused,
	 * read-only or not, and never set up afresh (that would drop every
	 * record); only META_CREATE makes a store. */
	assert_int_equal(meta_open(p, META_READONLY, &m), -EBADMSG);
	assert_int_equal(meta_open(p, 0, &m), -EBADMSG);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 0);
}

static void read_file(const char *path, unsigned char *buf, size_t len)
{
	FILE *fp = fopen(path, "rb");

	assert_non_null(fp);
	assert_int_equal(fread(buf, 1, len, fp), len);
	assert_int_equal(fgetc(fp), EOF);
	fclose(fp);
}

static void test_not_a_database(void **state)
{
	struct fx *f = *state;
	const char *p = fx_path(f, "garbage.db");
	unsigned char before[8192], after[8192];
	struct meta *m = NULL;
	char side[300];
	FILE *fp;
	size_t i;

	srand(7);
	for (i = 0; i < sizeof(before); i++)
		before[i] = (unsigned char)rand();
	fp = fopen(p, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(before, 1, sizeof(before), fp), sizeof(before));
	fclose(fp);

	assert_int_equal(meta_open(p, 0, &m), -EBADMSG);
	assert_int_equal(meta_open(p, META_READONLY, &m), -EBADMSG);
	assert_int_equal(meta_open(p, META_CREATE, &m), -EEXIST);
	assert_null(m);
	read_file(p, after, sizeof(after));
	assert_memory_equal(before, after, sizeof(before));
	snprintf(side, sizeof(side), "%s-wal", p);
	assert_int_equal(access(side, F_OK), -1);

	/* a SQLite database that is someone else's */
	p = fx_path(f, "other.db");
	exec_sql(p, "CREATE TABLE t (x INTEGER)");
	assert_int_equal(meta_open(p, 0, &m), -EBADMSG);
	assert_null(m);
}

/* A schema with someone else's table named like one of ours is not a lamfs
 * store: refused, create included, and left as it was. */
static void test_pg_not_lamfs(void **state)
{
	struct fx *f = *state;
	struct meta *m = NULL;
	char url[1100], sql[256];
	const char *schema;

	f->st->place(f, "other", url, sizeof(url));
	schema = f->places[f->nplaces - 1];
	snprintf(sql, sizeof(sql), "CREATE TABLE %s.artifact (x INTEGER); "
		 "INSERT INTO %s.artifact VALUES (7)", schema, schema);
	f->st->exec(f, sql);
	assert_int_equal(meta_open(url, 0, &m), -EBADMSG);
	assert_int_equal(meta_open(url, META_CREATE, &m), -EBADMSG);
	assert_int_equal(meta_open(url, META_READONLY, &m), -EBADMSG);
	assert_null(m);
	assert_int_equal(q1(f, "SELECT count(*) FROM pg_tables WHERE schemaname = ?1", schema),
			 1);
	snprintf(sql, sizeof(sql), "SELECT x FROM %s.artifact", schema);
	assert_int_equal(q1(f, sql, NULL), 7);

	/* a url libpq cannot parse; one it cannot use; a database that does
	 * not exist */
	assert_int_equal(meta_open("postgresql://h/db?no_such_option=1", 0, &m), -EINVAL);
	assert_int_equal(meta_open("postgresql://127.0.0.1:notaport/db", 0, &m), -EIO);
	snprintf(url, sizeof(url), "%s", pg_base_url());
	{
		char *q = strchr(url, '?'), *slash = strrchr(url, '/');

		if (q)
			*q = '\0';
		assert_non_null(slash);
		snprintf(slash + 1, sizeof(url) - (size_t)(slash + 1 - url), "no_such_db_%d",
			 (int)getpid());
	}
	assert_true(meta_open(url, 0, &m) < 0);
	assert_null(m);
}

/* ---- saving ---- */

static void test_save_new_finish_versions(void **state)
{
	struct fx *f = *state;
	struct lamfs_record r0, r1, r, again;
	struct meta_entry e;

	begin(f->m, "d/f.csv", "one", META_SAVE_NEW, &r0);
	assert_true(uid_valid(r0.uid));
	assert_string_equal(lamfs_uid_version(r0.uid), "0000");
	assert_int_equal(r0.storage_ongoing, 1);
	assert_int_equal(r0.is_latest, 0);
	assert_int_equal(r0.branch_id, 1);
	assert_string_equal(r0.suffix, ".csv");
	assert_true(r0.id > 0);
	assert_true(r0.created_at > 1600000000LL * 1000000000LL);
	assert_string_equal(q1s(f, "SELECT _aux FROM artifact WHERE uid = ?1", r0.uid),
			    "{\"so\": 1}");
	assert_string_equal(q1s(f, "SELECT parent || '|' || name FROM artifact WHERE uid = ?1",
				r0.uid), "d|f.csv");
	/* flagged: invisible, and no folder is made before the save finishes
	 * (a failed save leaves nothing, not even its folders) */
	assert_int_equal(meta_lookup(f->m, "d/f.csv", &e), -ENOENT);
	assert_int_equal(meta_lookup(f->m, "d", &e), -ENOENT);

	assert_int_equal(meta_save_finish(f->m, r0.uid, &r), 0);
	assert_int_equal(type_of(f->m, "d"), META_DIR);
	assert_int_equal(q1(f, "SELECT mode FROM folder WHERE path = 'd'", NULL), 0755);
	assert_int_equal(q1(f, "SELECT owner_uid FROM folder WHERE path = 'd'", NULL), 1000);
	assert_int_equal(r.is_latest, 1);
	assert_int_equal(r.storage_ongoing, 0);
	assert_string_equal(q1s(f, "SELECT _aux FROM artifact WHERE uid = ?1", r0.uid), "<null>");
	assert_int_equal(meta_lookup(f->m, "d/f.csv", &e), 0);
	assert_int_equal(e.type, META_FILE);
	assert_string_equal(e.rec.uid, r0.uid);
	assert_int_equal(e.rec.mode, 0640);
	assert_int_equal(e.rec.owner_gid, 1001);
	assert_int_equal(e.rec.mtime_ns, 1234567890);
	/* finishing twice changes nothing */
	assert_int_equal(meta_save_finish(f->m, r0.uid, NULL), 0);

	/* same content: EXISTS */
	begin(f->m, "d/f.csv", "one", META_SAVE_EXISTS, &again);
	assert_string_equal(again.uid, r0.uid);
	assert_int_equal(nrec(f, "d/f.csv"), 1);

	/* new content: a new version, same stem; the old one stays visible */
	begin(f->m, "d/f.csv", "two!", META_SAVE_NEW, &r1);
	assert_memory_equal(r1.uid, r0.uid, LAMFS_STEM_LEN);
	assert_string_equal(lamfs_uid_version(r1.uid), "0001");
	assert_int_equal(meta_lookup(f->m, "d/f.csv", &e), 0);
	assert_string_equal(e.rec.uid, r0.uid);
	assert_string_equal(ls(f->m, "d"), "f.csv");

	/* the same new content again while it is in flight: RESUME, same uid */
	begin(f->m, "d/f.csv", "two!", META_SAVE_RESUME, &again);
	assert_string_equal(again.uid, r1.uid);
	assert_int_equal(nrec(f, "d/f.csv"), 2);

	assert_int_equal(meta_save_finish(f->m, r1.uid, &r), 0);
	assert_int_equal(meta_lookup(f->m, "d/f.csv", &e), 0);
	assert_string_equal(e.rec.uid, r1.uid);
	assert_int_equal(meta_get_uid(f->m, r0.uid, &r), 0);
	assert_int_equal(r.is_latest, 0);
	assert_int_equal(q1(f, "SELECT count(*) FROM artifact WHERE key = 'd/f.csv' AND "
			    "is_latest", NULL), 1);
	assert_int_equal(meta_get_uid(f->m, "00000000000000000000", &r), -ENOENT);

	/* going back to the first content makes version 0002 */
	begin(f->m, "d/f.csv", "one", META_SAVE_NEW, &r);
	assert_string_equal(lamfs_uid_version(r.uid), "0002");
}

static void test_save_abort(void **state)
{
	struct fx *f = *state;
	struct lamfs_record r0, r1;
	struct meta_entry e;

	save(f->m, "a.txt", "v0", &r0);
	begin(f->m, "a.txt", "v1", META_SAVE_NEW, &r1);
	assert_int_equal(meta_save_abort(f->m, r1.uid), 0);
	assert_int_equal(meta_get_uid(f->m, r1.uid, NULL), -ENOENT);
	assert_int_equal(meta_save_abort(f->m, r1.uid), -ENOENT);
	assert_int_equal(meta_save_finish(f->m, r1.uid, NULL), -ENOENT);
	/* a committed record is not rolled back here */
	assert_int_equal(meta_save_abort(f->m, r0.uid), -EBUSY);
	assert_int_equal(meta_lookup(f->m, "a.txt", &e), 0);
	assert_string_equal(e.rec.uid, r0.uid);
	assert_int_equal(nrec(f, "a.txt"), 1);
}

/* META_BEGIN_LAZY: the flagged record is committed (every connection sees
 * it, still hidden), finishes and aborts as a durable one does, and the
 * commits after it work; an unknown flag is EINVAL and inserts nothing. */
static void test_save_lazy(void **state)
{
	struct fx *f = *state;
	struct lamfs_record r, got;
	struct meta_entry e;
	enum meta_save_state st = (enum meta_save_state)-1;
	struct meta *m2 = NULL;

	assert_int_equal(meta_open(f->url, 0, &m2), 0);
	rec_init(&r, "lazy/a", "one");
	assert_int_equal(meta_save_begin(f->m, &r, &st, META_BEGIN_LAZY), 0);
	assert_int_equal(st, META_SAVE_NEW);
	assert_int_equal(meta_get_uid(m2, r.uid, &got), 0);
	assert_int_equal(got.storage_ongoing, 1);
	assert_int_equal(meta_lookup(m2, "lazy/a", &e), -ENOENT);
	assert_int_equal(meta_save_finish(f->m, r.uid, NULL), 0);
	assert_int_equal(meta_lookup(m2, "lazy/a", &e), 0);
	assert_string_equal(e.rec.uid, r.uid);
	assert_int_equal(e.rec.storage_ongoing, 0);

	rec_init(&r, "lazy/b", "two");
	assert_int_equal(meta_save_begin(m2, &r, &st, META_BEGIN_LAZY), 0);
	assert_int_equal(meta_save_abort(m2, r.uid), 0);
	assert_int_equal(meta_get_uid(f->m, r.uid, NULL), -ENOENT);
	mkdir_ok(f->m, "after");   /* a durable commit right after a lazy one */

	rec_init(&r, "lazy/c", "three");
	assert_int_equal(meta_save_begin(f->m, &r, &st, 2u), -EINVAL);
	assert_int_equal(q1(f, "SELECT count(*) FROM artifact", NULL), 1);
	meta_close(m2);
}

static void test_save_errors(void **state)
{
	struct fx *f = *state;
	struct lamfs_record r;
	enum meta_save_state st;

	save(f->m, "file", "x", &r);
	mkdir_ok(f->m, "dir");

	rec_init(&r, "dir", "y");
	assert_int_equal(meta_save_begin(f->m, &r, &st, 0), -EISDIR);
	rec_init(&r, "file/inside", "y");
	assert_int_equal(meta_save_begin(f->m, &r, &st, 0), -ENOTDIR);
	rec_init(&r, "file/deeper/inside", "y");
	assert_int_equal(meta_save_begin(f->m, &r, &st, 0), -ENOTDIR);
	rec_init(&r, "dir/x", "y");
	r.storage_id = 9;
	assert_int_equal(meta_save_begin(f->m, &r, &st, 0), -EINVAL);
	rec_init(&r, "a//b", "y");
	assert_int_equal(meta_save_begin(f->m, &r, &st, 0), -EINVAL);
	assert_int_equal(q1(f, "SELECT count(*) FROM artifact", NULL), 1);
	assert_int_equal(nfolder(f, "file"), 0);

	/* missing ancestors are made by finish, with the record's owner */
	begin(f->m, "x/y/z/f", "deep", META_SAVE_NEW, &r);
	assert_int_equal(nfolder(f, "x"), 0);
	assert_int_equal(meta_save_finish(f->m, r.uid, &r), 0);
	assert_int_equal(nfolder(f, "x"), 1);
	assert_int_equal(nfolder(f, "x/y"), 1);
	assert_int_equal(nfolder(f, "x/y/z"), 1);
	assert_string_equal(q1s(f, "SELECT parent || '|' || name FROM folder WHERE path = ?1",
				"x/y/z"), "x/y|z");
	assert_string_equal(ls(f->m, "x"), "y/");

	/* a folder made where a save is in flight: finishing says EISDIR */
	begin(f->m, "k", "k", META_SAVE_NEW, &r);
	mkdir_ok(f->m, "k");
	assert_int_equal(meta_save_finish(f->m, r.uid, NULL), -EISDIR);
	assert_int_equal(meta_get_uid(f->m, r.uid, &r), 0);
	assert_int_equal(r.storage_ongoing, 1);
}

/* ---- lookups ---- */

static void test_lookup_readdir(void **state)
{
	struct fx *f = *state;
	struct lamfs_record r;
	struct meta_entry e;
	struct listing l;
	uint64_t files = 0, bytes = 0;

	save(f->m, "top.txt", "12345", &r);
	save(f->m, "p/b.txt", "bb", &r);
	save(f->m, "p/a.txt", "a", &r);
	save(f->m, "p/q/deep.txt", "deep", &r);
	mkdir_ok(f->m, "p/empty");
	begin(f->m, "p/flagged.txt", "fl", META_SAVE_NEW, &r);
	save(f->m, "pp/other.txt", "o", &r);

	assert_int_equal(meta_lookup(f->m, "", &e), 0);
	assert_int_equal(e.type, META_DIR);
	assert_int_equal(e.dir.mode, 0755);
	assert_int_equal(meta_lookup(f->m, "p/empty", &e), 0);
	assert_int_equal(e.type, META_DIR);
	assert_string_equal(e.dir.path, "p/empty");
	assert_int_equal(e.dir.mode, 0750);
	assert_int_equal(e.dir.owner_uid, 7);
	assert_int_equal(e.dir.mtime_ns, 42);
	assert_int_equal(meta_lookup(f->m, "p/nope", &e), -ENOENT);
	assert_int_equal(meta_lookup(f->m, "p/flagged.txt", &e), -ENOENT);

	assert_string_equal(ls(f->m, ""), "p/ pp/ top.txt");
	assert_string_equal(ls(f->m, "p"), "empty/ q/ a.txt b.txt");
	assert_string_equal(ls(f->m, "p/q"), "deep.txt");
	assert_string_equal(ls(f->m, "p/empty"), "");
	assert_int_equal(meta_readdir(f->m, "top.txt", list_cb, &l), -ENOTDIR);
	assert_int_equal(meta_readdir(f->m, "nope", list_cb, &l), -ENOENT);
	memset(&l, 0, sizeof(l));
	l.stop_after = 2;
	assert_int_equal(meta_readdir(f->m, "p", list_cb, &l), 0);
	assert_int_equal(l.n, 2);

	assert_int_equal(meta_totals(f->m, &files, &bytes), 0);
	assert_int_equal(files, 5);
	assert_int_equal(bytes, 5 + 2 + 1 + 4 + 1);
}

struct count_ctx {
	struct meta *m;
	int n;
	int flagged;
	int64_t last_id;
	char first_uid[LAMFS_UID_LEN + 1];
};

static int count_cb(void *ctx, const struct lamfs_record *rec)
{
	struct count_ctx *c = ctx;
	struct lamfs_record again;

	/* the lock is not held: calling meta from here works */
	assert_int_equal(meta_get_uid(c->m, rec->uid, &again), 0);
	assert_true(rec->id > c->last_id);
	c->last_id = rec->id;
	if (!c->n)
		memcpy(c->first_uid, rec->uid, sizeof(c->first_uid));
	c->n++;
	c->flagged += rec->storage_ongoing;
	return 0;
}

static void test_versions_foreach(void **state)
{
	struct fx *f = *state;
	struct lamfs_record r0, r1, r2;
	struct count_ctx c;
	int i;

	save(f->m, "v.txt", "0", &r0);
	save(f->m, "v.txt", "1", &r1);
	begin(f->m, "v.txt", "2", META_SAVE_NEW, &r2);
	memset(&c, 0, sizeof(c));
	c.m = f->m;
	assert_int_equal(meta_versions(f->m, "v.txt", count_cb, &c), 0);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.flagged, 1);
	assert_string_equal(c.first_uid, r0.uid);

	/* more than one page of records */
	for (i = 0; i < 600; i++) {
		char key[32];
		struct lamfs_record r;

		snprintf(key, sizeof(key), "many/%03d", i);
		if (i % 100 == 0)
			begin(f->m, key, key, META_SAVE_NEW, &r);
		else
			save(f->m, key, key, &r);
	}
	memset(&c, 0, sizeof(c));
	c.m = f->m;
	assert_int_equal(meta_foreach(f->m, META_ALL_RECORDS, count_cb, &c), 0);
	assert_int_equal(c.n, 603);
	assert_int_equal(c.flagged, 7);
	memset(&c, 0, sizeof(c));
	c.m = f->m;
	assert_int_equal(meta_foreach(f->m, META_FLAGGED_RECORDS, count_cb, &c), 0);
	assert_int_equal(c.n, 7);
	assert_int_equal(c.flagged, 7);
}

/* Uploads that finish out of order (write-back) never make old bytes latest. */
static void test_finish_out_of_order(void **state)
{
	struct fx *f = *state;
	struct lamfs_record r1, r2, r;
	struct meta_entry e;

	begin(f->m, "o/k.txt", "one", META_SAVE_NEW, &r1);
	begin(f->m, "o/k.txt", "two", META_SAVE_NEW, &r2);
	assert_int_equal(meta_save_finish(f->m, r2.uid, &r), 0);
	assert_int_equal(r.is_latest, 1);
	assert_int_equal(meta_save_finish(f->m, r1.uid, &r), 0);
	assert_int_equal(r.is_latest, 0);
	assert_int_equal(r.storage_ongoing, 0);
	assert_int_equal(meta_lookup(f->m, "o/k.txt", &e), 0);
	assert_string_equal(e.rec.uid, r2.uid);
	assert_int_equal(nrec(f, "o/k.txt"), 2);
}

/* ---- namespace ---- */

static void test_unlink(void **state)
{
	struct fx *f = *state;
	struct meta_dropped d = META_DROPPED_INIT;
	struct lamfs_record r0, r1, r2;

	save(f->m, "u/x.tar.gz", "0", &r0);
	save(f->m, "u/x.tar.gz", "1", &r1);
	begin(f->m, "u/x.tar.gz", "2", META_SAVE_NEW, &r2);

	assert_int_equal(meta_unlink(f->m, "u/x.tar.gz", &d), 0);
	/* every version goes, and the save in flight too: a pending upload must
	 * not bring the removed file back */
	assert_int_equal(d.n, 3);
	assert_string_equal(d.v[0].suffix, ".tar.gz");
	assert_int_equal(d.v[0].storage_id, 1);
	meta_dropped_release(&d);
	assert_int_equal(d.n, 0);
	assert_null(d.v);
	assert_int_equal(nrec(f, "u/x.tar.gz"), 0);
	assert_int_equal(meta_get_uid(f->m, r2.uid, &r2), -ENOENT);
	assert_int_equal(meta_save_finish(f->m, r2.uid, NULL), -ENOENT);
	(void)r0;
	(void)r1;
	assert_int_equal(type_of(f->m, "u/x.tar.gz"), META_NONE);
	assert_int_equal(type_of(f->m, "u"), META_DIR);   /* folders persist */

	assert_int_equal(meta_unlink(f->m, "u/x.tar.gz", &d), -ENOENT);
	assert_int_equal(meta_unlink(f->m, "u", &d), -EISDIR);
	assert_int_equal(meta_unlink(f->m, "", &d), -EISDIR);
	assert_int_equal(d.n, 0);
	meta_dropped_release(&d);
	meta_dropped_release(&d);   /* safe twice */
}

static void test_rename_file(void **state)
{
	struct fx *f = *state;
	struct meta_dropped d = META_DROPPED_INIT;
	struct lamfs_record a0, a1, af, b0, r;
	struct meta_entry e;

	save(f->m, "a.fasta", "a0", &a0);
	save(f->m, "a.fasta", "a1", &a1);
	begin(f->m, "a.fasta", "af", META_SAVE_NEW, &af);
	save(f->m, "dir/b.fasta", "b0", &b0);
	mkdir_ok(f->m, "other");

	/* same name: nothing changes */
	assert_int_equal(meta_rename(f->m, "a.fasta", "a.fasta", 0, &d), 0);
	assert_int_equal(nrec(f, "a.fasta"), 3);

	/* into a folder, every version and the save in flight move */
	assert_int_equal(meta_rename(f->m, "a.fasta", "other/renamed.txt", 0, &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(nrec(f, "a.fasta"), 0);
	assert_int_equal(nrec(f, "other/renamed.txt"), 3);
	assert_int_equal(q1(f, "SELECT count(*) FROM artifact WHERE parent = 'other' AND "
			    "name = 'renamed.txt'", NULL), 3);
	assert_int_equal(meta_lookup(f->m, "other/renamed.txt", &e), 0);
	assert_string_equal(e.rec.uid, a1.uid);
	assert_string_equal(e.rec.suffix, ".fasta");   /* objects do not move */
	assert_string_equal(ls(f->m, "other"), "renamed.txt");
	/* the moved save in flight finishes at the new key */
	assert_int_equal(meta_save_finish(f->m, af.uid, &r), 0);
	assert_string_equal(r.key, "other/renamed.txt");
	assert_int_equal(meta_lookup(f->m, "other/renamed.txt", &e), 0);
	assert_string_equal(e.rec.uid, af.uid);

	/* replacing a file: its committed versions are dropped */
	assert_int_equal(meta_rename(f->m, "other/renamed.txt", "dir/b.fasta",
				     META_RENAME_NOREPLACE, &d), -EEXIST);
	assert_int_equal(meta_rename(f->m, "other/renamed.txt", "dir/b.fasta", 0, &d), 0);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.v[0].uid, b0.uid);
	assert_int_equal(meta_get_uid(f->m, b0.uid, NULL), -ENOENT);
	assert_int_equal(nrec(f, "dir/b.fasta"), 3);
	assert_int_equal(meta_lookup(f->m, "dir/b.fasta", &e), 0);
	assert_string_equal(e.rec.uid, af.uid);
	meta_dropped_release(&d);

	/* errors */
	assert_int_equal(meta_rename(f->m, "nope", "x", 0, &d), -ENOENT);
	assert_int_equal(meta_rename(f->m, "dir/b.fasta", "other", 0, &d), -EISDIR);
	assert_int_equal(meta_rename(f->m, "dir/b.fasta", "missing/x", 0, &d), -ENOENT);
	save(f->m, "plain", "p", &r);
	assert_int_equal(meta_rename(f->m, "dir/b.fasta", "plain/x", 0, &d), -ENOTDIR);
	assert_int_equal(meta_rename(f->m, "dir/b.fasta", "plain/x/y", 0, &d), -ENOTDIR);
	assert_int_equal(meta_rename(f->m, "dir/b.fasta", "", 0, &d), -EBUSY);
	assert_int_equal(d.n, 0);
	assert_int_equal(nrec(f, "dir/b.fasta"), 3);
	meta_dropped_release(&d);
}

static void test_rename_folder(void **state)
{
	struct fx *f = *state;
	struct meta_dropped d = META_DROPPED_INIT;
	struct lamfs_record r, fl;
	struct meta_entry e;

	save(f->m, "a/x.txt", "x0", &r);
	save(f->m, "a/x.txt", "x1", &r);
	save(f->m, "a/s/y.txt", "y", &r);
	begin(f->m, "a/s/t/flagged.txt", "fl", META_SAVE_NEW, &fl);
	mkdir_ok(f->m, "a/s/emptydir");
	/* names that share the prefix "a" must stay */
	save(f->m, "a-b/k", "k", &r);
	save(f->m, "a.b", "ab", &r);
	save(f->m, "ab/k", "k2", &r);
	mkdir_ok(f->m, "b");

	assert_int_equal(meta_rename(f->m, "a", "b/c", 0, &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(nfolder(f, "a"), 0);
	assert_int_equal(q1(f, "SELECT count(*) FROM artifact WHERE key >= 'a/' AND "
			    "key < 'a0'", NULL), 0);
	assert_int_equal(q1(f, "SELECT count(*) FROM folder WHERE path >= 'a/' AND "
			    "path < 'a0'", NULL), 0);
	assert_int_equal(nrec(f, "b/c/x.txt"), 2);
	assert_int_equal(nrec(f, "b/c/s/y.txt"), 1);
	assert_int_equal(nrec(f, "b/c/s/t/flagged.txt"), 1);
	assert_string_equal(q1s(f, "SELECT parent || '|' || name FROM artifact WHERE key = ?1",
				"b/c/s/y.txt"), "b/c/s|y.txt");
	assert_string_equal(q1s(f, "SELECT parent || '|' || name FROM folder WHERE path = ?1",
				"b/c"), "b|c");
	assert_string_equal(q1s(f, "SELECT parent || '|' || name FROM folder WHERE path = ?1",
				"b/c/s/emptydir"), "b/c/s|emptydir");
	assert_int_equal(nfolder(f, "b/c/s/t"), 0); /* only the flagged record is there */
	assert_string_equal(ls(f->m, "b"), "c/");
	assert_string_equal(ls(f->m, "b/c"), "s/ x.txt");
	assert_string_equal(ls(f->m, "b/c/s"), "emptydir/ y.txt");
	assert_string_equal(ls(f->m, ""), "a-b/ ab/ b/ a.b");
	assert_int_equal(nrec(f, "a-b/k") + nrec(f, "a.b") + nrec(f, "ab/k"), 3);
	assert_int_equal(meta_save_finish(f->m, fl.uid, &r), 0);
	assert_string_equal(r.key, "b/c/s/t/flagged.txt");
	assert_int_equal(meta_lookup(f->m, "b/c/s/t/flagged.txt", &e), 0);
	assert_int_equal(nfolder(f, "b/c/s/t"), 1); /* made by the finish */

	/* onto an empty folder: replaced; onto a non-empty one: ENOTEMPTY */
	mkdir_ok(f->m, "empty");
	assert_int_equal(meta_rename(f->m, "b/c", "empty", META_RENAME_NOREPLACE, &d), -EEXIST);
	assert_int_equal(meta_rename(f->m, "b/c", "empty", 0, &d), 0);
	assert_int_equal(nrec(f, "empty/x.txt"), 2);
	assert_int_equal(nfolder(f, "b/c"), 0);
	assert_int_equal(meta_rename(f->m, "ab", "empty", 0, &d), -ENOTEMPTY);
	/* a folder holding only a save in flight is not empty either */
	mkdir_ok(f->m, "busy");
	begin(f->m, "busy/inflight", "i", META_SAVE_NEW, &r);
	assert_int_equal(meta_rename(f->m, "ab", "busy", 0, &d), -ENOTEMPTY);

	/* into its own subtree; onto a file; from missing */
	assert_int_equal(meta_rename(f->m, "empty", "empty/s/in", 0, &d), -EINVAL);
	assert_int_equal(meta_rename(f->m, "empty", "empty/new", 0, &d), -EINVAL);
	assert_int_equal(meta_rename(f->m, "empty", "a.b", 0, &d), -ENOTDIR);
	assert_int_equal(meta_rename(f->m, "nofolder", "z", 0, &d), -ENOENT);
	assert_int_equal(meta_rename(f->m, "empty", "nofolder/z", 0, &d), -ENOENT);
	assert_int_equal(meta_rename(f->m, "empty", "a.b/z", 0, &d), -ENOTDIR);
	/* a key inside would grow over LAMFS_KEY_MAX */
	{
		char key[LAMFS_KEY_MAX + 1], part[251];

		memset(part, 'p', 250);
		part[250] = '\0';
		snprintf(key, sizeof(key), "n/%s/%s/%s/%s", part, part, part, part);
		save(f->m, key, "long", &r);
		assert_int_equal(meta_rename(f->m, "n", "nnnnnnnnnnnnnnnnnnnnnnnnn", 0, &d),
				 -ENAMETOOLONG);
		assert_int_equal(nrec(f, key), 1);
		assert_int_equal(meta_rename(f->m, "n", "m", 0, &d), 0);
		key[0] = 'm';
		assert_int_equal(nrec(f, key), 1);
	}
	/* "empty" moved into a sibling whose name extends it is fine */
	assert_int_equal(meta_rename(f->m, "empty", "ab/empty", 0, &d), 0);
	assert_int_equal(nrec(f, "ab/empty/s/t/flagged.txt"), 1);
	assert_int_equal(d.n, 0);
	meta_dropped_release(&d);
}

static void test_mkdir_rmdir(void **state)
{
	struct fx *f = *state;
	struct meta_dropped d = META_DROPPED_INIT;
	struct lamfs_record r;

	mkdir_ok(f->m, "d");
	assert_int_equal(q1(f, "SELECT mode FROM folder WHERE path = 'd'", NULL), 0750);
	assert_int_equal(mkdir_rc(f->m, "d"), -EEXIST);
	assert_int_equal(mkdir_rc(f->m, ""), -EEXIST);
	save(f->m, "file", "f", &r);
	assert_int_equal(mkdir_rc(f->m, "file"), -EEXIST);
	assert_int_equal(mkdir_rc(f->m, "missing/x"), -ENOENT);
	assert_int_equal(mkdir_rc(f->m, "file/x"), -ENOTDIR);
	assert_int_equal(mkdir_rc(f->m, "d/../x"), -EINVAL);
	mkdir_ok(f->m, "d/e");
	assert_string_equal(q1s(f, "SELECT parent || '|' || name FROM folder WHERE path = ?1",
				"d/e"), "d|e");

	assert_int_equal(meta_rmdir(f->m, "d"), -ENOTEMPTY);
	assert_int_equal(meta_rmdir(f->m, "file"), -ENOTDIR);
	assert_int_equal(meta_rmdir(f->m, "nope"), -ENOENT);
	assert_int_equal(meta_rmdir(f->m, ""), -EBUSY);
	assert_int_equal(meta_rmdir(f->m, "d/e"), 0);
	assert_int_equal(nfolder(f, "d/e"), 0);

	/* a committed file, or only a save in flight, keeps it */
	begin(f->m, "d/inflight", "i", META_SAVE_NEW, &r);
	assert_int_equal(meta_rmdir(f->m, "d"), -ENOTEMPTY);
	assert_int_equal(meta_save_abort(f->m, r.uid), 0);
	save(f->m, "d/kept", "k", &r);
	assert_int_equal(meta_rmdir(f->m, "d"), -ENOTEMPTY);
	assert_int_equal(meta_unlink(f->m, "d/kept", &d), 0);
	assert_int_equal(d.n, 1);
	meta_dropped_release(&d);
	assert_int_equal(meta_rmdir(f->m, "d"), 0);
	assert_int_equal(type_of(f->m, "d"), META_NONE);
}

static void test_setattr(void **state)
{
	struct fx *f = *state;
	struct lamfs_record r0, r1, r;
	struct meta_attr a = { .mode = 0100600, .owner_uid = 55, .owner_gid = 66,
			       .mtime_ns = 999 };
	struct meta_entry e;

	save(f->m, "s.txt", "0", &r0);
	save(f->m, "s.txt", "1", &r1);
	mkdir_ok(f->m, "sd");

	assert_int_equal(meta_setattr(f->m, "s.txt", META_ATTR_MODE | META_ATTR_MTIME, &a), 0);
	assert_int_equal(meta_lookup(f->m, "s.txt", &e), 0);
	assert_int_equal(e.rec.mode, 0600);
	assert_int_equal(e.rec.mtime_ns, 999);
	assert_int_equal(e.rec.owner_uid, 1000);   /* not in the mask */
	assert_true(e.rec.updated_at >= r1.updated_at);
	assert_int_equal(meta_get_uid(f->m, r0.uid, &r), 0);
	assert_int_equal(r.mode, 0640);            /* older versions keep theirs */

	assert_int_equal(meta_setattr(f->m, "sd", META_ATTR_OWNER_UID | META_ATTR_OWNER_GID,
				      &a), 0);
	assert_int_equal(meta_lookup(f->m, "sd", &e), 0);
	assert_int_equal(e.dir.owner_uid, 55);
	assert_int_equal(e.dir.owner_gid, 66);
	assert_int_equal(e.dir.mode, 0750);

	assert_int_equal(meta_setattr(f->m, "nope", META_ATTR_MODE, &a), -ENOENT);
	assert_int_equal(meta_setattr(f->m, "", META_ATTR_MODE, &a), -EPERM);
}

static void test_record_delete(void **state)
{
	struct fx *f = *state;
	struct lamfs_record r0, r1, fl;
	char promoted[LAMFS_UID_LEN + 1];
	struct meta_entry e;

	save(f->m, "rd.txt", "0", &r0);
	save(f->m, "rd.txt", "1", &r1);
	begin(f->m, "rd.txt", "2", META_SAVE_NEW, &fl);

	/* a flagged record: deleted, nothing promoted */
	assert_int_equal(meta_record_delete(f->m, fl.uid, promoted), 0);
	assert_string_equal(promoted, "");
	assert_int_equal(meta_get_uid(f->m, fl.uid, NULL), -ENOENT);
	/* the latest: the previous version becomes latest */
	assert_int_equal(meta_record_delete(f->m, r1.uid, promoted), 0);
	assert_string_equal(promoted, r0.uid);
	assert_int_equal(meta_lookup(f->m, "rd.txt", &e), 0);
	assert_string_equal(e.rec.uid, r0.uid);
	assert_int_equal(e.rec.is_latest, 1);
	/* the last one: nothing left */
	assert_int_equal(meta_record_delete(f->m, r0.uid, NULL), 0);
	assert_int_equal(type_of(f->m, "rd.txt"), META_NONE);
	assert_int_equal(meta_record_delete(f->m, r0.uid, promoted), -ENOENT);
	assert_int_equal(nrec(f, "rd.txt"), 0);
}

/* ---- leases ---- */

static void lease_init(struct meta_lease *l, const char *id, enum meta_lease_kind kind,
		       const char *host, const char *mnt)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->id, sizeof(l->id), "%s", id);
	l->kind = kind;
	snprintf(l->host, sizeof(l->host), "%s", host);
	l->pid = 4242;
	snprintf(l->instance, sizeof(l->instance), "/inst/%s", host);
	snprintf(l->mountpoint, sizeof(l->mountpoint), "%s", mnt);
}

struct lease_seen {
	int n, live;
	struct meta_lease last;
};

static int lease_seen_cb(void *ctx, const struct meta_lease *l)
{
	struct lease_seen *ls = ctx;

	ls->n++;
	ls->live += l->remaining_ms > 0;
	ls->last = *l;
	return 0;
}

static struct lease_seen leases_of(struct meta *m)
{
	struct lease_seen ls;

	memset(&ls, 0, sizeof(ls));
	assert_int_equal(meta_lease_list(m, lease_seen_cb, &ls), 0);
	return ls;
}

/* Mounts share; a repair excludes every other lease and keeps mounts out. */
static void test_lease_rules(void **state)
{
	struct fx *f = *state;
	struct meta_lease a, b, r, r2, blk;
	struct lease_seen ls;
	struct meta *m2 = NULL;

	lease_init(&a, "mountA", META_LEASE_MOUNT, "hostA", "/mnt/a");
	lease_init(&b, "mountB", META_LEASE_MOUNT, "hostB", "/mnt/b");
	lease_init(&r, "repairC", META_LEASE_REPAIR, "hostC", "");
	lease_init(&r2, "repairD", META_LEASE_REPAIR, "hostD", "");
	/* a second handle: another machine */
	assert_int_equal(meta_open(f->url, 0, &m2), 0);

	assert_int_equal(meta_lease_take(f->m, &a, 60000, 0, &blk), 0);
	assert_int_equal(meta_lease_take(m2, &b, 30000, 0, &blk), 0);
	assert_int_equal(meta_lease_take(f->m, &a, 60000, 0, NULL), 0);   /* again: refresh */
	assert_int_equal(q1(f, "SELECT count(*) FROM lease", NULL), 2);
	assert_string_equal(q1s(f, "SELECT kind FROM lease WHERE id = ?1", "mountA"), "mount");
	assert_string_equal(q1s(f, "SELECT mountpoint FROM lease WHERE id = ?1", "mountB"),
			    "/mnt/b");
	assert_int_equal(q1(f, "SELECT expires_ms - started_ms FROM lease WHERE id = ?1",
			    "mountB"), 30000);

	/* a repair is refused while a mount is live, naming the one expiring last */
	assert_int_equal(meta_lease_take(m2, &r, 30000, 0, &blk), -EBUSY);
	assert_string_equal(blk.id, "mountA");
	assert_int_equal(blk.kind, META_LEASE_MOUNT);
	assert_string_equal(blk.host, "hostA");
	assert_string_equal(blk.mountpoint, "/mnt/a");
	assert_string_equal(blk.instance, "/inst/hostA");
	assert_int_equal(blk.pid, 4242);
	assert_true(blk.remaining_ms > 50000 && blk.remaining_ms <= 60000);
	assert_int_equal(q1(f, "SELECT count(*) FROM lease WHERE id = ?1", "repairC"), 0);

	ls = leases_of(f->m);
	assert_int_equal(ls.n, 2);
	assert_int_equal(ls.live, 2);
	assert_string_equal(ls.last.id, "mountA");   /* soonest expiry first */

	/* renew, release */
	assert_int_equal(meta_lease_renew(m2, "mountB", 90000), 0);
	assert_true(q1(f, "SELECT expires_ms - started_ms FROM lease WHERE id = ?1",
		       "mountB") >= 90000);
	assert_int_equal(meta_lease_renew(m2, "nobody", 90000), -ENOENT);
	assert_int_equal(meta_lease_release(f->m, "mountA"), 0);
	assert_int_equal(meta_lease_release(f->m, "mountA"), -ENOENT);
	assert_int_equal(meta_lease_take(m2, &r, 30000, 0, &blk), -EBUSY);
	assert_string_equal(blk.id, "mountB");
	assert_int_equal(meta_lease_release(m2, "mountB"), 0);

	/* nothing live: the repair runs; mounts and other repairs wait */
	assert_int_equal(meta_lease_take(m2, &r, 30000, 0, &blk), 0);
	assert_int_equal(meta_lease_take(f->m, &a, 30000, 0, &blk), -EBUSY);
	assert_string_equal(blk.id, "repairC");
	assert_int_equal(blk.kind, META_LEASE_REPAIR);
	assert_int_equal(meta_lease_take(f->m, &r2, 30000, 0, &blk), -EBUSY);
	assert_string_equal(blk.id, "repairC");
	/* forced (--force-unlocked): taken beside it */
	assert_int_equal(meta_lease_take(f->m, &r2, 30000, META_LEASE_FORCE, &blk), 0);
	assert_int_equal(meta_lease_release(f->m, "repairD"), 0);
	assert_int_equal(meta_lease_release(m2, "repairC"), 0);
	assert_int_equal(meta_lease_take(f->m, &a, 30000, 0, &blk), 0);

	/* bad arguments */
	assert_int_equal(meta_lease_take(f->m, &a, 0, 0, &blk), -EINVAL);
	assert_int_equal(meta_lease_renew(f->m, "", 1000), -EINVAL);
	meta_close(m2);
}

/* Expiry is the database's: an expired lease blocks nothing and is swept. */
static void test_lease_expiry(void **state)
{
	struct fx *f = *state;
	struct meta_lease a, b, r, blk;
	struct lease_seen ls;
	struct timespec ts = { 0, 300 * 1000000L };

	lease_init(&a, "deadA", META_LEASE_MOUNT, "hostA", "/mnt/a");
	lease_init(&b, "liveB", META_LEASE_MOUNT, "hostB", "/mnt/b");
	lease_init(&r, "repairC", META_LEASE_REPAIR, "hostC", "");
	assert_int_equal(meta_lease_take(f->m, &a, 100, 0, &blk), 0);
	nanosleep(&ts, NULL);
	ls = leases_of(f->m);
	assert_int_equal(ls.n, 1);
	assert_int_equal(ls.live, 0);
	assert_true(ls.last.remaining_ms <= 0);
	/* expired: the repair is not refused */
	assert_int_equal(meta_lease_take(f->m, &r, 30000, 0, &blk), 0);
	assert_int_equal(meta_lease_release(f->m, "repairC"), 0);
	/* sweep: only expired ones go */
	assert_int_equal(meta_lease_take(f->m, &b, 30000, 0, &blk), 0);
	assert_int_equal(meta_lease_sweep(f->m, "liveB"), -EBUSY);
	assert_int_equal(meta_lease_sweep(f->m, "deadA"), 0);
	assert_int_equal(meta_lease_sweep(f->m, "deadA"), -ENOENT);
	assert_int_equal(q1(f, "SELECT count(*) FROM lease", NULL), 1);
	/* a renewal brings an expired lease back */
	assert_int_equal(meta_lease_take(f->m, &a, 100, 0, &blk), 0);
	nanosleep(&ts, NULL);
	assert_int_equal(meta_lease_renew(f->m, "deadA", 30000), 0);
	assert_int_equal(leases_of(f->m).live, 2);
}

/* A schema-1 store (before leases) gets its lease table on open; a
 * read-only open cannot migrate it. */
static void test_lease_migrate_v1(void **state)
{
	struct fx *f = *state;
	struct meta_lease a, blk;
	struct meta *m = NULL;
	struct lamfs_record r0;

	save(f->m, "kept.txt", "kept", &r0);
	meta_close(f->m);
	f->m = NULL;
	f->st->exec(f, "DROP TABLE lease");
	f->st->exec(f, "DROP TABLE lamfs_storage");
	f->st->exec(f, "UPDATE lamfs_schema SET version = 1");
	assert_int_equal(meta_open(f->url, META_READONLY, &m), -EPROTO);
	assert_null(m);
	assert_int_equal(meta_open(f->url, 0, &f->m), 0);
	assert_int_equal(meta_schema_version(f->m), META_SCHEMA_VERSION);
	assert_int_equal(q1(f, "SELECT version FROM lamfs_schema", NULL), META_SCHEMA_VERSION);
	assert_int_equal(q1(f, "SELECT count(*) FROM lease", NULL), 0);
	assert_int_equal(meta_get_uid(f->m, r0.uid, NULL), 0);
	lease_init(&a, "m", META_LEASE_MOUNT, "h", "/mnt");
	assert_int_equal(meta_lease_take(f->m, &a, 1000, 0, &blk), 0);
}

/* ---- LaminDB's schema and the instance's storage ---- */

/* Every new store is a LaminDB instance: LaminDB's tables from its own
 * files, the rows `lamin init` writes, at the migration this build
 * supports; no storage recorded until one is attached. */
static void test_lamindb_created(void **state)
{
	struct fx *f = *state;
	char mig[LAMINDB_MIGRATION_MAX + 1];
	struct meta_storage st;
	int64_t id = 7;

	assert_int_equal(meta_lamindb_migration(f->m, mig, sizeof(mig)), 0);
	assert_string_equal(mig, "0189_v2_6");
	assert_string_equal(mig, lamindb_supported_migration());
	assert_int_equal(meta_lamindb_migration(f->m, mig, 8), -EINVAL);
	/* LaminDB's tables, LaminDB's unique index on (storage_id, key, hash) */
	assert_int_equal(q1(f, "SELECT count(*) FROM lamindb_artifact", NULL), 0);
	assert_int_equal(q1(f, "SELECT count(*) FROM lamindb_storage", NULL), 0);
	if (f->st->bit == S_SQLITE)
		assert_int_equal(q1(f, "SELECT count(*) FROM sqlite_master WHERE name = "
				    "'unique_artifact_storage_key_hash_not_null'", NULL), 1);
	else
		assert_int_equal(q1(f, "SELECT count(*) FROM pg_indexes WHERE schemaname = "
				    "current_schema() AND indexname = "
				    "'unique_artifact_storage_key_hash_not_null'", NULL), 1);
	/* the seed rows */
	assert_int_equal(q1(f, "SELECT count(*) FROM lamindb_branch", NULL), 3);
	assert_string_equal(q1s(f, "SELECT name FROM lamindb_branch WHERE id = -1", NULL), "trash");
	assert_string_equal(q1s(f, "SELECT name FROM lamindb_branch WHERE id = 0", NULL), "archive");
	assert_string_equal(q1s(f, "SELECT name FROM lamindb_branch WHERE id = 1", NULL), "main");
	assert_string_equal(q1s(f, "SELECT name FROM lamindb_space WHERE id = 1", NULL), "all");
	assert_string_equal(q1s(f, "SELECT handle FROM lamindb_user WHERE uid = '00000000'", NULL),
			    "anonymous");
	assert_int_equal(q1(f, "SELECT count(*) FROM lamindb_user", NULL), 1);
	/* times as Django writes them: SQLite text with microseconds, no zone */
	if (f->st->bit == S_SQLITE)
		assert_int_equal(q1(f, "SELECT count(*) FROM lamindb_branch WHERE created_at "
				    "GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] "
				    "[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9]*'", NULL), 3);
	/* PostgreSQL: a user LaminDB adds next gets a fresh id (sequences set) */
	if (f->st->bit == S_PG)
		assert_int_equal(q1(f, "SELECT nextval(pg_get_serial_sequence('lamindb_user', "
				    "'id'))", NULL), 2);
	assert_int_equal(meta_storage_get(f->m, &id, &st), -ENOENT);
	assert_int_equal(id, 7);
}

static void storage_init(struct meta_storage *st, const char *root, const char *uid,
			 const char *iuid)
{
	memset(st, 0, sizeof(*st));
	snprintf(st->root, sizeof(st->root), "%s", root);
	snprintf(st->type, sizeof(st->type), "%s", strncmp(root, "s3://", 5) ? "local" : "s3");
	snprintf(st->uid, sizeof(st->uid), "%s", uid);
	snprintf(st->instance_uid, sizeof(st->instance_uid), "%s", iuid);
}

static void test_storage_attach(void **state)
{
	struct fx *f = *state;
	struct meta_storage st, got, found;
	struct lamfs_record r;
	struct meta *m = NULL;
	int64_t id = 0, id2 = 0;

	storage_init(&st, "/data/root", "StoRageUid01", "4q6cb8VrpjgF");
	assert_int_equal(meta_storage_attach(f->m, &st, &id, &found), 0);
	assert_true(id > 0);
	assert_string_equal(found.uid, "StoRageUid01");
	assert_int_equal(meta_storage_get(f->m, &id2, &got), 0);
	assert_int_equal(id2, id);
	assert_string_equal(got.root, "/data/root");
	assert_string_equal(got.type, "local");
	assert_string_equal(got.region, "");
	assert_string_equal(got.uid, "StoRageUid01");
	assert_string_equal(got.instance_uid, "4q6cb8VrpjgF");
	/* the row as LaminDB reads it */
	assert_int_equal(q1(f, "SELECT count(*) FROM lamindb_storage WHERE root = '/data/root' "
			    "AND type = 'local' AND region IS NULL AND instance_uid = '4q6cb8VrpjgF' "
			    "AND space_id = 1 AND branch_id = 1 AND created_on_id = 1 AND "
			    "created_by_id = (SELECT id FROM lamindb_user WHERE uid = '00000000')",
			    NULL), 1);
	/* again (another machine, a second init): the same row */
	storage_init(&st, "/data/root", "OtherUid0002", "4q6cb8VrpjgF");
	assert_int_equal(meta_storage_attach(f->m, &st, &id2, &found), 0);
	assert_int_equal(id2, id);
	assert_string_equal(found.uid, "StoRageUid01");
	assert_int_equal(q1(f, "SELECT count(*) FROM lamindb_storage", NULL), 1);
	/* another instance's root: refused, it is named, nothing changed */
	storage_init(&st, "/data/root", "OtherUid0002", "AnotherInst1");
	assert_int_equal(meta_storage_attach(f->m, &st, &id2, &found), -EXDEV);
	assert_string_equal(found.instance_uid, "4q6cb8VrpjgF");
	/* a uid that names another root */
	storage_init(&st, "s3://bucket/prefix", "StoRageUid01", "4q6cb8VrpjgF");
	assert_int_equal(meta_storage_attach(f->m, &st, &id2, NULL), -EEXIST);
	assert_int_equal(q1(f, "SELECT count(*) FROM lamindb_storage", NULL), 1);
	/* bad input */
	storage_init(&st, "", "StoRageUid03", "4q6cb8VrpjgF");
	assert_int_equal(meta_storage_attach(f->m, &st, NULL, NULL), -EINVAL);
	storage_init(&st, "/x", "StoRageUid03", "4q6cb8VrpjgF");
	snprintf(st.type, sizeof(st.type), "gcs");
	assert_int_equal(meta_storage_attach(f->m, &st, NULL, NULL), -EINVAL);
	/* a second storage becomes the one saved into; saves refer to it */
	storage_init(&st, "s3://bucket/prefix", "StoRageUid03", "4q6cb8VrpjgF");
	snprintf(st.region, sizeof(st.region), "us-east-1");
	assert_int_equal(meta_storage_attach(f->m, &st, &id2, NULL), 0);
	assert_true(id2 != id);
	assert_int_equal(meta_storage_get(f->m, &id, &got), 0);
	assert_int_equal(id, id2);
	assert_string_equal(got.type, "s3");
	assert_string_equal(got.region, "us-east-1");
	rec_init(&r, "a.txt", "a");
	r.storage_id = (int)id;
	{
		enum meta_save_state sst;

		assert_int_equal(meta_save_begin(f->m, &r, &sst, 0), 0);
		assert_int_equal(meta_save_finish(f->m, r.uid, &r), 0);
		assert_int_equal(r.storage_id, (int)id);
	}
	/* read-only: get works, attach does not */
	assert_int_equal(meta_open(f->url, META_READONLY, &m), 0);
	assert_int_equal(meta_storage_get(m, &id2, NULL), 0);
	assert_int_equal(id2, id);
	assert_int_equal(meta_storage_attach(m, &st, NULL, NULL), -EROFS);
	meta_close(m);
}

/* A database `lamin init` made (LaminDB's tables, none of lamfs's): open
 * without META_CREATE finds no lamfs store; META_CREATE attaches, adding
 * lamfs's tables and leaving LaminDB's rows as they were. */
/* Leave only LaminDB's part of the case's store: what `lamin init` makes. */
static void drop_lamfs_tables(struct fx *f)
{
	static const char *const lamfs_tables[] = {
		"lamfs_storage", "lease", "artifact", "folder", "storage", "lamfs_schema",
	};
	char sql[128];
	size_t i;

	for (i = 0; i < sizeof(lamfs_tables) / sizeof(lamfs_tables[0]); i++) {
		snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s", lamfs_tables[i]);
		f->st->exec(f, sql);
	}
}

static void test_attach_lamindb(void **state)
{
	struct fx *f = *state;
	char before[2048];
	struct meta *m = NULL;

	meta_close(f->m);
	f->m = NULL;
	drop_lamfs_tables(f);
	/* rows LaminDB wrote: its user, storage and an artifact, as Django does */
	f->st->exec(f, "INSERT INTO lamindb_user (id, uid, handle) VALUES (2, 'u1u1u1u1', 'ada')");
	f->st->exec(f, "INSERT INTO lamindb_storage (id, uid, root, type, instance_uid, "
		    "created_by_id) VALUES (3, 'sTor4geUid12', '/lamin/root', 'local', "
		    "'4q6cb8VrpjgF', 2)");
	f->st->exec(f, "INSERT INTO lamindb_artifact (uid, key, suffix, size, hash, is_latest, "
		    "_key_is_virtual, _overwrite_versions, storage_id, created_by_id) VALUES "
		    "('AbCdEfGhIjKlMnOp0000', 'x/y.csv', '.csv', 3, 'hhhhhhhhhhhhhhhhhhhhhh', "
		    "true, true, false, 3, 2)");
	snprintf(before, sizeof(before), "%s",
		 q1s(f, "SELECT uid || key || created_at || updated_at || coalesce(CAST(_aux AS TEXT), 'N') "
		     "FROM lamindb_artifact", NULL));
	assert_int_equal(meta_open(f->url, 0, &m), -ENOENT);
	assert_int_equal(meta_open(f->url, META_READONLY, &m), -ENOENT);
	assert_int_equal(q1(f, "SELECT count(*) FROM lamindb_artifact", NULL), 1);
	assert_int_equal(meta_open(f->url, META_CREATE, &f->m), 0);
	assert_int_equal(meta_schema_version(f->m), META_SCHEMA_VERSION);
	assert_string_equal(q1s(f, "SELECT uid || key || created_at || updated_at || "
				"coalesce(CAST(_aux AS TEXT), 'N') FROM lamindb_artifact", NULL), before);
	assert_int_equal(q1(f, "SELECT count(*) FROM lamindb_user", NULL), 2);
	assert_int_equal(q1(f, "SELECT count(*) FROM lamindb_branch", NULL), 3);
	/* LaminDB's own storage row is the instance's when its root is ours */
	{
		struct meta_storage st;
		int64_t id = 0;

		assert_int_equal(meta_storage_get(f->m, NULL, NULL), -ENOENT);
		storage_init(&st, "/lamin/root", "NewUid000001", "4q6cb8VrpjgF");
		assert_int_equal(meta_storage_attach(f->m, &st, &id, &st), 0);
		assert_int_equal(id, 3);
		assert_string_equal(st.uid, "sTor4geUid12");
		assert_int_equal(q1(f, "SELECT count(*) FROM lamindb_storage", NULL), 1);
	}
	/* once attached, SQLite's create refuses and PostgreSQL's joins */
	meta_close(f->m);
	f->m = NULL;
	assert_int_equal(meta_open(f->url, META_CREATE, &m),
			 f->st->bit == S_SQLITE ? -EEXIST : 0);
	meta_close(m);
	assert_int_equal(meta_open(f->url, 0, &f->m), 0);
}

/* LaminDB's tables at another migration than this build supports: every
 * open refuses, naming both versions, and nothing is changed; a lamfs store
 * from before LaminDB's schema too. */
static void test_lamindb_other_migration(void **state)
{
	struct fx *f = *state;
	struct meta *m = NULL;

	meta_close(f->m);
	f->m = NULL;
	f->st->exec(f, "INSERT INTO django_migrations (app, name, applied) VALUES "
		    "('lamindb', '0190_v2_7', '2027-01-01 00:00:00')");
	assert_int_equal(meta_open(f->url, 0, &m), -EPROTO);
	/* what the user is told names both versions */
	assert_non_null(strstr(meta_open_why(), "migration 0190_v2_7"));
	assert_non_null(strstr(meta_open_why(), "supports lamindb 0189_v2_6 only"));
	/* what the user is told names both versions */
	assert_non_null(strstr(meta_open_why(), "migration 0190_v2_7"));
	assert_non_null(strstr(meta_open_why(), "supports lamindb 0189_v2_6 only"));
	assert_int_equal(meta_open(f->url, META_READONLY, &m), -EPROTO);
	if (f->st->bit == S_PG)
		assert_int_equal(meta_open(f->url, META_CREATE, &m), -EPROTO);
	assert_null(m);
	/* a LaminDB database at that migration, without lamfs's tables */
	f->st->exec(f, "DROP TABLE lamfs_storage");
	f->st->exec(f, "UPDATE lamfs_schema SET version = 2");
	assert_int_equal(meta_open(f->url, 0, &m), -EPROTO);
	assert_int_equal(q1(f, "SELECT version FROM lamfs_schema", NULL), 2);
	drop_lamfs_tables(f);
	assert_int_equal(meta_open(f->url, META_CREATE, &m), -EPROTO);
	assert_int_equal(q1(f, "SELECT count(*) FROM lamindb_storage", NULL), 0);
	assert_int_equal(q1(f, "SELECT count(*) FROM django_migrations WHERE name = "
			    "'0190_v2_7'", NULL), 1);
	assert_null(m);
	/* back at the supported migration, a lamfs store without LaminDB's
	 * tables (made before them) is refused too: it needs lamfs upgrade */
	f->st->exec(f, "DELETE FROM django_migrations WHERE name = '0190_v2_7'");
	f->st->exec(f, "CREATE TABLE lamfs_schema (version INTEGER NOT NULL)");
	f->st->exec(f, "INSERT INTO lamfs_schema (version) VALUES (2)");
	f->st->exec(f, "CREATE TABLE artifact (id INTEGER)");
	f->st->exec(f, "ALTER TABLE lamindb_artifact RENAME TO lamindb_artifact_gone");
	assert_int_equal(meta_open(f->url, 0, &m), -EPROTO);
	assert_non_null(strstr(meta_open_why(), "run `lamfs upgrade INSTANCE`"));
	assert_null(m);
	assert_int_equal(q1(f, "SELECT version FROM lamfs_schema", NULL), 2);
}

/* Make the case's store one from before LaminDB's schema: lamfs schema 2
 * (artifact, folder, storage, lease, lamfs_schema: the tables schema 2
 * made, unchanged since) and nothing of LaminDB's. */
static void strip_to_schema2(struct fx *f)
{
	if (f->st->bit == S_SQLITE) {
		sqlite3 *db = NULL;
		sqlite3_stmt *s = NULL;
		char sql[256];

		assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
		for (;;) {   /* one table at a time: dropping changes sqlite_master */
			assert_int_equal(sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master "
				"WHERE type = 'table' AND name NOT IN ('artifact', 'folder', "
				"'storage', 'lease', 'lamfs_schema') AND name NOT LIKE 'sqlite^_%' "
				"ESCAPE '^' LIMIT 1", -1, &s, NULL), SQLITE_OK);
			if (sqlite3_step(s) != SQLITE_ROW)
				break;
			snprintf(sql, sizeof(sql), "DROP TABLE \"%s\"", sqlite3_column_text(s, 0));
			sqlite3_finalize(s);
			assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		}
		sqlite3_finalize(s);
		assert_int_equal(sqlite3_exec(db, "DELETE FROM sqlite_sequence WHERE name <> "
					      "'artifact'", NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	} else {
		f->st->exec(f, "DO $$ DECLARE r record; BEGIN "
			    "FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = "
			    "current_schema() AND tablename NOT IN ('artifact', 'folder', "
			    "'storage', 'lease', 'lamfs_schema') LOOP "
			    "EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', r.tablename); "
			    "END LOOP; "
			    "FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p JOIN "
			    "pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = "
			    "current_schema() LOOP EXECUTE 'DROP FUNCTION ' || r.fn || ' CASCADE'; "
			    "END LOOP; END $$");
	}
	f->st->exec(f, "UPDATE lamfs_schema SET version = 2");
}

/* meta_upgrade of a schema-2 store: refused by meta_open until then; a
 * failed upgrade changes nothing; then LaminDB's tables, lamin init's rows
 * and the storage row, every record, folder and lease kept; a second one
 * finds it current. */
static void test_upgrade_schema2(void **state)
{
	struct fx *f = *state;
	struct lamfs_record r1, r2, r3;
	struct meta_lease l, blk;
	struct lease_seen ls = { 0 };
	struct count_ctx c = { 0 };
	struct meta_storage st, got;
	struct meta_entry e;
	struct meta *m = NULL;
	int64_t id = 0;
	char bak[256], b_uid[LAMFS_UID_LEN + 1];

	save(f->m, "a.txt", "one", &r1);
	save(f->m, "a.txt", "two", &r2);
	save(f->m, "d/b.csv", "x", &r3);
	memcpy(b_uid, r3.uid, sizeof(b_uid));
	mkdir_ok(f->m, "empty");
	lease_init(&l, "mountA", META_LEASE_MOUNT, "hostA", "/mnt/a");
	assert_int_equal(meta_lease_take(f->m, &l, 60000, 0, &blk), 0);
	meta_close(f->m);
	f->m = NULL;
	strip_to_schema2(f);
	assert_int_equal(q1(f, "SELECT count(*) FROM artifact", NULL), 3);

	assert_int_equal(meta_open(f->url, 0, &m), -EPROTO);
	assert_non_null(strstr(meta_open_why(), "run `lamfs upgrade INSTANCE`"));
	assert_int_equal(meta_open(f->url, META_READONLY, &m), -EPROTO);
	assert_null(m);

	/* a live lease (a mount on some machine): refused, nothing changed */
	storage_init(&st, "/lamin/up", "UpStorage001", "UpInstance01");
	assert_int_equal(meta_upgrade(f->url, &st), -EBUSY);
	assert_non_null(strstr(meta_open_why(), "a live lease"));
	assert_int_equal(q1(f, "SELECT version FROM lamfs_schema", NULL), 2);
	f->st->exec(f, "UPDATE lease SET expires_ms = 1");   /* that mount is gone */

	/* a failed upgrade (a table in the way of LaminDB's) changes nothing */
	f->st->exec(f, "CREATE TABLE lamindb_feature (x INTEGER)");
	assert_true(meta_upgrade(f->url, &st) < 0);
	assert_int_equal(q1(f, "SELECT version FROM lamfs_schema", NULL), 2);
	assert_int_equal(q1(f, "SELECT count(*) FROM artifact", NULL), 3);
	assert_int_equal(meta_open(f->url, 0, &m), -EPROTO);
	f->st->exec(f, "DROP TABLE lamindb_feature");

	assert_int_equal(meta_upgrade(f->url, &st), 0);
	if (f->st->bit == S_SQLITE) {   /* the copy from before, beside the store */
		snprintf(bak, sizeof(bak), "%s%s", f->db, META_UPGRADE_BACKUP);
		assert_int_equal(access(bak, R_OK), 0);
	}
	assert_int_equal(q1(f, "SELECT version FROM lamfs_schema", NULL), META_SCHEMA_VERSION);
	assert_int_equal(q1(f, "SELECT count(*) FROM lamindb_branch", NULL), 3);
	assert_int_equal(q1(f, "SELECT count(*) FROM lamindb_user WHERE uid = '00000000'", NULL), 1);
	assert_string_equal(q1s(f, "SELECT max(name) FROM django_migrations WHERE app = 'lamindb' "
			    "AND name NOT LIKE '%squashed%'", NULL), "0189_v2_6");
	assert_int_equal(meta_upgrade(f->url, &st), 1);   /* current now */

	assert_int_equal(meta_open(f->url, 0, &f->m), 0);
	assert_int_equal(meta_storage_get(f->m, &id, &got), 0);
	assert_string_equal(got.root, "/lamin/up");
	assert_string_equal(got.instance_uid, "UpInstance01");
	assert_int_equal(q1(f, "SELECT count(*) FROM artifact WHERE storage_id <> "
			    "(SELECT storage_id FROM lamfs_storage)", NULL), 0);
	c.m = f->m;
	assert_int_equal(meta_versions(f->m, "a.txt", count_cb, &c), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.first_uid, r1.uid);
	assert_int_equal(meta_get_uid(f->m, r2.uid, &r3), 0);
	assert_true(r3.is_latest);
	assert_int_equal(meta_lookup(f->m, "d/b.csv", &e), 0);
	assert_string_equal(e.rec.uid, b_uid);
	assert_int_equal(meta_lookup(f->m, "empty", &e), 0);
	assert_int_equal(e.type, META_DIR);
	assert_int_equal(meta_lease_list(f->m, lease_seen_cb, &ls), 0);
	assert_int_equal(ls.n, 1);
	assert_string_equal(ls.last.id, "mountA");
	/* and it saves */
	save(f->m, "a.txt", "three", &r1);
}

/* ---- concurrency ---- */

struct thread_arg {
	struct meta *m;
	int t;
	int failures;
};

static void *saver(void *p)
{
	struct thread_arg *a = p;
	struct lamfs_record r;
	enum meta_save_state st;
	char key[64];
	int i;

	for (i = 0; i < 25; i++) {
		snprintf(key, sizeof(key), "t%d/f%d", a->t, i);
		rec_init(&r, key, key);
		if (meta_save_begin(a->m, &r, &st, a->t % 2 ? META_BEGIN_LAZY : 0) != 0 ||
		    meta_save_finish(a->m, r.uid, NULL) != 0)
			a->failures++;
	}
	return NULL;
}

/* Threads share one handle (odd ones begin lazily); a second handle (as
 * another process would) writes to the same file at the same time. */
static void test_concurrent(void **state)
{
	struct fx *f = *state;
	struct thread_arg args[4];
	pthread_t th[4];
	struct meta *m2 = NULL;
	int i;

	assert_int_equal(meta_open(f->url, 0, &m2), 0);
	for (i = 0; i < 4; i++) {
		args[i].m = i == 3 ? m2 : f->m;
		args[i].t = i;
		args[i].failures = 0;
		assert_int_equal(pthread_create(&th[i], NULL, saver, &args[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].failures, 0);
	}
	assert_int_equal(q1(f, "SELECT count(*) FROM artifact WHERE is_latest", NULL), 100);
	assert_int_equal(type_of(m2, "t0/f24"), META_FILE);
	meta_close(m2);
}


/* ---- many saves at once on one handle (SQLite: group commit) ---- */

#define MIX_THREADS 6
#define MIX_SAVES 30

struct mix_arg {
	struct meta *m;
	int t;
	int wrong;      /* saves whose result was not the one expected */
	int stop;       /* for the reader: the savers are done */
	int flagged;    /* for the reader: lookups that returned a flagged record */
	int lookups;
};

/* Every fifth save aims at the folder "mixdir", which must fail with EISDIR
 * alone; the others must commit. */
static void *mix_saver(void *p)
{
	struct mix_arg *a = p;
	struct lamfs_record r;
	enum meta_save_state st;
	char key[64], content[64];
	int i, rc;

	for (i = 0; i < MIX_SAVES; i++) {
		if (i % 5 == 0)
			snprintf(key, sizeof(key), "mixdir");
		else
			snprintf(key, sizeof(key), "mix%d/f%d", a->t, i);
		snprintf(content, sizeof(content), "mix %d %d", a->t, i);
		rec_init(&r, key, content);
		/* odd threads begin lazily: groups of lazy steps only, and
		 * groups mixing both, commit alike */
		rc = meta_save_begin(a->m, &r, &st, a->t % 2 ? META_BEGIN_LAZY : 0);
		if (rc == 0)
			rc = meta_save_finish(a->m, r.uid, NULL);
		if (i % 5 == 0 ? rc != -EISDIR : rc != 0)
			a->wrong++;
	}
	return NULL;
}

/* Look keys up while the savers run: what is found is never flagged. */
static void *mix_reader(void *p)
{
	struct mix_arg *a = p;
	struct meta_entry e;
	char key[64];
	unsigned n = 0;

	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		snprintf(key, sizeof(key), "mix%u/f%u", n % MIX_THREADS, 1 + n % (MIX_SAVES - 1));
		if (meta_lookup(a->m, key, &e) == 0 &&
		    (e.type != META_FILE || e.rec.storage_ongoing || !e.rec.is_latest))
			a->flagged++;
		a->lookups++;
		n++;
	}
	return NULL;
}

/* Saves from many threads on one handle share commits (SQLite), each in its
 * own savepoint: a failing one fails alone, every other one commits, and
 * lookups meanwhile never see a flagged record. */
static void test_concurrent_mixed(void **state)
{
	struct fx *f = *state;
	struct mix_arg args[MIX_THREADS + 1];
	pthread_t th[MIX_THREADS + 1];
	int i;

	mkdir_ok(f->m, "mixdir");
	memset(args, 0, sizeof(args));
	for (i = 0; i <= MIX_THREADS; i++) {
		args[i].m = f->m;
		args[i].t = i;
		assert_int_equal(pthread_create(&th[i], NULL, i < MIX_THREADS ? mix_saver : mix_reader,
						&args[i]), 0);
	}
	for (i = 0; i < MIX_THREADS; i++)
		pthread_join(th[i], NULL);
	__atomic_store_n(&args[MIX_THREADS].stop, 1, __ATOMIC_RELEASE);
	pthread_join(th[MIX_THREADS], NULL);
	for (i = 0; i < MIX_THREADS; i++)
		assert_int_equal(args[i].wrong, 0);
	assert_int_equal(args[MIX_THREADS].flagged, 0);
	assert_int_equal(q1(f, "SELECT count(*) FROM artifact WHERE is_latest AND _aux IS NULL",
			    NULL), MIX_THREADS * (MIX_SAVES - MIX_SAVES / 5));
	assert_int_equal(q1(f, "SELECT count(*) FROM artifact", NULL),
			 MIX_THREADS * (MIX_SAVES - MIX_SAVES / 5));
	assert_int_equal(type_of(f->m, "mixdir"), META_DIR);
	assert_int_equal(type_of(f->m, "mix3/f29"), META_FILE);
}

/* ---- two mounts saving one key at the same moment ---- */

#define RACE_SAVES 100

struct racer {
	struct meta *m;
	int t;
	int failures;
	char uids[RACE_SAVES][LAMFS_UID_LEN + 1];
};

static void *race_saver(void *p)
{
	struct racer *a = p;
	struct lamfs_record r;
	enum meta_save_state st;
	char content[64];
	int i, rc;

	for (i = 0; i < RACE_SAVES; i++) {
		snprintf(content, sizeof(content), "handle %d save %d", a->t, i);
		rec_init(&r, "race/same.txt", content);
		rc = meta_save_begin(a->m, &r, &st, 0);
		if (rc == 0 && st != META_SAVE_NEW)
			rc = -EEXIST;
		if (rc == 0)
			memcpy(a->uids[i], r.uid, sizeof(a->uids[i]));
		if (rc == 0)
			rc = meta_save_finish(a->m, r.uid, NULL);
		if (rc != 0) {
			print_message("    handle %d save %d: %s\n", a->t, i, strerror(-rc));
			a->failures++;
		}
	}
	return NULL;
}

/* Two handles (two mounts: two processes or machines) save new content at
 * one key 100 times each, at the same time: every save is a version of its
 * own (one stem, distinct uids), and exactly one of them is latest. */
static void test_concurrent_same_key(void **state)
{
	struct fx *f = *state;
	struct racer *args = calloc(2, sizeof(*args));
	struct lamfs_record r;
	struct meta_entry e;
	struct meta *m2 = NULL;
	pthread_t th[2];
	int i, j, seen = 0;

	assert_non_null(args);
	assert_int_equal(meta_open(f->url, 0, &m2), 0);
	for (i = 0; i < 2; i++) {
		args[i].m = i ? m2 : f->m;
		args[i].t = i;
		assert_int_equal(pthread_create(&th[i], NULL, race_saver, &args[i]), 0);
	}
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(args[0].failures + args[1].failures, 0);

	assert_int_equal(nrec(f, "race/same.txt"), 2 * RACE_SAVES);
	assert_int_equal(q1(f, "SELECT count(DISTINCT uid) FROM artifact WHERE key = ?1",
			    "race/same.txt"), 2 * RACE_SAVES);
	assert_int_equal(q1(f, "SELECT count(DISTINCT substr(uid, 1, 16)) FROM artifact "
			    "WHERE key = ?1", "race/same.txt"), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM artifact WHERE key = ?1 AND is_latest",
			    "race/same.txt"), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM artifact WHERE key = ?1 AND "
			    "_aux IS NOT NULL", "race/same.txt"), 0);
	/* each handle's uids are its own saves, committed */
	for (i = 0; i < 2; i++) {
		for (j = 0; j < RACE_SAVES; j++) {
			assert_int_equal(meta_get_uid(f->m, args[i].uids[j], &r), 0);
			assert_int_equal(r.storage_ongoing, 0);
			seen += r.is_latest;
		}
	}
	assert_int_equal(seen, 1);
	/* both handles see the same latest version */
	assert_int_equal(meta_lookup(f->m, "race/same.txt", &e), 0);
	{
		struct meta_entry e2;

		assert_int_equal(meta_lookup(m2, "race/same.txt", &e2), 0);
		assert_string_equal(e.rec.uid, e2.rec.uid);
	}
	meta_close(m2);
	free(args);
}

/* A key that is not valid UTF-8 names nothing (it can never be stored). */
static void test_invalid_utf8_key(void **state)
{
	struct fx *f = *state;
	struct meta_dropped d = META_DROPPED_INIT;
	struct meta_attr a = { .mode = 0600 };
	struct lamfs_record r;
	struct count_ctx c;
	struct meta_entry e;
	struct listing l;

	memset(&l, 0, sizeof(l));
	save(f->m, "ok", "x", &r);
	assert_int_equal(meta_lookup(f->m, "bad\xff", &e), -ENOENT);
	assert_int_equal(meta_lookup(f->m, "\xc3\x28", &e), -ENOENT);
	assert_int_equal(meta_readdir(f->m, "bad\xff", list_cb, &l), -ENOENT);
	assert_int_equal(meta_unlink(f->m, "bad\xff", &d), -ENOENT);
	assert_int_equal(meta_rmdir(f->m, "bad\xff"), -ENOENT);
	assert_int_equal(meta_setattr(f->m, "bad\xff", META_ATTR_MODE, &a), -ENOENT);
	assert_int_equal(meta_rename(f->m, "bad\xff", "x", 0, &d), -ENOENT);
	assert_int_equal(meta_get_uid(f->m, "bad\xff", NULL), -ENOENT);
	memset(&c, 0, sizeof(c));
	c.m = f->m;
	assert_int_equal(meta_versions(f->m, "bad\xff", count_cb, &c), 0);
	assert_int_equal(c.n, 0);
	rec_init(&r, "bad\xff", "y");
	{
		enum meta_save_state st;

		assert_int_equal(meta_save_begin(f->m, &r, &st, 0), -EILSEQ);
	}
	assert_int_equal(mkdir_rc(f->m, "bad\xff"), -EILSEQ);
	assert_int_equal(meta_rename(f->m, "ok", "bad\xff", 0, &d), -EILSEQ);
	assert_int_equal(type_of(f->m, "ok"), META_FILE);
}

/* ---- a big folder rename ---- */

#define BIG_FILES 10000

/* Fill "big/" with BIG_FILES committed records in 100 sub-folders, straight
 * through SQLite in one transaction (10,000 saves would measure fsync). */
static void sq_fill_big(struct fx *f)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *a = NULL, *d = NULL;
	char uid[LAMFS_UID_LEN + 1], key[64], parent[32], name[32];
	int i;

	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
		"INSERT INTO artifact (uid, key, parent, name, suffix, size, hash, _hash_type, "
		"checksum, is_latest, storage_id, created_at, updated_at, mode, owner_uid, "
		"owner_gid, mtime_ns) VALUES (?1, ?2, ?3, ?4, '.txt', 12345, "
		"'83rEPcAoBHmYiIuyBYrFKg', 'md5', lower(hex(randomblob(32))), 1, 1, "
		"1700000000000000000, 1700000000000000000, 420, 1000, 1000, "
		"1700000000000000000)", -1, &a, NULL),
		SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
		"INSERT OR IGNORE INTO folder (path, parent, name, mode) VALUES (?1, 'big', ?2, 493)",
		-1, &d, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO folder (path, parent, name, mode) "
				      "VALUES ('big', '', 'big', 493)", NULL, NULL, NULL), SQLITE_OK);
	for (i = 0; i < BIG_FILES; i++) {
		snprintf(name, sizeof(name), "s%02d", i % 100);
		snprintf(parent, sizeof(parent), "big/s%02d", i % 100);
		sqlite3_bind_text(d, 1, parent, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(d, 2, name, -1, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(d), SQLITE_DONE);
		sqlite3_reset(d);
		snprintf(name, sizeof(name), "file%05d.txt", i);
		snprintf(key, sizeof(key), "%s/%s", parent, name);
		assert_int_equal(uid_new(uid), 0);
		sqlite3_bind_text(a, 1, uid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(a, 2, key, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(a, 3, parent, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(a, 4, name, -1, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(a), SQLITE_DONE);
		sqlite3_reset(a);
	}
	sqlite3_finalize(a);
	sqlite3_finalize(d);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	/* Fold the fill into the database file, so the first timed rename does
	 * not pay for checkpointing it. */
	assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
}

/* The same rows in PostgreSQL, in one statement each (uids: 16 hex digits,
 * which are base62 too, and version 0000). */
static void pg_fill_big(struct fx *f)
{
	pg_exec(f,
		"INSERT INTO folder (path, parent, name, mode) VALUES ('big', '', 'big', 493);"
		"INSERT INTO folder (path, parent, name, mode) "
		"  SELECT 'big/s' || lpad(i::text, 2, '0'), 'big', 's' || lpad(i::text, 2, '0'), 493 "
		"  FROM generate_series(0, 99) i;"
		"INSERT INTO artifact (uid, key, parent, name, suffix, size, hash, _hash_type, "
		"  checksum, is_latest, storage_id, created_at, updated_at, mode, owner_uid, "
		"  owner_gid, mtime_ns) "
		"  SELECT substr(md5(i::text || random()::text), 1, 16) || '0000', "
		"    'big/s' || lpad((i % 100)::text, 2, '0') || '/file' || lpad(i::text, 5, '0') || '.txt', "
		"    'big/s' || lpad((i % 100)::text, 2, '0'), 'file' || lpad(i::text, 5, '0') || '.txt', "
		"    '.txt', 12345, '83rEPcAoBHmYiIuyBYrFKg', 'md5', "
		"    md5(random()::text) || md5(random()::text), true, 1, 1700000000000000000, "
		"    1700000000000000000, 420, 1000, 1000, 1700000000000000000 "
		"  FROM generate_series(0, 9999) i;"
		"ANALYZE folder; ANALYZE artifact");
}

static void fill_big(struct fx *f)
{
	if (f->st->bit == S_SQLITE)
		sq_fill_big(f);
	else
		pg_fill_big(f);
}

static void test_rename_big_folder(void **state)
{
	struct fx *f = *state;
	struct meta_dropped d = META_DROPPED_INIT;
	int64_t t0, t, c0, c, best = 0;
	int i;

	mkdir_ok(f->m, "dest");
	fill_big(f);
	assert_int_equal(type_of(f->m, "big/s07/file00007.txt"), META_FILE);

	/* There and back a few times; the figure is printed, not asserted (the
	 * machine may be busy).  Each rename is one durable transaction. */
	for (i = 0; i < 5; i++) {
		t0 = mono_ns();
		c0 = cpu_ns();
		assert_int_equal(meta_rename(f->m, i % 2 ? "dest/moved" : "big",
					     i % 2 ? "big" : "dest/moved", 0, &d), 0);
		t = mono_ns() - t0;
		c = cpu_ns() - c0;
		best = i == 0 || t < best ? t : best;
		print_message("    rename of a folder with %d files (%s): %.1f ms "
			      "(CPU %.1f ms)\n", BIG_FILES, i % 2 ? "back" : "there",
			      (double)t / 1e6, (double)c / 1e6);
	}
	print_message("    best: %.1f ms\n", (double)best / 1e6);

	assert_int_equal(q1(f, "SELECT count(*) FROM artifact WHERE key >= 'dest/moved/' AND "
			    "key < 'dest/moved0' AND parent >= 'dest/moved/' AND "
			    "parent < 'dest/moved0'", NULL), BIG_FILES);
	assert_int_equal(q1(f, "SELECT count(*) FROM artifact WHERE key >= 'big/' AND "
			    "key < 'big0'", NULL), 0);
	assert_int_equal(q1(f, "SELECT count(*) FROM folder WHERE path >= 'dest/moved/' AND "
			    "path < 'dest/moved0'", NULL), 100);
	assert_int_equal(type_of(f->m, "dest/moved/s07/file00007.txt"), META_FILE);
	assert_int_equal(type_of(f->m, "big"), META_NONE);
	assert_int_equal(d.n, 0);
}


/* ---- PostgreSQL: sessions that die, servers that restart ---- */

/* Terminate the store's sessions (their application_name is the case's
 * schema, see pg_url_of()) and wait until they are gone; how many. */
static long long pg_kill_sessions(struct fx *f)
{
	/* FILTER: evaluated for the rows WHERE kept only (others may be the
	 * server's own processes, which we may not signal) */
	long long n = q1(f, "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM "
			 "pg_stat_activity WHERE application_name = ?1", f->schema);
	int i;

	for (i = 0; i < 500; i++) {
		if (q1(f, "SELECT count(*) FROM pg_stat_activity WHERE application_name = ?1",
		       f->schema) == 0)
			break;
		usleep(10000);
	}
	return n;
}

/* Every kind of call survives its session being killed between calls: it
 * reconnects and runs its transaction (once). */
static void test_pg_session_killed(void **state)
{
	struct fx *f = *state;
	struct meta_dropped d = META_DROPPED_INIT;
	struct lamfs_record r, b;
	struct meta_entry e;
	uint64_t files = 0, bytes = 0;

	save(f->m, "a.txt", "a", &r);
	assert_int_equal(pg_kill_sessions(f), 1);
	assert_int_equal(meta_lookup(f->m, "a.txt", &e), 0);   /* a read */
	assert_string_equal(e.rec.uid, r.uid);

	assert_int_equal(pg_kill_sessions(f), 1);
	begin(f->m, "b.txt", "b", META_SAVE_NEW, &b);          /* a write */
	assert_int_equal(nrec(f, "b.txt"), 1);
	assert_int_equal(pg_kill_sessions(f), 1);
	assert_int_equal(meta_save_finish(f->m, b.uid, NULL), 0);
	assert_int_equal(pg_kill_sessions(f), 1);
	mkdir_ok(f->m, "d");
	assert_int_equal(pg_kill_sessions(f), 1);
	assert_string_equal(ls(f->m, ""), "d/ a.txt b.txt");   /* a read transaction */
	assert_int_equal(pg_kill_sessions(f), 1);
	assert_int_equal(meta_unlink(f->m, "a.txt", &d), 0);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.v[0].uid, r.uid);
	assert_int_equal(pg_kill_sessions(f), 1);
	assert_int_equal(meta_totals(f->m, &files, &bytes), 0);
	assert_int_equal(files, 1);
	assert_int_equal(pg_kill_sessions(f), 1);
	assert_int_equal(meta_schema_version(f->m), META_SCHEMA_VERSION);
	meta_dropped_release(&d);
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *buf = calloc(1, 1 << 20);
	size_t n;

	assert_non_null(fp);
	assert_non_null(buf);
	n = fread(buf, 1, (1 << 20) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

struct mkdir_job {
	struct meta *m;
	const char *path;
	int rc;
};

static void *mkdir_thread(void *p)
{
	struct mkdir_job *j = p;

	j->rc = mkdir_rc(j->m, j->path);
	return NULL;
}

/* The session dies while the server runs our COMMIT (a deferred trigger makes
 * the commit slow): the outcome is unknown to the client, so the store asks
 * the server what became of the transaction (rolled back here) and runs it
 * again.  The folder is made exactly once and mkdir says 0. */
static void test_pg_killed_during_commit(void **state)
{
	struct fx *f = *state;
	struct mkdir_job j = { f->m, "slow", -1 };
	long long killed;
	pthread_t th;
	char *log;
	int i;

	pg_exec(f, "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
		"$$BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END$$; "
		"CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON folder "
		"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()");
	assert_int_equal(log_open(fx_path(f, "commit.log")), 0);
	assert_int_equal(pthread_create(&th, NULL, mkdir_thread, &j), 0);
	for (i = 0; i < 1000; i++) {
		if (q1(f, "SELECT count(*) FROM pg_stat_activity WHERE application_name = ?1 "
		       "AND state = 'active' AND query = 'COMMIT'", f->schema) == 1)
			break;
		usleep(2000);
	}
	killed = i < 1000 ? pg_kill_sessions(f) : 0;
	pthread_join(th, NULL);   /* before any assert: the thread uses f->m */
	log_close();
	assert_int_equal(killed, 1);
	assert_int_equal(j.rc, 0);
	assert_int_equal(nfolder(f, "slow"), 1);
	log = slurp(fx_path(f, "commit.log"));
	if (!strstr(log, "was rolled back; running it again"))
		fail_msg("the store did not look up the cut-off COMMIT; log:\n%s", log);
	free(log);
}

#define BURST 150

struct burst {
	struct meta *m;
	const char *prefix;
	int done;                         /* saves attempted so far (atomic) */
	int rc[BURST];                    /* 0: committed */
	char uid[BURST][LAMFS_UID_LEN + 1];
};

/* Save BURST files as the core does: begin, finish; a failed finish is
 * rolled back with abort. */
static void *burst_saver(void *p)
{
	struct burst *b = p;
	struct lamfs_record r;
	enum meta_save_state st;
	char key[64];
	int i, rc;

	for (i = 0; i < BURST; i++) {
		snprintf(key, sizeof(key), "%s/%03d", b->prefix, i);
		rec_init(&r, key, key);
		rc = meta_save_begin(b->m, &r, &st, 0);
		if (rc == 0) {
			memcpy(b->uid[i], r.uid, sizeof(b->uid[i]));
			rc = meta_save_finish(b->m, r.uid, NULL);
			if (rc != 0)
				meta_save_abort(b->m, r.uid);
		}
		b->rc[i] = rc;
		__atomic_store_n(&b->done, i + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* PostgreSQL restarted (fast: sessions terminated; immediate: a crash and
 * recovery) in the middle of a burst of saves: every save that returned 0 is
 * committed and visible, every one that failed left nothing visible, and the
 * handle goes on working.  Needs LAMFS_TEST_PG_RESTART (a command that
 * restarts the server, given the mode; tests/pg/run-unit.sh sets it). */
static void test_pg_restart(void **state)
{
	static const char *const modes[] = { "fast", "immediate" };
	struct fx *f = *state;
	const char *cmd = getenv("LAMFS_TEST_PG_RESTART");
	struct burst *b = calloc(1, sizeof(*b));
	struct meta_entry e;
	char sh[1024];
	pthread_t th;
	size_t k;
	int i, ok, rc;

	assert_non_null(b);
	if (!cmd || !cmd[0]) {
		print_message("    LAMFS_TEST_PG_RESTART not set: no server restart tested\n");
		free(b);
		skip();
	}
	for (k = 0; k < sizeof(modes) / sizeof(modes[0]); k++) {
		memset(b, 0, sizeof(*b));
		b->m = f->m;
		b->prefix = modes[k];
		assert_int_equal(pthread_create(&th, NULL, burst_saver, b), 0);
		while (__atomic_load_n(&b->done, __ATOMIC_ACQUIRE) < BURST / 4)
			usleep(1000);
		snprintf(sh, sizeof(sh), "%s %s", cmd, modes[k]);
		rc = system(sh);
		pthread_join(th, NULL);   /* before any assert: the thread uses f->m */
		assert_int_equal(rc, 0);
		PQreset(f->bd);   /* the restart closed it too */
		for (i = 0, ok = 0; i < BURST; i++) {
			char key[64];

			snprintf(key, sizeof(key), "%s/%03d", b->prefix, i);
			if (b->rc[i] == 0) {
				ok++;
				assert_int_equal(meta_lookup(f->m, key, &e), 0);
				assert_string_equal(e.rec.uid, b->uid[i]);
			} else {
				print_message("    save %s: %s\n", key, strerror(-b->rc[i]));
				assert_int_equal(meta_lookup(f->m, key, &e), -ENOENT);
			}
		}
		print_message("    restart (%s) during %d saves: %d committed\n", modes[k],
			      BURST, ok);
		/* the mount survives a restart: nothing failed */
		assert_int_equal(ok, BURST);
	}
	free(b);
}

/* Passwords never reach the log: not the one that works, not a wrong one. */
static void test_pg_password_masked(void **state)
{
	struct fx *f = *state;
	const char *base = pg_base_url();
	const char *auth = strstr(base, "://") + 3;
	const char *at_sign = strchr(auth, '@');
	const char *colon = at_sign ? memchr(auth, ':', (size_t)(at_sign - auth)) : NULL;
	char password[256], url[1100], wrong[1100];
	struct meta *m = NULL;
	char *log;

	if (!colon) {
		print_message("    LAMFS_TEST_PG_URL has no password: nothing to mask\n");
		skip();
	}
	snprintf(password, sizeof(password), "%.*s", (int)(at_sign - colon - 1), colon + 1);
	assert_true(strlen(password) >= 4);
	f->st->place(f, "pw", url, sizeof(url));
	snprintf(wrong, sizeof(wrong), "%.*sWr0ngPassw0rd%s", (int)(colon + 1 - base), base,
		 at_sign);

	assert_int_equal(log_open(fx_path(f, "pw.log")), 0);
	log_set_level(LL_DEBUG);
	assert_int_equal(meta_open(url, META_CREATE, &m), 0);   /* logs "created ... in <url>" */
	meta_close(m);
	assert_int_equal(meta_open(wrong, 0, &m), -EACCES);
	assert_null(m);
	/* a url libpq cannot parse, whose error would quote the password */
	assert_int_equal(meta_open("postgresql://u:Sec%zzret@h/db", 0, &m), -EINVAL);
	log_set_level(LL_INFO);
	log_close();

	log = slurp(fx_path(f, "pw.log"));
	assert_non_null(strstr(log, ":***@"));
	assert_null(strstr(log, password));
	assert_null(strstr(log, "Wr0ngPassw0rd"));
	assert_null(strstr(log, "Sec"));
	free(log);
}

/* ---- store-independent helpers ---- */

static void test_pg_redact(void **state)
{
	static const char *const cases[][2] = {
		{ "postgresql://u:secret@h:5432/db", "postgresql://u:***@h:5432/db" },
		{ "postgresql://u@h/db", "postgresql://u@h/db" },
		{ "postgresql://h/db", "postgresql://h/db" },
		{ "postgres://u:se%40cr%2Fet@h1:1,h2:2/db?sslmode=require",
		  "postgres://u:***@h1:1,h2:2/db?sslmode=require" },
		{ "postgresql://u:p@ss/w@h/db", "postgresql://u:***@h/db" },
		{ "postgresql://h/db?user=u&password=secret&sslmode=verify-full",
		  "postgresql://h/db?user=u&password=***&sslmode=verify-full" },
		{ "postgresql://u:a@h/db?sslpassword=k&PASSWORD=x",
		  "postgresql://u:***@h/db?sslpassword=***&PASSWORD=***" },
		{ "postgresql://u:@h/db", "postgresql://u:***@h/db" },
	};
	char out[256], tiny[12];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		meta_pg_redact(cases[i][0], out, sizeof(out));
		assert_string_equal(out, cases[i][1]);
	}
	/* truncated, still terminated, still no password */
	meta_pg_redact("postgresql://u:secret@h/db", tiny, sizeof(tiny));
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
	assert_null(strstr(tiny, "sec"));
}

static void test_pg_errno(void **state)
{
	(void)state;
	assert_int_equal(meta_pg_errno("00000"), 0);
	assert_int_equal(meta_pg_errno("42501"), -EACCES);
	assert_int_equal(meta_pg_errno("53100"), -ENOSPC);
	assert_int_equal(meta_pg_errno("08006"), -EIO);
	assert_int_equal(meta_pg_errno("08001"), -EIO);
	assert_int_equal(meta_pg_errno("57P01"), -EIO);
	assert_int_equal(meta_pg_errno("40001"), -EBUSY);
	assert_int_equal(meta_pg_errno("40P01"), -EBUSY);
	assert_int_equal(meta_pg_errno("23505"), -EEXIST);
	assert_int_equal(meta_pg_errno("25006"), -EROFS);
	assert_int_equal(meta_pg_errno("28P01"), -EACCES);
	assert_int_equal(meta_pg_errno("22021"), -EILSEQ);
	assert_int_equal(meta_pg_errno("XX000"), -EIO);
	assert_int_equal(meta_pg_errno(NULL), -EIO);
	assert_int_equal(meta_pg_errno(""), -EIO);
}

/* ---- running the table ---- */

static const struct meta_case {
	const char *name;
	CMUnitTestFunction run;
	unsigned stores;
} cases[] = {
	{ "create_open_reopen", test_create_open_reopen, S_ALL },
	{ "newer_schema", test_newer_schema, S_ALL },
	{ "empty_file_refused", test_empty_file_refused, S_SQLITE },
	{ "not_a_database", test_not_a_database, S_SQLITE },
	{ "pg_not_lamfs", test_pg_not_lamfs, S_PG },
	{ "lamindb_created", test_lamindb_created, S_ALL },
	{ "storage_attach", test_storage_attach, S_ALL },
	{ "attach_lamindb", test_attach_lamindb, S_ALL },
	{ "lamindb_other_migration", test_lamindb_other_migration, S_ALL },
	{ "upgrade_schema2", test_upgrade_schema2, S_ALL },
	{ "save_new_finish_versions", test_save_new_finish_versions, S_ALL },
	{ "save_abort", test_save_abort, S_ALL },
	{ "save_lazy", test_save_lazy, S_ALL },
	{ "save_errors", test_save_errors, S_ALL },
	{ "lookup_readdir", test_lookup_readdir, S_ALL },
	{ "versions_foreach", test_versions_foreach, S_ALL },
	{ "finish_out_of_order", test_finish_out_of_order, S_ALL },
	{ "unlink", test_unlink, S_ALL },
	{ "rename_file", test_rename_file, S_ALL },
	{ "rename_folder", test_rename_folder, S_ALL },
	{ "mkdir_rmdir", test_mkdir_rmdir, S_ALL },
	{ "setattr", test_setattr, S_ALL },
	{ "record_delete", test_record_delete, S_ALL },
	{ "lease_rules", test_lease_rules, S_ALL },
	{ "lease_expiry", test_lease_expiry, S_ALL },
	{ "lease_migrate_v1", test_lease_migrate_v1, S_ALL },
	{ "invalid_utf8_key", test_invalid_utf8_key, S_ALL },
	{ "concurrent", test_concurrent, S_ALL },
	{ "concurrent_same_key", test_concurrent_same_key, S_ALL },
	{ "concurrent_mixed", test_concurrent_mixed, S_ALL },
	{ "rename_big_folder", test_rename_big_folder, S_ALL },
	{ "pg_session_killed", test_pg_session_killed, S_PG },
	{ "pg_killed_during_commit", test_pg_killed_during_commit, S_PG },
	{ "pg_restart", test_pg_restart, S_PG },
	{ "pg_password_masked", test_pg_password_masked, S_PG },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

static int run_store(const struct store *st)
{
	struct CMUnitTest tests[NCASES];
	char group[64];
	size_t i, n = 0;

	if (st->avail() < 0)
		return 0;
	for (i = 0; i < NCASES; i++) {
		if (!(cases[i].stores & st->bit))
			continue;
		memset(&tests[n], 0, sizeof(tests[n]));
		tests[n].name = cases[i].name;
		tests[n].test_func = cases[i].run;
		tests[n].setup_func = setup;
		tests[n].teardown_func = teardown;
		tests[n].initial_state = (void *)st;
		n++;
	}
	snprintf(group, sizeof(group), "meta contract: %s", st->name);
	return _cmocka_run_group_tests(group, tests, n, NULL, NULL);
}

int main(void)
{
	const struct CMUnitTest helpers[] = {
		cmocka_unit_test(test_pg_redact),
		cmocka_unit_test(test_pg_errno),
	};
	const char *only = getenv("LAMFS_TEST_FILTER");   /* e.g. "pg_*" */
	size_t i;
	int failed;

	if (only && only[0])
		cmocka_set_test_filter(only);
	if (getenv("LAMFS_TEST_DEBUG"))   /* the stores' retries and reconnects */
		log_set_level(LL_DEBUG);
	failed = cmocka_run_group_tests_name("meta helpers", helpers, NULL, NULL);

	for (i = 0; i < sizeof(stores) / sizeof(stores[0]); i++)
		failed += run_store(&stores[i]);
	return failed;
}
