/*
 * s3.c — the S3 backend's handle: opening (url, settings, endpoint, the
 * bucket check and the write probe), stat, remove, list and
 * cleanup_incomplete.  Uploads are in s3_put.c, reads in s3_reader.c, the
 * HTTP exchange in s3_http.c.
 *
 * Object names are relative to the root s3://bucket/prefix/; the S3 key is
 * prefix + name.  Temporaries (only the write probe of open) are named
 * "<prefix>.lamindb/.tmp.*" like the local backend's, so cleanup finds them.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "lamfs.h"
#include "log.h"
#include "s3.h"
#include "s3_int.h"

#define S3_TMP_PREFIX LAMFS_STORAGE_DIR "/.tmp."

static const struct backend_ops s3_ops;

struct s3 *s3_of(struct backend *b)
{
	assert(b && b->ops == &s3_ops);
	return (struct s3 *)b;
}

/* ---- opening ---- */

/* "s3://bucket[/prefix]" -> bucket and "" or "prefix/" (slashes trimmed). */
static int s3_parse_url(struct s3 *s, const char *url, char **errmsg)
{
	int rc = 0;
	const char *b = url + strlen("s3://"), *slash = strchr(b, '/');
	size_t blen = slash ? (size_t)(slash - b) : strlen(b), i, plen;
	const char *p = slash ? slash + strspn(slash, "/") : "";

	for (i = 0; i < blen; i++)
		if (!isalnum((unsigned char)b[i]) && !strchr("._-", b[i]))
			break;
	if (strncmp(url, "s3://", 5) != 0 || blen == 0 || i < blen) {
		rc = -EINVAL;
		backend_set_errmsg(errmsg, "storage url '%s': expected s3://bucket[/prefix] "
				   "with a bucket name of letters, digits, '.', '-', '_'", url);
		goto out;
	}
	plen = strlen(p);
	while (plen && p[plen - 1] == '/')
		plen--;
	s->bucket = strndup(b, blen);
	if (asprintf(&s->prefix, "%.*s%s", (int)plen, p, plen ? "/" : "") < 0)
		s->prefix = NULL;
	if (!s->bucket || !s->prefix)
		rc = -ENOMEM;
out:
	return rc;
}

/* AWS's own endpoint for the region: virtual host unless told otherwise or
 * the bucket has a dot (a dotted name breaks the certificate's wildcard). */
static int s3_aws_endpoint(struct s3 *s)
{
	const char *domain = strncmp(s->cfg.region, "cn-", 3) == 0 ? "amazonaws.com.cn" :
				     "amazonaws.com";
	int virt = s->cfg.addressing == S3_ADDR_VIRTUAL ||
		   (s->cfg.addressing == S3_ADDR_AUTO && !strchr(s->bucket, '.'));
	int n;

	s->virtual_host = virt;
	if (virt)
		n = asprintf(&s->host, "%s.s3.%s.%s", s->bucket, s->cfg.region, domain);
	else
		n = asprintf(&s->host, "s3.%s.%s", s->cfg.region, domain);
	if (n < 0)
		s->host = NULL;
	if (s->host && asprintf(&s->endpoint_shown, "https://s3.%s.%s", s->cfg.region,
				domain) < 0)
		s->endpoint_shown = NULL;
	if (s->host && asprintf(&s->origin, "https://%s", s->host) < 0)
		s->origin = NULL;
	s->base_path = virt ? strdup("") : sigv4_encode(s->bucket, 0);
	if (s->base_path && !virt) {
		char *bp = NULL;

		if (asprintf(&bp, "/%s", s->base_path) < 0)
			bp = NULL;
		free(s->base_path);
		s->base_path = bp;
	}
	return (s->host && s->endpoint_shown && s->origin && s->base_path) ? 0 : -ENOMEM;
}

/* A configured endpoint "http[s]://authority[/path]": path style unless the
 * configuration asks for virtual hosts (bucket.authority). */
