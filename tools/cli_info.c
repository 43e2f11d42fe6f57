/*
 * cli_info.c — `lamfs info` (one record, every field) and `lamfs versions`
 * (every version of a key, oldest first, the latest marked).
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "instance.h"
#include "key.h"

static const char info_usage[] =
	"usage: lamfs info INSTANCE [KEY|UID] [--json]\n"
	"       lamfs info INSTANCE --lamin-env\n"
	"\n"
	"Show every field of an artifact's record: the latest version at KEY, or\n"
	"the version with this UID (any version, also one whose storage is ongoing).\n"
	"Without KEY|UID: the instance, its storage root and database, the LaminDB\n"
	"instance it is (slug, ids) and how LaminDB connects to it.\n"
	"With --lamin-env: LaminDB's settings file for the instance, for\n"
	"~/.lamin/instance--anonymous--NAME.env (then: lamin connect anonymous/NAME).\n"
	"\n"
	"      --json       the record (or the instance) as a JSON object\n"
	"      --lamin-env  LaminDB's settings file for the instance\n"
	"  -h, --help       this help\n";

static const char versions_usage[] =
	"usage: lamfs versions INSTANCE KEY|UID [--json]\n"
	"\n"
	"List every version of the artifact at KEY (or of the key of UID), oldest\n"
	"first.  Each line: UID VERSION SIZE CREATED MARK, where MARK is 'latest',\n"
	"'storage-ongoing' or empty.\n"
	"\n"
	"      --json   a JSON array of records\n"
	"  -h, --help   this help\n";

/* Parse "CMD INSTANCE ARG [--json]" (info: also "info INSTANCE [--json |
 * --lamin-env]", lamin_env not NULL); returns -1 to go on, else an exit
 * status. */
static int parse_two(const char *cmd, int argc, char **argv, const char *usage, int *json,
		     int *lamin_env)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "lamin-env", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			*json = 1;
			break;
		case 'l':
			if (!lamin_env)
				return cli_usage(usage, CLI_USAGE);
			*lamin_env = 1;
			break;
		case 'h':
			return cli_usage(usage, CLI_OK);
		default:
			return cli_usage(usage, CLI_USAGE);
		}
	}
	if (lamin_env && *lamin_env && (*json || argc - optind != 1)) {
		cli_err(cmd, "--lamin-env takes INSTANCE alone, without --json");
		return cli_usage(usage, CLI_USAGE);
	}
	if (argc - optind != 2 && !(lamin_env && argc - optind == 1)) {
		cli_err(cmd, "expected INSTANCE and KEY|UID");
		return cli_usage(usage, CLI_USAGE);
	}
	return -1;
}

/* Where the record's bytes live: "<storage url>/.lamindb/<uid><suffix>". */
static char *object_url(struct core *c, const struct lamfs_record *rec)
{
	struct instance_config cfg = INSTANCE_CONFIG_INIT;
	char obj[LAMFS_OBJ_MAX];
	char *url = NULL;

	if (instance_load(core_instance_dir(c), &cfg, NULL) < 0)
		return NULL;
	key_object(rec->uid, rec->suffix, obj, sizeof(obj));
	if (asprintf(&url, "%s%s%s", cfg.storage_url,
		     cfg.storage_url[0] && cfg.storage_url[strlen(cfg.storage_url) - 1] == '/'
		     ? "" : "/", obj) < 0)
		url = NULL;
	instance_config_release(&cfg);
	return url;
}

static void print_info(const struct lamfs_record *r, const char *obj)
{
	char t[48], mode[12], ek[CLI_ESC_KEY];

#define F "%-16s "
	printf(F "%s\n", "key:", escape_str(r->key, ek, sizeof(ek)));
	printf(F "%s\n", "uid:", r->uid);
	printf(F "%s\n", "version:", lamfs_uid_version(r->uid));
	printf(F "%s\n", "latest:", r->is_latest ? "yes" : "no");
	printf(F "%s\n", "storage ongoing:", r->storage_ongoing ? "yes" : "no");
	printf(F "%lld\n", "size:", (long long)r->size);
	printf(F "%s\n", "hash:", r->hash);
	printf(F "%s\n", "hash type:", r->hash_type);
	printf(F "%s\n", "checksum:", r->checksum);
	printf(F "%s\n", "suffix:", escape_str(r->suffix, ek, sizeof(ek)));
	printf(F "%s\n", "object:", obj ? escape_str(obj, ek, sizeof(ek)) : "?");
	printf(F "%d (%s)\n", "branch:", r->branch_id, r->branch_id == 1 ? "live" : "trash");
	printf(F "%d\n", "storage id:", r->storage_id);
	printf(F "%lld\n", "id:", (long long)r->id);
	printf(F "%s\n", "created:", cli_time(r->created_at, 1, t, sizeof(t)));
	printf(F "%s\n", "updated:", cli_time(r->updated_at, 1, t, sizeof(t)));
	printf(F "%s\n", "mtime:", cli_time(r->mtime_ns, 1, t, sizeof(t)));
	printf(F "%04o (%s)\n", "mode:", (unsigned)(r->mode & 07777),
	       cli_mode_string(r->mode, 0, mode));
	printf(F "%u:%u\n", "owner:", (unsigned)r->owner_uid, (unsigned)r->owner_gid);
#undef F
}

