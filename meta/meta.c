/*
 * meta.c — the public metadata-store functions: argument checks, the
 * handle's lock, and one call into the backend's ops table (meta_impl.h).
 * Also the one SQLite result code -> errno mapping, the one PostgreSQL
 * SQLSTATE -> errno mapping, and the dropped-list helpers, which every
 * backend shares.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "key.h"
#include "meta_impl.h"

/* Records read per locked step of meta_foreach(). */
#define META_PAGE 256

/* ---- errors and the dropped list ---- */

int meta_sqlite_errno(int rc, int sys_errno)
{
	int err;

	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		err = 0;
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		err = -EBUSY;
		break;
	case SQLITE_FULL:
		err = -ENOSPC;
		break;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		err = -EACCES;
		break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		err = -EBADMSG;
		break;
	case SQLITE_CANTOPEN:
		err = (sys_errno == EACCES || sys_errno == EPERM) ? -EACCES : -ENOENT;
		break;
	case SQLITE_NOMEM:
		err = -ENOMEM;
		break;
	case SQLITE_IOERR:
		err = rc == SQLITE_IOERR_NOMEM ? -ENOMEM : -EIO;
		break;
	default:
		err = -EIO;
		break;
	}
	return err;
}

int meta_pg_errno(const char *state)
{
	/* exact codes first, then whole classes (the first two characters) */
	static const struct {
		const char *code;
		int err;
	} exact[] = {
		{ "00000", 0 },
		{ "23505", -EEXIST },   /* unique_violation: a concurrent insert won */
		{ "40001", -EBUSY },    /* serialization_failure, after the retries */
		{ "40P01", -EBUSY },    /* deadlock_detected, after the retries */
		{ "42501", -EACCES },   /* insufficient_privilege */
		{ "25006", -EROFS },    /* read_only_sql_transaction: a standby */
		{ "53100", -ENOSPC },   /* disk_full */
		{ "53200", -ENOMEM },   /* out_of_memory */
		{ "53300", -EBUSY },    /* too_many_connections */
		{ "57014", -EINTR },    /* query_canceled */
		{ "3D000", -ENOENT },   /* invalid_catalog_name: no such database */
		{ "3F000", -ENOENT },   /* invalid_schema_name */
		{ "42P01", -EBADMSG },  /* undefined_table: not (or no longer) lamfs's */
		{ "42703", -EBADMSG },  /* undefined_column */
		{ "22021", -EILSEQ },   /* character_not_in_repertoire: bad UTF-8 */
		{ "22P05", -EILSEQ },   /* untranslatable_character */
		{ "XX001", -EBADMSG },  /* data_corrupted */
		{ "XX002", -EBADMSG },  /* index_corrupted */
	};
	static const struct {
		const char *cls;
		int err;
	} classes[] = {
		{ "08", -EIO },         /* connection_exception (after the reconnect) */
		{ "57", -EIO },         /* operator_intervention: shutdown, restart */
		{ "28", -EACCES },      /* invalid_authorization_specification */
		{ "22", -EINVAL },      /* data_exception */
		{ "23", -EINVAL },      /* integrity_constraint_violation */
	};
	size_t i;
	int err = -EIO;

	if (!state || strlen(state) != 5)
		goto out;
	for (i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
		if (!strcmp(state, exact[i].code)) {
			err = exact[i].err;
			goto out;
		}
	}
	for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		if (!strncmp(state, classes[i].cls, 2)) {
			err = classes[i].err;
			goto out;
		}
	}
out:
	return err;
}

int meta_dropped_add(struct meta_dropped *d, const char *uid, const char *suffix,
		     int storage_id)
{
	struct meta_dropped_obj *v;
	int rc = 0;

	v = realloc(d->v, (d->n + 1) * sizeof(*v));
	if (!v) {
		rc = -ENOMEM;
		goto out;
	}
	d->v = v;
	memset(&v[d->n], 0, sizeof(v[d->n]));
	memcpy(v[d->n].uid, uid, strnlen(uid, LAMFS_UID_LEN));
	memcpy(v[d->n].suffix, suffix, strnlen(suffix, LAMFS_SUFFIX_MAX));
	v[d->n].storage_id = storage_id;
	d->n++;
out:
	return rc;
}

void meta_dropped_release(struct meta_dropped *d)
{
	if (!d)
		return;
	free(d->v);
	d->v = NULL;
	d->n = 0;
}

/* ---- argument checks ---- */

/* 0 when key is a string that fits a record's key field. */
static int key_fits(const char *key)
{
	int rc = 0;

	if (!key)
		rc = -EINVAL;
	else if (strlen(key) > LAMFS_KEY_MAX)
		rc = -ENAMETOOLONG;
	return rc;
}

