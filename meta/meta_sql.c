/*
 * meta_sql.c — the shared SQL layer: functions written once, as one text of
 * SQL for SQLite and PostgreSQL ($1..$n parameters, text values), run
 * through the backend's txn and sql ops (meta_impl.h).  The backends keep
 * only what differs between the databases.
 *
 * Here: LaminDB's migration check, and the instance's storage row
 * (lamindb_storage, recorded in lamfs_storage).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamindb.h"
#include "log.h"
#include "meta_impl.h"

/* ---- rows into C ---- */

/* Copy a text value (NULL: "") into buf (size bytes, always terminated). */
static void cp(char *buf, size_t size, const char *v)
{
	snprintf(buf, size, "%s", v ? v : "");
}

struct first_text {
	char *buf;
	size_t size;
};

/* The first column of the first row into a buffer. */
static int first_text(void *ctx, int ncols, const char *const *vals)
{
	struct first_text *f = ctx;

	if (ncols > 0)
		cp(f->buf, f->size, vals[0]);
	return 0;
}

/* ---- LaminDB's migration ---- */

/* 1 and *out when django_migrations has a "lamindb" row, 0 when not. */
static int newest_migration(struct meta *m, char *out, size_t len)
{
	struct first_text f = { out, len };

	out[0] = '\0';
	return m->ops->sql(m, LAMINDB_NEWEST_SQL, 0, NULL, first_text, &f);
}

int meta_sql_lamindb_check(struct meta *m, const char *where)
{
	char have[LAMINDB_MIGRATION_MAX + 1];
	const char *want = lamindb_supported_migration();
	int rc = newest_migration(m, have, sizeof(have));

	if (rc >= 0 && strcmp(have, want) != 0) {
		meta_set_open_why("LaminDB's schema is at migration %s; this lamfs supports "
				  "lamindb %s only: nothing changed",
				  rc > 0 ? have : "(none applied)", want);
		log_err("meta: %s: %s", where, meta_open_why());
		rc = -EPROTO;
	}
	return rc < 0 ? rc : 0;
}

struct migration_arg {
	char *out;
	size_t len;
};

static int migration_body(struct meta *m, void *arg)
{
	struct migration_arg *a = arg;
	int rc = newest_migration(m, a->out, a->len);

	return rc < 0 ? rc : rc == 0 ? -ENOENT : 0;
}

