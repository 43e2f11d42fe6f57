/*
 * lamindb_id.c — instance ids, instance uids and the storage marker, computed
 * the way lamindb-setup computes them (see lamindb_id.h), so LaminDB accepts
 * a lamfs instance's storage as its own.
 */
#include "lamindb_id.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "hash.h"
#include "uid.h"

static const char b62[] =
	"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* uuid.NAMESPACE_URL, 6ba7b811-9dad-11d1-80b4-00c04fd430c8 */
static const unsigned char namespace_url[16] = {
	0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1,
	0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
};

int lamindb_instance_id(const char *slug, char out[LAMINDB_ID_HEX_LEN + 1])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = -ENOMEM;

	if (!ctx)
		goto out;
	if (!EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) ||
	    !EVP_DigestUpdate(ctx, namespace_url, sizeof(namespace_url)) ||
	    !EVP_DigestUpdate(ctx, slug, strlen(slug)) ||
	    !EVP_DigestFinal_ex(ctx, digest, &dlen) || dlen < 16) {
		rc = -EIO;
		goto out;
	}
	/* RFC 4122 name-based, SHA-1: version 5, variant 10xx. */
	digest[6] = (unsigned char)((digest[6] & 0x0f) | 0x50);
	digest[8] = (unsigned char)((digest[8] & 0x3f) | 0x80);
	hash_hex(digest, 16, out);
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* The 32 hex digits of id, lowercased, into out; dashes skipped.  0 or -EINVAL. */
static int id_normalise(const char *id, char out[LAMINDB_ID_HEX_LEN + 1])
{
	size_t n = 0;

	for (; *id; id++) {
		char c = *id;

		if (c == '-')
			continue;
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) ||
		    n == LAMINDB_ID_HEX_LEN)
			return -EINVAL;
		out[n++] = c;
	}
	out[n] = '\0';
	return n == LAMINDB_ID_HEX_LEN ? 0 : -EINVAL;
}

int lamindb_instance_uid(const char *id, char out[LAMINDB_UID12_LEN + 1])
{
	char hex[LAMINDB_ID_HEX_LEN + 1], digits[32];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	unsigned __int128 v = 0;
	int i, n = 0, rc;

	rc = id_normalise(id, hex);
	if (rc < 0)
		goto out;
	if (!EVP_Digest(hex, LAMINDB_ID_HEX_LEN, md, &mdlen, EVP_md5(), NULL) || mdlen != 16) {
		rc = -EIO;
		goto out;
	}
	for (i = 0; i < 16; i++)
		v = (v << 8) | md[i];
	/* lamin_utils' base62: digits without leading zeros, "0" for zero. */
	do {
		digits[n++] = b62[(unsigned)(v % 62)];
		v /= 62;
	} while (v);
	for (i = 0; i < LAMINDB_UID12_LEN && i < n; i++)
		out[i] = digits[n - 1 - i];
	out[i] = '\0';
out:
	return rc;
}

int lamindb_name_valid(const char *name)
{
	size_t n = strlen(name), i;

	if (n == 0 || n > LAMINDB_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c <= ' ' || c == 0x7f || c == '/' || c == '\\')
			return 0;
	}
	return 1;
}

int lamindb_name_of_root(const char *root, char *out, size_t len)
{
	const char *p = root, *end, *start;
	size_t i, n;
	int rc = 0;

	if (!strncmp(p, "s3://", 5))
		p += 5;
	end = p + strlen(p);
	while (end > p && end[-1] == '/')
		end--;
	start = end;
	while (start > p && start[-1] != '/')
		start--;
	n = (size_t)(end - start);
	if (n > LAMINDB_NAME_MAX) {
		rc = -EINVAL;
		goto out;
	}
	if (n >= len) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	/* What a name may not hold (blanks, controls, backslashes) becomes '-':
	 * a folder "my data" makes the instance "my-data". */
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)start[i];

		out[i] = c <= ' ' || c == 0x7f || c == '\\' ? '-' : (char)c;
	}
	out[n] = '\0';
	if (!lamindb_name_valid(out))
		rc = -EINVAL;
