/*
 * backup.c — consistent copies of the metadata store (see backup.h).
 */
#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "instance.h"
#include "log.h"

#define BACKUP_BUSY_MS 30000       /* wait for a writer's checkpoint at most this long */
#define CHILD_OUT_MAX 4096         /* stderr of pg_dump/pg_restore kept for the message */

#define set_err(errmsg, ...) instance_set_msg(errmsg, instance_msg(__VA_ARGS__))

int backup_is_pg(const char *url)
{
	return url && (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11));
}

/* The file of a SQLite url ("sqlite:/p", "sqlite:///p", a bare path). */
static const char *sqlite_path(const char *url)
{
	if (!strncmp(url, "sqlite:", 7)) {
		url += 7;
		if (!strncmp(url, "//", 2))
			url += 2;
	}
	return url;
}

static int sqlite_err(int src)
{
	switch (src & 0xff) {
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_READONLY:
	case SQLITE_PERM:
		return -EACCES;
	case SQLITE_NOTADB:
		return -EINVAL;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	default:
		return -EIO;
	}
}

/* Copy database file `from` over `to` with the backup API, in one step.
 * to_create: `to` is a new file. */
static int sqlite_copy(const char *from, const char *to, int to_create, char **errmsg)
{
	sqlite3 *src = NULL, *dst = NULL;
	sqlite3_backup *b = NULL;
	int rc = 0, s;

	s = sqlite3_open_v2(from, &src, SQLITE_OPEN_READONLY, NULL);
	if (s != SQLITE_OK) {
		rc = sqlite_err(s);
		set_err(errmsg, "cannot open %s: %s", from, src ? sqlite3_errmsg(src) : "no memory");
		goto out;
	}
	sqlite3_busy_timeout(src, BACKUP_BUSY_MS);
	/* A file that is no SQLite database fails here, not half-way. */
	s = sqlite3_exec(src, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
	if (s != SQLITE_OK) {
		rc = sqlite_err(s);
		set_err(errmsg, "%s is not a SQLite database (%s)", from, sqlite3_errmsg(src));
		goto out;
	}
	s = sqlite3_open_v2(to, &dst, SQLITE_OPEN_READWRITE | (to_create ? SQLITE_OPEN_CREATE : 0),
			    NULL);
	if (s != SQLITE_OK) {
		rc = sqlite_err(s);
		set_err(errmsg, "cannot open %s: %s", to, dst ? sqlite3_errmsg(dst) : "no memory");
		goto out;
	}
	sqlite3_busy_timeout(dst, BACKUP_BUSY_MS);
	b = sqlite3_backup_init(dst, "main", src, "main");
	if (!b) {
		rc = sqlite_err(sqlite3_errcode(dst));
		set_err(errmsg, "cannot copy %s to %s: %s", from, to, sqlite3_errmsg(dst));
		goto out;
	}
	/* -1: every page in one step, under one read transaction of src, so
	 * the copy is one consistent state however busy the writers are. */
	s = sqlite3_backup_step(b, -1);
	if (s != SQLITE_DONE) {
		rc = sqlite_err(s);
		set_err(errmsg, "copying %s to %s: %s", from, to, sqlite3_errstr(s));
	}
	s = sqlite3_backup_finish(b);
	b = NULL;
	if (rc == 0 && s != SQLITE_OK) {
		rc = sqlite_err(s);
		set_err(errmsg, "copying %s to %s: %s", from, to, sqlite3_errmsg(dst));
	}
out:
	if (b)
		sqlite3_backup_finish(b);
	sqlite3_close(dst);
	sqlite3_close(src);
	return rc;
}

/* Run argv (a PostgreSQL client), its stderr into out (NUL-terminated, the
 * last CHILD_OUT_MAX bytes).  Returns the exit status, 127 when it could
 * not run, or -errno. */
static int run_child(const char *const argv[], char *out, size_t outlen)
{
	int pfd[2], status = 0, rc;
	size_t n = 0;
	pid_t pid;

	out[0] = '\0';
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return rc;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

		dup2(pfd[1], STDERR_FILENO);
		if (devnull >= 0) {
			dup2(devnull, STDIN_FILENO);
			dup2(devnull, STDOUT_FILENO);
		}
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "%s: %s", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		char buf[512];
		ssize_t k = read(pfd[0], buf, sizeof(buf));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		if (n + (size_t)k >= outlen) {       /* keep the end: the error is there */
			size_t drop = n + (size_t)k - outlen + 1;

			if (drop > n)
				drop = n;
			memmove(out, out + drop, n - drop);
			n -= drop;
		}
		if ((size_t)k >= outlen)
			k = (ssize_t)outlen - 1;
		memcpy(out + n, buf, (size_t)k);
		n += (size_t)k;
	}
	out[n] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* The first line of s (into a static-free buffer of the caller). */
static const char *first_line(const char *s, char *buf, size_t len)
{
	size_t n = strcspn(s, "\n");

	snprintf(buf, len, "%.*s", (int)n, s);
	return buf;
}

static int pg_dump_to(const char *url, const char *tmp, char **errmsg)
{
	char out[CHILD_OUT_MAX], line[512], *dbarg = NULL;
	int st, rc = 0;

	if (asprintf(&dbarg, "--dbname=%s", url) < 0)
		return -ENOMEM;
	{
		const char *argv[] = { "pg_dump", "--format=custom", "--no-owner", "--file",
				 tmp, dbarg, NULL };

		st = run_child(argv, out, sizeof(out));
	}
	free(dbarg);
	if (st == 0)
		goto out;
	if (st < 0) {
		rc = st;
		set_err(errmsg, "cannot run pg_dump: %s", strerror(-rc));
	} else if (st == 127) {
		rc = -ENOENT;
		set_err(errmsg, "pg_dump is not installed (Debian: apt-get install "
			"postgresql-client); it is needed to back up a PostgreSQL store");
	} else if (strstr(out, "server version mismatch")) {
		/* "server version: 16.2; pg_dump version: 15.18" */
		const char *v = strstr(out, "server version:");

		rc = -EPROTONOSUPPORT;
		set_err(errmsg, "the PostgreSQL server is newer than the installed pg_dump (%s): "
			"install the pg_dump of the server's major version (Debian: "
			"postgresql-client-N from apt.postgresql.org) and put it first on PATH",
			v ? first_line(v, line, sizeof(line)) : first_line(out, line, sizeof(line)));
	} else {
		rc = -EIO;
		set_err(errmsg, "pg_dump failed (exit %d): %s", st,
			out[0] ? first_line(out, line, sizeof(line)) : "no message");
	}
out:
	return rc;
}

int backup_take(const char *meta_url, const char *dest, char **errmsg)
{
	char *tmp = NULL;
	struct stat st;
	int rc = 0;

	if (lstat(dest, &st) == 0 || errno != ENOENT) {
		rc = -EEXIST;
		set_err(errmsg, "%s exists; a backup never overwrites a file: give a new name",
			dest);
		goto out;
	}
	if (asprintf(&tmp, "%s.tmp-%ld", dest, (long)getpid()) < 0) {
		rc = -ENOMEM;
		tmp = NULL;
		goto out;
	}
	if (backup_is_pg(meta_url)) {
		rc = pg_dump_to(meta_url, tmp, errmsg);
	} else {
		const char *path = sqlite_path(meta_url);

		if (stat(path, &st) != 0) {
			rc = -ENOENT;
			set_err(errmsg, "metadata store %s: %s", path, strerror(errno));
			goto out;
		}
		rc = sqlite_copy(path, tmp, 1, errmsg);
	}
	if (rc == 0) {
		int fd = open(tmp, O_RDONLY | O_CLOEXEC);

		/* durable before it has its name */
		if (fd < 0 || fsync(fd) < 0)
			rc = -errno;
		if (fd >= 0)
			close(fd);
		if (rc < 0)
			set_err(errmsg, "%s: %s", tmp, strerror(-rc));
	}
	/* link(2), not rename(2): a DEST made meanwhile is never replaced */
	if (rc == 0 && link(tmp, dest) < 0) {
		rc = -errno;
		set_err(errmsg, "%s: %s", dest, strerror(errno));
	}
out:
	if (tmp)
		unlink(tmp);
	free(tmp);
	return rc;
}

static int pg_restore_from(const char *url, const char *src, char **errmsg)
{
	char out[CHILD_OUT_MAX], line[512], *dbarg = NULL;
	int st, rc = 0;

	if (asprintf(&dbarg, "--dbname=%s", url) < 0)
		return -ENOMEM;
	{
		const char *argv[] = { "pg_restore", "--no-owner", "--exit-on-error",
				 "--single-transaction", dbarg, src, NULL };

		st = run_child(argv, out, sizeof(out));
	}
	free(dbarg);
	if (st == 0)
		goto out;
	if (st == 127) {
		rc = -ENOENT;
		set_err(errmsg, "pg_restore is not installed (Debian: apt-get install "
			"postgresql-client)");
	} else if (st < 0) {
		rc = st;
		set_err(errmsg, "cannot run pg_restore: %s", strerror(-rc));
	} else if (strstr(out, "input file does not appear to be a valid archive") ||
		   strstr(out, "did not find magic string")) {
		rc = -EINVAL;
		set_err(errmsg, "%s is not a backup of a PostgreSQL store (made by lamfs "
			"backup)", src);
	} else {
		rc = -EIO;
		set_err(errmsg, "pg_restore failed (exit %d): %s", st,
			out[0] ? first_line(out, line, sizeof(line)) : "no message");
	}
out:
	return rc;
}

int backup_restore(const char *meta_url, const char *src, char **errmsg)
{
	struct stat st;
	int rc = 0;

	if (stat(src, &st) != 0) {
		rc = -errno;
		set_err(errmsg, "backup %s: %s", src, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		set_err(errmsg, "backup %s is not a file", src);
		goto out;
	}
	if (backup_is_pg(meta_url))
		rc = pg_restore_from(meta_url, src, errmsg);
	else
		rc = sqlite_copy(src, sqlite_path(meta_url), 0, errmsg);
out:
	return rc;
}
