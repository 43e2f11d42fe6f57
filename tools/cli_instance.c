/*
 * cli_instance.c — `lamfs init` (a new instance, or one attached to the
 * LaminDB instance that owns the storage), `lamfs upgrade` (an instance made
 * before LaminDB's schema, docs/schema.md) and `lamfs info INSTANCE` (where the
 * storage and the database are, which LaminDB instance it is, how LaminDB
 * connects to it).  docs/lamindb.md has the design.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "instance.h"
#include "lamindb.h"
#include "marker.h"
#include "meta.h"

static const char init_usage[] =
	"usage: lamfs init INSTANCE [--storage PATH|s3://BUCKET[/PREFIX]] [--db URL]\n"
	"                  [--from-backup FILE]\n"
	"\n"
	"Create an instance in INSTANCE (made with its missing parents, as mkdir -p;\n"
	"an existing directory must be empty), or attach it to the LaminDB instance\n"
	"that owns the storage (its .lamindb/storage_uid.txt).  The database is\n"
	"SQLite in <storage>/.lamindb/lamin.db (INSTANCE/lamin.db with S3 storage)\n"
	"unless --db names a PostgreSQL database.\n"
	"\n"
	"      --storage ROOT      where objects go (default INSTANCE/storage)\n"
	"      --db URL            postgresql://USER@HOST[:PORT]/DB (password in ~/.pgpass)\n"
	"      --from-backup FILE  the metadata from FILE (written by lamfs backup)\n"
	"                          instead of an empty store; give the --storage of\n"
	"                          the backed-up instance (its objects are there)\n"
	"  -h, --help              this help\n";

/* The instance name: the slug's part after "anonymous/". */
static const char *slug_name(const char *slug)
{
	const char *p = strchr(slug, '/');

	return p ? p + 1 : slug;
}

/*
 * How LaminDB in Python connects to this instance (README, "Using the
 * instance from LaminDB").  `lamin init --storage ROOT` refuses a root that
 * is marked already (lamindb-setup's mark_storage_root), so LaminDB connects
 * the way it reconnects to an instance of its own: from its settings file,
 * which `lamfs info INSTANCE --lamin-env` prints.  With S3 storage and SQLite
 * the database is on this machine: LAMINDB_DJANGO_DATABASE_URL points at it.
 */
static void print_connect(FILE *f, const char *indent, const char *instance, const char *root,
			  const char *db, const char *slug)
{
	const char *name = slug_name(slug);

	if (db[0] == '/' && !strncmp(root, "s3://", 5))
		fprintf(f, "%sexport LAMINDB_DJANGO_DATABASE_URL='sqlite:///%s'\n", indent, db);
	fprintf(f, "%slamfs info '%s' --lamin-env > ~/.lamin/instance--anonymous--%s.env\n"
		"%slamin connect anonymous/%s\n", indent, instance, name, indent, name);
}

/*
 * LaminDB's settings file of the instance: the fields and forms
 * lamindb-setup 1.25.1 writes (core/_settings_save.py: prefix
 * "lamindb_instance_", "null" for none, the id as 32 hex digits, booleans as
 * Python prints them).  db: "null" for SQLite (LaminDB finds it in the
 * storage root, or through LAMINDB_DJANGO_DATABASE_URL), else the URL.
 */
static void print_lamin_env(FILE *f, const struct lamindb_ident *id, const char *root,
			    const char *region, const char *db)
{
	fprintf(f, "lamindb_instance_owner=anonymous\n"
		"lamindb_instance_name=%s\n"
		"lamindb_instance_storage_root=%s\n"
		"lamindb_instance_storage_region=%s\n"
		"lamindb_instance_db=%s\n"
		"lamindb_instance_schema_str=null\n"
		"lamindb_instance_id=%s\n"
		"lamindb_instance_git_repo=null\n"
		"lamindb_instance_keep_artifacts_local=False\n"
		"lamindb_instance_api_url=null\n"
		"lamindb_instance_schema_id=null\n"
		"lamindb_instance_fine_grained_access=False\n"
		"lamindb_instance_db_permissions=null\n"
		"lamindb_instance_is_clone=False\n",
		slug_name(id->slug), root, region && *region ? region : "null",
		db[0] == '/' ? "null" : db, id->instance_id);
}

