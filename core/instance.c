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
#include "lamfs.h"
#include "meta.h"
#include "uid.h"

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

static void set_msg(char **errmsg, char *msg)
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

static int write_conf(const char *path, const char *storage, const char *db)
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

/* Remove what a failed init made (only the files it names, then the dirs). */
static void init_undo(const char *dir, int made_dir, const char *storage_root, int made_storage)
{
	static const char *const files[] = { "lamfs.conf", "lamfs.db", "lamfs.db-wal",
					     "lamfs.db-shm", "lamfs.log" };
	char *p;
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		p = path_join(dir, files[i]);
		if (p)
			unlink(p);
		free(p);
	}
	p = path_join(dir, "staging");
	if (p)
		rmdir(p);
	free(p);
	if (made_storage && storage_root) {
		p = path_join(storage_root, LAMFS_STORAGE_DIR);
		if (p)
			rmdir(p);
		free(p);
		rmdir(storage_root);
	}
	if (made_dir)
		rmdir(dir);
}

/* Record the storage root as the instance's lamindb_storage row: found by
 * its root, or made with a new random uid.  The instance uid is the
 * database's (a second machine's init of a shared PostgreSQL store finds it
 * in the storage recorded there), else random for now: LaminDB's own
 * (derived from its instance id, storage_uid.txt) comes with the instance
 * work of issue 19. */
/* The lamindb_storage row of a storage root as lamfs init makes it: a new
 * random uid, and for now a random instance uid (storage_attach). */
static int storage_new(const char *root, struct meta_storage *st)
{
	char u1[LAMFS_UID_LEN + 1], u2[LAMFS_UID_LEN + 1];
	int rc;

	memset(st, 0, sizeof(*st));
	if (strlen(root) >= sizeof(st->root))
		return -ENAMETOOLONG;
	rc = uid_new(u1);
	if (rc == 0)
		rc = uid_new(u2);
	if (rc < 0)
		return rc;
	snprintf(st->root, sizeof(st->root), "%s", root);
	snprintf(st->type, sizeof(st->type), "%s", strncmp(root, "s3://", 5) ? "local" : "s3");
	memcpy(st->uid, u1, 12);
	memcpy(st->instance_uid, u2, 12);
	return 0;
}

static int storage_attach(struct meta *m, const char *root)
{
	struct meta_storage st, had;
	int rc = storage_new(root, &st);

	if (rc < 0)
		return rc;
	rc = meta_storage_get(m, NULL, &had);
	if (rc == 0 && had.instance_uid[0])
		memcpy(st.instance_uid, had.instance_uid, sizeof(st.instance_uid));
	else if (rc < 0 && rc != -ENOENT)
		return rc;
	return meta_storage_attach(m, &st, NULL, NULL);
}

