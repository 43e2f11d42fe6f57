/*
 * test_repair.c — repair_run() on real instances (local storage, SQLite),
 * with the broken states a crash leaves built by hand through the store, the
 * backend and the staging folder: what each pass reports, what it changes,
 * that a dry run changes nothing, and that a second run finds nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "instance_fixture.h"

#include "backend.h"
#include "core.h"
#include "hash.h"
#include "instance.h"
#include "key.h"
#include "log.h"
#include "meta.h"
#include "repair.h"

#define MAX_EVENTS 32

struct seen_event {
	enum repair_kind kind;
	enum repair_action action;
	int dry_run;
	char uid[LAMFS_UID_LEN + 1];
	char key[LAMFS_KEY_MAX + 1];
	char name[256];
};

struct fx {
	char dir[64];
	char inst[96];
	struct core *c;
	struct seen_event ev[MAX_EVENTS];
	size_t n;
	unsigned progress_calls;
};

/* ---- helpers ---- */

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	test_instance_make("test_repair", f->dir, sizeof(f->dir), f->inst, sizeof(f->inst), &f->c);
	assert_int_equal(core_lock(f->c, 1), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	core_close(f->c);
	test_tree_remove(f->dir);
	free(f);
	return 0;
}

static void on_event(void *ctx, const struct repair_event *ev)
{
	struct fx *f = ctx;
	struct seen_event *s;

	assert_true(f->n < MAX_EVENTS);
	s = &f->ev[f->n++];
	s->kind = ev->kind;
	s->action = ev->action;
	s->dry_run = ev->dry_run;
	snprintf(s->uid, sizeof(s->uid), "%s", ev->uid ? ev->uid : "");
	snprintf(s->key, sizeof(s->key), "%s", ev->key ? ev->key : "");
	snprintf(s->name, sizeof(s->name), "%s", ev->name ? ev->name : "");
}

static void on_progress(void *ctx, const struct repair_progress *p)
{
	struct fx *f = ctx;

	assert_non_null(p->pass);
	assert_true(p->items_total == 0 || p->items_done <= p->items_total);
	f->progress_calls++;
}

/* Run a repair, collecting its events; returns repair_status(). */
static int run(struct fx *f, unsigned flags, struct repair_summary *sum)
{
	struct repair_callbacks cb = { on_event, on_progress, f };

	f->n = 0;
	assert_int_equal(repair_run(f->c, flags, &cb, sum), 0);
	return repair_status(sum, flags);
}

/* The one event about uid (asserts there is exactly one). */
static const struct seen_event *event_of(struct fx *f, const char *uid)
{
	const struct seen_event *found = NULL;
	size_t i;

	for (i = 0; i < f->n; i++) {
		if (strcmp(f->ev[i].uid, uid) == 0) {
			assert_null(found);
			found = &f->ev[i];
		}
	}
	assert_non_null(found);
	return found;
}

static void write_file(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t len = strlen(content);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Commit content at key through the core (a whole save). */
static void commit(struct fx *f, const char *key, const char *content, struct lamfs_record *rec)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/src", f->dir);
	write_file(path, content);
	assert_int_equal(core_save_path(f->c, path, key, NULL, rec), 0);
}

/* Insert a flagged record for content at key, as a save interrupted after
 * its insert leaves it (no staging file, no object yet). */
static void flag(struct fx *f, const char *key, const char *content, struct lamfs_record *rec)
{
	char path[128];
	struct hash_result hr;
	enum meta_save_state st;
	int fd;

	snprintf(path, sizeof(path), "%s/src", f->dir);
	write_file(path, content);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(hash_fd(fd, &hr), 0);
	close(fd);
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->key, sizeof(rec->key), "%s", key);
	key_suffix(key, rec->suffix);
	rec->size = (int64_t)hr.size;
	memcpy(rec->hash, hr.hash, sizeof(rec->hash));
	memcpy(rec->hash_type, hr.hash_type, sizeof(rec->hash_type));
	memcpy(rec->checksum, hr.checksum, sizeof(rec->checksum));
	rec->branch_id = 1;
	rec->storage_id = 1;
	rec->mode = 0644;
	assert_int_equal(meta_save_begin(core_meta(f->c), rec, &st, 0), 0);
	assert_int_equal(st, META_SAVE_NEW);
	assert_int_equal(rec->storage_ongoing, 1);
}

