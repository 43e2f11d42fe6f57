/*
 * s3_int.h — shared by the S3 backend's files, nobody else.
 *
 *   s3.c         open/free, stat, remove, list, cleanup_incomplete, the probe
 *   s3_config.c  credentials, region, endpoint and tuning from env and profiles
 *   s3_http.c    one signed request with retries; the CURL handle pool; the one
 *                HTTP/S3-error -> errno mapping
 *   s3_put.c     single PUT and multipart upload
 *   s3_reader.c  ranged reads with readahead
 *
 * Locking: struct s3 is read-only after open except the handle pool, which
 * pool_lock guards.  No other lock exists in the backend.
 */
#ifndef LAMFS_S3_INT_H
#define LAMFS_S3_INT_H

#include <pthread.h>
#include <stdint.h>

#include <curl/curl.h>

#include "backend.h"
#include "s3_buf.h"
#include "s3_xml.h"
#include "sigv4.h"

#define S3_POOL_MAX 32               /* idle CURL handles kept for reuse */
#define S3_ETAG_MAX 80               /* ETags are a quoted md5 hex: 34 bytes */
#define S3_MAX_PARTS 10000
#define S3_MIN_PART (5ull << 20)     /* AWS's minimum for a non-last part */
#define S3_MAX_OBJECT (5ull << 40)   /* 5 TiB */
#define S3_HASH_BUF (1u << 20)       /* per part in flight, while hashing it */
#define S3_XML_MAX (16u << 20)       /* largest XML body we accept */
#define S3_ERRBODY_MAX 65536         /* largest error body we keep */
#define S3_READ_PARALLEL_MAX 8       /* background GETs per reader at most */

struct s3_tunables {
	uint64_t multipart_threshold;
	uint64_t part_size;
	int part_size_from_env;       /* tests may go below S3_MIN_PART */
	unsigned parallel;
	unsigned attempts;
	unsigned retry_base_ms;
	long connect_timeout_s;
	long stall_timeout_s;
	size_t readahead_max;
	unsigned read_parallel;       /* background GETs per sequential reader */
};

/* Everything resolved from opts, the environment and the AWS profile files. */
struct s3_config {
	char *profile;
	char *access_key;
	char *secret_key;             /* wiped on release */
	char *session_token;          /* wiped on release; NULL when none */
	char *region;
	char *endpoint;               /* NULL: AWS's own */
	char *ca_bundle;              /* NULL: libcurl's default */
	int addressing;               /* S3_ADDR_* */
	struct s3_tunables t;
};

enum { S3_ADDR_AUTO = 0, S3_ADDR_PATH, S3_ADDR_VIRTUAL };

struct s3 {
	struct backend base;          /* first */
	struct s3_config cfg;
	char *bucket;
	char *prefix;                 /* "" or "some/prefix/" */
	char *origin;                 /* "https://bucket.s3.eu-west-1.amazonaws.com" */
	char *host;                   /* Host header: origin's authority */
	char *base_path;              /* "" (virtual host) or "/bucket", encoded */
	char *endpoint_shown;         /* origin for messages (no secrets in urls) */
	int virtual_host;             /* bucket in the host name, not the path */
	pthread_mutex_t pool_lock;
	CURL *pool[S3_POOL_MAX];      /* guarded by pool_lock */
	unsigned npool;               /* guarded by pool_lock */
};

/* ---- s3_config.c ---- */

/*
 * Resolve everything s3.h lists.  0, or -EACCES when no credentials are found,
 * -EINVAL for bad settings, -ENOMEM; *errmsg is set on failure (when not
 * NULL).  Release with s3_config_release() in every case.
 */
int s3_config_load(const struct backend_opts *opts, struct s3_config *cfg, char **errmsg);
void s3_config_release(struct s3_config *cfg);

/* ---- s3_http.c ---- */

/* A request body: len bytes from mem, or pread from fd at off. */
struct s3_body {
	const char *mem;
	int fd;                       /* used when mem is NULL */
	uint64_t off;
	uint64_t len;
};

struct s3_request {
	const char *method;           /* GET HEAD PUT POST DELETE */
	const char *key;              /* full key in the bucket; NULL: the bucket */
	const struct sigv4_param *query;
	size_t nquery;
	const struct sigv4_header *headers;   /* extra headers, signed too */
	size_t nheaders;
	const struct s3_body *body;   /* NULL: no body */
	const char *payload_sha256;   /* NULL: UNSIGNED-PAYLOAD with a body, else
				       * the empty body's hash */
	void *out;                    /* 2xx body into out[0..out_cap) … */
	size_t out_cap;
	struct s3_buf *xml;           /* … or into xml (S3_XML_MAX at most) */
	int expect_404;               /* a 404 is an answer, not worth a warning */
};

struct s3_response {
	long status;                  /* last HTTP status, 0 when none */
	struct s3_xml_error err;      /* S3 error code and message, "" when none */
	uint64_t content_length;      /* of the 2xx response (HEAD: the object's) */
	char etag[S3_ETAG_MAX];       /* ETag header of the 2xx response */
	size_t got;                   /* bytes stored into rq->out */
	CURLcode cc;                  /* last libcurl result */
	char curl_msg[CURL_ERROR_SIZE];
	int read_errno;               /* the body's pread failed with this */
	unsigned attempts;
};

/*
 * Sign and send rq, retrying 5xx, 429, RequestTimeout, timeouts and
 * connection errors with exponential backoff and jitter up to
 * cfg.t.attempts tries.  Returns 0 on a 2xx (a 2xx carrying an S3 <Error>
 * body, as CompleteMultipartUpload may send, counts as a 500), else the
 * errno from s3_errno() (or the body's read errno), and logs the failure
 * (method, key, status, S3 code; never headers).  rs is always filled.
 * Thread-safe.
 */
int s3_perform(struct s3 *s, const struct s3_request *rq, struct s3_response *rs);

/* The one mapping from HTTP status / S3 error code / libcurl result to errno. */
int s3_errno(long status, const char *code, CURLcode cc);

/* A one-line reason for a failed request, for *errmsg: names the S3 code and
 * the setting to check, or libcurl's reason; never a secret. */
void s3_describe(const struct s3 *s, const struct s3_response *rs, char *buf, size_t size);

/* The pool: a handle to use on one thread, returned with s3_handle_put(). */
CURL *s3_handle_get(struct s3 *s);
void s3_handle_put(struct s3 *s, CURL *h);
void s3_pool_release(struct s3 *s);

/* "prefix" + obj as a malloc'd full key, or NULL (ENOMEM). */
char *s3_full_key(const struct s3 *s, const char *obj);

/* ---- s3_put.c ---- */
int s3_put(struct backend *b, const char *obj, const struct backend_src *src, int *consumed);
/* Abort one multipart upload (best effort is the caller's call); 0 or -errno. */
int s3_abort_upload(struct s3 *s, const char *key, const char *upload_id);
/* md5 (16 bytes) and hex sha256 of len bytes of fd at off; either may be NULL. */
int s3_hash_range(int fd, uint64_t off, uint64_t len, unsigned char *md5, char *sha256_hex);

/* ---- s3_reader.c ---- */
int s3_reader_open(struct backend *b, const char *obj, struct backend_reader **out,
		   uint64_t *size);
int s3_reader_pread(struct backend_reader *r, void *buf, size_t len, uint64_t off,
		    size_t *got);
void s3_reader_close(struct backend_reader *r);

/* ---- s3.c ---- */
struct s3 *s3_of(struct backend *b);

#endif
