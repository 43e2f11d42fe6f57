/*
 * open.c — the open files of a mount: writers, readers, and when they save
 * (contract in open.h).
 */
#include "open.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h"
#include "key.h"
#include "log.h"
#include "upq.h"

struct core_file {
	struct core_files *t;
	pthread_mutex_t lock;        /* guards stage, reader, attrs, rec, error */
	int refs;                    /* t.lock */
	struct core_file *next;      /* live-writer list; t.lock */
	struct core_file *prev;
	char key[LAMFS_KEY_MAX + 1]; /* t.lock (renames change it) */
	int unlinked;                /* t.lock: removed while open; discard */
	int append;
	pid_t opener;                /* process that opened it (truncate_key) */
	struct core_stage *stage;    /* writers */
	struct core_attrs attrs;     /* writers: recorded at save */
	int mtime_explicit;          /* utimens after the last write */
	int error;                   /* a write or truncate failed (-errno): the
	                                content is incomplete and is never saved;
	                                flush/fsync report it */
	int flushed;                 /* t.lock: a close() came (flush) */
	int uploading;               /* the last save went to the write-back queue */
	int touched;                 /* written or truncated through it: the next
	                                flush saves (see open.h) */
	int64_t base_id;             /* t.lock: latest committed record of key at
	                                open (0: none, -1: renamed); superseded() */
	struct core_file *shared;    /* readers served by a live writer */
	struct core_reader *reader;  /* readers of a committed version */
	struct lamfs_record rec;     /* readers: the version being read */
};

struct core_files {
	struct core *c;
	struct upq *upq;             /* write-back queue, or NULL */
	pthread_mutex_t lock;
	struct core_file *writers;   /* live writers, newest first */
	pthread_cond_t released;     /* t.lock: a writer left the list */
};

int core_files_new(struct core *c, struct upq *upq, struct core_files **out)
{
	struct core_files *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->c = c;
	t->upq = upq;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->released, NULL);
	*out = t;
	return 0;
}

