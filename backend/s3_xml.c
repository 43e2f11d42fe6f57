/*
 * s3_xml.c — S3's XML documents through expat: a path walker and the few
 * document readers the backend needs on top of it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>

#include "s3_xml.h"

#define S3_XML_DEPTH_MAX 32

struct s3_xml_walker {
	XML_Parser parser;
	struct s3_buf path;                 /* "A/B/C" of the open elements */
	size_t mark[S3_XML_DEPTH_MAX];      /* path length before each open element */
	unsigned depth;
	struct s3_buf text;                 /* character data since the last tag */
	s3_xml_cb cb;
	void *ctx;
	int rc;                             /* first error or the cb's stop value */
};

static void s3_xml_stop(struct s3_xml_walker *w, int rc)
{
	if (w->rc == 0)
		w->rc = rc;
	XML_StopParser(w->parser, XML_FALSE);
}

static void XMLCALL s3_xml_start(void *data, const XML_Char *name, const XML_Char **attrs)
{
	struct s3_xml_walker *w = data;
	const char *colon = strchr(name, ':');

	(void)attrs;
	if (w->rc)
		return;
	if (w->depth == S3_XML_DEPTH_MAX) {
		s3_xml_stop(w, -EIO);
		return;
	}
	w->mark[w->depth++] = w->path.len;
	if (w->path.len)
		s3_buf_add(&w->path, "/", 1);
	s3_buf_adds(&w->path, colon ? colon + 1 : name);
	s3_buf_clear(&w->text);
	if (w->path.oom)
		s3_xml_stop(w, -ENOMEM);
}

static void XMLCALL s3_xml_end(void *data, const XML_Char *name)
{
	struct s3_xml_walker *w = data;
	int rc;

	(void)name;
	if (w->rc)
		return;
	if (w->text.oom) {
		/* an append refused for the limit leaves len below it: tell the two
		 * apart by what was refused, not by what was kept */
		s3_xml_stop(w, w->text.over ? -EIO : -ENOMEM);
		return;
	}
	rc = w->cb(w->ctx, w->path.data, w->text.data ? w->text.data : "");
	if (rc) {
		s3_xml_stop(w, rc);
		return;
	}
	w->depth--;
	w->path.len = w->mark[w->depth];
	w->path.data[w->path.len] = '\0';
	s3_buf_clear(&w->text);
}

static void XMLCALL s3_xml_chars(void *data, const XML_Char *s, int len)
{
	struct s3_xml_walker *w = data;

	if (w->rc == 0 && len > 0)
		s3_buf_add(&w->text, s, (size_t)len);
}

int s3_xml_walk(const char *doc, size_t len, s3_xml_cb cb, void *ctx)
{
	struct s3_xml_walker w = { .path = S3_BUF_INIT, .text = S3_BUF_INIT, .cb = cb,
				   .ctx = ctx };
	enum XML_Status st;

	w.text.limit = S3_XML_TEXT_MAX;
	w.parser = XML_ParserCreate("UTF-8");
	if (!w.parser) {
		w.rc = -ENOMEM;
		goto out;
	}
	if (len > (size_t)INT32_MAX) {
		w.rc = -EIO;
		goto out;
	}
	XML_SetUserData(w.parser, &w);
	XML_SetElementHandler(w.parser, s3_xml_start, s3_xml_end);
	XML_SetCharacterDataHandler(w.parser, s3_xml_chars);
	st = XML_Parse(w.parser, doc ? doc : "", (int)len, XML_TRUE);
	if (st == XML_STATUS_ERROR && w.rc == 0)
		w.rc = XML_GetErrorCode(w.parser) == XML_ERROR_NO_MEMORY ? -ENOMEM : -EIO;
out:
	if (w.parser)
		XML_ParserFree(w.parser);
	s3_buf_release(&w.path);
	s3_buf_release(&w.text);
	return w.rc;
}

