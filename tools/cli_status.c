/*
 * cli_status.c — `lamfs status`: is the instance mounted, what is in flight.
 *
 * Mounted: every mount holds INSTANCE/lamfs.lock shared (flock) for its
 * lifetime, lamfs-repair holds it exclusive; the holders are read from
 * /proc/locks without touching the lock.  The mount points of this mount
 * namespace come from /proc/self/mountinfo (source the instance directory,
 * type fuse.lamfs), each probed with statfs(2): a mount whose daemon died
 * ("Transport endpoint is not connected") is "dead" and not mounted, and the
 * report gives the command that clears it.  In flight: storage-ongoing records (with their age),
 * staging files (pending uploads and open writes) and the last upload errors
 * a write-back mount left in INSTANCE/staging/<uid>.err.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char status_usage[] =
	"usage: lamfs status INSTANCE [--json]\n"
	"\n"
	"Show whether the instance is mounted (and where; a mount whose daemon died\n"
	"is shown as dead, with the command that clears it), whether lamfs-repair is\n"
	"running, the records whose storage is still ongoing (pending uploads and\n"
	"interrupted saves) with their size and age, the staging files, and the\n"
	"last upload errors.\n"
	"\n"
	"      --json   the same as a JSON object\n"
	"  -h, --help   this help\n";

struct holder {
	long pid;
	int exclusive;
};

/* The command line of pid, space-separated, into buf ("" when unknown). */
static const char *proc_cmdline(long pid, char *buf, size_t len)
{
	char path[64];
	size_t n = 0, i;
	FILE *f;

	buf[0] = '\0';
	if (pid <= 0)
		return buf;
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
	f = fopen(path, "re");
	if (!f)
		return buf;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\0')
		n--;
	for (i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	return buf;
}

/* A holder that is `lamfs save` (which also holds the lock shared), not a mount. */
static int is_save(const char *cmdline)
{
	const char *sp = strchr(cmdline, ' ');

	return sp && !strncmp(sp + 1, "save ", 5);
}

struct status {
	struct json_object *j;        /* the report, built first, printed after */
	struct holder holders[64];
	unsigned nholders;
	int lock_known;               /* holders could be determined */
};

/* Holders of the flock on path, from /proc/locks; -1 when unknown. */
static int lock_holders(const char *path, struct status *s)
{
	char line[512], type[16], rw[16], adv[16];
	unsigned maj, min;
	unsigned long long ino;
	struct stat st;
	long pid;
	FILE *f;
	int fd;

	if (stat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;   /* never mounted: no lock file */
	f = fopen("/proc/locks", "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			/* "1: FLOCK  ADVISORY  READ 1234 08:01:5678 0 EOF"; waiters
			 * have "->" after the number and hold nothing. */
			if (strstr(line, "->"))
				continue;
			if (sscanf(line, "%*[^:]: %15s %15s %15s %ld %x:%x:%llu", type, adv, rw,
				   &pid, &maj, &min, &ino) != 7)
				continue;
			if (strcmp(type, "FLOCK") || ino != (unsigned long long)st.st_ino ||
			    maj != major(st.st_dev) || min != minor(st.st_dev))
				continue;
			if (s->nholders < sizeof(s->holders) / sizeof(s->holders[0])) {
				s->holders[s->nholders].pid = pid;
				s->holders[s->nholders].exclusive = !strcmp(rw, "WRITE");
				s->nholders++;
			}
		}
		fclose(f);
		return 0;
	}
	/* No /proc/locks: ask the lock itself.  A shared probe disturbs no one
	 * and fails only beside an exclusive holder (lamfs-repair); shared
	 * holders (mounts) then show only through mountinfo.  An exclusive
	 * probe is never made: it could make a mount starting meanwhile fail. */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
		s->holders[s->nholders].pid = 0;
		s->holders[s->nholders++].exclusive = 1;
	} else {
		flock(fd, LOCK_UN);
	}
	close(fd);
	return -1;
}

