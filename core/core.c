/*
 * core.c — open an instance; the save sequence; names; reads; xattrs.
 *
 * This file owns the order of operations that keeps data and metadata in
 * step (see core.h).  The store and the backend each keep their own promises;
 * here we sequence them and undo a half-done save.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core_internal.h"
#include "fault.h"
#include "key.h"
#include "log.h"
#include "uid.h"

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * A local storage root without its .lamindb folder while the instance has
 * artifacts is a disk that is not mounted (or a wrong path): refuse, rather
 * than serve EIO for every read and start a new .lamindb in the empty folder.
 */
static int storage_present(struct core *c, char **errmsg)
{
	char path[PATH_MAX];
	uint64_t files = 0, bytes = 0;
	struct stat st;

	if (c->cfg.storage_url[0] != '/' || stat(c->cfg.storage_url, &st) != 0 ||
	    !S_ISDIR(st.st_mode))
		return 0; /* not local, or the root is missing or no folder: the backend says so */
	snprintf(path, sizeof(path), "%s/%s", c->cfg.storage_url, LAMFS_STORAGE_DIR);
	if (stat(path, &st) == 0 || meta_totals(c->meta, &files, &bytes) < 0 || files == 0)
		return 0;
	if (errmsg)
		*errmsg = instance_msg("storage root %s has no %s folder, but the instance has %llu "
				       "artifacts: is its disk mounted?", c->cfg.storage_url,
				       LAMFS_STORAGE_DIR, (unsigned long long)files);
	return -ENOENT;
}

/*
 * A SQLite database in <root>/.lamindb (where LaminDB keeps it) is missing
 * when the storage is: say what is wrong with the storage, not that the
 * database is gone.  A local root that is missing, no folder, or whose
 * .lamindb is there but not writable: the backend is opened now, creating
 * nothing, for its message (or kept, when it opens).  A root without
 * .lamindb whose database lives there: a disk that is not mounted.  Any
 * other case waits for storage_present, which asks the store.
 */
static int storage_before_meta(struct core *c, const struct backend_opts *bo, char **errmsg)
{
	const char *root = c->cfg.storage_url, *db = c->cfg.meta_url;
	char path[PATH_MAX];
	struct stat st;
	size_t n = strlen(root);
	int rc = 0;

	if (root[0] != '/')
		goto out;
	snprintf(path, sizeof(path), "%s/%s", root, LAMFS_STORAGE_DIR);
	if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode) || stat(path, &st) == 0) {
		rc = backend_open(root, bo, &c->backend, errmsg);
		goto out;
	}
	if (!strncmp(db, "sqlite:", 7) && !strncmp(db + 7, root, n) && db[7 + n] == '/') {
		rc = -ENOENT;
		if (errmsg)
			*errmsg = instance_msg("storage root %s has no %s folder, which holds the "
					       "instance's database and objects: is its disk mounted?",
					       root, LAMFS_STORAGE_DIR);
	}
out:
	return rc;
}

