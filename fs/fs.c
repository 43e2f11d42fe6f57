/*
 * fs.c — FUSE adapters over the core (libfuse 3, high-level path API,
 * multithreaded).
 *
 * Handlers translate requests into core calls.  Open files, this mount's
 * writers and when they save belong to the core's open-file table
 * (core/open.h); what stays here is the kernel's side: its caches (names,
 * attributes, directory snapshots) and the /.lamfs tree.
 *
 * fs.lock guards only the stale names; it is never held across a core call.
 */
#define FUSE_USE_VERSION 35

#include "fs.h"
#include "inval.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "lease.h"
#include "open.h"
#include "upq.h"
#include "key.h"
#include "log.h"

struct fs {
	struct core *core;
	pthread_mutex_t lock;        /* guards stale */
	struct core_files *files;    /* the open files (core/open.h) */
	struct upq *upq;             /* -o writeback: the upload queue, else NULL */
	struct inval *inval;         /* kernel cache invalidation; NULL: timeout 0 */
	double cache_timeout;        /* entry and attribute timeout, seconds */
	uint64_t drops;              /* atomic: cache_drop calls so far */
	/* The mount root has no record: it shows the mounting user as owner and
	 * the instance's creation time (see root_attrs()).  Set before mounting. */
	uid_t root_uid;
	gid_t root_gid;
	int64_t root_mtime_ns;
	struct stale_name *stale;    /* fs.lock: STALE_MAX names; see stale_add() */
};

/*
 * Names that vanished behind the kernel's cached entry: a file created here
 * whose save failed.  libfuse's high-level API can drop a name's attributes
 * from the kernel but not the name, so for up to cache_timeout the kernel
 * still holds it, and when it asks for its attributes (a stat, or the
 * permission check of the next open: `cp` again after a failed `cp`)
 * ENOENT would fail that open.  The first such question gets ESTALE
 * instead: the kernel then walks the path again with LOOKUP_REVAL, asks
 * LOOKUP, gets ENOENT and forgets the name (an open with O_CREAT creates
 * it).  Each entry answers once, and only within its time.
 */
#define STALE_MAX 32

struct stale_name {
	int64_t until_ms;            /* 0: free */
	char key[LAMFS_KEY_MAX + 1];
};

static void stale_add(struct fs *fs, const char *key);
static int stale_take(struct fs *fs, const char *key);

/* How long flush waits for the kernel to drop a path's cache. */
#define INVAL_WAIT_MS 5000

static struct fs *fs_get(void)
{
	return fuse_get_context()->private_data;
}

static const char *path_key(const char *path)
{
	return path[0] == '/' ? path + 1 : path;
}

/*
 * The kernel caches names and attributes for cache_timeout; it updates that
 * cache itself from the replies of unlink, rename, rmdir, setattr and create.
 * What it cannot know (a save committed or failed at close, a write-back
 * upload done) is invalidated here, through the invalidation thread; with
 * wait, the caller replies only after the kernel has dropped its cache (so a
 * stat right after close() is exact).  Every call also marks directory
 * snapshots read before it as stale (dir_fresh).
 */
static void cache_drop(struct fs *fs, const char *key, int wait)
{
	uint64_t t;

	__atomic_add_fetch(&fs->drops, 1, __ATOMIC_SEQ_CST);
	t = inval_push(fs->inval, key);

	if (wait)
		inval_wait(fs->inval, t, INVAL_WAIT_MS);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void ns_to_ts(int64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / 1000000000LL);
	ts->tv_nsec = (long)(ns % 1000000000LL);
}

/* ---- /.lamfs: read-only access to every version by uid ---- */

static void stat_record(const struct lamfs_record *r, struct stat *st);

enum special { SP_NONE = 0, SP_LAMFS = 1, SP_UIDDIR = 2, SP_UIDFILE = 3 };

/* Classify path; for SP_UIDFILE *uid points at the uid inside path. */
static enum special special_path(const char *path, const char **uid)
{
	/* NULL: an operation on an open file whose name was removed (hard_remove) */
	if (!path || strncmp(path, "/.lamfs", 7) != 0 || (path[7] != '\0' && path[7] != '/'))
		return SP_NONE;
	if (path[7] == '\0' || !strcmp(path + 7, "/"))
		return SP_LAMFS;
	if (strncmp(path + 7, "/uid", 4) != 0 || (path[11] != '\0' && path[11] != '/'))
		return SP_LAMFS; /* unknown names below /.lamfs: handled as missing */
	if (path[11] == '\0')
		return SP_UIDDIR;
	if (uid)
		*uid = path + 12;
	return SP_UIDFILE;
}

static int special_getattr(const char *path, struct stat *st)
{
	struct lamfs_record rec;
	const char *uid = NULL;
	int rc = 0;

	switch (special_path(path, &uid)) {
	case SP_LAMFS:
		if (strcmp(path, "/.lamfs") != 0)
			return -ENOENT;
		/* fall through */
	case SP_UIDDIR:
		memset(st, 0, sizeof(*st));
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		break;
	case SP_UIDFILE:
		rc = core_version(fs_get()->core, uid, &rec);
		if (rc == 0) {
			stat_record(&rec, st);
			st->st_mode &= ~(mode_t)0222; /* versions are immutable */
		}
		break;
	default:
		rc = -ENOENT;
	}
	return rc;
}

/* ---- attributes ---- */

/* st_blksize of files: the largest write the kernel sends (max_write, 1 MiB
 * with libfuse 3.14 on Linux >= 4.20), so cp writes in requests that size. */
#define FS_IO_BLOCK (1024 * 1024)

static void stat_record(const struct lamfs_record *r, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | (r->mode & 07777);
	st->st_nlink = 1;
	st->st_uid = r->owner_uid;
	st->st_gid = r->owner_gid;
	st->st_size = r->size;
	st->st_blocks = (r->size + 511) / 512;
	st->st_blksize = FS_IO_BLOCK;
	ns_to_ts(r->mtime_ns, &st->st_mtim);
	st->st_atim = st->st_mtim;
	ns_to_ts(r->updated_at ? r->updated_at : r->mtime_ns, &st->st_ctim);
}