/* ---- open and close ---- */

enum meta_store { META_STORE_SQLITE, META_STORE_PG };

/* Which store a url names (*store); *path points into url for SQLite. */
static int url_parse(const char *url, enum meta_store *store, const char **path)
{
	int rc = 0;

	*path = NULL;
	*store = META_STORE_SQLITE;
	if (!url || !url[0]) {
		rc = -EINVAL;
	} else if (!strncmp(url, "sqlite:", 7)) {
		*path = url + 7;
		if (!strncmp(*path, "//", 2))   /* sqlite:///abs/path */
			*path += 2;
		if (!(*path)[0])
			rc = -EINVAL;
	} else if (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11)) {
		*store = META_STORE_PG;         /* libpq's two URI prefixes */
	} else if (strstr(url, "://")) {
		rc = -EPROTONOSUPPORT;
	} else {
		*path = url;
	}
	return rc;
}

/* Why this thread's last meta_open() refused the store (meta_open_why). */
static __thread char open_why[512];

void meta_set_open_why(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(open_why, sizeof(open_why), fmt, ap);
	va_end(ap);
}

const char *meta_open_why(void)
{
	return open_why;
}

/* meta_open, and meta_upgrade when upgrade is not NULL. */
static int open_store(const char *url, unsigned flags, const struct meta_storage *upgrade,
		      struct meta **out)
{
	struct meta *m = NULL;
	enum meta_store store;
	const char *path;
	int rc;

	open_why[0] = '\0';
	if (out)
		*out = NULL;
	rc = out ? url_parse(url, &store, &path) : -EINVAL;
	if (rc == 0 && (flags & META_CREATE) && (flags & META_READONLY))
		rc = -EINVAL;
	if (rc < 0)
		goto out;
	if (store == META_STORE_PG)
		rc = meta_pg_open(url, flags, upgrade, &m);
	else
		rc = meta_sqlite_open(path, flags, upgrade, &m);
	if (rc < 0)
		goto out;
	rc = -pthread_mutex_init(&m->lock, NULL);
	if (rc < 0) {
		m->ops->close(m);
		goto out;
	}
	*out = m;
out:
	return rc;
}

int meta_open(const char *url, unsigned flags, struct meta **out)
{
	return open_store(url, flags, NULL, out);
}

int meta_upgrade(const char *url, const struct meta_storage *st)
{
	struct meta *m = NULL;
	int rc = st ? open_store(url, 0, st, &m) : -EINVAL;

	if (rc == 0)
		rc = m->upgraded ? 0 : 1;
	meta_close(m);
	return rc;
}

void meta_close(struct meta *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	m->ops->close(m);
}

int meta_schema_version(struct meta *m)
{
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = m->ops->schema_version(m);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* ---- lookups ---- */

int meta_lookup(struct meta *m, const char *key, struct meta_entry *out)
{
	int rc = key_fits(key);

	if (rc < 0)
		goto out;
	pthread_mutex_lock(&m->lock);
	rc = m->ops->lookup(m, key, out);
	pthread_mutex_unlock(&m->lock);
out:
	return rc;
}

int meta_readdir(struct meta *m, const char *key, meta_dirent_cb cb, void *ctx)
{
	int rc = key_fits(key);

	if (rc < 0)
		goto out;
	pthread_mutex_lock(&m->lock);
	rc = m->ops->readdir(m, key, cb, ctx);
	pthread_mutex_unlock(&m->lock);
out:
	return rc;
}

int meta_get_uid(struct meta *m, const char *uid, struct lamfs_record *out)
{
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = uid ? m->ops->get_uid(m, uid, out) : -EINVAL;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* Call cb on v[0..n); a non-zero return stops: negative ones are returned. */
static int call_each(const struct lamfs_record *v, size_t n, meta_record_cb cb, void *ctx,
		     int *stopped)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < n && !*stopped; i++) {
		int r = cb(ctx, &v[i]);

		if (r != 0) {
			*stopped = 1;
			rc = r < 0 ? r : 0;
		}
	}
	return rc;
}

int meta_versions(struct meta *m, const char *key, meta_record_cb cb, void *ctx)
{
	struct lamfs_record *v = NULL;
	size_t n = 0;
	int stopped = 0;
	int rc = key_fits(key);

	if (rc < 0)
		goto out;
	pthread_mutex_lock(&m->lock);
	rc = m->ops->versions(m, key, &v, &n);
	pthread_mutex_unlock(&m->lock);
	if (rc == 0)
		rc = call_each(v, n, cb, ctx, &stopped);
out:
	free(v);
	return rc;
}

