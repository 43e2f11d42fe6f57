/*
 * uid.c — artifact uids: a 16-character random base62 stem and a 4-character
 * base62 version counter (big-endian, "0000" first), as LaminDB builds them.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "uid.h"

static const char b62[] =
	"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#define B62_VERSIONS (62L * 62 * 62 * 62)

/* Value of a base62 digit, or -1. */
static int b62_value(char c)
{
	int v = -1;

	if (c >= '0' && c <= '9')
		v = c - '0';
	else if (c >= 'A' && c <= 'Z')
		v = c - 'A' + 10;
	else if (c >= 'a' && c <= 'z')
		v = c - 'a' + 36;
	return v;
}

/* 1 when the first n bytes of s are base62 digits (no NUL among them). */
static int b62_run(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && b62_value(s[i]) >= 0)
		i++;
	return i == n;
}

/* Fill buf with len random bytes; 0 or -errno. */
static int random_bytes(unsigned char *buf, size_t len)
{
	size_t done = 0;
	int rc = 0;

	while (done < len) {
		ssize_t n = getrandom(buf + done, len - done, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		done += (size_t)n;
	}
	return rc;
}

/* Encode n (< 62^4) big-endian into out[0..3]. */
static void version_encode(long n, char *out)
{
	int i;

	for (i = LAMFS_VERSION_LEN - 1; i >= 0; i--) {
		out[i] = b62[n % 62];
		n /= 62;
	}
}

int uid_new(char out[LAMFS_UID_LEN + 1])
{
	unsigned char pool[64];
	size_t used = sizeof(pool);
	int filled = 0;
	int rc = 0;

	/* Rejection sampling: bytes >= 248 (= 4 * 62) are dropped, so every
	 * digit is uniform over 0..61. */
	while (filled < LAMFS_STEM_LEN) {
		unsigned char byte;

		if (used == sizeof(pool)) {
			rc = random_bytes(pool, sizeof(pool));
			if (rc < 0)
				goto out;
			used = 0;
		}
		byte = pool[used++];
		if (byte >= 248)
			continue;
		out[filled++] = b62[byte % 62];
	}
	version_encode(0, out + LAMFS_STEM_LEN);
	out[LAMFS_UID_LEN] = '\0';
out:
	return rc;
}

int uid_make(const char *stem, long n, char out[LAMFS_UID_LEN + 1])
{
	int rc = 0;

	if (!stem || !b62_run(stem, LAMFS_STEM_LEN)) {
		rc = -EINVAL;
		goto out;
	}
	if (n < 0 || n >= B62_VERSIONS) {
		rc = -ERANGE;
		goto out;
	}
	/* memmove: stem may point into out (bumping a uid in place). */
	memmove(out, stem, LAMFS_STEM_LEN);
	version_encode(n, out + LAMFS_STEM_LEN);
	out[LAMFS_UID_LEN] = '\0';
out:
	return rc;
}

int uid_valid(const char *s)
{
	return s && b62_run(s, LAMFS_UID_LEN) && s[LAMFS_UID_LEN] == '\0';
}

long uid_version(const char *uid)
{
	long n = -EINVAL;
	int i;

	if (uid_valid(uid)) {
		n = 0;
		for (i = 0; i < LAMFS_VERSION_LEN; i++)
			n = n * 62 + b62_value(uid[LAMFS_STEM_LEN + i]);
	}
	return n;
}