static void stat_folder(const struct lamfs_folder *d, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFDIR | (d->mode & 07777);
	st->st_nlink = 2;
	st->st_uid = d->owner_uid;
	st->st_gid = d->owner_gid;
	st->st_blksize = 4096;
	ns_to_ts(d->mtime_ns, &st->st_mtim);
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

/*
 * The mount root is implicit (no folder record): it belongs to the user who
 * mounted (so a user's own mount is writable at the top) and shows the
 * instance's creation time.  chmod, chown and touch of it give EPERM (the
 * metadata store has nowhere to keep them).
 */
static void root_attrs(const struct fs *fs, struct stat *st)
{
	st->st_uid = fs->root_uid;
	st->st_gid = fs->root_gid;
	ns_to_ts(fs->root_mtime_ns, &st->st_mtim);
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

static int lamfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();
	struct core_file *f = fi ? (struct core_file *)(uintptr_t)fi->fh : NULL;
	struct meta_entry e;
	int rc = 0;

	if (special_path(path, NULL))
		return special_getattr(path, st);
	/* With a handle (fstat, or a read past the kernel's idea of the size):
	 * what that handle reads.  By name: this mount's file being written,
	 * when there is one (the kernel's fstat and O_APPEND offsets go by name,
	 * and readers never use the kernel's size: they read with direct_io),
	 * else what is committed. */
	if (f || (path && core_files_writer_attr(fs->files, path_key(path), &e.rec))) {
		if (f)
			core_file_attr(f, &e.rec);
		stat_record(&e.rec, st);
		return 0;
	}
	if (!path)
		return -ENOENT; /* a removed file without its handle: nothing to say */
	rc = core_files_lookup(fs->files, path_key(path), &e);
	if (rc == 0 && e.type == META_FILE)
		stat_record(&e.rec, st);
	else if (rc == 0)
		stat_folder(&e.dir, st);
	if (rc == 0 && !strcmp(path, "/"))
		root_attrs(fs, st);
	if (rc == -ENOENT && stale_take(fs, path_key(path)))
		rc = -ESTALE; /* the kernel looks the name up again: see STALE_MAX */
	return rc;
}

/* ---- directories ---- */

/*
 * A listing is read once, when a directory is read from its start, into the
 * open directory's snapshot; the kernel's READDIR(PLUS) requests then take it
 * in pieces by offset (entry i has offset i + 1).  So the kernel gets each
 * entry's attributes with its name (READDIRPLUS: libfuse's high-level API
 * passes them only to a filler given offsets) and `ls -l` needs no LOOKUP per
 * file.  Entries being written on this mount carry no attributes: the
 * kernel asks for them (their writer answers).
 */
struct dir_ent {
	char *name;
	int plus;                    /* st is the entry's full attributes */
	struct stat st;
};

struct fs_dir {                      /* an open directory (fi->fh) */
	struct dir_ent *ents;
	size_t n, cap;
	uint64_t drops;              /* fs.drops when it was read */
	int64_t loaded_ms;           /* CLOCK_MONOTONIC */
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Remember that key vanished behind the kernel's back (see STALE_MAX). */
static void stale_add(struct fs *fs, const char *key)
{
	struct stale_name *slot = NULL;
	int64_t now = mono_ms();
	int i;

	if (!fs->stale || fs->cache_timeout <= 0)
		return;
	pthread_mutex_lock(&fs->lock);
	for (i = 0; i < STALE_MAX; i++) {
		struct stale_name *n = &fs->stale[i];

		if (!slot || n->until_ms < slot->until_ms)
			slot = n; /* the free or oldest one */
		if (n->until_ms > now && !strcmp(n->key, key)) {
			slot = n;
			break;
		}
	}
	snprintf(slot->key, sizeof(slot->key), "%s", key);
	slot->until_ms = now + (int64_t)(fs->cache_timeout * 1000) + 1000;
	pthread_mutex_unlock(&fs->lock);
}

/* 1 (once) when key vanished behind the kernel's cached name lately. */
static int stale_take(struct fs *fs, const char *key)
{
	int64_t now = mono_ms();
	int i, hit = 0;

	if (!fs->stale)
		return 0;
	pthread_mutex_lock(&fs->lock);
	for (i = 0; i < STALE_MAX && !hit; i++) {
		struct stale_name *n = &fs->stale[i];

		if (n->until_ms > now && !strcmp(n->key, key)) {
			n->until_ms = 0;
			hit = 1;
		}
	}
	pthread_mutex_unlock(&fs->lock);
	return hit;
}

/*
 * Whether the snapshot's attributes may go to the kernel as they are: nothing
 * on this mount has been invalidated or opened for writing since it was read
 * (else the kernel could cache attributes older than that), and it is younger
 * than the cache timeout (a long listing does not stretch how late another
 * mount's change is seen).  Otherwise dir_refresh() reads them again.
 */
static int dir_fresh(struct fs *fs, const struct fs_dir *d)
{
	return __atomic_load_n(&fs->drops, __ATOMIC_SEQ_CST) == d->drops &&
	       mono_ms() - d->loaded_ms < (int64_t)(fs->cache_timeout * 1000);
}

/* Read entry e of folder key again, now; a name being written on this mount,
 * or gone, goes without attributes (the kernel asks). */
static void dir_refresh(struct fs *fs, const char *key, struct dir_ent *e)
{
	char k[LAMFS_KEY_MAX + 2];
	struct meta_entry me;
	int n;

	if (!e->plus)
		return;
	e->plus = 0;
	n = snprintf(k, sizeof(k), "%s%s%s", key, key[0] ? "/" : "", e->name);
	if (n < 0 || (size_t)n > LAMFS_KEY_MAX)
		return;
	if (core_files_has_writer(fs->files, k) || core_lookup(fs->core, k, &me) < 0)
		return;
	if (me.type == META_DIR)
		stat_folder(&me.dir, &e->st);
	else
		stat_record(&me.rec, &e->st);
	e->plus = 1;
}

struct readdir_ctx {
	struct fs_dir *d;
	char (*live)[LAMFS_NAME_MAX + 1];  /* names of live writers in this folder */
	int *seen;
	size_t nlive;
	int rc;
};

static void dir_clear(struct fs_dir *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		free(d->ents[i].name);
	free(d->ents);
	d->ents = NULL;
	d->n = d->cap = 0;
}

/* Append name; st NULL: a name without attributes.  0 or -ENOMEM. */
static int dir_add(struct fs_dir *d, const char *name, const struct stat *st, mode_t type)
{
	struct dir_ent *e;

	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 64;
		struct dir_ent *p = realloc(d->ents, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		d->ents = p;
		d->cap = cap;
	}
	e = &d->ents[d->n];
	memset(e, 0, sizeof(*e));
	e->name = strdup(name);
	if (!e->name)
		return -ENOMEM;
	if (st)
		e->st = *st;
	else
		e->st.st_mode = type;
	e->plus = st != NULL;
	d->n++;
	return 0;
}

static int readdir_cb(void *ctx, const char *name, const struct meta_entry *e)
{
	struct readdir_ctx *r = ctx;
	struct stat st;
	int live = 0;
	size_t i;

	for (i = 0; i < r->nlive; i++)
		if (!strcmp(r->live[i], name))
			r->seen[i] = live = 1;
	if (e->type == META_DIR)
		stat_folder(&e->dir, &st);
	else
		stat_record(&e->rec, &st);
	r->rc = dir_add(r->d, name, live ? NULL : &st, st.st_mode & S_IFMT);
	return r->rc < 0 ? 1 : 0;
}

/* Read folder key into d: ".", "..", the committed entries, then this
 * mount's files not saved yet. */
static int dir_load(struct fs *fs, const char *key, struct fs_dir *d)
{
	struct readdir_ctx r = { d, NULL, NULL, 0, 0 };
	size_t i;
	int rc;

	dir_clear(d);
	d->drops = __atomic_load_n(&fs->drops, __ATOMIC_SEQ_CST);
	d->loaded_ms = mono_ms();
	rc = core_files_live_names(fs->files, key, &r.live, &r.nlive);
	if (rc == 0 && r.nlive && !(r.seen = calloc(r.nlive, sizeof(*r.seen))))
		rc = -ENOMEM;
	if (rc == 0)
		rc = dir_add(d, ".", NULL, S_IFDIR);
	if (rc == 0)
		rc = dir_add(d, "..", NULL, S_IFDIR);
	if (rc == 0)
		rc = core_readdir(fs->core, key, readdir_cb, &r);
	if (rc == 0)
		rc = r.rc;
	for (i = 0; rc == 0 && i < r.nlive; i++)
		if (!r.seen[i])
			rc = dir_add(d, r.live[i], NULL, S_IFREG);
	free(r.live);
	free(r.seen);
	if (rc < 0)
		dir_clear(d);
	return rc;
}

static int lamfs_opendir(const char *path, struct fuse_file_info *fi)
{
	struct fs_dir *d = calloc(1, sizeof(*d));

	(void)path;
	if (!d)
		return -ENOMEM;
	fi->fh = (uintptr_t)d;
	return 0;
}

static int lamfs_releasedir(const char *path, struct fuse_file_info *fi)
{
	struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;

	(void)path;
	if (d) {
		dir_clear(d);
		free(d);
	}
	return 0;
}

static int lamfs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
			 struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct fs *fs = fs_get();
	struct fs_dir *d = fi ? (struct fs_dir *)(uintptr_t)fi->fh : NULL;
	enum fuse_fill_dir_flags plus;
	size_t i;
	int rc = 0, fresh, with_attrs;

	switch (special_path(path, NULL)) {
	case SP_NONE:
		break;
	case SP_LAMFS:
		filler(buf, ".", NULL, 0, 0);
		filler(buf, "..", NULL, 0, 0);
		filler(buf, "uid", NULL, 0, 0);
		return 0;
	case SP_UIDDIR: /* every uid is reachable, none is listed */
		filler(buf, ".", NULL, 0, 0);
		filler(buf, "..", NULL, 0, 0);
		return 0;
	default:
		return -ENOTDIR;
	}
	if (!d || off < 0)
		return -EBADF;
	if (off == 0) /* from the start (opendir, rewinddir): read it afresh */
		rc = dir_load(fs, path_key(path), d);
	/* No attributes at all when they are not cached (cache_timeout=0). */
	with_attrs = (flags & FUSE_READDIR_PLUS) && fs->cache_timeout > 0;
	fresh = with_attrs && dir_fresh(fs, d);
	for (i = (size_t)off; rc == 0 && i < d->n; i++) {
		if (with_attrs && !fresh && i >= 2)
			dir_refresh(fs, path_key(path), &d->ents[i]);
		plus = (with_attrs && d->ents[i].plus) ? FUSE_FILL_DIR_PLUS : 0;
		if (filler(buf, d->ents[i].name, &d->ents[i].st, (off_t)(i + 1), plus))
			break; /* the kernel's buffer is full */
	}
	return rc;
}

/* A set-group-ID folder passes its group to what is made in it, and its
 * set-group-ID bit to new folders (the kernel leaves this to us). */
static void inherit_group(struct fs *fs, const char *key, struct core_attrs *a, int is_dir)
{
	char parent[LAMFS_KEY_MAX + 1];
	struct meta_entry e;

	key_split(key, parent);
	if (core_lookup(fs->core, parent, &e) != 0 || e.type != META_DIR ||
	    !(e.dir.mode & S_ISGID))
		return;
	a->owner_gid = e.dir.owner_gid;
	if (is_dir)
		a->mode |= S_ISGID;
}

static int lamfs_mkdir(const char *path, mode_t mode)
{
	struct fuse_context *ctx = fuse_get_context();
	struct core_attrs a = { mode & 07777, ctx->uid, ctx->gid, 0 };

	if (special_path(path, NULL))
		return -EROFS;
	inherit_group(fs_get(), path_key(path), &a, 1);
	return core_mkdir(fs_get()->core, path_key(path), &a);
}

static int lamfs_rmdir(const char *path)
{
	struct fs *fs = fs_get();
	int rc;

	if (special_path(path, NULL))
		return -EROFS;
	rc = core_files_rmdir(fs->files, path_key(path));
	cache_drop(fs, path_key(path), 0);
	return rc;
}

/* ---- names ---- */

static int lamfs_unlink(const char *path)
{
	struct fs *fs = fs_get();
	int rc;

	if (special_path(path, NULL))
		return -EROFS;
	rc = core_files_unlink(fs->files, path_key(path));
	cache_drop(fs, path_key(path), 0);
	return rc;
}

static int lamfs_rename(const char *from, const char *to, unsigned int flags)
{
	struct fs *fs = fs_get();
	int rc;

	if (special_path(from, NULL) || special_path(to, NULL))
		return -EROFS;
	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL; /* RENAME_EXCHANGE, RENAME_WHITEOUT: not supported */
	rc = core_files_rename(fs->files, path_key(from), path_key(to),
			       (flags & RENAME_NOREPLACE) ? META_RENAME_NOREPLACE : 0);
	/* The kernel moves its own entries (a folder's with all below it); these
	 * drop what it may hold for the names themselves. */
	cache_drop(fs, path_key(from), 0);
	cache_drop(fs, path_key(to), 0);
	return rc;
}

static int lamfs_symlink(const char *target, const char *path)
{
	(void)target;
	(void)path;
	return -EPERM;
}

static int lamfs_link(const char *from, const char *to)
{
	(void)from;
	(void)to;
	return -EPERM;
}

static int lamfs_mknod(const char *path, mode_t mode, dev_t dev)
{
	(void)path;
	(void)mode;
	(void)dev;
	return -EPERM;
}

/* ---- attributes that change ---- */

static int setattr_common(const char *path, struct fuse_file_info *fi, unsigned mask,
			  const struct meta_attr *a)
{
	struct fs *fs = fs_get();
	struct core_file *f = fi ? (struct core_file *)(uintptr_t)fi->fh : NULL;
	int rc;

	if (special_path(path, NULL))
		return -EROFS;
	rc = core_files_setattr(fs->files, f, path ? path_key(path) : NULL, mask, a);
	if (path)
		cache_drop(fs, path_key(path), 0);
	return rc;
}

static int lamfs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct meta_attr a = { .mode = mode & 07777 };

	return setattr_common(path, fi, META_ATTR_MODE, &a);
}

