/*
 * s3_http.c — one S3 request: build the url, sign, send with libcurl, retry,
 * and turn the outcome into an errno.
 *
 * Connections are reused through a pool of CURL easy handles (each keeps its
 * own connection cache); a thread takes a handle for one request and gives
 * it back.  Bodies are read with pread, so a retry simply starts over.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "s3_int.h"

#define S3_BACKOFF_CAP_MS 20000u

/* ---- the one mapping ---- */

int s3_errno(long status, const char *code, CURLcode cc)
{
	int rc;

	if (cc != CURLE_OK)
		rc = -EIO;                     /* network, after retries */
	else if (status >= 200 && status < 300)
		rc = 0;
	else if (status == 403)
		rc = -EACCES;
	else if (status == 404)
		rc = -ENOENT;
	else
		rc = -EIO;                     /* 400/other 4xx, 5xx after retries */
	(void)code;                            /* logged by the caller, same errno */
	return rc;
}

/* Worth another try: 5xx, 429, S3's RequestTimeout, transient network errors. */
static int s3_retryable(CURLcode cc, long status, const char *code)
{
	switch (cc) {
	case CURLE_OK:
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
	return status >= 500 || status == 429 ||
	       (status == 400 && strcmp(code, "RequestTimeout") == 0);
}

/* ---- handle pool ---- */

CURL *s3_handle_get(struct s3 *s)
{
	CURL *h = NULL;

	pthread_mutex_lock(&s->pool_lock);
	if (s->npool)
		h = s->pool[--s->npool];
	pthread_mutex_unlock(&s->pool_lock);
	if (h)
		curl_easy_reset(h);        /* keeps the connection and DNS caches */
	else
		h = curl_easy_init();
	return h;
}

void s3_handle_put(struct s3 *s, CURL *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&s->pool_lock);
	if (s->npool < S3_POOL_MAX) {
		s->pool[s->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&s->pool_lock);
	if (h)
		curl_easy_cleanup(h);
}

void s3_pool_release(struct s3 *s)
{
	while (s->npool)
		curl_easy_cleanup(s->pool[--s->npool]);
}

char *s3_full_key(const struct s3 *s, const char *obj)
{
	char *k = NULL;

	if (asprintf(&k, "%s%s", s->prefix, obj) < 0)
		k = NULL;
	return k;
}

/* ---- one attempt ---- */

/* Per-attempt transfer state seen by the callbacks. */
struct s3_xfer {
	const struct s3_request *rq;
	struct s3_response *rs;
	CURL *h;
	uint64_t body_pos;
	struct s3_buf errbody;        /* non-2xx body, S3_ERRBODY_MAX at most */
	int overflow;                 /* a 2xx body did not fit rq->out */
	char location[256];           /* Location header of a redirect, for the log */
	curl_off_t last_dl, last_ul;  /* progress seen by s3_progress_cb */
	struct timespec last_move;    /* when a byte last moved (CLOCK_MONOTONIC) */
	int started;                  /* last_move is set */
	int stalled;                  /* s3_progress_cb gave up */
	long rq_stall_s;              /* cfg.t.stall_timeout_s */
};

static size_t s3_read_cb(char *buf, size_t size, size_t nitems, void *data)
{
	struct s3_xfer *x = data;
	const struct s3_body *b = x->rq->body;
	size_t want = size * nitems;
	uint64_t left = b->len - x->body_pos;
	ssize_t n;

	if (want > left)
		want = (size_t)left;
	if (want == 0)
		return 0;
	if (b->mem) {
		memcpy(buf, b->mem + b->off + x->body_pos, want);
		n = (ssize_t)want;
	} else {
		do
			n = pread(b->fd, buf, want, (off_t)(b->off + x->body_pos));
		while (n < 0 && errno == EINTR);
		if (n <= 0) {
			x->rs->read_errno = n < 0 ? errno : EIO;   /* 0: file shrank */
			return CURL_READFUNC_ABORT;
		}
	}
	x->body_pos += (uint64_t)n;
	return (size_t)n;
}

static int s3_seek_cb(void *data, curl_off_t offset, int origin)
{
	struct s3_xfer *x = data;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > x->rq->body->len)
		return CURL_SEEKFUNC_CANTSEEK;
	x->body_pos = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

static size_t s3_write_cb(char *ptr, size_t size, size_t nmemb, void *data)
{
	struct s3_xfer *x = data;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status >= 300) {
		if (x->errbody.len + n <= S3_ERRBODY_MAX)
			s3_buf_add(&x->errbody, ptr, n);
	} else if (x->rq->out) {
		if (n > x->rq->out_cap - x->rs->got) {
			x->overflow = 1;
			return 0;                  /* more than asked for: stop */
		}
		memcpy((char *)x->rq->out + x->rs->got, ptr, n);
		x->rs->got += n;
	} else if (x->rq->xml) {
		s3_buf_add(x->rq->xml, ptr, n);
		if (x->rq->xml->oom)
			return 0;
	}
	return n;
}

