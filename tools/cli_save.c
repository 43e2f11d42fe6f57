/*
 * cli_save.c — `lamfs save`: bulk save of local files, without a mount.
 *
 * LaminDB's ln.save semantics:
 *  1. Every argument is validated before anything is written: the file exists,
 *     is a regular file and readable, its key is valid, no two files map to one
 *     key, and the store has no folder at the key nor a file where the key
 *     needs a folder.  Any problem: nothing is saved, every culprit is named,
 *     exit 1.
 *  2. Files are then saved one by one from where they are (core_save_file:
 *     hashed, flagged, uploaded from the file, checked unchanged, committed;
 *     nothing is copied into staging), with a progress line on a terminal.  The first failure stops the run; the files saved
 *     before it stay saved and the error lists them and the ones not saved.
 * A first Ctrl-C stops after the file being saved (so no save is left
 * half-done); a second one kills at once (the interrupted save stays flagged
 * and hidden until it is saved again or lamfs-repair runs).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "key.h"
#include "lease.h"
#include "log.h"
#include "progress.h"
#include "save_file.h"

static const char save_usage[] =
	"usage: lamfs save INSTANCE FILE... [--key KEY | --prefix PREFIX] [--json]\n"
	"                  [--progress | --no-progress]\n"
	"\n"
	"Save local files as artifacts, without a mount.  Each FILE is saved at\n"
	"PREFIX/BASENAME (default prefix: the root), or at KEY when one FILE is given.\n"
	"Every argument is checked first: if any is missing, a directory, unreadable\n"
	"or has a bad key, nothing is saved.  Then files are saved one by one; if\n"
	"one fails, the ones saved before it stay saved and are listed.\n"
	"Saving identical bytes at a key again makes nothing new; new bytes at an\n"
	"existing key make a new version.  Each line: UID STATUS KEY, STATUS being\n"
	"new, new-version or unchanged.\n"
	"Files are hashed and stored from where they are (no copy in staging); one\n"
	"that changes while it is saved is rolled back.  On a terminal a progress\n"
	"line (bytes, rate, time left) is redrawn on stderr.\n"
	"\n"
	"  -k, --key KEY        the key of the (single) FILE\n"
	"  -p, --prefix PREFIX  the folder to save the files in\n"
	"      --json           a JSON object {saved, failed, not_saved}\n"
	"      --progress       show the progress line even when stdout is no terminal\n"
	"      --no-progress    never show it\n"
	"  -h, --help           this help\n";

struct item {
	const char *path;
	char key[LAMFS_KEY_MAX + 1];
	struct stat st;
	/* filled by the save */
	int done;
	const char *status;         /* "new", "new-version", "unchanged" */
	struct lamfs_record rec;
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Why key (as typed, or as built from --prefix) cannot be saved at; NULL
 * when it can.  Keys are relative to the instance's root: nothing is
 * silently dropped or rewritten, so what is saved is at the key asked for. */
static const char *key_problem(const char *key)
{
	const char *p = key;
	int rc;

	if (!key[0])
		return "empty";
	if (key[0] == '/')
		return "absolute (keys are relative to the instance's root: leave out the "
		       "leading '/')";
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 0)
			return "has an empty component ('//' or a trailing '/')";
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return "has a '.' or '..' component";
		p += n;
		if (*p == '/' && *++p == '\0')
			return "has an empty component ('//' or a trailing '/')";
	}
	if (strlen(key) > LAMFS_KEY_MAX)
		return "too long (over 1024 bytes)";
	rc = key_check(key);
	switch (rc) {
	case 0:
		return NULL;
	case -ENAMETOOLONG:
		return "too long (a component over 255 bytes)";
	case -EILSEQ:
		return "not valid UTF-8";
	case -EPERM:
		return "uses a reserved name (.lamindb, or .lamfs at the top)";
	default:
		return strerror(-rc);
	}
}