static int lamfs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct meta_attr a = { .owner_uid = uid, .owner_gid = gid };
	unsigned mask = 0;

	if (uid != (uid_t)-1)
		mask |= META_ATTR_OWNER_UID;
	if (gid != (gid_t)-1)
		mask |= META_ATTR_OWNER_GID;
	return mask ? setattr_common(path, fi, mask, &a) : 0;
}

static int lamfs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	struct meta_attr a = { 0 };

	if (tv && tv[1].tv_nsec == UTIME_OMIT)
		return 0;
	if (!tv || tv[1].tv_nsec == UTIME_NOW)
		a.mtime_ns = now_ns();
	else
		a.mtime_ns = (int64_t)tv[1].tv_sec * 1000000000LL + tv[1].tv_nsec;
	return setattr_common(path, fi, META_ATTR_MTIME, &a);
}

/* ---- open files ---- */

/*
 * Every open of a regular file by name bypasses the kernel's page cache
 * (direct_io).  The kernel keeps one page cache and one size per name, but
 * under lamfs a name has several contents at once: the committed version each
 * reader opened and the private stage of each writer.  Through a shared cache
 * a reader could see a writer's bytes, another version's pages or a size that
 * ends its read early; with direct_io every read is served from the version
 * or stage that handle opened.  The cost: a MAP_SHARED mmap is refused with
 * ENODEV (MAP_PRIVATE works), see the README and docs/inodes.md.
 */
