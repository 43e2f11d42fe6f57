/*
 * s3_reader.c — reading an object with ranged GETs, a read-ahead window and
 * background prefetch.
 *
 * A reader owns nslots buffers ("slots"), each holding one window
 * [off, off+len) of the object, either loaded (READY) or being loaded by a
 * background thread (BUSY, at most inflight of them).
 *
 * Sequential access is recognised by offsets, whatever the read size: a read
 * that starts where the previous one ended continues the stream.  Once a
 * stream is seen, the windows after the current read are fetched in the
 * background (inflight GETs at most: cfg.t.read_parallel, LAMFS_S3_READ_PARALLEL,
 * 2 by default; see docs/s3-streaming.md for why not more), each window twice the
 * previous one up to cfg.t.readahead_max, and never smaller than the reads
 * the caller makes.  Any other read ends the stream: the window size drops
 * back to S3_RA_MIN and nothing is prefetched, so random reads cost one GET of
 * their own size (small ones: of S3_RA_MIN) and never a big prefetch.
 *
 * Memory bound per open reader: (inflight + 1) x readahead_max (3 x 8 MiB by
 * default, LAMFS_S3_READAHEAD) plus the struct; up to inflight
 * threads, each with one pooled connection, while a stream is prefetched.
 *
 * Threads: the reader is used by one caller thread at a time (backend.h).  A
 * BUSY slot's buffer and rc belong to its worker until the caller joins it;
 * the state field is only ever read or written by the caller thread, so no
 * lock is needed.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "s3_int.h"

#define S3_RA_MIN (256u << 10)
/* the one being read + those in flight (S3_READ_PARALLEL_MAX at most) */
#define S3_RA_SLOTS_MAX (S3_READ_PARALLEL_MAX + 1)

enum { SLOT_EMPTY = 0, SLOT_BUSY, SLOT_READY };

struct s3_reader;

struct s3_slot {
	struct s3_reader *r;
	char *buf;                    /* cap bytes; the worker's while BUSY */
	size_t cap;
	uint64_t off;
	size_t len;
	int state;                    /* SLOT_*; caller thread only */
	int rc;                       /* the worker's result; read after join */
	pthread_t th;                 /* valid while BUSY */
	uint64_t used;                /* caller's tick of the last use, for reuse */
};

struct s3_reader {
	struct backend_reader base;   /* first */
	struct s3 *s;
	char *key;
	uint64_t size;                /* from the HEAD at open */
	char etag[S3_ETAG_MAX];       /* If-Match: the object read is the one opened */
	struct s3_slot slot[S3_RA_SLOTS_MAX];
	unsigned nslots;              /* slots in use: inflight + 1 */
	unsigned inflight;            /* background GETs at most */
	size_t ra;                    /* size of the next window */
	uint64_t next_off;            /* where a sequential read would start */
	uint64_t pf_off;              /* end of the stream's windows; 0: no stream */
	uint64_t tick;
};

/* The first window: S3_RA_MIN, or less when the configured maximum is. */
static size_t s3_ra_min(const struct s3 *s)
{
	return s->cfg.t.readahead_max < S3_RA_MIN ? s->cfg.t.readahead_max : S3_RA_MIN;
}

static struct s3_reader *s3_reader_of(struct backend_reader *r)
{
	assert(r && r->b);
	(void)s3_of(r->b);
	return (struct s3_reader *)r;
}

int s3_reader_open(struct backend *b, const char *obj, struct backend_reader **out,
		   uint64_t *size)
{
	struct s3 *s = s3_of(b);
	struct s3_reader *r = calloc(1, sizeof(*r));
	struct s3_request rq = { .method = "HEAD", .expect_404 = 1 };
	struct s3_response rs;
	int rc, i;

	*out = NULL;
	if (!r || !(r->key = s3_full_key(s, obj))) {
		rc = -ENOMEM;
		goto out;
	}
	rq.key = r->key;
	rc = s3_perform(s, &rq, &rs);
	if (rc)
		goto out;
	r->base.b = b;
	r->s = s;
	r->size = rs.content_length;
	memcpy(r->etag, rs.etag, sizeof(r->etag));
	r->ra = s3_ra_min(s);
	r->next_off = UINT64_MAX;     /* the first read starts no stream */
	r->inflight = s->cfg.t.read_parallel;
	r->nslots = r->inflight + 1;
	for (i = 0; i < S3_RA_SLOTS_MAX; i++)
		r->slot[i].r = r;
	*size = r->size;
	*out = &r->base;
out:
	if (rc && r) {
		free(r->key);
		free(r);
	}
	return rc;
}

