/*
 * cli_backup.c — `lamfs backup`: a consistent copy of an instance's metadata
 * while its mounts keep saving (core/backup.h does the copy; this file reads
 * the instance config and reports).  Restore: lamfs init --from-backup.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backup.h"
#include "cli.h"
#include "instance.h"

static const char backup_usage[] =
	"usage: lamfs backup INSTANCE DEST [--json]\n"
	"\n"
	"Write a consistent copy of the instance's metadata to the new file DEST,\n"
	"while mounts and saves go on: SQLite: the online backup API (DEST is a\n"
	"SQLite database); PostgreSQL: pg_dump in custom format (a pg_dump at least\n"
	"as new as the server is needed).  Objects in storage are not copied: they\n"
	"never change, and no save replaces one.  Restore with\n"
	"  lamfs init NEW --from-backup DEST --storage ROOT [--db URL]\n"
	"then lamfs-repair NEW lists the objects saved after the backup, and\n"
	"lamfs-repair NEW --register registers them again.\n"
	"\n"
	"      --json   the result (or the error) as a JSON object\n"
	"  -h, --help   this help\n";

int cli_backup(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct instance_config cfg = INSTANCE_CONFIG_INIT;
	char inst[PATH_MAX], *err = NULL;
	const char *dest;
	struct stat st;
	int json = 0, ch, rc, status = CLI_FAIL;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = 1;
			break;
		case 'h':
			return cli_usage(backup_usage, CLI_OK);
		default:
			return cli_usage(backup_usage, CLI_USAGE);
		}
	}
	if (argc - optind != 2) {
		cli_err("backup", "expected INSTANCE and DEST");
		return cli_usage(backup_usage, CLI_USAGE);
	}
	dest = argv[optind + 1];
	if (!realpath(argv[optind], inst)) {
		cli_err("backup", "%s: %s", argv[optind], errno == ENOENT
			? "no such directory (not a lamfs instance)" : strerror(errno));
		goto out;
	}
	rc = instance_load(inst, &cfg, &err);
	if (rc < 0) {
		cli_err("backup", "%s", err ? err : strerror(-rc));
		goto out;
	}
	rc = backup_take(cfg.meta_url, dest, &err);
	if (rc < 0) {
		cli_err("backup", "%s", err ? err : strerror(-rc));
		goto out;
	}
	if (stat(dest, &st) != 0)
		st.st_size = 0;
	if (json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "instance", json_object_new_string(inst));
		json_object_object_add(o, "dest", json_object_new_string(dest));
		json_object_object_add(o, "store", json_object_new_string(
					       backup_is_pg(cfg.meta_url) ? "postgresql" : "sqlite"));
		json_object_object_add(o, "bytes", json_object_new_int64(st.st_size));
		status = cli_json_print(o);
	} else {
		char esc[ESCAPE_SIZE(PATH_MAX)];

		printf("backup of %s written to %s (%lld bytes, %s)\n", inst,
		       escape_str(dest, esc, sizeof(esc)), (long long)st.st_size,
		       backup_is_pg(cfg.meta_url) ? "pg_dump custom format" : "SQLite database");
		status = CLI_OK;
	}
	status = cli_finish_stdout("backup", status);
out:
	instance_config_release(&cfg);
	free(err);
	return status;
}
