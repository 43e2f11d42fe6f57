/*
 * test_inodes.c — the inode table (core/inodes.h): one inode per folder and
 * per version, lookups counted and forgotten, keys built from names, st_ino
 * stable across the versions of a key and its renames, and what 100,000
 * inodes cost in memory.
 */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "inodes.h"

#define UID0 "AAAAbbbbCCCCdddd0000"
#define UID1 "AAAAbbbbCCCCdddd0001"
#define UIDX "XXXXbbbbCCCCdddd0000"

static int setup(void **state)
{
	struct core_inodes *t = NULL;

	assert_int_equal(core_inodes_new(&t), 0);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	core_inodes_free(*state);
	return 0;
}

static struct core_inode_info found(struct core_inodes *t, uint64_t parent, const char *name,
				    enum core_inode_kind kind, int64_t rec, const char *uid)
{
	struct core_inode_info i;

	assert_int_equal(core_inode_found(t, parent, name, kind, rec, uid, &i), 0);
	return i;
}

static void assert_key(struct core_inodes *t, uint64_t ino, const char *want)
{
	char key[LAMFS_KEY_MAX + 1];

	assert_int_equal(core_inode_key(t, ino, key), 0);
	assert_string_equal(key, want);
}

static void test_root(void **state)
{
	struct core_inodes *t = *state;
	struct core_inode_info i;

	assert_int_equal(core_inode_get(t, CORE_ROOT_INO, &i), 0);
	assert_int_equal(i.kind, CORE_INO_FOLDER);
	assert_key(t, CORE_ROOT_INO, "");
	assert_int_equal(core_inode_forget(t, CORE_ROOT_INO, 100), 0);
	assert_int_equal(core_inode_get(t, CORE_ROOT_INO, &i), 0);  /* never freed */
	assert_int_equal(core_inodes_count(t), 1);
}

/* The same folder twice is one inode; it goes when every lookup is forgotten. */
static void test_lookups_counted(void **state)
{
	struct core_inodes *t = *state;
	struct core_inode_info a = found(t, CORE_ROOT_INO, "a", CORE_INO_FOLDER, 0, NULL);
	struct core_inode_info again = found(t, CORE_ROOT_INO, "a", CORE_INO_FOLDER, 0, NULL);

	assert_int_equal(a.ino, again.ino);
	assert_true(a.ino != CORE_ROOT_INO);
	assert_int_equal(core_inode_forget(t, a.ino, 1), 0);
	assert_int_equal(core_inode_get(t, a.ino, &again), 0);
	assert_int_equal(core_inode_forget(t, a.ino, 1), 0);
	assert_int_equal(core_inode_get(t, a.ino, &again), -ENOENT);
	assert_int_equal(core_inode_forget(t, a.ino, 1), -ENOENT);
	/* found again later: a new node id, never the old one */
	again = found(t, CORE_ROOT_INO, "a", CORE_INO_FOLDER, 0, NULL);
	assert_true(again.ino > a.ino);
}

/* A version is an inode: a new version of the key is another inode with the
 * same st_ino; its /.lamfs/uid path is a third one with its own st_ino. */
static void test_versions(void **state)
{
	struct core_inodes *t = *state;
	struct core_inode_info d = found(t, CORE_ROOT_INO, "d", CORE_INO_FOLDER, 0, NULL);
	struct core_inode_info v0 = found(t, d.ino, "f", CORE_INO_VERSION, 10, UID0);
	struct core_inode_info v0b = found(t, d.ino, "f", CORE_INO_VERSION, 10, UID0);
	struct core_inode_info v1 = found(t, d.ino, "f", CORE_INO_VERSION, 11, UID1);
	struct core_inode_info u0 = found(t, CORE_ROOT_INO, UID0, CORE_INO_UID_VERSION, 10, UID0);
	struct core_inode_info other = found(t, d.ino, "g", CORE_INO_VERSION, 12, UIDX);

	assert_int_equal(v0.ino, v0b.ino);
	assert_true(v1.ino != v0.ino);
	assert_int_equal(v0.rec_id, 10);
	assert_int_equal(v1.st_ino, v0.st_ino);
	assert_true(v0.st_ino < (1ULL << 63));
	assert_true(u0.ino != v0.ino);
	assert_true(u0.st_ino != v0.st_ino);
	assert_true(u0.st_ino >= (1ULL << 63));
	assert_true(other.st_ino != v0.st_ino);
	assert_true(d.st_ino != v0.st_ino);
	assert_key(t, v0.ino, "d/f");
	assert_key(t, v1.ino, "d/f");
}

/* Renames: a version found under a new name moves there (same inode, same
 * st_ino); a folder moved carries everything below it. */
static void test_renames(void **state)
{
	struct core_inodes *t = *state;
	struct core_inode_info d = found(t, CORE_ROOT_INO, "d", CORE_INO_FOLDER, 0, NULL);
	struct core_inode_info e = found(t, d.ino, "e", CORE_INO_FOLDER, 0, NULL);
	struct core_inode_info v = found(t, e.ino, "f", CORE_INO_VERSION, 10, UID0);
	struct core_inode_info moved = found(t, e.ino, "g", CORE_INO_VERSION, 10, UID0);

	assert_int_equal(moved.ino, v.ino);
	assert_int_equal(moved.st_ino, v.st_ino);
	assert_key(t, v.ino, "d/e/g");
	assert_int_equal(core_inode_move(t, e.ino, CORE_ROOT_INO, "top"), 0);
	assert_key(t, v.ino, "top/g");
	assert_key(t, e.ino, "top");
	/* the folder's identity moved too: "top" finds it, "d/e" makes a new one */
	assert_int_equal(found(t, CORE_ROOT_INO, "top", CORE_INO_FOLDER, 0, NULL).ino, e.ino);
	assert_true(found(t, d.ino, "e", CORE_INO_FOLDER, 0, NULL).ino != e.ino);
	assert_int_equal(core_inode_move(t, e.ino, v.ino, "x"), -ENOENT); /* into a file */
	assert_int_equal(core_inode_move(t, CORE_ROOT_INO, d.ino, "x"), -ENOENT);
}

