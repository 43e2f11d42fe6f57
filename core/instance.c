/*
 * instance.c — create and read instance directories (see instance.h).
 */
#include "instance.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "backend.h"
#include "backup.h"
#include "lamfs.h"
#include "marker.h"
#include "meta.h"

char *instance_msg(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

void instance_set_msg(char **errmsg, char *msg)
{
	if (errmsg) {
		free(*errmsg);
		*errmsg = msg;
	} else {
		free(msg);
	}
}

static char *path_join(const char *a, const char *b)
{
	return instance_msg("%s/%s", a, b);
}

/* 1 when dir exists and holds nothing, 0 when it has entries, -errno else. */
static int dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 1;

	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			rc = 0;
			break;
		}
	}
	closedir(d);
	return rc;
}

/*
 * For S3 storage, record where the bucket is (endpoint, region, profile) as
 * init found it in the environment, so a mount from fstab needs no
 * environment.  Never the keys: those stay in the environment or in
 * ~/.aws/credentials.
 */
static void write_conf_s3(FILE *f)
{
	const char *endpoint = getenv("AWS_ENDPOINT_URL");
	const char *region = getenv("AWS_REGION");
	const char *profile = getenv("AWS_PROFILE");

	if (!region)
		region = getenv("AWS_DEFAULT_REGION");
	fprintf(f, "\n# credentials: AWS_* environment or ~/.aws/credentials, never here\n[s3]\n");
	if (endpoint && *endpoint)
		fprintf(f, "endpoint = %s\n", endpoint);
	if (region && *region)
		fprintf(f, "region = %s\n", region);
	if (profile && *profile)
		fprintf(f, "profile = %s\n", profile);
}

/* inih (as Debian builds it) reads lines of at most 200 bytes, cuts a value at
 * " ;" (inline comment) and strips surrounding spaces: refuse what would not
 * read back as written. */
#define CONF_VALUE_MAX 180
static int conf_value_ok(const char *v)
{
	size_t n = strlen(v);

	return n > 0 && n <= CONF_VALUE_MAX && !strstr(v, " ;") && !strstr(v, "\t;") &&
	       v[0] != ' ' && v[n - 1] != ' ' && !strchr(v, '\n');
}

/* 1 when a postgresql:// URL carries a password (user:pw@host, ?password=). */
static int url_has_password(const char *url)
{
	const char *p = strstr(url, "://"), *at, *colon;

	if (strstr(url, "password="))
		return 1;
	if (!p)
		return 0;
	p += 3;
	at = strchr(p, '@');
	colon = strchr(p, ':');
	return at && colon && colon < at && !memchr(p, '/', (size_t)(at - p));
}

static int write_conf(const char *path, const char *storage, const char *db,
		      const char *restored_from)
{
	int rc = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	FILE *f;

	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		rc = -errno;
		close(fd);
		goto out;
	}
	fprintf(f, "# lamfs instance; see lamfs(1)\n[instance]\nversion = %d\n\n"
		"[storage]\nurl = %s\n\n[meta]\nurl = %s\n",
		INSTANCE_CONF_VERSION, storage, db);
	if (restored_from)
		fprintf(f, "\n# the metadata came from this backup; lamfs-repair lists (and with\n"
			"# --register registers again) the objects saved after it\n"
			"[restore]\nfrom = %s\n", restored_from);
	if (!strncmp(storage, "s3://", 5))
		write_conf_s3(f);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		rc = -errno;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
out:
	return rc;
}

static int make_dir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * mkdir -p: make path and every missing parent (mode).  *top gets the
 * topmost directory this call made, as a prefix of path ("" when path
 * existed), so a failed init can take back exactly what it made.
 * 0, or -errno of the mkdir that failed (ENOTDIR: a parent is a file).
 */
static int make_dirs(const char *path, mode_t mode, char *top, size_t toplen)
{
	char buf[PATH_MAX];
	size_t i, n = strlen(path);
	int rc = 0;

	top[0] = '\0';
	if (n == 0 || n >= sizeof(buf))
		return n ? -ENAMETOOLONG : -ENOENT;
	memcpy(buf, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		if (buf[i - 1] == '/')
			continue;           /* "a//b": nothing new to make */
		buf[i] = '\0';
		if (mkdir(buf, mode) == 0) {
			if (!top[0])
				snprintf(top, toplen, "%s", buf);
		} else if (errno != EEXIST) {
			rc = -errno;
			break;
		}
		buf[i] = path[i];
	}
	return rc;
}