int cli_info(int argc, char **argv)
{
	struct lamfs_record rec;
	struct core *c;
	char *obj = NULL;
	int json = 0, lamin_env = 0, status;

	status = parse_two("info", argc, argv, info_usage, &json, &lamin_env);
	if (status >= 0)
		return status;
	if (argc - optind == 1)
		return cli_info_instance(argv[optind], json, lamin_env);
	c = cli_open("info", argv[optind], CORE_READONLY);
	if (!c)
		return CLI_FAIL;
	status = CLI_FAIL;
	if (cli_resolve("info", c, argv[optind + 1], &rec) < 0)
		goto out;
	obj = object_url(c, &rec);
	if (json) {
		struct json_object *j = cli_record_json(&rec);

		if (j && obj)
			json_object_object_add(j, "object", json_object_new_string(obj));
		status = j ? cli_json_print(j) : CLI_FAIL;
	} else {
		print_info(&rec, obj);
		status = CLI_OK;
	}
	status = cli_finish_stdout("info", status);
out:
	free(obj);
	core_close(c);
	return status;
}

struct vlist {
	struct lamfs_record *v;
	size_t n, cap;
	int rc;
};

static int version_cb(void *ctx, const struct lamfs_record *rec)
{
	struct vlist *l = ctx;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct lamfs_record *v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			l->rc = -ENOMEM;
			return 1;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *rec;
	return 0;
}

int cli_versions(int argc, char **argv)
{
	struct vlist l = { NULL, 0, 0, 0 };
	struct lamfs_record rec;
	struct core *c;
	char key[LAMFS_KEY_MAX + 2], t[48];
	const char *arg;
	int json = 0, status, rc;
	size_t i;

	status = parse_two("versions", argc, argv, versions_usage, &json, NULL);
	if (status >= 0)
		return status;
	arg = argv[optind + 1];
	c = cli_open("versions", argv[optind], CORE_READONLY);
	if (!c)
		return CLI_FAIL;
	status = CLI_FAIL;
	/* A uid names its key; a key need not have a visible version (only
	 * in-flight saves), so it is taken as typed. */
	if (cli_is_uid(arg) && meta_get_uid(core_meta(c), arg, &rec) == 0) {
		snprintf(key, sizeof(key), "%s", rec.key);
	} else {
		if (strlen(arg) > LAMFS_KEY_MAX) {
			cli_err("versions", "%s: key too long", arg);
			goto out;
		}
		snprintf(key, sizeof(key), "%s", arg);
		cli_key_normalise(key);
	}
	rc = key_hidden(key) ? -ENOENT : meta_versions(core_meta(c), key, version_cb, &l);
	if (rc == 0)
		rc = l.rc;
	if (rc == 0 && l.n == 0)
		rc = -ENOENT;
	if (rc < 0) {
		if (rc == -ENOENT)
			cli_err("versions", "%s: no artifact with this key", arg);
		else
			cli_err("versions", "%s: %s", arg, strerror(-rc));
		goto out;
	}
	if (json) {
		struct json_object *arr = json_object_new_array();

		for (i = 0; arr && i < l.n; i++)
			json_object_array_add(arr, cli_record_json(&l.v[i]));
		status = arr ? cli_json_print(arr) : CLI_FAIL;
	} else {
		for (i = 0; i < l.n; i++) {
			const struct lamfs_record *r = &l.v[i];

			const char *mark = r->storage_ongoing ? "  storage-ongoing"
					   : r->is_latest ? "  latest" : "";

			printf("%s  %s  %12lld  %s%s\n", r->uid, lamfs_uid_version(r->uid),
			       (long long)r->size, cli_time(r->created_at, 0, t, sizeof(t)), mark);
		}
		status = CLI_OK;
	}
	status = cli_finish_stdout("versions", status);
out:
	free(l.v);
	core_close(c);
	return status;
}
