/*
 * fault.c — named fault points for tests (see fault.h).
 *
 * The parser is always compiled (and testable); fault_check() exists only in
 * builds with LAMFS_FAULT_INJECTION.  Nothing is cached: each check reads
 * LAMFS_FAULT and re-reads LAMFS_FAULT_FILE, so there is no shared state and
 * a test can arm or disarm faults on a live process.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "log.h"

#define FAULT_FILE_MAX 4096

struct errno_name {
	const char *name;
	int value;
};

static const struct errno_name errno_names[] = {
	{ "EACCES", EACCES },       { "EPERM", EPERM },
	{ "ENOSPC", ENOSPC },       { "EIO", EIO },
	{ "ENOENT", ENOENT },       { "ETIMEDOUT", ETIMEDOUT },
	{ "ECONNRESET", ECONNRESET }, { "EROFS", EROFS },
	{ "EDQUOT", EDQUOT },       { "ENOTCONN", ENOTCONN },
	{ "EAGAIN", EAGAIN },       { "EINTR", EINTR },
	{ "ENOMEM", ENOMEM },       { "EEXIST", EEXIST },
	{ "EFBIG", EFBIG },         { "ECONNREFUSED", ECONNREFUSED },
};

/* errno for the action name [s, s+len): > 0, FAULT_CRASH, or 0 if unknown. */
static int fault_action(const char *s, size_t len)
{
	size_t i;
	int v = 0;

	if (len == 5 && memcmp(s, "crash", 5) == 0)
		v = FAULT_CRASH;
	for (i = 0; v == 0 && i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (strlen(errno_names[i].name) == len &&
		    memcmp(errno_names[i].name, s, len) == 0)
			v = errno_names[i].value;
	if (v == 0)
		log_warn("fault: unknown action '%.*s' ignored", (int)len, s);
	return v;
}

int fault_lookup(const char *spec, const char *point)
{
	size_t plen = strlen(point);
	const char *p = spec;
	int rc = 0;

	while (p && *p && rc == 0) {
		size_t len = strcspn(p, ",\n");
		const char *eq = memchr(p, '=', len);

		/* Tolerate blanks around entries ("a=EIO, b=crash"). */
		while (len > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
			eq = memchr(p, '=', len);
		}
		if (eq && (size_t)(eq - p) == plen && memcmp(p, point, plen) == 0) {
			size_t alen = len - plen - 1;

			while (alen > 0 && (eq[alen] == ' ' || eq[alen] == '\t' ||
					    eq[alen] == '\r'))
				alen--;
			rc = fault_action(eq + 1, alen);
			if (rc > 0)
				rc = -rc;
		}
		p += len;
		if (*p)
			p++;
	}
	return rc;
}

#ifdef LAMFS_FAULT_INJECTION

/* Look point up in the file at path; a missing or unreadable file arms nothing. */
static int fault_file_lookup(const char *path, const char *point)
{
	char buf[FAULT_FILE_MAX];
	ssize_t n = -1;
	int rc = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		goto out;
	do
		n = pread(fd, buf, sizeof(buf) - 1, 0);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		goto out;
	buf[n] = '\0';
	rc = fault_lookup(buf, point);
out:
	return rc;
}

int fault_check(const char *point)
{
	int saved_errno = errno;
	const char *env = getenv("LAMFS_FAULT");
	const char *file = getenv("LAMFS_FAULT_FILE");
	int rc = 0;

	if (env)
		rc = fault_lookup(env, point);
	if (rc == 0 && file && *file)
		rc = fault_file_lookup(file, point);
	if (rc == FAULT_CRASH) {
		log_err("fault: %s: crash (SIGKILL)", point);
		raise(SIGKILL);
	}
	if (rc != 0)
		log_info("fault: %s: returning %d", point, rc);
	errno = saved_errno;
	return rc;
}

#endif