static int s3_custom_endpoint(struct s3 *s, char **errmsg)
{
	int rc = 0;
	const char *e = s->cfg.endpoint, *auth, *path;
	size_t alen, plen;
	int https = strncasecmp(e, "https://", 8) == 0;
	int virt = s->cfg.addressing == S3_ADDR_VIRTUAL;

	s->virtual_host = virt;
	if (!https && strncasecmp(e, "http://", 7) != 0) {
		rc = -EINVAL;
		backend_set_errmsg(errmsg, "S3 endpoint '%s' must start with https:// (or "
				   "http:// for a local server)", e);
		goto out;
	}
	auth = e + (https ? 8 : 7);
	alen = strcspn(auth, "/?#");
	path = auth + alen;
	plen = strcspn(path, "?#");
	while (plen && path[plen - 1] == '/')
		plen--;
	if (alen == 0 || memchr(auth, '@', alen) || path[strcspn(path, "?#")]) {
		rc = -EINVAL;
		backend_set_errmsg(errmsg, "S3 endpoint: expected http[s]://host[:port][/path] "
				   "without user, query or fragment");
		goto out;
	}
	if (asprintf(&s->endpoint_shown, "%s%.*s", https ? "https://" : "http://", (int)alen,
		     auth) < 0)
		s->endpoint_shown = NULL;
	if (asprintf(&s->host, "%s%s%.*s", virt ? s->bucket : "", virt ? "." : "", (int)alen,
		     auth) < 0)
		s->host = NULL;
	if (s->host && asprintf(&s->origin, "%s%s", https ? "https://" : "http://",
				s->host) < 0)
		s->origin = NULL;
	if (asprintf(&s->base_path, "%.*s%s%s", (int)plen, path, virt ? "" : "/",
		     virt ? "" : s->bucket) < 0)
		s->base_path = NULL;
	if (!s->endpoint_shown || !s->host || !s->origin || !s->base_path)
		rc = -ENOMEM;
out:
	return rc;
}

static pthread_once_t s3_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s3_curl_init_rc;