/* GET [off, off+len) into dst; exactly len bytes or an error.  Thread-safe:
 * reads only what open set. */
static int s3_get_range(struct s3 *s, const struct s3_reader *r, void *dst, uint64_t off,
			size_t len)
{
	char range[64];
	struct sigv4_header h[2] = { { "Range", range }, { "If-Match", r->etag } };
	struct s3_request rq = { .method = "GET", .key = r->key, .headers = h,
				 .nheaders = r->etag[0] ? 2 : 1, .out = dst, .out_cap = len };
	struct s3_response rs;
	int rc;

	snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)off,
		 (unsigned long long)(off + len - 1));
	rc = s3_perform(s, &rq, &rs);
	if (rc == 0 && (rs.got != len || (rs.status != 206 && !(rs.status == 200 && off == 0)))) {
		log_err("s3: GET %s %s: got %zu bytes with HTTP %ld", r->key, range, rs.got,
			rs.status);
		rc = -EIO;
	}
	if (rc == -EIO && rs.status == 412)
		log_err("s3: %s changed while open", r->key);
	return rc;
}

/* Make room for len bytes in sl (not BUSY). */
static int slot_reserve(struct s3_slot *sl, size_t len)
{
	char *p;
	int rc = 0;

	if (sl->cap < len) {
		p = realloc(sl->buf, len);
		if (!p) {
			rc = -ENOMEM;
			goto out;
		}
		sl->buf = p;
		sl->cap = len;
	}
out:
	return rc;
}

static void *slot_worker(void *arg)
{
	struct s3_slot *sl = arg;

	sl->rc = s3_get_range(sl->r->s, sl->r, sl->buf, sl->off, sl->len);
	return NULL;
}

/* Wait for a BUSY slot; it ends READY (0) or EMPTY (the GET's error). */
static int slot_wait(struct s3_slot *sl)
{
	int rc;

	assert(sl->state == SLOT_BUSY);
	pthread_join(sl->th, NULL);
	rc = sl->rc;
	sl->state = rc ? SLOT_EMPTY : SLOT_READY;
	return rc;
}

/* Load [off, off+len) into sl on this thread. */
static int slot_fill(struct s3_reader *r, struct s3_slot *sl, uint64_t off, size_t len)
{
	int rc = slot_reserve(sl, len);

	sl->state = SLOT_EMPTY;
	if (rc == 0)
		rc = s3_get_range(r->s, r, sl->buf, off, len);
	if (rc == 0) {
		sl->off = off;
		sl->len = len;
		sl->state = SLOT_READY;
		sl->used = ++r->tick;
	}
	return rc;
}

/* Start loading [off, off+len) into sl in the background; 0, or -errno when
 * no thread could be started (sl stays EMPTY; the read goes on without). */
static int slot_start(struct s3_reader *r, struct s3_slot *sl, uint64_t off, size_t len)
{
	int rc = slot_reserve(sl, len);

	sl->state = SLOT_EMPTY;
	if (rc)
		goto out;
	sl->off = off;
	sl->len = len;
	sl->used = ++r->tick;
	rc = -pthread_create(&sl->th, NULL, slot_worker, sl);
	if (rc == 0)
		sl->state = SLOT_BUSY;
out:
	return rc;
}

/* The slot (READY or BUSY) holding byte pos, or NULL. */
static struct s3_slot *slot_find(struct s3_reader *r, uint64_t pos)
{
	int i;

	for (i = 0; i < (int)r->nslots; i++) {
		struct s3_slot *sl = &r->slot[i];

		if (sl->state != SLOT_EMPTY && pos >= sl->off && pos - sl->off < sl->len)
			return sl;
	}
	return NULL;
}

/* Is sl's window still wanted by the stream: not yet read, and not beyond
 * the windows the stream asked for? */
static int slot_ahead(const struct s3_reader *r, const struct s3_slot *sl)
{
	return r->pf_off && sl->off + sl->len > r->next_off && sl->off < r->pf_off;
}

/* A slot that is not BUSY, preferring EMPTY ones, then the least recently
 * used; with keep_ahead, never one the stream will still read.  NULL if none. */
