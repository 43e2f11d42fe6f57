/*
 * local.c — the local directory backend.
 *
 * Objects are files under the storage root, named as given
 * (".lamindb/<uid><suffix>").  Every operation works relative to a directory
 * fd of the root (openat, renameat, ...), so the handle holds no mutable
 * state but the dir_sync below (its own lock), and is thread-safe.
 *
 * put is atomic and durable: the bytes reach the final name only by rename(2)
 * from a complete, fsynced file, and the directory is fsynced after it (one
 * fsync shared by the puts and removes running at the time).  A
 * staging file on the same file system is hard-linked in (to a temporary, then
 * renamed) when the caller allows it, so no byte is copied; otherwise it is
 * copied into "<root>/.lamindb/.tmp.<name>.<rand>" first.  Temporaries left by a
 * crash are found by cleanup_incomplete.
 *
 * Errors keep the errno of the failing system call, except EROFS, which
 * becomes EACCES: a read-only storage root denies the upload, and lamfs
 * reports denied uploads as EACCES/EPERM.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backend.h"
#include "fault.h"
#include "lamfs.h"
#include "log.h"
#include "uid.h"

#define LOCAL_TMP_PREFIX ".tmp."
#define LOCAL_KEY_XATTR "user.lamfs.key"   /* the key kept with an object */
#define LOCAL_IO_SIZE (1024 * 1024)
#define LOCAL_LIST_DEPTH 16

/*
 * Concurrent puts and removes in the .lamindb folder share its fsync: a
 * thread that needs the folder durable after its rename or unlink either
 * runs the fsync or waits for one that started after its change (which
 * covers it), so N writers at once make about 2 folder fsyncs, not N.
 */
struct dir_sync {
	pthread_mutex_t lock;
	pthread_cond_t done;     /* a fsync ended */
	uint64_t asked;          /* changes that asked, numbered 1, 2, ... */
	uint64_t synced;         /* changes up to this one are durable */
	uint64_t failed;         /* the last failed fsync covered changes up to this */
	int failed_rc;           /* and said this */
	int running;             /* a fsync is running */
};

struct local_backend {
	struct backend base;     /* first: a struct backend * points here */
	char *root;              /* the storage root as opened */
	int root_fd;             /* O_DIRECTORY fd of root; read-only after open */
	struct dir_sync sync;    /* for the .lamindb folder */
};

struct local_reader {
	struct backend_reader base;  /* first */
	int fd;
};

static const struct backend_ops local_ops;

/* Downcast, checking the handle really is a local backend. */
static struct local_backend *local_of(struct backend *b)
{
	assert(b && b->ops == &local_ops);
	return (struct local_backend *)b;
}

static struct local_reader *local_reader_of(struct backend_reader *r)
{
	assert(r && r->b && r->b->ops == &local_ops);
	return (struct local_reader *)r;
}

/* -errno of the last failed call, with the EROFS mapping described above. */
static int local_err(void)
{
	return errno == EROFS ? -EACCES : -errno;
}

/* Split obj into its parent directory (relative to root, "." at the top)
 * and its base name; 0 or -ENAMETOOLONG. */
static int obj_split(const char *obj, char dir[PATH_MAX], const char **base)
{
	const char *slash = strrchr(obj, '/');
	size_t len = slash ? (size_t)(slash - obj) : 0;
	int rc = 0;

	if (len >= PATH_MAX) {
		rc = -ENAMETOOLONG;
	} else if (slash) {
		memcpy(dir, obj, len);
		dir[len] = '\0';
		*base = slash + 1;
	} else {
		strcpy(dir, ".");
		*base = obj;
	}
	return rc;
}

