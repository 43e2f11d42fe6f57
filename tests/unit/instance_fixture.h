/*
 * instance_fixture.h — a fresh instance (SQLite, local storage) in a new
 * temporary folder, opened, and its removal: shared by the unit tests of the
 * core that need a real store and backend.  static inline so each test
 * program takes only what it uses.
 */
#ifndef LAMFS_TEST_INSTANCE_FIXTURE_H
#define LAMFS_TEST_INSTANCE_FIXTURE_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include "core.h"
#include "instance.h"
#include "log.h"

static inline int test_rm_one(const char *path, const struct stat *st, int flag,
			      struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Make /tmp/<name>.XXXXXX into dir (dirlen bytes), an instance in dir/inst
 * into inst (instlen bytes), and open it into *c.  Logs only errors. */
static inline void test_instance_make(const char *name, char *dir, size_t dirlen, char *inst,
				      size_t instlen, struct core **c)
{
	char *err = NULL;

	log_set_level(LL_ERR);
	snprintf(dir, dirlen, "/tmp/%s.XXXXXX", name);
	assert_non_null(mkdtemp(dir));
	snprintf(inst, instlen, "%s/inst", dir);
	assert_int_equal(instance_init(inst, NULL, NULL, &err), 0);
	assert_int_equal(core_open(inst, 0, c, &err), 0);
}

/* Remove dir and everything in it. */
static inline void test_tree_remove(const char *dir)
{
	nftw(dir, test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
