/*
 * cli_mount.c — mounting from the command line: `lamfs mount`, the
 * `lamfs SOURCE MOUNTPOINT -o OPTS` form mount.fuse3 runs, and mount.lamfs.
 *
 * Everything that can be checked from the arguments is checked here, before
 * the daemon starts, so each mistake is explained in one line: a bad option,
 * not an instance, a mountpoint that is missing, not a directory, not empty or
 * already a lamfs mount, /dev/fuse missing.  What needs the instance open
 * (a database from a newer lamfs, storage unreachable) is reported by
 * fs_mount_main().
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "fs.h"
#include "instance.h"

static const char mount_usage[] =
	"usage: lamfs mount INSTANCE MOUNTPOINT [-f] [-d] [-o OPTIONS]\n"
	"\n"
	"Mount an instance on an empty directory; returns once the mount is ready\n"
	"(the daemon serves in the background and logs to INSTANCE/lamfs.log).\n"
	"A dead mount of the same instance there (its daemon killed) is cleared\n"
	"first.\n"
	"Unmount with umount MOUNTPOINT or fusermount3 -u MOUNTPOINT.\n"
	"\n"
	"  -f, --foreground  stay in the foreground, log to stderr\n"
	"  -d                FUSE debug output (implies -f)\n"
	"  -o OPTIONS        comma-separated: ro, allow_other, allow_root, writeback,\n"
	"                    cache_timeout=SECONDS (0-3600, default 1), nodev,\n"
	"                    nosuid, noexec; the fstab options (defaults, rw,\n"
	"                    auto, noauto, user, _netdev, nofail, x-systemd.*, ...)\n"
	"                    are accepted and ignored\n"
	"  -h, --help        this help\n";

static void mount_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void mount_err(const char *fmt, ...)
{
	va_list ap;

	fputs("lamfs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

struct kind_ctx {
	const char *mnt;
	int kind;
	char *src;
	size_t srclen;
};

static int kind_cb(void *ctx, const struct cli_mountinfo *m)
{
	struct kind_ctx *k = ctx;

	if (strcmp(m->mountpoint, k->mnt))
		return 0;
	/* the last line for a target is the mount on top */
	if (!strcmp(m->fstype, "fuse.lamfs")) {
		k->kind = 1;
		snprintf(k->src, k->srclen, "%s", m->source);
	} else {
		k->kind = !strcmp(m->fstype, "autofs") ? 2 : 3;
	}
	return 0;
}

/*
 * What /proc/self/mountinfo says of mount point mnt: 0 not a mount point,
 * 1 a lamfs mount (source copied to src), 2 an autofs trigger, 3 another mount.
 */
static int mountpoint_kind(const char *mnt, char *src, size_t srclen)
{
	struct kind_ctx k = { mnt, 0, src, srclen };

	cli_mountinfo_foreach(kind_cb, &k);
	return k.kind;
}

/*
 * The absolute path of a mount point whose mount may be dead: realpath(3)
 * stats every component, and stat of a dead FUSE mount fails with ENOTCONN,
 * so resolve the parent and append the last name.  0 or -errno.
 */
static int mountpoint_path(const char *in, char *out)
{
	char tmp[PATH_MAX], parent[PATH_MAX];
	const char *name;
	char *slash;
	int rc = 0;

	if (realpath(in, out))
		goto out;
	rc = -errno;
	if (rc != -ENOTCONN)
		goto out;
	if (snprintf(tmp, sizeof(tmp), "%s", in) >= (int)sizeof(tmp)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	while (strlen(tmp) > 1 && tmp[strlen(tmp) - 1] == '/')
		tmp[strlen(tmp) - 1] = '\0';
	slash = strrchr(tmp, '/');
	name = slash ? slash + 1 : tmp;
	if (slash == tmp)
		snprintf(parent, sizeof(parent), "/");
	else if (slash) {
		*slash = '\0';
		if (!realpath(tmp, parent)) {
			rc = -errno;
			goto out;
		}
	} else if (!getcwd(parent, sizeof(parent))) {
		rc = -errno;
		goto out;
	}
	if (snprintf(out, PATH_MAX, "%s%s%s", parent, strcmp(parent, "/") ? "/" : "", name) >=
	    PATH_MAX)
		rc = -ENAMETOOLONG;
	else
		rc = -ENOTCONN;      /* the path is made; the caller sees why */
out:
	return rc;
}

static int dir_is_empty(const char *path)
{
	struct dirent *de;
	DIR *d = opendir(path);
	int empty = 1;

	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			empty = 0;
			break;
		}
	}
	closedir(d);
	return empty;
}

