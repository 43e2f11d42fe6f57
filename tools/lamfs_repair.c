/*
 * lamfs_repair.c — lamfs-repair, the companion repair tool.
 *
 *   lamfs-repair INSTANCE [--dry-run] [--verify] [--register] [--json] [--force-unlocked]
 *
 * Opens the instance without mounting it, takes its lock exclusively (so no
 * mount of this machine runs beside it), then a repair lease in the metadata
 * store (core/lease.h: refused while any mount on any machine holds a live
 * lease; mounts cannot start while it is held) and runs repair_run() (core/repair.h): flagged records
 * completed or rolled back, orphan objects, interrupted uploads and staging
 * leftovers removed, and with --verify every stored object checked against
 * its record.  This file only presents what the core finds: one line per
 * finding and a summary on stdout (or one JSON document with --json), a
 * progress bar on stderr when stderr is a terminal.
 *
 * Exit status, as fsck's: 0 clean, 1 repaired, 4 problems left (missing or
 * corrupt objects, failed actions; on a dry run anything to repair),
 * 8 operational error (not an instance, mounted, store or storage failing),
 * 16 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core.h"
#include "escape.h"
#include "lease.h"
#include "log.h"
#include "repair.h"

#define EXIT_CLEAN 0
#define EXIT_REPAIRED 1
#define EXIT_PROBLEMS 4
#define EXIT_OPERATIONAL 8
#define EXIT_USAGE 16

#define PROGRESS_INTERVAL_NS 100000000LL   /* redraw the bar at most 10 times a second */
#define BAR_WIDTH 24

static const char usage_text[] =
	"usage: lamfs-repair INSTANCE [--dry-run] [--verify] [--register] [--json]\n"
	"                    [--force-unlocked]\n"
	"\n"
	"Bring a lamfs instance back to a clean state after a crash: finish or roll\n"
	"back interrupted saves, remove orphan objects, interrupted uploads and\n"
	"staging leftovers.  The instance must not be mounted, on this machine or on\n"
	"any other that shares its metadata store (their leases say so).\n"
	"\n"
	"  -n, --dry-run         change nothing; report what would be done\n"
	"      --verify          also re-read every stored object and check its size,\n"
	"                        hash and checksum against its record\n"
	"      --register        in an instance restored from a backup (lamfs init\n"
	"                        --from-backup): save the objects saved after the\n"
	"                        backup again at their keys (without it they are\n"
	"                        listed, never removed)\n"
	"      --json            print one JSON report on stdout\n"
	"      --force-unlocked  run although the instance lock or a live lease is held\n"
	"                        (the mount holding it is known to be gone); staging\n"
	"                        files and interrupted uploads are then left alone\n"
	"  -h, --help            show this help\n"
	"\n"
	"Exit status: 0 clean, 1 repaired, 4 problems left, 8 operational error,\n"
	"16 usage error.\n";

struct report {
	int json;
	int dry_run;
	json_object *actions;        /* --json: the findings */
	/* progress bar */
	int bar;                     /* stderr is a terminal */
	int bar_shown;               /* a bar line is on the screen */
	long long bar_last_ns;
	const char *bar_pass;
};

/* ---------------------------------------------------------------- progress */

static long long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* "12.3 MiB" */
static const char *human_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)n;
	unsigned u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

static void bar_clear(struct report *rp)
{
	if (rp->bar_shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		rp->bar_shown = 0;
	}
}