/* Copy src into dst[size], truncated, always terminated. */
static void s3_xml_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Replace *dst with a copy of src; 0 or -ENOMEM. */
static int s3_xml_set(char **dst, const char *src)
{
	char *s = strdup(src);

	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

/* Whether an element path is exactly `want`. */
static int s3_xml_is(const char *path, const char *want)
{
	return strcmp(path, want) == 0;
}

struct s3_xml_error_ctx {
	struct s3_xml_error *e;
	int is_error;
};

static int s3_xml_error_cb(void *ctx, const char *path, const char *text)
{
	struct s3_xml_error_ctx *c = ctx;

	if (s3_xml_is(path, "Error"))
		c->is_error = 1;
	else if (s3_xml_is(path, "Error/Code"))
		s3_xml_copy(c->e->code, sizeof(c->e->code), text);
	else if (s3_xml_is(path, "Error/Message"))
		s3_xml_copy(c->e->message, sizeof(c->e->message), text);
	return 0;
}

int s3_xml_parse_error(const char *doc, size_t len, struct s3_xml_error *e)
{
	struct s3_xml_error_ctx c = { .e = e };
	int rc;

	memset(e, 0, sizeof(*e));
	rc = s3_xml_walk(doc, len, s3_xml_error_cb, &c);
	if (rc == 0 && !c.is_error)
		rc = -ENOENT;
	return rc;
}

static int s3_xml_upload_id_cb(void *ctx, const char *path, const char *text)
{
	return s3_xml_is(path, "InitiateMultipartUploadResult/UploadId") ?
		       s3_xml_set(ctx, text) : 0;
}

int s3_xml_upload_id(const char *doc, size_t len, char **upload_id)
{
	char *id = NULL;
	int rc = s3_xml_walk(doc, len, s3_xml_upload_id_cb, &id);

	if (rc == 0 && (!id || !id[0]))
		rc = -EIO;
	if (rc) {
		free(id);
		id = NULL;
	}
	*upload_id = id;
	return rc;
}

void s3_xml_page_release(struct s3_xml_page *p)
{
	free(p->next_token);
	free(p->next_key);
	free(p->next_upload_id);
	memset(p, 0, sizeof(*p));
}

static int s3_xml_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int s3_xml_url_decode(char *s)
{
	int rc = 0;
	char *d = s;
	int hi, lo;

	while (*s) {
		if (*s == '%') {
			hi = s3_xml_hexval(s[1]);
			lo = hi < 0 ? -1 : s3_xml_hexval(s[2]);
			if (lo < 0) {
				rc = -EIO;
				goto out;
			}
			*d++ = (char)(hi * 16 + lo);
			s += 3;
		} else {
			*d++ = *s == '+' ? ' ' : *s;
			s++;
		}
	}
out:
	*d = '\0';
	return rc;
}

/* Listing state shared by both listings: the current entry and the page. */
struct s3_xml_list_ctx {
	const char *root;          /* "ListBucketResult" or "ListMultipartUploadsResult" */
	const char *entry;         /* "Contents" or "Upload" */
	s3_xml_object_cb object_cb;
	s3_xml_upload_cb upload_cb;
	void *ctx;
	struct s3_xml_page *page;
	char *key;
	char *upload_id;
	uint64_t size;
	int url_encoded;
	int seen_root;
};

/* Strip "root/" from path; NULL when path is not inside the root. */
static const char *s3_xml_rel(const struct s3_xml_list_ctx *c, const char *path)
{
	size_t n = strlen(c->root);

	if (strncmp(path, c->root, n) != 0 || path[n] != '/')
		return NULL;
	return path + n + 1;
}

static int s3_xml_entry_done(struct s3_xml_list_ctx *c)
{
	int rc = 0;

	if (!c->key) {
		rc = -EIO;
		goto out;
	}
	if (c->url_encoded) {
		rc = s3_xml_url_decode(c->key);
		if (rc)
			goto out;
	}
	if (c->object_cb) {
		rc = c->object_cb(c->ctx, c->key, c->size);
	} else {
		if (!c->upload_id) {
			rc = -EIO;
			goto out;
		}
		rc = c->upload_cb(c->ctx, c->key, c->upload_id);
	}
out:
	free(c->key);
	free(c->upload_id);
	c->key = NULL;
	c->upload_id = NULL;
	c->size = 0;
	return rc;
}

/* A decimal uint64; -EIO when text is not one. */
static int s3_xml_u64(const char *text, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-')
		return -EIO;
	*out = v;
	return 0;
}

static int s3_xml_list_cb(void *ctx, const char *path, const char *text)
{
	struct s3_xml_list_ctx *c = ctx;
	const char *rel = s3_xml_rel(c, path);
	size_t n = strlen(c->entry);
	int rc = 0;

	if (!rel) {
		if (s3_xml_is(path, c->root))
			c->seen_root = 1;
		goto out;
	}
	if (strncmp(rel, c->entry, n) == 0 && (rel[n] == '\0' || rel[n] == '/')) {
		rel += n;
		if (*rel == '\0')
			rc = s3_xml_entry_done(c);
		else if (s3_xml_is(rel, "/Key"))
			rc = s3_xml_set(&c->key, text);
		else if (s3_xml_is(rel, "/UploadId"))
			rc = s3_xml_set(&c->upload_id, text);
		else if (s3_xml_is(rel, "/Size"))
			rc = s3_xml_u64(text, &c->size);
	} else if (s3_xml_is(rel, "IsTruncated")) {
		c->page->truncated = strcmp(text, "true") == 0;
	} else if (s3_xml_is(rel, "EncodingType")) {
		c->url_encoded = strcmp(text, "url") == 0;
	} else if (s3_xml_is(rel, "NextContinuationToken")) {
		rc = s3_xml_set(&c->page->next_token, text);
	} else if (s3_xml_is(rel, "NextKeyMarker")) {
		rc = s3_xml_set(&c->page->next_key, text);
	} else if (s3_xml_is(rel, "NextUploadIdMarker")) {
		rc = s3_xml_set(&c->page->next_upload_id, text);
	}
out:
	return rc;
}

/* EncodingType comes after the entries in ListObjectsV2 responses, so the
 * url-decoding decision is made from a first pass over the document. */
static int s3_xml_encoding_cb(void *ctx, const char *path, const char *text)
{
	struct s3_xml_list_ctx *c = ctx;
	const char *rel = s3_xml_rel(c, path);

	if (rel && s3_xml_is(rel, "EncodingType"))
		c->url_encoded = strcmp(text, "url") == 0;
	return 0;
}

static int s3_xml_list(struct s3_xml_list_ctx *c, const char *doc, size_t len)
{
	int rc;

	memset(c->page, 0, sizeof(*c->page));
	rc = s3_xml_walk(doc, len, s3_xml_encoding_cb, c);
	if (rc == 0)
		rc = s3_xml_walk(doc, len, s3_xml_list_cb, c);
	if (rc == 0 && !c->seen_root)
		rc = -EIO;
	if (rc == 0 && c->page->truncated &&
	    (c->object_cb ? !c->page->next_token : !c->page->next_key))
		rc = -EIO;
	free(c->key);
	free(c->upload_id);
	if (rc == 0 && c->url_encoded && c->page->next_key)
		rc = s3_xml_url_decode(c->page->next_key);
	if (rc)
		s3_xml_page_release(c->page); /* on error the page is never set */
	return rc;
}

int s3_xml_list_objects(const char *doc, size_t len, s3_xml_object_cb cb, void *ctx,
			struct s3_xml_page *page)
{
	struct s3_xml_list_ctx c = { .root = "ListBucketResult", .entry = "Contents",
				     .object_cb = cb, .ctx = ctx, .page = page };

	return s3_xml_list(&c, doc, len);
}

int s3_xml_list_uploads(const char *doc, size_t len, s3_xml_upload_cb cb, void *ctx,
			struct s3_xml_page *page)
{
	struct s3_xml_list_ctx c = { .root = "ListMultipartUploadsResult", .entry = "Upload",
				     .upload_cb = cb, .ctx = ctx, .page = page };

	return s3_xml_list(&c, doc, len);
}

void s3_xml_escape(struct s3_buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': s3_buf_adds(b, "&amp;"); break;
		case '<': s3_buf_adds(b, "&lt;"); break;
		case '>': s3_buf_adds(b, "&gt;"); break;
		case '"': s3_buf_adds(b, "&quot;"); break;
		case '\'': s3_buf_adds(b, "&apos;"); break;
		default: s3_buf_add(b, s, 1); break;
		}
	}
}
