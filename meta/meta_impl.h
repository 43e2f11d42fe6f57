/*
 * meta_impl.h — what a metadata-store backend implements, and the base
 * struct every backend embeds.
 *
 * The public functions in meta.h live in meta.c: they check their arguments,
 * take the handle's lock and call one op.  A backend (meta_sqlite.c,
 * meta_pg.c) fills a `struct meta_ops` with designated initialisers and
 * embeds `struct meta` as its first member, downcasting through a checked
 * helper.
 *
 * Every op is called with m->lock held, arguments already checked (keys not
 * longer than LAMFS_KEY_MAX; keys that name something new passed key_check();
 * the root "" never reaches unlink/rename/rmdir/setattr).  An op that writes
 * is one transaction: it commits before returning 0, or changes nothing.
 */
#ifndef LAMFS_META_IMPL_H
#define LAMFS_META_IMPL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "meta.h"

/* A row of the shared SQL layer's statements (ops->sql): ncols text values,
 * NULL for SQL NULL; at most META_SQL_COLS_MAX are passed. */
typedef int (*meta_sql_row_fn)(void *ctx, int ncols, const char *const *vals);
#define META_SQL_COLS_MAX 16

struct meta_ops {
	const char *name;
	/* Free everything the backend allocated, including the handle itself.
	 * meta.c has destroyed the lock already. */
	void (*close)(struct meta *m);
	int (*schema_version)(struct meta *m);

	int (*lookup)(struct meta *m, const char *key, struct meta_entry *out);
	/* Calls cb with the lock held (meta.h says so to its callers). */
	int (*readdir)(struct meta *m, const char *key, meta_dirent_cb cb, void *ctx);
	int (*get_uid)(struct meta *m, const char *uid, struct lamfs_record *out);
	/* Every record at key, oldest first, into a malloc'ed array *v of *n
	 * (the caller frees *v; *v is NULL when *n is 0). */
	int (*versions)(struct meta *m, const char *key, struct lamfs_record **v, size_t *n);
	/* The highest record id in use (0 when none). */
	int (*max_id)(struct meta *m, int64_t *out);
	/* Up to cap records with after < id <= upto (only storage-ongoing ones
	 * for META_FLAGGED_RECORDS), ordered by id, into v; *n says how many. */
	int (*page)(struct meta *m, enum meta_foreach_which which, int64_t after, int64_t upto,
		    struct lamfs_record *v, size_t cap, size_t *n);
	int (*totals)(struct meta *m, uint64_t *files, uint64_t *bytes);

	int (*save_begin)(struct meta *m, struct lamfs_record *rec, enum meta_save_state *state,
			  unsigned flags);
	int (*save_finish)(struct meta *m, const char *uid, struct lamfs_record *rec);
	int (*save_abort)(struct meta *m, const char *uid);

	/* Append dropped records with meta_dropped_add(); meta.c truncates the
	 * list back when the op fails. */
	int (*unlink)(struct meta *m, const char *key, struct meta_dropped *dropped);
	int (*rename)(struct meta *m, const char *from, const char *to, unsigned flags,
		      struct meta_dropped *dropped);
	int (*mkdir)(struct meta *m, const struct lamfs_folder *dir);
	int (*rmdir)(struct meta *m, const char *key);
	int (*setattr)(struct meta *m, const char *key, unsigned mask, const struct meta_attr *a);
	int (*record_delete)(struct meta *m, const char *uid, char promoted[LAMFS_UID_LEN + 1]);

	/* Leases (meta.h).  lease_list fills a malloc'ed array *v of *n (the
	 * caller frees *v; NULL when *n is 0), soonest expiry first. */
	int (*lease_take)(struct meta *m, const struct meta_lease *l, int64_t ttl_ms,
			  unsigned flags, struct meta_lease *blocker);
	int (*lease_renew)(struct meta *m, const char *id, int64_t ttl_ms);
	int (*lease_release)(struct meta *m, const char *id);
	int (*lease_list)(struct meta *m, struct meta_lease **v, size_t *n);
	int (*lease_sweep)(struct meta *m, const char *id);

	/* The shared SQL layer (meta_sql.c) runs its statements through these
	 * two: one text of SQL for every dialect, parameters written $1..$n.
	 *
	 * txn: run body(m, arg) as one transaction (write: a write
	 * transaction, -EROFS on a read-only handle), committing when it
	 * returns 0, with the backend's retries (PostgreSQL: conflicts and a
	 * lost connection run body again, so body starts from scratch each
	 * time and does nothing outside the database).  Also callable while
	 * the backend's open runs its own transaction: then body runs in it.
	 * sql: one statement on the handle's connection, in the transaction
	 * running; params are text or NULL (SQL NULL), the database converts
	 * them by the column they meet; cb (may be NULL) gets every row as
	 * ncols text values (NULL for SQL NULL; a boolean column reads
	 * differently per database: compare in SQL).  Non-zero from cb stops
	 * and is returned.  The number of rows, or -errno. */
	int (*txn)(struct meta *m, int write, int (*body)(struct meta *m, void *arg), void *arg);
	/* The dialect's words: the database clock in ms since the epoch as a
	 * SQL expression (leases), and whether text must be valid UTF-8 to be
	 * stored (PostgreSQL: then such text is answered without asking). */
	const char *now_ms;
	int utf8_only;
	int (*sql)(struct meta *m, const char *sql, int n, const char *const *params,
		   meta_sql_row_fn cb, void *ctx);
};

