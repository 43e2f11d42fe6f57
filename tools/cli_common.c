/*
 * cli_common.c — helpers every lamfs subcommand uses: opening an instance,
 * resolving KEY|UID arguments, formatting times, modes and records (text and
 * JSON), and reporting errors the same way everywhere.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "key.h"
#include "log.h"

/* --json failures (cli.h): whether the command was given --json, whether a
 * JSON document reached stdout, and the first error message, exact bytes. */
static struct {
	int on;
	int printed;
	char msg[4096];
} json_fail;

void cli_json_begin(void)
{
	json_fail.on = 1;
}

void cli_json_printed(void)
{
	json_fail.printed = 1;
}

const char *cli_json_error(void)
{
	return json_fail.msg;
}

int cli_json_end(const char *cmd, int status)
{
	struct json_object *o;

	if (!json_fail.on || json_fail.printed || status == CLI_OK)
		return status;
	o = json_object_new_object();
	if (!o)
		return status;
	json_object_object_add(o, "error", json_object_new_string(
		json_fail.msg[0] ? json_fail.msg
				 : "usage error (--help shows every option)"));
	json_object_object_add(o, "command", json_object_new_string(cmd));
	json_object_object_add(o, "exit", json_object_new_int(status));
	fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						JSON_C_TO_STRING_NOSLASHESCAPE), stdout);
	fputc('\n', stdout);
	fflush(stdout);
	json_object_put(o);
	return status;
}

void cli_err(const char *cmd, const char *fmt, ...)
{
	char msg[4096], esc[ESCAPE_SIZE(4096)];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		msg[0] = '\0';
	if (json_fail.on && !json_fail.msg[0])
		snprintf(json_fail.msg, sizeof(json_fail.msg), "%s", msg);
	escape_buf(esc, sizeof(esc), msg, strlen(msg), NULL);
	fflush(stdout);
	fprintf(stderr, "lamfs %s: %s\n", cmd, esc);
}

int cli_usage(const char *usage_text, int status)
{
	if (status == CLI_OK) {
		fputs(usage_text, stdout);
	} else {
		/* After a mistake, only the synopsis and where to find more. */
		size_t n = strcspn(usage_text, "\n");

		fprintf(stderr, "%.*s\n(--help shows every option)\n", (int)n, usage_text);
	}
	return status;
}

void cli_log_to_instance(const char *instance, int create)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];

	if (!realpath(instance, dir))
		return;
	snprintf(path, sizeof(path), "%s/lamfs.log", dir);
	if (create || access(path, W_OK) == 0)
		log_open(path);
}

struct core *cli_open(const char *cmd, const char *instance, unsigned flags)
{
	struct core *c = NULL;
	char *err = NULL;
	int rc;

	cli_log_to_instance(instance, 0);
	rc = core_open(instance, flags, &c, &err);
	if (rc < 0) {
		cli_err(cmd, "%s", err ? err : strerror(-rc));
		free(err);
		return NULL;
	}
	return c;
}

int cli_is_uid(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		char ch = s[i];

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z')))
			return 0;
	}
	return i == LAMFS_UID_LEN;
}

void cli_key_normalise(char *key)
{
	size_t n, skip = 0;

	while (key[skip] == '/')
		skip++;
	if (skip)
		memmove(key, key + skip, strlen(key + skip) + 1);
	n = strlen(key);
	while (n > 0 && key[n - 1] == '/')
		key[--n] = '\0';
}

