/*
 * lease.c — take, renew and release this process's lease (lease.h).
 *
 * The renewal thread sleeps on a condition variable (CLOCK_MONOTONIC) so
 * lease_stop() wakes it at once; it renews every TTL/3 and, after a failure,
 * about every second until the store answers again.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lease.h"
#include "deadline.h"
#include "log.h"
#include "uid.h"

#define LEASE_RETRY_MS 1000   /* renewal retry after a failure */

struct lease {
	struct meta *meta;            /* the core's handle; never changes */
	struct meta_lease row;        /* what we stored; never changes after start */
	int64_t ttl_ms;
	pthread_t thread;
	int running;                  /* the thread was started */
	pthread_mutex_t lock;
	pthread_cond_t wake;          /* signalled by lease_stop() */
	int stop;                     /* guarded by lock */
	struct meta_lease spare;      /* lease_start's blocker when the caller has none */
};

int64_t lease_ttl_ms(void)
{
	const char *v = getenv("LAMFS_LEASE_TTL");
	char *end = NULL;
	long n = v ? strtol(v, &end, 10) : 0;

	if (!v || end == v || *end != '\0' || n <= 0 || n > 86400)
		n = LEASE_TTL_DEFAULT_S;
	return (int64_t)n * 1000;
}

/* Copy s into out (size bytes), printable ASCII only: the other bytes
 * become '?', so the row is valid text in any database encoding. */
