/*
 * s3_buf.c — growable byte buffer with a sticky out-of-memory flag.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_buf.h"

/* Make room for n more bytes plus the terminating NUL; 0 or -1. */
static int s3_buf_grow(struct s3_buf *b, size_t n)
{
	int rc = 0;
	size_t want, cap;
	char *p;

	if (b->oom) {
		rc = -1;
		goto out;
	}
	if (n > (size_t)-1 / 2 - b->len ||
	    (b->limit && b->len + n > b->limit)) {
		b->oom = 1;
		b->over = b->limit && b->len + n > b->limit;
		rc = -1;
		goto out;
	}
	want = b->len + n + 1;
	if (want <= b->cap)
		goto out;
	cap = b->cap ? b->cap : 64;
	while (cap < want)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p) {
		b->oom = 1;
		rc = -1;
		goto out;
	}
	b->data = p;
	b->cap = cap;
out:
	return rc;
}

void s3_buf_add(struct s3_buf *b, const void *p, size_t n)
{
	if (s3_buf_grow(b, n) == 0) {
		if (n)
			memcpy(b->data + b->len, p, n);
		b->len += n;
		b->data[b->len] = '\0';
	}
}

void s3_buf_adds(struct s3_buf *b, const char *s)
{
	s3_buf_add(b, s, strlen(s));
}

void s3_buf_addf(struct s3_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = 1;
		return;
	}
	if (s3_buf_grow(b, (size_t)n) == 0) {
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
		b->len += (size_t)n;
	}
}

void s3_buf_clear(struct s3_buf *b)
{
	b->len = 0;
	b->oom = 0;
	b->over = 0;
	if (b->data)
		b->data[0] = '\0';
}

char *s3_buf_detach(struct s3_buf *b)
{
	char *s = NULL;

	if (!b->oom) {
		s = b->data ? b->data : strdup("");
		b->data = NULL;
	}
	s3_buf_release(b);
	return s;
}

void s3_buf_release(struct s3_buf *b)
{
	size_t limit = b->limit;

	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->oom = 0;
	b->over = 0;
	b->limit = limit;
}