#define PROBE_TIMEOUT_MS 5000

struct mounts_ctx {
	const char *dir;
	struct json_object *arr;
	unsigned live;
};

static int mount_cb(void *ctx, const struct cli_mountinfo *mi)
{
	struct mounts_ctx *mc = ctx;
	struct json_object *m;
	char *clear = NULL;
	const char *state;
	int p;

	if (strcmp(mi->fstype, "fuse.lamfs") || !cli_is_instance_source(mi->source, mc->dir))
		return 0;
	p = cli_mount_probe(mi->mountpoint, PROBE_TIMEOUT_MS);
	state = p == CLI_MOUNT_LIVE ? "live" : p == CLI_MOUNT_DEAD ? "dead"
		: p == CLI_MOUNT_HUNG ? "not responding" : "unknown";
	if (p == CLI_MOUNT_LIVE)
		mc->live++;
	if (p == CLI_MOUNT_DEAD && asprintf(&clear, "fusermount3 -u -z %s", mi->mountpoint) < 0)
		clear = NULL;
	m = json_object_new_object();
	json_object_object_add(m, "mountpoint", json_object_new_string(mi->mountpoint));
	json_object_object_add(m, "options", json_object_new_string(mi->options));
	json_object_object_add(m, "state", json_object_new_string(state));
	if (clear)
		json_object_object_add(m, "clear", json_object_new_string(clear));
	json_object_array_add(mc->arr, m);
	free(clear);
	return 0;
}

/* The mount points of this instance in our mount namespace, as a JSON array,
 * each with its state (live, dead, not responding); *live: how many live. */
static struct json_object *instance_mounts(const char *dir, unsigned *live)
{
	struct mounts_ctx mc = { dir, json_object_new_array(), 0 };

	if (mc.arr)
		cli_mountinfo_foreach(mount_cb, &mc);
	*live = mc.live;
	return mc.arr;
}

struct ongoing_ctx {
	struct json_object *arr;
	int64_t now_ns;
};

static int ongoing_cb(void *ctx, const struct lamfs_record *rec)
{
	struct ongoing_ctx *o = ctx;
	struct json_object *r = json_object_new_object();
	char t[48];

	json_object_object_add(r, "uid", json_object_new_string(rec->uid));
	json_object_object_add(r, "key", json_object_new_string(rec->key));
	json_object_object_add(r, "size", json_object_new_int64(rec->size));
	json_object_object_add(r, "created_at",
			       json_object_new_string(cli_time(rec->created_at, 1, t, sizeof(t))));
	json_object_object_add(r, "age_seconds",
			       json_object_new_int64((o->now_ns - rec->created_at) / 1000000000LL));
	json_object_array_add(o->arr, r);
	return 0;
}

/* Staging files and bytes, and the .err files, as parts of the report. */
static void staging_scan(const char *dir, struct json_object *report)
{
	struct json_object *errs = json_object_new_array();
	struct json_object *stg = json_object_new_object();
	int64_t files = 0, bytes = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	while (d && (de = readdir(d))) {
		char path[PATH_MAX], t[48];
		struct stat st;
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path) ||
		    lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (len > 4 && !strcmp(de->d_name + len - 4, ".err")) {
			struct json_object *e = json_object_new_object();
			char msg[1024] = "", uid[LAMFS_UID_LEN + 8];
			FILE *f = fopen(path, "re");
			size_t n = f ? fread(msg, 1, sizeof(msg) - 1, f) : 0;

			if (f)
				fclose(f);
			msg[n] = '\0';
			while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
				msg[--n] = '\0';
			snprintf(uid, sizeof(uid), "%.*s", (int)(len - 4), de->d_name);
			json_object_object_add(e, "uid", json_object_new_string(uid));
			json_object_object_add(e, "message", json_object_new_string(msg));
			json_object_object_add(e, "time", json_object_new_string(cli_time(
				(int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec, 1, t,
				sizeof(t))));
			json_object_array_add(errs, e);
			continue;
		}
		if (len > 4 && !strcmp(de->d_name + len - 4, ".tmp"))
			continue;
		files++;
		bytes += st.st_size;
	}
	if (d)
		closedir(d);
	json_object_object_add(stg, "dir", json_object_new_string(dir));
	json_object_object_add(stg, "files", json_object_new_int64(files));
	json_object_object_add(stg, "bytes", json_object_new_int64(bytes));
	json_object_object_add(report, "staging", stg);
	json_object_object_add(report, "errors", errs);
}