int core_open(const char *instance, unsigned flags, struct core **out, char **errmsg)
{
	struct core *c = calloc(1, sizeof(*c));
	struct backend_opts bo = { 0 };
	struct stat st;
	int rc;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->flags = flags;
	c->lock_fd = -1;
	rc = instance_load(instance, &c->cfg, errmsg);
	if (rc < 0)
		goto out;
	bo.s3_endpoint = c->cfg.s3_endpoint;
	bo.s3_region = c->cfg.s3_region;
	bo.s3_profile = c->cfg.s3_profile;
	if (flags & CORE_READ_CACHE) {
		bo.cache_dir = c->cfg.cache_dir;
		bo.cache_size = c->cfg.cache_size;
	}
	if (stat(c->cfg.staging_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		rc = -ENOENT;
		if (errmsg)
			*errmsg = instance_msg("%s: the staging folder %s is missing",
					       c->cfg.dir, c->cfg.staging_dir);
		goto out;
	}
	rc = storage_before_meta(c, &bo, errmsg);
	if (rc < 0)
		goto out;
	rc = meta_open(c->cfg.meta_url, (flags & CORE_READONLY) ? META_READONLY : 0, &c->meta);
	if (rc < 0) {
		if (errmsg)
			*errmsg = instance_msg(
				"%s: metadata store %s: %s", c->cfg.dir, c->cfg.meta_url,
				rc == -EPROTO && meta_open_why()[0] ? meta_open_why()
				: rc == -EPROTO ? "written by a newer lamfs; upgrade lamfs"
				: rc == -EBADMSG ? "not a lamfs database or damaged"
				: strerror(-rc));
		goto out;
	}
	{
		int64_t sid = 0;

		rc = meta_storage_get(c->meta, &sid, NULL);
		if (rc < 0) {
			if (errmsg)
				*errmsg = instance_msg("%s: metadata store %s: %s", c->cfg.dir,
						       c->cfg.meta_url,
						       rc == -ENOENT ? "no storage recorded for this "
						       "instance (lamfs init records it)"
						       : strerror(-rc));
			goto out;
		}
		c->storage_id = (int)sid;
	}
	if (c->backend)
		goto out;
	rc = storage_present(c, errmsg);
	if (rc < 0)
		goto out;
	rc = backend_open(c->cfg.storage_url, &bo, &c->backend, errmsg);
out:
	if (rc < 0) {
		core_close(c);
		c = NULL;
	}
	*out = c;
	return rc;
}

void core_close(struct core *c)
{
	if (!c)
		return;
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	if (c->backend)
		backend_free(c->backend);
	if (c->meta)
		meta_close(c->meta);
	instance_config_release(&c->cfg);
	free(c);
}

int core_lock(struct core *c, int exclusive)
{
	return instance_lock(c->cfg.dir, exclusive, &c->lock_fd);
}

struct meta *core_meta(struct core *c)
{
	return c->meta;
}

struct backend *core_backend(struct core *c)
{
	return c->backend;
}

const char *core_instance_dir(const struct core *c)
{
	return c->cfg.dir;
}

const char *core_staging_dir(const struct core *c)
{
	return c->cfg.staging_dir;
}

/* ---- names ---- */

int core_lookup(struct core *c, const char *key, struct meta_entry *out)
{
	int rc;

	if (key[0] == '\0')
		return meta_lookup(c->meta, key, out);
	rc = key_check(key);
	if (rc == -ENAMETOOLONG)
		return rc;
	if (rc < 0 || key_hidden(key))
		return -ENOENT;
	return meta_lookup(c->meta, key, out);
}

int core_readdir(struct core *c, const char *key, meta_dirent_cb cb, void *ctx)
{
	return meta_readdir(c->meta, key, cb, ctx);
}

/* ---- saving ---- */

/* Delete the objects of records a committed transaction dropped.  A failure
 * leaves an orphan object, which lamfs-repair removes; the caller's operation
 * has succeeded already, so it is only logged. */
static void drop_objects(struct core *c, const struct meta_dropped *d)
{
	char obj[LAMFS_OBJ_MAX];
	size_t i;
	int rc;

	if (d->n && fault_check("delete.committed") < 0)
		return;
	for (i = 0; i < d->n; i++) {
		key_object(d->v[i].uid, d->v[i].suffix, obj, sizeof(obj));
		rc = backend_remove(c->backend, obj);
		if (rc < 0 && rc != -ENOENT)
			log_warn("delete: object %s stays as an orphan (%s); lamfs-repair "
				 "removes it", obj, strerror(-rc));
	}
}

/* Name the staging file after the flagged record (staging/<uid>), so a crash
 * leaves it where lamfs-repair and a resumed save look for it. */
static void stage_name_for(struct core_stage *s, const char *uid)
{
	char path[sizeof(s->path)];
	int n = snprintf(path, sizeof(path), "%s/%s", s->c->cfg.staging_dir, uid);

	if (n < 0 || (size_t)n >= sizeof(path))
		return;
	if (rename(s->path, path) == 0)
		memcpy(s->path, path, sizeof(path));
	else
		log_warn("staging: cannot rename %s to %s: %s", s->path, path, strerror(errno));
	/* The owner's mark: while this lock is held, no other mount's start-up
	 * resumes this save (see core_staged_lock). */
	if (flock(s->fd, LOCK_EX | LOCK_NB) != 0)
		log_warn("staging: cannot lock %s: %s", s->path, strerror(errno));
}

/* Give the staging file back an anonymous name (after a save that did not
 * consume it, or after a failed one), so no record points at it. */
static void stage_name_anon(struct core_stage *s)
{
	char path[sizeof(s->path)];
	int n = snprintf(path, sizeof(path), "%s/w.XXXXXX", s->c->cfg.staging_dir);
	int fd;

	if (n < 0 || (size_t)n >= sizeof(path))
		return;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return;
	close(fd);
	if (rename(s->path, path) == 0)
		memcpy(s->path, path, sizeof(path));
	else
		unlink(path);
}

static void fill_record(const struct core *c, struct lamfs_record *rec, const char *key,
			const struct hash_result *hr, const struct core_attrs *a)
{
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->key, sizeof(rec->key), "%s", key);
	key_suffix(key, rec->suffix);
	rec->size = (int64_t)hr->size;
	memcpy(rec->hash, hr->hash, sizeof(rec->hash));
	memcpy(rec->hash_type, hr->hash_type, sizeof(rec->hash_type));
	memcpy(rec->checksum, hr->checksum, sizeof(rec->checksum));
	rec->branch_id = 1;
	rec->storage_id = c->storage_id;
	rec->mode = a ? a->mode & 07777 : 0644;
	rec->owner_uid = a ? a->owner_uid : (uint32_t)getuid();
	rec->owner_gid = a ? a->owner_gid : (uint32_t)getgid();
	rec->mtime_ns = (a && a->mtime_ns) ? a->mtime_ns : now_ns();
}