static int open_writer(struct fs *fs, const char *key, unsigned flags, const struct core_attrs *a,
		       struct fuse_file_info *fi)
{
	struct core_file *f;
	int rc;

	if (fi->flags & O_APPEND)
		flags |= CORE_FILE_APPEND;
	rc = core_file_open_write(fs->files, key, flags, a, fuse_get_context()->pid, &f);
	if (rc < 0)
		return rc;
	/* the name now shows this writer's attributes: listings read before
	 * must not hand the kernel the committed ones (dir_fresh) */
	__atomic_add_fetch(&fs->drops, 1, __ATOMIC_SEQ_CST);
	fi->fh = (uintptr_t)f;
	fi->direct_io = 1;
	return 0;
}

static int lamfs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_context *ctx = fuse_get_context();
	struct fs *fs = fs_get();
	struct core_attrs a = { mode & 07777, ctx->uid, ctx->gid, 0 };
	int rc = key_check(path_key(path));

	if (special_path(path, NULL))
		return -EROFS;
	if (rc < 0)
		return rc;
	inherit_group(fs, path_key(path), &a, 0);
	/* The name looked free, but a write-back save of it may still be
	 * uploading on this mount: then this opens that file (O_APPEND keeps its
	 * bytes), as it would on a disk. */
	return open_writer(fs, path_key(path),
			   (!fs->upq || (fi->flags & O_TRUNC)) ? CORE_FILE_TRUNC : 0, &a, fi);
}