static const char *age_string(int64_t secs, char *buf, size_t len)
{
	if (secs < 120)
		snprintf(buf, len, "%llds", (long long)secs);
	else if (secs < 7200)
		snprintf(buf, len, "%lldm", (long long)(secs / 60));
	else if (secs < 172800)
		snprintf(buf, len, "%lldh", (long long)(secs / 3600));
	else
		snprintf(buf, len, "%lldd", (long long)(secs / 86400));
	return buf;
}

static struct json_object *get(struct json_object *o, const char *k)
{
	struct json_object *v = NULL;

	json_object_object_get_ex(o, k, &v);
	return v;
}

static void print_text(struct json_object *j)
{
	struct json_object *mounts = get(j, "mounts"), *holders = get(j, "lock_holders");
	struct json_object *ongoing = get(j, "storage_ongoing"), *stg = get(j, "staging");
	struct json_object *errs = get(j, "errors");
	size_t i, nm = json_object_array_length(mounts), nh = json_object_array_length(holders);
	char b[32], ek[CLI_ESC_KEY], em[ESCAPE_SIZE(2048)];

	printf("instance:        %s\n",
	       escape_str(json_object_get_string(get(j, "instance")), em, sizeof(em)));
	if (json_object_get_boolean(get(j, "repair_running")))
		printf("repair:          lamfs-repair is running on this instance\n");
	if (!json_object_get_boolean(get(j, "mounted"))) {
		printf("mounted:         no\n");
	} else {
		printf("mounted:         yes");
		if (nh) {
			int any = 0;

			for (i = 0; i < nh; i++) {
				struct json_object *h = json_object_array_get_idx(holders, i);
				long pid = (long)json_object_get_int64(get(h, "pid"));

				if (pid > 0 && !json_object_get_boolean(get(h, "exclusive")) &&
				    !is_save(json_object_get_string(get(h, "command"))))
					printf("%s%ld", any++ ? ", " : " (daemon pid ", pid);
			}
			if (any)
				printf(")");
		}
		if (!nm)
			printf(", not in this mount namespace");
		printf("\n");
	}
	for (i = 0; i < nm; i++) {
		struct json_object *m = json_object_array_get_idx(mounts, i);
		const char *st = json_object_get_string(get(m, "state"));

		escape_str(json_object_get_string(get(m, "mountpoint")), em, sizeof(em));
		if (!strcmp(st, "live"))
			printf("  on %s (%s)\n", em, json_object_get_string(get(m, "options")));
		else if (!strcmp(st, "dead"))
			printf("  dead: %s (its daemon is gone: Transport endpoint is not "
			       "connected; clear it with: fusermount3 -u -z %s, or mount again "
			       "there with lamfs mount)\n", em, em);
		else
			printf("  %s: %s\n", st, em);
	}
	printf("storage ongoing: %zu record%s\n", json_object_array_length(ongoing),
	       json_object_array_length(ongoing) == 1 ? "" : "s");
	for (i = 0; i < json_object_array_length(ongoing); i++) {
		struct json_object *r = json_object_array_get_idx(ongoing, i);

		printf("  %s  %12lld  %6s  %s\n", json_object_get_string(get(r, "uid")),
		       (long long)json_object_get_int64(get(r, "size")),
		       age_string(json_object_get_int64(get(r, "age_seconds")), b, sizeof(b)),
		       escape_str(json_object_get_string(get(r, "key")), ek, sizeof(ek)));
	}
	printf("staging:         %lld file%s, %lld bytes (%s)\n",
	       (long long)json_object_get_int64(get(stg, "files")),
	       json_object_get_int64(get(stg, "files")) == 1 ? "" : "s",
	       (long long)json_object_get_int64(get(stg, "bytes")),
	       json_object_get_string(get(stg, "dir")));
	printf("errors:          %zu\n", json_object_array_length(errs));
	for (i = 0; i < json_object_array_length(errs); i++) {
		struct json_object *e = json_object_array_get_idx(errs, i);

		printf("  %s  %s  %s\n", json_object_get_string(get(e, "uid")),
		       json_object_get_string(get(e, "time")),
		       escape_str(json_object_get_string(get(e, "message")), em, sizeof(em)));
	}
}