static size_t s3_header_cb(char *buf, size_t size, size_t nitems, void *data)
{
	struct s3_xfer *x = data;
	size_t n = size * nitems, len;
	const char *v;

	if (n > 5 && strncmp(buf, "HTTP/", 5) == 0) {
		x->rs->etag[0] = '\0';             /* a new response (after 100) */
		x->location[0] = '\0';
	} else if (n > 9 && strncasecmp(buf, "location:", 9) == 0) {
		v = buf + 9;
		len = n - 9;
		while (len && (*v == ' ' || *v == '\t')) {
			v++;
			len--;
		}
		while (len && isspace((unsigned char)v[len - 1]))
			len--;
		if (len >= sizeof(x->location))
			len = sizeof(x->location) - 1;
		memcpy(x->location, v, len);
		x->location[len] = '\0';
	} else if (n > 5 && strncasecmp(buf, "etag:", 5) == 0) {
		v = buf + 5;
		len = n - 5;
		while (len && (*v == ' ' || *v == '\t')) {
			v++;
			len--;
		}
		while (len && isspace((unsigned char)v[len - 1]))
			len--;
		if (len < sizeof(x->rs->etag)) {
			memcpy(x->rs->etag, v, len);
			x->rs->etag[len] = '\0';
		}
	}
	return n;
}

/* The stall timeout: no byte moved either way for stall_timeout_s seconds
 * (waiting for an answer included).  libcurl's LOW_SPEED_TIME averages the
 * speed over several seconds, so it notices a stall only ~6 s late; this
 * callback is exact. */
static int s3_progress_cb(void *data, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
			  curl_off_t ulnow)
{
	struct s3_xfer *x = data;
	struct timespec now;
	long stall = x->rq_stall_s;

	(void)dltotal;
	(void)ultotal;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (dlnow != x->last_dl || ulnow != x->last_ul || !x->started) {
		x->last_dl = dlnow;
		x->last_ul = ulnow;
		x->last_move = now;
		x->started = 1;
	} else if (now.tv_sec - x->last_move.tv_sec > stall ||
		   (now.tv_sec - x->last_move.tv_sec == stall &&
		    now.tv_nsec >= x->last_move.tv_nsec)) {
		x->stalled = 1;
		return 1;                  /* abort: CURLE_ABORTED_BY_CALLBACK */
	}
	return 0;
}

/* The signed header list for one attempt (built fresh: x-amz-date moves). */
struct s3_signed {
	struct sigv4_header h[16];
	size_t n;
	char date[17];
	char *auth;
	struct curl_slist *list;
};

