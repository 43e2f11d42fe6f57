/*
 * backend.c — opening a backend by url, and the only callers of the ops
 * table: the backend_*() wrappers check arguments, trace, and run the fault
 * points "backend.put", "backend.read", "backend.remove" before each op.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "fault.h"
#include "log.h"
#ifdef LAMFS_WITH_S3
#include "s3.h"
#endif

void backend_set_errmsg(char **errmsg, const char *fmt, ...)
{
	va_list ap;

	if (errmsg) {
		free(*errmsg);
		*errmsg = NULL;
		va_start(ap, fmt);
		if (vasprintf(errmsg, fmt, ap) < 0)
			*errmsg = NULL;
		va_end(ap);
	}
}

/* "file:///abs" -> "/abs"; NULL for any other file url (a host, a relative
 * path).  Percent-escapes are not decoded: storage roots are plain paths. */
static const char *file_url_path(const char *url)
{
	const char *path = url + strlen("file://");

	return path[0] == '/' ? path : NULL;
}

/* Local backend for an absolute path or file url; url kept as configured. */
static int open_local(const char *url, const char *root, struct backend **out,
		      char **errmsg)
{
	char *copy = NULL;
	int rc = backend_local_open(root, out, errmsg);

	if (rc < 0 || url == root)
		goto out;
	copy = strdup(url);
	if (!copy) {
		backend_free(*out);
		*out = NULL;
		rc = -ENOMEM;
		goto out;
	}
	free((*out)->url);
	(*out)->url = copy;
out:
	return rc;
}

/* The S3 backend, or -EPROTONOSUPPORT in a build without it. */
static int open_s3(const char *url, const struct backend_opts *opts, struct backend **out,
		   char **errmsg)
{
	int rc;

#ifdef LAMFS_WITH_S3
	rc = backend_s3_open(url, opts, out, errmsg);
#else
	(void)opts;
	(void)out;
	rc = -EPROTONOSUPPORT;
	backend_set_errmsg(errmsg, "%s: this build has no S3 support", url);
#endif
	return rc;
}

int backend_open(const char *url, const struct backend_opts *opts, struct backend **out,
		 char **errmsg)
{
	int rc = -EINVAL;

	*out = NULL;
	if (errmsg)
		*errmsg = NULL;
	if (!url || !*url) {
		backend_set_errmsg(errmsg, "no storage url given");
	} else if (url[0] == '/') {
		rc = open_local(url, url, out, errmsg);
	} else if (strncmp(url, "file://", 7) == 0) {
		if (file_url_path(url))
			rc = open_local(url, file_url_path(url), out, errmsg);
		else
			backend_set_errmsg(errmsg, "storage url '%s': a file url must be "
					   "file:///absolute/path", url);
	} else if (strncmp(url, "s3://", 5) == 0) {
		rc = open_s3(url, opts, out, errmsg);
	} else {
		backend_set_errmsg(errmsg, "storage url '%s' is not supported: use an "
				   "absolute path, file:///path or s3://bucket[/prefix]", url);
	}
	/* a cache that cannot work is logged and left out: never an open error */
	if (rc == 0 && opts && opts->cache_dir && opts->cache_size)
		(void)backend_cache_wrap(*out, opts->cache_dir, opts->cache_size, out);
	return rc;
}

void backend_free(struct backend *b)
{
	if (b)
		b->ops->free(b);
}

const char *backend_name(const struct backend *b)
{
	return b ? b->ops->name : "none";
}

/*
 * 1 when obj is a usable object name: relative, no empty, "." or ".."
 * component, no trailing '/'.  Keeps a bug elsewhere from escaping the root.
 */
static int obj_valid(const char *obj)
{
	const char *p = obj;
	int ok = obj && *obj && *obj != '/';

	while (ok && p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		ok = len > 0 && !(len == 1 && p[0] == '.') &&
		     !(len == 2 && p[0] == '.' && p[1] == '.');
		p = slash ? slash + 1 : NULL;
	}
	return ok;
}

int backend_put(struct backend *b, const char *obj, const struct backend_src *src,
		int *consumed)
{
	int dummy = 0;
	int rc;

	assert(b && b->ops && src);
	if (!consumed)
		consumed = &dummy;
	*consumed = 0;
	if (!obj_valid(obj) || src->fd < 0 || (src->may_consume && !src->path)) {
		rc = -EINVAL;
		goto out;
	}
	rc = fault_check("backend.put");
	if (rc == 0 && !b->ops->put_noreplace) {
		uint64_t size;

		rc = b->ops->stat(b, obj, &size);
		if (rc == 0) {
			rc = size == src->size ? backend_same_content(b, obj, src) : 0;
			if (rc == 0) {
				log_err("backend %s: %s exists with other bytes; not replaced "
					"(saved after the metadata backup this instance was "
					"restored from? lamfs-repair lists such objects)",
					b->ops->name, obj);
				rc = -EEXIST;
			} else if (rc == 1) {
				rc = 0;         /* the same bytes: stored already */
				goto out;
			}
			goto out;
		}
		/* Cannot tell (a 403 on HEAD, a timeout): the put itself says
		 * what the store thinks of it, as it did before the check. */
		if (rc != -ENOENT)
			log_warn("backend %s: cannot check whether %s exists (%s); storing it",
				 b->ops->name, obj, strerror(-rc));
		rc = 0;
	}
	if (rc == 0)
		rc = b->ops->put(b, obj, src, consumed);
out:
	log_debug("backend %s: put %s (%llu bytes)%s = %d", b->ops->name, obj ? obj : "(null)",
		  (unsigned long long)src->size, *consumed ? " consumed" : "", rc);
	return rc;
}