static struct s3_slot *slot_free(struct s3_reader *r, int keep_ahead)
{
	struct s3_slot *best = NULL;
	int i;

	for (i = 0; i < (int)r->nslots; i++) {
		struct s3_slot *sl = &r->slot[i];

		if (sl->state == SLOT_BUSY || (keep_ahead && sl->state == SLOT_READY &&
					       slot_ahead(r, sl)))
			continue;
		if (sl->state == SLOT_EMPTY)
			return sl;
		if (!best || sl->used < best->used)
			best = sl;
	}
	return best;
}

static unsigned slots_busy(const struct s3_reader *r)
{
	unsigned n = 0;
	int i;

	for (i = 0; i < (int)r->nslots; i++)
		n += r->slot[i].state == SLOT_BUSY;
	return n;
}

/* The next window size: double, up to the maximum. */
static void ra_grow(struct s3_reader *r)
{
	size_t max = r->s->cfg.t.readahead_max;

	r->ra = r->ra <= max / 2 ? r->ra * 2 : max;
}

/* Sequential stream: keep up to r->inflight windows after next_off in
 * flight.  Failures to start one only mean less prefetch. */
static void prefetch(struct s3_reader *r)
{
	struct s3_slot *sl;
	size_t len;

	if (!r->pf_off || r->pf_off < r->next_off)
		r->pf_off = r->next_off;
	/* windows already there (READY or BUSY) that continue the stream */
	while ((sl = slot_find(r, r->pf_off)) != NULL)
		r->pf_off = sl->off + sl->len;
	while (r->pf_off < r->size && slots_busy(r) < r->inflight) {
		sl = slot_free(r, 1);
		if (!sl)
			break;
		len = r->size - r->pf_off < r->ra ? (size_t)(r->size - r->pf_off) : r->ra;
		if (slot_start(r, sl, r->pf_off, len))
			break;
		r->pf_off += len;
		ra_grow(r);
	}
}

int s3_reader_pread(struct backend_reader *br, void *buf, size_t len, uint64_t off,
		    size_t *got)
{
	struct s3_reader *r = s3_reader_of(br);
	struct s3_slot *sl;
	size_t n, max = r->s->cfg.t.readahead_max;
	int rc = 0, seq;

	*got = 0;
	if (off >= r->size)
		goto out;
	if (len > r->size - off)
		len = (size_t)(r->size - off);
	seq = off == r->next_off;
	if (!seq) {
		r->ra = s3_ra_min(r->s);
		r->pf_off = 0;
	} else if (r->ra < len) {
		/* windows never smaller than the reads of the stream */
		r->ra = len < max ? len : max;
	}
	r->next_off = off + len;
	while (*got < len && rc == 0) {
		uint64_t pos = off + *got;

		sl = slot_find(r, pos);
		if (sl && sl->state == SLOT_BUSY && slot_wait(sl))
			continue;     /* the prefetch failed: load it here (retries) */
		if (sl) {
			n = (size_t)(sl->off + sl->len - pos);
			if (n > len - *got)
				n = len - *got;
			memcpy((char *)buf + *got, sl->buf + (pos - sl->off), n);
			sl->used = ++r->tick;
			*got += n;
		} else if (len - *got >= r->ra) {
			/* as big as a window: straight into the caller's buffer */
			rc = s3_get_range(r->s, r, (char *)buf + *got, pos, len - *got);
			if (rc == 0)
				*got = len;
		} else {
			sl = slot_free(r, 0);   /* at most inflight are BUSY */
			assert(sl);
			n = r->size - pos < r->ra ? (size_t)(r->size - pos) : r->ra;
			rc = slot_fill(r, sl, pos, n);
			if (rc == 0 && seq)
				ra_grow(r);
		}
	}
	if (rc == 0 && seq)
		prefetch(r);
out:
	if (rc)
		*got = 0;
	return rc;
}

void s3_reader_close(struct backend_reader *br)
{
	struct s3_reader *r;
	int i;

	if (!br)
		return;
	r = s3_reader_of(br);
	for (i = 0; i < (int)r->nslots; i++) {
		if (r->slot[i].state == SLOT_BUSY)
			(void)slot_wait(&r->slot[i]);
		free(r->slot[i].buf);
	}
	free(r->key);
	free(r);
}