static void copy_field(char *out, size_t size, const char *s)
{
	size_t i;

	for (i = 0; s && s[i] && i + 1 < size; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	out[i] = '\0';
}

static int row_init(struct meta_lease *r, struct core *c, enum meta_lease_kind kind,
		    const char *mountpoint)
{
	char host[META_LEASE_HOST_MAX + 1] = "";
	int rc;

	memset(r, 0, sizeof(*r));
	rc = uid_new(r->id);
	if (rc < 0)
		goto out;
	r->kind = kind;
	if (gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "?");
	copy_field(r->host, sizeof(r->host), host);
	r->pid = (int64_t)getpid();
	copy_field(r->instance, sizeof(r->instance), core_instance_dir(c));
	copy_field(r->mountpoint, sizeof(r->mountpoint), mountpoint ? mountpoint : "");
out:
	return rc;
}

/* One renewal; returns 0 when the lease is held (renewed or taken again). */
static int renew_once(struct lease *l, int *failing)
{
	struct meta_lease blocker;
	char why[600];
	int rc = meta_lease_renew(l->meta, l->row.id, l->ttl_ms);

	if (rc == -ENOENT) {
		log_err("lease: the lease of this %s is gone from the store (it expired and "
			"lamfs-repair removed it?): saves in flight may have been rolled back; "
			"taking it again", l->row.kind == META_LEASE_REPAIR ? "repair" : "mount");
		rc = meta_lease_take(l->meta, &l->row, l->ttl_ms, 0, &blocker);
		if (rc == -EBUSY) {
			lease_describe(&blocker, why, sizeof(why));
			log_err("lease: cannot take it again while %s", why);
		}
	}
	if (rc < 0 && !*failing)
		log_warn("lease: cannot renew (%s); retrying every %d ms", strerror(-rc),
			 LEASE_RETRY_MS);
	else if (rc == 0 && *failing)
		log_info("lease: renewed again");
	*failing = rc < 0;
	return rc;
}

static void *renew_thread(void *arg)
{
	struct lease *l = arg;
	struct timespec until;
	int64_t wait_ms = l->ttl_ms / 3;
	int failing = 0;

	pthread_mutex_lock(&l->lock);
	while (!l->stop) {
		deadline_after_ms(CLOCK_MONOTONIC, (long)wait_ms, &until);
		while (!l->stop && pthread_cond_timedwait(&l->wake, &l->lock, &until) == 0)
			;
		if (l->stop)
			break;
		pthread_mutex_unlock(&l->lock);
		wait_ms = renew_once(l, &failing) == 0 ? l->ttl_ms / 3 : LEASE_RETRY_MS;
		pthread_mutex_lock(&l->lock);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

/* 1 when no process pid runs any more: gone (ESRCH), or a zombie its parent
 * has not reaped yet (it holds nothing; kill(pid, 0) still succeeds on it). */
static int pid_gone(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	int gone = 0;

	if (kill(pid, 0) != 0)
		return errno == ESRCH;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return errno == ENOENT;
	/* "pid (comm) S ...": the state follows the last ')' (comm may hold any) */
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) != NULL && p[1] == ' ')
		gone = p[2] == 'Z' || p[2] == 'X';
	fclose(f);
	return gone;
}

int lease_dead_here(const struct meta_lease *l, const char *instance_dir)
{
	char host[META_LEASE_HOST_MAX + 1] = "", mine[META_LEASE_HOST_MAX + 1];
	char inst[META_LEASE_PATH_MAX + 1];

	if (gethostname(host, sizeof(host) - 1) != 0)
		return 0;
	copy_field(mine, sizeof(mine), host);
	copy_field(inst, sizeof(inst), instance_dir);
	return !strcmp(l->host, mine) && !strcmp(l->instance, inst) && l->pid > 0 &&
	       l->pid != (int64_t)getpid() && pid_gone((pid_t)l->pid);
}

/* Take the lease; a blocker that is a dead process of this machine is
 * removed (and said) rather than waited out. */
static int take(struct lease *l, struct core *c, unsigned flags, struct meta_lease *blocker)
{
	char why[600];
	int tries, rc = 0;

	for (tries = 0; tries < 8; tries++) {
		rc = meta_lease_take(l->meta, &l->row, l->ttl_ms, flags, blocker);
		if (rc != -EBUSY || !lease_dead_here(blocker, core_instance_dir(c)))
			break;
		lease_describe(blocker, why, sizeof(why));
		log_warn("lease: removing the lease of %s: that process is gone", why);
		rc = meta_lease_release(l->meta, blocker->id);
		if (rc < 0 && rc != -ENOENT)
			break;
	}
	return rc;
}

int lease_start(struct core *c, enum meta_lease_kind kind, const char *mountpoint,
		unsigned flags, struct lease **out, struct meta_lease *blocker)
{
	struct lease *l = calloc(1, sizeof(*l));
	pthread_condattr_t ca;
	int inited = 0, taken = 0;
	int rc = l ? 0 : -ENOMEM;

	*out = NULL;
	if (blocker)
		memset(blocker, 0, sizeof(*blocker));
	if (rc < 0)
		goto out;
	l->meta = core_meta(c);
	l->ttl_ms = lease_ttl_ms();
	rc = row_init(&l->row, c, kind, mountpoint);
	if (rc < 0)
		goto out;
	rc = -pthread_condattr_init(&ca);
	if (rc < 0)
		goto out;
	rc = -pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = -pthread_cond_init(&l->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (rc < 0)
		goto out;
	pthread_mutex_init(&l->lock, NULL);
	inited = 1;
	rc = take(l, c, flags, blocker ? blocker : &l->spare);
	if (rc < 0)
		goto out;
	taken = 1;
	rc = -pthread_create(&l->thread, NULL, renew_thread, l);
	if (rc < 0)
		goto out;
	l->running = 1;
	log_info("lease: %s lease %s taken (ttl %lld s)",
		 kind == META_LEASE_REPAIR ? "repair" : "mount", l->row.id,
		 (long long)(l->ttl_ms / 1000));
out:
	if (rc < 0 && l) {
		if (taken)
			meta_lease_release(l->meta, l->row.id);
		if (inited) {
			pthread_cond_destroy(&l->wake);
			pthread_mutex_destroy(&l->lock);
		}
		free(l);
		l = NULL;
	}
	*out = l;
	return rc;
}

void lease_stop(struct lease *l)
{
	int rc;

	if (!l)
		return;
	if (l->running) {
		pthread_mutex_lock(&l->lock);
		l->stop = 1;
		pthread_cond_signal(&l->wake);
		pthread_mutex_unlock(&l->lock);
		pthread_join(l->thread, NULL);
	}
	rc = meta_lease_release(l->meta, l->row.id);
	if (rc < 0 && rc != -ENOENT)
		log_warn("lease: cannot release lease %s (%s); it expires by itself within "
			 "%lld s", l->row.id, strerror(-rc), (long long)(l->ttl_ms / 1000));
	pthread_cond_destroy(&l->wake);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

const char *lease_id(const struct lease *l)
{
	return l->row.id;
}

void lease_describe(const struct meta_lease *l, char *buf, size_t size)
{
	long long s = (long long)(l->remaining_ms > 0 ? l->remaining_ms + 999
						      : -l->remaining_ms) / 1000;
	int n;

	if (l->kind == META_LEASE_REPAIR)
		n = snprintf(buf, size, "a repair on %s (pid %lld, instance %s)", l->host,
			     (long long)l->pid, l->instance);
	else
		n = snprintf(buf, size, "a mount on %s (pid %lld, mount point %s, instance %s)",
			     l->host, (long long)l->pid, l->mountpoint, l->instance);
	if (n >= 0 && (size_t)n < size)
		snprintf(buf + n, size - (size_t)n, l->remaining_ms > 0
			 ? ", lease expires in %lld s" : ", lease expired %lld s ago", s);
}
