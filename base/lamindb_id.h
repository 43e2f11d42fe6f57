/*
 * lamindb_id.h — the identity of a LaminDB instance, as lamindb-setup makes it.
 *
 * A lamfs instance is a LaminDB instance of LaminDB's anonymous user:
 *   slug          "anonymous/<name>"
 *   instance id   uuid5(NAMESPACE_URL, slug), 32 lowercase hex digits
 *   instance uid  md5 of the instance id's 32 hex characters, the digest read
 *                 as one big-endian integer, in base 62 (0-9A-Za-z, most
 *                 significant digit first), first 12 characters
 *   storage uid   12 random base-62 characters
 * and the marker lamin init writes to <storage root>/.lamindb/storage_uid.txt:
 *   <storage uid>\ncreation info:\ninstance_slug=<slug>\ninstance_id=<id>\n
 *   instance_uid=<uid>          (no newline at the end)
 * (docs/lamindb.md).  Pure functions, no I/O: the caller reads and writes the
 * file through the storage backend.  Thread-safe.
 */
#ifndef LAMFS_LAMINDB_ID_H
#define LAMFS_LAMINDB_ID_H

#include <stddef.h>

#define LAMINDB_ID_HEX_LEN 32      /* instance id */
#define LAMINDB_UID12_LEN 12       /* instance uid, storage uid */
#define LAMINDB_NAME_MAX 200       /* an instance name, bytes */
#define LAMINDB_MARKER_NAME "storage_uid.txt"   /* in the storage's .lamindb/ */
/* Bytes a formatted marker may take (lamindb_ident_format). */
#define LAMINDB_MARKER_MAX 512

struct lamindb_ident {
	char storage_uid[LAMINDB_UID12_LEN + 1];
	char slug[LAMINDB_NAME_MAX + 16];            /* "anonymous/<name>" */
	char instance_id[LAMINDB_ID_HEX_LEN + 1];
	char instance_uid[LAMINDB_UID12_LEN + 1];
};

/* uuid5(NAMESPACE_URL, slug) as 32 lowercase hex digits into out.  0. */
int lamindb_instance_id(const char *slug, char out[LAMINDB_ID_HEX_LEN + 1]);

/* The instance uid of an instance id (32 hex digits, either case; dashes of
 * the 8-4-4-4-12 form are allowed).  -EINVAL when id is not that. */
int lamindb_instance_uid(const char *id, char out[LAMINDB_UID12_LEN + 1]);

/* A name LaminDB accepts for an instance: 1..LAMINDB_NAME_MAX bytes, no '/',
 * no whitespace or control character, not "." or "..".  1 when valid. */
int lamindb_name_valid(const char *name);

/* The instance name a storage root implies, as lamin init infers it: the last
 * path component of "/abs/path" or "s3://bucket[/prefix]" (the bucket when
 * there is no prefix), trailing slashes ignored; blanks, control characters
 * and backslashes in it become '-'.  -EINVAL when there is no such component
 * ("/", "..") or it is over LAMINDB_NAME_MAX bytes, -ENAMETOOLONG when it
 * does not fit in len. */
int lamindb_name_of_root(const char *root, char *out, size_t len);

/* A new identity for instance `name`: slug, id and uid derived, a random
 * storage uid.  -EINVAL when the name is not valid; -errno from getrandom. */
int lamindb_ident_new(const char *name, struct lamindb_ident *out);

/* Read a marker's text (len bytes, need not be NUL-terminated).  The first
 * line is the storage uid (12 base-62 characters); instance_slug= and
 * instance_id= must be there; instance_uid=, when there, must derive from
 * instance_id (else the marker is damaged); other lines are ignored.
 * -EBADMSG when the text is not such a marker (*why, if not NULL, says what is
 * wrong: a static string). */
int lamindb_ident_parse(const char *text, size_t len, struct lamindb_ident *out,
			const char **why);

/* The marker text of id into buf (NUL-terminated); its length, or -ENOSPC. */
int lamindb_ident_format(const struct lamindb_ident *id, char *buf, size_t len);

#endif
