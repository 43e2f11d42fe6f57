/*
 * s3_buf.h — a growable byte buffer for the S3 backend and its signer.
 *
 * Running out of memory is sticky: after a failed allocation every append is
 * a no-op and s3_buf_detach() returns NULL, so a caller builds a whole string
 * and checks once.  The data is always NUL-terminated when not NULL.
 * Not thread-safe per buffer.
 */
#ifndef LAMFS_S3_BUF_H
#define LAMFS_S3_BUF_H

#include <stddef.h>

struct s3_buf {
	char *data;      /* NUL-terminated, or NULL while empty */
	size_t len;
	size_t cap;
	size_t limit;    /* 0: unlimited; else appends past it fail (oom set) */
	int oom;         /* an append failed; the content is incomplete */
	int over;        /* that failure was the limit, not memory */
};

#define S3_BUF_INIT { NULL, 0, 0, 0, 0, 0 }

void s3_buf_add(struct s3_buf *b, const void *p, size_t n);
void s3_buf_adds(struct s3_buf *b, const char *s);
void s3_buf_addf(struct s3_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Empty the buffer, keeping its memory and clearing oom. */
void s3_buf_clear(struct s3_buf *b);
/* The content as a malloc'd string the caller frees (an empty string when
 * nothing was added); NULL when an append failed.  The buffer is left empty. */
char *s3_buf_detach(struct s3_buf *b);
/* Free the memory; the buffer is empty afterwards (its limit is kept). */
void s3_buf_release(struct s3_buf *b);

#endif