/* Remove path and its parents up to top (both as make_dirs saw them); each
 * only when empty. */
static void unmake_dirs(const char *path, const char *top)
{
	char buf[PATH_MAX];
	size_t tl = strlen(top);
	char *slash;

	if (!tl || strncmp(path, top, tl) || snprintf(buf, sizeof(buf), "%s", path) >=
	    (int)sizeof(buf))
		return;
	while (strlen(buf) >= tl) {
		while (strlen(buf) > 1 && buf[strlen(buf) - 1] == '/')
			buf[strlen(buf) - 1] = '\0';
		if (rmdir(buf) != 0 || strlen(buf) <= tl)
			break;
		slash = strrchr(buf, '/');
		if (!slash)
			break;
		*slash = '\0';
	}
}

/* What a failed init made, to be removed (only what it made). */
struct init_undo {
	const char *dir;            /* the instance folder (absolute once known) */
	const char *dir_in;         /* as given, and the topmost folder make_dirs */
	char dir_top[PATH_MAX];     /* made for it ("" none) */
	const char *storage_root;   /* local root, or NULL */
	char storage_in[PATH_MAX];  /* as given, and the topmost folder made for it */
	char storage_top[PATH_MAX];
	const char *db_path;        /* a SQLite file init created, or NULL */
	struct backend *b;          /* with marker_written: remove the marker */
	int marker_written;
};

static void unlink_db(const char *path)
{
	static const char *const ext[] = { "", "-wal", "-shm", "-journal" };
	char *p;
	size_t i;

	for (i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		p = instance_msg("%s%s", path, ext[i]);
		if (p)
			unlink(p);
		free(p);
	}
}

static void init_undo(const struct init_undo *u)
{
	static const char *const files[] = { "lamfs.conf", "lamfs.log" };
	char *p;
	size_t i;

	if (u->marker_written && u->b)
		backend_remove(u->b, MARKER_OBJECT);
	if (u->db_path)
		unlink_db(u->db_path);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		p = path_join(u->dir, files[i]);
		if (p)
			unlink(p);
		free(p);
	}
	p = path_join(u->dir, "staging");
	if (p)
		rmdir(p);
	free(p);
	if (u->storage_top[0] && u->storage_root) {
		p = path_join(u->storage_root, LAMFS_STORAGE_DIR);
		if (p)
			rmdir(p);
		free(p);
		unmake_dirs(u->storage_in, u->storage_top);
	}
	unmake_dirs(u->dir_in, u->dir_top);
}

/* The storage root as lamindb_storage.root holds it: the absolute path, or
 * the s3:// url without trailing slashes. */
static int storage_row_root(const char *root, char *out, size_t len)
{
	size_t n = strlen(root);

	while (n > 1 && root[n - 1] == '/' && !(n == 5 && !strncmp(root, "s3://", 5)))
		n--;
	if (n >= len)
		return -ENAMETOOLONG;
	memcpy(out, root, n);
	out[n] = '\0';
	return 0;
}

static void storage_row_region(struct meta_storage *st)
{
	const char *region = getenv("AWS_REGION");

	if (!region || !*region)
		region = getenv("AWS_DEFAULT_REGION");
	if (region && strlen(region) < sizeof(st->region))
		strcpy(st->region, region);
}

/* The lamindb_storage row of row_root (fits st->root) for identity ident. */
static void storage_row_of(const char *row_root, int s3, const struct lamindb_ident *ident,
			   struct meta_storage *st)
{
	memset(st, 0, sizeof(*st));
	strcpy(st->root, row_root);
	strcpy(st->type, s3 ? "s3" : "local");
	if (s3)
		storage_row_region(st);
	strcpy(st->uid, ident->storage_uid);
	strcpy(st->instance_uid, ident->instance_uid);
}

/*
 * Which database an instance on `root` uses when --db is not given, and
 * whether it exists: SQLite in <root>/.lamindb/lamin.db for local storage
 * (where LaminDB looks), INSTANCE/lamin.db for S3 (see docs/lamindb.md).
 * conf_db is what lamfs.conf says: relative to the instance when inside it.
 */
static int sqlite_place(const char *dir, const char *root, int s3, int default_storage,
			char **path, char **conf_db)
{
	if (s3) {
		*path = path_join(dir, INSTANCE_DB);
		*conf_db = instance_msg("sqlite:%s", INSTANCE_DB);
	} else {
		*path = instance_msg("%s/%s/%s", root, LAMFS_STORAGE_DIR, INSTANCE_DB);
		*conf_db = default_storage
			? instance_msg("sqlite:storage/%s/%s", LAMFS_STORAGE_DIR, INSTANCE_DB)
			: instance_msg("sqlite:%s", *path ? *path : "");
	}
	return *path && *conf_db ? 0 : -ENOMEM;
}