static const char *save_problem(int rc)
{
	switch (rc) {
	case -EACCES:
	case -EPERM:
		return "storage refused the upload (permission denied)";
	case -ENOSPC:
		return "no space left (staging or storage)";
	case -EISDIR:
		return "a folder exists at this key";
	case -ENOTDIR:
		return "a parent of this key is an artifact, not a folder";
	case -ESTALE:
		return "the file changed while it was saved (its size, mtime or bytes); the "
		       "save was rolled back: save it again when it is no longer written";
	case -EEXIST:
		return "storage already holds other bytes under this version's name (saved "
		       "after the metadata backup this instance was restored from: "
		       "lamfs-repair INSTANCE --register registers them first)";
	default:
		return strerror(-rc);
	}
}

/* A problem found while validating; collected so every culprit is named. */
struct problems {
	struct json_object *json;   /* array, or NULL without --json */
	unsigned n;
};

static void problem(struct problems *pr, const char *path, const char *key, const char *fmt,
		    ...) __attribute__((format(printf, 4, 5)));

static void problem(struct problems *pr, const char *path, const char *key, const char *fmt, ...)
{
	char msg[1400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cli_err("save", "%s: %s", path, msg);
	if (pr->json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "path", json_object_new_string(path));
		json_object_object_add(o, "key", key ? json_object_new_string(key) : NULL);
		json_object_object_add(o, "error", json_object_new_string(msg));
		json_object_array_add(pr->json, o);
	}
	pr->n++;
}

/* Step 1 for one file, without the store: the file itself and its key. */
static void check_file(struct item *it, const char *key_opt, const char *prefix,
		       struct problems *pr)
{
	char tmp[PATH_MAX];
	const char *base, *why;
	int fd;

	it->key[0] = '\0';
	if (stat(it->path, &it->st) != 0) {
		problem(pr, it->path, NULL, "%s", errno == ENOENT ? "no such file"
			: strerror(errno));
		return;
	}
	if (S_ISDIR(it->st.st_mode)) {
		problem(pr, it->path, NULL, "is a directory (give the files in it, e.g. %s/*)",
			it->path);
		return;
	}
	if (!S_ISREG(it->st.st_mode)) {
		problem(pr, it->path, NULL, "not a regular file");
		return;
	}
	fd = open(it->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		problem(pr, it->path, NULL, "cannot be read: %s", strerror(errno));
		return;
	}
	close(fd);
	if (key_opt) {
		snprintf(tmp, sizeof(tmp), "%s", key_opt);
	} else {
		char b[PATH_MAX];

		snprintf(b, sizeof(b), "%s", it->path);
		base = basename(b);
		if (snprintf(tmp, sizeof(tmp), "%s%s%s", prefix, prefix[0] ? "/" : "", base) >=
		    (int)sizeof(tmp)) {
			problem(pr, it->path, NULL, "key too long");
			return;
		}
	}
	why = key_problem(tmp);
	if (why) {
		problem(pr, it->path, tmp, "bad key '%s': %s", tmp, why);
		return;
	}
	memcpy(it->key, tmp, strlen(tmp) + 1);
}

/* Step 1 against the store: no folder at the key, no artifact where the key
 * needs a folder. */