/*
 * 1 when the object obj of a flagged record rec may be removed with it: it is
 * missing, or holds rec's size and (when staging_path still has the staged
 * bytes) exactly those bytes.  An object with other bytes was not written by
 * this save: a put never replaces one (backend.h), so it is an object saved
 * after the metadata backup this instance was restored from, and stays.
 */
static int object_is_ours(struct core *c, const struct lamfs_record *rec, const char *obj,
			  const char *staging_path)
{
	struct backend_src src = { 0 };
	uint64_t size = 0;
	int fd, rc = backend_stat(c->backend, obj, &size);

	if (rc < 0)
		return 1;
	if (size != (uint64_t)rec->size) {
		rc = 0;
	} else if (staging_path && (fd = open(staging_path, O_RDONLY | O_CLOEXEC)) >= 0) {
		src.fd = fd;
		src.size = size;
		rc = backend_same_content(c->backend, obj, &src) != 0;
		close(fd);
	} else {
		rc = 1;
	}
	if (!rc)
		log_err("%s: %s holds other bytes than the save being rolled back; kept (saved "
			"after a metadata backup? lamfs-repair lists it)", rec->key, obj);
	return rc;
}

/* Undo a save whose flagged record is committed: record, then object.
 * object_written < 0: the put found another object under the name (EEXIST),
 * which is not this save's and stays. */
static void save_rollback(struct core *c, const struct lamfs_record *rec, int object_written)
{
	char obj[LAMFS_OBJ_MAX];
	int rc = meta_save_abort(c->meta, rec->uid);

	if (rc < 0 && rc != -ENOENT)
		log_err("save %s: cannot delete the flagged record %s (%s); it stays hidden "
			"until lamfs-repair rolls it back", rec->key, rec->uid, strerror(-rc));
	if ((rc < 0 && rc != -ENOENT) || object_written < 0)
		return; /* the record still names the object; repair decides */
	key_object(rec->uid, rec->suffix, obj, sizeof(obj));
	rc = backend_remove(c->backend, obj);
	if (rc < 0 && rc != -ENOENT && object_written)
		log_err("save %s: object %s left behind (%s); lamfs-repair removes it",
			rec->key, obj, strerror(-rc));
}

static int save_upload(struct core *c, struct core_stage *s, const struct lamfs_record *rec,
		       const struct hash_result *hr, int *consumed)
{
	char obj[LAMFS_OBJ_MAX];
	struct backend_src src = {
		.path = s->path,
		.fd = s->fd,
		.size = hr->size,
		.md5 = hr->md5_ok ? hr->md5 : NULL,
		.sha256_hex = hr->checksum,
		.may_consume = 1,
		.synced = 1,   /* save_begin fsynced the stage */
		.key = rec->key,
	};

	key_object(rec->uid, rec->suffix, obj, sizeof(obj));
	return backend_put(c->backend, obj, &src, consumed);
}