int cli_resolve(const char *cmd, struct core *c, const char *arg, struct lamfs_record *out)
{
	struct meta_entry e;
	char key[LAMFS_KEY_MAX + 2];
	int rc;

	if (cli_is_uid(arg)) {
		rc = meta_get_uid(core_meta(c), arg, out);
		if (rc == 0)
			return 0;
		if (rc != -ENOENT) {
			cli_err(cmd, "%s: %s", arg, strerror(-rc));
			return rc;
		}
	}
	if (strlen(arg) > LAMFS_KEY_MAX) {
		cli_err(cmd, "%s: key too long", arg);
		return -ENAMETOOLONG;
	}
	snprintf(key, sizeof(key), "%s", arg);
	cli_key_normalise(key);
	if (!key[0]) {
		cli_err(cmd, "%s: the root folder is not an artifact", arg);
		return -EISDIR;
	}
	rc = core_lookup(c, key, &e);
	if (rc == 0 && e.type == META_DIR)
		rc = -EISDIR;
	if (rc < 0) {
		if (rc == -ENOENT)
			cli_err(cmd, "%s: no artifact with this key%s", arg,
				cli_is_uid(arg) ? " or uid" : "");
		else if (rc == -EISDIR)
			cli_err(cmd, "%s: is a folder, not an artifact", arg);
		else
			cli_err(cmd, "%s: %s", arg, strerror(-rc));
		return rc;
	}
	*out = e.rec;
	return 0;
}

const char *cli_time(int64_t ns, int iso, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000LL);
	long frac = (long)(ns % 1000000000LL);
	struct tm tm;
	char base[32];

	if (frac < 0) {
		frac += 1000000000L;
		t -= 1;
	}
	if (iso) {
		gmtime_r(&t, &tm);
		strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(buf, len, "%s.%09ldZ", base, frac);
	} else {
		localtime_r(&t, &tm);
		strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	}
	return buf;
}

const char *cli_mode_string(uint32_t mode, int dir, char *buf)
{
	static const char rwx[] = "rwxrwxrwx";
	int i;

	buf[0] = dir ? 'd' : '-';
	for (i = 0; i < 9; i++)
		buf[1 + i] = (mode & (0400u >> i)) ? rwx[i] : '-';
	if (mode & 04000)
		buf[3] = (mode & 0100) ? 's' : 'S';
	if (mode & 02000)
		buf[6] = (mode & 0010) ? 's' : 'S';
	if (mode & 01000)
		buf[9] = (mode & 0001) ? 't' : 'T';
	buf[10] = '\0';
	return buf;
}

static void jadd(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add(o, k, v);
}

struct json_object *cli_record_json(const struct lamfs_record *rec)
{
	struct json_object *o = json_object_new_object();
	char t[48], mode[8];

	if (!o)
		return NULL;
	jadd(o, "uid", json_object_new_string(rec->uid));
	jadd(o, "key", json_object_new_string(rec->key));
	jadd(o, "version", json_object_new_string(lamfs_uid_version(rec->uid)));
	jadd(o, "suffix", json_object_new_string(rec->suffix));
	jadd(o, "size", json_object_new_int64(rec->size));
	jadd(o, "hash", json_object_new_string(rec->hash));
	jadd(o, "hash_type", json_object_new_string(rec->hash_type));
	jadd(o, "checksum", json_object_new_string(rec->checksum));
	jadd(o, "is_latest", json_object_new_boolean(rec->is_latest));
	jadd(o, "storage_ongoing", json_object_new_boolean(rec->storage_ongoing));
	jadd(o, "branch_id", json_object_new_int(rec->branch_id));
	jadd(o, "storage_id", json_object_new_int(rec->storage_id));
	jadd(o, "id", json_object_new_int64(rec->id));
	jadd(o, "created_at", json_object_new_string(cli_time(rec->created_at, 1, t, sizeof(t))));
	jadd(o, "updated_at", json_object_new_string(cli_time(rec->updated_at, 1, t, sizeof(t))));
	jadd(o, "mtime", json_object_new_string(cli_time(rec->mtime_ns, 1, t, sizeof(t))));
	jadd(o, "mtime_ns", json_object_new_int64(rec->mtime_ns));
	snprintf(mode, sizeof(mode), "%04o", (unsigned)(rec->mode & 07777));
	jadd(o, "mode", json_object_new_string(mode));
	jadd(o, "owner_uid", json_object_new_int64(rec->owner_uid));
	jadd(o, "owner_gid", json_object_new_int64(rec->owner_gid));
	return o;
}