int backend_reader_open(struct backend *b, const char *obj, struct backend_reader **out,
			uint64_t *size)
{
	uint64_t dummy;
	int rc;

	assert(b && b->ops && out);
	*out = NULL;
	if (!size)
		size = &dummy;
	*size = 0;
	rc = obj_valid(obj) ? fault_check("backend.read") : -EINVAL;
	if (rc == 0)
		rc = b->ops->reader_open(b, obj, out, size);
	if (rc == 0)
		(*out)->b = b;
	log_debug("backend %s: open %s = %d", b->ops->name, obj ? obj : "(null)", rc);
	return rc;
}

int backend_reader_pread(struct backend_reader *r, void *buf, size_t len, uint64_t off,
			 size_t *got)
{
	int rc;

	assert(r && r->b && got && (buf || len == 0));
	*got = 0;
	rc = fault_check("backend.read");
	if (rc == 0 && len > 0)
		rc = r->b->ops->reader_pread(r, buf, len, off, got);
	return rc;
}

void backend_reader_close(struct backend_reader *r)
{
	if (r)
		r->b->ops->reader_close(r);
}

int backend_remove(struct backend *b, const char *obj)
{
	int rc;

	assert(b && b->ops);
	rc = obj_valid(obj) ? fault_check("backend.remove") : -EINVAL;
	if (rc == 0)
		rc = b->ops->remove(b, obj);
	log_debug("backend %s: remove %s = %d", b->ops->name, obj ? obj : "(null)", rc);
	return rc;
}

int backend_stat(struct backend *b, const char *obj, uint64_t *size)
{
	int rc = -EINVAL;

	assert(b && b->ops && size);
	*size = 0;
	if (obj_valid(obj))
		rc = b->ops->stat(b, obj, size);
	return rc;
}

int backend_list(struct backend *b, const char *prefix, backend_list_cb cb, void *ctx)
{
	assert(b && b->ops && cb);
	return b->ops->list(b, prefix ? prefix : "", cb, ctx);
}

int backend_cleanup_incomplete(struct backend *b, int dry_run, unsigned *n)
{
	unsigned dummy;
	int rc = 0;

	assert(b && b->ops);
	if (!n)
		n = &dummy;
	*n = 0;
	if (b->ops->cleanup_incomplete)
		rc = b->ops->cleanup_incomplete(b, dry_run, n);
	log_debug("backend %s: cleanup_incomplete%s: %u, rc %d", b->ops->name,
		  dry_run ? " (dry run)" : "", *n, rc);
	return rc;
}

int backend_space(struct backend *b, uint64_t *total, uint64_t *avail)
{
	int rc = -ENOTSUP;

	assert(b && b->ops && total && avail);
	*total = 0;
	*avail = 0;
	if (b->ops->space)
		rc = b->ops->space(b, total, avail);
	return rc;
}

int backend_same_content(struct backend *b, const char *obj, const struct backend_src *src)
{
	struct backend_reader *r = NULL;
	unsigned char *a = NULL, *c = NULL;
	const size_t chunk = 1u << 20;
	uint64_t size = 0, off = 0;
	int rc;

	rc = b->ops->reader_open(b, obj, &r, &size);
	if (rc < 0)
		goto out;
	r->b = b;
	if (size != src->size) {
		rc = 0;
		goto out;
	}
	a = malloc(chunk);
	c = malloc(chunk);
	if (!a || !c) {
		rc = -ENOMEM;
		goto out;
	}
	rc = 1;
	while (rc == 1 && off < size) {
		size_t want = size - off < chunk ? (size_t)(size - off) : chunk, got = 0;
		ssize_t n;
		int e = b->ops->reader_pread(r, a, want, off, &got);

		if (e < 0) {
			rc = e;
			break;
		}
		n = pread(src->fd, c, want, (off_t)off);
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (got != want || (size_t)n != want || memcmp(a, c, want))
			rc = 0;
		off += want;
	}
out:
	if (r)
		b->ops->reader_close(r);
	free(a);
	free(c);
	return rc;
}