/* The base of every backend's handle.  Lock order: m->lock is a leaf; no
 * other lock is taken while holding it (readdir callbacks must not call meta). */
struct meta {
	const struct meta_ops *ops;   /* set by the backend's open, never changes */
	pthread_mutex_t lock;         /* serialises every call on this handle */
	int upgraded;                 /* set by the open that ran meta_upgrade's migration */
};

/* Open a SQLite store at a file path (flags as meta_open; upgrade: NULL, or
 * meta_upgrade's storage: then a store from before LaminDB's schema is
 * upgraded, and base.upgraded says so).  On success *out is
 * a handle whose lock meta.c initialises. */
int meta_sqlite_open(const char *path, unsigned flags, const struct meta_storage *upgrade,
		     struct meta **out);

/*
 * The one SQLite result code -> errno mapping (meta.h lists it).  rc may be an
 * extended code; sys_errno is sqlite3_system_errno() of the handle, which
 * tells CANTOPEN's -ENOENT from -EACCES.  Returns a negative errno (never 0
 * for an error code; 0 for SQLITE_OK/ROW/DONE).
 */
int meta_sqlite_errno(int rc, int sys_errno);

/* Open a PostgreSQL store at a libpq url ("postgresql://..." or
 * "postgres://...", flags and upgrade as meta_sqlite_open).  On success *out is a handle whose
 * lock meta.c initialises. */
int meta_pg_open(const char *url, unsigned flags, const struct meta_storage *upgrade,
		 struct meta **out);

/*
 * The one SQLSTATE -> errno mapping (meta.h lists it).  state is the
 * five-character SQLSTATE of a failed statement; NULL or "" (libpq failed on
 * its side, no server answer) is -EIO.  Returns a negative errno (0 for
 * "00000").  Retrying is decided before: meta_pg.c runs a transaction again
 * after 40001/40P01/23505 and reconnects after a lost connection; the codes
 * that get here are what is left after that.
 */
int meta_pg_errno(const char *state);

/* Copy url into out (size bytes, always terminated) with every password in
 * it replaced by "***": the userinfo one ("user:secret@host") and any
 * "password=" / "sslpassword=" parameter.  What logs may show of a url. */
void meta_pg_redact(const char *url, char *out, size_t size);

/*
 * Call fn(ctx, prefix) for every folder on the way to key's parent, shortest
 * first: for "a/b/c" with "a/b" it calls "a", then "a/b"; nothing for a
 * top-level key.  Stops at the first non-zero return and returns it.
 */
int meta_walk_ancestors(const char *key, int (*fn)(void *ctx, const char *prefix), void *ctx);

/* Append one object to d; 0 or -ENOMEM. */
int meta_dropped_add(struct meta_dropped *d, const char *uid, const char *suffix,
		     int storage_id);

/*
 * LaminDB's schema in a store (meta_sql.c, through ops->sql; called by the
 * backends' open inside their open transaction, before they change anything):
 * meta_sql_lamindb_check() compares the newest applied "lamindb" migration
 * with the one this build supports (lamindb.h): 0, or -EPROTO (both named in
 * the log) when they differ.
 */
int meta_sql_lamindb_check(struct meta *m, const char *where);

/* meta_upgrade's last step, in the open's transaction after lamfs's
 * migrations: st recorded as meta_storage_attach does, every artifact row
 * pointed at it, lamfs's other storage rows dropped.  0, -EBUSY (with
 * meta_open_why) when a lease of the store is live, or -errno. */
int meta_sql_upgrade_storage(struct meta *m, const struct meta_storage *st);

/* The lease ops of every backend, written once over txn and sql. */
int meta_sql_lease_take(struct meta *m, const struct meta_lease *l, int64_t ttl_ms,
			unsigned flags, struct meta_lease *blocker);
int meta_sql_lease_renew(struct meta *m, const char *id, int64_t ttl_ms);
int meta_sql_lease_release(struct meta *m, const char *id);
int meta_sql_lease_list(struct meta *m, struct meta_lease **v, size_t *n);
int meta_sql_lease_sweep(struct meta *m, const char *id);
/* Their place in a backend's ops table. */
#define META_SQL_LEASE_OPS                                                           \
	.lease_take = meta_sql_lease_take, .lease_renew = meta_sql_lease_renew,      \
	.lease_release = meta_sql_lease_release, .lease_list = meta_sql_lease_list,  \
	.lease_sweep = meta_sql_lease_sweep

/* Say why meta_open() refuses a store, for meta_open_why() (printf-like;
 * the backends call it where they return -EPROTO). */
void meta_set_open_why(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* 1 when s is valid UTF-8 (what PostgreSQL can store as text), else 0. */
int meta_utf8_ok(const char *s);

/* The folder that holds every key: "" (always exists, never a row). */
#define META_ROOT_MODE 0755

#endif
