/*
 * cli.h — what the lamfs command's subcommands share.
 *
 * Every subcommand is `int cli_NAME(int argc, char **argv)` with argv[0] the
 * subcommand's name; it returns a process exit status: CLI_OK, CLI_FAIL or
 * CLI_USAGE.  Messages for the user go to stderr as one line
 * "lamfs NAME: what: why"; data goes to stdout (text, or JSON with --json).
 * Keys (and paths) in text output are escaped with escape_str() into a
 * CLI_ESC_KEY buffer; JSON carries the exact bytes.
 *
 * The inspecting commands work on the instance directly, without a mount:
 * they open it read-only through the core (tools -> core, never FUSE).
 */
#ifndef LAMFS_CLI_H
#define LAMFS_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "core.h"
#include "escape.h"
#include "lamfs.h"

enum cli_exit { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Room for any key escaped for text output. */
#define CLI_ESC_KEY ESCAPE_SIZE(LAMFS_KEY_MAX)

/* ---- subcommands (cli_*.c) ---- */
int cli_init(int argc, char **argv);
/* lamfs upgrade INSTANCE [--json] (cli_instance.c). */
int cli_upgrade(int argc, char **argv);
int cli_ls(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_versions(int argc, char **argv);
int cli_save(int argc, char **argv);
int cli_cat(int argc, char **argv);
int cli_get(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_mount(int argc, char **argv);
int cli_backup(int argc, char **argv);

/* `lamfs info INSTANCE` (no key): the instance itself; lamin_env: LaminDB's
 * settings file for it instead (cli_instance.c). */
int cli_info_instance(const char *instance, int json, int lamin_env);

/* ---- common helpers (cli_common.c) ---- */

/* Print "lamfs CMD: message" on stderr (printf format); the message is
 * escaped (escape.h), so a key or path in it cannot forge lines. */
void cli_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * --json failures.  main() calls cli_json_begin() when the command line holds
 * --json; from then on cli_err() keeps the first message (exact bytes), and
 * cli_json_end(), called with the command's exit status, prints
 * {"error": MESSAGE, "command": CMD, "exit": STATUS} on stdout when the
 * status is not CLI_OK and no JSON document was printed (cli_json_print(),
 * or cli_json_printed() from a command that writes its JSON itself).  A
 * command that prints its own report on failure puts cli_json_error() in
 * it as "error".  Returns status.
 */
void cli_json_begin(void);
void cli_json_printed(void);
const char *cli_json_error(void);
int cli_json_end(const char *cmd, int status);

/* Print the command's usage (usage_text) to stdout for --help (returns
 * CLI_OK) or to stderr after a usage error (returns CLI_USAGE). */
int cli_usage(const char *usage_text, int status);

/*
 * Send the core's log messages to INSTANCE/lamfs.log (the one log of the
 * instance, the daemon's too) instead of stderr, so the user sees only the
 * command's own one-line messages.  Without create, only when that log
 * exists and is writable; otherwise messages stay on stderr.
 */
void cli_log_to_instance(const char *instance, int create);

/*
 * Open the instance for a subcommand (its log as cli_log_to_instance); on failure the one-line reason is
 * printed ("lamfs CMD: ...") and NULL returned.  flags: CORE_READONLY for the
 * inspecting commands.
 */
struct core *cli_open(const char *cmd, const char *instance, unsigned flags);

/* 1 when s has the shape of a uid (20 base62 characters). */
int cli_is_uid(const char *s);

/*
 * Resolve a KEY|UID argument to a record.  A uid-shaped argument is looked up
 * as a uid first (any version, flagged ones too), then as a key; a key gives
 * its latest visible version.  Leading '/' and trailing '/' are ignored in
 * keys.  On failure prints why and returns -errno (-ENOENT nothing there,
 * -EISDIR a folder).
 */
int cli_resolve(const char *cmd, struct core *c, const char *arg, struct lamfs_record *out);

/* Normalise a user-typed key in place: strip leading and trailing '/'. */
void cli_key_normalise(char *key);

/* Format ns since the epoch as "2024-05-01 12:00:01" (local time) or, when
 * iso, "2024-05-01T12:00:01.123456789Z" (UTC).  buf >= 40 bytes. */
const char *cli_time(int64_t ns, int iso, char *buf, size_t len);

/* A record as a new JSON object with every field (the caller owns it). */
struct json_object *cli_record_json(const struct lamfs_record *rec);

/* Print a JSON value (pretty when stdout is a terminal) and a newline; drops
 * the reference.  CLI_OK, or CLI_FAIL if stdout cannot be written. */
int cli_json_print(struct json_object *j);

/* "-rw-r--r--" for a regular file with mode's permission bits; buf >= 11. */
const char *cli_mode_string(uint32_t mode, int dir, char *buf);

/* Undo the octal escapes of /proc/self/mountinfo ("\\040" for a space) in place. */
void cli_unescape_octal(char *s);

/* One line of /proc/self/mountinfo, octal escapes undone; valid during the
 * callback only. */
struct cli_mountinfo {
	const char *mountpoint;
	const char *fstype;         /* "fuse.lamfs" for lamfs */
	const char *source;         /* lamfs: the instance directory */
	const char *options;        /* per-mount options ("rw,nosuid,...") */
	const char *dev;            /* "0:48" */
};

/* Call cb for every mount of this mount namespace, in the kernel's order (a
 * later line for one mount point is on top).  cb returns 0 to go on, else
 * that value is returned (negative) or 0 (positive: stop).  -errno when
 * mountinfo cannot be read. */
int cli_mountinfo_foreach(int (*cb)(void *ctx, const struct cli_mountinfo *m), void *ctx);

/* 1 when a lamfs mount's source names the instance directory dir (the
 * source is dir itself, or "lamfs:dir" as older lamfs named it). */
int cli_is_instance_source(const char *source, const char *dir);

/* The state of a FUSE mount: CLI_MOUNT_LIVE, CLI_MOUNT_DEAD (its daemon is
 * gone: "Transport endpoint is not connected"), CLI_MOUNT_HUNG (no answer
 * within timeout_ms), or -errno (-ENOENT: no such path).  Asks with
 * statfs(2) from a child process, which a hung daemon cannot block. */
enum { CLI_MOUNT_LIVE = 0, CLI_MOUNT_DEAD = 1, CLI_MOUNT_HUNG = 2 };
int cli_mount_probe(const char *mnt, int timeout_ms);

/* Take a dead mount away: umount2(MNT_DETACH), or (not root) fusermount3
 * -u -z.  0, or -errno. */
int cli_mount_clear(const char *mnt);

/* Flush stdout and report a write error (disk full, closed pipe). */
int cli_finish_stdout(const char *cmd, int status);

/* ---- mount options (cli_mountopts.c) ---- */

#define MOUNTOPTS_MAX 4096      /* longest -o list accepted, in bytes */

enum mountopts_flags {
	MOUNTOPTS_SLOPPY = 1u << 0, /* mount -s: drop unknown options with a warning */
};

/*
 * Filter a comma-separated mount option list (fstab, mount(8), mount.fuse3,
 * `lamfs mount -o`) down to what the daemon gets.  Accepted and dropped:
 * rw, defaults, auto, noauto, user, users, user=*, nouser, owner, _netdev,
 * nofail, x-* (x-systemd.* ...), comment=*, dev, suid, exec, atime, noatime,
 * relatime, norelatime, strictatime, nodiratime, diratime, lazytime, async,
 * default_permissions (always on).  Passed on: ro (the last of ro/rw wins),
 * allow_other, allow_root, nodev, nosuid, noexec (restrictions are honoured),
 * writeback (lamfs).  Duplicates are folded.  Anything else is refused.
 * allow_other/allow_root need root or user_allow_other in /etc/fuse.conf.
 *
 * On 0, *out is a new string (possibly "") the caller frees.  Errors, with a
 * one-line reason in msg: -EINVAL unknown option, -E2BIG longer than
 * MOUNTOPTS_MAX, -EPERM allow_other not permitted, -ENOMEM.
 */
int mountopts_filter(const char *in, unsigned flags, char **out, char *msg, size_t msglen);

/* ---- mounting (cli_mount.c) ---- */

struct cli_mount_req {
	const char *instance;
	const char *mountpoint;
	const char *options;        /* raw comma-separated list, or NULL */
	unsigned optflags;          /* MOUNTOPTS_* */
	int foreground;             /* stay in the foreground */
	int debug;                  /* FUSE debug output */
	int fake;                   /* mount -f: check everything, mount nothing */
	int verbose;                /* mount -v: say what is done */
};

/*
 * Check the request (options, instance, mountpoint exists, is a directory, is
 * empty and not already a lamfs mount, /dev/fuse usable), explaining any
 * problem in one line on stderr, then mount through fs_mount_main().
 * Returns an exit status.
 */
int cli_mount_run(const struct cli_mount_req *r);

#endif