/*
 * Find the instance's storage row, or insert it, after meta_open.  The row's
 * instance uid must be the identity's; a row made before the marker (a
 * LaminDB instance whose marker is gone) lends the marker its storage uid.
 */
static int attach_storage(struct meta *m, const char *row_root, int s3,
			  struct lamindb_ident *ident, int have_marker, char **errmsg)
{
	struct meta_storage st, found, row;
	int64_t id = 0;
	int rc;

	memset(&st, 0, sizeof(st));
	memset(&found, 0, sizeof(found));
	if (strlen(row_root) >= sizeof(st.root))
		return -ENAMETOOLONG;
	/* A database records one storage lamfs saves into (lamfs_storage): a
	 * second root would take it over from the instances already using it. */
	rc = meta_storage_get(m, &id, &row);
	if (rc == 0 && strcmp(row.root, row_root) != 0) {
		rc = -EEXIST;
		instance_set_msg(errmsg, instance_msg(
			"the database already serves storage %s (LaminDB instance uid %s), and "
			"storage %s is %s (instance uid %s); lamfs keeps one storage root per "
			"database: give that root, or another database; nothing changed",
			row.root, row.instance_uid, row_root,
			have_marker ? "marked as LaminDB instance" : "to be LaminDB instance",
			ident->instance_uid));
		goto out;
	}
	if (rc < 0 && rc != -ENOENT) {
		instance_set_msg(errmsg, instance_msg("cannot read the database's storage: %s",
					     strerror(-rc)));
		goto out;
	}
	storage_row_of(row_root, s3, ident, &st);
	rc = meta_storage_attach(m, &st, &id, &found);
	if (rc == -EXDEV) {
		instance_set_msg(errmsg, instance_msg(
			"storage %s belongs to LaminDB instance %s (instance uid %s, %s), but "
			"the database's storage row for it names instance uid %s (storage uid "
			"%s): they are different instances; nothing changed",
			row_root, ident->slug, ident->instance_uid,
			have_marker ? "its .lamindb/" LAMINDB_MARKER_NAME : "the instance lamfs "
			"would create", found.instance_uid, found.uid));
		goto out;
	}
	if (rc < 0) {
		instance_set_msg(errmsg, instance_msg("cannot record storage %s in the database: %s",
					     row_root, strerror(-rc)));
		goto out;
	}
	rc = meta_storage_get(m, &id, &row);
	if (rc < 0) {
		instance_set_msg(errmsg, instance_msg("cannot read the storage row back: %s", strerror(-rc)));
		goto out;
	}
	if (have_marker && strcmp(row.uid, ident->storage_uid) != 0) {
		rc = -EXDEV;
		instance_set_msg(errmsg, instance_msg(
			"storage %s: its .lamindb/%s names storage uid %s, the database's "
			"storage row %s: the marker is not this database's; nothing changed",
			row_root, LAMINDB_MARKER_NAME, ident->storage_uid, row.uid));
		goto out;
	}
	memcpy(ident->storage_uid, row.uid, sizeof(ident->storage_uid));
out:
	return rc;
}

/* Read the root's marker into *ident: 1 when there is one, 0 when none. */
static int read_marker(struct backend *b, const char *root, struct lamindb_ident *ident,
		       char **errmsg)
{
	const char *why = NULL;
	int rc = marker_read(b, ident, &why);

	if (rc == 0)
		return 1;
	if (rc == -ENOENT)
		return 0;
	if (rc == -EBADMSG)
		instance_set_msg(errmsg, instance_msg("%s/%s is not a LaminDB storage marker: %s; "
					     "nothing changed", root, MARKER_OBJECT, why));
	else
		instance_set_msg(errmsg, instance_msg("cannot read %s/%s: %s", root, MARKER_OBJECT,
					     strerror(-rc)));
	return rc;
}

static int path_exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

int instance_init(const char *dir_in, const char *storage, const char *db,
		  struct instance_init_info *info, char **errmsg)
{
	return instance_init_from(dir_in, storage, db, NULL, info, errmsg);
}

static int lease_drop_cb(void *ctx, const struct meta_lease *l)
{
	meta_lease_release(ctx, l->id);   /* -ENOENT: gone already */
	return 0;
}