static void stage(struct fx *f, const char *uid, const char *content)
{
	char path[4096];

	core_staging_path(f->c, uid, path, sizeof(path));
	write_file(path, content);
}

static void staging_path(struct fx *f, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", core_staging_dir(f->c), name);
}

/* Store content as obj directly through the backend. */
static void store(struct fx *f, const char *obj, const char *content)
{
	char path[128];
	struct backend_src src = { 0 };
	int consumed = 0;

	snprintf(path, sizeof(path), "%s/obj", f->dir);
	write_file(path, content);
	src.path = path;
	src.fd = open(path, O_RDONLY | O_CLOEXEC);
	src.size = strlen(content);
	assert_true(src.fd >= 0);
	assert_int_equal(backend_put(core_backend(f->c), obj, &src, &consumed), 0);
	close(src.fd);
}

static void obj_path(struct fx *f, const struct lamfs_record *rec, char *out, size_t len)
{
	char obj[LAMFS_OBJ_MAX];

	key_object(rec->uid, rec->suffix, obj, sizeof(obj));
	snprintf(out, len, "%s/storage/%s", f->inst, obj);
}

static int is_flagged(struct fx *f, const char *uid)
{
	struct lamfs_record rec;

	assert_int_equal(meta_get_uid(core_meta(f->c), uid, &rec), 0);
	return rec.storage_ongoing;
}

static void assert_latest(struct fx *f, const char *key, const char *uid)
{
	struct meta_entry *e = malloc(sizeof(*e));

	assert_non_null(e);
	assert_int_equal(meta_lookup(core_meta(f->c), key, e), 0);
	assert_int_equal(e->type, META_FILE);
	assert_string_equal(e->rec.uid, uid);
	free(e);
}

static void assert_clean(struct fx *f, unsigned flags)
{
	struct repair_summary sum;

	assert_int_equal(run(f, flags, &sum), 0);
	assert_int_equal(f->n, 0);
}

/* ---- tests ---- */

static void test_clean_instance(void **state)
{
	struct fx *f = *state;
	struct lamfs_record a, b;
	struct repair_summary sum;

	commit(f, "d/a.txt", "alpha\n", &a);
	commit(f, "d/b.fasta", ">seq1\nACGT\n", &b);
	assert_int_equal(run(f, REPAIR_EXCLUSIVE | REPAIR_VERIFY, &sum), 0);
	assert_int_equal(f->n, 0);
	assert_int_equal(sum.verified, 2);
	assert_int_equal(sum.verified_bytes, 6 + 11);
	assert_true(f->progress_calls > 0);
}