int cli_mount_run(const struct cli_mount_req *r)
{
	struct instance_config cfg = INSTANCE_CONFIG_INIT;
	struct fs_mount_opts mo = { 0 };
	char inst[PATH_MAX], mnt[PATH_MAX], msg[512], src[PATH_MAX + 8];
	char *fopts = NULL, *err = NULL;
	struct stat st;
	int rc, kind, status = CLI_FAIL, fd;

	rc = mountopts_filter(r->options, r->optflags, &fopts, msg, sizeof(msg));
	if (rc < 0) {
		mount_err("%s", msg);
		goto out;
	}
	if (!realpath(r->instance, inst)) {
		if (errno == ENOENT)
			mount_err("%s: no such directory (not a lamfs instance)", r->instance);
		else
			mount_err("%s: %s", r->instance, strerror(errno));
		goto out;
	}
	rc = instance_load(inst, &cfg, &err);
	if (rc < 0) {
		mount_err("%s", err ? err : strerror(-rc));
		goto out;
	}
	rc = mountpoint_path(r->mountpoint, mnt);
	if (rc < 0 && rc != -ENOTCONN) {
		if (rc == -ENOENT)
			mount_err("mountpoint %s does not exist (create it: mkdir -p %s)",
				  r->mountpoint, r->mountpoint);
		else
			mount_err("mountpoint %s: %s", r->mountpoint, strerror(-rc));
		goto out;
	}
	kind = mountpoint_kind(mnt, src, sizeof(src));
	if (kind == 1) {
		/* A mount of this instance whose daemon died is cleared and
		 * mounted again (what the user would do by hand); a live one,
		 * or another instance's, is left alone. */
		int p = cli_mount_probe(mnt, 5000);

		if (p != CLI_MOUNT_DEAD) {
			mount_err("%s is already a lamfs mount (of %s)%s", mnt, src,
				  p == CLI_MOUNT_HUNG ? " that does not answer" : "");
			goto out;
		}
		if (!cli_is_instance_source(src, inst)) {
			mount_err("%s is a dead lamfs mount of another instance (%s); clear it "
				  "first: fusermount3 -u -z %s", mnt, src, mnt);
			goto out;
		}
		if (r->fake) {
			if (r->verbose)
				fprintf(stderr, "lamfs: %s: would clear the dead mount of this "
					"instance\n", mnt);
			status = CLI_OK;
			goto out;
		}
		rc = cli_mount_clear(mnt);
		if (rc < 0) {
			mount_err("%s is a dead mount of this instance and could not be "
				  "cleared (%s); clear it: fusermount3 -u -z %s", mnt,
				  strerror(-rc), mnt);
			goto out;
		}
		fprintf(stderr, "lamfs: %s: cleared the dead mount of this instance "
				"(its daemon was gone)\n", mnt);
		kind = mountpoint_kind(mnt, src, sizeof(src));
	} else if (rc == -ENOTCONN) {
		mount_err("mountpoint %s: %s", r->mountpoint, strerror(ENOTCONN));
		goto out;
	}
	if (stat(mnt, &st) != 0 || !S_ISDIR(st.st_mode)) {
		mount_err("mountpoint %s is not a directory", r->mountpoint);
		goto out;
	}
	if (kind == 1) {
		mount_err("%s is already a lamfs mount (of %s)", mnt, src);
		goto out;
	}
	/* An autofs trigger (x-systemd.automount) must not be read: we would
	 * wait on our own mount.  Anything else must be empty: lamfs would hide
	 * what is there. */
	if (kind != 2) {
		rc = dir_is_empty(mnt);
		if (rc < 0) {
			mount_err("mountpoint %s: %s", mnt, strerror(-rc));
			goto out;
		}
		if (rc == 0) {
			mount_err("mountpoint %s is not empty (lamfs mounts only on an empty "
				  "directory)", mnt);
			goto out;
		}
	}
	if (stat("/dev/fuse", &st) != 0) {
		mount_err("/dev/fuse is missing (load the fuse module: modprobe fuse)");
		goto out;
	}
	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		mount_err("/dev/fuse: %s", strerror(errno));
		goto out;
	}
	close(fd);
	if (r->verbose)
		fprintf(stderr, "lamfs: mounting %s on %s%s%s\n", inst, mnt,
			fopts[0] ? " with options " : "", fopts);
	if (r->fake) {
		status = CLI_OK;
		goto out;
	}
	/* Messages of the checks fs_mount_main repeats (a newer database, storage
	 * unreachable) go to the instance log; its one-line summary to stderr. */
	if (!r->foreground && !r->debug)
		cli_log_to_instance(inst, 1);
	mo.instance = inst;
	mo.mountpoint = mnt;
	mo.foreground = r->foreground;
	mo.debug = r->debug;
	mo.fuse_opts = fopts[0] ? fopts : NULL;
	status = fs_mount_main(&mo);
out:
	instance_config_release(&cfg);
	free(err);
	free(fopts);
	return status;
}

/* Append one -o value to the comma-separated list in *acc. */
static int opts_append(char **acc, const char *more)
{
	char *s = NULL;

	if (asprintf(&s, "%s%s%s", *acc ? *acc : "", *acc ? "," : "", more) < 0)
		return -ENOMEM;
	free(*acc);
	*acc = s;
	return 0;
}

int cli_mount(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "foreground", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_mount_req r = { 0 };
	char *fopts = NULL;
	int c, rc = CLI_OK;

	while ((c = getopt_long(argc, argv, "hfdo:", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			r.foreground = 1;
			break;
		case 'd':
			r.debug = 1;
			break;
		case 'o':
			if (opts_append(&fopts, optarg) < 0)
				rc = CLI_FAIL;
			break;
		case 'h':
			free(fopts);
			return cli_usage(mount_usage, CLI_OK);
		default:
			free(fopts);
			return cli_usage(mount_usage, CLI_USAGE);
		}
	}
	if (rc == CLI_OK && optind + 2 != argc) {
		fprintf(stderr, "lamfs mount: expected INSTANCE and MOUNTPOINT\n");
		rc = CLI_USAGE;
	}
	if (rc == CLI_OK) {
		r.instance = argv[optind];
		r.mountpoint = argv[optind + 1];
		r.options = fopts;
		rc = cli_mount_run(&r);
	}
	free(fopts);
	return rc;
}