/* The metadata of backup in the new store at dburl (see instance.h).  m: the
 * store as meta_open(META_CREATE) made it (SQLite) or NULL (PostgreSQL, where
 * it is made by the restore); on return *m is the restored store, open. */
static int init_restore(const char *dburl, const char *backup, struct meta **m, char **errmsg)
{
	int rc;

	if (backup_is_pg(dburl)) {
		rc = meta_open(dburl, META_READONLY, m);
		if (rc == 0) {
			meta_close(*m);
			*m = NULL;
			instance_set_msg(errmsg, instance_msg("the database %s already holds a lamfs instance; "
						     "restore into an empty database", dburl));
			return -EEXIST;
		}
		if (rc != -ENOENT) {
			instance_set_msg(errmsg, instance_msg("metadata store %s: %s", dburl, strerror(-rc)));
			return rc;
		}
	} else if (*m) {
		meta_close(*m);     /* the copy goes over the file: no other handle */
		*m = NULL;
	}
	rc = backup_restore(dburl, backup, errmsg);
	if (rc < 0)
		return rc;
	/* Opened as a mount opens it: a backup of an older lamfs is migrated, a
	 * database that is no lamfs store is refused. */
	rc = meta_open(dburl, 0, m);
	/* The backup's leases are the mounts of the instance it was taken from,
	 * at that time: none of them is a mount of this one. */
	if (rc == 0)
		rc = meta_lease_list(*m, lease_drop_cb, *m);
	if (rc < 0)
		instance_set_msg(errmsg, instance_msg("%s restored, but it is not a lamfs metadata store "
					     "lamfs can open: %s", backup,
					     rc == -EPROTO && meta_open_why()[0]
						     ? meta_open_why() : strerror(-rc)));
	return rc;
}