/* Open the directory `dir` under the root; fd or -errno. */
static int local_open_dir(struct local_backend *lb, const char *dir)
{
	int fd = openat(lb->root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	return fd < 0 ? local_err() : fd;
}

/* fsync a directory fd so renames and unlinks in it are durable. */
static int fsync_dir(int dfd)
{
	int rc = 0;

	if (fsync(dfd) < 0 && errno != EINVAL)   /* EINVAL: fs without dir fsync */
		rc = local_err();
	return rc;
}

/* fsync_dir for a change just made in the folder dfd: shared with the
 * other threads' changes when g is its dir_sync, alone when g is NULL. */
static int fsync_dir_shared(struct dir_sync *g, int dfd)
{
	uint64_t mine, upto;
	int rc;

	if (!g) {
		rc = fsync_dir(dfd);
		goto out;
	}
	pthread_mutex_lock(&g->lock);
	mine = ++g->asked;
	while (g->synced < mine && g->failed < mine) {
		if (g->running) {
			pthread_cond_wait(&g->done, &g->lock);
			continue;
		}
		/* Every change numbered up to `upto` was made before this fsync
		 * starts, so it covers them all. */
		g->running = 1;
		upto = g->asked;
		pthread_mutex_unlock(&g->lock);
		rc = fsync_dir(dfd);
		pthread_mutex_lock(&g->lock);
		g->running = 0;
		if (rc == 0) {
			g->synced = upto;
		} else {
			g->failed = upto;
			g->failed_rc = rc;
		}
		pthread_cond_broadcast(&g->done);
	}
	rc = g->synced >= mine ? 0 : g->failed_rc;
	pthread_mutex_unlock(&g->lock);
out:
	return rc;
}

/* The dir_sync for folder `dir` of the root: .lamindb's, or none. */
static struct dir_sync *dir_sync_of(struct local_backend *lb, const char *dir)
{
	return strcmp(dir, LAMFS_STORAGE_DIR) == 0 ? &lb->sync : NULL;
}

/* Copy len bytes from in at *off to out by read/write; src->on_read (when
 * set) sees every chunk read, in order. */
static int copy_rw(int in, int out, uint64_t *off, uint64_t len, const struct backend_src *src)
{
	char *buf = malloc(LOCAL_IO_SIZE);
	int rc = buf ? 0 : -ENOMEM;

	while (rc == 0 && len > 0) {
		size_t want = len < LOCAL_IO_SIZE ? (size_t)len : LOCAL_IO_SIZE;
		ssize_t n = pread(in, buf, want, (off_t)*off);
		ssize_t w = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? local_err() : -EIO;   /* staging shorter than its size */
			break;
		}
		if (src && src->on_read)
			src->on_read(src->on_read_ctx, buf, (size_t)n);
		while (rc == 0 && w < n) {
			ssize_t k = write(out, buf + w, (size_t)(n - w));

			if (k < 0 && errno != EINTR)
				rc = local_err();
			else if (k > 0)
				w += k;
		}
		*off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	free(buf);
	return rc;
}

/* Copy len bytes from in at *off to out at its position: copy_file_range,
 * falling back to read/write where the kernel or file system cannot. */
static int copy_range(int in, int out, uint64_t *off, uint64_t len,
		      const struct backend_src *src)
{
	int rc = 0;

	/* Whoever wants to see the bytes gets them through read/write. */
	if (src->on_read)
		return copy_rw(in, out, off, len, src);
	while (rc == 0 && len > 0) {
		loff_t o = (loff_t)*off;
		size_t want = len < (1u << 30) ? (size_t)len : (1u << 30);
		ssize_t n = copy_file_range(in, &o, out, NULL, want, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
			      errno == EOPNOTSUPP || errno == EBADF)) {
			rc = copy_rw(in, out, off, len, NULL);
			break;
		}
		if (n <= 0) {
			rc = n < 0 ? local_err() : -EIO;   /* staging shorter than its size */
			break;
		}
		*off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return rc;
}

/* Write src into the open temporary tfd: the first half, the fault point
 * "backend.put.mid", the second half, then fsync and close. */
static int fill_temp(int tfd, const struct backend_src *src)
{
	uint64_t off = 0;
	uint64_t half = src->size / 2;
	int rc = copy_range(src->fd, tfd, &off, half, src);

	if (rc == 0)
		rc = fault_check("backend.put.mid");
	if (rc == 0)
		rc = copy_range(src->fd, tfd, &off, src->size - half, src);
	if (rc == 0 && fsync(tfd) < 0)
		rc = local_err();
	return rc;
}

static int temp_name(const char *base, char tmp[NAME_MAX + 1]);

/* Keep the artifact's key with the object (backend_src.key); best effort: a
 * file system without user xattrs just does not keep it. */
static void key_attach(int fd, const struct backend_src *src)
{
	if (src->key && fsetxattr(fd, LOCAL_KEY_XATTR, src->key, strlen(src->key), 0) < 0 &&
	    errno != ENOTSUP)
		log_debug("local: keeping the key with the object: %s", strerror(errno));
}

/*
 * Give the finished temporary tmp the name base, never replacing an object
 * already there (renameat2 RENAME_NOREPLACE; linkat where the file system
 * has no such rename).  An existing base that is the same inode or holds the
 * same bytes counts as done (*same = 2 for the same inode, 1 for a copy;
 * tmp left for the caller to remove);
 * other bytes: -EEXIST.
 */
static int place_noreplace(struct backend *b, const char *obj, int dfd, const char *tmp,
			   const char *base, const struct backend_src *src, int *same)
{
	struct stat a, t;
	int rc = 0;

	*same = 0;
	if (renameat2(dfd, tmp, dfd, base, RENAME_NOREPLACE) == 0)
		goto out;
	if (errno == EINVAL || errno == ENOSYS) {
		if (linkat(dfd, tmp, dfd, base, 0) == 0) {
			unlinkat(dfd, tmp, 0);
			goto out;
		}
	}
	rc = local_err();
	if (rc != -EEXIST)
		goto out;
	if (fstatat(dfd, base, &a, AT_SYMLINK_NOFOLLOW) == 0 &&
	    fstatat(dfd, tmp, &t, AT_SYMLINK_NOFOLLOW) == 0 && a.st_ino == t.st_ino &&
	    a.st_dev == t.st_dev) {
		*same = 2;              /* a resumed save: the object is this inode */
		rc = 0;
		goto out;
	}
	rc = backend_same_content(b, obj, src);
	if (rc == 1) {
		*same = 1;
		rc = 0;
	} else if (rc == 0) {
		log_err("local: %s exists with other bytes; not replaced (saved after the "
			"metadata backup this instance was restored from? lamfs-repair lists "
			"such objects)", obj);
		rc = -EEXIST;
	}
out:
	return rc;
}

/* Put by copying into a temporary in dfd and renaming it to base; g: the
 * folder's dir_sync or NULL. */
static int put_copy(struct backend *b, const char *obj, struct dir_sync *g, int dfd, const char *base,
		    const struct backend_src *src)
{
	char tmp[NAME_MAX + 1];
	int tfd = -1;
	int created = 0, same = 0;
	int rc = temp_name(base, tmp);

	if (rc < 0)
		goto out;
	tfd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (tfd < 0) {
		rc = local_err();
		goto out;
	}
	created = 1;
	rc = fill_temp(tfd, src);
	if (rc == 0)
		key_attach(tfd, src);
	if (close(tfd) < 0 && rc == 0)
		rc = local_err();
	tfd = -1;
	if (rc == 0)
		rc = place_noreplace(b, obj, dfd, tmp, base, src, &same);
	if (rc == 0 && same)
		goto out;               /* stored already; tmp goes below */
	if (rc == 0) {
		created = 0;
		rc = fsync_dir_shared(g, dfd);
		if (rc < 0)
			unlinkat(dfd, base, 0);   /* not durable: leave nothing */
	}
out:
	if (tfd >= 0)
		close(tfd);
	if (created)
		unlinkat(dfd, tmp, 0);
	return rc;
}

/* 1 when the staging file can be linked into dfd: same file system. */
static int can_consume(int dfd, const struct backend_src *src)
{
	struct stat ss, ds;

	return src->may_consume && src->path && fstat(src->fd, &ss) == 0 &&
	       fstat(dfd, &ds) == 0 && ss.st_dev == ds.st_dev;
}

/* Temporary name for base in the .lamindb folder: ".tmp.<base>.<random>". */
static int temp_name(const char *base, char tmp[NAME_MAX + 1])
{
	char rnd[LAMFS_UID_LEN + 1];
	int rc = uid_new(rnd);

	/* Long names are cut so the temporary's name stays within NAME_MAX;
	 * the random part keeps it unique. */
	if (rc == 0)
		snprintf(tmp, NAME_MAX + 1, "%s%.*s.%.*s", LOCAL_TMP_PREFIX,
			 NAME_MAX - (int)(sizeof(LOCAL_TMP_PREFIX) - 1) - 1 - LAMFS_STEM_LEN,
			 base, LAMFS_STEM_LEN, rnd);
	return rc;
}

/*
 * Put by hard-linking the staging file in: link to a temporary, rename that
 * over base, fsync the folder.  No byte is copied, and the staging name stays,
 * so a caller whose save fails later can remove the object and still hold its
 * bytes.  -EXDEV when linking is impossible (the caller copies instead).
 */
static int put_consume(struct backend *b, const char *obj, struct dir_sync *g, int dfd, const char *base,
		       const struct backend_src *src, int *consumed)
{
	char tmp[NAME_MAX + 1];
	int linked = 0, same = 0;
	int rc = temp_name(base, tmp);

	/* The object is this inode: its bytes must be durable before the
	 * name is, unless the caller synced them already (core's save sequence
	 * does, before the flagged record commits). */
	if (rc == 0 && !src->synced && fsync(src->fd) < 0)
		rc = local_err();
	if (rc == 0)
		key_attach(src->fd, src);
	if (rc == 0 && linkat(AT_FDCWD, src->path, dfd, tmp, 0) < 0)
		rc = (errno == EPERM || errno == EMLINK || errno == EXDEV) ? -EXDEV : local_err();
	if (rc == 0) {
		linked = 1;
		rc = fault_check("backend.put.mid");
	}
	if (rc == 0)
		rc = place_noreplace(b, obj, dfd, tmp, base, src, &same);
	if (rc == 0 && same) {
		/* base already holds these bytes (a resumed save whose object was
		 * stored before a crash): nothing to name, tmp goes below.  It is
		 * the staging inode (consumed) when it was linked in before. */
		*consumed = same == 2;
		goto out;
	}
	if (rc == 0) {
		linked = 0;
		*consumed = 1;
		rc = fsync_dir_shared(g, dfd);
		if (rc < 0) {
			unlinkat(dfd, base, 0);   /* not durable: leave nothing */
			*consumed = 0;
		}
	}
out:
	if (linked)
		unlinkat(dfd, tmp, 0);
	return rc;
}

static int local_put(struct backend *b, const char *obj, const struct backend_src *src,
		     int *consumed)
{
	struct local_backend *lb = local_of(b);
	char dir[PATH_MAX];
	const char *base = NULL;
	int dfd = -1;
	int rc = obj_split(obj, dir, &base);

	*consumed = 0;
	if (rc < 0)
		goto out;
	dfd = local_open_dir(lb, dir);
	if (dfd < 0) {
		rc = dfd;
		goto out;
	}
	rc = -EXDEV;
	if (can_consume(dfd, src))
		rc = put_consume(b, obj, dir_sync_of(lb, dir), dfd, base, src, consumed);
	if (rc == -EXDEV)   /* not allowed, other fs, or a bind mount in between */
		rc = put_copy(b, obj, dir_sync_of(lb, dir), dfd, base, src);
out:
	if (dfd >= 0)
		close(dfd);
	if (rc < 0)
		log_warn("local %s: put %s failed: %s", lb->root, obj, strerror(-rc));
	return rc;
}

static int local_reader_open(struct backend *b, const char *obj, struct backend_reader **out,
			     uint64_t *size)
{
	struct local_backend *lb = local_of(b);
	struct local_reader *r = NULL;
	struct stat st;
	int rc = 0;
	int fd = openat(lb->root_fd, obj, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = S_ISDIR(st.st_mode) ? -EISDIR : -EIO;
		goto out;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		rc = -ENOMEM;
		goto out;
	}
	r->base.b = b;
	r->fd = fd;
	fd = -1;
	*size = (uint64_t)st.st_size;
	*out = &r->base;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

static int local_reader_pread(struct backend_reader *br, void *buf, size_t len, uint64_t off,
			      size_t *got)
{
	struct local_reader *r = local_reader_of(br);
	size_t done = 0;
	int rc = 0;

	while (done < len) {
		ssize_t n = pread(r->fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = -errno;
		if (n <= 0)
			break;   /* error, or end of object */
		done += (size_t)n;
	}
	*got = done;
	return rc;
}

static void local_reader_close(struct backend_reader *br)
{
	struct local_reader *r = local_reader_of(br);

	close(r->fd);
	free(r);
}

static int local_remove(struct backend *b, const char *obj)
{
	struct local_backend *lb = local_of(b);
	char dir[PATH_MAX];
	const char *base = NULL;
	int dfd = -1;
	int rc = obj_split(obj, dir, &base);

	if (rc < 0)
		goto out;
	dfd = local_open_dir(lb, dir);
	if (dfd < 0) {
		rc = dfd;
		goto out;
	}
	if (unlinkat(dfd, base, 0) < 0)
		rc = local_err();
	else
		rc = fsync_dir_shared(dir_sync_of(lb, dir), dfd);
out:
	if (dfd >= 0)
		close(dfd);
	return rc;
}

static int local_stat(struct backend *b, const char *obj, uint64_t *size)
{
	struct local_backend *lb = local_of(b);
	struct stat st;
	int rc = 0;

	if (fstatat(lb->root_fd, obj, &st, 0) < 0)
		rc = -errno;
	else if (!S_ISREG(st.st_mode))
		rc = S_ISDIR(st.st_mode) ? -EISDIR : -EIO;
	else
		*size = (uint64_t)st.st_size;
	return rc;
}

/* One listing: the callback, and the name filter for the first level. */
struct local_walk {
	backend_list_cb cb;
	void *ctx;
	const char *prefix;      /* whole prefix, relative to the root */
};

/*
 * Report every regular file in the directory dfd (named `dir` relative to
 * the root, "" for the root) whose full name starts with w->prefix, then
 * recurse into subdirectories that can still hold matches.  Closes dfd.
 * Returns 0, the callback's non-zero value, or -errno.
 */
static int walk_dir(struct local_walk *w, int dfd, const char *dir, int depth)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;
	char name[PATH_MAX];
	size_t plen = strlen(w->prefix);
	int rc = 0;

	if (!d) {
		rc = -errno;
		close(dfd);
		goto out;
	}
	while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
		struct stat st;
		size_t n;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		n = (size_t)snprintf(name, sizeof(name), "%s%s%s", dir, *dir ? "/" : "",
				     e->d_name);
		if (n >= sizeof(name) || fstatat(dirfd(d), e->d_name, &st,
						  AT_SYMLINK_NOFOLLOW) < 0)
			continue;   /* vanished meanwhile, or unnameable */
		if (S_ISREG(st.st_mode) && strncmp(name, w->prefix, plen) == 0) {
			rc = w->cb(w->ctx, name, (uint64_t)st.st_size);
		} else if (S_ISDIR(st.st_mode) && depth < LOCAL_LIST_DEPTH &&
			   (strncmp(name, w->prefix, n < plen ? n : plen) == 0)) {
			int sub = openat(dirfd(d), e->d_name,
					 O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

			if (sub >= 0)
				rc = walk_dir(w, sub, name, depth + 1);
		}
	}
	if (rc == 0 && errno != 0)
		rc = -errno;
	closedir(d);
out:
	return rc;
}

/* Lists from the deepest directory the prefix names (".lamindb" for
 * ".lamindb/" and ".lamindb/xyz"), recursing below it. */
static int local_list(struct backend *b, const char *prefix, backend_list_cb cb, void *ctx)
{
	struct local_backend *lb = local_of(b);
	struct local_walk w = { .cb = cb, .ctx = ctx, .prefix = prefix };
	const char *slash = strrchr(prefix, '/');
	char dir[PATH_MAX];
	size_t len = slash ? (size_t)(slash - prefix) : 0;
	int dfd;
	int rc = 0;

	if (len >= sizeof(dir)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	memcpy(dir, prefix, len);
	dir[len] = '\0';
	dfd = local_open_dir(lb, len ? dir : ".");
	if (dfd == -ENOENT)
		goto out;   /* nothing under a prefix that does not exist */
	if (dfd < 0) {
		rc = dfd;
		goto out;
	}
	rc = walk_dir(&w, dfd, dir, 0);
out:
	return rc;
}

/* Remove (or, on a dry run, only count) the temporaries in ".lamindb". */
static int local_cleanup_incomplete(struct backend *b, int dry_run, unsigned *n)
{
	struct local_backend *lb = local_of(b);
	struct dirent *e;
	DIR *d = NULL;
	int dfd = local_open_dir(lb, LAMFS_STORAGE_DIR);
	int rc = 0;

	*n = 0;
	if (dfd < 0) {
		rc = dfd == -ENOENT ? 0 : dfd;
		goto out;
	}
	d = fdopendir(dfd);
	if (!d) {
		rc = -errno;
		close(dfd);
		goto out;
	}
	while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, LOCAL_TMP_PREFIX, sizeof(LOCAL_TMP_PREFIX) - 1) != 0)
			continue;
		if (!dry_run && unlinkat(dirfd(d), e->d_name, 0) < 0) {
			rc = errno == ENOENT ? 0 : local_err();
			continue;
		}
		log_info("local %s: %s incomplete upload %s/%s", lb->root,
			 dry_run ? "found" : "removed", LAMFS_STORAGE_DIR, e->d_name);
		(*n)++;
	}
	if (rc == 0 && errno != 0)
		rc = -errno;
	if (rc == 0 && !dry_run && *n > 0)
		rc = fsync_dir(dirfd(d));
out:
	if (d)
		closedir(d);
	return rc;
}