void core_staging_path(const struct core *c, const char *uid, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%s", c->cfg.staging_dir, uid);
}

/* The common start of a save: fsync and hash the stage, insert the record
 * flagged (or find it is there already).  On 0, *state says which.  flags:
 * META_BEGIN_LAZY when the caller finishes the save before it returns. */
static int save_begin(struct core *c, struct core_stage *s, const char *key,
		      const struct core_attrs *attrs, struct lamfs_record *rec,
		      struct hash_result *hr, enum meta_save_state *state, unsigned flags)
{
	int rc = key_check(key);

	if (rc < 0)
		goto out;
	rc = stage_restore(s);
	if (rc < 0)
		goto out;
	if (fsync(s->fd) != 0) {
		rc = -errno;
		goto out;
	}
	rc = stage_hash(s, hr);
	hash_reset(s->h);
	s->hash_ok = 0; /* the streamed state is used up; a later save re-hashes */
	if (rc < 0)
		goto out;
	rc = fault_check("save.staged");
	if (rc < 0)
		goto out;
	fill_record(c, rec, key, hr, attrs);
	rc = meta_save_begin(c->meta, rec, state, flags);
	if (rc == 0 && *state != META_SAVE_EXISTS) {
		/* A crash here leaves the bytes in w.*: core_staged_adopt finds them. */
		(void)fault_check("save.inserted"); /* crash only; an errno is ignored */
		stage_name_for(s, rec->uid);
	}
out:
	return rc;
}

static void stage_clean(struct core_stage *s, const struct lamfs_record *rec)
{
	s->base = *rec;
	s->have_base = 1;
	s->dirty = 0;
}

int core_save(struct core *c, struct core_stage *s, const char *key,
	      const struct core_attrs *attrs, struct lamfs_record *out)
{
	struct hash_result hr;
	struct lamfs_record rec;
	enum meta_save_state state;
	int rc = 0, consumed = 0, removed = 0;

	if (!s->dirty && s->have_base && !strcmp(s->base.key, key)) {
		rec = s->base; /* nothing new since the last save */
		goto done;
	}
	/* Lazy: nobody learns of this save before its finish commits, and that
	 * durable commit makes the flagged record durable too.  A power loss
	 * before it leaves at most an orphan object (lamfs-repair removes it). */
	rc = save_begin(c, s, key, attrs, &rec, &hr, &state, META_BEGIN_LAZY);
	if (rc < 0 || state == META_SAVE_EXISTS)
		goto done;
	rc = fault_check("save.flagged");
	if (rc == 0)
		rc = save_upload(c, s, &rec, &hr, &consumed);
	if (rc == -ENOENT)
		rc = -EIO; /* storage lost the bucket or upload under us: not a missing file */
	if (rc == 0)
		rc = fault_check("save.uploaded");
	if (rc == 0) {
		rc = meta_save_finish(c->meta, rec.uid, &rec);
		removed = rc == -ENOENT;
	}
	if (removed) {
		/* Removed (rm, or replaced by mv) while it was being stored: as with
		 * a file unlinked while open, its bytes simply go. */
		log_info("save %s (%s): the key was removed meanwhile; bytes dropped", key,
			 rec.uid);
		save_rollback(c, &rec, 1);
		stage_name_anon(s);
		rc = 0;
		goto done;
	}
	if (rc < 0) {
		log_err("save %s (%s) failed: %s; rolled back", key, rec.uid, strerror(-rc));
		save_rollback(c, &rec, rc == -EEXIST ? -1 : 1);
		stage_name_anon(s);
		goto done;
	}
	if (consumed) {
		/* The object shares the staging file's inode: never write it again. */
		unlink(s->path);
		close(s->fd);
		s->fd = -1;
		s->path[0] = '\0';
		s->spent = 1;
	} else {
		stage_name_anon(s);
	}
done:
	if (rc == 0) {
		stage_clean(s, &rec);
		if (out)
			*out = rec;
	}
	return rc;
}