int instance_init_from(const char *dir_in, const char *storage, const char *db,
		       const char *backup, struct instance_init_info *info, char **errmsg)
{
	char dir[PATH_MAX], name[LAMINDB_NAME_MAX + 1], abs_backup[PATH_MAX] = "";
	char *conf = NULL, *staging = NULL, *root = NULL, *dburl = NULL, *dbpath = NULL;
	char *conf_db = NULL;
	const char *conf_storage = NULL;
	struct instance_init_info local_info;
	struct init_undo undo = { 0 };
	struct backend *b = NULL;
	struct meta *m = NULL;
	struct stat st;
	int rc = 0, s3 = storage && !strncmp(storage, "s3://", 5), have_marker = 0, keep = 0;

	if (!info)
		info = &local_info;
	memset(info, 0, sizeof(*info));
	undo.dir = dir_in;
	undo.dir_in = dir_in;
	/* Like mkdir -p: missing parents are made too (and taken back if the
	 * init fails). */
	rc = make_dirs(dir_in, 0755, undo.dir_top, sizeof(undo.dir_top));
	if (rc < 0) {
		instance_set_msg(errmsg, instance_msg("cannot create %s: %s", dir_in, strerror(-rc)));
		goto out;
	}
	if (!realpath(dir_in, dir)) {
		rc = -errno;
		instance_set_msg(errmsg, instance_msg("%s: %s", dir_in, strerror(errno)));
		goto out;
	}
	undo.dir = dir;
	conf = path_join(dir, INSTANCE_CONF);
	staging = path_join(dir, "staging");
	if (!conf || !staging) {
		rc = -ENOMEM;
		goto out;
	}
	if (stat(conf, &st) == 0) {
		rc = -EEXIST;
		keep = 1;
		instance_set_msg(errmsg, instance_msg("%s is already a lamfs instance; nothing changed", dir));
		goto out;
	}
	rc = dir_empty(dir);
	if (rc <= 0) {
		if (rc == 0) {
			rc = -EEXIST;
			instance_set_msg(errmsg, instance_msg("%s is not empty; an instance needs an empty "
						     "or new directory; nothing changed", dir));
		} else {
			instance_set_msg(errmsg, instance_msg("%s: %s", dir, strerror(-rc)));
		}
		keep = 1;
		goto out;
	}
	rc = 0;
	if (s3) {
		root = strdup(storage);
	} else if (storage) {
		char abs[PATH_MAX];

		snprintf(undo.storage_in, sizeof(undo.storage_in), "%s", storage);
		rc = make_dirs(storage, 0755, undo.storage_top, sizeof(undo.storage_top));
		if (rc < 0) {
			instance_set_msg(errmsg, instance_msg("cannot create storage root %s: %s", storage,
						     strerror(-rc)));
			goto out;
		}
		if (!realpath(storage, abs)) {
			rc = -errno;
			instance_set_msg(errmsg, instance_msg("storage root %s: %s", storage, strerror(errno)));
			goto out;
		}
		root = strdup(abs);
	} else {
		root = path_join(dir, "storage");
		if (root && mkdir(root, 0755) == 0) {
			snprintf(undo.storage_in, sizeof(undo.storage_in), "%s", root);
			snprintf(undo.storage_top, sizeof(undo.storage_top), "%s", root);
		}
	}
	if (!root) {
		rc = -ENOMEM;
		goto out;
	}
	undo.storage_root = root[0] == '/' ? root : NULL;
	/* What lives inside the instance is written relative to it, so a copied
	 * or moved instance directory keeps working. */
	conf_storage = storage ? root : "storage";
	rc = storage_row_root(root, info->storage_root, sizeof(info->storage_root));
	if (rc == 0)
		rc = lamindb_name_of_root(storage ? root : dir, name, sizeof(name));
	if (rc < 0) {
		instance_set_msg(errmsg, instance_msg("cannot name a LaminDB instance after %s: %s",
					     storage ? root : dir, strerror(-rc)));
		goto out;
	}
	if (db && url_has_password(db)) {
		rc = -EINVAL;
		instance_set_msg(errmsg, instance_msg("the --db URL holds a password; it would be written to "
					     "%s.  Put it in ~/.pgpass (or PGPASSFILE) and leave it "
					     "out of the URL", INSTANCE_CONF));
		goto out;
	}
	rc = make_dir(staging, 0700);
	if (rc < 0) {
		instance_set_msg(errmsg, instance_msg("cannot create %s: %s", staging, strerror(-rc)));
		goto out;
	}
	{
		struct backend_opts bo = { .s3_create = 1 };

		rc = backend_open(root, &bo, &b, errmsg);
		if (rc < 0)
			goto out;
	}
	rc = read_marker(b, root, &info->ident, errmsg);
	if (rc < 0)
		goto out;
	have_marker = rc;
	rc = 0;
	if (db) {
		dburl = strdup(db);
		conf_db = strdup(db);
		rc = dburl && conf_db ? 0 : -ENOMEM;
	} else {
		rc = sqlite_place(dir, root, s3, !storage, &dbpath, &conf_db);
		dburl = rc == 0 ? instance_msg("sqlite:%s", dbpath) : NULL;
		if (rc == 0 && !dburl)
			rc = -ENOMEM;
	}
	if (rc < 0)
		goto out;
	if (backup && dbpath && path_exists(dbpath)) {
		rc = -EEXIST;
		instance_set_msg(errmsg, instance_msg(
			"%s exists: restoring %s would replace that live database; move it away "
			"first if it is lost or damaged, or restore with another --storage; "
			"nothing changed", dbpath, backup));
		goto out;
	}
	if (have_marker && !db && !backup && (s3 || !path_exists(dbpath))) {
		rc = -EEXIST;
		instance_set_msg(errmsg, instance_msg(
			"storage %s belongs to LaminDB instance %s (instance uid %s) whose "
			"database is not %s: give that database with --db postgresql://...; "
			"nothing changed", info->storage_root, info->ident.slug,
			info->ident.instance_uid, dbpath));
		goto out;
	}
	if (!have_marker) {
		rc = lamindb_ident_new(name, &info->ident);
		if (rc < 0) {
			instance_set_msg(errmsg, instance_msg("cannot make the instance's identity: %s",
						     strerror(-rc)));
			goto out;
		}
	}
	rc = conf_value_ok(conf_storage) && conf_value_ok(conf_db) &&
	     (!backup || conf_value_ok(backup)) ? 0 : -EINVAL;
	if (rc < 0) {
		instance_set_msg(errmsg, instance_msg("the storage or database location is too long (over "
					     "%d bytes) or holds ' ;' or trailing spaces: it could "
					     "not be read back from %s", CONF_VALUE_MAX,
					     INSTANCE_CONF));
		goto out;
	}
	if (dbpath && !path_exists(dbpath))
		undo.db_path = dbpath;
	if (!backup || !backup_is_pg(dburl)) {
		rc = meta_open(dburl, META_CREATE, &m);
		if (rc == -EEXIST)      /* a SQLite database lamfs made: attach */
			rc = meta_open(dburl, 0, &m);
	}
	if (rc == 0 && backup) {
		rc = init_restore(dburl, backup, &m, errmsg);
		if (rc < 0)
			goto out;
		if (!realpath(backup, abs_backup))
			snprintf(abs_backup, sizeof(abs_backup), "%s", backup);
	}
	if (rc < 0) {
		instance_set_msg(errmsg, instance_msg("cannot %s the metadata store %s: %s",
					     undo.db_path || !dbpath ? "create" : "open", dburl,
					     rc == -EPROTO && meta_open_why()[0] ? meta_open_why()
					     : strerror(-rc)));
		goto out;
	}
	info->attached = have_marker || (dbpath && !undo.db_path);
	rc = attach_storage(m, info->storage_root, s3, &info->ident, have_marker, errmsg);
	if (rc < 0)
		goto out;
	if (!have_marker) {
		undo.b = b;
		rc = marker_write(b, staging, &info->ident);
		if (rc < 0) {
			instance_set_msg(errmsg, instance_msg("cannot write %s/%s: %s", info->storage_root,
						     MARKER_OBJECT, strerror(-rc)));
			goto out;
		}
		undo.marker_written = 1;
	}
	rc = write_conf(conf, conf_storage, conf_db, backup ? abs_backup : NULL);
	if (rc < 0)
		instance_set_msg(errmsg, instance_msg("cannot write %s: %s", conf, strerror(-rc)));
	if (rc == 0)
		snprintf(info->db, sizeof(info->db), "%s", dbpath ? dbpath : db);
out:
	if (m)
		meta_close(m);
	if (rc < 0 && !keep)
		init_undo(&undo);
	if (b)
		backend_free(b);
	free(conf);
	free(staging);
	free(root);
	free(dburl);
	free(dbpath);
	free(conf_db);
	return rc;
}

