/*
 * fuzz_key.c — key and name validation, suffix extraction, split (base/key.c).
 *
 * The input is a key (up to the first NUL).  Besides memory safety (every
 * output buffer is heap-allocated at exactly its documented size, so ASan
 * sees a one-byte overflow), it checks:
 *   - key_check agrees with an independent reference written here from the
 *     contract in key.h (same errno, same precedence: whole-key checks, then
 *     each component in order: empty/./.. , > 255 bytes, not UTF-8, reserved);
 *   - a valid key is never hidden, and each of its components passes
 *     key_check_name;
 *   - key_suffix gives "" or a '.'-led tail of the last name of at most
 *     LAMFS_SUFFIX_MAX bytes of [A-Za-z0-9._-], never all digits, never the
 *     whole name, the same on a second call;
 *   - key_split puts parent and name back together into the key;
 *   - key_object of a 20-character uid and that suffix fits LAMFS_OBJ_MAX.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "key.h"
#include "lamfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "fuzz_key: check failed: %s (line %d)\n", #cond, \
				__LINE__);                                           \
			abort();                                                     \
		}                                                                    \
	} while (0)

/* Reference UTF-8 check (RFC 3629): decode each sequence to its code point and
 * refuse overlong forms, surrogates and anything above U+10FFFF. */
static int ref_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], cp, need, k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0) {
			need = 1;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			need = 2;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			need = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (i + need >= n)      /* the sequence runs past the end */
			return 0;
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) ||
		    (need == 3 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += need + 1;
	}
	return 1;
}

static int ref_component(const char *p, size_t len, int first)
{
	if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && !memcmp(p, "..", 2)))
		return -EINVAL;
	if (len > LAMFS_NAME_MAX)
		return -ENAMETOOLONG;
	if (!ref_utf8((const unsigned char *)p, len))
		return -EILSEQ;
	if (len == 8 && !memcmp(p, ".lamindb", 8))
		return -EPERM;
	if (first && len == 6 && !memcmp(p, ".lamfs", 6))
		return -EPERM;
	return 0;
}

static int ref_key_check(const char *key)
{
	size_t n = strlen(key), start = 0, i;
	int rc;

	if (n == 0)
		return -EINVAL;
	if (n > LAMFS_KEY_MAX)
		return -ENAMETOOLONG;
	for (i = 0; i <= n; i++) {
		if (i < n && key[i] != '/')
			continue;
		rc = ref_component(key + start, i - start, start == 0);
		if (rc)
			return rc;
		start = i + 1;
	}
	return 0;
}

static int suffix_char_ok(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

static void check_suffix(const char *key)
{
	char *out = malloc(LAMFS_SUFFIX_MAX + 1);
	char *again = malloc(LAMFS_SUFFIX_MAX + 1);
	const char *slash = strrchr(key, '/');
	const char *name = slash ? slash + 1 : key;
	size_t nlen = strlen(name), slen, i;
	int digits = 1;

	CHECK(out && again);
	key_suffix(key, out);
	key_suffix(key, again);
	CHECK(strcmp(out, again) == 0);
	slen = strlen(out);
	CHECK(slen <= LAMFS_SUFFIX_MAX);
	if (slen) {
		CHECK(out[0] == '.');
		CHECK(slen < nlen);
		CHECK(memcmp(name + nlen - slen, out, slen) == 0);
		/* something other than dots precedes the suffix (dot-files have none) */
		CHECK(strspn(name, ".") < nlen - slen);
		CHECK(out[slen - 1] != '.');
		for (i = 0; i < slen; i++) {
			CHECK(suffix_char_ok(out[i]));
			if (i > 0 && (out[i] < '0' || out[i] > '9'))
				digits = 0;
		}
		CHECK(!digits || slen == 1);
	}
	{
		/* The object name of a 20-char uid with this suffix fits. */
		char *obj = malloc(LAMFS_OBJ_MAX);
		const char *uid = "0123456789ABCDEFabcd";

		CHECK(obj);
		key_object(uid, out, obj, LAMFS_OBJ_MAX);
		CHECK(strlen(obj) == strlen(LAMFS_STORAGE_DIR) + 1 + LAMFS_UID_LEN + slen);
		free(obj);
	}
	free(out);
	free(again);
}

static void check_split(const char *key)
{
	char *parent = malloc(LAMFS_KEY_MAX + 1);
	const char *name;
	const char *slash = strrchr(key, '/');

	CHECK(parent);
	name = key_split(key, parent);
	CHECK(name >= key && name <= key + strlen(key));
	CHECK(strchr(name, '/') == NULL);
	if (!slash) {
		CHECK(name == key);
		CHECK(parent[0] == '\0');
	} else if ((size_t)(slash - key) <= LAMFS_KEY_MAX) {
		CHECK(name == slash + 1);
		CHECK(strlen(parent) == (size_t)(slash - key));
		CHECK(memcmp(parent, key, (size_t)(slash - key)) == 0);
	} else {
		CHECK(strlen(parent) == LAMFS_KEY_MAX);
	}
	free(parent);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *key;
	int rc, ref;

	if (size > 4 * LAMFS_KEY_MAX)
		return -1;
	key = malloc(size + 1);
	if (!key)
		return 0;
	memcpy(key, data, size);
	key[size] = '\0';

	rc = key_check(key);
	ref = ref_key_check(key);
	if (rc != ref) {
		fprintf(stderr, "fuzz_key: key_check says %d, the contract in key.h says %d\n",
			rc, ref);
		abort();
	}
	if (rc == 0) {
		const char *p = key;

		CHECK(key_hidden(key) == 0);
		for (;;) {
			const char *slash = strchr(p, '/');
			size_t len = slash ? (size_t)(slash - p) : strlen(p);
			char comp[LAMFS_NAME_MAX + 1];

			memcpy(comp, p, len);
			comp[len] = '\0';
			/* ".lamfs" is reserved only at the top; key_check_name checks a
			 * component below it. */
			CHECK(key_check_name(comp) == 0 || (p == key && !strcmp(comp, ".lamfs")));
			if (!slash)
				break;
			p = slash + 1;
		}
	}
	rc = key_check_name(key);
	CHECK(rc == 0 || rc == -EINVAL || rc == -ENAMETOOLONG || rc == -EILSEQ || rc == -EPERM);
	if (rc == 0)
		CHECK(strchr(key, '/') == NULL);
	(void)key_hidden(key);
	check_suffix(key);
	check_split(key);
	free(key);
	return 0;
}