int cli_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "storage", required_argument, NULL, 's' },
		{ "db", required_argument, NULL, 'b' },
		{ "from-backup", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct instance_init_info info;
	char dir[PATH_MAX];
	const char *storage = NULL, *db = NULL, *backup = NULL;
	char *err = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			storage = optarg;
			break;
		case 'b':
			db = optarg;
			break;
		case 'r':
			backup = optarg;
			break;
		case 'h':
			return cli_usage(init_usage, CLI_OK);
		default:
			return cli_usage(init_usage, CLI_USAGE);
		}
	}
	if (optind + 1 != argc) {
		cli_err("init", "expected one INSTANCE directory");
		return cli_usage(init_usage, CLI_USAGE);
	}
	rc = instance_init_from(argv[optind], storage, db, backup, &info, &err);
	if (rc < 0) {
		cli_err("init", "%s", err ? err : strerror(-rc));
		free(err);
		return CLI_FAIL;
	}
	if (backup)
		printf("initialised lamfs instance %s from the backup %s\n"
		       "objects saved after the backup: lamfs-repair %s --dry-run lists them\n",
		       argv[optind], backup, argv[optind]);
	else if (info.attached)
		printf("attached lamfs instance %s to LaminDB instance %s (instance uid %s, "
		       "storage uid %s): LaminDB's records are unchanged, lamfs added its own "
		       "tables\n", argv[optind], info.ident.slug, info.ident.instance_uid,
		       info.ident.storage_uid);
	else
		printf("initialised lamfs instance %s: LaminDB instance %s (instance uid %s, "
		       "storage uid %s)\n", argv[optind], info.ident.slug,
		       info.ident.instance_uid, info.ident.storage_uid);
	if (!realpath(argv[optind], dir))
		snprintf(dir, sizeof(dir), "%s", argv[optind]);
	printf("storage: %s\ndatabase: %s\nLaminDB connects with:\n", info.storage_root, info.db);
	print_connect(stdout, "  ", dir, info.storage_root, info.db, info.ident.slug);
	return CLI_OK;
}

/* The database as a user names it: the SQLite file's path, or the URL. */
static const char *db_of(const char *meta_url)
{
	return strncmp(meta_url, "sqlite:", 7) == 0 ? meta_url + 7 : meta_url;
}

