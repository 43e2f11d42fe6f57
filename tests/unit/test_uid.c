/*
 * test_uid.c — uid format, randomness (no collisions in 10k), versions.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "uid.h"

#define NUIDS 10000

static const char b62[] =
	"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static int cmp_uid(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_format(void **state)
{
	char uid[LAMFS_UID_LEN + 1];

	(void)state;
	memset(uid, 'x', sizeof(uid));
	assert_int_equal(uid_new(uid), 0);
	assert_int_equal(strlen(uid), LAMFS_UID_LEN);
	assert_int_equal(strspn(uid, b62), LAMFS_UID_LEN);
	assert_string_equal(lamfs_uid_version(uid), "0000");
	assert_int_equal(uid_version(uid), 0);
	assert_true(uid_valid(uid));
}

/* 10k uids: all distinct, and every base62 digit shows up in the stems. */
static void test_unique(void **state)
{
	char (*uids)[LAMFS_UID_LEN + 1] = calloc(NUIDS, sizeof(*uids));
	int seen[128] = { 0 };
	size_t i, j;

	(void)state;
	assert_non_null(uids);
	for (i = 0; i < NUIDS; i++) {
		assert_int_equal(uid_new(uids[i]), 0);
		for (j = 0; j < LAMFS_STEM_LEN; j++)
			seen[(unsigned char)uids[i][j]]++;
	}
	qsort(uids, NUIDS, sizeof(*uids), cmp_uid);
	for (i = 1; i < NUIDS; i++)
		assert_string_not_equal(uids[i - 1], uids[i]);
	/* 160k digits, ~2580 expected per digit: a missing or doubled digit
	 * (modulo bias, wrong alphabet) would show. */
	for (i = 0; i < 62; i++) {
		assert_in_range(seen[(unsigned char)b62[i]], 2000, 3200);
	}
	free(uids);
}

static void round_trip(long n, const char *version)
{
	char uid[LAMFS_UID_LEN + 1];

	assert_int_equal(uid_make("abcdefghABCDEFGH", n, uid), 0);
	assert_memory_equal(uid, "abcdefghABCDEFGH", LAMFS_STEM_LEN);
	assert_string_equal(lamfs_uid_version(uid), version);
	assert_int_equal(uid_version(uid), n);
}

static void test_versions(void **state)
{
	char uid[LAMFS_UID_LEN + 1];

	(void)state;
	round_trip(0, "0000");
	round_trip(1, "0001");
	round_trip(9, "0009");
	round_trip(10, "000A");
	round_trip(61, "000z");
	round_trip(62, "0010");
	round_trip(3843, "00zz");
	round_trip(3844, "0100");
	round_trip(62L * 62 * 62 * 62 - 1, "zzzz");
	assert_int_equal(uid_make("abcdefghABCDEFGH", 62L * 62 * 62 * 62, uid), -ERANGE);
	assert_int_equal(uid_make("abcdefghABCDEFGH", -1, uid), -ERANGE);
}

/* Bumping a uid in place: the stem may be the output buffer itself. */
static void test_make_in_place(void **state)
{
	char uid[LAMFS_UID_LEN + 1];

	(void)state;
	assert_int_equal(uid_new(uid), 0);
	assert_int_equal(uid_make(uid, uid_version(uid) + 1, uid), 0);
	assert_string_equal(lamfs_uid_version(uid), "0001");
	assert_true(uid_valid(uid));
}

static void test_invalid(void **state)
{
	char uid[LAMFS_UID_LEN + 1];

	(void)state;
	assert_int_equal(uid_make("short", 0, uid), -EINVAL);
	assert_int_equal(uid_make("abcdefghABCDEFG-", 0, uid), -EINVAL);
	assert_int_equal(uid_make(NULL, 0, uid), -EINVAL);
	assert_false(uid_valid(""));
	assert_false(uid_valid(NULL));
	assert_false(uid_valid("abcdefghABCDEFGH000"));      /* 19 */
	assert_false(uid_valid("abcdefghABCDEFGH00000"));    /* 21 */
	assert_false(uid_valid("abcdefghABCDEFGH00.0"));
	assert_true(uid_valid("abcdefghABCDEFGH0000"));
	assert_int_equal(uid_version("abcdefghABCDEFGH00_0"), -EINVAL);
	assert_int_equal(uid_version("abcdefghABCDEFGH0000x"), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_unique),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_make_in_place),
		cmocka_unit_test(test_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
