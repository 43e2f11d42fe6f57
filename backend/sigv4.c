/*
 * sigv4.c — AWS Signature Version 4 (header-based, single chunk) for S3.
 *
 *   CanonicalRequest = method \n uri \n query \n headers(name:value\n …) \n
 *                      signed-header-names \n payload-hash
 *   StringToSign     = "AWS4-HMAC-SHA256" \n amz-date \n scope \n hex(sha256(CR))
 *   SigningKey       = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service),
 *                      "aws4_request")
 *   Signature        = hex(HMAC(SigningKey, StringToSign))
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "s3_buf.h"
#include "sigv4.h"

static const char hex_upper[] = "0123456789ABCDEF";
static const char hex_lower[] = "0123456789abcdef";

static int sigv4_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

static void sigv4_encode_into(struct s3_buf *b, const char *s, int keep_slash)
{
	const unsigned char *p;
	char esc[3];

	for (p = (const unsigned char *)s; *p; p++) {
		if (sigv4_unreserved(*p) || (keep_slash && *p == '/')) {
			s3_buf_add(b, p, 1);
		} else {
			esc[0] = '%';
			esc[1] = hex_upper[*p >> 4];
			esc[2] = hex_upper[*p & 15];
			s3_buf_add(b, esc, 3);
		}
	}
}

char *sigv4_encode(const char *s, int keep_slash)
{
	struct s3_buf b = S3_BUF_INIT;

	sigv4_encode_into(&b, s, keep_slash);
	return s3_buf_detach(&b);
}

struct sigv4_pair {
	char *name;
	char *value;
};

static int sigv4_pair_cmp(const void *a, const void *b)
{
	const struct sigv4_pair *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

static void sigv4_pairs_free(struct sigv4_pair *v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
}

char *sigv4_query(const struct sigv4_param *params, size_t n)
{
	struct s3_buf b = S3_BUF_INIT;
	struct sigv4_pair *v = NULL;
	char *out = NULL;
	size_t i;

	if (n == 0) {
		out = strdup("");
		goto out;
	}
	v = calloc(n, sizeof(*v));
	if (!v)
		goto out;
	for (i = 0; i < n; i++) {
		v[i].name = sigv4_encode(params[i].name, 0);
		v[i].value = sigv4_encode(params[i].value ? params[i].value : "", 0);
		if (!v[i].name || !v[i].value)
			goto out;
	}
	qsort(v, n, sizeof(*v), sigv4_pair_cmp);
	for (i = 0; i < n; i++) {
		if (i)
			s3_buf_add(&b, "&", 1);
		s3_buf_adds(&b, v[i].name);
		s3_buf_add(&b, "=", 1);
		s3_buf_adds(&b, v[i].value);
	}
	out = s3_buf_detach(&b);
out:
	s3_buf_release(&b);
	sigv4_pairs_free(v, n);
	return out;
}

/* Lower-cased name; value trimmed, inner runs of spaces squeezed to one. */
static int sigv4_canon_header(const struct sigv4_header *h, struct sigv4_pair *out)
{
	int rc = 0;
	const char *s, *e;
	char *d;
	size_t i;

	if (!h->name || !h->name[0] || !h->value) {
		rc = -EINVAL;
		goto out;
	}
	out->name = strdup(h->name);
	out->value = malloc(strlen(h->value) + 1);
	if (!out->name || !out->value) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; out->name[i]; i++)
		out->name[i] = (char)tolower((unsigned char)out->name[i]);
	s = h->value;
	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	for (d = out->value; s < e; s++) {
		if ((*s == ' ' || *s == '\t') && d > out->value && d[-1] == ' ')
			continue;
		*d++ = (*s == '\t') ? ' ' : *s;
	}
	*d = '\0';
out:
	return rc;
}

static void sigv4_hex(const unsigned char *in, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex_lower[in[i] >> 4];
		out[2 * i + 1] = hex_lower[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(data, len, md);
	sigv4_hex(md, sizeof(md), out);
}

void sigv4_amz_date(time_t t, char out[17])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* out = HMAC-SHA256(key, msg); 0 or -ENOMEM. */
static int sigv4_hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned int olen = 32;

	return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out,
		    &olen) ? 0 : -ENOMEM;
}