/* The three answers to a flagged record, in one run. */
static void test_flagged(void **state)
{
	struct fx *f = *state;
	struct lamfs_record v1, done, stored, lost;
	struct repair_summary sum;
	char obj[LAMFS_OBJ_MAX], path[4096];

	commit(f, "k/lost.txt", "version one\n", &v1);
	flag(f, "k/done.txt", "staged and complete\n", &done);
	stage(f, done.uid, "staged and complete\n");
	flag(f, "k/stored.txt", "already stored\n", &stored);
	key_object(stored.uid, stored.suffix, obj, sizeof(obj));
	store(f, obj, "already stored\n");
	flag(f, "k/lost.txt", "version two, never stored\n", &lost);
	stage(f, lost.uid, "version two, damaged");

	assert_int_equal(run(f, REPAIR_EXCLUSIVE, &sum), 1);
	assert_int_equal(f->n, 3);
	assert_int_equal(sum.flagged, 3);
	assert_int_equal(event_of(f, done.uid)->action, REPAIR_COMPLETED);
	assert_string_equal(event_of(f, done.uid)->key, "k/done.txt");
	assert_int_equal(event_of(f, stored.uid)->action, REPAIR_FLAG_CLEARED);
	assert_int_equal(event_of(f, lost.uid)->action, REPAIR_ROLLED_BACK);
	assert_int_equal(sum.completed, 1);
	assert_int_equal(sum.flags_cleared, 1);
	assert_int_equal(sum.rolled_back, 1);

	assert_int_equal(is_flagged(f, done.uid), 0);
	assert_latest(f, "k/done.txt", done.uid);
	obj_path(f, &done, path, sizeof(path));
	assert_true(exists(path));
	core_staging_path(f->c, done.uid, path, sizeof(path));
	assert_false(exists(path));
	assert_latest(f, "k/stored.txt", stored.uid);
	assert_int_equal(meta_get_uid(core_meta(f->c), lost.uid, &stored), -ENOENT);
	assert_latest(f, "k/lost.txt", v1.uid);
	core_staging_path(f->c, lost.uid, path, sizeof(path));
	assert_false(exists(path));

	assert_clean(f, REPAIR_EXCLUSIVE | REPAIR_VERIFY);
}

static void test_orphans_and_temporaries(void **state)
{
	struct fx *f = *state;
	struct lamfs_record keep;
	struct repair_summary sum;
	char path[4096];

	commit(f, "keep.csv", "a,b\n1,2\n", &keep);
	store(f, ".lamindb/ABCDEFGHIJKLMNOP0000.csv", "orphan");
	store(f, ".lamindb/ABCDEFGHIJKLMNOP0001", "orphan without suffix");
	store(f, ".lamindb/_is_initialized", "not a lamfs object");
	snprintf(path, sizeof(path), "%s/storage/.lamindb/.tmp.x.1234", f->inst);
	write_file(path, "half an upload");

	assert_int_equal(run(f, REPAIR_EXCLUSIVE, &sum), 1);
	assert_int_equal(sum.orphans, 2);
	assert_int_equal(sum.temporaries, 1);
	assert_int_equal(event_of(f, "ABCDEFGHIJKLMNOP0000")->kind, REPAIR_KIND_ORPHAN);
	assert_string_equal(event_of(f, "ABCDEFGHIJKLMNOP0001")->name,
			    ".lamindb/ABCDEFGHIJKLMNOP0001");
	assert_false(exists(path));
	snprintf(path, sizeof(path), "%s/storage/.lamindb/_is_initialized", f->inst);
	assert_true(exists(path));
	obj_path(f, &keep, path, sizeof(path));
	assert_true(exists(path));
	assert_clean(f, REPAIR_EXCLUSIVE | REPAIR_VERIFY);
}

static void test_staging(void **state)
{
	struct fx *f = *state;
	struct lamfs_record done, pending;
	struct repair_summary sum;
	char w[4096], stale[4096], err[4096 + 8], pend[4096];

	commit(f, "s.txt", "saved\n", &done);
	flag(f, "p.txt", "pending upload\n", &pending);
	stage(f, pending.uid, "pending upload\n");
	staging_path(f, "w.abc123", w, sizeof(w));
	write_file(w, "unsaved");
	staging_path(f, done.uid, stale, sizeof(stale));
	write_file(stale, "saved\n");
	snprintf(err, sizeof(err), "%s.err", stale);
	write_file(err, "last upload error");
	core_staging_path(f->c, pending.uid, pend, sizeof(pend));

	/* Without the lock: staging files are only reported. */
	assert_int_equal(run(f, REPAIR_DRY_RUN, &sum), 4);
	assert_int_equal(sum.kept, 3);
	assert_true(exists(w) && exists(stale) && exists(err) && exists(pend));
	assert_int_equal(is_flagged(f, pending.uid), 1);

	assert_int_equal(run(f, REPAIR_EXCLUSIVE, &sum), 1);
	assert_int_equal(sum.staging, 3);
	assert_int_equal(sum.completed, 1);
	assert_false(exists(w) || exists(stale) || exists(err) || exists(pend));
	assert_clean(f, REPAIR_EXCLUSIVE);
}

