/*
 * cli_ls.c — `lamfs ls`: the artifacts of an instance, from the store.
 *
 * Walks the folder tree from PREFIX with meta_readdir (served by the parent
 * index, never a scan of every key), collects the visible artifacts, adds the
 * storage-ongoing records under PREFIX when --all is given, sorts by key and
 * prints one line per artifact (or a JSON array).
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "key.h"

static const char ls_usage[] =
	"usage: lamfs ls INSTANCE [PREFIX] [-l] [--all] [--json]\n"
	"\n"
	"List the artifacts under the folder PREFIX (default: all), recursively.\n"
	"Each line: SIZE VERSION UID HASH KEY.\n"
	"\n"
	"  -l, --long   also mode, mtime, creation time and flags:\n"
	"               MODE SIZE VERSION UID HASH MTIME CREATED FLAGS KEY\n"
	"  -a, --all    also list records whose storage is still ongoing\n"
	"      --json   a JSON array of records (every field)\n"
	"  -h, --help   this help\n";

struct reclist {
	struct lamfs_record *v;
	size_t n, cap;
};

static int reclist_add(struct reclist *l, const struct lamfs_record *rec)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct lamfs_record *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *rec;
	return 0;
}

struct flagged_ctx {
	const char *prefix;
	struct reclist *out;
};

static int under_prefix(const char *key, const char *prefix)
{
	size_t n = strlen(prefix);

	if (n == 0)
		return 1;
	return strncmp(key, prefix, n) == 0 && (key[n] == '\0' || key[n] == '/');
}

static int flagged_cb(void *ctx, const struct lamfs_record *rec)
{
	struct flagged_ctx *f = ctx;

	if (!under_prefix(rec->key, f->prefix))
		return 0;
	return reclist_add(f->out, rec) < 0;
}

static int rec_cmp(const void *a, const void *b)
{
	const struct lamfs_record *x = a, *y = b;
	int r = strcmp(x->key, y->key);

	return r ? r : strcmp(x->uid, y->uid);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *flags_of(const struct lamfs_record *r, char *buf, size_t len)
{
	buf[0] = '\0';
	if (r->storage_ongoing)
		snprintf(buf + strlen(buf), len - strlen(buf), "%sstorage-ongoing",
			 buf[0] ? "," : "");
	if (!r->is_latest && !r->storage_ongoing)
		snprintf(buf + strlen(buf), len - strlen(buf), "%sold", buf[0] ? "," : "");
	if (r->branch_id != 1)
		snprintf(buf + strlen(buf), len - strlen(buf), "%strash", buf[0] ? "," : "");
	if (!buf[0])
		snprintf(buf, len, "-");
	return buf;
}

/* Output state: records are printed folder by folder as the walk goes, so
 * memory stays bounded by the widest folder, not the whole instance. */
struct ls_out {
	int lng, json;
	size_t printed;
	struct reclist flagged;     /* --all: storage-ongoing records, sorted by key */
};

static void print_one(struct ls_out *o, const struct lamfs_record *r)
{
	char mode[12], mt[40], ct[40], fl[64], ek[CLI_ESC_KEY];

	if (o->json) {
		struct json_object *j = cli_record_json(r);

		cli_json_printed();
		printf("%s%s", o->printed ? ",\n" : "[\n",
		       j ? json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
							 JSON_C_TO_STRING_NOSLASHESCAPE) : "null");
		json_object_put(j);
	} else {
		if (o->lng)
			printf("%s  ", cli_mode_string(r->mode, 0, mode));
		/* Sizes right-aligned to 12 digits (up to 999 GB) keep columns
		 * straight without a first pass over everything. */
		printf("%12lld  %s  %s  %-*s  ", (long long)r->size, lamfs_uid_version(r->uid),
		       r->uid, LAMFS_HASH_LEN, r->hash);
		if (o->lng)
			printf("%s  %s  %s  ", cli_time(r->mtime_ns, 0, mt, sizeof(mt)),
			       cli_time(r->created_at, 0, ct, sizeof(ct)),
			       flags_of(r, fl, sizeof(fl)));
		printf("%s\n", escape_str(r->key, ek, sizeof(ek)));
	}
	o->printed++;
}

/* The files and subfolders of one folder. */
struct dirlist {
	char **names;
	size_t n, cap;
	struct reclist files;
	int rc;
};

static int collect_cb(void *ctx, const char *name, const struct meta_entry *e)
{
	struct dirlist *d = ctx;

	if (e->type == META_FILE) {
		d->rc = reclist_add(&d->files, &e->rec);
	} else if (e->type == META_DIR) {
		if (d->n == d->cap) {
			size_t cap = d->cap ? d->cap * 2 : 16;
			char **v = realloc(d->names, cap * sizeof(*v));

			if (!v) {
				d->rc = -ENOMEM;
				return 1;
			}
			d->names = v;
			d->cap = cap;
		}
		d->names[d->n] = strdup(name);
		if (!d->names[d->n]) {
			d->rc = -ENOMEM;
			return 1;
		}
		d->n++;
	}
	return d->rc < 0;
}

/* If key lies below a subfolder of folder that is not listed yet, list it. */
static int add_flagged_folder(struct dirlist *d, const char *folder, const char *key)
{
	size_t n = strlen(folder), len, i;
	const char *rest, *slash;
	char **names;

	if (n && (strncmp(key, folder, n) != 0 || key[n] != '/'))
		return 0;
	rest = n ? key + n + 1 : key;
	slash = strchr(rest, '/');
	if (!slash)
		return 0;
	len = (size_t)(slash - rest);
	for (i = 0; i < d->n; i++)
		if (strlen(d->names[i]) == len && !strncmp(d->names[i], rest, len))
			return 0;
	names = realloc(d->names, (d->n + 1) * sizeof(*names));
	if (!names)
		return -ENOMEM;
	d->names = names;
	d->cap = d->n + 1;
	d->names[d->n] = strndup(rest, len);
	if (!d->names[d->n])
		return -ENOMEM;
	d->n++;
	return 0;
}