void core_files_free(struct core_files *t)
{
	if (!t)
		return;
	pthread_cond_destroy(&t->released);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- the live-writer list ---- */

static struct core_file *file_new(struct core_files *t)
{
	struct core_file *f = calloc(1, sizeof(*f));

	if (f) {
		pthread_mutex_init(&f->lock, NULL);
		f->refs = 1;
		f->t = t;
	}
	return f;
}

static void file_unref_locked(struct core_file *f)
{
	if (--f->refs > 0)
		return;
	core_stage_free(f->stage);
	core_reader_close(f->reader);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static void file_unref(struct core_file *f)
{
	struct core_files *t = f->t;

	pthread_mutex_lock(&t->lock);
	file_unref_locked(f);
	pthread_mutex_unlock(&t->lock);
}

static void writer_add(struct core_files *t, struct core_file *f)
{
	pthread_mutex_lock(&t->lock);
	f->next = t->writers;
	f->prev = NULL;
	if (t->writers)
		t->writers->prev = f;
	t->writers = f;
	pthread_mutex_unlock(&t->lock);
}

static void writer_remove_locked(struct core_files *t, struct core_file *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else if (t->writers == f)
		t->writers = f->next;
	if (f->next)
		f->next->prev = f->prev;
	f->next = f->prev = NULL;
}

/* Newest live writer of key, with a reference taken; NULL when none.  With an
 * opener: only that process's writer not closed yet (a closed one waits for
 * its release, which the kernel sends a moment after close() returned). */
static struct core_file *writer_find_by(struct core_files *t, const char *key, pid_t opener)
{
	struct core_file *f;

	pthread_mutex_lock(&t->lock);
	for (f = t->writers; f; f = f->next)
		if (!f->unlinked && !strcmp(f->key, key) &&
		    (!opener || (f->opener == opener && !f->flushed)))
			break;
	if (f)
		f->refs++;
	pthread_mutex_unlock(&t->lock);
	return f;
}

static struct core_file *writer_find(struct core_files *t, const char *key)
{
	return writer_find_by(t, key, 0);
}

static void file_key(struct core_file *f, char key[LAMFS_KEY_MAX + 1])
{
	pthread_mutex_lock(&f->t->lock);
	memcpy(key, f->key, LAMFS_KEY_MAX + 1);
	pthread_mutex_unlock(&f->t->lock);
}

/*
 * A file only created or truncated and then closed is saved at release, which
 * the kernel sends a moment after close() returned.  An open of the same name
 * waits for that save (at most SETTLE_MS), so `: > f; cat f` reads the empty
 * file and `: > f; echo x > f` ends with x.  Also waits out a save in
 * progress (the writer's lock).
 */
#define SETTLE_MS 1000

static void settle_key(struct core_files *t, const char *key)
{
	struct timespec ts;
	struct core_file *f;
	int pending = 0, rc = 0;

	f = writer_find(t, key);
	if (!f)
		return;
	pthread_mutex_lock(&f->lock); /* a save in progress ends first */
	pthread_mutex_unlock(&f->lock);
	deadline_after_ms(CLOCK_REALTIME, SETTLE_MS, &ts);
	pthread_mutex_lock(&t->lock);
	for (;;) {
		pending = f->flushed && !f->touched && !f->error && !f->unlinked && f->stage &&
			  (f->next || f->prev || t->writers == f);
		if (!pending || rc != 0)
			break;
		rc = pthread_cond_timedwait(&t->released, &t->lock, &ts);
	}
	file_unref_locked(f);
	pthread_mutex_unlock(&t->lock);
}

/*
 * Write-back: this mount's own saves at key that are still uploading are
 * hidden, like any storage-ongoing record; a lookup or open of that key on
 * this mount waits (at most LAMFS_WB_WAIT seconds, default 30) for them, so
 * `cp a b && cat b` and `cp h f && echo x >> f` see the bytes just written.
 */
static void wait_pending(struct core_files *t, const char *key)
{
	static long wait_ms = -1;
	const char *v;

	if (!t->upq)
		return;
	if (wait_ms < 0) {
		v = getenv("LAMFS_WB_WAIT");
		wait_ms = (v && atol(v) >= 0) ? atol(v) * 1000 : 30000;
	}
	if (upq_wait_key(t->upq, key, wait_ms) == -ETIMEDOUT)
		log_warn("write-back: %s is still uploading; answering without it", key);
}

/* Write-back: when this mount's newest pending save at key is newer than what
 * e holds (committed or nothing), put it in e and say 1. */
static int newer_pending(struct core_files *t, const char *key, struct meta_entry *e)
{
	struct lamfs_record p;

	if (!t->upq || upq_newest_pending(t->upq, key, &p) < 0)
		return 0;
	if (e->type == META_FILE && e->rec.id > p.id)
		return 0;
	e->type = META_FILE;
	e->rec = p;
	return 1;
}

/* ---- saving ---- */

/* Save f's stage as the next version of its key; caller holds f->lock. */
static int file_save(struct core_file *f)
{
	struct core_files *t = f->t;
	char key[LAMFS_KEY_MAX + 1];
	struct lamfs_record rec;
	int unlinked, staged_fd = -1, rc = 0;

	pthread_mutex_lock(&t->lock);
	memcpy(key, f->key, sizeof(key));
	unlinked = f->unlinked;
	pthread_mutex_unlock(&t->lock);
	if (f->error)
		return f->error; /* never save a file some of whose writes failed */
	if (unlinked || !core_stage_dirty(f->stage))
		return 0;
	if (!f->mtime_explicit)
		f->attrs.mtime_ns = now_ns();
	if (t->upq) {
		rc = core_save_deferred(t->c, f->stage, key, &f->attrs, &rec, &staged_fd);
		f->uploading = rc == 0 && staged_fd >= 0;
		if (f->uploading)
			rc = upq_push(t->upq, rec.uid, staged_fd);
	} else {
		rc = core_save(t->c, f->stage, key, &f->attrs, &rec);
	}
	if (rc == 0)
		f->rec = rec;
	return rc;
}

/* A save failed and the caller got its errno: nothing was saved, so the file
 * vanishes now, and release must not try again. */
static void file_discard(struct core_file *f)
{
	pthread_mutex_lock(&f->t->lock);
	f->unlinked = 1;
	pthread_mutex_unlock(&f->t->lock);
}

static void done_fill(struct core_file *f, int saved, struct core_file_done *done)
{
	if (!done)
		return;
	done->saved = saved;
	done->uploading = f->uploading;
	done->writer = f->stage != NULL;
	if (f->stage)
		file_key(f, done->key);
	else
		done->key[0] = '\0';
}

/* ---- opening ---- */

/* The attributes of the version e replaces: a writer keeps them. */
static void attrs_from(struct core_attrs *a, const struct lamfs_record *r, int with_mtime)
{
	a->mode = r->mode;
	a->owner_uid = r->owner_uid;
	a->owner_gid = r->owner_gid;
	if (with_mtime)
		a->mtime_ns = r->mtime_ns;
}

/* The committed state of key for a new writer: e (META_NONE when none). */
static int writer_base(struct core_files *t, struct core_file *f, const char *key,
		       unsigned flags, struct meta_entry *e)
{
	int own = (flags & CORE_FILE_OWN_ATTRS) != 0;
	int rc = core_lookup(t->c, key, e);

	if (rc == 0 && e->type == META_DIR)
		return -EISDIR;
	if (rc == 0) {
		if (!own)
			attrs_from(&f->attrs, &e->rec, 1);
		f->base_id = e->rec.id;
	}
	if (rc == -ENOENT) {
		e->type = META_NONE;
		rc = 0;
	}
	if (rc == 0 && !(flags & CORE_FILE_TRUNC) && newer_pending(t, key, e) && !own) {
		/* This mount's own save of key still uploading (it waited out
		 * LAMFS_WB_WAIT): build on those bytes, not on an older version. */
		attrs_from(&f->attrs, &e->rec, 0);
	}
	return rc;
}

int core_file_open_write(struct core_files *t, const char *key, unsigned flags,
			 const struct core_attrs *a, pid_t opener, struct core_file **out)
{
	struct core_file *f = file_new(t);
	int trunc = (flags & CORE_FILE_TRUNC) != 0;
	struct meta_entry e;
	int rc = 0;

	*out = NULL;
	if (!f)
		return -ENOMEM;
	snprintf(f->key, sizeof(f->key), "%s", key);
	f->attrs = *a;
	f->mtime_explicit = (flags & CORE_FILE_OWN_ATTRS) && a->mtime_ns != 0;
	f->append = (flags & CORE_FILE_APPEND) != 0;
	f->opener = opener;
	settle_key(t, key);
	if (!trunc)
		wait_pending(t, key); /* start from the bytes this mount just wrote */
	rc = writer_base(t, f, key, flags, &e);
	if (rc == 0)
		rc = core_stage_open(t->c, (trunc || e.type != META_FILE) ? NULL : &e.rec,
				     &f->stage);
	if (rc == 0 && trunc && e.type == META_FILE)
		rc = core_stage_truncate(f->stage, 0);
	if (rc < 0) {
		file_unref(f);
		return rc;
	}
	writer_add(t, f);
	*out = f;
	return 0;
}

int core_file_open_read(struct core_files *t, const char *key, struct core_file **out)
{
	struct core_file *f, *w;
	struct meta_entry e;
	int rc = 0;

	*out = NULL;
	settle_key(t, key);
	w = writer_find(t, key);
	f = file_new(t);
	if (!f) {
		rc = -ENOMEM;
		goto out;
	}
	wait_pending(t, key);
	rc = core_lookup(t->c, key, &e);
	if (rc == -ENOENT && w) {
		f->shared = w; /* this mount's unsaved bytes: read them */
		w = NULL;
		rc = 0;
		goto out;
	}
	if (rc == 0 && e.type != META_FILE)
		rc = -EISDIR;
	if (rc == 0) {
		f->rec = e.rec;
		rc = core_reader_open(t->c, &e.rec, &f->reader);
	}
out:
	if (w)
		file_unref(w);
	if (rc < 0 && f)
		file_unref(f);
	else if (rc == 0)
		*out = f;
	return rc;
}

int core_file_open_version(struct core_files *t, const char *uid, struct core_file **out)
{
	struct core_file *f = file_new(t);
	int rc;

	*out = NULL;
	if (!f)
		return -ENOMEM;
	rc = core_version(t->c, uid, &f->rec);
	if (rc == 0)
		rc = core_reader_open(t->c, &f->rec, &f->reader);
	if (rc < 0)
		file_unref(f);
	else
		*out = f;
	return rc;
}

/* ---- an open file ---- */

int core_file_is_writer(const struct core_file *f)
{
	return f->stage != NULL;
}

ssize_t core_file_read(struct core_file *f, void *buf, size_t len, uint64_t off)
{
	struct core_file *src = f->shared ? f->shared : f;
	ssize_t n;

	pthread_mutex_lock(&src->lock);
	if (src->stage)
		n = core_stage_pread(src->stage, buf, len, off);
	else
		n = core_reader_pread(src->reader, buf, len, off);
	pthread_mutex_unlock(&src->lock);
	return n;
}

ssize_t core_file_write(struct core_file *f, const void *buf, size_t len, uint64_t off)
{
	ssize_t n;

	if (!f->stage)
		return -EBADF;
	pthread_mutex_lock(&f->lock);
	if (f->append)
		off = core_stage_size(f->stage);
	n = f->error ? f->error : core_stage_write(f->stage, buf, len, off);
	if (n > 0) {
		f->mtime_explicit = 0;
		f->touched = 1;
	} else if (n < 0 && !f->error) {
		f->error = (int)n; /* what reached the stage is not the file */
	}
	pthread_mutex_unlock(&f->lock);
	return n;
}

/* Truncate f's stage; touched: the next flush saves.  Caller holds nothing. */
static int stage_truncate(struct core_file *f, uint64_t size, int touched)
{
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = f->error ? f->error : core_stage_truncate(f->stage, size);
	f->mtime_explicit = 0;
	if (touched)
		f->touched = 1;
	if (rc < 0)
		f->error = rc;
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int core_file_truncate(struct core_file *f, uint64_t size)
{
	return f->stage ? stage_truncate(f, size, 1) : -EBADF;
}

/* A writer's attributes as a record; caller holds f->lock. */
static void writer_attr(struct core_file *f, struct lamfs_record *out)
{
	memset(out, 0, sizeof(*out));
	file_key(f, out->key);
	out->size = (int64_t)core_stage_size(f->stage);
	out->mode = f->attrs.mode;
	out->owner_uid = f->attrs.owner_uid;
	out->owner_gid = f->attrs.owner_gid;
	out->mtime_ns = f->attrs.mtime_ns ? f->attrs.mtime_ns : now_ns();
	out->updated_at = out->mtime_ns;
}

void core_file_attr(struct core_file *f, struct lamfs_record *out)
{
	struct core_file *src = f->shared ? f->shared : f;

	if (!src->stage) {
		*out = src->rec;
		return;
	}
	pthread_mutex_lock(&src->lock);
	writer_attr(src, out);
	pthread_mutex_unlock(&src->lock);
}

int core_file_set_attrs(struct core_file *f, unsigned mask, const struct meta_attr *a)
{
	if (!f->stage)
		return -EBADF;
	pthread_mutex_lock(&f->lock);
	if (mask & META_ATTR_MODE)
		f->attrs.mode = a->mode;
	if (mask & META_ATTR_OWNER_UID)
		f->attrs.owner_uid = a->owner_uid;
	if (mask & META_ATTR_OWNER_GID)
		f->attrs.owner_gid = a->owner_gid;
	if (mask & META_ATTR_MTIME) {
		f->attrs.mtime_ns = a->mtime_ns;
		f->mtime_explicit = 1;
	}
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int core_file_flush(struct core_file *f, struct core_file_done *done)
{
	int rc = 0, saved = 0;

	if (f->stage) {
		pthread_mutex_lock(&f->t->lock);
		f->flushed = 1;
		pthread_mutex_unlock(&f->t->lock);
		pthread_mutex_lock(&f->lock);
		if (f->touched || f->error) {
			rc = file_save(f);
			saved = 1;
		}
		pthread_mutex_unlock(&f->lock);
		if (rc < 0)
			file_discard(f);
	}
	done_fill(f, saved, done);
	return rc;
}

int core_file_fsync(struct core_file *f, struct core_file_done *done)
{
	int rc = 0;

	if (f->stage) {
		pthread_mutex_lock(&f->lock);
		rc = file_save(f);
		pthread_mutex_unlock(&f->lock);
		if (rc < 0)
			file_discard(f);
	}
	done_fill(f, f->stage != NULL, done);
	return rc;
}

/*
 * A file saved at release only (created or truncated by O_TRUNC, never
 * written): release comes after close() returned, maybe after another
 * program saved the name meanwhile.  Then this older change must not become
 * the latest: it is dropped, as if it had been saved first.
 */
static int superseded(struct core_file *f)
{
	char key[LAMFS_KEY_MAX + 1];
	struct meta_entry e;
	int64_t now = 0, base;

	if (f->touched || !core_stage_dirty(f->stage))
		return 0;
	pthread_mutex_lock(&f->t->lock);
	memcpy(key, f->key, sizeof(key));
	base = f->base_id;
	pthread_mutex_unlock(&f->t->lock);
	if (base < 0)
		return 0;
	if (core_lookup(f->t->c, key, &e) == 0 && e.type == META_FILE)
		now = e.rec.id;
	return now != base;
}

int core_file_release(struct core_file *f, struct core_file_done *done)
{
	struct core_files *t = f->t;
	int rc = 0;

	if (f->stage) {
		pthread_mutex_lock(&f->lock);
		rc = (f->error || superseded(f)) ? 0 : file_save(f);
		pthread_mutex_unlock(&f->lock);
	}
	done_fill(f, f->stage != NULL, done);
	if (rc < 0)
		log_err("release %s: save failed: %s; nothing was saved",
			done ? done->key : f->key, strerror(-rc));
	if (done && f->error)
		done->uploading = 0;
	pthread_mutex_lock(&t->lock);
	if (f->stage) {
		writer_remove_locked(t, f);
		pthread_cond_broadcast(&t->released);
	}
	if (f->shared)
		file_unref_locked(f->shared);
	file_unref_locked(f);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* ---- names ---- */

int core_files_lookup(struct core_files *t, const char *key, struct meta_entry *out)
{
	int rc = core_lookup(t->c, key, out);

	if (rc == -ENOENT && t->upq) {
		wait_pending(t, key);
		rc = core_lookup(t->c, key, out);
	}
	return rc;
}

int core_files_writer_attr(struct core_files *t, const char *key, struct lamfs_record *out)
{
	struct core_file *f = writer_find(t, key);
	int answers = 0, closed;

	if (!f)
		return 0;
	pthread_mutex_lock(&f->lock);
	pthread_mutex_lock(&t->lock);
	closed = f->flushed;
	pthread_mutex_unlock(&t->lock);
	/* Closed, its bytes committed, only its release to come: what is
	 * committed answers (a truncate by name may have made a newer version
	 * meanwhile). */
	answers = !(closed && !f->error && !f->uploading && !core_stage_dirty(f->stage));
	if (answers)
		writer_attr(f, out);
	pthread_mutex_unlock(&f->lock);
	file_unref(f);
	return answers;
}

int core_files_has_writer(struct core_files *t, const char *key)
{
	struct core_file *f = writer_find(t, key);

	if (f)
		file_unref(f);
	return f != NULL;
}

int core_files_writer_under(struct core_files *t, const char *key)
{
	size_t n = strlen(key);
	struct core_file *f;
	int found = 0;

	pthread_mutex_lock(&t->lock);
	for (f = t->writers; f && !found; f = f->next)
		found = !f->unlinked && !strncmp(f->key, key, n) && f->key[n] == '/';
	pthread_mutex_unlock(&t->lock);
	return found;
}

int core_files_live_names(struct core_files *t, const char *key, char (**names)[LAMFS_NAME_MAX + 1],
			  size_t *n)
{
	char parent[LAMFS_KEY_MAX + 1];
	char (*live)[LAMFS_NAME_MAX + 1] = NULL;
	struct core_file *f;
	size_t cap = 0, got = 0;
	const char *name;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	for (f = t->writers; f; f = f->next)
		cap++;
	if (cap && !(live = calloc(cap, sizeof(*live))))
		rc = -ENOMEM;
	for (f = t->writers; f && rc == 0; f = f->next) {
		if (f->unlinked)
			continue;
		name = key_split(f->key, parent);
		if (!strcmp(parent, key))
			snprintf(live[got++], LAMFS_NAME_MAX + 1, "%s", name);
	}
	pthread_mutex_unlock(&t->lock);
	*names = live;
	*n = got;
	return rc;
}

/*
 * Before the committed bytes of key go (unlink, rename over it), give every
 * live writer of key that has not copied them yet its own copy: a program
 * holding the file open keeps reading and writing it, as on a disk.
 */
static void materialize_writers(struct core_files *t, const char *key)
{
	struct core_file *f, **list = NULL;
	size_t n = 0, cap = 0, i;
	int rc;

	pthread_mutex_lock(&t->lock);
	for (f = t->writers; f; f = f->next) {
		if (f->unlinked || strcmp(f->key, key))
			continue;
		if (n == cap) {
			struct core_file **p = realloc(list, (cap ? 2 * cap : 4) * sizeof(*p));

			if (!p)
				break;
			list = p;
			cap = cap ? 2 * cap : 4;
		}
		f->refs++;
		list[n++] = f;
	}
	pthread_mutex_unlock(&t->lock);
	for (i = 0; i < n; i++) {
		pthread_mutex_lock(&list[i]->lock);
		rc = core_stage_materialize(list[i]->stage);
		if (rc < 0 && !list[i]->error)
			list[i]->error = rc;
		pthread_mutex_unlock(&list[i]->lock);
		file_unref(list[i]);
	}
	free(list);
}

int core_files_unlink(struct core_files *t, const char *key)
{
	struct core_file *f;
	int live = 0, rc;

	materialize_writers(t, key);
	rc = core_unlink(t->c, key);
	pthread_mutex_lock(&t->lock);
	for (f = t->writers; f; f = f->next) {
		if (!f->unlinked && !strcmp(f->key, key)) {
			f->unlinked = 1; /* written but removed before close: discard */
			live = 1;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return (rc == -ENOENT && live) ? 0 : rc;
}

/* Move live writers' keys along with a rename (a file, or a folder's subtree). */
static int rename_writers(struct core_files *t, const char *from, const char *to)
{
	size_t n = strlen(from);
	struct core_file *f;
	int moved = 0;

	pthread_mutex_lock(&t->lock);
	for (f = t->writers; f; f = f->next) {
		if (f->unlinked)
			continue;
		if (!strcmp(f->key, to)) {
			f->unlinked = 1; /* replaced by the rename */
		} else if (!strcmp(f->key, from)) {
			snprintf(f->key, sizeof(f->key), "%s", to);
			f->base_id = -1; /* renamed over `to` on purpose: never superseded */
			moved = 1;
		} else if (!strncmp(f->key, from, n) && f->key[n] == '/' &&
			   strlen(to) + strlen(f->key + n) <= LAMFS_KEY_MAX) {
			size_t tl = strlen(to), rest = strlen(f->key + n);

			memmove(f->key + tl, f->key + n, rest + 1);
			memcpy(f->key, to, tl);
			moved = 1;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return moved;
}

int core_files_rename(struct core_files *t, const char *from, const char *to, unsigned flags)
{
	int rc, moved;

	if (core_files_writer_under(t, to))
		return -ENOTEMPTY; /* the target folder holds a file being written */
	materialize_writers(t, to);
	rc = core_rename(t->c, from, to, flags);
	if (rc == 0 || rc == -ENOENT) {
		moved = rename_writers(t, from, to);
		if (rc == -ENOENT && moved)
			rc = 0; /* only this mount's unsaved file had that name */
	}
	return rc;
}

int core_files_rmdir(struct core_files *t, const char *key)
{
	if (core_files_writer_under(t, key))
		return -ENOTEMPTY;
	return core_rmdir(t->c, key);
}

int core_files_setattr(struct core_files *t, struct core_file *f, const char *key,
		       unsigned mask, const struct meta_attr *a)
{
	struct core_file *w = NULL;
	int rc, live = 0;

	if (f && f->stage) {
		pthread_mutex_lock(&t->lock);
		f->refs++;
		pthread_mutex_unlock(&t->lock);
		w = f;
	} else if (key) {
		w = writer_find(t, key);
	}
	if (w) {
		live = core_file_set_attrs(w, mask, a) == 0;
		file_unref(w);
	}
	rc = key ? core_setattr(t->c, key, mask, a) : -ENOENT;
	return (rc == -ENOENT && live) ? 0 : rc;
}

int core_files_truncate_key(struct core_files *t, const char *key, uint64_t size, pid_t opener,
			    const struct core_attrs *a, int *saved)
{
	struct core_file *f = writer_find_by(t, key, opener ? opener : -1);
	int rc;

	*saved = f == NULL;
	if (f) {
		rc = stage_truncate(f, size, 0);
		file_unref(f);
		return rc;
	}
	/* Not open here: a new version with the new length, saved now. */
	rc = core_file_open_write(t, key, size == 0 ? CORE_FILE_TRUNC : 0, a, opener, &f);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&f->lock);
	rc = core_stage_truncate(f->stage, size);
	if (rc == 0)
		rc = file_save(f);
	pthread_mutex_unlock(&f->lock);
	pthread_mutex_lock(&t->lock);
	writer_remove_locked(t, f);
	pthread_cond_broadcast(&t->released);
	file_unref_locked(f);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* ---- lamfs save ---- */

/* Copy the file open as fd into writer f. */
static int copy_in(struct core_file *f, int fd)
{
	char *buf = malloc(1u << 20);
	uint64_t off = 0;
	ssize_t n, w;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		n = read(fd, buf, 1u << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : 0;
			break;
		}
		w = core_file_write(f, buf, (size_t)n, off);
		if (w < 0) {
			rc = (int)w;
			break;
		}
		off += (uint64_t)n;
	}
	free(buf);
	return rc;
}

/* The CLI's save is a writer like any other: open, write, fsync, release. */
int core_save_path(struct core *c, const char *path, const char *key,
		   const struct core_attrs *attrs, struct lamfs_record *out)
{
	struct core_attrs dflt = { 0644, (uint32_t)getuid(), (uint32_t)getgid(), 0 };
	struct meta_attr mt;
	struct core_files *t = NULL;
	struct core_file *f = NULL;
	int fd = -1, rc;

	if (!attrs)
		attrs = &dflt; /* as core_save without attributes */
	mt.mtime_ns = attrs->mtime_ns;
	rc = key_check(key);
	if (rc < 0)
		goto out;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = core_files_new(c, NULL, &t);
	if (rc == 0)
		rc = core_file_open_write(t, key, CORE_FILE_TRUNC | CORE_FILE_OWN_ATTRS, attrs,
					  getpid(), &f);
	if (rc == 0)
		rc = copy_in(f, fd);
	if (rc < 0 && f)
		f->error = rc; /* never saved, not even at release */
	if (rc == 0 && attrs->mtime_ns)
		rc = core_file_set_attrs(f, META_ATTR_MTIME, &mt);
	if (rc == 0)
		rc = core_file_fsync(f, NULL);
	if (rc == 0 && out)
		*out = f->rec;
out:
	if (f)
		core_file_release(f, NULL);
	core_files_free(t);
	if (fd >= 0)
		close(fd);
	return rc;
}