static void s3_curl_init(void)
{
	s3_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int s3_ignore_object(void *ctx, const char *key, uint64_t size)
{
	(void)ctx;
	(void)key;
	(void)size;
	return 0;
}

/* One cheap signed request that proves endpoint, credentials, region and
 * bucket: list at most one key under the prefix. */
static int s3_check_bucket(struct s3 *s, char **errmsg)
{
	struct sigv4_param q[] = { { "list-type", "2" }, { "max-keys", "1" },
				   { "prefix", s->prefix } };
	struct s3_buf xml = S3_BUF_INIT;
	struct s3_request rq = { .method = "GET", .query = q, .nquery = 3, .xml = &xml };
	struct s3_response rs;
	struct s3_xml_page page;
	char why[512];
	int rc;

	xml.limit = S3_XML_MAX;
	rc = s3_perform(s, &rq, &rs);
	if (rc) {
		s3_describe(s, &rs, why, sizeof(why));
		backend_set_errmsg(errmsg, "%s", why);
		goto out;
	}
	rc = s3_xml_list_objects(xml.data, xml.len, s3_ignore_object, NULL, &page);
	s3_xml_page_release(&page);
	if (rc == -EIO)
		backend_set_errmsg(errmsg, "%s did not answer like S3 (HTTP %ld without a "
				   "bucket listing): check the endpoint", s->endpoint_shown,
				   rs.status);
out:
	s3_buf_release(&xml);
	return rc;
}

/* init: put and delete a small object under the prefix. */
static int s3_probe_write(struct s3 *s, char **errmsg)
{
	static const char body[] = "lamfs write probe\n";
	unsigned char rnd[8];
	char name[sizeof(S3_TMP_PREFIX) + 32], md5b64[32], sha[65], why[512];
	char *key = NULL;
	struct s3_body bd = { .mem = body, .fd = -1, .len = sizeof(body) - 1 };
	struct sigv4_header h[1] = { { "Content-MD5", md5b64 } };
	struct s3_request rq = { .method = "PUT", .headers = h, .nheaders = 1, .body = &bd,
				 .payload_sha256 = sha };
	struct s3_response rs;
	unsigned char md5[16];
	int rc;

	arc4random_buf(rnd, sizeof(rnd));
	snprintf(name, sizeof(name), "%sprobe-%02x%02x%02x%02x%02x%02x%02x%02x", S3_TMP_PREFIX,
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	key = s3_full_key(s, name);
	if (!key) {
		rc = -ENOMEM;
		goto out;
	}
	sigv4_sha256_hex(body, bd.len, sha);
	EVP_Digest(body, bd.len, md5, NULL, EVP_md5(), NULL);
	EVP_EncodeBlock((unsigned char *)md5b64, md5, 16);
	rq.key = key;
	rc = s3_perform(s, &rq, &rs);
	if (rc == 0) {
		struct s3_request del = { .method = "DELETE", .key = key };

		rc = s3_perform(s, &del, &rs);
	}
	if (rc) {
		s3_describe(s, &rs, why, sizeof(why));
		backend_set_errmsg(errmsg, "cannot write to s3://%s/%s: %s", s->bucket,
				   s->prefix, why);
	}
out:
	free(key);
	return rc;
}

static void s3_free(struct backend *b)
{
	struct s3 *s;

	if (!b)
		return;
	s = (struct s3 *)b;
	s3_pool_release(s);
	pthread_mutex_destroy(&s->pool_lock);
	s3_config_release(&s->cfg);
	free(s->base.url);
	free(s->bucket);
	free(s->prefix);
	free(s->origin);
	free(s->host);
	free(s->base_path);
	free(s->endpoint_shown);
	free(s);
}

int backend_s3_open(const char *url, const struct backend_opts *opts, struct backend **out,
		    char **errmsg)
{
	struct s3 *s = calloc(1, sizeof(*s));
	int rc = 0;

	*out = NULL;
	if (!s) {
		rc = -ENOMEM;
		goto out;
	}
	s->base.ops = &s3_ops;
	pthread_mutex_init(&s->pool_lock, NULL);
	s->base.url = strdup(url);
	rc = s->base.url ? s3_parse_url(s, url, errmsg) : -ENOMEM;
	if (rc == 0)
		rc = s3_config_load(opts, &s->cfg, errmsg);
	if (rc == 0)
		rc = s->cfg.endpoint ? s3_custom_endpoint(s, errmsg) : s3_aws_endpoint(s);
	if (rc)
		goto out;
	pthread_once(&s3_curl_once, s3_curl_init);
	if (s3_curl_init_rc != CURLE_OK) {
		rc = -EIO;
		backend_set_errmsg(errmsg, "libcurl: %s", curl_easy_strerror(s3_curl_init_rc));
		goto out;
	}
	rc = s3_check_bucket(s, errmsg);
	if (rc == 0 && opts && opts->s3_create)
		rc = s3_probe_write(s, errmsg);
	if (rc == 0)
		log_info("s3: opened s3://%s/%s at %s (region %s, %s style)", s->bucket,
			 s->prefix, s->endpoint_shown, s->cfg.region,
			 s->virtual_host ? "virtual-host" : "path");
out:
	if (rc == -ENOMEM && errmsg && !*errmsg)
		backend_set_errmsg(errmsg, "out of memory opening %s", url);
	if (rc) {
		s3_free(s ? &s->base : NULL);
		s = NULL;
	}
	*out = s ? &s->base : NULL;
	return rc;
}

/* ---- stat, remove ---- */

/* HEAD the full key; *size from Content-Length. */
static int s3_head(struct s3 *s, const char *key, uint64_t *size)
{
	struct s3_request rq = { .method = "HEAD", .key = key, .expect_404 = 1 };
	struct s3_response rs;
	int rc = s3_perform(s, &rq, &rs);

	if (rc == 0)
		*size = rs.content_length;
	return rc;
}

static int s3_stat(struct backend *b, const char *obj, uint64_t *size)
{
	struct s3 *s = s3_of(b);
	char *key = s3_full_key(s, obj);
	int rc = key ? s3_head(s, key, size) : -ENOMEM;

	free(key);
	return rc;
}

/* S3 answers 204 to a DELETE of a missing key, so HEAD first for -ENOENT. */
static int s3_remove(struct backend *b, const char *obj)
{
	struct s3 *s = s3_of(b);
	char *key = s3_full_key(s, obj);
	struct s3_request rq = { .method = "DELETE", .key = key };
	struct s3_response rs;
	uint64_t size;
	int rc = key ? s3_head(s, key, &size) : -ENOMEM;

	if (rc == 0)
		rc = s3_perform(s, &rq, &rs);
	free(key);
	return rc;
}

/* ---- list ---- */

struct s3_list_ctx {
	size_t strip;                 /* strlen(prefix of the root) */
	backend_list_cb cb;
	void *ctx;
};

static int s3_list_one(void *ctx, const char *key, uint64_t size)
{
	struct s3_list_ctx *c = ctx;

	return strlen(key) > c->strip ? c->cb(c->ctx, key + c->strip, size) : 0;
}

/* Every object under full-key prefix `kp`, page by page (ListObjectsV2). */
static int s3_list_keys(struct s3 *s, const char *kp, s3_xml_object_cb cb, void *ctx)
{
	struct s3_buf xml = S3_BUF_INIT;
	struct s3_xml_page page = { 0 };
	char *token = NULL;
	struct sigv4_param q[4];
	struct s3_request rq = { .method = "GET", .query = q, .xml = &xml };
	struct s3_response rs;
	int rc, truncated;

	xml.limit = S3_XML_MAX;
	do {
		q[0] = (struct sigv4_param){ "list-type", "2" };
		q[1] = (struct sigv4_param){ "prefix", kp };
		q[2] = (struct sigv4_param){ "encoding-type", "url" };
		q[3] = (struct sigv4_param){ "continuation-token", token };
		rq.nquery = token ? 4 : 3;
		rc = s3_perform(s, &rq, &rs);
		if (rc == 0)
			rc = s3_xml_list_objects(xml.data, xml.len, cb, ctx, &page);
		/* a token that does not move would list forever */
		if (rc == 0 && page.truncated && token && page.next_token &&
		    strcmp(token, page.next_token) == 0)
			rc = -EIO;
		free(token);
		token = page.next_token;
		page.next_token = NULL;
		truncated = page.truncated;
		if (rc == 0 && truncated && (!token || !token[0]))
			rc = -EIO;
		if (rc == -EIO && rs.status / 100 == 2)
			log_err("s3: unexpected ListObjectsV2 answer for %s", kp);
		s3_xml_page_release(&page);
	} while (rc == 0 && truncated);
	free(token);
	s3_buf_release(&xml);
	return rc;
}

static int s3_list(struct backend *b, const char *prefix, backend_list_cb cb, void *ctx)
{
	struct s3 *s = s3_of(b);
	struct s3_list_ctx c = { strlen(s->prefix), cb, ctx };
	char *kp = s3_full_key(s, prefix);
	int rc = kp ? s3_list_keys(s, kp, s3_list_one, &c) : -ENOMEM;

	free(kp);
	return rc;
}

/* ---- cleanup_incomplete ---- */

struct s3_cleanup_ctx {
	struct s3 *s;
	int dry_run;
	unsigned n;
	int rc;                       /* first abort/delete failure */
};

static int s3_cleanup_upload(void *ctx, const char *key, const char *upload_id)
{
	struct s3_cleanup_ctx *c = ctx;
	int rc = c->dry_run ? 0 : s3_abort_upload(c->s, key, upload_id);

	if (rc == 0 || rc == -ENOENT) {
		log_info("s3: %s interrupted multipart upload of %s", c->dry_run ? "found" :
			 "aborted", key);
		c->n++;
	} else if (c->rc == 0) {
		c->rc = rc;
	}
	return 0;
}

/* Abort the multipart uploads under "<prefix>.lamindb/", page by page; a
 * shared bucket's other uploads are not ours to abort. */
static int s3_cleanup_uploads(struct s3_cleanup_ctx *c, const char *kp)
{
	struct s3 *s = c->s;
	struct s3_buf xml = S3_BUF_INIT;
	struct s3_xml_page page = { 0 };
	char *km = NULL, *um = NULL;
	struct sigv4_param q[4];
	struct s3_request rq = { .method = "GET", .query = q, .xml = &xml };
	struct s3_response rs;
	int rc, truncated;

	xml.limit = S3_XML_MAX;
	do {
		q[0] = (struct sigv4_param){ "uploads", NULL };
		q[1] = (struct sigv4_param){ "prefix", kp };
		q[2] = (struct sigv4_param){ "key-marker", km };
		q[3] = (struct sigv4_param){ "upload-id-marker", um };
		rq.nquery = km ? (um ? 4 : 3) : 2;
		rc = s3_perform(s, &rq, &rs);
		if (rc == 0)
			rc = s3_xml_list_uploads(xml.data, xml.len, s3_cleanup_upload, c, &page);
		/* markers that do not move would list forever */
		if (rc == 0 && page.truncated && km && page.next_key &&
		    strcmp(km, page.next_key) == 0 &&
		    strcmp(um ? um : "", page.next_upload_id ? page.next_upload_id : "") == 0)
			rc = -EIO;
		if (rc == -EIO && rs.status / 100 == 2)
			log_err("s3: unexpected ListMultipartUploads answer for %s", kp);
		free(km);
		free(um);
		km = page.next_key;
		um = page.next_upload_id;
		page.next_key = page.next_upload_id = NULL;
		truncated = page.truncated;
		/* the markers move forward, so a dry run (nothing aborted) ends */
		if (rc == 0 && truncated && (!km || !km[0]))
			rc = -EIO;
		s3_xml_page_release(&page);
	} while (rc == 0 && truncated);
	free(km);
	free(um);
	s3_buf_release(&xml);
	return rc;
}

static int s3_cleanup_tmp_one(void *ctx, const char *key, uint64_t size)
{
	struct s3_cleanup_ctx *c = ctx;
	struct s3_request rq = { .method = "DELETE", .key = key };
	struct s3_response rs;
	int rc = c->dry_run ? 0 : s3_perform(c->s, &rq, &rs);

	(void)size;
	if (rc == 0) {
		log_info("s3: %s temporary %s", c->dry_run ? "found" : "removed", key);
		c->n++;
	} else if (c->rc == 0) {
		c->rc = rc;
	}
	return 0;
}

static int s3_cleanup_incomplete(struct backend *b, int dry_run, unsigned *n)
{
	struct s3 *s = s3_of(b);
	struct s3_cleanup_ctx c = { .s = s, .dry_run = dry_run };
	char *tp = s3_full_key(s, S3_TMP_PREFIX);
	char *up = s3_full_key(s, LAMFS_STORAGE_DIR "/");
	int rc = tp && up ? s3_cleanup_uploads(&c, up) : -ENOMEM;

	if (rc == 0)
		rc = s3_list_keys(s, tp, s3_cleanup_tmp_one, &c);
	if (rc == 0)
		rc = c.rc;
	*n = c.n;
	free(tp);
	free(up);
	return rc;
}

static int s3_space(struct backend *b, uint64_t *total, uint64_t *avail)
{
	(void)b;
	(void)total;
	(void)avail;
	return -ENOTSUP;
}

static const struct backend_ops s3_ops = {
	.version = BACKEND_OPS_VERSION,
	.name = "s3",
	.put = s3_put,
	.reader_open = s3_reader_open,
	.reader_pread = s3_reader_pread,
	.reader_close = s3_reader_close,
	.remove = s3_remove,
	.stat = s3_stat,
	.list = s3_list,
	.cleanup_incomplete = s3_cleanup_incomplete,
	.space = s3_space,
	.free = s3_free,
};