static int s3_sign(struct s3 *s, const struct s3_request *rq, const char *uri,
		   const char *query, struct s3_signed *sg)
{
	int rc = 0;
	struct sigv4_key k = { s->cfg.access_key, s->cfg.secret_key, s->cfg.region, "s3" };
	struct sigv4_request r = { .method = rq->method, .canonical_uri = uri,
				   .canonical_query = query, .amz_date = sg->date };
	struct s3_buf line = S3_BUF_INIT;
	struct curl_slist *l;
	size_t i;

	r.payload_hash = rq->payload_sha256 ? rq->payload_sha256 :
			 rq->body ? SIGV4_UNSIGNED_PAYLOAD : SIGV4_EMPTY_SHA256;
	if (rq->nheaders > 12) {
		rc = -EINVAL;
		goto out;
	}
	sigv4_amz_date(time(NULL), sg->date);
	sg->h[sg->n++] = (struct sigv4_header){ "Host", s->host };
	sg->h[sg->n++] = (struct sigv4_header){ "x-amz-date", sg->date };
	sg->h[sg->n++] = (struct sigv4_header){ "x-amz-content-sha256", r.payload_hash };
	if (s->cfg.session_token)
		sg->h[sg->n++] = (struct sigv4_header){ "x-amz-security-token",
							s->cfg.session_token };
	for (i = 0; i < rq->nheaders; i++)
		sg->h[sg->n++] = rq->headers[i];
	r.headers = sg->h;
	r.nheaders = sg->n;
	rc = sigv4_sign(&k, &r, &sg->auth, NULL);
	if (rc)
		goto out;
	for (i = 0; i <= sg->n && rc == 0; i++) {
		s3_buf_clear(&line);
		if (i < sg->n)
			s3_buf_addf(&line, "%s: %s", sg->h[i].name, sg->h[i].value);
		else
			s3_buf_addf(&line, "Authorization: %s", sg->auth);
		l = line.oom ? NULL : curl_slist_append(sg->list, line.data);
		if (!l)
			rc = -ENOMEM;
		else
			sg->list = l;
	}
out:
	if (line.data)
		memset(line.data, 0, line.cap);
	s3_buf_release(&line);
	return rc;
}

static void s3_signed_release(struct s3_signed *sg)
{
	curl_slist_free_all(sg->list);
	free(sg->auth);
	memset(sg, 0, sizeof(*sg));
}

static void s3_set_method(CURL *h, const struct s3_request *rq)
{
	if (strcmp(rq->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (rq->body) {
		/* UPLOAD streams through the read callback; POST keeps it */
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body->len);
		if (strcmp(rq->method, "PUT") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
	} else if (strcmp(rq->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
	}
}

static void s3_set_options(struct s3 *s, struct s3_xfer *x, const char *url,
			   struct s3_signed *sg)
{
	CURL *h = x->h;

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	/* A redirect is never followed: the request is signed for this host, and
	 * a hostile or misconfigured endpoint must not send our data elsewhere.
	 * 3xx is a failure (EIO), logged with where it pointed. */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (s->cfg.ca_bundle)
		curl_easy_setopt(h, CURLOPT_CAINFO, s->cfg.ca_bundle);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, s->cfg.t.connect_timeout_s);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, s->cfg.t.stall_timeout_s);
	x->rq_stall_s = s->cfg.t.stall_timeout_s;
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, s3_progress_cb);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, sg->list);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->rs->curl_msg);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s3_write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, s3_header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	if (x->rq->body) {
		curl_easy_setopt(h, CURLOPT_READFUNCTION, s3_read_cb);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, s3_seek_cb);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
	}
	s3_set_method(h, x->rq);
}

/* After a completed exchange: status, length, error body. */
static void s3_collect(struct s3_xfer *x)
{
	struct s3_response *rs = x->rs;
	curl_off_t cl = -1;

	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &rs->status);
	curl_easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	rs->content_length = cl > 0 ? (uint64_t)cl : 0;
	if (rs->status < 200 || rs->status >= 300) {
		if (x->errbody.len)
			s3_xml_parse_error(x->errbody.data, x->errbody.len, &rs->err);
	} else if (x->rq->xml && x->rq->xml->len &&
		   s3_xml_parse_error(x->rq->xml->data, x->rq->xml->len, &rs->err) == 0) {
		/* 200 with an <Error> inside (CompleteMultipartUpload, CopyObject) */
		rs->status = 500;
	}
}

