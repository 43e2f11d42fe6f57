/*
 * test_s3_sigv4.c — the SigV4 signer against the worked examples in AWS's
 * S3 documentation ("Signature Calculations for the Authorization Header:
 * Transferring Payload in a Single Chunk", examples GET Object, PUT Object,
 * GET Bucket Lifecycle, Get Bucket (List Objects)), plus the encoding rules
 * S3 needs for keys and queries.  Pure: no server (test_s3_server.c sends
 * the same kinds of keys and queries to a server that checks signatures).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sigv4.h"

#define EX_DATE "20130524T000000Z"
#define EX_HOST "examplebucket.s3.amazonaws.com"

static const struct sigv4_key ex_key = {
	.access_key = "AKIAIOSFODNN7EXAMPLE",
	.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	.region = "us-east-1",
	.service = "s3",
};

/* Sign and return the "Signature=" part (static buffer). */
static const char *signature_of(const struct sigv4_request *r, struct sigv4_debug *dbg)
{
	static char sig[65];
	char *auth = NULL;
	const char *p;

	assert_int_equal(sigv4_sign(&ex_key, r, &auth, dbg), 0);
	assert_non_null(auth);
	assert_non_null(strstr(auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/"
				     "20130524/us-east-1/s3/aws4_request, SignedHeaders="));
	p = strstr(auth, "Signature=");
	assert_non_null(p);
	assert_int_equal(strlen(p + 10), 64);
	memcpy(sig, p + 10, 65);
	free(auth);
	return sig;
}

