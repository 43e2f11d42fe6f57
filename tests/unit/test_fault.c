/*
 * test_fault.c — the LAMFS_FAULT / LAMFS_FAULT_FILE syntax and fault_check().
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fault.h"

static void test_lookup(void **state)
{
	(void)state;
	assert_int_equal(fault_lookup("", "backend.put"), 0);
	assert_int_equal(fault_lookup("backend.put=EIO", "backend.put"), -EIO);
	assert_int_equal(fault_lookup("backend.put=EIO", "backend.put.mid"), 0);
	assert_int_equal(fault_lookup("backend.put.mid=ENOSPC", "backend.put"), 0);
	assert_int_equal(fault_lookup("a=EACCES,backend.put=ENOSPC", "backend.put"), -ENOSPC);
	assert_int_equal(fault_lookup("a=EACCES, b=EPERM", "b"), -EPERM);
	assert_int_equal(fault_lookup("a=EACCES\nb=ETIMEDOUT\n", "b"), -ETIMEDOUT);
	assert_int_equal(fault_lookup("a=ECONNRESET", "a"), -ECONNRESET);
	assert_int_equal(fault_lookup("a=EROFS", "a"), -EROFS);
	assert_int_equal(fault_lookup("a=EDQUOT", "a"), -EDQUOT);
	assert_int_equal(fault_lookup("a=ENOTCONN", "a"), -ENOTCONN);
	assert_int_equal(fault_lookup("a=ENOENT", "a"), -ENOENT);
	assert_int_equal(fault_lookup("save.staged=crash", "save.staged"), FAULT_CRASH);
	assert_int_equal(fault_lookup("a=NOTANERRNO", "a"), 0);   /* logged, ignored */
	assert_int_equal(fault_lookup("a=", "a"), 0);
	assert_int_equal(fault_lookup("a", "a"), 0);
	assert_int_equal(fault_lookup(",,a=EIO,,", "a"), -EIO);
	/* the first entry for a point wins */
	assert_int_equal(fault_lookup("a=EIO,a=EPERM", "a"), -EIO);
}

#ifdef LAMFS_FAULT_INJECTION

static char fault_file[] = "/tmp/lamfs-test-fault.XXXXXX";

static void write_file(const char *text)
{
	FILE *f = fopen(fault_file, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_env(void **state)
{
	(void)state;
	unsetenv("LAMFS_FAULT_FILE");
	unsetenv("LAMFS_FAULT");
	assert_int_equal(fault_check("backend.put"), 0);
	setenv("LAMFS_FAULT", "backend.put=EACCES,backend.read=EIO", 1);
	assert_int_equal(fault_check("backend.put"), -EACCES);
	assert_int_equal(fault_check("backend.read"), -EIO);
	assert_int_equal(fault_check("backend.remove"), 0);
	setenv("LAMFS_FAULT", "backend.remove=ENOENT", 1);
	assert_int_equal(fault_check("backend.put"), 0);
	assert_int_equal(fault_check("backend.remove"), -ENOENT);
	unsetenv("LAMFS_FAULT");
	assert_int_equal(fault_check("backend.remove"), 0);
}

/* The file is re-read on every check: arm, change, disarm, delete. */
static void test_file(void **state)
{
	int fd = mkstemp(fault_file);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	unsetenv("LAMFS_FAULT");
	setenv("LAMFS_FAULT_FILE", fault_file, 1);
	assert_int_equal(fault_check("save.uploaded"), 0);     /* empty file */
	write_file("save.uploaded=ENOSPC\n");
	assert_int_equal(fault_check("save.uploaded"), -ENOSPC);
	write_file("save.flagged=EPERM\nsave.uploaded=EIO\n");
	assert_int_equal(fault_check("save.uploaded"), -EIO);
	assert_int_equal(fault_check("save.flagged"), -EPERM);
	write_file("");
	assert_int_equal(fault_check("save.uploaded"), 0);
	write_file("save.uploaded=EIO\n");
	assert_int_equal(unlink(fault_file), 0);
	assert_int_equal(fault_check("save.uploaded"), 0);     /* missing: no faults */
	/* the environment wins over the file */
	write_file("x=EIO\n");
	setenv("LAMFS_FAULT", "x=EPERM", 1);
	assert_int_equal(fault_check("x"), -EPERM);
	unsetenv("LAMFS_FAULT");
	assert_int_equal(fault_check("x"), -EIO);
	unsetenv("LAMFS_FAULT_FILE");
	assert_int_equal(unlink(fault_file), 0);
}

/* "crash" kills the process with SIGKILL at the point, not before. */
static void test_crash(void **state)
{
	int status = 0;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("LAMFS_FAULT", "delete.committed=crash", 1);
		unsetenv("LAMFS_FAULT_FILE");
		if (fault_check("save.staged") != 0)
			_exit(3);
		fault_check("delete.committed");
		_exit(4);   /* not reached */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
}

#else

static void test_env(void **state)
{
	(void)state;
	skip();   /* fault_check() is a constant 0 in this build */
}

static void test_file(void **state)
{
	(void)state;
	skip();
}

static void test_crash(void **state)
{
	(void)state;
	skip();
}

#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_crash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