static int walk(struct core *c, const char *folder, struct ls_out *o)
{
	struct dirlist d = { NULL, 0, 0, { NULL, 0, 0 }, 0 };
	char child[LAMFS_KEY_MAX + LAMFS_NAME_MAX + 2], parent[LAMFS_KEY_MAX + 1];
	size_t i, j;
	int rc;

	/* A readdir callback runs under the store's lock: collect, then walk.
	 * A folder that holds only saves in flight has no row yet (folders are
	 * made when a save finishes): with --all it is walked all the same. */
	rc = core_readdir(c, folder, collect_cb, &d);
	if (rc == -ENOENT && o->flagged.n)
		rc = 0;
	if (rc == 0)
		rc = d.rc;
	for (i = 0; rc == 0 && i < o->flagged.n; i++) {
		key_split(o->flagged.v[i].key, parent);
		if (!strcmp(parent, folder))
			rc = reclist_add(&d.files, &o->flagged.v[i]);
		else
			rc = add_flagged_folder(&d, folder, o->flagged.v[i].key);
	}
	if (rc == 0) {
		/* (qsort must not get the NULL of an empty list) */
		if (d.files.n)
			qsort(d.files.v, d.files.n, sizeof(*d.files.v), rec_cmp);
		if (d.n)
			qsort(d.names, d.n, sizeof(*d.names), str_cmp);
	}
	/* Files and folders merged in name order: a tree walk in sorted order. */
	for (i = 0, j = 0; rc == 0 && (i < d.files.n || j < d.n);) {
		const char *fname = NULL;

		if (i < d.files.n) {
			fname = strrchr(d.files.v[i].key, '/');
			fname = fname ? fname + 1 : d.files.v[i].key;
		}
		if (fname && (j >= d.n || strcmp(fname, d.names[j]) <= 0)) {
			print_one(o, &d.files.v[i++]);
			continue;
		}
		snprintf(child, sizeof(child), "%s%s%s", folder, folder[0] ? "/" : "", d.names[j++]);
		if (!key_hidden(child))
			rc = walk(c, child, o);
	}
	for (i = 0; i < d.n; i++)
		free(d.names[i]);
	free(d.names);
	free(d.files.v);
	return rc;
}

int cli_ls(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "long", no_argument, NULL, 'l' },
		{ "all", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ls_out o = { 0, 0, 0, { NULL, 0, 0 } };
	struct core *c = NULL;
	struct meta_entry e;
	char prefix[LAMFS_KEY_MAX + 2] = "";
	int all = 0, ch, rc, status = CLI_FAIL;
	size_t i;

	while ((ch = getopt_long(argc, argv, "lah", opts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			o.lng = 1;
			break;
		case 'a':
			all = 1;
			break;
		case 'j':
			o.json = 1;
			break;
		case 'h':
			return cli_usage(ls_usage, CLI_OK);
		default:
			return cli_usage(ls_usage, CLI_USAGE);
		}
	}
	if (optind >= argc || argc - optind > 2) {
		cli_err("ls", "expected INSTANCE [PREFIX]");
		return cli_usage(ls_usage, CLI_USAGE);
	}
	if (optind + 1 < argc) {
		if (strlen(argv[optind + 1]) > LAMFS_KEY_MAX) {
			cli_err("ls", "%s: prefix too long", argv[optind + 1]);
			return CLI_FAIL;
		}
		snprintf(prefix, sizeof(prefix), "%s", argv[optind + 1]);
		cli_key_normalise(prefix);
	}
	c = cli_open("ls", argv[optind], CORE_READONLY);
	if (!c)
		return CLI_FAIL;
	if (all) {
		struct flagged_ctx f = { prefix, &o.flagged };

		rc = meta_foreach(core_meta(c), META_FLAGGED_RECORDS, flagged_cb, &f);
		if (rc < 0) {
			cli_err("ls", "listing storage-ongoing records: %s", strerror(-rc));
			goto out;
		}
	}
	rc = core_lookup(c, prefix, &e);
	if (rc == 0 && e.type == META_FILE) {
		/* PREFIX names one artifact: list it (and its in-flight saves). */
		print_one(&o, &e.rec);
		for (i = 0; i < o.flagged.n; i++)
			if (!strcmp(o.flagged.v[i].key, prefix))
				print_one(&o, &o.flagged.v[i]);
	} else if (rc == 0) {
		rc = walk(c, prefix, &o);
	} else if (rc == -ENOENT && o.flagged.n) {
		/* Only in-flight saves there (their folders exist, so rare). */
		rc = 0;
		qsort(o.flagged.v, o.flagged.n, sizeof(*o.flagged.v), rec_cmp);
		for (i = 0; i < o.flagged.n; i++)
			print_one(&o, &o.flagged.v[i]);
	}
	if (rc < 0) {
		if (rc == -ENOENT)
			cli_err("ls", "%s: no such folder or artifact", argv[optind + 1]);
		else
			cli_err("ls", "%s: %s", prefix[0] ? prefix : "listing", strerror(-rc));
		goto out;
	}
	if (o.json) {
		cli_json_printed();
		printf("%s\n", o.printed ? "\n]" : "[]");
	}
	status = cli_finish_stdout("ls", CLI_OK);
out:
	free(o.flagged.v);
	core_close(c);
	return status;
}