/* Open for reading: the committed version (a reader never sees another
 * writer's half-written bytes), else this mount's own unsaved file; a
 * /.lamfs/uid version (immutable: the kernel may cache it).  Else a writer. */
static int lamfs_open(const char *path, struct fuse_file_info *fi)
{
	struct fuse_context *ctx = fuse_get_context();
	struct fs *fs = fs_get();
	struct core_attrs a = { 0644, ctx->uid, ctx->gid, 0 };
	int acc = fi->flags & O_ACCMODE;
	const char *uid = NULL;
	struct core_file *f = NULL;
	int rc;

	if (special_path(path, &uid) == SP_UIDFILE && acc != O_RDONLY)
		return -EROFS;
	if (uid)
		rc = core_file_open_version(fs->files, uid, &f);
	else if (acc == O_RDONLY)
		rc = core_file_open_read(fs->files, path_key(path), &f);
	else
		return open_writer(fs, path_key(path), (fi->flags & O_TRUNC) ? CORE_FILE_TRUNC : 0,
				   &a, fi);
	if (rc == 0) {
		fi->fh = (uintptr_t)f;
		fi->direct_io = !uid;
	}
	return rc;
}

static int lamfs_read(const char *path, char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	(void)path;
	return (int)core_file_read((struct core_file *)(uintptr_t)fi->fh, buf, size,
				   (uint64_t)off);
}

static int lamfs_write(const char *path, const char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)path;
	return (int)core_file_write((struct core_file *)(uintptr_t)fi->fh, buf, size,
				    (uint64_t)off);
}

/*
 * With a writer's handle: its stage.  By name: the kernel's O_TRUNC
 * (atomic_o_trunc is off) lands here without a handle, from the process that
 * has just opened the file, and goes to that process's writer; else a new
 * version of that length is saved now (open.h).
 */
static int lamfs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();
	struct core_file *f = fi ? (struct core_file *)(uintptr_t)fi->fh : NULL;
	struct fuse_context *ctx = fuse_get_context();
	struct core_attrs a = { 0644, ctx->uid, ctx->gid, 0 };
	int rc, saved = 0;

	if (special_path(path, NULL))
		return -EROFS;
	if (f && core_file_is_writer(f))
		return core_file_truncate(f, (uint64_t)size);
	if (!path)
		return -ENOENT;
	rc = core_files_truncate_key(fs->files, path_key(path), (uint64_t)size, ctx->pid, &a,
				     &saved);
	if (saved)
		cache_drop(fs, path_key(path), 0);
	return rc;
}

static int lamfs_flush(const char *path, struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();
	struct core_file_done d;
	int rc;

	(void)path;
	rc = core_file_flush((struct core_file *)(uintptr_t)fi->fh, &d);
	if (rc < 0)
		stale_add(fs, d.key); /* discarded: the name vanishes now */
	if (d.saved && !(rc == 0 && d.uploading))
		cache_drop(fs, d.key, 1); /* committed, or gone: stat must say so */
	return rc;
}

static int lamfs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();
	struct core_file_done d;
	int rc;

	(void)path;
	(void)datasync;
	rc = core_file_fsync((struct core_file *)(uintptr_t)fi->fh, &d);
	if (rc < 0)
		stale_add(fs, d.key);
	if (d.writer)
		cache_drop(fs, d.key, 0); /* the file stays open: its writer answers */
	return rc;
}

/*
 * Saved now, or an unsaved file gone: drop the kernel's attributes.  Not for
 * a save still uploading (write-back): what the kernel holds is what was
 * written, and upload_done() drops it when the upload commits; an
 * invalidation now would make the kernel's permission check of the next open
 * ask for the file, which is hidden until then, and fail ENOENT
 * (`cp a f && echo x >> f`).
 */
static int lamfs_release(const char *path, struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();
	struct core_file_done d;

	(void)path;
	if (core_file_release((struct core_file *)(uintptr_t)fi->fh, &d) < 0)
		stale_add(fs, d.key); /* logged by the core; the name vanishes */
	if (d.writer && !d.uploading)
		cache_drop(fs, d.key, 0);
	return 0;
}

/* ---- xattrs, statfs ---- */

/* The record behind path for xattrs: a visible file or a /.lamfs/uid version. */
static int xattr_lookup(const char *path, struct meta_entry *e)
{
	const char *uid = NULL;

	switch (special_path(path, &uid)) {
	case SP_NONE:
		return core_lookup(fs_get()->core, path_key(path), e);
	case SP_UIDFILE:
		e->type = META_FILE;
		return core_version(fs_get()->core, uid, &e->rec);
	default:
		e->type = META_DIR;
		return 0;
	}
}

/*
 * Which attributes a name is: lamfs's own (user.lamfs.*, read-only), another
 * user.* name (none exists), or of a namespace lamfs does not keep at all
 * (security labels, ACLs, trusted.*).  The last answer EOPNOTSUPP, as on a
 * filesystem without them, which also tells ls -l (it asks every file for
 * security.selinux and system.posix_acl_access) to stop asking for the rest
 * of the mount.
 */
enum xattr_ns { XA_LAMFS, XA_USER, XA_OTHER };

static enum xattr_ns xattr_ns_of(const char *name)
{
	static const char user[] = "user.", lamfs[] = "user.lamfs.";

	if (strncmp(name, lamfs, sizeof(lamfs) - 1) == 0)
		return XA_LAMFS;
	return strncmp(name, user, sizeof(user) - 1) == 0 ? XA_USER : XA_OTHER;
}

static int lamfs_getxattr(const char *path, const char *name, char *value, size_t size)
{
	struct meta_entry e;
	enum xattr_ns ns = xattr_ns_of(name);
	int rc;

	if (ns != XA_LAMFS)   /* answered without a lookup */
		return ns == XA_USER ? -ENODATA : -EOPNOTSUPP;
	rc = xattr_lookup(path, &e);
	if (rc < 0)
		return core_files_has_writer(fs_get()->files, path_key(path)) ? -ENODATA : rc;
	if (e.type != META_FILE)
		return -ENODATA;
	return (int)core_xattr_get(&e.rec, name, value, size);
}

