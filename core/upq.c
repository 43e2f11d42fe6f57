/*
 * upq.c — write-back upload workers (see upq.h).
 */
#include "upq.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lamfs.h"
#include "log.h"
#include "meta.h"

#define UPQ_MAX_WORKERS 16

struct upq_item {
	char uid[LAMFS_UID_LEN + 1];
	int fd;                      /* staging/<uid>, holding the owner's lock */
	int tries;
	int64_t not_before_ms;       /* retry time, CLOCK_MONOTONIC */
	struct upq_item *next;
};

struct upq {
	struct core *c;
	pthread_mutex_t lock;
	pthread_cond_t cond;         /* work arrived, or stop */
	pthread_cond_t idle;         /* pending dropped to 0 */
	pthread_cond_t done;         /* an item finished (uploaded or rolled back) */
	struct upq_item *head;       /* lock */
	struct upq_item *running;    /* lock: items a worker is handling */
	unsigned pending;            /* lock: queued + running */
	int stop;                    /* lock */
	int retries;
	long backoff_ms;
	unsigned nworkers;
	pthread_t workers[UPQ_MAX_WORKERS];
	void (*done_hook)(void *arg, const char *uid); /* set before any push */
	void *done_arg;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long env_long(const char *name, long def, long lo, long hi)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v || !*v)
		return def;
	n = strtol(v, &end, 10);
	return (*end || n < lo || n > hi) ? def : n;
}

static void err_file(struct upq *q, const char *uid, const char *text)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *f;

	core_staging_path(q->c, uid, path, sizeof(path));
	if (strlen(path) + 4 >= sizeof(path))
		return;
	strcat(path, ".err");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!text) {
		/* and the temporary of a daemon killed while writing one */
		unlink(tmp);
		unlink(path);
		return;
	}
	f = fopen(tmp, "we");
	if (!f)
		return;
	fprintf(f, "%s\n", text);
	if (fclose(f) == 0)
		rename(tmp, path);
	else
		unlink(tmp);
}

/* Insert keeping the list ordered by not_before_ms. */
static void insert_locked(struct upq *q, struct upq_item *it)
{
	struct upq_item **p = &q->head;

	while (*p && (*p)->not_before_ms <= it->not_before_ms)
		p = &(*p)->next;
	it->next = *p;
	*p = it;
}

static void running_remove_locked(struct upq *q, struct upq_item *it)
{
	struct upq_item **p = &q->running;

	while (*p && *p != it)
		p = &(*p)->next;
	if (*p)
		*p = it->next;
	it->next = NULL;
}

static void done_locked(struct upq *q)
{
	if (--q->pending == 0)
		pthread_cond_broadcast(&q->idle);
}

static long backoff(struct upq *q, int tries)
{
	unsigned r = 0;
	long d = q->backoff_ms << (tries < 10 ? tries : 10);

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = 0;
	return d / 2 + (long)(r % (unsigned)(d / 2 + 1)); /* jitter: [d/2, d] */
}