/* Stages are never shared: each one the kernel gets is new. */
static void test_stages(void **state)
{
	struct core_inodes *t = *state;
	struct core_inode_info s1 = found(t, CORE_ROOT_INO, "new", CORE_INO_STAGE, 0, UID0);
	struct core_inode_info s2 = found(t, CORE_ROOT_INO, "new", CORE_INO_STAGE, 0, UID0);
	struct core_inode_info v = found(t, CORE_ROOT_INO, "new", CORE_INO_VERSION, 10, UID0);

	assert_true(s1.ino != s2.ino);
	assert_int_equal(s1.st_ino, v.st_ino);   /* its first save keeps st_ino */
	assert_key(t, s2.ino, "new");
}

/* Open files keep an inode the kernel forgot (an unlinked open file); a
 * folder stays while inodes below it do. */
static void test_held(void **state)
{
	struct core_inodes *t = *state;
	struct core_inode_info d = found(t, CORE_ROOT_INO, "d", CORE_INO_FOLDER, 0, NULL);
	struct core_inode_info v = found(t, d.ino, "f", CORE_INO_VERSION, 10, UID0);
	struct core_inode_info i;

	assert_int_equal(core_inode_open(t, v.ino, 1), 0);
	assert_int_equal(core_inode_forget(t, v.ino, 1), 0);
	assert_int_equal(core_inode_forget(t, d.ino, 1), 0);
	assert_int_equal(core_inode_get(t, v.ino, &i), 0);
	assert_int_equal(core_inode_get(t, d.ino, &i), 0);
	assert_key(t, v.ino, "d/f");
	assert_int_equal(core_inode_open(t, v.ino, -1), 0);
	assert_int_equal(core_inode_get(t, v.ino, &i), -ENOENT);
	assert_int_equal(core_inode_get(t, d.ino, &i), -ENOENT);
	assert_int_equal(core_inodes_count(t), 1);
	assert_int_equal(core_inode_open(t, v.ino, -1), -ENOENT);
	assert_int_equal(core_inode_open(t, CORE_ROOT_INO, -1), -EINVAL);
}

static void test_bad_input(void **state)
{
	struct core_inodes *t = *state;
	struct core_inode_info v = found(t, CORE_ROOT_INO, "f", CORE_INO_VERSION, 10, UID0);
	struct core_inode_info i;
	char key[LAMFS_KEY_MAX + 1];

	assert_int_equal(core_inode_found(t, CORE_ROOT_INO, "a/b", CORE_INO_FOLDER, 0, NULL, &i),
			 -EINVAL);
	assert_int_equal(core_inode_found(t, CORE_ROOT_INO, "", CORE_INO_FOLDER, 0, NULL, &i),
			 -EINVAL);
	assert_int_equal(core_inode_found(t, CORE_ROOT_INO, "f", CORE_INO_VERSION, 1, NULL, &i),
			 -EINVAL);
	assert_int_equal(core_inode_found(t, CORE_ROOT_INO, "f", CORE_INO_VERSION, 1, "short", &i),
			 -EINVAL);
	assert_int_equal(core_inode_found(t, 999, "f", CORE_INO_FOLDER, 0, NULL, &i), -ENOENT);
	assert_int_equal(core_inode_found(t, v.ino, "f", CORE_INO_FOLDER, 0, NULL, &i), -ENOENT);
	assert_int_equal(core_inode_key(t, 999, key), -ENOENT);
}

/* A key longer than LAMFS_KEY_MAX cannot be built. */
static void test_key_too_long(void **state)
{
	struct core_inodes *t = *state;
	char name[200], key[LAMFS_KEY_MAX + 1];
	uint64_t parent = CORE_ROOT_INO;
	int i;

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	for (i = 0; i < 6; i++)
		parent = found(t, parent, name, CORE_INO_FOLDER, 0, NULL).ino;
	assert_int_equal(core_inode_key(t, parent, key), -ENAMETOOLONG);
}

/* 100,000 versions held by the kernel: well inside the mount's 64 MiB. */
static void test_hundred_thousand(void **state)
{
	struct core_inodes *t = *state;
	struct core_inode_info d = found(t, CORE_ROOT_INO, "data", CORE_INO_FOLDER, 0, NULL);
	struct mallinfo2 before = mallinfo2(), after;
	char name[32], uid[LAMFS_UID_LEN + 1];
	uint64_t first = 0, last = 0;
	size_t used;
	int i;

	for (i = 0; i < 100000; i++) {
		snprintf(name, sizeof(name), "file-%06d.csv", i);
		snprintf(uid, sizeof(uid), "%016d0000", i);
		last = found(t, d.ino, name, CORE_INO_VERSION, i + 1, uid).ino;
		if (!first)
			first = last;
	}
	after = mallinfo2();
	used = after.uordblks - before.uordblks;
	print_message("100,000 inodes: %zu bytes (%zu per inode)\n", used, used / 100000);
	assert_true(used < 24u * 1024 * 1024);
	assert_int_equal(core_inodes_count(t), 100002);
	assert_key(t, last, "data/file-099999.csv");
	for (i = 0; i < 100000; i++)
		assert_int_equal(core_inode_forget(t, first + (uint64_t)i, 1), 0);
	assert_int_equal(core_inodes_count(t), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookups_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_renames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hundred_thousand, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