static int lamfs_listxattr(const char *path, char *list, size_t size)
{
	struct meta_entry e;
	int rc = xattr_lookup(path, &e);

	if (rc < 0)
		return core_files_has_writer(fs_get()->files, path_key(path)) ? 0 : rc;
	if (e.type != META_FILE)
		return 0;
	return (int)core_xattr_list(list, size);
}

static int lamfs_setxattr(const char *path, const char *name, const char *value, size_t size,
			  int flags)
{
	(void)path;
	(void)value;
	(void)size;
	(void)flags;
	return xattr_ns_of(name) == XA_LAMFS ? -EPERM : -ENOTSUP;
}

static int lamfs_removexattr(const char *path, const char *name)
{
	enum xattr_ns ns = xattr_ns_of(name);

	(void)path;
	return ns == XA_LAMFS ? -EPERM : ns == XA_USER ? -ENODATA : -EOPNOTSUPP;
}

static int lamfs_statfs(const char *path, struct statvfs *sv)
{
	struct core_statfs s;
	const unsigned long bsize = 4096;
	int rc;

	(void)path;
	rc = core_statfs(fs_get()->core, &s);
	if (rc < 0)
		return rc;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = bsize;
	sv->f_frsize = bsize;
	if (s.space_total) {
		sv->f_blocks = s.space_total / bsize;
		sv->f_bfree = s.space_avail / bsize;
	} else {
		sv->f_blocks = (s.bytes + (1ull << 50)) / bsize; /* object stores: "plenty" */
		sv->f_bfree = sv->f_blocks - s.bytes / bsize;
	}
	sv->f_bavail = sv->f_bfree;
	sv->f_files = s.files + 1000000;
	sv->f_ffree = 1000000;
	sv->f_favail = sv->f_ffree;
	sv->f_namemax = LAMFS_NAME_MAX;
	return 0;
}

static void *lamfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* No atomic O_TRUNC: with it the kernel sets the shared inode's size to 0
	 * at open, under any reader of the committed version.  Without it the
	 * kernel opens, then truncates by name, which lands on this writer's
	 * stage (see lamfs_truncate) and answers with the committed size. */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	cfg->use_ino = 0;
	cfg->hard_remove = 1;     /* unlink of an open file: our handle keeps its stage */
	struct fs *fs = fuse_get_context()->private_data;

	/* Names and attributes are cached for cache_timeout; what this mount
	 * changes behind the kernel's back is invalidated (cache_drop).  No
	 * negative caching: a file committed elsewhere, or whose write-back
	 * upload finished, appears at once. */
	cfg->entry_timeout = fs->cache_timeout;
	cfg->attr_timeout = fs->cache_timeout;
	cfg->negative_timeout = 0;
	return fs;
}

static const struct fuse_operations lamfs_ops = {
	.init = lamfs_init,
	.getattr = lamfs_getattr,
	.opendir = lamfs_opendir,
	.readdir = lamfs_readdir,
	.releasedir = lamfs_releasedir,
	.mkdir = lamfs_mkdir,
	.rmdir = lamfs_rmdir,
	.unlink = lamfs_unlink,
	.rename = lamfs_rename,
	.symlink = lamfs_symlink,
	.link = lamfs_link,
	.mknod = lamfs_mknod,
	.chmod = lamfs_chmod,
	.chown = lamfs_chown,
	.utimens = lamfs_utimens,
	.truncate = lamfs_truncate,
	.create = lamfs_create,
	.open = lamfs_open,
	.read = lamfs_read,
	.write = lamfs_write,
	.flush = lamfs_flush,
	.fsync = lamfs_fsync,
	.release = lamfs_release,
	.getxattr = lamfs_getxattr,
	.listxattr = lamfs_listxattr,
	.setxattr = lamfs_setxattr,
	.removexattr = lamfs_removexattr,
	.statfs = lamfs_statfs,
};

/* ---- mounting ---- */

/* The daemon tells the waiting parent how the mount went: one status byte,
 * then a message. */
static void report(int fd, int ok, const char *msg)
{
	char st = ok ? 0 : 1;
	ssize_t n;

	if (fd < 0) {
		if (!ok)
			fprintf(stderr, "lamfs: %s\n", msg);
		return;
	}
	n = write(fd, &st, 1);
	if (n == 1 && msg)
		n = write(fd, msg, strlen(msg));
	(void)n;
	close(fd);
}