/* A writer that died between its flagged insert and naming its staging file
 * left the bytes in an anonymous w.* file: found by size and sha256 (not a
 * file of the same size with other bytes, not one a live writer locks), and
 * the save is completed from it; a dry run says so and changes nothing. */
static void test_anonymous_staged_copy(void **state)
{
	struct fx *f = *state;
	struct lamfs_record rec;
	struct repair_summary sum;
	char w[4096], other[4096], live[4096], path[4096], name[64] = "";
	int fd;

	flag(f, "a/x.txt", "bytes of an interrupted save\n", &rec);
	staging_path(f, "w.aaaaaa", other, sizeof(other));
	write_file(other, "bytes of an interrupted savX\n");
	staging_path(f, "w.bbbbbb", live, sizeof(live));
	write_file(live, "bytes of an interrupted save\n");
	fd = open(live, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);  /* as a live writer holds it */
	assert_int_equal(core_staged_adopt(f->c, &rec, 1, name, sizeof(name)), -ENOENT);
	staging_path(f, "w.cccccc", w, sizeof(w));
	write_file(w, "bytes of an interrupted save\n");
	assert_int_equal(core_staged_adopt(f->c, &rec, 1, name, sizeof(name)), 0);
	assert_string_equal(name, "w.cccccc");
	assert_true(exists(w));

	/* Dry: completed (would), two unsaved writes to remove, w.cccccc not one. */
	assert_int_equal(run(f, REPAIR_EXCLUSIVE | REPAIR_DRY_RUN, &sum), 4);
	assert_int_equal(f->n, 3);
	assert_int_equal(event_of(f, rec.uid)->action, REPAIR_COMPLETED);
	assert_int_equal(sum.staging, 2);
	assert_true(exists(w));
	assert_int_equal(is_flagged(f, rec.uid), 1);

	close(fd); /* the live writer is gone */
	assert_int_equal(run(f, REPAIR_EXCLUSIVE, &sum), 1);
	assert_int_equal(event_of(f, rec.uid)->action, REPAIR_COMPLETED);
	assert_int_equal(sum.completed, 1);
	assert_int_equal(sum.staging, 2); /* w.aaaaaa, and the copy not taken */
	assert_latest(f, "a/x.txt", rec.uid);
	obj_path(f, &rec, path, sizeof(path));
	assert_true(exists(path));
	assert_false(exists(w) || exists(other) || exists(live));
	assert_clean(f, REPAIR_EXCLUSIVE | REPAIR_VERIFY);
}

