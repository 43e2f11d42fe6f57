/*
 * fuzz_s3_xml.c — the S3 response readers of backend/s3_xml.h, as a hostile
 * server could feed them.
 *
 * Every input goes through all readers (walk, error body, upload id, both
 * listings) and the url decoder.  Checks, besides memory safety and leaks:
 *   - results are only those the header lists: 0, -EIO (malformed or
 *     unexpected), -ENOENT (parse_error: another document), a callback's stop
 *     value — and never -ENOMEM for these small inputs (no allocation can
 *     really fail here, so -ENOMEM would be a misreported malformed document);
 *   - the walker hands out a path and text for every element, text at most
 *     S3_XML_TEXT_MAX bytes; a non-zero callback value stops the walk and
 *     comes back unchanged;
 *   - out-parameters are set only on success (upload id non-empty; a
 *     truncated listing has its continuation marker);
 *   - the url decoder never lengthens a string;
 *   - escaping round-trips: <a>escape(s)</a> walks back to s for printable s.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_buf.h"
#include "s3_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "fuzz_s3_xml: check failed: %s (line %d)\n", #cond, \
				__LINE__);                                            \
			abort();                                                      \
		}                                                                     \
	} while (0)

#define STOP 4242     /* a callback's own stop value */

struct walk_ctx {
	unsigned calls;
	unsigned stop_at;   /* 0: never */
};

static int walk_cb(void *ctx, const char *path, const char *text)
{
	struct walk_ctx *w = ctx;

	CHECK(path && text);
	CHECK(strlen(text) <= S3_XML_TEXT_MAX);
	w->calls++;
	return w->stop_at && w->calls == w->stop_at ? STOP : 0;
}

static int object_cb(void *ctx, const char *key, uint64_t size)
{
	unsigned *n = ctx;

	(void)size;
	CHECK(key);
	(*n)++;
	return 0;
}

static int upload_cb(void *ctx, const char *key, const char *upload_id)
{
	unsigned *n = ctx;

	CHECK(key && upload_id);
	(*n)++;
	return 0;
}

/* The header's promise for a parser result on a small document. */
static void check_rc(const char *what, int rc)
{
	if (rc == 0 || rc == -EIO)
		return;
	fprintf(stderr, "fuzz_s3_xml: %s returned %d (%s); s3_xml.h allows 0 or -EIO here "
		"(-ENOMEM only when memory runs out)\n", what, rc, strerror(-rc));
	abort();
}

struct rt_ctx {
	const char *want;
	int seen;
};

static int rt_cb(void *ctx, const char *path, const char *text)
{
	struct rt_ctx *c = ctx;

	CHECK(!strcmp(path, "a"));
	if (strcmp(text, c->want) != 0) {
		fprintf(stderr, "fuzz_s3_xml: escape round trip: '%s' came back as '%s'\n",
			c->want, text);
		abort();
	}
	c->seen++;
	return 0;
}

static void check_roundtrip(const uint8_t *data, size_t size)
{
	struct s3_buf in = S3_BUF_INIT, doc = S3_BUF_INIT;
	struct rt_ctx c = { NULL, 0 };
	char *s;
	size_t i;

	for (i = 0; i < size && i < 4096; i++)
		if (data[i] >= 0x20 && data[i] < 0x7F)
			s3_buf_add(&in, &data[i], 1);
	s = s3_buf_detach(&in);
	CHECK(s);
	s3_buf_adds(&doc, "<a>");
	s3_xml_escape(&doc, s);
	s3_buf_adds(&doc, "</a>");
	CHECK(!doc.oom);
	c.want = s;
	CHECK(s3_xml_walk(doc.data, doc.len, rt_cb, &c) == 0);
	CHECK(c.seen == 1);
	s3_buf_release(&doc);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *doc = (const char *)data;
	struct walk_ctx w = { 0, 0 };
	struct s3_xml_error e;
	struct s3_xml_page page;
	char *id = (char *)"untouched";
	unsigned n = 0;
	int rc;

	if (size > 256 * 1024)
		return -1;

	rc = s3_xml_walk(doc, size, walk_cb, &w);
	check_rc("s3_xml_walk", rc);
	if (w.calls > 0) {
		/* Stop at the last element: the stop value must come back. */
		struct walk_ctx w2 = { 0, w.calls };

		rc = s3_xml_walk(doc, size, walk_cb, &w2);
		CHECK(rc == STOP);
		CHECK(w2.calls == w.calls);
	}

	rc = s3_xml_parse_error(doc, size, &e);
	if (rc != -ENOENT)
		check_rc("s3_xml_parse_error", rc);
	CHECK(strnlen(e.code, sizeof(e.code)) < sizeof(e.code));
	CHECK(strnlen(e.message, sizeof(e.message)) < sizeof(e.message));

	rc = s3_xml_upload_id(doc, size, &id);
	check_rc("s3_xml_upload_id", rc);
	CHECK(rc == 0 ? (id && id[0]) : id == NULL);
	free(id);

	memset(&page, 0xA5, sizeof(page));
	rc = s3_xml_list_objects(doc, size, object_cb, &n, &page);
	check_rc("s3_xml_list_objects", rc);
	if (rc == 0 && page.truncated)
		CHECK(page.next_token != NULL);
	if (rc != 0)
		CHECK(!page.next_token && !page.next_key && !page.next_upload_id);
	s3_xml_page_release(&page);

	memset(&page, 0x5A, sizeof(page));
	rc = s3_xml_list_uploads(doc, size, upload_cb, &n, &page);
	check_rc("s3_xml_list_uploads", rc);
	if (rc == 0 && page.truncated)
		CHECK(page.next_key != NULL);
	if (rc != 0)
		CHECK(!page.next_token && !page.next_key && !page.next_upload_id);
	s3_xml_page_release(&page);

	{
		char *s = malloc(size + 1);
		size_t before;

		CHECK(s);
		memcpy(s, data, size);
		s[size] = '\0';
		before = strlen(s);
		rc = s3_xml_url_decode(s);
		CHECK(rc == 0 || rc == -EIO);
		CHECK(strlen(s) <= before);
		free(s);
	}

	check_roundtrip(data, size);
	return 0;
}