int core_save_deferred(struct core *c, struct core_stage *s, const char *key,
		       const struct core_attrs *attrs, struct lamfs_record *out, int *staged_fd)
{
	struct hash_result hr;
	struct lamfs_record rec;
	enum meta_save_state state = META_SAVE_EXISTS;
	int rc = 0;

	*staged_fd = -1;
	if (!s->dirty && s->have_base && !strcmp(s->base.key, key)) {
		rec = s->base;
		goto done;
	}
	/* Durable: close() returns on the strength of this flagged record. */
	rc = save_begin(c, s, key, attrs, &rec, &hr, &state, 0);
	if (rc < 0 || state == META_SAVE_EXISTS)
		goto done;
	rc = fault_check("save.flagged");
	if (rc < 0) {
		save_rollback(c, &rec, 0);
		stage_name_anon(s);
		goto done;
	}
	/* Hand the file over, lock and all: it is staging/<uid> now and belongs
	 * to the caller's queue. */
	*staged_fd = s->fd;
	s->fd = -1;
	s->path[0] = '\0';
	s->spent = 1;
done:
	if (rc == 0) {
		stage_clean(s, &rec);
		if (out)
			*out = rec;
	}
	return rc;
}

/* Whether the file behind fd (st: its fstat) holds exactly rec's bytes: 0
 * (hr is their hashes), -EBADMSG when the size or sha256 differ, -errno. */
static int holds_bytes(int fd, const struct stat *st, const struct lamfs_record *rec,
		       struct hash_result *hr)
{
	int rc = -EBADMSG;

	if ((int64_t)st->st_size == rec->size) {
		rc = hash_fd(fd, hr);
		if (rc == 0 && strcmp(hr->checksum, rec->checksum) != 0)
			rc = -EBADMSG;
	}
	return rc;
}

/* What unowned_each() calls for one file: 0 goes on, anything else stops the
 * walk and is its result. */
typedef int (*unowned_fn)(void *arg, int dfd, const char *name, int fd, const struct stat *st);

/*
 * Call fn for every regular "w.*" staging file that no live process holds (its
 * writer died with its daemon), with the file open and locked by us until fn
 * returns, so no other mount starting up touches it meanwhile.  0, fn's
 * non-zero result, or -errno.
 */
static int unowned_each(struct core *c, unowned_fn fn, void *arg)
{
	DIR *d = opendir(c->cfg.staging_dir);
	struct dirent *e;
	struct stat st;
	int fd, rc = 0;

	if (!d)
		return -errno;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "w.", 2) != 0)
			continue;
		fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
			rc = fn(arg, dirfd(d), e->d_name, fd, &st);
		close(fd);
	}
	closedir(d);
	return rc;
}

static int sweep_one(void *arg, int dfd, const char *name, int fd, const struct stat *st)
{
	unsigned *n = arg;

	(void)fd;
	(void)st;
	if (unlinkat(dfd, name, 0) == 0)
		(*n)++;
	return 0;
}

int core_staging_sweep(struct core *c, unsigned *n)
{
	*n = 0;
	return unowned_each(c, sweep_one, n);
}

struct adopt_one {
	const struct lamfs_record *rec;
	int dry;
	char *name;
	size_t len;
};

/* 1 when the file holds rec's bytes (and, unless dry, is staging/<uid> now). */
static int adopt_try(void *arg, int dfd, const char *name, int fd, const struct stat *st)
{
	struct adopt_one *a = arg;
	struct hash_result hr;
	int rc = 0;

	if (holds_bytes(fd, st, a->rec, &hr) < 0)
		goto out;
	if (a->name)
		snprintf(a->name, a->len, "%s", name);
	rc = 1;
	if (a->dry)
		goto out;
	if (renameat2(dfd, name, dfd, a->rec->uid, RENAME_NOREPLACE) != 0)
		rc = -errno;
	else
		log_info("staging: %s holds the bytes of the interrupted save %s (%s); renamed "
			 "staging/%s", name, a->rec->key, a->rec->uid, a->rec->uid);
out:
	return rc;
}