static void check_store(struct core *c, struct item *it, struct problems *pr)
{
	char anc[LAMFS_KEY_MAX + 1];
	struct meta_entry e;
	char *slash;
	int rc;

	rc = core_lookup(c, it->key, &e);
	if (rc == 0 && e.type == META_DIR) {
		problem(pr, it->path, it->key, "key '%s' is a folder in the instance", it->key);
		return;
	}
	if (rc < 0 && rc != -ENOENT) {
		problem(pr, it->path, it->key, "key '%s': %s", it->key, strerror(-rc));
		return;
	}
	memcpy(anc, it->key, strlen(it->key) + 1);
	for (slash = strchr(anc, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		rc = core_lookup(c, anc, &e);
		*slash = '/';
		if (rc == 0 && e.type == META_FILE) {
			*slash = '\0';
			problem(pr, it->path, it->key,
				"key '%s' needs the folder '%s', which is an artifact", it->key, anc);
			return;
		}
		if (rc == -ENOENT)
			break;  /* nothing below a missing folder can conflict */
	}
}

static struct json_object *saved_json(const struct item *it)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "path", json_object_new_string(it->path));
	json_object_object_add(o, "key", json_object_new_string(it->rec.key));
	json_object_object_add(o, "uid", json_object_new_string(it->rec.uid));
	json_object_object_add(o, "version",
			       json_object_new_string(lamfs_uid_version(it->rec.uid)));
	json_object_object_add(o, "size", json_object_new_int64(it->rec.size));
	json_object_object_add(o, "hash", json_object_new_string(it->rec.hash));
	json_object_object_add(o, "status", json_object_new_string(it->status));
	return o;
}

struct file_progress {
	struct progress *pg;
	uint64_t items_done, bytes_before;
	enum core_save_phase phase;
	const char *name;
};

static void on_file_progress(void *ctx, enum core_save_phase phase, uint64_t done, uint64_t size)
{
	struct file_progress *fp = ctx;

	(void)size;
	if (phase != fp->phase) {
		fp->phase = phase;
		progress_label(fp->pg, phase == CORE_SAVE_HASHING ? "hashing" : "storing",
			       fp->bytes_before);
	}
	progress_update(fp->pg, fp->items_done, fp->bytes_before + done, fp->name);
}

/* Step 2: save the items one by one; stop at the first failure.  Returns the
 * index of the failed item, or n when all were saved. */
static size_t save_all(struct core *c, struct item *items, size_t n, struct progress *pg,
		       int json, int *err)
{
	struct file_progress fp = { pg, 0, 0, CORE_SAVE_HASHING, NULL };
	struct core_save_progress cb = { on_file_progress, &fp };
	uint64_t bytes = 0;
	char ek[CLI_ESC_KEY];
	size_t i;

	*err = 0;
	for (i = 0; i < n; i++) {
		struct item *it = &items[i];
		struct core_attrs attrs;
		struct meta_entry prev;
		int had_prev, rc;

		if (interrupted) {
			*err = -EINTR;
			break;
		}
		fp.items_done = i;
		fp.bytes_before = bytes;
		fp.name = it->path;
		fp.phase = CORE_SAVE_HASHING;
		progress_label(pg, "hashing", bytes);
		progress_update(pg, i, bytes, it->path);
		had_prev = core_lookup(c, it->key, &prev) == 0 && prev.type == META_FILE;
		attrs.mode = it->st.st_mode & 07777;
		attrs.owner_uid = (uint32_t)getuid();
		attrs.owner_gid = (uint32_t)getgid();
		attrs.mtime_ns = (int64_t)it->st.st_mtim.tv_sec * 1000000000LL +
				 it->st.st_mtim.tv_nsec;
		rc = core_save_file(c, it->path, it->key, &attrs, &cb, &it->rec);
		if (rc < 0) {
			*err = rc;
			break;
		}
		it->done = 1;
		it->status = !had_prev ? "new"
			     : strcmp(prev.rec.uid, it->rec.uid) ? "new-version" : "unchanged";
		bytes += (uint64_t)it->st.st_size;
		if (!json) {
			progress_clear(pg);
			printf("%s  %-11s  %s\n", it->rec.uid, it->status,
			       escape_str(it->rec.key, ek, sizeof(ek)));
			fflush(stdout);
		}
		progress_update(pg, i + 1, bytes, NULL);
	}
	progress_free(pg);
	return i;
}