static void jstr(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

int cli_info_instance(const char *instance, int json, int lamin_env)
{
	struct instance_config cfg = INSTANCE_CONFIG_INIT;
	struct lamindb_ident ident;
	struct meta_storage row;
	struct core *c;
	const char *why = NULL;
	int64_t sid = 0;
	int status = CLI_FAIL, rc, have_marker, have_row;

	c = cli_open("info", instance, CORE_READONLY);
	if (!c)
		return CLI_FAIL;
	rc = instance_load(core_instance_dir(c), &cfg, NULL);
	if (rc < 0) {
		cli_err("info", "%s: %s", instance, strerror(-rc));
		goto out;
	}
	rc = marker_read(core_backend(c), &ident, &why);
	have_marker = rc == 0;
	if (rc < 0 && rc != -ENOENT)
		cli_err("info", "%s/%s: %s", cfg.storage_url, MARKER_OBJECT,
			why ? why : strerror(-rc));
	have_row = meta_storage_get(core_meta(c), &sid, &row) == 0;
	if (lamin_env) {
		if (!have_marker || !have_row) {
			cli_err("info", "%s: %s", instance, !have_marker
				? "its storage has no LaminDB marker (.lamindb/storage_uid.txt)"
				: "its database records no storage for it");
			goto out;
		}
		print_lamin_env(stdout, &ident, row.root, row.region, db_of(cfg.meta_url));
		status = CLI_OK;
	} else if (json) {
		struct json_object *j = json_object_new_object();

		if (!j)
			goto out;
		jstr(j, "instance", core_instance_dir(c));
		jstr(j, "storage_root", have_row ? row.root : cfg.storage_url);
		jstr(j, "db", db_of(cfg.meta_url));
		jstr(j, "slug", have_marker ? ident.slug : NULL);
		jstr(j, "instance_id", have_marker ? ident.instance_id : NULL);
		jstr(j, "instance_uid", have_row ? row.instance_uid : NULL);
		jstr(j, "storage_uid", have_row ? row.uid : NULL);
		json_object_object_add(j, "storage_id", have_row ? json_object_new_int64(sid) : NULL);
		status = cli_json_print(j);
	} else {
#define F "%-15s "
		printf(F "%s\n", "instance:", core_instance_dir(c));
		printf(F "%s\n", "storage root:", have_row ? row.root : cfg.storage_url);
		printf(F "%s\n", "database:", db_of(cfg.meta_url));
		if (have_marker)
			printf(F "%s (id %s)\n", "lamindb:", ident.slug, ident.instance_id);
		if (have_row)
			printf(F "%s, storage uid %s, storage id %lld\n", "instance uid:",
			       row.instance_uid, row.uid, (long long)sid);
		if (have_marker) {
			printf("LaminDB connects with:\n");
			print_connect(stdout, "  ", core_instance_dir(c), have_row ? row.root : cfg.storage_url,
				      db_of(cfg.meta_url), ident.slug);
		}
#undef F
		status = CLI_OK;
	}
	status = cli_finish_stdout("info", status);
out:
	instance_config_release(&cfg);
	core_close(c);
	return status;
}

static const char upgrade_usage[] =
	"usage: lamfs upgrade INSTANCE [--json]\n"
	"\n"
	"Bring an instance made before LaminDB's schema (lamfs schema 2) to this lamfs,\n"
	"in place, keeping every record (SQLite: a copy of the store first, beside it).\n"
	"The instance must not be mounted, on any machine.\n"
	"\n"
	"      --json  what was done, as JSON\n"
	"  -h, --help  this help\n";

int cli_upgrade(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *db = NULL, *backup = NULL, *err = NULL;
	struct json_object *j;
	int c, rc, json = 0;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'h':
			return cli_usage(upgrade_usage, CLI_OK);
		default:
			return cli_usage(upgrade_usage, CLI_USAGE);
		}
	}
	if (optind + 1 != argc) {
		cli_err("upgrade", "expected one INSTANCE directory");
		return CLI_USAGE;
	}
	rc = instance_upgrade(argv[optind], &db, &backup, &err);
	if (rc < 0) {
		cli_err("upgrade", "%s", err ? err : strerror(-rc));
	} else if (json) {
		j = json_object_new_object();
		json_object_object_add(j, "instance", json_object_new_string(argv[optind]));
		json_object_object_add(j, "db", json_object_new_string(db ? db : ""));
		json_object_object_add(j, "upgraded", json_object_new_boolean(rc == 0));
		json_object_object_add(j, "schema", json_object_new_int(META_SCHEMA_VERSION));
		json_object_object_add(j, "lamindb_migration",
				       json_object_new_string(lamindb_supported_migration()));
		json_object_object_add(j, "backup", backup ? json_object_new_string(backup) : NULL);
		rc = cli_json_print(j) != CLI_OK ? -EIO : rc;
	} else if (rc == 0) {
		printf("upgraded %s: its metadata store %s now holds LaminDB's schema (migration "
		       "%s) and lamfs schema %d; every record kept\n", argv[optind], db,
		       lamindb_supported_migration(), META_SCHEMA_VERSION);
		if (backup)
			printf("the store as it was before: %s\n", backup);
	} else {
		printf("%s is current (lamfs schema %d); nothing to do\n", argv[optind],
		       META_SCHEMA_VERSION);
	}
	free(db);
	free(backup);
	free(err);
	return rc < 0 ? 1 : 0;
}

