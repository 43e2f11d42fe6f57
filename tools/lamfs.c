/*
 * lamfs.c — the lamfs command: create instances, mount them, inspect them.
 *
 *   lamfs init INSTANCE [--storage PATH|s3://BUCKET[/PREFIX]] [--db URL]  (cli_instance.c)
 *   lamfs upgrade INSTANCE [--json]                                          (cli_instance.c)
 *   lamfs mount INSTANCE MOUNTPOINT [-f] [-d] [-o OPTIONS]
 *   lamfs ls|info|versions|save|cat|get|status|backup INSTANCE ...   (cli_*.c)
 *   lamfs INSTANCE MOUNTPOINT [-o OPTIONS]   the form mount.fuse3 runs for
 *                                            fstab type fuse.lamfs
 *
 * Exit status: 0 success, 1 failure, 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "instance.h"

#define EXIT_USAGE CLI_USAGE

static const char usage_text[] =
	"usage: lamfs COMMAND [ARGS]\n"
	"\n"
	"  init INSTANCE [--storage PATH|s3://BUCKET[/PREFIX]] [--db URL]\n"
	"             [--from-backup FILE]\n"
	"        create an instance (a LaminDB instance), attach to the one that\n"
	"        owns the storage, or restore one from a backup\n"
	"  upgrade INSTANCE [--json]\n"
	"        bring an instance made before LaminDB's schema to this lamfs (not mounted)\n"
	"  mount INSTANCE MOUNTPOINT [-f] [-d] [-o OPTIONS]\n"
	"        mount an instance; returns once the mount is ready\n"
	"        (-f: stay in the foreground, -d: FUSE debug output)\n"
	"  ls INSTANCE [PREFIX] [-l] [--all] [--json]\n"
	"        list artifacts: size, version, uid, hash, key\n"
	"  info INSTANCE [KEY|UID] [--json | --lamin-env]\n"
	"        every field of an artifact's record; without KEY|UID the instance:\n"
	"        storage root, database, LaminDB identity, how LaminDB connects\n"
	"  versions INSTANCE KEY|UID [--json]\n"
	"        every version of a key, the latest marked\n"
	"  save INSTANCE FILE... [--key KEY | --prefix PREFIX] [--json]\n"
	"             [--progress | --no-progress]\n"
	"        save local files (all checked first; then one by one, from where\n"
	"        they are, with a progress line on a terminal)\n"
	"  cat INSTANCE KEY|UID\n"
	"        write an artifact's bytes (any version) to stdout\n"
	"  get INSTANCE KEY|UID DEST\n"
	"        copy an artifact (any version) to a local file\n"
	"  status INSTANCE [--json]\n"
	"        mounts (live or dead), pending uploads, storage-ongoing records,\n"
	"        last errors\n"
	"  backup INSTANCE DEST [--json]\n"
	"        a consistent copy of the metadata, while mounts keep saving\n"
	"\n"
	"  None but mount needs a mount; they open the instance directly.\n"
	"  Exit status: 0 success, 1 failure, 2 usage error.\n"
	"  lamfs COMMAND --help shows the options of one command.\n";

static int usage(FILE *out, int status)
{
	fputs(usage_text, out);
	return status;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{ "init", cli_init },
	{ "upgrade", cli_upgrade },
	{ "mount", cli_mount },
	{ "ls", cli_ls },
	{ "info", cli_info },
	{ "versions", cli_versions },
	{ "save", cli_save },
	{ "cat", cli_cat },
	{ "get", cli_get },
	{ "status", cli_status },
	{ "backup", cli_backup },
};

/*
 * mount.fuse3 runs `lamfs SOURCE MOUNTPOINT -o OPTS` for the fstab type
 * fuse.lamfs: a first argument that is no command but a directory (or a
 * path, so that a missing instance is explained as such) means `lamfs mount`.
 */
static int is_fuse_helper_form(int argc, char **argv)
{
	struct stat st;

	if (argc < 3 || argv[1][0] == '-')
		return 0;
	return strchr(argv[1], '/') || (stat(argv[1], &st) == 0 && S_ISDIR(st.st_mode));
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd)
		return usage(stderr, EXIT_USAGE);
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help"))
		return usage(stdout, 0);
	if (!strcmp(cmd, "--version")) {
		printf("lamfs %s\n", LAMFS_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		char name[32];

		if (strcmp(cmd, commands[i].name))
			continue;
		/* getopt names the program by argv[0]: "lamfs ls: unrecognized ..." */
		snprintf(name, sizeof(name), "lamfs %s", cmd);
		argv[1] = name;
		/* Looked for before parsing, so a usage error is JSON too. */
		for (int k = 2; k < argc && strcmp(argv[k], "--"); k++)
			if (!strcmp(argv[k], "--json"))
				cli_json_begin();
		return cli_json_end(commands[i].name, commands[i].fn(argc - 1, argv + 1));
	}
	if (is_fuse_helper_form(argc, argv)) {
		/* argv[0] stands in for the "mount" command name. */
		return cli_mount(argc, argv);
	}
	fprintf(stderr, "lamfs: unknown command '%s'\n", cmd);
	return usage(stderr, EXIT_USAGE);
}