static void handle(struct upq *q, struct upq_item *it)
{
	char text[256];
	int rc = core_upload_flagged(q->c, it->uid, it->fd);

	if (rc == 0 || rc == -ENOENT) {
		if (rc == -ENOENT) {
			char path[PATH_MAX];

			/* rm or mv removed the record while it waited: drop its bytes */
			log_info("write-back %s: the file was removed meanwhile; dropped",
				 it->uid);
			core_staging_path(q->c, it->uid, path, sizeof(path));
			unlink(path);
		}
		err_file(q, it->uid, NULL);
		if (rc == 0 && q->done_hook)
			q->done_hook(q->done_arg, it->uid);
		goto finished;
	}
	it->tries++;
	snprintf(text, sizeof(text), "try %d of %d failed: %s", it->tries, q->retries,
		 strerror(-rc));
	err_file(q, it->uid, text);
	/* EBADMSG: the staged bytes are bad; EEXIST: another object has the
	 * name (saved after a restored backup).  Neither gets better. */
	if (rc != -EBADMSG && rc != -EEXIST && it->tries < q->retries) {
		log_warn("write-back %s: %s; retrying", it->uid, text);
		it->not_before_ms = mono_ms() + backoff(q, it->tries - 1);
		pthread_mutex_lock(&q->lock);
		running_remove_locked(q, it);
		insert_locked(q, it);
		pthread_cond_broadcast(&q->cond);
		pthread_mutex_unlock(&q->lock);
		return;
	}
	rc = core_rollback_flagged(q->c, it->uid);
	log_err("write-back %s: giving up after %d tries (%s); the save was rolled back%s",
		it->uid, it->tries, text, rc < 0 ? " (rollback failed; run lamfs-repair)" : "");
	if (rc == 0)
		err_file(q, it->uid, NULL);
finished:
	close(it->fd);
	pthread_mutex_lock(&q->lock);
	running_remove_locked(q, it);
	done_locked(q);
	pthread_cond_broadcast(&q->done);
	pthread_mutex_unlock(&q->lock);
	free(it);
}