static void test_verify(void **state)
{
	struct fx *f = *state;
	struct lamfs_record gone, bad, good, flagged;
	struct repair_summary sum;
	char path[4096];

	commit(f, "gone.txt", "to be deleted\n", &gone);
	commit(f, "bad.txt", "to be changed\n", &bad);
	commit(f, "good.txt", "stays good\n", &good);
	flag(f, "flagged.txt", "flagged, skipped by verify\n", &flagged);
	stage(f, flagged.uid, "flagged, skipped by verify\n");
	obj_path(f, &gone, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	obj_path(f, &bad, path, sizeof(path));
	write_file(path, "to be chAnged\n");

	/* Dry run: the flagged record would be completed; verify reports. */
	assert_int_equal(run(f, REPAIR_EXCLUSIVE | REPAIR_VERIFY | REPAIR_DRY_RUN, &sum), 4);
	assert_int_equal(event_of(f, flagged.uid)->action, REPAIR_COMPLETED);
	assert_int_equal(event_of(f, flagged.uid)->dry_run, 1);
	assert_int_equal(is_flagged(f, flagged.uid), 1);
	assert_int_equal(event_of(f, gone.uid)->action, REPAIR_MISSING);
	assert_int_equal(event_of(f, bad.uid)->action, REPAIR_CORRUPT);
	assert_int_equal(event_of(f, bad.uid)->dry_run, 0);

	assert_int_equal(run(f, REPAIR_EXCLUSIVE | REPAIR_VERIFY, &sum), 4);
	assert_int_equal(sum.completed, 1);
	assert_int_equal(sum.missing, 1);
	assert_int_equal(sum.corrupt, 1);
	assert_int_equal(sum.verified, 2);     /* good.txt and the completed one */
	/* Never "fixed": the records stay. */
	assert_int_equal(meta_get_uid(core_meta(f->c), gone.uid, &gone), 0);
	assert_int_equal(meta_get_uid(core_meta(f->c), bad.uid, &bad), 0);
	assert_int_equal(run(f, REPAIR_EXCLUSIVE | REPAIR_VERIFY, &sum), 4);
	assert_int_equal(f->n, 2);
	/* Without --verify, nothing is read and nothing is wrong. */
	assert_clean(f, REPAIR_EXCLUSIVE);
}

static void test_dry_run_changes_nothing(void **state)
{
	struct fx *f = *state;
	struct lamfs_record v1, lost;
	struct repair_summary sum;
	char path[4096];

	commit(f, "x.txt", "one\n", &v1);
	flag(f, "x.txt", "two\n", &lost);
	store(f, ".lamindb/ABCDEFGHIJKLMNOP0000.txt", "orphan");
	staging_path(f, "w.zzzzzz", path, sizeof(path));
	write_file(path, "unsaved");

	assert_int_equal(run(f, REPAIR_EXCLUSIVE | REPAIR_DRY_RUN, &sum), 4);
	assert_int_equal(f->n, 3);
	assert_int_equal(event_of(f, lost.uid)->action, REPAIR_ROLLED_BACK);
	assert_int_equal(event_of(f, lost.uid)->dry_run, 1);
	assert_int_equal(is_flagged(f, lost.uid), 1);
	assert_true(exists(path));
	snprintf(path, sizeof(path), "%s/storage/.lamindb/ABCDEFGHIJKLMNOP0000.txt", f->inst);
	assert_true(exists(path));
	/* The same findings again, then the real thing. */
	assert_int_equal(run(f, REPAIR_EXCLUSIVE | REPAIR_DRY_RUN, &sum), 4);
	assert_int_equal(f->n, 3);
	assert_int_equal(run(f, REPAIR_EXCLUSIVE, &sum), 1);
	assert_latest(f, "x.txt", v1.uid);
	assert_clean(f, REPAIR_EXCLUSIVE | REPAIR_VERIFY);
}

static void test_status_and_names(void **state)
{
	struct repair_summary s = REPAIR_SUMMARY_INIT;

	(void)state;
	assert_int_equal(repair_status(&s, 0), 0);
	assert_int_equal(repair_status(&s, REPAIR_DRY_RUN), 0);
	s.kept = 2;
	assert_int_equal(repair_status(&s, 0), 0);
	s.orphans = 1;
	assert_int_equal(repair_status(&s, 0), 1);
	assert_int_equal(repair_status(&s, REPAIR_DRY_RUN), 4);
	s.corrupt = 1;
	assert_int_equal(repair_status(&s, 0), 4);
	assert_string_equal(repair_action_name(REPAIR_FLAG_CLEARED, 0), "flag-cleared");
	assert_string_equal(repair_action_name(REPAIR_ROLLED_BACK, 1), "would-roll-back");
	assert_string_equal(repair_action_name(REPAIR_MISSING, 1), "missing");
	assert_string_equal(repair_kind_name(REPAIR_KIND_TEMPORARY), "temporary");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_clean_instance, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flagged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_orphans_and_temporaries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_staging, setup, teardown),
		cmocka_unit_test_setup_teardown(test_anonymous_staged_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dry_run_changes_nothing, setup, teardown),
		cmocka_unit_test(test_status_and_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