static void report_failure(const struct item *items, size_t n, size_t failed, int err)
{
	char ep[ESCAPE_SIZE(PATH_MAX)], ek[CLI_ESC_KEY];
	size_t i;

	if (err == -EINTR)
		cli_err("save", "interrupted; stopped before %s", items[failed].path);
	else
		cli_err("save", "%s: saving at key '%s' failed: %s", items[failed].path,
			items[failed].key, save_problem(err));
	if (failed == 0) {
		fprintf(stderr, "  nothing was saved\n");
	} else {
		fprintf(stderr, "  saved before the failure (they stay saved):\n");
		for (i = 0; i < failed; i++)
			fprintf(stderr, "    %s -> %s (uid %s)\n",
				escape_str(items[i].path, ep, sizeof(ep)),
				escape_str(items[i].rec.key, ek, sizeof(ek)), items[i].rec.uid);
	}
	fprintf(stderr, "  not saved:\n");
	for (i = failed; i < n; i++)
		fprintf(stderr, "    %s\n", escape_str(items[i].path, ep, sizeof(ep)));
}

int cli_save(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "progress", no_argument, NULL, 'P' },
		{ "no-progress", no_argument, NULL, 'Q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum progress_mode pmode = PROGRESS_AUTO;
	struct problems pr = { NULL, 0 };
	struct item *items = NULL;
	struct core *c = NULL;
	struct lease *lease = NULL;
	struct meta_lease blocker;
	struct progress *pg = NULL;
	struct sigaction sa, old_sa;
	const char *key_opt = NULL, *prefix_opt = NULL;
	char prefix[LAMFS_KEY_MAX + 2] = "";
	uint64_t total = 0;
	size_t n, i, j, failed = 0;
	int json = 0, ch, rc, err = 0, status = CLI_FAIL;

	while ((ch = getopt_long(argc, argv, "k:p:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'k':
			key_opt = optarg;
			break;
		case 'p':
			prefix_opt = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'P':
			pmode = PROGRESS_ON;
			break;
		case 'Q':
			pmode = PROGRESS_OFF;
			break;
		case 'h':
			return cli_usage(save_usage, CLI_OK);
		default:
			return cli_usage(save_usage, CLI_USAGE);
		}
	}
	if (key_opt && prefix_opt) {
		cli_err("save", "--key and --prefix exclude each other");
		return cli_usage(save_usage, CLI_USAGE);
	}
	if (argc - optind < 2) {
		cli_err("save", "expected INSTANCE and at least one FILE");
		return cli_usage(save_usage, CLI_USAGE);
	}
	if (prefix_opt) {
		if (strlen(prefix_opt) > LAMFS_KEY_MAX) {
			cli_err("save", "--prefix %s: too long", prefix_opt);
			return CLI_FAIL;
		}
		snprintf(prefix, sizeof(prefix), "%s", prefix_opt);
		/* "runs/" names the folder runs; the keys built from the prefix
		 * are checked as keys (an absolute prefix makes absolute keys). */
		{
			size_t pl = strlen(prefix);

			if (pl > 1 && prefix[pl - 1] == '/')
				prefix[pl - 1] = '\0';
		}
	}
	n = (size_t)(argc - optind - 1);
	items = calloc(n, sizeof(*items));
	if (json)
		pr.json = json_object_new_array();
	if (!items || (json && !pr.json)) {
		cli_err("save", "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++)
		items[i].path = argv[optind + 1 + i];

	/* 1. validate everything; nothing is written before this is clean. */
	if (key_opt && n > 1) {
		cli_err("save", "--key names one artifact, but %zu files were given (use "
			"--prefix for several)", n);
		problem(&pr, items[1].path, key_opt, "a second file with --key %s", key_opt);
		for (i = 2; i < n; i++)
			problem(&pr, items[i].path, key_opt, "another file with --key %s", key_opt);
	}
	for (i = 0; i < n; i++)
		check_file(&items[i], key_opt, prefix, &pr);
	for (i = 0; i < n && !(key_opt && n > 1); i++) {
		if (!items[i].key[0])
			continue;
		for (j = 0; j < i; j++) {
			if (!strcmp(items[i].key, items[j].key)) {
				problem(&pr, items[i].path, items[i].key,
					"key '%s' is taken by %s in this same save", items[i].key,
					items[j].path);
				break;
			}
		}
	}
	c = cli_open("save", argv[optind], 0);
	if (!c)
		goto out;
	for (i = 0; i < n; i++)
		if (items[i].key[0])
			check_store(c, &items[i], &pr);
	if (pr.n) {
		cli_err("save", "nothing saved: %u problem%s above", pr.n, pr.n == 1 ? "" : "s");
		goto report;
	}
	/* A mount holds the instance lock shared, lamfs-repair exclusive: save
	 * may run beside mounts, never beside a repair. */
	rc = core_lock(c, 0);
	if (rc < 0) {
		cli_err("save", "%s: %s", argv[optind], rc == -EBUSY
			? "lamfs-repair is working on this instance; try again when it is done"
			: strerror(-rc));
		goto out;
	}
	/* 2. save one by one.  The core's own messages (a rolled-back save, an
	 * orphan left for lamfs-repair) go to the instance's log, as a mount's do;
	 * the user gets ours. */
	{
		char logp[PATH_MAX];

		snprintf(logp, sizeof(logp), "%s/lamfs.log", core_instance_dir(c));
		if (log_open(logp) == 0)
			log_info("lamfs save: %zu file%s (pid %ld)", n, n == 1 ? "" : "s",
				 (long)getpid());
	}
	/* The flock only sees this machine; the lease in the store tells a
	 * lamfs-repair on another machine (PostgreSQL) that saves are in flight,
	 * and refuses this save while a repair runs anywhere. */
	rc = lease_start(c, META_LEASE_MOUNT, "(lamfs save)", 0, &lease, &blocker);
	if (rc < 0) {
		char who[600];

		lease_describe(&blocker, who, sizeof(who));
		cli_err("save", "%s: %s", argv[optind], rc == -EBUSY
			? "lamfs-repair is working on this instance; try again when it is done"
			: strerror(-rc));
		if (rc == -EBUSY)
			cli_err("save", "(%s)", who);
		goto out;
	}
	for (i = 0; i < n; i++)
		total += (uint64_t)items[i].st.st_size;
	pg = progress_new("hashing", n, total, pmode);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sa.sa_flags = SA_RESETHAND;  /* a second Ctrl-C kills */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_sa);
	failed = save_all(c, items, n, pg, json, &err);
	sigaction(SIGINT, &old_sa, NULL);
	if (failed < n) {
		report_failure(items, n, failed, err);
		if (pr.json) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "path", json_object_new_string(items[failed].path));
			json_object_object_add(o, "key", json_object_new_string(items[failed].key));
			json_object_object_add(o, "error", json_object_new_string(
						       err == -EINTR ? "interrupted"
						       : save_problem(err)));
			json_object_array_add(pr.json, o);
		}
	} else {
		status = CLI_OK;
	}
report:
	if (json) {
		struct json_object *o = json_object_new_object();
		struct json_object *saved = json_object_new_array();
		struct json_object *not_saved = json_object_new_array();

		for (i = 0; i < n; i++) {
			if (items[i].done)
				json_object_array_add(saved, saved_json(&items[i]));
			else
				json_object_array_add(not_saved, json_object_new_string(items[i].path));
		}
		json_object_object_add(o, "saved", saved);
		json_object_object_add(o, "failed", pr.json);
		json_object_object_add(o, "not_saved", not_saved);
		if (status != CLI_OK)
			json_object_object_add(o, "error", json_object_new_string(
				cli_json_error()[0] ? cli_json_error() : "save failed"));
		pr.json = NULL;
		if (cli_json_print(o) != CLI_OK)
			status = CLI_FAIL;
	}
	status = cli_finish_stdout("save", status);
out:
	json_object_put(pr.json);
	lease_stop(lease);
	core_close(c);
	free(items);
	return status;
}