static int local_space(struct backend *b, uint64_t *total, uint64_t *avail)
{
	struct local_backend *lb = local_of(b);
	struct statvfs sv;
	int rc = 0;

	if (fstatvfs(lb->root_fd, &sv) < 0) {
		rc = -errno;
	} else {
		*total = (uint64_t)sv.f_blocks * sv.f_frsize;
		*avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	}
	return rc;
}

static void local_free(struct backend *b)
{
	struct local_backend *lb = local_of(b);

	if (lb->root_fd >= 0)
		close(lb->root_fd);
	pthread_cond_destroy(&lb->sync.done);
	pthread_mutex_destroy(&lb->sync.lock);
	free(lb->root);
	free(lb->base.url);
	free(lb);
}

static const struct backend_ops local_ops = {
	.version = BACKEND_OPS_VERSION,
	.name = "local",
	.put = local_put,
	.put_noreplace = 1,
	.reader_open = local_reader_open,
	.reader_pread = local_reader_pread,
	.reader_close = local_reader_close,
	.remove = local_remove,
	.stat = local_stat,
	.list = local_list,
	.cleanup_incomplete = local_cleanup_incomplete,
	.space = local_space,
	.free = local_free,
};

/* Open the root directory into lb->root_fd, explaining failures. */
static int open_root(struct local_backend *lb, char **errmsg)
{
	int rc = 0;

	lb->root_fd = open(lb->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lb->root_fd >= 0)
		goto out;
	rc = -errno;
	if (rc == -ENOENT)
		backend_set_errmsg(errmsg, "storage root %s does not exist (check that the disk or "
				   "network share holding it is mounted and that [storage] url in "
				   "the instance's lamfs.conf names it; lamfs does not create it "
				   "again, so that it never writes to the folder under a missing "
				   "mount)", lb->root);
	else if (rc == -ENOTDIR)
		backend_set_errmsg(errmsg, "storage root %s is not a directory", lb->root);
	else
		backend_set_errmsg(errmsg, "storage root %s: %s", lb->root, strerror(-rc));
out:
	return rc;
}