static int check_mountpoint(const char *mnt, char *msg, size_t msglen)
{
	struct stat st;

	if (stat(mnt, &st) != 0) {
		snprintf(msg, msglen, "mountpoint %s: %s", mnt, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(msg, msglen, "mountpoint %s is not a directory", mnt);
		return -1;
	}
	if (access("/dev/fuse", R_OK | W_OK) != 0) {
		snprintf(msg, msglen, "/dev/fuse: %s (is the fuse module loaded?)",
			 strerror(errno));
		return -1;
	}
	return 0;
}

int fs_cache_timeout_parse(const char *value, double *seconds)
{
	const char *p;
	int digits = 0, dots = 0;
	double v;

	for (p = value; *p; p++) {
		if (*p >= '0' && *p <= '9')
			digits++;
		else if (*p == '.' && !dots)
			dots++;
		else
			return -EINVAL;
	}
	if (!digits || p - value > 16)
		return -EINVAL;
	v = strtod(value, NULL);
	if (!(v >= 0 && v <= FS_CACHE_TIMEOUT_MAX))
		return -EINVAL;
	*seconds = v;
	return 0;
}

/*
 * Split the user's -o list: lamfs's own options (writeback, cache_timeout=S)
 * are taken out into *fs; the rest goes to FUSE in *rest (caller frees).
 * 0, -EINVAL (a bad value, told in msg) or -ENOMEM.
 */
static int opts_split(const char *in, char **rest, int *writeback, struct fs *fs,
		      char *msg, size_t msglen)
{
	char *copy = strdup(in ? in : ""), *tok, *save = NULL;
	size_t len = 0;
	int rc = 0;

	*writeback = 0;
	fs->cache_timeout = FS_CACHE_TIMEOUT_DEFAULT;
	*rest = calloc(1, strlen(in ? in : "") + 1);
	if (!copy || !*rest) {
		rc = -ENOMEM;
		snprintf(msg, msglen, "out of memory");
		goto out;
	}
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "writeback")) {
			*writeback = 1;
			continue;
		}
		if (!strncmp(tok, "cache_timeout=", 14)) {
			if (fs_cache_timeout_parse(tok + 14, &fs->cache_timeout) < 0) {
				snprintf(msg, msglen, "invalid cache_timeout '%.40s' (seconds, "
					 "0 to %.0f)", tok + 14, FS_CACHE_TIMEOUT_MAX);
				rc = -EINVAL;
				goto out;
			}
			continue;
		}
		len += (size_t)sprintf(*rest + len, "%s%s", len ? "," : "", tok);
	}
out:
	free(copy);
	return rc;
}

/* Write-back: an upload committed; its key now shows the new version (an
 * older one was shown, and maybe cached, while it was uploading). */
static void upload_done(void *arg, const char *uid)
{
	struct fs *fs = arg;
	struct lamfs_record rec;

	if (fs->inval && core_version(fs->core, uid, &rec) == 0)
		cache_drop(fs, rec.key, 0);
}

/* The root's owner and time (see root_attrs()). */
static void root_init(struct fs *fs)
{
	char path[PATH_MAX];
	struct stat st;

	fs->root_uid = getuid();
	fs->root_gid = getgid();
	snprintf(path, sizeof(path), "%s/lamfs.conf", core_instance_dir(fs->core));
	if (stat(path, &st) == 0)
		fs->root_mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
}

/* Build FUSE's argv: our fixed options, then the user's (lamfs's own removed). */
static int fuse_args_build(struct fuse_args *args, const struct fs_mount_opts *o,
			   const char *user_opts)
{
	char *opt = NULL, *src = NULL;
	size_t i, n = 0;
	int rc = 0;

	/* The source is the instance directory itself, as fstab names it, so
	 * that mount -a and systemd see the instance is mounted and skip it.
	 * fuse_opt splits at ',' unless escaped with '\\'. */
	src = malloc(2 * strlen(o->instance) + 1);
	if (!src)
		return -ENOMEM;
	for (i = 0; o->instance[i]; i++) {
		if (o->instance[i] == ',' || o->instance[i] == '\\')
			src[n++] = '\\';
		src[n++] = o->instance[i];
	}
	src[n] = '\0';
	if (asprintf(&opt, "fsname=%s,subtype=lamfs,default_permissions%s%s", src,
		     *user_opts ? "," : "", user_opts) < 0)
		opt = NULL;
	free(src);
	if (!opt)
		return -ENOMEM;
	if (fuse_opt_add_arg(args, "lamfs") || fuse_opt_add_arg(args, "-o") ||
	    fuse_opt_add_arg(args, opt))
		rc = -ENOMEM;
	if (rc == 0 && o->debug && fuse_opt_add_arg(args, "-d"))
		rc = -ENOMEM;
	free(opt);
	return rc;
}

/* Every pending write-back upload keeps its staging file open (its lock),
 * so take all the descriptors the hard limit allows. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* How long an unmount waits for write-back uploads (LAMFS_DRAIN_TIMEOUT, s). */
static int drain_seconds(void)
{
	const char *v = getenv("LAMFS_DRAIN_TIMEOUT");
	int n = v ? atoi(v) : 0;

	return n > 0 ? n : 600;
}

