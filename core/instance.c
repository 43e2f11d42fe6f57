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
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "backend.h"
#include "backup.h"
#include "lamfs.h"
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

/* Remove what a failed init made (only the files it names, then the dirs). */
static void init_undo(const char *dir, const char *dir_in, const char *dir_top,
		      const char *storage_root, const char *storage_in, const char *storage_top)
{
	static const char *const files[] = { "lamfs.conf", "lamfs.db", "lamfs.db-wal",
					     "lamfs.db-shm", "lamfs.log" };
	char *p;
	size_t i;

	for (i = 0; dir[0] && i < sizeof(files) / sizeof(files[0]); i++) {
		p = path_join(dir, files[i]);
		if (p)
			unlink(p);
		free(p);
	}
	p = dir[0] ? path_join(dir, "staging") : NULL;
	if (p)
		rmdir(p);
	free(p);
	if (storage_top[0] && storage_root) {
		p = path_join(storage_root, LAMFS_STORAGE_DIR);
		if (p)
			rmdir(p);
		free(p);
		unmake_dirs(storage_in, storage_top);
	}
	unmake_dirs(dir_in, dir_top);
}

int instance_init(const char *dir_in, const char *storage, const char *db, char **errmsg)
{
	return instance_init_from(dir_in, storage, db, NULL, errmsg);
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
					     rc == -EPROTO ? "written by a newer lamfs"
							   : strerror(-rc)));
	return rc;
}

int instance_init_from(const char *dir_in, const char *storage, const char *db,
		       const char *backup, char **errmsg)
{
	char dir[PATH_MAX] = "";
	char *conf = NULL, *staging = NULL, *root = NULL, *dburl = NULL, *dbpath = NULL;
	const char *conf_storage = NULL, *conf_db = NULL;
	struct backend *b = NULL;
	struct meta *m = NULL;
	struct stat st;
	char dir_top[PATH_MAX] = "", storage_top[PATH_MAX] = "", storage_in[PATH_MAX] = "";
	char abs_backup[PATH_MAX] = "";
	int rc = 0;

	/* Like mkdir -p: missing parents are made too (and taken back if the
	 * init fails). */
	rc = make_dirs(dir_in, 0755, dir_top, sizeof(dir_top));
	if (rc < 0) {
		instance_set_msg(errmsg, instance_msg("cannot create %s: %s", dir_in, strerror(-rc)));
		goto out;
	}
	if (!realpath(dir_in, dir)) {
		rc = -errno;
		instance_set_msg(errmsg, instance_msg("%s: %s", dir_in, strerror(errno)));
		goto out;
	}
	conf = path_join(dir, INSTANCE_CONF);
	staging = path_join(dir, "staging");
	if (!conf || !staging) {
		rc = -ENOMEM;
		goto out;
	}
	if (stat(conf, &st) == 0) {
		rc = -EEXIST;
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
		dir_top[0] = '\0';
		goto out;
	}
	rc = 0;
	if (storage && strncmp(storage, "s3://", 5) == 0) {
		root = strdup(storage);
	} else if (storage) {
		char abs[PATH_MAX];

		snprintf(storage_in, sizeof(storage_in), "%s", storage);
		rc = make_dirs(storage, 0755, storage_top, sizeof(storage_top));
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
			snprintf(storage_in, sizeof(storage_in), "%s", root);
			snprintf(storage_top, sizeof(storage_top), "%s", root);
		}
	}
	/* What lives inside the instance is written relative to it, so a copied
	 * or moved instance directory keeps working. */
	conf_storage = storage ? root : "storage";
	if (!root) {
		rc = -ENOMEM;
		goto out;
	}
	if (db && url_has_password(db)) {
		rc = -EINVAL;
		instance_set_msg(errmsg, instance_msg("the --db URL holds a password; it would be written to "
					     "%s.  Put it in ~/.pgpass (or PGPASSFILE) and leave it "
					     "out of the URL", INSTANCE_CONF));
		goto out;
	}
	if (db) {
		dburl = strdup(db);
	} else {
		dbpath = path_join(dir, "lamfs.db");
		dburl = dbpath ? instance_msg("sqlite:%s", dbpath) : NULL;
	}
	conf_db = db ? dburl : "sqlite:lamfs.db";
	if (!dburl) {
		rc = -ENOMEM;
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
	if (!backup || !backup_is_pg(dburl)) {
		rc = meta_open(dburl, META_CREATE, &m);
		if (rc < 0) {
			instance_set_msg(errmsg, instance_msg("cannot create the metadata store %s: %s",
						     dburl, rc == -EEXIST ? "it already exists"
									  : strerror(-rc)));
			goto out;
		}
	}
	if (backup) {
		rc = init_restore(dburl, backup, &m, errmsg);
		if (rc == -EEXIST)
			rc = -EINVAL;   /* the instance folder is ours to undo */
		if (rc < 0)
			goto out;
		if (!realpath(backup, abs_backup))
			snprintf(abs_backup, sizeof(abs_backup), "%s", backup);
	}
	rc = conf_value_ok(conf_storage) && conf_value_ok(conf_db) &&
	     (!backup || conf_value_ok(abs_backup)) ? 0 : -EINVAL;
	if (rc < 0) {
		instance_set_msg(errmsg, instance_msg("the storage or database location is too long (over "
					     "%d bytes) or holds ' ;' or trailing spaces: it could "
					     "not be read back from %s", CONF_VALUE_MAX,
					     INSTANCE_CONF));
		goto out;
	}
	rc = write_conf(conf, conf_storage, conf_db, backup ? abs_backup : NULL);
	if (rc < 0)
		instance_set_msg(errmsg, instance_msg("cannot write %s: %s", conf, strerror(-rc)));
out:
	if (m)
		meta_close(m);
	if (b)
		backend_free(b);
	if (rc < 0 && rc != -EEXIST)
		init_undo(dir, dir_in, dir_top, root && root[0] == '/' ? root : NULL, storage_in,
			  storage_top);
	free(conf);
	free(staging);
	free(root);
	free(dburl);
	free(dbpath);
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
