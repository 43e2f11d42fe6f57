/*
 * mount_lamfs.c — mount.lamfs, the mount(8) helper for the fstab type lamfs.
 *
 *   /srv/lamfs/data  /mnt/data  lamfs  _netdev,nofail,allow_other,writeback  0  0
 *
 * mount(8) runs  mount.lamfs SOURCE TARGET [-sfnvi] [-N NS] [-o OPTIONS] [-t TYPE]
 * (see mount(8), "External helpers").  -s: sloppy (unknown options are ignored
 * with a warning), -f: fake (check everything, mount nothing), -n: no mtab
 * (there is none), -v: verbose, -i: do not call helpers (we are the helper).
 * The options are filtered as `lamfs mount -o` filters them (cli_mountopts.c),
 * then the instance is mounted by this process, which returns once the mount
 * is ready; the daemon serves in the background.  Without HOME (at boot), HOME
 * is set to the user's home so ~/.aws/credentials is found.
 *
 * Exit status: 0 mounted, 1 failure, 2 usage error.
 */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char usage_text[] =
	"usage: mount.lamfs INSTANCE MOUNTPOINT [-sfnv] [-o OPTIONS]\n"
	"\n"
	"The mount(8) helper for lamfs instances (fstab type 'lamfs').\n"
	"\n"
	"  -o OPTIONS  ro, allow_other, allow_root, writeback, nodev, nosuid,\n"
	"              noexec; fstab options (defaults, rw, auto, noauto, user,\n"
	"              _netdev, nofail, x-systemd.*, ...) are accepted and ignored\n"
	"  -s          sloppy: ignore unknown options instead of failing\n"
	"  -f          fake: check everything, mount nothing\n"
	"  -n          ignored (no mtab)\n"
	"  -v          verbose\n"
	"  -h, --help  this help\n";

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_mount_req r = { 0 };
	char *options = NULL;
	int c, rc = CLI_OK;

	while ((c = getopt_long(argc, argv, "sfnvio:t:N:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			r.optflags |= MOUNTOPTS_SLOPPY;
			break;
		case 'f':
			r.fake = 1;
			break;
		case 'n':
		case 'i':
			break;
		case 'v':
			r.verbose = 1;
			break;
		case 't':
			if (strcmp(optarg, "lamfs") && strcmp(optarg, "fuse.lamfs")) {
				fprintf(stderr, "mount.lamfs: cannot mount type '%s'\n", optarg);
				rc = CLI_USAGE;
			}
			break;
		case 'N':
			fprintf(stderr, "mount.lamfs: -N (mount namespaces) is not supported\n");
			rc = CLI_FAIL;
			break;
		case 'o': {
			char *s = NULL;

			if (asprintf(&s, "%s%s%s", options ? options : "", options ? "," : "",
				     optarg) < 0) {
				rc = CLI_FAIL;
				break;
			}
			free(options);
			options = s;
			break;
		}
		case 'h':
			free(options);
			fputs(usage_text, stdout);
			return CLI_OK;
		default:
			free(options);
			fputs(usage_text, stderr);
			return CLI_USAGE;
		}
	}
	if (rc == CLI_OK && argc - optind != 2) {
		fprintf(stderr, "mount.lamfs: expected INSTANCE and MOUNTPOINT\n");
		fputs(usage_text, stderr);
		rc = CLI_USAGE;
	}
	/* At boot mount(8) may run us without HOME; S3 credentials are read from
	 * ~/.aws/credentials of the mounting user (mount.fuse3 does the same). */
	if (rc == CLI_OK && !getenv("HOME")) {
		struct passwd *pw = getpwuid(getuid());

		setenv("HOME", pw && pw->pw_dir ? pw->pw_dir : "/root", 0);
	}
	if (rc == CLI_OK) {
		r.instance = argv[optind];
		r.mountpoint = argv[optind + 1];
		r.options = options;
		rc = cli_mount_run(&r);
	}
	free(options);
	return rc;
}
