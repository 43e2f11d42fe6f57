/*
 * stage.c — staging files: the private, writable copy of a key's next content.
 *
 * Bytes stream into a file in the instance's staging folder and into the
 * hashes at the same time; an out-of-order write or a truncate only marks the
 * streamed hash stale, and the save re-hashes from the file then.  Once a
 * stream is past STAGE_FOLLOW_MIN, a follower thread (hash.h) hashes it from
 * the file behind the writer, so a big sequential write is not slowed down by
 * sha256 and md5 in the write handler; anything but the next in-order write
 * first lets the follower catch up and stop.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "core_internal.h"
#include "key.h"
#include "log.h"

#define STAGE_COPY_BUF (1u << 20)
/* Streams shorter than this are hashed inline: a thread costs more than
 * hashing a small file. */
#define STAGE_FOLLOW_MIN (4u << 20)

/* Hand the hash back from the follower, if any: with `complete`, once it has
 * caught up with every byte written; else at once (the streamed hash is then
 * stale).  A follower that failed to read leaves it stale too. */
static void stage_unfollow(struct core_stage *s, int complete)
{
	int rc;

	if (!s->follow)
		return;
	rc = hash_follow_stop(s->follow, complete);
	s->follow = NULL;
	if (rc < 0 || !complete)
		s->hash_ok = 0;
}

/* Feed the in-order bytes just written at off (hash_fed(s->h) == off == the
 * old size): inline, or to the follower, started once the stream is long. */
static void stage_feed(struct core_stage *s, const void *buf, size_t len, uint64_t off)
{
	if (!s->follow && off + len >= STAGE_FOLLOW_MIN &&
	    hash_follow_start(s->h, s->fd, &s->follow) < 0)
		s->follow = NULL;   /* no thread: hash inline */
	if (s->follow)
		hash_follow_extend(s->follow, off + len);
	else
		hash_update(s->h, buf, len);
}

int stage_create_file(struct core_stage *s)
{
	int rc = 0;
	int n = snprintf(s->path, sizeof(s->path), "%s/w.XXXXXX", s->c->cfg.staging_dir);

	if (n < 0 || (size_t)n >= sizeof(s->path))
		return -ENAMETOOLONG;
	s->fd = mkostemp(s->path, O_CLOEXEC);
	if (s->fd < 0) {
		rc = -errno;
		s->path[0] = '\0';
		log_err("staging: cannot create a file in %s: %s", s->c->cfg.staging_dir,
			strerror(errno));
	} else if (flock(s->fd, LOCK_EX | LOCK_NB) != 0) {
		/* Ours alone, just made: cannot be busy.  The lock tells
		 * core_staging_sweep() a live process owns the file. */
		log_warn("staging: cannot lock %s: %s", s->path, strerror(errno));
	}
	return rc;
}

static void stage_drop_file(struct core_stage *s)
{
	stage_unfollow(s, 0);
	if (s->fd >= 0)
		close(s->fd);
	if (s->path[0] && !s->spent)
		unlink(s->path);
	s->fd = -1;
	s->path[0] = '\0';
}

/*
 * Copy the staged bytes of a save whose write-back upload is still pending
 * (INSTANCE/staging/<uid>) into s.  Copied, never linked: the queue may link
 * that file into storage.  -ENOENT when there is none.
 */