int meta_foreach(struct meta *m, enum meta_foreach_which which, meta_record_cb cb, void *ctx)
{
	struct lamfs_record *v = malloc(META_PAGE * sizeof(*v));
	int64_t after = 0, upto = 0;
	size_t n = 0;
	int stopped = 0;
	int rc = v ? 0 : -ENOMEM;

	if (rc < 0)
		goto out;
	pthread_mutex_lock(&m->lock);
	rc = m->ops->max_id(m, &upto);
	pthread_mutex_unlock(&m->lock);
	while (rc == 0 && !stopped) {
		pthread_mutex_lock(&m->lock);
		rc = m->ops->page(m, which, after, upto, v, META_PAGE, &n);
		pthread_mutex_unlock(&m->lock);
		if (rc < 0 || n == 0)
			break;
		after = v[n - 1].id;
		rc = call_each(v, n, cb, ctx, &stopped);
	}
out:
	free(v);
	return rc;
}

int meta_totals(struct meta *m, uint64_t *files, uint64_t *bytes)
{
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = m->ops->totals(m, files, bytes);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* ---- the save sequence ---- */

int meta_save_begin(struct meta *m, struct lamfs_record *rec, enum meta_save_state *state,
		    unsigned flags)
{
	int rc = (rec && state && !(flags & ~META_BEGIN_LAZY)) ? key_check(rec->key) : -EINVAL;

	if (rc < 0)
		goto out;
	pthread_mutex_lock(&m->lock);
	rc = m->ops->save_begin(m, rec, state, flags);
	pthread_mutex_unlock(&m->lock);
out:
	return rc;
}

int meta_save_finish(struct meta *m, const char *uid, struct lamfs_record *rec)
{
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = uid ? m->ops->save_finish(m, uid, rec) : -EINVAL;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int meta_save_abort(struct meta *m, const char *uid)
{
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = uid ? m->ops->save_abort(m, uid) : -EINVAL;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* ---- namespace changes ---- */

int meta_unlink(struct meta *m, const char *key, struct meta_dropped *dropped)
{
	size_t n0 = dropped ? dropped->n : 0;
	int rc = dropped ? key_fits(key) : -EINVAL;

	if (rc == 0 && key[0] == '\0')
		rc = -EISDIR;
	if (rc < 0)
		goto out;
	pthread_mutex_lock(&m->lock);
	rc = m->ops->unlink(m, key, dropped);
	pthread_mutex_unlock(&m->lock);
	if (rc < 0)
		dropped->n = n0;
out:
	return rc;
}

int meta_rename(struct meta *m, const char *from, const char *to, unsigned flags,
		struct meta_dropped *dropped)
{
	size_t n0 = dropped ? dropped->n : 0;
	int rc = dropped ? key_fits(from) : -EINVAL;

	if (rc == 0)
		rc = key_fits(to);
	if (rc == 0 && (from[0] == '\0' || to[0] == '\0'))
		rc = -EBUSY;    /* the root is the mount point */
	if (rc == 0)
		rc = key_check(to);
	if (rc < 0)
		goto out;
	pthread_mutex_lock(&m->lock);
	rc = m->ops->rename(m, from, to, flags, dropped);
	pthread_mutex_unlock(&m->lock);
	if (rc < 0)
		dropped->n = n0;
out:
	return rc;
}

int meta_mkdir(struct meta *m, const struct lamfs_folder *dir)
{
	int rc = dir ? 0 : -EINVAL;

	if (rc == 0 && dir->path[0] == '\0')
		rc = -EEXIST;
	if (rc == 0)
		rc = key_check(dir->path);
	if (rc < 0)
		goto out;
	pthread_mutex_lock(&m->lock);
	rc = m->ops->mkdir(m, dir);
	pthread_mutex_unlock(&m->lock);
out:
	return rc;
}

int meta_rmdir(struct meta *m, const char *key)
{
	int rc = key_fits(key);

	if (rc == 0 && key[0] == '\0')
		rc = -EBUSY;
	if (rc < 0)
		goto out;
	pthread_mutex_lock(&m->lock);
	rc = m->ops->rmdir(m, key);
	pthread_mutex_unlock(&m->lock);
out:
	return rc;
}

int meta_setattr(struct meta *m, const char *key, unsigned mask, const struct meta_attr *a)
{
	int rc = a ? key_fits(key) : -EINVAL;

	if (rc == 0 && key[0] == '\0')
		rc = -EPERM;    /* the root is implicit: nowhere to keep its attributes */
	if (rc < 0)
		goto out;
	pthread_mutex_lock(&m->lock);
	rc = m->ops->setattr(m, key, mask, a);
	pthread_mutex_unlock(&m->lock);
out:
	return rc;
}

/* ---- repair ---- */

int meta_record_delete(struct meta *m, const char *uid, char promoted[LAMFS_UID_LEN + 1])
{
	int rc;

	if (promoted)
		promoted[0] = '\0';
	pthread_mutex_lock(&m->lock);
	rc = uid ? m->ops->record_delete(m, uid, promoted) : -EINVAL;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int meta_walk_ancestors(const char *key, int (*fn)(void *ctx, const char *prefix), void *ctx)
{
	char buf[LAMFS_KEY_MAX + 1];
	size_t i;
	char c;
	int rc = 0;

	key_split(key, buf);
	for (i = 0; buf[0] && rc == 0; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		c = buf[i];
		buf[i] = '\0';
		rc = fn(ctx, buf);
		buf[i] = c;
		if (c == '\0')
			break;
	}
	return rc;
}

int meta_utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		unsigned lo = 0x80, hi = 0xBF;
		size_t len, i;

		if (*p < 0x80) {
			p++;
			continue;
		}
		if (*p >= 0xC2 && *p <= 0xDF)
			len = 2;
		else if (*p >= 0xE0 && *p <= 0xEF)
			len = 3;
		else if (*p >= 0xF0 && *p <= 0xF4)
			len = 4;
		else
			return 0;
		if (*p == 0xE0)
			lo = 0xA0;
		else if (*p == 0xED)
			hi = 0x9F;
		else if (*p == 0xF0)
			lo = 0x90;
		else if (*p == 0xF4)
			hi = 0x8F;
		if (p[1] < lo || p[1] > hi)
			return 0;
		for (i = 2; i < len; i++)
			if (p[i] < 0x80 || p[i] > 0xBF)
				return 0;
		p += len;
	}
	return 1;
}

/* ---- leases ---- */

/* 0 when id is a usable lease id. */
static int lease_id_ok(const char *id)
{
	return (id && id[0] && strlen(id) <= META_LEASE_ID_MAX) ? 0 : -EINVAL;
}

int meta_lease_take(struct meta *m, const struct meta_lease *l, int64_t ttl_ms,
		    unsigned flags, struct meta_lease *blocker)
{
	int rc = l ? lease_id_ok(l->id) : -EINVAL;

	if (blocker)
		memset(blocker, 0, sizeof(*blocker));
	if (rc == 0 && (ttl_ms <= 0 ||
			(l->kind != META_LEASE_MOUNT && l->kind != META_LEASE_REPAIR)))
		rc = -EINVAL;
	if (rc < 0)
		goto out;
	pthread_mutex_lock(&m->lock);
	rc = m->ops->lease_take(m, l, ttl_ms, flags, blocker);
	pthread_mutex_unlock(&m->lock);
out:
	return rc;
}

int meta_lease_renew(struct meta *m, const char *id, int64_t ttl_ms)
{
	int rc = lease_id_ok(id);

	if (rc == 0 && ttl_ms <= 0)
		rc = -EINVAL;
	if (rc < 0)
		goto out;
	pthread_mutex_lock(&m->lock);
	rc = m->ops->lease_renew(m, id, ttl_ms);
	pthread_mutex_unlock(&m->lock);
out:
	return rc;
}

int meta_lease_release(struct meta *m, const char *id)
{
	int rc = lease_id_ok(id);

	if (rc < 0)
		goto out;
	pthread_mutex_lock(&m->lock);
	rc = m->ops->lease_release(m, id);
	pthread_mutex_unlock(&m->lock);
out:
	return rc;
}

int meta_lease_list(struct meta *m, meta_lease_cb cb, void *ctx)
{
	struct meta_lease *v = NULL;
	size_t i, n = 0;
	int rc = cb ? 0 : -EINVAL;

	if (rc < 0)
		goto out;
	pthread_mutex_lock(&m->lock);
	rc = m->ops->lease_list(m, &v, &n);
	pthread_mutex_unlock(&m->lock);
	for (i = 0; rc == 0 && i < n; i++) {
		int r = cb(ctx, &v[i]);

		if (r != 0) {
			rc = r < 0 ? r : 0;
			break;
		}
	}
out:
	free(v);
	return rc;
}

int meta_lease_sweep(struct meta *m, const char *id)
{
	int rc = lease_id_ok(id);

	if (rc < 0)
		goto out;
	pthread_mutex_lock(&m->lock);
	rc = m->ops->lease_sweep(m, id);
	pthread_mutex_unlock(&m->lock);
out:
	return rc;
}