static void *worker(void *arg)
{
	struct upq *q = arg;
	struct upq_item *it;
	struct timespec ts;
	int64_t now, wait;

	pthread_mutex_lock(&q->lock);
	while (!q->stop) {
		it = q->head;
		now = mono_ms();
		if (!it) {
			pthread_cond_wait(&q->cond, &q->lock);
			continue;
		}
		if (it->not_before_ms > now) {
			wait = it->not_before_ms - now;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += wait / 1000;
			ts.tv_nsec += (wait % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&q->cond, &q->lock, &ts);
			continue;
		}
		q->head = it->next;
		it->next = q->running;
		q->running = it;
		pthread_mutex_unlock(&q->lock);
		handle(q, it);
		pthread_mutex_lock(&q->lock);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int upq_start(struct core *c, struct upq **out)
{
	struct upq *q = calloc(1, sizeof(*q));
	unsigned i;
	int rc = 0;

	*out = NULL;
	if (!q)
		return -ENOMEM;
	q->c = c;
	q->retries = (int)env_long("LAMFS_WB_RETRIES", 8, 1, 1000);
	q->backoff_ms = env_long("LAMFS_WB_BACKOFF_MS", 500, 1, 600000);
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	pthread_cond_init(&q->idle, NULL);
	pthread_cond_init(&q->done, NULL);
	for (i = 0; i < (unsigned)env_long("LAMFS_WB_WORKERS", 4, 1, UPQ_MAX_WORKERS); i++) {
		rc = -pthread_create(&q->workers[i], NULL, worker, q);
		if (rc < 0)
			break;
		q->nworkers++;
	}
	if (rc < 0) {
		upq_stop(q);
		return rc;
	}
	*out = q;
	return 0;
}

void upq_set_done_hook(struct upq *q, void (*fn)(void *arg, const char *uid), void *arg)
{
	q->done_hook = fn;
	q->done_arg = arg;
}

int upq_push(struct upq *q, const char *uid, int fd)
{
	struct upq_item *it = calloc(1, sizeof(*it));

	if (!it)
		return -ENOMEM;
	it->fd = fd;
	snprintf(it->uid, sizeof(it->uid), "%s", uid);
	it->not_before_ms = mono_ms();
	pthread_mutex_lock(&q->lock);
	q->pending++;
	insert_locked(q, it);
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

struct resume_ctx {
	struct upq *q;
	unsigned n;
	int rc;
};

static int resume_cb(void *ctx, const struct lamfs_record *rec)
{
	struct resume_ctx *r = ctx;
	int fd = -1;

	/* No staged bytes: only lamfs-repair can decide.  Locked: a live mount
	 * owns that save (it is uploading it now): not ours to touch. */
	if (core_staged_lock(r->q->c, rec->uid, &fd) < 0)
		return 0;
	r->rc = upq_push(r->q, rec->uid, fd);
	if (r->rc == 0)
		r->n++;
	else
		close(fd);
	return r->rc;
}

int upq_resume(struct upq *q, unsigned *n)
{
	struct resume_ctx r = { q, 0, 0 };
	int rc = meta_foreach(core_meta(q->c), META_FLAGGED_RECORDS, resume_cb, &r);

	*n = r.n;
	return rc < 0 ? rc : r.rc;
}

unsigned upq_pending(struct upq *q)
{
	unsigned n;

	pthread_mutex_lock(&q->lock);
	n = q->pending;
	pthread_mutex_unlock(&q->lock);
	return n;
}

int upq_drain(struct upq *q, long timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&q->lock);
	while (q->pending > 0 && rc == 0)
		rc = -pthread_cond_timedwait(&q->idle, &q->lock, &ts);
	if (q->pending == 0)
		rc = 0;
	pthread_mutex_unlock(&q->lock);
	return rc;
}

void upq_stop(struct upq *q)
{
	struct upq_item *it;
	unsigned i;

	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = 1;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	for (i = 0; i < q->nworkers; i++)
		pthread_join(q->workers[i], NULL);
	while ((it = q->head) != NULL) {
		q->head = it->next;
		close(it->fd); /* its lock goes; the next mount resumes it */
		free(it);
	}
	pthread_cond_destroy(&q->cond);
	pthread_cond_destroy(&q->idle);
	pthread_cond_destroy(&q->done);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

/* 1 when uid is queued or being handled. */
static int queued_locked(struct upq *q, const char *uid)
{
	struct upq_item *it;

	for (it = q->head; it; it = it->next)
		if (!strcmp(it->uid, uid))
			return 1;
	for (it = q->running; it; it = it->next)
		if (!strcmp(it->uid, uid))
			return 1;
	return 0;
}

struct wait_ctx {
	char (*uids)[LAMFS_UID_LEN + 1];
	size_t n, cap;
	struct upq *q;               /* newest: the queue, else NULL */
	struct lamfs_record *newest; /* newest: the pending record with the top id */
	int found;
};

static int flagged_cb(void *ctx, const struct lamfs_record *rec)
{
	struct wait_ctx *w = ctx;
	void *p;

	if (!rec->storage_ongoing)
		return 0;
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 4;
		p = realloc(w->uids, w->cap * sizeof(*w->uids));
		if (!p)
			return -ENOMEM;
		w->uids = p;
	}
	memcpy(w->uids[w->n++], rec->uid, LAMFS_UID_LEN + 1);
	return 0;
}

int upq_wait_key(struct upq *q, const char *key, long timeout_ms)
{
	struct wait_ctx w = { .uids = NULL };
	struct timespec ts;
	size_t i;
	int rc = meta_versions(core_meta(q->c), key, flagged_cb, &w);

	if (rc < 0 || w.n == 0)
		goto out;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&q->lock);
	for (i = 0; i < w.n && rc == 0; i++) {
		while (rc == 0 && queued_locked(q, w.uids[i]))
			rc = -pthread_cond_timedwait(&q->done, &q->lock, &ts);
	}
	pthread_mutex_unlock(&q->lock);
out:
	free(w.uids);
	return rc;
}

static int newest_cb(void *ctx, const struct lamfs_record *rec)
{
	struct wait_ctx *w = ctx;
	int mine;

	if (!rec->storage_ongoing || (w->found && rec->id < w->newest->id))
		return 0;
	pthread_mutex_lock(&w->q->lock);
	mine = queued_locked(w->q, rec->uid);
	pthread_mutex_unlock(&w->q->lock);
	if (mine) {
		*w->newest = *rec;
		w->found = 1;
	}
	return 0;
}

int upq_newest_pending(struct upq *q, const char *key, struct lamfs_record *out)
{
	struct wait_ctx w = { NULL, 0, 0, q, out, 0 };
	int rc = meta_versions(core_meta(q->c), key, newest_cb, &w);

	return rc < 0 ? rc : (w.found ? 0 : -ENOENT);
}