out:
	return rc;
}

int lamindb_ident_new(const char *name, struct lamindb_ident *out)
{
	char u[LAMFS_UID_LEN + 1];
	int rc = -EINVAL;

	if (!lamindb_name_valid(name))
		goto out;
	memset(out, 0, sizeof(*out));
	snprintf(out->slug, sizeof(out->slug), "anonymous/%s", name);
	rc = lamindb_instance_id(out->slug, out->instance_id);
	if (rc == 0)
		rc = lamindb_instance_uid(out->instance_id, out->instance_uid);
	/* The random stem of an artifact uid is uniform base 62, as a storage uid is. */
	if (rc == 0)
		rc = uid_new(u);
	if (rc == 0) {
		memcpy(out->storage_uid, u, LAMINDB_UID12_LEN);
		out->storage_uid[LAMINDB_UID12_LEN] = '\0';
	}
out:
	return rc;
}

static int is_b62(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!s[i] || !strchr(b62, s[i]))
			return 0;
	return 1;
}

/* Copy value [v, v+n) into out (size cap); 0, or -1 when it does not fit. */
static int take(char *out, size_t cap, const char *v, size_t n)
{
	if (n >= cap)
		return -1;
	memcpy(out, v, n);
	out[n] = '\0';
	return 0;
}

int lamindb_ident_parse(const char *text, size_t len, struct lamindb_ident *out,
			const char **why)
{
	struct lamindb_ident id;
	char uid_in_file[LAMINDB_UID12_LEN + 2] = "";
	const char *p = text, *end = text + len, *nl, *msg = NULL;
	size_t n;
	int line = 0, rc = -EBADMSG;

	memset(&id, 0, sizeof(id));
	for (; p < end; p = nl + 1, line++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		n = (size_t)(nl - p);
		if (n && p[n - 1] == '\r')
			n--;
		if (line == 0) {
			if (n != LAMINDB_UID12_LEN || !is_b62(p, n)) {
				msg = "the first line is not a 12-character storage uid";
				goto out;
			}
			take(id.storage_uid, sizeof(id.storage_uid), p, n);
		} else if (n > 14 && !strncmp(p, "instance_slug=", 14)) {
			if (take(id.slug, sizeof(id.slug), p + 14, n - 14) < 0) {
				msg = "instance_slug is too long";
				goto out;
			}
		} else if (n > 12 && !strncmp(p, "instance_id=", 12)) {
			char raw[64];

			if (take(raw, sizeof(raw), p + 12, n - 12) < 0 ||
			    id_normalise(raw, id.instance_id) < 0) {
				msg = "instance_id is not 32 hex digits";
				goto out;
			}
		} else if (n > 13 && !strncmp(p, "instance_uid=", 13)) {
			if (take(uid_in_file, sizeof(uid_in_file), p + 13, n - 13) < 0) {
				msg = "instance_uid is not 12 characters";
				goto out;
			}
		}
		if (nl == end)
			break;
	}
	if (!id.storage_uid[0]) {
		msg = "it is empty";
	} else if (!id.slug[0] || !id.instance_id[0]) {
		msg = "it has no instance_slug= or instance_id= line (written by an older LaminDB?)";
	} else if (lamindb_instance_uid(id.instance_id, id.instance_uid) < 0) {
		msg = "instance_id is not 32 hex digits";
	} else if (uid_in_file[0] && strcmp(uid_in_file, id.instance_uid) != 0) {
		msg = "its instance_uid does not derive from its instance_id";
	} else {
		*out = id;
		rc = 0;
	}
out:
	if (why)
		*why = msg;
	return rc;
}

/* Byte for byte what lamindb-setup's mark_storage_root() writes: no newline
 * after the last line. */
int lamindb_ident_format(const struct lamindb_ident *id, char *buf, size_t len)
{
	int n = snprintf(buf, len,
			 "%s\ncreation info:\ninstance_slug=%s\ninstance_id=%s\ninstance_uid=%s",
			 id->storage_uid, id->slug, id->instance_id, id->instance_uid);

	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}