/* One try with a fresh signature; fills rs. */
static void s3_attempt(struct s3 *s, const struct s3_request *rq, const char *url,
		       const char *uri, const char *query, struct s3_response *rs)
{
	struct s3_xfer x = { .rq = rq, .rs = rs, .errbody = S3_BUF_INIT };
	struct s3_signed sg = { .n = 0 };
	int rc;

	rs->status = 0;
	rs->got = 0;
	rs->read_errno = 0;
	rs->etag[0] = '\0';
	rs->curl_msg[0] = '\0';
	memset(&rs->err, 0, sizeof(rs->err));
	if (rq->xml)
		s3_buf_clear(rq->xml);
	rc = s3_sign(s, rq, uri, query, &sg);
	x.h = rc ? NULL : s3_handle_get(s);
	if (!x.h) {
		rs->cc = CURLE_OUT_OF_MEMORY;
		snprintf(rs->curl_msg, sizeof(rs->curl_msg), "cannot sign or start the request");
		goto out;
	}
	s3_set_options(s, &x, url, &sg);
	rs->cc = curl_easy_perform(x.h);
	if (rs->cc == CURLE_ABORTED_BY_CALLBACK && x.stalled) {
		rs->cc = CURLE_OPERATION_TIMEDOUT;     /* retried like any timeout */
		snprintf(rs->curl_msg, sizeof(rs->curl_msg), "timed out: no data moved for %ld s "
			 "(LAMFS_S3_STALL_TIMEOUT)", s->cfg.t.stall_timeout_s);
	} else if (rs->cc == CURLE_WRITE_ERROR && x.overflow) {
		snprintf(rs->curl_msg, sizeof(rs->curl_msg), "response longer than requested");
	} else if (rs->cc == CURLE_OK) {
		s3_collect(&x);
		if (rs->status >= 300 && rs->status < 400)
			log_warn("s3: %s %s: HTTP %ld redirect to %s refused (redirects are never "
				 "followed; check the endpoint and AWS_REGION)", rq->method,
				 rq->key ? rq->key : "(bucket)", rs->status,
				 x.location[0] ? x.location : "(no Location)");
	}
	curl_easy_setopt(x.h, CURLOPT_ERRORBUFFER, NULL);
	if (!rs->curl_msg[0] && rs->cc != CURLE_OK)
		snprintf(rs->curl_msg, sizeof(rs->curl_msg), "%s", curl_easy_strerror(rs->cc));
out:
	s3_handle_put(s, x.h);
	s3_signed_release(&sg);
	s3_buf_release(&x.errbody);
}

/* Sleep before try number `attempt` (1-based retries): exponential with
 * "equal jitter" — half the step fixed, half random — capped. */