int cli_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct status s = { NULL, { { 0, 0 } }, 0, 0 };
	struct ongoing_ctx oc;
	struct json_object *holders, *mounts;
	struct timespec ts;
	struct core *c;
	char lock[PATH_MAX];
	int json = 0, ch, rc, shared = 0, repair = 0, status = CLI_FAIL;
	unsigned i, live = 0;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = 1;
			break;
		case 'h':
			return cli_usage(status_usage, CLI_OK);
		default:
			return cli_usage(status_usage, CLI_USAGE);
		}
	}
	if (argc - optind != 1) {
		cli_err("status", "expected INSTANCE");
		return cli_usage(status_usage, CLI_USAGE);
	}
	c = cli_open("status", argv[optind], CORE_READONLY);
	if (!c)
		return CLI_FAIL;
	s.j = json_object_new_object();
	json_object_object_add(s.j, "instance", json_object_new_string(core_instance_dir(c)));

	snprintf(lock, sizeof(lock), "%s/lamfs.lock", core_instance_dir(c));
	s.lock_known = lock_holders(lock, &s) == 0;
	holders = json_object_new_array();
	for (i = 0; i < s.nholders; i++) {
		struct json_object *h = json_object_new_object();
		char cmd[512];

		proc_cmdline(s.holders[i].pid, cmd, sizeof(cmd));
		json_object_object_add(h, "pid", json_object_new_int64(s.holders[i].pid));
		json_object_object_add(h, "exclusive", json_object_new_boolean(s.holders[i].exclusive));
		json_object_object_add(h, "command", json_object_new_string(cmd));
		json_object_array_add(holders, h);
		if (s.holders[i].exclusive)
			repair = 1;
		else if (!is_save(cmd))
			shared = 1;
	}
	mounts = instance_mounts(core_instance_dir(c), &live);
	/* A dead mount (its daemon gone) is listed, not counted as mounted. */
	json_object_object_add(s.j, "mounted", json_object_new_boolean(shared || live > 0));
	json_object_object_add(s.j, "mounts", mounts);
	json_object_object_add(s.j, "lock_holders", holders);
	json_object_object_add(s.j, "lock_known", json_object_new_boolean(s.lock_known));
	json_object_object_add(s.j, "repair_running", json_object_new_boolean(repair));

	clock_gettime(CLOCK_REALTIME, &ts);
	oc.arr = json_object_new_array();
	oc.now_ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	rc = meta_foreach(core_meta(c), META_FLAGGED_RECORDS, ongoing_cb, &oc);
	json_object_object_add(s.j, "storage_ongoing", oc.arr);
	if (rc < 0) {
		cli_err("status", "reading storage-ongoing records: %s", strerror(-rc));
		goto out;
	}
	staging_scan(core_staging_dir(c), s.j);

	if (json) {
		status = cli_json_print(s.j);
		s.j = NULL;
	} else {
		print_text(s.j);
		status = CLI_OK;
	}
	status = cli_finish_stdout("status", status);
out:
	json_object_put(s.j);
	core_close(c);
	return status;
}
