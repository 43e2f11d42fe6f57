/*
 * s3_xml.h — the S3 XML documents lamfs reads and writes, parsed with expat.
 *
 * Readers: error bodies, ListObjectsV2 pages, InitiateMultipartUpload and
 * ListMultipartUploads results.  Writer: the CompleteMultipartUpload body.
 * Element names are matched without namespaces ("Error/Code"); text longer
 * than S3_XML_TEXT_MAX bytes makes the document malformed (S3 keys are at most
 * 1024 bytes, so this only bounds memory against a hostile server).
 *
 * Return values: 0, -EIO for a malformed or unexpected document, -ENOMEM.
 * Strings returned through pointers are malloc'd and the caller frees them;
 * they are set only on success (NULL when the element was absent).
 * Pure functions over a buffer; thread-safe.
 */
#ifndef LAMFS_S3_XML_H
#define LAMFS_S3_XML_H

#include <stddef.h>
#include <stdint.h>

#include "s3_buf.h"

#define S3_XML_TEXT_MAX 65536

/*
 * Walk a document: cb is called at the end of every element with its path
 * from the root ("ListBucketResult/Contents/Key") and its character data
 * ("" for elements with none, whitespace kept).  A non-zero return from cb
 * stops the walk and is returned.
 */
typedef int (*s3_xml_cb)(void *ctx, const char *path, const char *text);
int s3_xml_walk(const char *doc, size_t len, s3_xml_cb cb, void *ctx);

/* S3's <Error><Code/><Message/></Error>; code and message truncated to fit. */
struct s3_xml_error {
	char code[64];
	char message[256];
};
/* 0 and *e filled when doc is an <Error> document; -ENOENT when it is another
 * well-formed document, -EIO when it is not XML.  *e is zeroed first. */
int s3_xml_parse_error(const char *doc, size_t len, struct s3_xml_error *e);

/* InitiateMultipartUploadResult/UploadId into *upload_id (-EIO when absent). */
int s3_xml_upload_id(const char *doc, size_t len, char **upload_id);

/* One page of ListObjectsV2.  Keys are url-decoded when the response says
 * <EncodingType>url</EncodingType>.  cb gets every object; non-zero stops. */
typedef int (*s3_xml_object_cb)(void *ctx, const char *key, uint64_t size);
struct s3_xml_page {
	int truncated;          /* IsTruncated was "true" */
	char *next_token;       /* NextContinuationToken (ListObjectsV2) */
	char *next_key;         /* NextKeyMarker (ListMultipartUploads) */
	char *next_upload_id;   /* NextUploadIdMarker (ListMultipartUploads) */
};
/* Release the strings of a page; safe on a zeroed page. */
void s3_xml_page_release(struct s3_xml_page *p);
int s3_xml_list_objects(const char *doc, size_t len, s3_xml_object_cb cb, void *ctx,
			struct s3_xml_page *page);

/* One page of ListMultipartUploads; cb gets every upload's key and id. */
typedef int (*s3_xml_upload_cb)(void *ctx, const char *key, const char *upload_id);
int s3_xml_list_uploads(const char *doc, size_t len, s3_xml_upload_cb cb, void *ctx,
			struct s3_xml_page *page);

/* Append s with & < > " ' escaped. */
void s3_xml_escape(struct s3_buf *b, const char *s);

/* Decode %XX and '+' (S3's encoding-type=url) in place; -EIO on a bad escape. */
int s3_xml_url_decode(char *s);

#endif