struct conf_parse {
	struct instance_config *cfg;
	int version;
	int cache_size_set;
	char *err;
};

#define CACHE_SIZE_MIN (16ull << 20)

/* "2G", "512M", "65536K", "1073741824" (optionally "MiB", "MB": binary
 * units all) into *out; 0 is allowed (no cache).  1 when valid. */
static int conf_size(const char *v, uint64_t *out)
{
	unsigned long long n;
	unsigned shift = 0;
	char *end;

	if (*v < '0' || *v > '9')
		return 0;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno)
		return 0;
	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	case 'T': case 't': shift = 40; end++; break;
	default: break;
	}
	if (shift && (!strcmp(end, "iB") || !strcmp(end, "B")))
		end += strlen(end);
	if (*end || n > (UINT64_MAX >> shift))
		return 0;
	*out = (uint64_t)n << shift;
	return 1;
}

static int conf_set(char **field, const char *value)
{
	free(*field);
	*field = strdup(value);
	return *field != NULL;
}

static int conf_handler(void *user, const char *section, const char *name, const char *value)
{
	struct conf_parse *p = user;
	struct instance_config *cfg = p->cfg;
	int ok = 0;

	if (!strcmp(section, "instance") && !strcmp(name, "version")) {
		char *end;
		long v = strtol(value, &end, 10);

		ok = *value && !*end && v > 0 && v < 1000000;
		p->version = ok ? (int)v : 0;
	} else if (!strcmp(section, "storage") && !strcmp(name, "url")) {
		ok = conf_set(&cfg->storage_url, value);
	} else if (!strcmp(section, "meta") && !strcmp(name, "url")) {
		ok = conf_set(&cfg->meta_url, value);
	} else if (!strcmp(section, "restore") && !strcmp(name, "from")) {
		ok = conf_set(&cfg->restored_from, value);
	} else if (!strcmp(section, "s3") && !strcmp(name, "profile")) {
		ok = conf_set(&cfg->s3_profile, value);
	} else if (!strcmp(section, "s3") && !strcmp(name, "endpoint")) {
		ok = conf_set(&cfg->s3_endpoint, value);
	} else if (!strcmp(section, "s3") && !strcmp(name, "region")) {
		ok = conf_set(&cfg->s3_region, value);
	} else if (!strcmp(section, "cache") && !strcmp(name, "dir")) {
		ok = *value && conf_set(&cfg->cache_dir, value);
		if (!ok && !p->err)
			p->err = instance_msg("[cache] dir is empty: give a directory, or leave "
					      "the line out for INSTANCE/cache");
	} else if (!strcmp(section, "cache") && !strcmp(name, "size")) {
		ok = conf_size(value, &cfg->cache_size) &&
		     (cfg->cache_size == 0 || cfg->cache_size >= CACHE_SIZE_MIN);
		p->cache_size_set = ok;
		if (!ok && !p->err)
			p->err = instance_msg("[cache] size '%s' is not valid: give a size such "
					      "as 2G or 500M (at least 16M), or 0 for no cache",
					      value);
	}
	if (!ok && !p->err)
		p->err = instance_msg("unknown setting [%s] %s", section, name);
	return ok;
}