int cli_json_print(struct json_object *j)
{
	int flags = JSON_C_TO_STRING_NOSLASHESCAPE;
	const char *s;
	int rc = CLI_OK;

	flags |= isatty(STDOUT_FILENO) ? JSON_C_TO_STRING_PRETTY : JSON_C_TO_STRING_PLAIN;
	s = json_object_to_json_string_ext(j, flags);
	json_fail.printed = 1;
	if (!s || fputs(s, stdout) == EOF || fputc('\n', stdout) == EOF)
		rc = CLI_FAIL;
	json_object_put(j);
	return rc;
}

int cli_finish_stdout(const char *cmd, int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (errno != EPIPE)
			cli_err(cmd, "writing the output: %s", strerror(errno));
		return CLI_FAIL;
	}
	return status;
}

void cli_unescape_octal(char *s)
{
	char *o = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
}

int cli_mountinfo_foreach(int (*cb)(void *ctx, const struct cli_mountinfo *m), void *ctx)
{
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return -errno;
	while (rc == 0 && getline(&line, &cap, f) > 0) {
		/* "36 35 0:48 / /mnt/x rw,nosuid - fuse.lamfs SOURCE rw,..." */
		char *fields[8], *sep, *save = NULL, *tok;
		struct cli_mountinfo m;
		int n = 0;

		sep = strstr(line, " - ");
		if (!sep)
			continue;
		*sep = '\0';
		for (tok = strtok_r(line, " ", &save); tok && n < 8; tok = strtok_r(NULL, " ", &save))
			fields[n++] = tok;
		if (n < 6)
			continue;
		char *fstype, *source;

		save = NULL;
		fstype = strtok_r(sep + 3, " \n", &save);
		source = strtok_r(NULL, " \n", &save);
		if (!fstype || !source)
			continue;
		cli_unescape_octal(source);
		cli_unescape_octal(fields[4]);
		m.fstype = fstype;
		m.source = source;
		m.mountpoint = fields[4];
		m.options = fields[5];
		m.dev = fields[2];
		rc = cb(ctx, &m);
	}
	free(line);
	fclose(f);
	return rc < 0 ? rc : 0;
}

int cli_is_instance_source(const char *source, const char *dir)
{
	/* Mounts of lamfs before 0.2 named their source "lamfs:DIR". */
	if (!strncmp(source, "lamfs:", 6))
		source += 6;
	return !strcmp(source, dir);
}

int cli_mount_probe(const char *mnt, int timeout_ms)
{
	struct statfs sf;
	int status, waited = 0, rc;
	pid_t pid;

	/* statfs goes to the daemon (no cache answers it): ENOTCONN at once
	 * when the daemon is gone.  In a child, so that a daemon that hangs
	 * cannot hang the caller. */
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (statfs(mnt, &sf) == 0)
			_exit(0);
		_exit(errno == ENOTCONN ? 1 : errno == ENOENT ? 3 : 2);
	}
	for (;;) {
		rc = (int)waitpid(pid, &status, WNOHANG);
		if (rc == pid || (rc < 0 && errno != EINTR))
			break;
		if (waited >= timeout_ms) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return CLI_MOUNT_HUNG;
		}
		usleep(10000);
		waited += 10;
	}
	if (rc != pid || !WIFEXITED(status))
		return -EIO;
	switch (WEXITSTATUS(status)) {
	case 0:
		return CLI_MOUNT_LIVE;
	case 1:
		return CLI_MOUNT_DEAD;
	case 3:
		return -ENOENT;
	default:
		return -EIO;
	}
}

int cli_mount_clear(const char *mnt)
{
	int status, rc = 0;
	pid_t pid;

	/* Lazily, as fusermount3 -u -z: a process still inside the dead mount
	 * (a shell cd'ed there) must not keep it. */
	if (umount2(mnt, MNT_DETACH) == 0)
		goto out;
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto out;
	}
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execlp("fusermount3", "fusermount3", "-u", "-z", "--", mnt, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		rc = -EPERM;
out:
	return rc;
}