int core_staged_adopt(struct core *c, const struct lamfs_record *rec, int dry, char *name,
		      size_t len)
{
	struct adopt_one a = { rec, dry, name, len };
	int rc = unowned_each(c, adopt_try, &a);

	return rc == 1 ? 0 : rc == 0 ? -ENOENT : rc;
}

/* The sizes of the unowned w.* files (at most ADOPT_MAX of them are looked at). */
#define ADOPT_MAX 1024
struct adopt_all {
	struct core *c;
	int64_t sizes[ADOPT_MAX];
	size_t n;
	unsigned adopted;
};

static int adopt_size(void *arg, int dfd, const char *name, int fd, const struct stat *st)
{
	struct adopt_all *a = arg;

	(void)dfd;
	(void)name;
	(void)fd;
	a->sizes[a->n++] = (int64_t)st->st_size;
	return a->n == ADOPT_MAX;
}

static int adopt_size_seen(const struct adopt_all *a, int64_t size)
{
	size_t i;
	int seen = 0;

	for (i = 0; i < a->n && !seen; i++)
		seen = a->sizes[i] == size;
	return seen;
}

static int adopt_cb(void *ctx, const struct lamfs_record *rec)
{
	struct adopt_all *a = ctx;
	char path[PATH_MAX];
	struct stat st;

	if (!rec->storage_ongoing || !adopt_size_seen(a, rec->size))
		return 0;
	core_staging_path(a->c, rec->uid, path, sizeof(path));
	if (stat(path, &st) != 0 && errno == ENOENT &&
	    core_staged_adopt(a->c, rec, 0, NULL, 0) == 0)
		a->adopted++;
	return 0;
}

int core_staging_adopt(struct core *c, unsigned *n)
{
	struct adopt_all *a = calloc(1, sizeof(*a));
	int rc = a ? 0 : -ENOMEM;

	*n = 0;
	if (a) {
		a->c = c;
		rc = unowned_each(c, adopt_size, a);
		if (rc >= 0 && a->n > 0)
			rc = meta_foreach(c->meta, META_FLAGGED_RECORDS, adopt_cb, a);
		*n = a->adopted;
	}
	free(a);
	return rc < 0 ? rc : 0;
}

int core_staged_lock(struct core *c, const char *uid, int *fd)
{
	char path[PATH_MAX];
	int rc = 0;

	core_staging_path(c, uid, path, sizeof(path));
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(*fd);
		*fd = -1;
	}
	return rc;
}

/* Check that the locked staging/<uid> behind fd holds exactly the record's
 * bytes; path gets its name. */
static int staged_check(struct core *c, const struct lamfs_record *rec, char *path,
			size_t pathlen, struct hash_result *hr, int fd)
{
	struct stat st;

	core_staging_path(c, rec->uid, path, pathlen);
	return fstat(fd, &st) != 0 ? -errno : holds_bytes(fd, &st, rec, hr);
}

int core_upload_flagged(struct core *c, const char *uid, int locked_fd)
{
	char path[PATH_MAX], obj[LAMFS_OBJ_MAX];
	struct lamfs_record rec;
	struct hash_result hr;
	struct backend_src src = { 0 };
	int fd = locked_fd, consumed = 0, rc;

	rc = meta_get_uid(c->meta, uid, &rec);
	if (rc == 0 && !rec.storage_ongoing)
		rc = -ENOENT;
	if (rc == 0 && fd < 0)
		rc = core_staged_lock(c, uid, &fd);
	if (rc == 0)
		rc = staged_check(c, &rec, path, sizeof(path), &hr, fd);
	if (rc < 0)
		goto out;
	src.path = path;
	src.fd = fd;
	src.size = hr.size;
	src.md5 = hr.md5_ok ? hr.md5 : NULL;
	src.sha256_hex = hr.checksum;
	src.may_consume = 1;
	src.key = rec.key;
	/* staging/<uid> gets that name only after save_begin has fsynced it
	 * (and its record is flagged only after that), so its bytes are durable. */
	src.synced = 1;
	key_object(rec.uid, rec.suffix, obj, sizeof(obj));
	rc = backend_put(c->backend, obj, &src, &consumed);
	if (rc == -ENOENT)
		rc = -EIO; /* a missing bucket or upload is a failure, never "gone" */
	if (rc == 0)
		rc = fault_check("save.uploaded");
	if (rc == 0)
		rc = meta_save_finish(c->meta, uid, &rec);
	/* EEXIST: another object has the name (saved after a restored backup);
	 * retrying cannot help, and the rollback keeps that object. */
	if (rc == 0)
		unlink(path);
	else if (consumed)
		backend_remove(c->backend, obj); /* the record stays flagged: retry later */
out:
	if (fd >= 0 && fd != locked_fd)
		close(fd);
	return rc;
}