static void on_progress(void *ctx, const struct repair_progress *p)
{
	struct report *rp = ctx;
	char done[32], total[32], bar[BAR_WIDTH + 1];
	long long now;
	double frac;
	int i, fill;

	if (!rp->bar)
		return;
	now = mono_ns();
	/* Draw at the start of a pass, at its end, and otherwise now and then. */
	if (p->pass == rp->bar_pass && now - rp->bar_last_ns < PROGRESS_INTERVAL_NS &&
	    p->items_done != p->items_total)
		return;
	rp->bar_pass = p->pass;
	rp->bar_last_ns = now;
	if (p->bytes_total)
		frac = (double)p->bytes_done / (double)p->bytes_total;
	else if (p->items_total)
		frac = (double)p->items_done / (double)p->items_total;
	else
		frac = 1;
	if (frac > 1)
		frac = 1;
	fill = (int)(frac * BAR_WIDTH);
	for (i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < fill ? '#' : '-';
	bar[BAR_WIDTH] = '\0';
	fprintf(stderr, "\r\033[K%-8s [%s] %llu/%llu", p->pass, bar,
		(unsigned long long)p->items_done, (unsigned long long)p->items_total);
	if (p->bytes_total)
		fprintf(stderr, "  %s/%s", human_bytes(p->bytes_done, done, sizeof(done)),
			human_bytes(p->bytes_total, total, sizeof(total)));
	fflush(stderr);
	rp->bar_shown = 1;
}

/* ---------------------------------------------------------------- findings */

static json_object *json_str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static void on_event(void *ctx, const struct repair_event *ev)
{
	struct report *rp = ctx;
	const char *action = repair_action_name(ev->action, ev->dry_run);
	char esc[ESCAPE_SIZE(2048)];
	json_object *o;

	if (rp->json) {
		o = json_object_new_object();
		json_object_object_add(o, "kind", json_object_new_string(repair_kind_name(ev->kind)));
		json_object_object_add(o, "key", json_str_or_null(ev->key));
		json_object_object_add(o, "uid", json_str_or_null(ev->uid));
		json_object_object_add(o, "name", json_str_or_null(ev->name));
		json_object_object_add(o, "action", json_object_new_string(action));
		json_object_object_add(o, "detail", json_str_or_null(ev->detail));
		if (ev->err)
			json_object_object_add(o, "error", json_object_new_string(strerror(-ev->err)));
		json_object_array_add(rp->actions, o);
		return;
	}
	bar_clear(rp);
	/* keys and names escaped: a hostile name must not forge a line */
	printf("%-9s %-16s %s", repair_kind_name(ev->kind), action,
	       escape_str(ev->key ? ev->key : ev->name ? ev->name : "-", esc, sizeof(esc)));
	if (ev->uid && ev->key)
		printf(" (%s)", ev->uid);
	if (ev->detail)
		printf(": %s", escape_str(ev->detail, esc, sizeof(esc)));
	putchar('\n');
	fflush(stdout);
}

/* ---------------------------------------------------------------- summary */

/* Append ", <n> <what>" to buf when n is not 0. */
static void part(char *buf, size_t len, unsigned n, const char *what)
{
	size_t used = strlen(buf);

	if (n != 0 && used < len)
		snprintf(buf + used, len - used, "%s%u %s", used ? ", " : "", n, what);
}

static void summary_line(const char *instance, const struct repair_summary *s, int dry_run,
			 int verify, int status)
{
	char parts[1024] = "", bytes[32];

	if (dry_run) {
		part(parts, sizeof(parts), s->completed, "upload(s) to complete");
		part(parts, sizeof(parts), s->flags_cleared, "flag(s) to clear");
		part(parts, sizeof(parts), s->rolled_back, "save(s) to roll back");
		part(parts, sizeof(parts), s->orphans, "orphan object(s) to remove");
		part(parts, sizeof(parts), s->temporaries, "interrupted upload(s) to remove");
		part(parts, sizeof(parts), s->staging, "staging file(s) to remove");
		part(parts, sizeof(parts), s->registered, "object(s) saved after the backup to "
			"register");
	} else {
		part(parts, sizeof(parts), s->completed, "upload(s) completed");
		part(parts, sizeof(parts), s->flags_cleared, "flag(s) cleared");
		part(parts, sizeof(parts), s->rolled_back, "save(s) rolled back");
		part(parts, sizeof(parts), s->orphans, "orphan object(s) removed");
		part(parts, sizeof(parts), s->temporaries, "interrupted upload(s) removed");
		part(parts, sizeof(parts), s->staging, "staging file(s) removed");
		part(parts, sizeof(parts), s->registered, "object(s) saved after the backup "
			"registered");
	}
	part(parts, sizeof(parts), s->after_backup, "object(s) saved after the backup, not "
		"registered (--register registers them)");
	part(parts, sizeof(parts), s->leases, dry_run ? "stale lease(s) to remove"
						    : "stale lease(s) removed");
	part(parts, sizeof(parts), s->kept, "staging file(s)/upload(s) kept (lock not held)");
	part(parts, sizeof(parts), s->missing, "object(s) missing");
	part(parts, sizeof(parts), s->corrupt, "object(s) corrupt");
	part(parts, sizeof(parts), s->failed, "action(s) failed");
	if (verify) {
		size_t used = strlen(parts);

		/* shown even when 0: "verified nothing" is worth saying */
		snprintf(parts + used, sizeof(parts) - used, "%s%u object(s) verified (%s)",
			 used ? ", " : "", s->verified,
			 human_bytes(s->verified_bytes, bytes, sizeof(bytes)));
	}
	if (status == EXIT_CLEAN)
		printf("%s: clean%s%s (exit %d)\n", instance, parts[0] ? "; " : "", parts, status);
	else if (dry_run)
		printf("%s: dry run, nothing changed; %s (exit %d)\n", instance, parts, status);
	else
		printf("%s: %s (exit %d)\n", instance, parts, status);
}

static json_object *summary_json(const struct repair_summary *s)
{
	json_object *o = json_object_new_object();

#define ADD(name, v) json_object_object_add(o, name, json_object_new_int64((int64_t)(v)))
	ADD("flagged", s->flagged);
	ADD("completed", s->completed);
	ADD("flags_cleared", s->flags_cleared);
	ADD("rolled_back", s->rolled_back);
	ADD("orphans", s->orphans);
	ADD("temporaries", s->temporaries);
	ADD("staging", s->staging);
	ADD("kept", s->kept);
	ADD("verified", s->verified);
	ADD("verified_bytes", s->verified_bytes);
	ADD("missing", s->missing);
	ADD("corrupt", s->corrupt);
	ADD("failed", s->failed);
	ADD("leases", s->leases);
	ADD("after_backup", s->after_backup);
	ADD("registered", s->registered);
#undef ADD
	return o;
}

/* ------------------------------------------------------------------- leases */

struct live_ctx {
	struct core *c;
	struct meta_lease *found;
	int n;
};

static int live_cb(void *ctx, const struct meta_lease *l)
{
	struct live_ctx *lc = ctx;

	if (l->remaining_ms > 0 && !lease_dead_here(l, core_instance_dir(lc->c))) {
		*lc->found = *l;   /* the list is soonest first: the last one wins */
		lc->n++;
	}
	return 0;
}

/* A dry run writes nothing, so it takes no lease; it still refuses beside a
 * live one, as a repair would: -EBUSY and *blocker, else 0. */
static int live_lease(struct core *c, struct meta_lease *blocker)
{
	struct live_ctx lc = { c, blocker, 0 };
	int rc;

	memset(blocker, 0, sizeof(*blocker));
	rc = meta_lease_list(core_meta(c), live_cb, &lc);
	if (rc == 0 && lc.n)
		rc = -EBUSY;
	return rc;
}

/* A usage error with --json on the command line: the JSON report is an
 * object with error, as for every other failure.  Returns EXIT_USAGE. */
static int usage_json(int argc, char **argv, const char *msg)
{
	json_object *o;
	int i, json = 0;

	for (i = 1; i < argc && strcmp(argv[i], "--"); i++)
		json |= !strcmp(argv[i], "--json");
	if (json && (o = json_object_new_object())) {
		json_object_object_add(o, "error", json_object_new_string(msg));
		json_object_object_add(o, "exit", json_object_new_int(EXIT_USAGE));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	}
	return EXIT_USAGE;
}

/* ------------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "verify", no_argument, NULL, 'V' },
		{ "json", no_argument, NULL, 'j' },
		{ "force-unlocked", no_argument, NULL, 'F' },
		{ "register", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct repair_summary sum = REPAIR_SUMMARY_INIT;
	struct report rp = { 0 };
	struct repair_callbacks cb = { on_event, on_progress, &rp };
	struct meta_lease blocker;
	struct lease *lease = NULL;
	struct core *c = NULL;
	char who[700];
	const char *instance;
	char *err = NULL, *opmsg = NULL;
	int verify = 0, force = 0, status = EXIT_CLEAN;
	unsigned flags = 0;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "nh", opts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			rp.dry_run = 1;
			break;
		case 'V':
			verify = 1;
			break;
		case 'j':
			rp.json = 1;
			break;
		case 'F':
			force = 1;
			break;
		case 'R':
			flags |= REPAIR_REGISTER;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return EXIT_CLEAN;
		default:
			fputs(usage_text, stderr);
			return usage_json(argc, argv, "usage error (--help shows every option)");
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "lamfs-repair: expected one INSTANCE directory (--help for usage)\n");
		return usage_json(argc, argv, "expected one INSTANCE directory");
	}
	instance = argv[optind];
	/* The core logs to stderr; its routine notes would only repeat our report. */
	log_set_level(LL_WARN);
	rp.bar = isatty(STDERR_FILENO);
	if (rp.json)
		rp.actions = json_object_new_array();

	rc = core_open(instance, rp.dry_run ? CORE_READONLY : 0, &c, &err);
	if (rc < 0) {
		if (asprintf(&opmsg, "%s", err ? err : strerror(-rc)) < 0)
			opmsg = NULL;
		status = EXIT_OPERATIONAL;
		goto report;
	}
	instance = core_instance_dir(c);
	rc = core_lock(c, 1);
	if (rc == 0) {
		flags |= REPAIR_EXCLUSIVE;
	} else if (rc == -EBUSY && force) {
		fprintf(stderr, "lamfs-repair: %s: the instance lock is held, going on as told "
				"(--force-unlocked); staging files and interrupted uploads are left "
				"alone\n", instance);
	} else {
		int n = rc == -EBUSY
			? asprintf(&opmsg, "%s is mounted or in use (%s/lamfs.lock is held); "
				   "unmount it first, or pass --force-unlocked if that mount is "
				   "gone", instance, instance)
			: asprintf(&opmsg, "%s: cannot lock %s/lamfs.lock: %s", instance,
				   instance, strerror(-rc));

		if (n < 0)
			opmsg = NULL;
		status = EXIT_OPERATIONAL;
		goto report;
	}
	/* The lock sees this machine only; the store's leases see every machine
	 * that mounts the instance (and keep mounts from starting meanwhile). */
	rc = rp.dry_run ? live_lease(c, &blocker)
			: lease_start(c, META_LEASE_REPAIR, NULL, 0, &lease, &blocker);
	if (rc == -EBUSY && force) {
		lease_describe(&blocker, who, sizeof(who));
		fprintf(stderr, "lamfs-repair: %s: in use by %s; going on as told "
				"(--force-unlocked)\n", instance, who);
		rc = rp.dry_run ? 0 : lease_start(c, META_LEASE_REPAIR, NULL, META_LEASE_FORCE,
						  &lease, &blocker);
	}
	if (rc < 0) {
		int n;

		lease_describe(&blocker, who, sizeof(who));
		n = rc == -EBUSY
			? asprintf(&opmsg, "%s is in use by %s; unmount it, or wait until its "
				   "lease expires if that machine is gone, or pass "
				   "--force-unlocked", instance, who)
			: asprintf(&opmsg, "%s: cannot take the instance's repair lease in its "
				   "metadata store: %s", instance, strerror(-rc));
		if (n < 0)
			opmsg = NULL;
		status = EXIT_OPERATIONAL;
		goto report;
	}
	if (rp.dry_run)
		flags |= REPAIR_DRY_RUN;
	if (verify)
		flags |= REPAIR_VERIFY;
	rc = repair_run(c, flags, &cb, &sum);
	bar_clear(&rp);
	if (rc < 0) {
		if (asprintf(&opmsg, "%s: repair stopped: %s", instance, strerror(-rc)) < 0)
			opmsg = NULL;
		status = EXIT_OPERATIONAL;
	} else {
		status = repair_status(&sum, flags);
	}

report:
	bar_clear(&rp);
	if (opmsg)
		fprintf(stderr, "lamfs-repair: %s\n", opmsg);
	if (rp.json) {
		json_object *top = json_object_new_object();

		json_object_object_add(top, "instance", json_object_new_string(instance));
		json_object_object_add(top, "dry_run", json_object_new_boolean(rp.dry_run));
		json_object_object_add(top, "verify", json_object_new_boolean(verify));
		json_object_object_add(top, "actions", rp.actions);
		json_object_object_add(top, "summary", summary_json(&sum));
		if (opmsg)
			json_object_object_add(top, "error", json_object_new_string(opmsg));
		json_object_object_add(top, "exit", json_object_new_int(status));
		puts(json_object_to_json_string_ext(top, JSON_C_TO_STRING_PRETTY |
							 JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(top);
	} else if (status != EXIT_OPERATIONAL) {
		summary_line(instance, &sum, rp.dry_run, verify, status);
	}
	if (fflush(stdout) != 0 && status != EXIT_OPERATIONAL)
		status = EXIT_OPERATIONAL;
	free(opmsg);
	free(err);
	lease_stop(lease);
	core_close(c);
	return status;
}
