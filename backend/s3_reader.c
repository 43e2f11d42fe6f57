/*
 * s3_reader.c — reading an object with ranged GETs and a readahead window.
 *
 * Each reader keeps one buffer holding the window [win_off, win_off+win_len)
 * of the object.  A read that continues where the previous one ended doubles
 * the next window (S3_RA_MIN up to cfg.t.readahead_max); any other read drops
 * back to S3_RA_MIN.  A read larger than the window goes straight into the
 * caller's buffer.  Memory bound per open reader: readahead_max (default
 * 8 MiB, LAMFS_S3_READAHEAD) plus the struct.  Connections come from the
 * backend's handle pool, so sequential readers reuse them.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "s3_int.h"

#define S3_RA_MIN (256u << 10)

struct s3_reader {
	struct backend_reader base;   /* first */
	char *key;
	uint64_t size;                /* from the HEAD at open */
	char etag[S3_ETAG_MAX];       /* If-Match: the object read is the one opened */
	char *buf;                    /* the window, buf_cap bytes allocated */
	size_t buf_cap;
	uint64_t win_off;
	size_t win_len;
	size_t ra;                    /* size of the next window */
	uint64_t next_off;            /* where a sequential read would start */
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
	int rc;

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
	r->size = rs.content_length;
	memcpy(r->etag, rs.etag, sizeof(r->etag));
	r->ra = s3_ra_min(s);
	*size = r->size;
	*out = &r->base;
out:
	if (rc && r) {
		free(r->key);
		free(r);
	}
	return rc;
}

/* GET [off, off+len) into dst; exactly len bytes or an error. */
static int s3_get_range(struct s3 *s, struct s3_reader *r, void *dst, uint64_t off, size_t len)
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

/* Load the window starting at off, of up to r->ra bytes. */
static int s3_fill(struct s3 *s, struct s3_reader *r, uint64_t off)
{
	size_t want = r->ra;
	char *p;
	int rc = 0;

	if (r->size - off < want)
		want = (size_t)(r->size - off);
	if (r->buf_cap < want) {
		p = realloc(r->buf, want);
		if (!p) {
			rc = -ENOMEM;
			goto out;
		}
		r->buf = p;
		r->buf_cap = want;
	}
	r->win_len = 0;
	rc = s3_get_range(s, r, r->buf, off, want);
	if (rc == 0) {
		r->win_off = off;
		r->win_len = want;
	}
out:
	return rc;
}

int s3_reader_pread(struct backend_reader *br, void *buf, size_t len, uint64_t off,
		    size_t *got)
{
	struct s3_reader *r = s3_reader_of(br);
	struct s3 *s = s3_of(br->b);
	size_t n;
	int rc = 0, seq;

	*got = 0;
	if (off >= r->size)
		goto out;
	if (len > r->size - off)
		len = (size_t)(r->size - off);
	seq = off == r->next_off;
	if (!seq)
		r->ra = s3_ra_min(s);
	r->next_off = off + len;
	while (*got < len && rc == 0) {
		uint64_t pos = off + *got;

		if (pos >= r->win_off && pos < r->win_off + r->win_len) {
			n = (size_t)(r->win_off + r->win_len - pos);
			if (n > len - *got)
				n = len - *got;
			memcpy((char *)buf + *got, r->buf + (pos - r->win_off), n);
			*got += n;
		} else if (len - *got >= r->ra) {
			rc = s3_get_range(s, r, (char *)buf + *got, pos, len - *got);
			if (rc == 0)
				*got = len;
		} else {
			rc = s3_fill(s, r, pos);
			/* sequential: the next window is twice this one */
			if (rc == 0 && seq)
				r->ra = r->ra <= s->cfg.t.readahead_max / 2 ?
						r->ra * 2 : s->cfg.t.readahead_max;
		}
	}
out:
	if (rc)
		*got = 0;
	return rc;
}

void s3_reader_close(struct backend_reader *br)
{
	struct s3_reader *r;

	if (!br)
		return;
	r = s3_reader_of(br);
	free(r->buf);
	free(r->key);
	free(r);
}