static void s3_backoff(const struct s3 *s, unsigned attempt)
{
	uint64_t step = (uint64_t)s->cfg.t.retry_base_ms << (attempt > 16 ? 16 : attempt - 1);
	uint64_t ms;
	struct timespec ts;

	if (step > S3_BACKOFF_CAP_MS)
		step = S3_BACKOFF_CAP_MS;
	ms = step / 2 + arc4random_uniform((uint32_t)(step / 2 + 1));
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* url = origin + base_path + "/" + encoded key [+ "?" + query]; uri likewise. */
static int s3_build_url(struct s3 *s, const struct s3_request *rq, char **url, char **uri,
			char **query)
{
	int rc = 0;
	char *ekey = NULL;

	*url = *uri = NULL;
	*query = sigv4_query(rq->query, rq->nquery);
	ekey = sigv4_encode(rq->key ? rq->key : "", 1);
	if (!*query || !ekey) {
		rc = -ENOMEM;
		goto out;
	}
	if (asprintf(uri, "%s%s%s", s->base_path, (rq->key || !s->base_path[0]) ? "/" : "",
		     ekey) < 0) {
		*uri = NULL;
		rc = -ENOMEM;
		goto out;
	}
	if (asprintf(url, "%s%s%s%s", s->origin, *uri, (*query)[0] ? "?" : "", *query) < 0) {
		*url = NULL;
		rc = -ENOMEM;
	}
out:
	free(ekey);
	return rc;
}

static void s3_log_failure(const struct s3_request *rq, const struct s3_response *rs, int rc)
{
	const char *what = rq->key ? rq->key : "(bucket)";

	if (rs->read_errno)
		log_err("s3: %s %s: reading the upload source failed: %s", rq->method, what,
			strerror(rs->read_errno));
	else if (rs->cc != CURLE_OK)
		log_err("s3: %s %s: %s after %u tries", rq->method, what, rs->curl_msg,
			rs->attempts);
	else if (rs->status == 404 && rq->expect_404)
		log_debug("s3: %s %s: 404 %s", rq->method, what, rs->err.code);
	else
		log_warn("s3: %s %s: HTTP %ld %s%s%s (errno %d, %u tries)", rq->method, what,
			 rs->status, rs->err.code[0] ? rs->err.code : "(no S3 code)",
			 rs->err.message[0] ? ": " : "", rs->err.message, -rc, rs->attempts);
}

int s3_perform(struct s3 *s, const struct s3_request *rq, struct s3_response *rs)
{
	int rc;
	char *url = NULL, *uri = NULL, *query = NULL;

	memset(rs, 0, sizeof(*rs));
	rc = s3_build_url(s, rq, &url, &uri, &query);
	if (rc)
		goto out;
	for (;;) {
		rs->attempts++;
		s3_attempt(s, rq, url, uri, query, rs);
		if (rs->read_errno || rs->cc == CURLE_OUT_OF_MEMORY ||
		    rs->attempts >= s->cfg.t.attempts || !s3_retryable(rs->cc, rs->status,
									rs->err.code))
			break;
		log_info("s3: %s %s: %s, retrying", rq->method, rq->key ? rq->key : "(bucket)",
			 rs->cc != CURLE_OK ? rs->curl_msg :
			 rs->err.code[0] ? rs->err.code : "server error");
		s3_backoff(s, rs->attempts);
	}
	if (rs->read_errno)
		rc = -rs->read_errno;
	else if (rs->cc == CURLE_OUT_OF_MEMORY)
		rc = -ENOMEM;
	else
		rc = s3_errno(rs->status, rs->err.code, rs->cc);
	if (rc)
		s3_log_failure(rq, rs, rc);
out:
	free(url);
	free(uri);
	free(query);
	return rc;
}

/* ---- messages for *errmsg ---- */

void s3_describe(const struct s3 *s, const struct s3_response *rs, char *buf, size_t size)
{
	const char *c = rs->err.code;

	if (rs->read_errno)
		snprintf(buf, size, "reading the local file failed: %s",
			 strerror(rs->read_errno));
	else if (rs->cc != CURLE_OK)
		snprintf(buf, size, "cannot reach S3 endpoint %s: %s", s->endpoint_shown,
			 rs->curl_msg);
	else if (strcmp(c, "SignatureDoesNotMatch") == 0)
		snprintf(buf, size, "S3 denied access (%s): check AWS_SECRET_ACCESS_KEY", c);
	else if (strcmp(c, "InvalidAccessKeyId") == 0)
		snprintf(buf, size, "S3 denied access (%s): check AWS_ACCESS_KEY_ID", c);
	else if (strcmp(c, "ExpiredToken") == 0 || strcmp(c, "InvalidToken") == 0 ||
		 strcmp(c, "TokenRefreshRequired") == 0)
		snprintf(buf, size, "S3 denied access (%s): check AWS_SESSION_TOKEN", c);
	else if (strcmp(c, "RequestTimeTooSkewed") == 0)
		snprintf(buf, size, "S3 rejected the request time (%s): check the system clock",
			 c);
	else if (strcmp(c, "AuthorizationHeaderMalformed") == 0 ||
		 strcmp(c, "PermanentRedirect") == 0 || rs->status == 301)
		snprintf(buf, size, "S3 says bucket %s is not in region %s (%s): check "
			 "AWS_REGION", s->bucket, s->cfg.region, c[0] ? c : "redirect");
	else if (rs->status == 404 && (!c[0] || strcmp(c, "NoSuchBucket") == 0))
		snprintf(buf, size, "bucket %s does not exist", s->bucket);
	else if (rs->status == 403)
		snprintf(buf, size, "S3 denied access (%s) to s3://%s/%s: check the "
			 "credentials' permissions", c[0] ? c : "403 Forbidden", s->bucket,
			 s->prefix);
	else
		snprintf(buf, size, "S3 error: HTTP %ld %s%s%s", rs->status,
			 c[0] ? c : "(no S3 code)", rs->err.message[0] ? ": " : "",
			 rs->err.message);
}