static int stage_fill_staged(struct core_stage *s, const struct lamfs_record *rec)
{
	char path[4096];
	char *buf = NULL;
	uint64_t off = 0;
	ssize_t n, w;
	int fd, rc = 0;

	core_staging_path(s->c, rec->uid, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(STAGE_COPY_BUF);
	if (!buf)
		rc = -ENOMEM;
	while (rc == 0 && (n = pread(fd, buf, STAGE_COPY_BUF, (off_t)off)) != 0) {
		if (n < 0) {
			rc = errno == EINTR ? 0 : -errno;
			continue;
		}
		w = core_stage_write(s, buf, (size_t)n, off);
		rc = w < 0 ? (int)w : 0;
		off += (uint64_t)n;
	}
	if (rc == 0 && (int64_t)off != rec->size)
		rc = -EIO;
	if (rc == 0) {
		s->base = *rec;
		s->have_base = 1;
		s->dirty = 0;
	}
	free(buf);
	close(fd);
	return rc;
}

int stage_fill_from(struct core_stage *s, const struct lamfs_record *rec)
{
	char obj[LAMFS_OBJ_MAX];
	struct backend_reader *r = NULL;
	char *buf = NULL;
	uint64_t size = 0, off = 0;
	size_t got;
	ssize_t w;
	int rc;

	key_object(rec->uid, rec->suffix, obj, sizeof(obj));
	rc = backend_reader_open(s->c->backend, obj, &r, &size);
	if (rc == -ENOENT) {
		rc = stage_fill_staged(s, rec); /* a write-back upload not done yet */
		goto out;
	}
	if (rc < 0)
		goto out;
	if (rec->size >= 0 && size != (uint64_t)rec->size) {
		log_err("open %s: object %s is %llu bytes, its record says %lld; lamfs-repair "
			"--verify reports it", rec->key, obj, (unsigned long long)size,
			(long long)rec->size);
		rc = -EIO;
		goto out;
	}
	buf = malloc(STAGE_COPY_BUF);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	while (off < size) {
		rc = backend_reader_pread(r, buf, STAGE_COPY_BUF, off, &got);
		if (rc < 0)
			goto out;
		if (got == 0) {
			rc = -EIO; /* object shorter than it said */
			goto out;
		}
		w = core_stage_write(s, buf, got, off);
		if (w < 0) {
			rc = (int)w;
			goto out;
		}
		off += got;
	}
	s->base = *rec;
	s->have_base = 1;
	s->dirty = 0;
out:
	if (r)
		backend_reader_close(r);
	free(buf);
	return rc;
}

int core_stage_open(struct core *c, const struct lamfs_record *base, struct core_stage **out)
{
	struct core_stage *s = calloc(1, sizeof(*s));
	int rc = 0;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->c = c;
	s->fd = -1;
	s->hash_ok = 1;
	s->dirty = 1;
	rc = hash_new(&s->h);
	if (rc < 0)
		goto out;
	if (base) {
		/* Copy-on-write, lazily: the bytes are copied on the first access,
		 * and never when the first change is a truncate to 0 (O_TRUNC). */
		s->base = *base;
		s->have_base = 1;
		s->spent = 1;
		s->dirty = 0;
	} else {
		rc = stage_create_file(s);
	}
	if (rc < 0)
		goto out;
out:
	if (rc < 0)
		core_stage_free(s);
	else
		*out = s;
	return rc;
}

int stage_restore(struct core_stage *s)
{
	struct lamfs_record base = s->base;
	int rc;

	if (!s->spent)
		return 0;
	stage_unfollow(s, 0);
	s->spent = 0;
	s->fd = -1;
	s->size = 0;
	s->hash_ok = 1;
	hash_reset(s->h);
	rc = stage_create_file(s);
	if (rc == 0)
		rc = stage_fill_from(s, &base);
	if (rc < 0) {
		stage_drop_file(s);
		s->spent = 1; /* still described by base; try again on the next access */
		s->base = base;
	}
	return rc;
}

ssize_t core_stage_write(struct core_stage *s, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t n;
	int rc = stage_restore(s);

	if (rc < 0)
		return rc;
	if (s->follow && off != s->size)
		stage_unfollow(s, 1);   /* not the next in-order write */
	while (done < len) {
		n = pwrite(s->fd, (const char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	if (s->hash_ok && off == s->size && (s->follow || off == hash_fed(s->h)))
		stage_feed(s, buf, len, off);
	else
		s->hash_ok = 0;
	if (off + len > s->size)
		s->size = off + len;
	s->dirty = 1;
	return (ssize_t)len;
}

ssize_t core_stage_pread(struct core_stage *s, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t n;
	int rc = stage_restore(s);

	if (rc < 0)
		return rc;
	while (done < len) {
		n = pread(s->fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int core_stage_truncate(struct core_stage *s, uint64_t size)
{
	int rc = 0;

	stage_unfollow(s, 1);
	if (s->spent && size == 0) {
		/* Nothing of the old bytes is needed: start empty. */
		s->spent = 0;
		s->size = 0;
		s->hash_ok = 1;
		hash_reset(s->h);
		rc = stage_create_file(s);
		if (rc < 0) {
			s->spent = 1;
			return rc;
		}
	}
	rc = stage_restore(s);

	if (rc < 0)
		return rc;
	if (ftruncate(s->fd, (off_t)size) != 0)
		return -errno;
	if (size != s->size) {
		if (size < hash_fed(s->h) || size > s->size)
			s->hash_ok = 0;
		s->size = size;
	}
	s->dirty = 1;
	return 0;
}

int core_stage_materialize(struct core_stage *s)
{
	return stage_restore(s);
}

uint64_t core_stage_size(const struct core_stage *s)
{
	return s->spent ? (uint64_t)s->base.size : s->size;
}

int core_stage_dirty(const struct core_stage *s)
{
	return s->dirty;
}

int stage_hash(struct core_stage *s, struct hash_result *res)
{
	stage_unfollow(s, 1);
	if (s->hash_ok && hash_fed(s->h) == s->size)
		return hash_finish(s->h, s->fd, res);
	return hash_fd(s->fd, res);
}

void core_stage_free(struct core_stage *s)
{
	if (!s)
		return;
	stage_drop_file(s);   /* stops the follower first */
	hash_free(s->h);
	free(s);
}