int meta_lamindb_migration(struct meta *m, char *out, size_t len)
{
	struct migration_arg a = { out, len };
	int rc;

	if (!m || !out || len <= LAMINDB_MIGRATION_MAX)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	rc = m->ops->txn(m, 0, migration_body, &a);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* ---- the instance's storage ---- */

#define STORAGE_COLS "id, root, type, coalesce(region, ''), uid, coalesce(instance_uid, '')"

struct storage_row {
	int found;
	int64_t id;
	struct meta_storage st;
};

/* One STORAGE_COLS row into a storage_row. */
static int storage_row(void *ctx, int ncols, const char *const *v)
{
	struct storage_row *r = ctx;

	if (ncols != 6)
		return -EIO;
	r->found = 1;
	r->id = strtoll(v[0] ? v[0] : "0", NULL, 10);
	cp(r->st.root, sizeof(r->st.root), v[1]);
	cp(r->st.type, sizeof(r->st.type), v[2]);
	cp(r->st.region, sizeof(r->st.region), v[3]);
	cp(r->st.uid, sizeof(r->st.uid), v[4]);
	cp(r->st.instance_uid, sizeof(r->st.instance_uid), v[5]);
	return 0;
}

static int storage_by(struct meta *m, const char *sql, const char *param,
		      struct storage_row *r)
{
	memset(r, 0, sizeof(*r));
	return m->ops->sql(m, sql, param ? 1 : 0, &param, storage_row, r);
}

struct attach_arg {
	const struct meta_storage *in;
	struct storage_row row;
};

/* The anonymous user's id, made when missing (a database `lamin init` made
 * for a logged-in user has only that user). */
static int anonymous_user(struct meta *m, char id[24])
{
	struct first_text f = { id, 24 };
	int rc = m->ops->sql(m, "INSERT INTO lamindb_user (uid, handle) "
			     "VALUES ('00000000', 'anonymous') ON CONFLICT DO NOTHING",
			     0, NULL, NULL, NULL);

	id[0] = '\0';
	if (rc >= 0)
		rc = m->ops->sql(m, "SELECT id FROM lamindb_user WHERE uid = '00000000'", 0,
				 NULL, first_text, &f);
	if (rc == 0) {
		log_err("meta: the anonymous user 00000000 is missing and cannot be added "
			"(its handle is taken)");
		rc = -EIO;
	}
	return rc < 0 ? rc : 0;
}

static int attach_body(struct meta *m, void *arg)
{
	struct attach_arg *a = arg;
	const struct meta_storage *in = a->in;
	char user[24], id[24];
	int rc = storage_by(m, "SELECT " STORAGE_COLS " FROM lamindb_storage WHERE root = $1",
			    in->root, &a->row);

	if (rc >= 0 && a->row.found && strcmp(a->row.st.instance_uid, in->instance_uid) != 0) {
		rc = -EXDEV;
		goto out;
	}
	if (rc >= 0 && !a->row.found) {
		const char *p[6] = { in->uid, in->root, in->type,
				     in->region[0] ? in->region : NULL, in->instance_uid, user };

		rc = storage_by(m, "SELECT " STORAGE_COLS " FROM lamindb_storage WHERE uid = $1",
				in->uid, &a->row);
		if (rc > 0) {
			rc = -EEXIST;   /* the uid names another root */
			goto out;
		}
		if (rc >= 0)
			rc = anonymous_user(m, user);
		if (rc >= 0)
			rc = m->ops->sql(m, "INSERT INTO lamindb_storage (uid, root, type, region, "
					 "instance_uid, created_by_id) VALUES ($1, $2, $3, $4, $5, $6)",
					 6, p, NULL, NULL);
		if (rc >= 0)
			rc = storage_by(m, "SELECT " STORAGE_COLS " FROM lamindb_storage "
					"WHERE root = $1", in->root, &a->row);
		if (rc == 0)
			rc = -EIO;   /* inserted, yet not there */
	}
	if (rc >= 0) {
		const char *p[2] = { id, a->row.st.root };

		snprintf(id, sizeof(id), "%" PRId64, a->row.id);
		rc = m->ops->sql(m, "INSERT INTO lamfs_storage (one, storage_id) VALUES (1, $1) "
				 "ON CONFLICT (one) DO UPDATE SET storage_id = excluded.storage_id",
				 1, p, NULL, NULL);
		/* lamfs's artifact table still refers to its own storage table
		 * (docs/schema.md, "This round"): the same id there */
		if (rc >= 0)
			rc = m->ops->sql(m, "INSERT INTO storage (id, root) VALUES ($1, $2) "
					 "ON CONFLICT (id) DO UPDATE SET root = excluded.root",
					 2, p, NULL, NULL);
	}
out:
	return rc < 0 ? rc : 0;
}

static int storage_ok(const struct meta_storage *st)
{
	return st && st->root[0] && st->uid[0] && st->instance_uid[0] &&
	       (!strcmp(st->type, "local") || !strcmp(st->type, "s3")) &&
	       memchr(st->root, '\0', sizeof(st->root)) &&
	       memchr(st->uid, '\0', sizeof(st->uid)) &&
	       memchr(st->instance_uid, '\0', sizeof(st->instance_uid)) &&
	       memchr(st->region, '\0', sizeof(st->region));
}

int meta_storage_attach(struct meta *m, const struct meta_storage *st, int64_t *id,
			struct meta_storage *found)
{
	struct attach_arg a = { .in = st };
	int rc;

	if (!m || !storage_ok(st))
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	rc = m->ops->txn(m, 1, attach_body, &a);
	pthread_mutex_unlock(&m->lock);
	if (rc == -EXDEV)
		log_err("meta: storage %s belongs to LaminDB instance %s, not to %s", st->root,
			a.row.st.instance_uid[0] ? a.row.st.instance_uid : "(none)",
			st->instance_uid);
	if ((rc == 0 || rc == -EXDEV) && found)
		*found = a.row.st;
	if (rc == 0 && id)
		*id = a.row.id;
	return rc;
}

int meta_sql_upgrade_storage(struct meta *m, const struct meta_storage *st)
{
	struct attach_arg a = { .in = st };
	char sql[128];
	int rc = storage_ok(st) ? 0 : -EINVAL;

	/* the instance lock sees this machine only; a live lease, any machine */
	snprintf(sql, sizeof(sql), "SELECT 1 FROM lease WHERE expires_ms > %s", m->ops->now_ms);
	if (rc == 0)
		rc = m->ops->sql(m, sql, 0, NULL, NULL, NULL);
	if (rc > 0) {
		meta_set_open_why("in use: a live lease (a mount or repair, maybe on another "
				  "machine; `lamfs status` of the old lamfs names it): unmount "
				  "it everywhere first; nothing changed");
		rc = -EBUSY;
	}
	if (rc == 0)
		rc = attach_body(m, &a);
	/* schema 2's artifact rows refer to its storage row 1, root '' */
	if (rc == 0)
		rc = m->ops->sql(m, "UPDATE artifact SET storage_id = "
				 "(SELECT storage_id FROM lamfs_storage)", 0, NULL, NULL, NULL);
	if (rc >= 0)
		rc = m->ops->sql(m, "DELETE FROM storage WHERE id <> "
				 "(SELECT storage_id FROM lamfs_storage)", 0, NULL, NULL, NULL);
	return rc < 0 ? rc : 0;
}

static int storage_get_body(struct meta *m, void *arg)
{
	int rc = storage_by(m, "SELECT s.id, s.root, s.type, coalesce(s.region, ''), s.uid, "
			    "coalesce(s.instance_uid, '') FROM lamfs_storage l "
			    "JOIN lamindb_storage s ON s.id = l.storage_id", NULL, arg);

	return rc < 0 ? rc : rc == 0 ? -ENOENT : 0;
}

int meta_storage_get(struct meta *m, int64_t *id, struct meta_storage *out)
{
	struct storage_row r;
	int rc;

	if (!m)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	rc = m->ops->txn(m, 0, storage_get_body, &r);
	pthread_mutex_unlock(&m->lock);
	if (rc == 0 && id)
		*id = r.id;
	if (rc == 0 && out)
		*out = r.st;
	return rc;
}

/* ---- leases (meta.h), the ops of both backends ---- */

/* The lease statements, with the dialect's "now in ms" (ops->now_ms) in
 * each place marked %s; built per call into a buffer (leases are rare). */
#define LEASE_COLS                                                                   \
	"id, kind, host, pid, instance, mountpoint, started_ms, expires_ms, "        \
	"expires_ms - %s"
#define LEASE_BLOCKER                                                                \
	"SELECT " LEASE_COLS " FROM lease WHERE id <> $1 AND expires_ms > %s AND "  \
	"(CAST($2 AS TEXT) = 'repair' OR kind = 'repair') ORDER BY expires_ms DESC LIMIT 1"
#define LEASE_PUT                                                                    \
	"INSERT INTO lease (id, kind, host, pid, instance, mountpoint, started_ms, " \
	"expires_ms) VALUES ($1, $2, $3, $4, $5, $6, %s, %s + CAST($7 AS BIGINT)) "  \
	"ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, host = excluded.host, " \
	"pid = excluded.pid, instance = excluded.instance, "                         \
	"mountpoint = excluded.mountpoint, expires_ms = excluded.expires_ms"
#define LEASE_RENEW                                                                  \
	"UPDATE lease SET expires_ms = %s + CAST($2 AS BIGINT) WHERE id = $1 RETURNING id"
#define LEASE_DEL "DELETE FROM lease WHERE id = $1 RETURNING id"
#define LEASE_DEL_EXPIRED "DELETE FROM lease WHERE id = $1 AND expires_ms <= %s RETURNING id"
#define LEASE_HAS "SELECT 1 FROM lease WHERE id = $1"
#define LEASE_LIST "SELECT " LEASE_COLS " FROM lease ORDER BY expires_ms, id"
#define LEASE_SQL_MAX 768

static const char *lease_kind_text(enum meta_lease_kind k)
{
	return k == META_LEASE_REPAIR ? "repair" : "mount";
}

struct lease_rows {
	struct meta_lease *v;
	size_t n, cap;
};

/* A LEASE_COLS row appended to a lease_rows. */
static int lease_row(void *ctx, int ncols, const char *const *v)
{
	struct lease_rows *r = ctx;
	struct meta_lease *l, *nv;

	if (ncols != 9)
		return -EIO;
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 8;
		nv = realloc(r->v, r->cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		r->v = nv;
	}
	l = &r->v[r->n++];
	memset(l, 0, sizeof(*l));
	cp(l->id, sizeof(l->id), v[0]);
	l->kind = v[1] && !strcmp(v[1], "repair") ? META_LEASE_REPAIR : META_LEASE_MOUNT;
	cp(l->host, sizeof(l->host), v[2]);
	l->pid = v[3] ? strtoll(v[3], NULL, 10) : 0;
	cp(l->instance, sizeof(l->instance), v[4]);
	cp(l->mountpoint, sizeof(l->mountpoint), v[5]);
	l->started_ms = v[6] ? strtoll(v[6], NULL, 10) : 0;
	l->expires_ms = v[7] ? strtoll(v[7], NULL, 10) : 0;
	l->remaining_ms = v[8] ? strtoll(v[8], NULL, 10) : 0;
	return 0;
}

static void lease_rows_reset(struct lease_rows *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* Text the database cannot store is not stored: a store that takes UTF-8
 * only (ops->utf8_only) never holds such an id. */
static int text_storable(struct meta *m, const char *s)
{
	return !m->ops->utf8_only || meta_utf8_ok(s);
}

struct lease_arg {
	const struct meta_lease *l;
	const char *id;
	int64_t ttl_ms;
	unsigned flags;
	struct lease_rows rows;   /* blocker, or the list */
};

static int lease_take_body(struct meta *m, void *arg)
{
	struct lease_arg *a = arg;
	const struct meta_lease *l = a->l;
	const char *now = m->ops->now_ms;
	char sql[LEASE_SQL_MAX], pid[24], ttl[24];
	const char *p[7] = { l->id, lease_kind_text(l->kind), l->host, pid, l->instance,
			     l->mountpoint, ttl };
	int rc = 0;

	lease_rows_reset(&a->rows);
	snprintf(pid, sizeof(pid), "%" PRId64, l->pid);
	snprintf(ttl, sizeof(ttl), "%" PRId64, a->ttl_ms);
	if (!(a->flags & META_LEASE_FORCE)) {
		snprintf(sql, sizeof(sql), LEASE_BLOCKER, now, now);
		rc = m->ops->sql(m, sql, 2, p, lease_row, &a->rows);
		if (rc > 0)
			rc = -EBUSY;
	}
	if (rc >= 0) {
		snprintf(sql, sizeof(sql), LEASE_PUT, now, now);
		rc = m->ops->sql(m, sql, 7, p, NULL, NULL);
	}
	return rc < 0 ? rc : 0;
}

int meta_sql_lease_take(struct meta *m, const struct meta_lease *l, int64_t ttl_ms,
			unsigned flags, struct meta_lease *blocker)
{
	struct lease_arg a = { .l = l, .ttl_ms = ttl_ms, .flags = flags };
	int rc = -EILSEQ;

	/* text the store would refuse: say so here, not as a server error */
	if (text_storable(m, l->id) && text_storable(m, l->host) &&
	    text_storable(m, l->instance) && text_storable(m, l->mountpoint))
		rc = m->ops->txn(m, 1, lease_take_body, &a);
	if (rc == -EBUSY && blocker && a.rows.n)
		*blocker = a.rows.v[0];
	lease_rows_reset(&a.rows);
	return rc;
}

/* Run a lease statement with $1 = the id (and $2 = the ttl) that RETURNs a
 * row when it changed one: 0 changed, -ENOENT none. */
static int lease_change(struct meta *m, const char *sql, const char *id, int64_t ttl_ms)
{
	char ttl[24];
	const char *p[2] = { id, ttl };
	int rc;

	snprintf(ttl, sizeof(ttl), "%" PRId64, ttl_ms);
	rc = m->ops->sql(m, sql, ttl_ms > 0 ? 2 : 1, p, NULL, NULL);
	return rc < 0 ? rc : rc == 0 ? -ENOENT : 0;
}

static int lease_renew_body(struct meta *m, void *arg)
{
	struct lease_arg *a = arg;
	char sql[LEASE_SQL_MAX];

	snprintf(sql, sizeof(sql), LEASE_RENEW, m->ops->now_ms);
	return lease_change(m, sql, a->id, a->ttl_ms);
}

static int lease_release_body(struct meta *m, void *arg)
{
	struct lease_arg *a = arg;

	return lease_change(m, LEASE_DEL, a->id, 0);
}

static int lease_sweep_body(struct meta *m, void *arg)
{
	struct lease_arg *a = arg;
	char sql[LEASE_SQL_MAX];
	int rc;

	snprintf(sql, sizeof(sql), LEASE_DEL_EXPIRED, m->ops->now_ms);
	rc = lease_change(m, sql, a->id, 0);
	if (rc == -ENOENT) {
		rc = m->ops->sql(m, LEASE_HAS, 1, &a->id, NULL, NULL);
		if (rc >= 0)
			rc = rc > 0 ? -EBUSY : -ENOENT;
	}
	return rc;
}

/* One write transaction on lease id; an id the store cannot hold is not there. */
static int lease_write(struct meta *m, const char *id, int64_t ttl_ms,
		       int (*body)(struct meta *m, void *arg))
{
	struct lease_arg a = { .id = id, .ttl_ms = ttl_ms };

	return text_storable(m, id) ? m->ops->txn(m, 1, body, &a) : -ENOENT;
}

int meta_sql_lease_renew(struct meta *m, const char *id, int64_t ttl_ms)
{
	return lease_write(m, id, ttl_ms, lease_renew_body);
}

int meta_sql_lease_release(struct meta *m, const char *id)
{
	return lease_write(m, id, 0, lease_release_body);
}

int meta_sql_lease_sweep(struct meta *m, const char *id)
{
	return lease_write(m, id, 0, lease_sweep_body);
}

static int lease_list_body(struct meta *m, void *arg)
{
	struct lease_arg *a = arg;
	char sql[LEASE_SQL_MAX];
	int rc;

	lease_rows_reset(&a->rows);
	snprintf(sql, sizeof(sql), LEASE_LIST, m->ops->now_ms);
	rc = m->ops->sql(m, sql, 0, NULL, lease_row, &a->rows);
	return rc < 0 ? rc : 0;
}

int meta_sql_lease_list(struct meta *m, struct meta_lease **v, size_t *n)
{
	struct lease_arg a = { 0 };
	int rc = m->ops->txn(m, 0, lease_list_body, &a);

	if (rc < 0)
		lease_rows_reset(&a.rows);
	*v = a.rows.v;
	*n = a.rows.n;
	return rc;
}