/* Storage and database paths in the config may be relative to the instance. */
static int resolve_relative(const char *dir, struct instance_config *cfg)
{
	char *s = NULL;

	if (cfg->storage_url[0] != '/' && !strstr(cfg->storage_url, "://")) {
		s = path_join(dir, cfg->storage_url);
		if (!s)
			return -ENOMEM;
		free(cfg->storage_url);
		cfg->storage_url = s;
	}
	if (!strncmp(cfg->meta_url, "sqlite:", 7) && cfg->meta_url[7] != '/') {
		s = instance_msg("sqlite:%s/%s", dir, cfg->meta_url + 7);
		if (!s)
			return -ENOMEM;
		free(cfg->meta_url);
		cfg->meta_url = s;
	}
	return 0;
}

/* The cache directory: INSTANCE/cache by default, relative to the instance
 * when not absolute.  A size of 0 means no cache: cache_dir is dropped. */
static int resolve_cache_dir(const char *dir, struct instance_config *cfg)
{
	char *s;

	if (!cfg->cache_dir || cfg->cache_dir[0] != '/') {
		s = path_join(dir, cfg->cache_dir ? cfg->cache_dir : "cache");
		if (!s)
			return -ENOMEM;
		free(cfg->cache_dir);
		cfg->cache_dir = s;
	}
	return 0;
}

int instance_load(const char *dir_in, struct instance_config *cfg, char **errmsg)
{
	char dir[PATH_MAX];
	struct conf_parse p = { .cfg = cfg };
	char *conf = NULL;
	FILE *f = NULL;
	int rc = 0, line;

	memset(cfg, 0, sizeof(*cfg));
	if (!realpath(dir_in, dir)) {
		rc = -errno;
		instance_set_msg(errmsg, instance_msg("%s: %s", dir_in, strerror(errno)));
		goto out;
	}
	conf = path_join(dir, INSTANCE_CONF);
	if (!conf) {
		rc = -ENOMEM;
		goto out;
	}
	f = fopen(conf, "re");
	if (!f) {
		rc = -errno;
		instance_set_msg(errmsg, errno == ENOENT
			? instance_msg("%s is not a lamfs instance (no %s; create one with "
				       "'lamfs init %s')", dir, INSTANCE_CONF, dir_in)
			: instance_msg("cannot read %s: %s", conf, strerror(errno)));
		goto out;
	}
	line = ini_parse_file(f, conf_handler, &p);
	if (line != 0 || !cfg->storage_url || !cfg->meta_url || p.version <= 0) {
		rc = -EBADMSG;
		if (p.err)
			instance_set_msg(errmsg, instance_msg("%s: line %d: %s", conf, line, p.err));
		else if (line != 0)
			instance_set_msg(errmsg, instance_msg("%s: line %d: not valid ini syntax", conf, line));
		else
			instance_set_msg(errmsg, instance_msg("%s: missing [instance] version, [storage] url "
						     "or [meta] url", conf));
		goto out;
	}
	if (p.version > INSTANCE_CONF_VERSION) {
		rc = -EPROTO;
		instance_set_msg(errmsg, instance_msg("%s was written by a newer lamfs (config version %d)",
					     conf, p.version));
		goto out;
	}
	if (cfg->cache_dir && !p.cache_size_set) {
		rc = -EBADMSG;
		instance_set_msg(errmsg, instance_msg("%s: [cache] dir is set but not [cache] size: "
					     "give the cache a size limit (such as 2G)", conf));
		goto out;
	}
	cfg->dir = strdup(dir);
	rc = resolve_relative(dir, cfg);
	if (rc < 0)
		goto out;
	cfg->staging_dir = path_join(dir, "staging");
	cfg->log_path = path_join(dir, "lamfs.log");
	if (!cfg->dir || !cfg->staging_dir || !cfg->log_path)
		rc = -ENOMEM;
	if (rc == 0 && cfg->cache_size)
		rc = resolve_cache_dir(dir, cfg);
out:
	if (f)
		fclose(f);
	free(p.err);
	free(conf);
	if (rc < 0)
		instance_config_release(cfg);
	return rc;
}

