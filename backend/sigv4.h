/*
 * sigv4.h — AWS Signature Version 4 for S3 requests (Authorization header).
 *
 * A small signer on OpenSSL's SHA-256 and HMAC.  It exists because the
 * CURLOPT_AWS_SIGV4 of Debian 12's libcurl (7.88) does not sort or encode the
 * query, does not encode the path, mis-sorts headers whose names prefix each
 * other and adds no x-amz-content-sha256 (../shared/S3-TEST-SERVER.md).
 *
 * Calling sequence for one request:
 *   path  = sigv4_encode(key, 1)            canonical URI and URL path at once
 *   query = sigv4_query(params, n)          canonical query and URL query at once
 *   sigv4_sign(&key, &req, &auth, NULL)     "AWS4-HMAC-SHA256 Credential=…"
 * and send exactly the headers that were signed (host, x-amz-date,
 * x-amz-content-sha256, …) with `Authorization: <auth>`.
 *
 * Pure functions: no I/O, no globals; thread-safe.  Never logs; the secret
 * key is read only.
 */
#ifndef LAMFS_SIGV4_H
#define LAMFS_SIGV4_H

#include <stddef.h>
#include <time.h>

/* x-amz-content-sha256 for a body that is not hashed (allowed over https) */
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* sha256 of the empty string */
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* One query parameter, not encoded; value NULL for a valueless one ("uploads"). */
struct sigv4_param {
	const char *name;
	const char *value;
};

/* One request header as sent (any case; the value is trimmed when signed). */
struct sigv4_header {
	const char *name;
	const char *value;
};

/* Who signs and the scope. */
struct sigv4_key {
	const char *access_key;
	const char *secret_key;
	const char *region;         /* "us-east-1" */
	const char *service;        /* "s3" */
};

struct sigv4_request {
	const char *method;         /* "GET", "PUT", … */
	const char *canonical_uri;  /* already encoded (sigv4_encode(path, 1)); "/" at least */
	const char *canonical_query;/* from sigv4_query(); "" or NULL when none */
	/* Every header to sign, host and x-amz-date and x-amz-content-sha256 included. */
	const struct sigv4_header *headers;
	size_t nheaders;
	const char *payload_hash;   /* hex sha256 of the body, or SIGV4_UNSIGNED_PAYLOAD */
	const char *amz_date;       /* "20130524T000000Z", as in the x-amz-date header */
};

/* Intermediate strings, for tests and debugging (no secret in them). */
struct sigv4_debug {
	char *canonical_request;    /* malloc'd; free with sigv4_debug_release() */
	char *string_to_sign;
};

/*
 * Percent-encode s by S3's rules: A-Z a-z 0-9 - _ . ~ stay, every other byte
 * (UTF-8 bytes included) becomes %XX with upper-case hex; '/' stays when
 * keep_slash.  Returns a malloc'd string the caller frees, or NULL (ENOMEM).
 */
char *sigv4_encode(const char *s, int keep_slash);

/*
 * The canonical query string of n parameters: each name and value encoded
 * (sigv4_encode(x, 0)), sorted by encoded name then encoded value, joined
 * with '&', a valueless parameter written "name=".  S3 accepts this same
 * string as the URL's query.  Returns a malloc'd string ("" when n is 0) the
 * caller frees, or NULL (ENOMEM).
 */
char *sigv4_query(const struct sigv4_param *params, size_t n);

/*
 * Sign r with k.  On success returns 0 and sets *authorization to a malloc'd
 * Authorization header value (without "Authorization: ") the caller frees;
 * fills dbg when not NULL.  Errors: -EINVAL (a required field missing, a header
 * name empty), -ENOMEM.  *authorization is NULL on error.
 */
int sigv4_sign(const struct sigv4_key *k, const struct sigv4_request *r,
	       char **authorization, struct sigv4_debug *dbg);
void sigv4_debug_release(struct sigv4_debug *dbg);

/* "YYYYMMDDTHHMMSSZ" (UTC) of t into out. */
void sigv4_amz_date(time_t t, char out[17]);
/* Lower-case hex sha256 of len bytes into out (65 bytes with the NUL). */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

#endif