int core_rollback_flagged(struct core *c, const char *uid)
{
	char path[PATH_MAX], obj[LAMFS_OBJ_MAX];
	struct lamfs_record rec;
	int rc;

	rc = meta_get_uid(c->meta, uid, &rec);
	if (rc == 0 && !rec.storage_ongoing)
		rc = -EBUSY;
	if (rc == 0)
		rc = meta_save_abort(c->meta, uid);
	if (rc < 0)
		goto out;
	key_object(rec.uid, rec.suffix, obj, sizeof(obj));
	core_staging_path(c, uid, path, sizeof(path));
	rc = object_is_ours(c, &rec, obj, path) ? backend_remove(c->backend, obj) : 0;
	if (rc == -ENOENT)
		rc = 0;
	if (unlink(path) != 0 && errno != ENOENT && rc == 0)
		rc = -errno;
out:
	return rc;
}

/* ---- namespace ---- */

int core_unlink(struct core *c, const char *key)
{
	struct meta_dropped d = META_DROPPED_INIT;
	int rc = key_hidden(key) ? -ENOENT : meta_unlink(c->meta, key, &d);

	if (rc == 0)
		drop_objects(c, &d);
	meta_dropped_release(&d);
	return rc;
}

int core_rename(struct core *c, const char *from, const char *to, unsigned flags)
{
	struct meta_dropped d = META_DROPPED_INIT;
	int rc;

	if (key_hidden(from)) {
		rc = -ENOENT;
		goto out;
	}
	rc = key_check(to);
	if (rc < 0)
		goto out;
	rc = meta_rename(c->meta, from, to, flags, &d);
	if (rc == 0)
		drop_objects(c, &d);
out:
	meta_dropped_release(&d);
	return rc;
}

int core_mkdir(struct core *c, const char *key, const struct core_attrs *attrs)
{
	struct lamfs_folder dir;
	int rc = key_check(key);

	if (rc < 0)
		return rc;
	memset(&dir, 0, sizeof(dir));
	snprintf(dir.path, sizeof(dir.path), "%s", key);
	dir.mode = attrs->mode & 07777;
	dir.owner_uid = attrs->owner_uid;
	dir.owner_gid = attrs->owner_gid;
	dir.mtime_ns = attrs->mtime_ns ? attrs->mtime_ns : now_ns();
	return meta_mkdir(c->meta, &dir);
}

int core_rmdir(struct core *c, const char *key)
{
	if (key[0] == '\0')
		return -EBUSY;
	if (key_hidden(key))
		return -ENOENT;
	return meta_rmdir(c->meta, key);
}

int core_setattr(struct core *c, const char *key, unsigned mask, const struct meta_attr *a)
{
	if (key_hidden(key))
		return -ENOENT;
	return meta_setattr(c->meta, key, mask, a);
}

int core_statfs(struct core *c, struct core_statfs *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = meta_totals(c->meta, &out->files, &out->bytes);
	if (rc == 0 && backend_space(c->backend, &out->space_total, &out->space_avail) < 0) {
		out->space_total = 0;
		out->space_avail = 0;
	}
	return rc;
}

/* ---- reading ---- */

int core_version(struct core *c, const char *uid, struct lamfs_record *out)
{
	int rc;

	if (!uid_valid(uid))
		return -ENOENT;
	rc = meta_get_uid(c->meta, uid, out);
	if (rc == 0 && (out->storage_ongoing || out->branch_id != 1))
		rc = -ENOENT;
	return rc;
}

struct core_reader {
	struct backend_reader *br;
	uint64_t size;
};

