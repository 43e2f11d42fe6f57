/*
 * test_key.c — key validation (every error case), hidden keys, LaminDB
 * suffixes, split and object names.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "key.h"

/* A string of n copies of c, in buf. */
static char *fill(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

static void test_check_valid(void **state)
{
	(void)state;
	assert_int_equal(key_check("a"), 0);
	assert_int_equal(key_check("seqs/sample.fasta"), 0);
	assert_int_equal(key_check("a/b/c d/é.txt"), 0);
	assert_int_equal(key_check("x/.lamfs"), 0);         /* reserved at the top only */
	assert_int_equal(key_check(".lamfsx/a"), 0);
	assert_int_equal(key_check("a/.lamindbx"), 0);
	assert_int_equal(key_check("..."), 0);
	assert_int_equal(key_check("\xf0\x9f\x98\x80.png"), 0);   /* U+1F600 */
	assert_int_equal(key_check("\xf4\x8f\xbf\xbf"), 0);       /* U+10FFFF */
}

static void test_check_invalid_shape(void **state)
{
	(void)state;
	assert_int_equal(key_check(""), -EINVAL);
	assert_int_equal(key_check(NULL), -EINVAL);
	assert_int_equal(key_check("a//b"), -EINVAL);
	assert_int_equal(key_check("/a"), -EINVAL);
	assert_int_equal(key_check("a/"), -EINVAL);
	assert_int_equal(key_check("."), -EINVAL);
	assert_int_equal(key_check(".."), -EINVAL);
	assert_int_equal(key_check("a/./b"), -EINVAL);
	assert_int_equal(key_check("a/.."), -EINVAL);
}

static void test_check_lengths(void **state)
{
	char name[LAMFS_NAME_MAX + 2];
	char key[LAMFS_KEY_MAX + 2];
	size_t i;

	(void)state;
	assert_int_equal(key_check(fill(name, 'n', LAMFS_NAME_MAX)), 0);
	assert_int_equal(key_check_name(name), 0);
	assert_int_equal(key_check(fill(name, 'n', LAMFS_NAME_MAX + 1)), -ENAMETOOLONG);
	assert_int_equal(key_check_name(name), -ENAMETOOLONG);
	/* 1024 bytes: "aaaa/aaaa/.../aaa" with short components */
	fill(key, 'a', LAMFS_KEY_MAX);
	for (i = 4; i < LAMFS_KEY_MAX - 1; i += 5)
		key[i] = '/';
	assert_int_equal(key_check(key), 0);
	key[LAMFS_KEY_MAX] = 'a';
	key[LAMFS_KEY_MAX + 1] = '\0';
	assert_int_equal(key_check(key), -ENAMETOOLONG);
}

static void test_check_utf8(void **state)
{
	(void)state;
	assert_int_equal(key_check("\xc0\xaf"), -EILSEQ);           /* overlong '/' */
	assert_int_equal(key_check("a/\xc1\xbf"), -EILSEQ);         /* overlong */
	assert_int_equal(key_check("\xe0\x80\xaf"), -EILSEQ);       /* overlong 3-byte */
	assert_int_equal(key_check("\xf0\x80\x80\xaf"), -EILSEQ);   /* overlong 4-byte */
	assert_int_equal(key_check("\xed\xa0\x80"), -EILSEQ);       /* surrogate D800 */
	assert_int_equal(key_check("\xf4\x90\x80\x80"), -EILSEQ);   /* U+110000 */
	assert_int_equal(key_check("\xf5\x80\x80\x80"), -EILSEQ);
	assert_int_equal(key_check("\xff"), -EILSEQ);
	assert_int_equal(key_check("ab\xc3"), -EILSEQ);             /* truncated */
	assert_int_equal(key_check("\xc3(x"), -EILSEQ);             /* bad continuation */
	assert_int_equal(key_check("\x80"), -EILSEQ);               /* lone continuation */
	assert_int_equal(key_check_name("\xc0\xaf"), -EILSEQ);
}

static void test_check_reserved(void **state)
{
	(void)state;
	assert_int_equal(key_check(".lamindb"), -EPERM);
	assert_int_equal(key_check(".lamindb/x"), -EPERM);
	assert_int_equal(key_check("a/.lamindb"), -EPERM);
	assert_int_equal(key_check("a/.lamindb/b"), -EPERM);
	assert_int_equal(key_check(".lamfs"), -EPERM);
	assert_int_equal(key_check(".lamfs/x"), -EPERM);
	assert_int_equal(key_check_name(".lamindb"), -EPERM);
	assert_int_equal(key_check_name(".lamfs"), 0);   /* only the top is reserved */
	assert_int_equal(key_check_name("a/b"), -EINVAL);
	assert_int_equal(key_check_name(""), -EINVAL);
	assert_int_equal(key_check_name(".."), -EINVAL);

	assert_true(key_hidden(".lamindb"));
	assert_true(key_hidden(".lamindb/abc.csv"));
	assert_true(key_hidden("x/y/.lamindb/z"));
	assert_true(key_hidden(".lamfs"));
	assert_true(key_hidden(".lamfs/state"));
	assert_false(key_hidden("x/.lamfs"));
	assert_false(key_hidden(""));
	assert_false(key_hidden("a/b.csv"));
	assert_false(key_hidden(".lamindbx"));
}

static void test_suffix_table(void **state)
{
	static const char *const table[][2] = {
		{ "sample.fasta", ".fasta" },
		{ "seqs/sample.fasta", ".fasta" },
		{ ".fasta", "" },                  /* a dot-file has no suffix */
		{ "x.csv.gz", ".csv.gz" },
		{ "a.tar.gz", ".tar.gz" },
		{ "r.fastq.gz", ".fastq.gz" },
		{ "salmon.merged.gene_counts.tsv.gz", ".tsv.gz" },
		{ "a.random.gz", ".gz" },
		{ "file.1", "" },
		{ "logs/date.log.123", "" },
		{ ".bashrc", "" },
		{ "noext", "" },
		{ "dir.d/noext", "" },
		{ "weird.c$v", "" },
		{ "a.b.c", ".c" },
		{ "d.x.y.z/f.a.b.c", ".c" },
		{ "logs/date.log.txt", ".txt" },
		{ "a.", "" },
		{ "x.y.anndata.zarr", ".anndata.zarr" },
		{ "x.spatialdata.zarr", ".spatialdata.zarr" },
		{ "config.vitessce.json", ".vitessce.json" },
		{ "M.R", ".R" },
		{ "a.with space", "" },
		{ "a.0123456789012345678901234567890x", "" },   /* 33 bytes */
		{ "a.012345678901234567890123456789x", ".012345678901234567890123456789x" },
		{ "a.h\xc3\xa9", "" },
		{ "..hidden.txt", ".txt" },
		{ "a.tar_x-y", ".tar_x-y" },
	};
	char out[LAMFS_SUFFIX_MAX + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		memset(out, 'z', sizeof(out));
		key_suffix(table[i][0], out);
		if (strcmp(out, table[i][1]) != 0)
			fail_msg("key_suffix(\"%s\") = \"%s\", want \"%s\"", table[i][0], out,
				 table[i][1]);
	}
}

static void test_split(void **state)
{
	char parent[LAMFS_KEY_MAX + 1];

	(void)state;
	assert_string_equal(key_split("a/b/c.txt", parent), "c.txt");
	assert_string_equal(parent, "a/b");
	assert_string_equal(key_split("top.txt", parent), "top.txt");
	assert_string_equal(parent, "");
	assert_string_equal(key_split("a/b", parent), "b");
	assert_string_equal(parent, "a");
}

static void test_object(void **state)
{
	char obj[LAMFS_OBJ_MAX];
	char suffix[LAMFS_SUFFIX_MAX + 1];

	(void)state;
	key_object("abcdefghABCDEFGH0000", ".csv.gz", obj, sizeof(obj));
	assert_string_equal(obj, ".lamindb/abcdefghABCDEFGH0000.csv.gz");
	key_object("abcdefghABCDEFGH0001", "", obj, sizeof(obj));
	assert_string_equal(obj, ".lamindb/abcdefghABCDEFGH0001");
	memset(suffix, 'a', LAMFS_SUFFIX_MAX);
	suffix[0] = '.';
	suffix[LAMFS_SUFFIX_MAX] = '\0';
	key_object("abcdefghABCDEFGH0001", suffix, obj, sizeof(obj));   /* longest fits */
	assert_int_equal(strlen(obj), strlen(".lamindb/") + LAMFS_UID_LEN + LAMFS_SUFFIX_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_valid),
		cmocka_unit_test(test_check_invalid_shape),
		cmocka_unit_test(test_check_lengths),
		cmocka_unit_test(test_check_utf8),
		cmocka_unit_test(test_check_reserved),
		cmocka_unit_test(test_suffix_table),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_object),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
