/*
 * inval.c — one thread that sends the kernel "drop the cached attributes of
 * this path" for the FUSE handlers (see inval.h).
 */
#define FUSE_USE_VERSION 35

#include "inval.h"

#include <errno.h>
#include <fuse.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deadline.h"
#include "log.h"

struct inval {
	struct fuse *fuse;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t work;         /* paths queued, or stop */
	pthread_cond_t sent;         /* sent advanced */
	char **paths;                /* lock: queued, oldest first */
	size_t n, cap;               /* lock */
	uint64_t queued;             /* lock: tickets handed out */
	uint64_t sent_upto;          /* lock: every ticket <= this has been sent */
	int stop;                    /* lock */
};

static void *inval_main(void *arg)
{
	struct inval *q = arg;
	char **batch;
	size_t n, i;
	uint64_t upto;
	int rc;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (!q->n && !q->stop)
			pthread_cond_wait(&q->work, &q->lock);
		if (!q->n && q->stop)
			break;
		batch = q->paths;
		n = q->n;
		upto = q->queued;
		q->paths = NULL;
		q->n = q->cap = 0;
		pthread_mutex_unlock(&q->lock);
		for (i = 0; i < n; i++) {
			/* -ENOENT: the kernel does not know the path; nothing cached */
			rc = fuse_invalidate_path(q->fuse, batch[i]);
			if (rc < 0 && rc != -ENOENT)
				log_warn("invalidate %s: %s", batch[i], strerror(-rc));
			free(batch[i]);
		}
		free(batch);
		pthread_mutex_lock(&q->lock);
		q->sent_upto = upto;
		pthread_cond_broadcast(&q->sent);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int inval_start(struct fuse *fuse, struct inval **out)
{
	struct inval *q = calloc(1, sizeof(*q));
	int rc = 0;

	*out = NULL;
	if (!q)
		return -ENOMEM;
	q->fuse = fuse;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->work, NULL);
	pthread_cond_init(&q->sent, NULL);
	rc = -pthread_create(&q->thread, NULL, inval_main, q);
	if (rc < 0) {
		pthread_cond_destroy(&q->sent);
		pthread_cond_destroy(&q->work);
		pthread_mutex_destroy(&q->lock);
		free(q);
		return rc;
	}
	*out = q;
	return 0;
}

uint64_t inval_push(struct inval *q, const char *key)
{
	uint64_t ticket = 0;
	char *p = NULL;

	if (!q || asprintf(&p, "/%s", key) < 0)
		return 0;
	pthread_mutex_lock(&q->lock);
	if (q->n == q->cap) {
		size_t cap = q->cap ? 2 * q->cap : 16;
		char **np = realloc(q->paths, cap * sizeof(*np));

		if (np) {
			q->paths = np;
			q->cap = cap;
		}
	}
	if (q->n < q->cap) {
		q->paths[q->n++] = p;
		p = NULL;
		ticket = ++q->queued;
		pthread_cond_signal(&q->work);
	}
	pthread_mutex_unlock(&q->lock);
	free(p);
	return ticket;
}

void inval_wait(struct inval *q, uint64_t ticket, long timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	if (!q || !ticket)
		return;
	deadline_after_ms(CLOCK_REALTIME, timeout_ms, &ts);
	pthread_mutex_lock(&q->lock);
	while (q->sent_upto < ticket && rc == 0)
		rc = pthread_cond_timedwait(&q->sent, &q->lock, &ts);
	pthread_mutex_unlock(&q->lock);
	if (rc == ETIMEDOUT)
		log_warn("invalidate: the kernel took over %ld ms; answering anyway",
			 timeout_ms);
}

void inval_stop(struct inval *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = 1;
	pthread_cond_signal(&q->work);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);
	free(q->paths);
	pthread_cond_destroy(&q->sent);
	pthread_cond_destroy(&q->work);
	pthread_mutex_destroy(&q->lock);
	free(q);
}