int instance_init(const char *dir_in, const char *storage, const char *db, char **errmsg)
{
	char dir[PATH_MAX];
	char *conf = NULL, *staging = NULL, *root = NULL, *dburl = NULL, *dbpath = NULL;
	const char *conf_storage = NULL, *conf_db = NULL;
	struct backend *b = NULL;
	struct meta *m = NULL;
	struct stat st;
	int rc = 0, made_dir = 0, made_storage = 0;

	if (mkdir(dir_in, 0755) == 0)
		made_dir = 1;
	else if (errno != EEXIST) {
		rc = -errno;
		set_msg(errmsg, instance_msg("cannot create %s: %s", dir_in, strerror(errno)));
		goto out;
	}
	if (!realpath(dir_in, dir)) {
		rc = -errno;
		set_msg(errmsg, instance_msg("%s: %s", dir_in, strerror(errno)));
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
		set_msg(errmsg, instance_msg("%s is already a lamfs instance; nothing changed", dir));
		goto out;
	}
	rc = dir_empty(dir);
	if (rc <= 0) {
		if (rc == 0) {
			rc = -EEXIST;
			set_msg(errmsg, instance_msg("%s is not empty; an instance needs an empty "
						     "or new directory; nothing changed", dir));
		} else {
			set_msg(errmsg, instance_msg("%s: %s", dir, strerror(-rc)));
		}
		made_dir = 0;
		goto out;
	}
	rc = 0;
	if (storage && strncmp(storage, "s3://", 5) == 0) {
		root = strdup(storage);
	} else if (storage) {
		char abs[PATH_MAX];

		if (mkdir(storage, 0755) == 0)
			made_storage = 1;
		else if (errno != EEXIST) {
			rc = -errno;
			set_msg(errmsg, instance_msg("cannot create storage root %s: %s", storage,
						     strerror(errno)));
			goto out;
		}
		if (!realpath(storage, abs)) {
			rc = -errno;
			set_msg(errmsg, instance_msg("storage root %s: %s", storage, strerror(errno)));
			goto out;
		}
		root = strdup(abs);
	} else {
		root = path_join(dir, "storage");
		if (root && mkdir(root, 0755) == 0)
			made_storage = 1;
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
		set_msg(errmsg, instance_msg("the --db URL holds a password; it would be written to "
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
		set_msg(errmsg, instance_msg("cannot create %s: %s", staging, strerror(-rc)));
		goto out;
	}
	{
		struct backend_opts bo = { .s3_create = 1 };

		rc = backend_open(root, &bo, &b, errmsg);
		if (rc < 0)
			goto out;
	}
	rc = meta_open(dburl, META_CREATE, &m);
	if (rc < 0) {
		set_msg(errmsg, instance_msg("cannot create the metadata store %s: %s", dburl,
					     rc == -EEXIST ? "it already exists"
					     : rc == -EPROTO && meta_open_why()[0] ? meta_open_why()
					     : strerror(-rc)));
		goto out;
	}
	rc = storage_attach(m, root);
	if (rc < 0) {
		set_msg(errmsg, instance_msg("cannot record storage %s in %s: %s", root, dburl,
					     rc == -EXDEV ? "it belongs to another LaminDB instance"
					     : strerror(-rc)));
		goto out;
	}
	rc = conf_value_ok(conf_storage) && conf_value_ok(conf_db) ? 0 : -EINVAL;
	if (rc < 0) {
		set_msg(errmsg, instance_msg("the storage or database location is too long (over "
					     "%d bytes) or holds ' ;' or trailing spaces: it could "
					     "not be read back from %s", CONF_VALUE_MAX,
					     INSTANCE_CONF));
		goto out;
	}
	rc = write_conf(conf, conf_storage, conf_db);
	if (rc < 0)
		set_msg(errmsg, instance_msg("cannot write %s: %s", conf, strerror(-rc)));
out:
	if (m)
		meta_close(m);
	if (b)
		backend_free(b);
	if (rc < 0 && rc != -EEXIST)
		init_undo(dir, made_dir, root && root[0] == '/' ? root : NULL, made_storage);
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
		set_msg(errmsg, instance_msg("%s: %s", dir_in, strerror(errno)));
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
		set_msg(errmsg, errno == ENOENT
			? instance_msg("%s is not a lamfs instance (no %s; create one with "
				       "'lamfs init %s')", dir, INSTANCE_CONF, dir_in)
			: instance_msg("cannot read %s: %s", conf, strerror(errno)));
		goto out;
	}
	line = ini_parse_file(f, conf_handler, &p);
	if (line != 0 || !cfg->storage_url || !cfg->meta_url || p.version <= 0) {
		rc = -EBADMSG;
		if (p.err)
			set_msg(errmsg, instance_msg("%s: line %d: %s", conf, line, p.err));
		else if (line != 0)
			set_msg(errmsg, instance_msg("%s: line %d: not valid ini syntax", conf, line));
		else
			set_msg(errmsg, instance_msg("%s: missing [instance] version, [storage] url "
						     "or [meta] url", conf));
		goto out;
	}
	if (p.version > INSTANCE_CONF_VERSION) {
		rc = -EPROTO;
		set_msg(errmsg, instance_msg("%s was written by a newer lamfs (config version %d)",
					     conf, p.version));
		goto out;
	}
	if (cfg->cache_dir && !p.cache_size_set) {
		rc = -EBADMSG;
		set_msg(errmsg, instance_msg("%s: [cache] dir is set but not [cache] size: "
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
	struct meta_storage st;
	char root[PATH_MAX];
	int fd = -1, rc = instance_load(dir, &cfg, errmsg);

	if (rc < 0)
		goto out;
	rc = instance_lock(cfg.dir, 1, &fd);
	if (rc < 0) {
		set_msg(errmsg, rc == -EBUSY
			? instance_msg("%s is mounted or in use (%s/lamfs.lock is held): unmount "
				       "it first; nothing changed", cfg.dir, cfg.dir)
			: instance_msg("cannot lock %s/lamfs.lock: %s", cfg.dir, strerror(-rc)));
		goto out;
	}
	/* the root as lamfs init records it: a local one resolved */
	if (strstr(cfg.storage_url, "://") || !realpath(cfg.storage_url, root))
		snprintf(root, sizeof(root), "%s", cfg.storage_url);
	rc = storage_new(root, &st);
	if (rc == 0)
		rc = meta_upgrade(cfg.meta_url, &st);
	*db = strdup(cfg.meta_url);
	/* SQLite's copy from before (meta_upgrade) */
	if (rc == 0 && !strncmp(cfg.meta_url, "sqlite:", 7))
		*backup = instance_msg("%s%s", cfg.meta_url + 7, META_UPGRADE_BACKUP);
	if (rc < 0)
		set_msg(errmsg, instance_msg("cannot upgrade the metadata store %s: %s",
					     cfg.meta_url,
					     meta_open_why()[0] ? meta_open_why() : strerror(-rc)));
out:
	if (fd >= 0)
		close(fd);
	instance_config_release(&cfg);
	return rc;
}