/* Create "<root>/.lamindb" when missing and check that it is writable. */
static int prepare_storage_dir(struct local_backend *lb, char **errmsg)
{
	int rc = 0;

	if (mkdirat(lb->root_fd, LAMFS_STORAGE_DIR, 0700) < 0 && errno != EEXIST)
		rc = -errno;
	else if (faccessat(lb->root_fd, LAMFS_STORAGE_DIR, W_OK | X_OK, AT_EACCESS) < 0)
		rc = -errno;
	if (rc == -EACCES || rc == -EPERM || rc == -EROFS) {
		backend_set_errmsg(errmsg, "storage root %s is not writable%s", lb->root,
				   rc == -EROFS ? " (read-only file system)" : "");
		rc = -EACCES;
	} else if (rc < 0) {
		backend_set_errmsg(errmsg, "storage root %s: cannot create %s: %s", lb->root,
				   LAMFS_STORAGE_DIR, strerror(-rc));
	}
	return rc;
}

int backend_local_open(const char *root, struct backend **out, char **errmsg)
{
	struct local_backend *lb = calloc(1, sizeof(*lb));
	int rc = -ENOMEM;

	*out = NULL;
	if (errmsg)
		*errmsg = NULL;
	if (!lb)
		goto out;
	lb->root_fd = -1;
	lb->base.ops = &local_ops;
	pthread_mutex_init(&lb->sync.lock, NULL);
	pthread_cond_init(&lb->sync.done, NULL);
	lb->root = strdup(root);
	lb->base.url = strdup(root);
	if (!lb->root || !lb->base.url)
		goto out;
	rc = open_root(lb, errmsg);
	if (rc == 0)
		rc = prepare_storage_dir(lb, errmsg);
	if (rc == 0) {
		*out = &lb->base;
		lb = NULL;
	}
out:
	if (rc == -ENOMEM)
		backend_set_errmsg(errmsg, "out of memory");
	if (lb)
		local_free(&lb->base);
	return rc;
}