void instance_config_release(struct instance_config *cfg)
{
	free(cfg->dir);
	free(cfg->storage_url);
	free(cfg->meta_url);
	free(cfg->staging_dir);
	free(cfg->log_path);
	free(cfg->s3_profile);
	free(cfg->s3_endpoint);
	free(cfg->s3_region);
	free(cfg->cache_dir);
	free(cfg->restored_from);
	memset(cfg, 0, sizeof(*cfg));
}

int instance_lock(const char *dir, int exclusive, int *fd)
{
	char path[PATH_MAX];
	int rc = 0;

	snprintf(path, sizeof(path), "%s/lamfs.lock", dir);
	if (*fd < 0)
		*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (*fd < 0)
		return -errno;
	if (flock(*fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0)
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
	return rc;
}

int instance_upgrade(const char *dir, char **db, char **backup, char **errmsg)
{
	struct instance_config cfg = INSTANCE_CONFIG_INIT;
	struct backend_opts bo = { 0 };
	struct lamindb_ident ident;
	struct meta_storage st;
	struct backend *b = NULL;
	char root[PATH_MAX], row_root[PATH_MAX], name[LAMINDB_NAME_MAX + 1];
	int fd = -1, s3, have_marker = 0, rc = instance_load(dir, &cfg, errmsg);

	if (rc < 0)
		goto out;
	*db = strdup(cfg.meta_url);
	rc = instance_lock(cfg.dir, 1, &fd);
	if (rc < 0) {
		instance_set_msg(errmsg, rc == -EBUSY
			? instance_msg("%s is mounted or in use (%s/lamfs.lock is held): unmount "
				       "it first; nothing changed", cfg.dir, cfg.dir)
			: instance_msg("cannot lock %s/lamfs.lock: %s", cfg.dir, strerror(-rc)));
		goto out;
	}
	/* the storage row and identity as lamfs init makes them: the marker's,
	 * else a new one named as init names it (written after the upgrade) */
	s3 = !strncmp(cfg.storage_url, "s3://", 5);
	if (s3 || !realpath(cfg.storage_url, root))
		snprintf(root, sizeof(root), "%s", cfg.storage_url);
	bo.s3_endpoint = cfg.s3_endpoint;
	bo.s3_region = cfg.s3_region;
	bo.s3_profile = cfg.s3_profile;
	rc = backend_open(root, &bo, &b, errmsg);
	if (rc == 0)
		rc = read_marker(b, root, &ident, errmsg);
	if (rc < 0)
		goto out;
	have_marker = rc;
	rc = storage_row_root(root, row_root, sizeof(st.root));
	if (rc == 0 && !have_marker) {
		char *def = path_join(cfg.dir, "storage");

		rc = def ? lamindb_name_of_root(strcmp(root, def) ? root : cfg.dir, name,
						sizeof(name)) : -ENOMEM;
		free(def);
		if (rc == 0)
			rc = lamindb_ident_new(name, &ident);
	}
	if (rc < 0) {
		instance_set_msg(errmsg, instance_msg("cannot make the instance's identity for %s: %s", root,
					     strerror(-rc)));
		goto out;
	}
	storage_row_of(row_root, s3, &ident, &st);
	rc = meta_upgrade(cfg.meta_url, &st);
	if (rc < 0) {
		instance_set_msg(errmsg, instance_msg("cannot upgrade the metadata store %s: %s",
					     cfg.meta_url,
					     meta_open_why()[0] ? meta_open_why() : strerror(-rc)));
		goto out;
	}
	/* SQLite's copy from before (meta_upgrade) */
	if (rc == 0 && !strncmp(cfg.meta_url, "sqlite:", 7))
		*backup = instance_msg("%s%s", cfg.meta_url + 7, META_UPGRADE_BACKUP);
	if (rc == 0 && !have_marker) {
		int wrc = marker_write(b, cfg.staging_dir, &ident);

		if (wrc < 0) {
			rc = wrc;
			instance_set_msg(errmsg, instance_msg("upgraded the metadata store, but cannot write "
						     "%s/%s: %s (lamfs init --storage %s on a new "
						     "instance folder attaches and writes it)", row_root,
						     MARKER_OBJECT, strerror(-wrc), row_root));
		}
	}
out:
	if (b)
		backend_free(b);
	if (fd >= 0)
		close(fd);
	instance_config_release(&cfg);
	return rc;
}
