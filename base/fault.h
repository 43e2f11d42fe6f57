/*
 * fault.h — fault injection for tests.
 *
 * Built only with -DLAMFS_FAULT_INJECTION=ON; otherwise fault_check() is a
 * constant 0 and costs nothing.  Faults are named points in the code; a test
 * arms them through the environment of the process under test:
 *
 *   LAMFS_FAULT="point=ACTION[,point=ACTION...]"
 *   LAMFS_FAULT_FILE=/path      same syntax, re-read on every check, so a test
 *                                can arm and disarm faults on a live mount
 *
 * ACTION is an errno name (EACCES, EPERM, ENOSPC, EIO, ENOENT, ETIMEDOUT ...)
 * that fault_check() returns negated, or "crash", which kills the process with
 * SIGKILL on the spot (as kill -9 would).
 *
 * Points (keep this list true):
 *   backend.put  backend.read  backend.remove   (backend.c wrappers)
 *   backend.put.mid      (local backend: half the object written to its temp file;
 *                         S3: multipart, part 1 sent; single PUT, before the body)
 *   save.staged          (staging fsynced and hashed, before the flagged insert)
 *   save.inserted        (flagged record committed, staging file not yet renamed
 *                         staging/<uid>; "crash" only, an errno is ignored)
 *   save.flagged         (flagged record committed, before the upload)
 *   save.uploaded        (object stored, before the flag is cleared)
 *   delete.committed     (record delete committed, before the object delete)
 */
#ifndef LAMFS_FAULT_H
#define LAMFS_FAULT_H

/* fault_lookup()'s answer for a point armed with "crash". */
#define FAULT_CRASH (-100000)

/*
 * The action for `point` in a LAMFS_FAULT-style spec ("p=EIO,q=crash"; entries
 * may also be separated by newlines): 0 when not armed (or armed with an
 * unknown action, which is logged), -errno, or FAULT_CRASH.  Pure; present in
 * every build so the parser can be tested without fault injection.
 */
int fault_lookup(const char *spec, const char *point);

#ifdef LAMFS_FAULT_INJECTION
/* 0 when the point is not armed, -errno when armed with an errno; does not
 * return when armed with "crash".  Thread-safe. */
int fault_check(const char *point);
#else
static inline int fault_check(const char *point)
{
	(void)point;
	return 0;
}
#endif

#endif