/* Open the instance, mount, report to the parent (fd), serve until unmounted. */
static int serve(const struct fs_mount_opts *o, int report_fd)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config lc = { .clone_fd = 0, .max_idle_threads = 10 };
	struct fs fs = { 0 };
	struct lease *lease = NULL;
	struct meta_lease blocker;
	struct fuse *fuse = NULL;
	char *err = NULL, *user_opts = NULL;
	char msg[512];
	int rc, mounted = 0, status = 1, writeback = 0;

	pthread_mutex_init(&fs.lock, NULL);
	raise_fd_limit();
	rc = core_open(o->instance, CORE_READ_CACHE, &fs.core, &err);
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "%s", err ? err : strerror(-rc));
		goto out;
	}
	rc = core_lock(fs.core, 0);
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "%s: %s", o->instance,
			 rc == -EBUSY ? "lamfs-repair is working on this instance; try again "
					"when it is done" : strerror(-rc));
		goto out;
	}
	rc = lease_start(fs.core, META_LEASE_MOUNT, o->mountpoint, 0, &lease, &blocker);
	if (rc < 0) {
		char who[600];

		lease_describe(&blocker, who, sizeof(who));
		if (rc == -EBUSY)
			snprintf(msg, sizeof(msg), "%s: lamfs-repair is working on this instance "
				 "(%.300s); try again when it is done", o->instance, who);
		else
			snprintf(msg, sizeof(msg), "%s: cannot take a lease in the metadata "
				 "store: %s", o->instance, strerror(-rc));
		goto out;
	}
	{
		unsigned adopted = 0, swept = 0;

		/* First the bytes of saves whose flagged record was committed just
		 * before their writer died, then what is left of the dead writers. */
		if (core_staging_adopt(fs.core, &adopted) == 0 && adopted)
			log_info("staging: found the staged bytes of %u interrupted save(s)", adopted);
		if (core_staging_sweep(fs.core, &swept) == 0 && swept)
			log_info("staging: removed %u files left by writers that died", swept);
	}
	root_init(&fs);
	if (opts_split(o->fuse_opts, &user_opts, &writeback, &fs, msg, sizeof(msg)) < 0)
		goto out;
	if (fuse_args_build(&args, o, user_opts) < 0) {
		snprintf(msg, sizeof(msg), "out of memory");
		goto out;
	}
	fuse = fuse_new(&args, &lamfs_ops, sizeof(lamfs_ops), &fs);
	if (!fuse) {
		snprintf(msg, sizeof(msg), "invalid mount options '%s'",
			 o->fuse_opts ? o->fuse_opts : "");
		goto out;
	}
	/* before the queue: its workers report finished uploads to it */
	if (fs.cache_timeout > 0 && (rc = inval_start(fuse, &fs.inval)) < 0) {
		snprintf(msg, sizeof(msg), "cannot start the invalidation thread: %s",
			 strerror(-rc));
		goto out;
	}
	if (fs.cache_timeout > 0 && !(fs.stale = calloc(STALE_MAX, sizeof(*fs.stale)))) {
		snprintf(msg, sizeof(msg), "out of memory");
		goto out;
	}
	if (writeback) {
		unsigned n = 0;

		rc = upq_start(fs.core, &fs.upq);
		if (rc == 0) {
			upq_set_done_hook(fs.upq, upload_done, &fs);
			rc = upq_resume(fs.upq, &n);
		}
		if (rc < 0) {
			snprintf(msg, sizeof(msg), "cannot start the write-back queue: %s",
				 strerror(-rc));
			goto out;
		}
		if (n)
			log_info("write-back: resuming %u pending uploads", n);
	}
	if (core_files_new(fs.core, fs.upq, &fs.files) < 0) {
		snprintf(msg, sizeof(msg), "out of memory");
		goto out;
	}
	if (fuse_mount(fuse, o->mountpoint) != 0) {
		snprintf(msg, sizeof(msg), "cannot mount on %s (see the messages above)",
			 o->mountpoint);
		goto out;
	}
	mounted = 1;
	if (fuse_set_signal_handlers(fuse_get_session(fuse)) != 0) {
		snprintf(msg, sizeof(msg), "cannot set signal handlers");
		goto out;
	}
	log_info("mounted %s on %s", o->instance, o->mountpoint);
	report(report_fd, 1, NULL);
	report_fd = -1;
	status = fuse_loop_mt(fuse, &lc) == 0 ? 0 : 1;
	fuse_remove_signal_handlers(fuse_get_session(fuse));
	log_info("unmounted %s", o->mountpoint);
	if (fs.upq && upq_pending(fs.upq)) {
		long ms = 1000L * (long)drain_seconds();

		log_info("write-back: waiting up to %ld s for %u pending uploads", ms / 1000,
			 upq_pending(fs.upq));
		if (upq_drain(fs.upq, ms) < 0) {
			log_err("write-back: %u uploads still pending at exit; they stay staged "
				"and resume at the next mount (or run lamfs-repair)",
				upq_pending(fs.upq));
			status = 1;
		}
	}
out:
	upq_stop(fs.upq);
	inval_stop(fs.inval);
	lease_stop(lease);
	if (report_fd >= 0 || (status != 0 && !mounted))
		report(report_fd, 0, msg);
	if (mounted)
		fuse_unmount(fuse);
	if (fuse)
		fuse_destroy(fuse);
	fuse_opt_free_args(&args);
	core_files_free(fs.files);
	core_close(fs.core);
	free(fs.stale);
	free(err);
	free(user_opts);
	pthread_mutex_destroy(&fs.lock);
	return status;
}

/* Parent side: wait for the daemon's report; print its message on failure. */
static int wait_report(int fd)
{
	char buf[600];
	ssize_t n, got = 0;

	while ((n = read(fd, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	if (got <= 0) {
		fprintf(stderr, "lamfs: the daemon exited before the mount was ready\n");
		return 1;
	}
	buf[got] = '\0';
	if (buf[0] != 0) {
		fprintf(stderr, "lamfs: %s\n", buf + 1);
		return 1;
	}
	return 0;
}

static void daemon_stdio(const char *logpath)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	int lfd = logpath ? open(logpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : -1;

	/* stderr goes to the log too: what libfuse or a sanitizer says is kept */
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(lfd >= 0 ? lfd : fd, 2);
		if (fd > 2)
			close(fd);
	}
	if (lfd > 2)
		close(lfd);
	if (logpath)
		log_open(logpath);
}

int fs_mount_main(const struct fs_mount_opts *o)
{
	struct core *c = NULL;
	char *err = NULL, *logpath = NULL;
	char msg[512];
	int pfd[2], rc;
	pid_t pid;

	if (check_mountpoint(o->mountpoint, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "lamfs: %s\n", msg);
		return 1;
	}
	/* Check the instance here, where the user sees the message. */
	rc = core_open(o->instance, CORE_READONLY, &c, &err);
	if (rc < 0) {
		fprintf(stderr, "lamfs: %s\n", err ? err : strerror(-rc));
		free(err);
		return 1;
	}
	if (asprintf(&logpath, "%s/lamfs.log", core_instance_dir(c)) < 0)
		logpath = NULL;
	core_close(c);
	if (o->foreground || o->debug) {
		rc = serve(o, -1);
		free(logpath);
		return rc;
	}
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		perror("lamfs: pipe");
		free(logpath);
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("lamfs: fork");
		free(logpath);
		return 1;
	}
	if (pid > 0) {
		close(pfd[1]);
		free(logpath);
		return wait_report(pfd[0]);
	}
	close(pfd[0]);
	setsid();
	if (chdir("/") != 0)
		_exit(1);
	daemon_stdio(logpath);
	free(logpath);
	_exit(serve(o, pfd[1]));
}