/* Example "GET Object": first 10 bytes of test.txt, empty-body hash. */
static void test_aws_get_object(void **state)
{
	const struct sigv4_header h[] = {
		{ "Host", EX_HOST },
		{ "Range", "bytes=0-9" },
		{ "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
		{ "x-amz-date", EX_DATE },
	};
	struct sigv4_request r = {
		.method = "GET", .canonical_uri = "/test.txt", .canonical_query = "",
		.headers = h, .nheaders = 4, .payload_hash = SIGV4_EMPTY_SHA256,
		.amz_date = EX_DATE,
	};
	struct sigv4_debug dbg = { 0 };
	char crhash[65];

	(void)state;
	assert_string_equal(signature_of(&r, &dbg),
			    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	assert_string_equal(dbg.canonical_request,
			    "GET\n/test.txt\n\n"
			    "host:examplebucket.s3.amazonaws.com\n"
			    "range:bytes=0-9\n"
			    "x-amz-content-sha256:" SIGV4_EMPTY_SHA256 "\n"
			    "x-amz-date:20130524T000000Z\n\n"
			    "host;range;x-amz-content-sha256;x-amz-date\n" SIGV4_EMPTY_SHA256);
	/* the documented hash of that canonical request */
	sigv4_sha256_hex(dbg.canonical_request, strlen(dbg.canonical_request), crhash);
	assert_string_equal(crhash,
			    "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
	assert_string_equal(dbg.string_to_sign,
			    "AWS4-HMAC-SHA256\n20130524T000000Z\n"
			    "20130524/us-east-1/s3/aws4_request\n"
			    "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
	sigv4_debug_release(&dbg);
}

/* Example "PUT Object": test$file.text, body "Welcome to Amazon S3.", with a
 * Date header and x-amz-storage-class; headers given out of order and in
 * mixed case on purpose. */
static void test_aws_put_object(void **state)
{
	const char *body = "Welcome to Amazon S3.";
	char hash[65];
	char *uri;
	struct sigv4_header h[] = {
		{ "X-Amz-Storage-Class", "REDUCED_REDUNDANCY" },
		{ "Date", "Fri, 24 May 2013 00:00:00 GMT" },
		{ "x-amz-date", EX_DATE },
		{ "Host", EX_HOST },
		{ "x-amz-content-sha256", NULL },
	};
	struct sigv4_request r = {
		.method = "PUT", .canonical_query = NULL, .headers = h, .nheaders = 5,
		.amz_date = EX_DATE,
	};

	(void)state;
	sigv4_sha256_hex(body, strlen(body), hash);
	assert_string_equal(hash,
			    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	h[4].value = hash;
	r.payload_hash = hash;
	uri = sigv4_encode("/test$file.text", 1);
	assert_string_equal(uri, "/test%24file.text");
	r.canonical_uri = uri;
	assert_string_equal(signature_of(&r, NULL),
			    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	free(uri);
}

/* Example "GET Bucket Lifecycle": the valueless sub-resource "?lifecycle". */
static void test_aws_get_lifecycle(void **state)
{
	const struct sigv4_param q[] = { { "lifecycle", NULL } };
	const struct sigv4_header h[] = {
		{ "host", EX_HOST },
		{ "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
		{ "x-amz-date", EX_DATE },
	};
	struct sigv4_request r = {
		.method = "GET", .canonical_uri = "/", .headers = h, .nheaders = 3,
		.payload_hash = SIGV4_EMPTY_SHA256, .amz_date = EX_DATE,
	};
	char *query = sigv4_query(q, 1);

	(void)state;
	assert_string_equal(query, "lifecycle=");
	r.canonical_query = query;
	assert_string_equal(signature_of(&r, NULL),
			    "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
	free(query);
}

/* Example "Get Bucket (List Objects)": ?max-keys=2&prefix=J, given unsorted. */
static void test_aws_list_objects(void **state)
{
	const struct sigv4_param q[] = { { "prefix", "J" }, { "max-keys", "2" } };
	const struct sigv4_header h[] = {
		{ "host", EX_HOST },
		{ "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
		{ "x-amz-date", EX_DATE },
	};
	struct sigv4_request r = {
		.method = "GET", .canonical_uri = "/", .headers = h, .nheaders = 3,
		.payload_hash = SIGV4_EMPTY_SHA256, .amz_date = EX_DATE,
	};
	char *query = sigv4_query(q, 2);

	(void)state;
	assert_string_equal(query, "max-keys=2&prefix=J");
	r.canonical_query = query;
	assert_string_equal(signature_of(&r, NULL),
			    "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
	free(query);
}

static void test_encode_path(void **state)
{
	char *s;

	(void)state;
	s = sigv4_encode("/dir/a b+c*d!e~f_g-h.i", 1);
	assert_string_equal(s, "/dir/a%20b%2Bc%2Ad%21e~f_g-h.i");
	free(s);
	s = sigv4_encode("/\xc3\xa9t\xc3\xa9/\xe2\x82\xac=%;?#&", 1);
	assert_string_equal(s, "/%C3%A9t%C3%A9/%E2%82%AC%3D%25%3B%3F%23%26");
	free(s);
	s = sigv4_encode("a/b", 0);
	assert_string_equal(s, "a%2Fb");
	free(s);
	s = sigv4_encode("", 1);
	assert_string_equal(s, "");
	free(s);
}

static void test_query_sorting_and_encoding(void **state)
{
	const struct sigv4_param q[] = {
		{ "uploadId", "x y/z" },
		{ "partNumber", "10" },
		{ "uploads", NULL },
		{ "delimiter", "/" },
		{ "prefix", "a+b" },
		{ "continuation-token", "1/2=3" },
		{ "a", "2" },
		{ "a", "10" },
	};
	char *s;

	(void)state;
	s = sigv4_query(q, sizeof(q) / sizeof(q[0]));
	/* byte order of the encoded names: '-' < 'U'/'a'…, capital before small */
	assert_string_equal(s, "a=10&a=2&continuation-token=1%2F2%3D3&delimiter=%2F&"
			       "partNumber=10&prefix=a%2Bb&uploadId=x%20y%2Fz&uploads=");
	free(s);
	s = sigv4_query(NULL, 0);
	assert_string_equal(s, "");
	free(s);
}

/* Names that prefix each other sort by bytes (libcurl 7.88 gets this wrong),
 * values are trimmed and inner spaces squeezed. */
static void test_header_canonicalisation(void **state)
{
	const struct sigv4_header h[] = {
		{ "x-amz-copy-source-range", "bytes=0-9" },
		{ "X-Amz-Copy-Source", "  /b/k  " },
		{ "host", "h" },
		{ "x-amz-meta-note", "a   b \t c" },
		{ "x-amz-date", EX_DATE },
	};
	struct sigv4_request r = {
		.method = "PUT", .canonical_uri = "/b/k2", .headers = h, .nheaders = 5,
		.payload_hash = SIGV4_UNSIGNED_PAYLOAD, .amz_date = EX_DATE,
	};
	struct sigv4_debug dbg = { 0 };
	char *auth = NULL;

	(void)state;
	assert_int_equal(sigv4_sign(&ex_key, &r, &auth, &dbg), 0);
	assert_string_equal(dbg.canonical_request,
			    "PUT\n/b/k2\n\n"
			    "host:h\n"
			    "x-amz-copy-source:/b/k\n"
			    "x-amz-copy-source-range:bytes=0-9\n"
			    "x-amz-date:20130524T000000Z\n"
			    "x-amz-meta-note:a b c\n\n"
			    "host;x-amz-copy-source;x-amz-copy-source-range;x-amz-date;"
			    "x-amz-meta-note\nUNSIGNED-PAYLOAD");
	assert_non_null(strstr(auth, "SignedHeaders=host;x-amz-copy-source;"
				     "x-amz-copy-source-range;x-amz-date;x-amz-meta-note, "));
	free(auth);
	sigv4_debug_release(&dbg);
}

static void test_invalid_requests(void **state)
{
	const struct sigv4_header h[] = { { "host", "h" }, { "", "x" } };
	struct sigv4_request r = {
		.method = "GET", .canonical_uri = "/", .headers = h, .nheaders = 1,
		.payload_hash = SIGV4_EMPTY_SHA256, .amz_date = EX_DATE,
	};
	struct sigv4_key k = ex_key;
	char *auth = (char *)1;

	(void)state;
	r.canonical_uri = "no-slash";
	assert_int_equal(sigv4_sign(&ex_key, &r, &auth, NULL), -EINVAL);
	assert_null(auth);
	r.canonical_uri = "/";
	r.amz_date = "2013";
	assert_int_equal(sigv4_sign(&ex_key, &r, &auth, NULL), -EINVAL);
	r.amz_date = EX_DATE;
	r.nheaders = 2;
	assert_int_equal(sigv4_sign(&ex_key, &r, &auth, NULL), -EINVAL);
	r.nheaders = 1;
	k.secret_key = NULL;
	assert_int_equal(sigv4_sign(&k, &r, &auth, NULL), -EINVAL);
}

static void test_amz_date(void **state)
{
	char d[17];

	(void)state;
	sigv4_amz_date((time_t)1369353600, d);
	assert_string_equal(d, EX_DATE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aws_get_object),
		cmocka_unit_test(test_aws_put_object),
		cmocka_unit_test(test_aws_get_lifecycle),
		cmocka_unit_test(test_aws_list_objects),
		cmocka_unit_test(test_encode_path),
		cmocka_unit_test(test_query_sorting_and_encoding),
		cmocka_unit_test(test_header_canonicalisation),
		cmocka_unit_test(test_invalid_requests),
		cmocka_unit_test(test_amz_date),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