int core_reader_open(struct core *c, const struct lamfs_record *rec, struct core_reader **out)
{
	char obj[LAMFS_OBJ_MAX];
	struct core_reader *r = calloc(1, sizeof(*r));
	int rc;

	*out = NULL;
	if (!r)
		return -ENOMEM;
	key_object(rec->uid, rec->suffix, obj, sizeof(obj));
	rc = backend_reader_open(c->backend, obj, &r->br, &r->size);
	if (rc < 0) {
		if (rc == -ENOENT)
			log_err("read %s: object %s is missing from storage; lamfs-repair "
				"--verify reports it", rec->key, obj);
		rc = rc == -ENOENT ? -EIO : rc;
		free(r);
		return rc;
	}
	if (rec->size >= 0 && r->size != (uint64_t)rec->size) {
		/* never serve a different length than the record's: a read would
		 * end early (or run on) without an error */
		log_err("read %s: object %s is %llu bytes, its record says %lld; lamfs-repair "
			"--verify reports it", rec->key, obj, (unsigned long long)r->size,
			(long long)rec->size);
		backend_reader_close(r->br);
		free(r);
		return -EIO;
	}
	*out = r;
	return 0;
}

ssize_t core_reader_pread(struct core_reader *r, void *buf, size_t len, uint64_t off)
{
	size_t got = 0, n;
	int rc;

	if (off >= r->size)
		return 0;
	if (len > r->size - off)
		len = (size_t)(r->size - off);
	/* all of len: the object has size bytes, so less means it changed */
	for (rc = 0; rc == 0 && got < len; got += n) {
		n = 0;
		rc = backend_reader_pread(r->br, (char *)buf + got, len - got, off + got, &n);
		if (rc == 0 && n == 0) {
			log_err("read: object ended at %llu bytes, before the %llu its record "
				"says", (unsigned long long)(off + got), (unsigned long long)r->size);
			rc = -EIO;
		}
	}
	return rc < 0 ? rc : (ssize_t)got;
}

void core_reader_close(struct core_reader *r)
{
	if (!r)
		return;
	backend_reader_close(r->br);
	free(r);
}

/* ---- xattrs ---- */

static const char *const xattr_names[] = {
	"user.lamfs.uid", "user.lamfs.hash", "user.lamfs.hash_type",
	"user.lamfs.version", "user.lamfs.checksum",
};

ssize_t core_xattr_get(const struct lamfs_record *rec, const char *name, char *buf, size_t size)
{
	const char *v = NULL;
	size_t len;

	if (!strcmp(name, xattr_names[0]))
		v = rec->uid;
	else if (!strcmp(name, xattr_names[1]))
		v = rec->hash;
	else if (!strcmp(name, xattr_names[2]))
		v = rec->hash_type;
	else if (!strcmp(name, xattr_names[3]))
		v = lamfs_uid_version(rec->uid);
	else if (!strcmp(name, xattr_names[4]))
		v = rec->checksum;
	if (!v)
		return -ENODATA;
	len = strlen(v);
	if (size == 0)
		return (ssize_t)len;
	if (size < len)
		return -ERANGE;
	memcpy(buf, v, len);
	return (ssize_t)len;
}

ssize_t core_xattr_list(char *buf, size_t size)
{
	size_t i, need = 0, n;

	for (i = 0; i < sizeof(xattr_names) / sizeof(xattr_names[0]); i++)
		need += strlen(xattr_names[i]) + 1;
	if (size == 0)
		return (ssize_t)need;
	if (size < need)
		return -ERANGE;
	for (i = 0; i < sizeof(xattr_names) / sizeof(xattr_names[0]); i++) {
		n = strlen(xattr_names[i]) + 1;
		memcpy(buf, xattr_names[i], n);
		buf += n;
	}
	return (ssize_t)need;
}

/* ---- for save_file.c (core_internal.h) ---- */

void core_record_fill(const struct core *c, struct lamfs_record *rec, const char *key,
		      const struct hash_result *hr,
		      const struct core_attrs *a)
{
	fill_record(c, rec, key, hr, a);
}

void core_save_undo(struct core *c, const struct lamfs_record *rec, int object_written)
{
	save_rollback(c, rec, object_written);
}