/* The signing key for (secret, yyyymmdd, region, service). */
static int sigv4_signing_key(const struct sigv4_key *k, const char *date8, unsigned char out[32])
{
	int rc = 0;
	struct s3_buf seed = S3_BUF_INIT;
	unsigned char a[32], b[32];
	char date[9];

	memcpy(date, date8, 8);
	date[8] = '\0';
	s3_buf_adds(&seed, "AWS4");
	s3_buf_adds(&seed, k->secret_key);
	if (seed.oom) {
		rc = -ENOMEM;
		goto out;
	}
	rc = sigv4_hmac(seed.data, seed.len, date, a);
	if (rc == 0)
		rc = sigv4_hmac(a, 32, k->region, b);
	if (rc == 0)
		rc = sigv4_hmac(b, 32, k->service, a);
	if (rc == 0)
		rc = sigv4_hmac(a, 32, "aws4_request", out);
out:
	if (seed.data)
		OPENSSL_cleanse(seed.data, seed.cap);
	s3_buf_release(&seed);
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(b, sizeof(b));
	return rc;
}

static int sigv4_check(const struct sigv4_key *k, const struct sigv4_request *r)
{
	int ok = k && r && k->access_key && k->access_key[0] && k->secret_key && k->region &&
		 k->region[0] && k->service && k->service[0] && r->method && r->method[0] &&
		 r->canonical_uri && r->canonical_uri[0] == '/' && r->payload_hash &&
		 r->payload_hash[0] && r->amz_date && strlen(r->amz_date) == 16 &&
		 (r->headers || r->nheaders == 0);

	return ok ? 0 : -EINVAL;
}

/* Canonical request into cr, signed header names into names. */
static int sigv4_canonical(const struct sigv4_request *r, struct s3_buf *cr, struct s3_buf *names)
{
	int rc = 0;
	struct sigv4_pair *h = NULL;
	size_t i, n = r->nheaders;

	h = calloc(n ? n : 1, sizeof(*h));
	if (!h) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n && rc == 0; i++)
		rc = sigv4_canon_header(&r->headers[i], &h[i]);
	if (rc)
		goto out;
	qsort(h, n, sizeof(*h), sigv4_pair_cmp);
	s3_buf_addf(cr, "%s\n%s\n%s\n", r->method, r->canonical_uri,
		    r->canonical_query ? r->canonical_query : "");
	for (i = 0; i < n; i++) {
		s3_buf_addf(cr, "%s:%s\n", h[i].name, h[i].value);
		if (i)
			s3_buf_add(names, ";", 1);
		s3_buf_adds(names, h[i].name);
	}
	s3_buf_addf(cr, "\n%s\n%s", names->data ? names->data : "", r->payload_hash);
	if (cr->oom || names->oom)
		rc = -ENOMEM;
out:
	sigv4_pairs_free(h, n);
	return rc;
}

int sigv4_sign(const struct sigv4_key *k, const struct sigv4_request *r,
	       char **authorization, struct sigv4_debug *dbg)
{
	int rc;
	struct s3_buf cr = S3_BUF_INIT, names = S3_BUF_INIT, sts = S3_BUF_INIT;
	struct s3_buf auth = S3_BUF_INIT;
	unsigned char skey[32], sig[32];
	char crhash[65], sighex[65];

	*authorization = NULL;
	rc = sigv4_check(k, r);
	if (rc)
		goto out;
	rc = sigv4_canonical(r, &cr, &names);
	if (rc)
		goto out;
	sigv4_sha256_hex(cr.data, cr.len, crhash);
	s3_buf_addf(&sts, "AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s", r->amz_date,
		    r->amz_date, k->region, k->service, crhash);
	if (sts.oom) {
		rc = -ENOMEM;
		goto out;
	}
	rc = sigv4_signing_key(k, r->amz_date, skey);
	if (rc == 0)
		rc = sigv4_hmac(skey, sizeof(skey), sts.data, sig);
	if (rc)
		goto out;
	sigv4_hex(sig, sizeof(sig), sighex);
	s3_buf_addf(&auth, "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, "
		    "SignedHeaders=%s, Signature=%s", k->access_key, r->amz_date, k->region,
		    k->service, names.data ? names.data : "", sighex);
	*authorization = s3_buf_detach(&auth);
	if (!*authorization) {
		rc = -ENOMEM;
		goto out;
	}
	if (dbg) {
		dbg->canonical_request = s3_buf_detach(&cr);
		dbg->string_to_sign = s3_buf_detach(&sts);
	}
out:
	OPENSSL_cleanse(skey, sizeof(skey));
	s3_buf_release(&cr);
	s3_buf_release(&names);
	s3_buf_release(&sts);
	s3_buf_release(&auth);
	return rc;
}

void sigv4_debug_release(struct sigv4_debug *dbg)
{
	if (dbg) {
		free(dbg->canonical_request);
		free(dbg->string_to_sign);
		dbg->canonical_request = NULL;
		dbg->string_to_sign = NULL;
	}
}
