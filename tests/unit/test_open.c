/*
 * test_open.c — the open-file table (core/open.h) on a real instance (SQLite,
 * local storage) whose backend is wrapped by a counter: when each rule saves,
 * what it stores (records, objects, put calls), and what it refuses.
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "instance_fixture.h"

#include "backend.h"
#include "core.h"
#include "core_internal.h"
#include "instance.h"
#include "log.h"
#include "open.h"
#include "upq.h"

/* ---- a backend that counts calls and can refuse uploads ---- */

struct counting {
	struct backend base;
	struct backend *inner;
	int puts, opens, removes;
	int fail_put;                /* -errno for every put, or 0 */
};

static struct counting *counting_of(struct backend *b)
{
	return (struct counting *)b;
}

static int cnt_put(struct backend *b, const char *obj, const struct backend_src *src,
		   int *consumed)
{
	struct counting *k = counting_of(b);

	k->puts++;
	if (k->fail_put)
		return k->fail_put;
	return k->inner->ops->put(k->inner, obj, src, consumed);
}

/* A reader of the inner backend inside one of ours (the wrappers set the
 * base's backend to the one they called). */
struct cnt_reader {
	struct backend_reader base;
	struct backend_reader *in;
};

static int cnt_reader_open(struct backend *b, const char *obj, struct backend_reader **out,
			   uint64_t *size)
{
	struct counting *k = counting_of(b);
	struct cnt_reader *r = calloc(1, sizeof(*r));
	int rc;

	k->opens++;
	if (!r)
		return -ENOMEM;
	rc = k->inner->ops->reader_open(k->inner, obj, &r->in, size);
	if (rc < 0) {
		free(r);
		return rc;
	}
	r->in->b = k->inner;
	*out = &r->base;
	return 0;
}

static int cnt_reader_pread(struct backend_reader *r, void *buf, size_t len, uint64_t off,
			    size_t *got)
{
	struct backend_reader *in = ((struct cnt_reader *)r)->in;

	return in->b->ops->reader_pread(in, buf, len, off, got);
}

static void cnt_reader_close(struct backend_reader *r)
{
	struct backend_reader *in = ((struct cnt_reader *)r)->in;

	in->b->ops->reader_close(in);
	free(r);
}

static int cnt_remove(struct backend *b, const char *obj)
{
	struct counting *k = counting_of(b);

	k->removes++;
	return k->inner->ops->remove(k->inner, obj);
}

static int cnt_stat(struct backend *b, const char *obj, uint64_t *size)
{
	return counting_of(b)->inner->ops->stat(counting_of(b)->inner, obj, size);
}

static int cnt_list(struct backend *b, const char *prefix, backend_list_cb cb, void *ctx)
{
	return counting_of(b)->inner->ops->list(counting_of(b)->inner, prefix, cb, ctx);
}

static void cnt_free(struct backend *b)
{
	backend_free(counting_of(b)->inner);
	free(b);
}

static const struct backend_ops counting_ops = {
	.version = BACKEND_OPS_VERSION,
	.name = "counting",
	.put = cnt_put,
	.reader_open = cnt_reader_open,
	.reader_pread = cnt_reader_pread,
	.reader_close = cnt_reader_close,
	.remove = cnt_remove,
	.stat = cnt_stat,
	.list = cnt_list,
	.free = cnt_free,
};

/* ---- fixture ---- */

struct fx {
	char dir[64];
	char inst[96];
	struct core *c;
	struct counting *k;
	struct core_files *t;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	test_instance_make("test_open", f->dir, sizeof(f->dir), f->inst, sizeof(f->inst), &f->c);
	f->k = calloc(1, sizeof(*f->k));
	assert_non_null(f->k);
	f->k->base.ops = &counting_ops;
	f->k->inner = f->c->backend;
	f->c->backend = &f->k->base;
	assert_int_equal(core_files_new(f->c, NULL, &f->t), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	core_files_free(f->t);
	core_close(f->c);
	test_tree_remove(f->dir);
	free(f);
	return 0;
}

static const struct core_attrs attrs644 = { 0644, 1000, 1000, 0 };

/* Open key for writing (flags), write s at 0 unless NULL. */
static struct core_file *writer(struct fx *f, const char *key, unsigned flags, const char *s)
{
	struct core_file *w = NULL;

	assert_int_equal(core_file_open_write(f->t, key, flags, &attrs644, 42, &w), 0);
	assert_true(core_file_is_writer(w));
	if (s)
		assert_int_equal(core_file_write(w, s, strlen(s), 0), (ssize_t)strlen(s));
	return w;
}

/* The committed bytes of key as a string ("" and -errno in *rc when none). */
static char *committed(struct fx *f, const char *key, int *rc)
{
	static char buf[256];
	struct core_file *r = NULL;
	ssize_t n = 0;

	buf[0] = '\0';
	*rc = core_file_open_read(f->t, key, &r);
	if (*rc == 0) {
		n = core_file_read(r, buf, sizeof(buf) - 1, 0);
		assert_true(n >= 0);
		buf[n] = '\0';
		core_file_release(r, NULL);
	}
	return buf;
}

static void assert_committed(struct fx *f, const char *key, const char *want)
{
	int rc;
	char *got = committed(f, key, &rc);

	assert_int_equal(rc, 0);
	assert_string_equal(got, want);
}

static void assert_absent(struct fx *f, const char *key)
{
	struct meta_entry e;

	assert_int_equal(core_lookup(f->c, key, &e), -ENOENT);
}

/* ---- the save rules ---- */

/* A written file saves at close, once; release saves nothing more. */
static void test_close_saves_once(void **state)
{
	struct fx *f = *state;
	struct core_file *w = writer(f, "a.txt", CORE_FILE_TRUNC, "hello");
	struct core_file_done d;

	assert_int_equal(core_file_flush(w, &d), 0);
	assert_true(d.saved && d.writer && !d.uploading);
	assert_string_equal(d.key, "a.txt");
	assert_int_equal(f->k->puts, 1);
	assert_committed(f, "a.txt", "hello");
	assert_int_equal(core_file_release(w, &d), 0);
	assert_int_equal(f->k->puts, 1);
}

/* Created and closed without a write (a shell's `>` before its command
 * writes): nothing at close, the empty version at release. */
static void test_created_saved_at_release(void **state)
{
	struct fx *f = *state;
	struct core_file *w = writer(f, "empty", CORE_FILE_TRUNC, NULL);
	struct core_file_done d;

	assert_int_equal(core_file_flush(w, &d), 0);
	assert_false(d.saved);
	assert_absent(f, "empty");
	assert_int_equal(core_file_release(w, &d), 0);
	assert_int_equal(f->k->puts, 1);
	assert_committed(f, "empty", "");
}

/* A truncate-only file released after another save of its name is dropped:
 * the newer save stays latest. */
static void test_release_superseded_dropped(void **state)
{
	struct fx *f = *state;
	struct core_file *old, *w;

	w = writer(f, "s", CORE_FILE_TRUNC, "v1");
	assert_int_equal(core_file_release(w, NULL), 0);
	old = writer(f, "s", CORE_FILE_TRUNC, NULL);   /* `: > s`, closed, not released */
	assert_int_equal(core_file_flush(old, NULL), 0);
	w = writer(f, "s", CORE_FILE_TRUNC, "v2");     /* waits out at most SETTLE_MS */
	assert_int_equal(core_file_release(w, NULL), 0);
	assert_int_equal(core_file_release(old, NULL), 0);
	assert_committed(f, "s", "v2");
	assert_int_equal(f->k->puts, 2);
}

/* fsync saves; a close after it with nothing new saves nothing again. */
static void test_fsync_saves(void **state)
{
	struct fx *f = *state;
	struct core_file *w = writer(f, "f", CORE_FILE_TRUNC, "data");

	assert_int_equal(core_file_fsync(w, NULL), 0);
	assert_int_equal(f->k->puts, 1);
	assert_committed(f, "f", "data");
	assert_int_equal(core_file_release(w, NULL), 0);
	assert_int_equal(f->k->puts, 1);
}

/* An upload refused: close returns the errno, nothing is stored, and release
 * does not try again. */
static void test_save_error_leaves_nothing(void **state)
{
	struct fx *f = *state;
	struct core_file *w = writer(f, "denied", CORE_FILE_TRUNC, "secret");
	struct core_file_done d;

	f->k->fail_put = -EACCES;
	assert_int_equal(core_file_flush(w, &d), -EACCES);
	assert_true(d.saved);
	assert_string_equal(d.key, "denied");
	assert_absent(f, "denied");
	assert_int_equal(core_file_release(w, NULL), 0);
	assert_int_equal(f->k->puts, 1);
	assert_absent(f, "denied");
}

/* A failed write poisons the file: flush reports it and nothing is saved. */
static void test_poisoned_never_saved(void **state)
{
	struct fx *f = *state;
	struct core_file *w = writer(f, "p", CORE_FILE_TRUNC, "x");

	assert_int_equal(core_file_truncate(w, UINT64_MAX), -EINVAL);
	assert_int_equal(core_file_write(w, "y", 1, 1), -EINVAL);
	assert_int_equal(core_file_flush(w, NULL), -EINVAL);
	assert_int_equal(core_file_release(w, NULL), 0);
	assert_int_equal(f->k->puts, 0);
	assert_absent(f, "p");
}

/* ---- readers ---- */

/* A reader keeps the version it opened while a writer saves a new one. */
static void test_reader_keeps_its_version(void **state)
{
	struct fx *f = *state;
	struct core_file *w = writer(f, "v", CORE_FILE_TRUNC, "old!");
	struct core_file *r = NULL;
	char buf[8] = { 0 };

	assert_int_equal(core_file_release(w, NULL), 0);
	assert_int_equal(core_file_open_read(f->t, "v", &r), 0);
	assert_false(core_file_is_writer(r));
	w = writer(f, "v", 0, "new");                 /* over the old bytes: "new!" */
	assert_int_equal(core_file_write(r, "x", 1, 0), -EBADF);
	assert_int_equal(core_file_read(r, buf, sizeof(buf), 0), 4);
	assert_string_equal(buf, "old!");             /* not the writer's bytes */
	assert_int_equal(core_file_release(w, NULL), 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(core_file_read(r, buf, sizeof(buf), 0), 4);
	assert_string_equal(buf, "old!");             /* nor the new version */
	core_file_release(r, NULL);
	assert_committed(f, "v", "new!");
}

/* A name with no committed version yet: this mount reads its own writer. */
static void test_reader_shares_unsaved_writer(void **state)
{
	struct fx *f = *state;
	struct core_file *w = writer(f, "new", CORE_FILE_TRUNC, "draft");
	struct core_file *r = NULL;
	struct lamfs_record a;
	char buf[8] = { 0 };

	assert_int_equal(core_file_open_read(f->t, "new", &r), 0);
	assert_int_equal(core_file_read(r, buf, sizeof(buf), 0), 5);
	assert_string_equal(buf, "draft");
	core_file_attr(r, &a);
	assert_int_equal(a.size, 5);
	assert_int_equal(a.mode, 0644);
	assert_int_equal(core_files_writer_attr(f->t, "new", &a), 1);
	assert_int_equal(a.size, 5);
	core_file_release(r, NULL);
	assert_int_equal(core_file_release(w, NULL), 0);
	assert_int_equal(core_files_writer_attr(f->t, "new", &a), 0);
}

/* ---- names ---- */

/* Removed while open: the writer keeps working, and nothing is saved. */
static void test_unlink_discards_writer(void **state)
{
	struct fx *f = *state;
	struct core_file *w = writer(f, "gone", CORE_FILE_TRUNC, "abc");
	char buf[4] = { 0 };

	assert_int_equal(core_files_unlink(f->t, "gone"), 0); /* only the unsaved file had it */
	assert_int_equal(core_file_write(w, "d", 1, 3), 1);
	assert_int_equal(core_file_read(w, buf, 4, 0), 4);
	assert_memory_equal(buf, "abcd", 4);
	assert_int_equal(core_file_flush(w, NULL), 0);
	assert_int_equal(core_file_release(w, NULL), 0);
	assert_int_equal(f->k->puts, 0);
	assert_absent(f, "gone");
	assert_int_equal(core_files_unlink(f->t, "gone"), -ENOENT);
}

/* A writer moves with its name (and with its folder's). */
static void test_rename_moves_writer(void **state)
{
	struct fx *f = *state;
	struct core_attrs d = { 0755, 1000, 1000, 0 };
	struct core_file *w = writer(f, "dir/a", CORE_FILE_TRUNC, "moved");
	char (*names)[LAMFS_NAME_MAX + 1] = NULL;
	size_t n = 0;

	assert_int_equal(core_mkdir(f->c, "dir", &d), 0);
	assert_int_equal(core_files_rename(f->t, "dir/a", "dir/b", 0), 0);
	assert_int_equal(core_files_live_names(f->t, "dir", &names, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "b");
	free(names);
	assert_int_equal(core_files_rmdir(f->t, "dir"), -ENOTEMPTY);
	assert_int_equal(core_files_rename(f->t, "dir", "top", 0), 0);
	assert_true(core_files_has_writer(f->t, "top/b"));
	assert_int_equal(core_file_release(w, NULL), 0);
	assert_committed(f, "top/b", "moved");
	assert_absent(f, "dir/a");
}

/* chmod of a name being written: the save records it. */
static void test_setattr_reaches_writer(void **state)
{
	struct fx *f = *state;
	struct core_file *w = writer(f, "m", CORE_FILE_TRUNC, "x");
	struct meta_attr a = { .mode = 0600 };
	struct meta_entry e;

	assert_int_equal(core_files_setattr(f->t, NULL, "m", META_ATTR_MODE, &a), 0);
	assert_int_equal(core_file_release(w, NULL), 0);
	assert_int_equal(core_lookup(f->c, "m", &e), 0);
	assert_int_equal(e.rec.mode, 0600);
	assert_int_equal(core_files_setattr(f->t, NULL, NULL, META_ATTR_MODE, &a), -ENOENT);
}

/* truncate(2) by name: the opener's writer takes it (the kernel's O_TRUNC);
 * with no writer, a new version is saved at once. */
static void test_truncate_by_name(void **state)
{
	struct fx *f = *state;
	struct core_file *w = writer(f, "t", CORE_FILE_TRUNC, "123456");
	int saved = -1;

	assert_int_equal(core_files_truncate_key(f->t, "t", 2, 42, &attrs644, &saved), 0);
	assert_int_equal(saved, 0);
	assert_int_equal(f->k->puts, 0);
	assert_int_equal(core_file_release(w, NULL), 0);
	assert_committed(f, "t", "12");
	assert_int_equal(core_files_truncate_key(f->t, "t", 1, 7, &attrs644, &saved), 0);
	assert_int_equal(saved, 1);
	assert_committed(f, "t", "1");
	assert_int_equal(f->k->puts, 2);
}

/* ---- write-back ---- */

/* With a queue, close returns once the save is staged and flagged: the name
 * stays hidden from other readers until the upload commits, this mount's
 * lookup waits for it, and one upload stores it. */
static void test_writeback_close_then_upload(void **state)
{
	struct fx *f = *state;
	struct core_files *wb = NULL;
	struct core_file *w = NULL;
	struct core_file_done d;
	struct upq *q = NULL;
	struct meta_entry e;

	assert_int_equal(upq_start(f->c, &q), 0);
	assert_int_equal(core_files_new(f->c, q, &wb), 0);
	assert_int_equal(core_file_open_write(wb, "wb", CORE_FILE_TRUNC, &attrs644, 1, &w), 0);
	assert_int_equal(core_file_write(w, "later", 5, 0), 5);
	assert_int_equal(core_file_flush(w, &d), 0);
	assert_true(d.saved);
	assert_true(d.uploading);
	assert_int_equal(core_file_release(w, &d), 0);
	assert_true(d.uploading);
	assert_int_equal(core_files_lookup(wb, "wb", &e), 0);   /* waited for the upload */
	assert_int_equal(e.type, META_FILE);
	assert_int_equal(e.rec.size, 5);
	assert_false(e.rec.storage_ongoing);
	assert_int_equal(upq_drain(q, 10000), 0);
	assert_int_equal(f->k->puts, 1);
	assert_committed(f, "wb", "later");
	upq_stop(q);
	core_files_free(wb);
}

/* A refused upload after a write-back close: rolled back, nothing left. */
static void test_writeback_refused_rolls_back(void **state)
{
	struct fx *f = *state;
	struct core_files *wb = NULL;
	struct core_file *w = NULL;
	struct upq *q = NULL;
	struct meta_entry e;

	setenv("LAMFS_WB_RETRIES", "1", 1);
	setenv("LAMFS_WB_BACKOFF_MS", "1", 1);
	f->k->fail_put = -EACCES;
	assert_int_equal(upq_start(f->c, &q), 0);
	assert_int_equal(core_files_new(f->c, q, &wb), 0);
	assert_int_equal(core_file_open_write(wb, "no", CORE_FILE_TRUNC, &attrs644, 1, &w), 0);
	assert_int_equal(core_file_write(w, "bytes", 5, 0), 5);
	assert_int_equal(core_file_flush(w, NULL), 0);  /* close returned: upload follows */
	assert_int_equal(core_file_release(w, NULL), 0);
	assert_int_equal(upq_drain(q, 10000), 0);
	assert_true(f->k->puts >= 1);
	assert_int_equal(core_files_lookup(wb, "no", &e), -ENOENT);
	upq_stop(q);
	core_files_free(wb);
	unsetenv("LAMFS_WB_RETRIES");
	unsetenv("LAMFS_WB_BACKOFF_MS");
}

/* ---- lamfs save ---- */

/* core_save_path is a writer: one upload, the attributes given, and the same
 * bytes again store nothing. */
static void test_save_path(void **state)
{
	struct fx *f = *state;
	struct core_attrs a = { 0600, 1000, 1000, 1234567890LL * 1000000000LL };
	struct lamfs_record rec, again;
	char src[128];
	FILE *fp;

	snprintf(src, sizeof(src), "%s/src", f->dir);
	fp = fopen(src, "w");
	assert_non_null(fp);
	fputs("from disk", fp);
	fclose(fp);
	assert_int_equal(core_save_path(f->c, src, "saved/file", &a, &rec), 0);
	assert_int_equal(f->k->puts, 1);
	assert_int_equal(rec.size, 9);
	assert_int_equal(rec.mode, 0600);
	assert_int_equal(rec.mtime_ns, a.mtime_ns);
	assert_committed(f, "saved/file", "from disk");
	assert_int_equal(core_save_path(f->c, src, "saved/file", &a, &again), 0);
	assert_int_equal(f->k->puts, 1);                 /* same bytes: no upload */
	assert_string_equal(again.uid, rec.uid);
	assert_int_equal(core_save_path(f->c, src, "plain", NULL, &rec), 0);
	assert_int_equal(rec.mode, 0644);
	assert_int_equal(rec.owner_uid, getuid());
	assert_int_equal(core_save_path(f->c, "/nonexistent/x", "k", &a, NULL), -ENOENT);
	f->k->fail_put = -ENOSPC;
	assert_int_equal(core_save_path(f->c, src, "other", &a, NULL), -ENOSPC);
	assert_absent(f, "other");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_close_saves_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_created_saved_at_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_superseded_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsync_saves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_error_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poisoned_never_saved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_keeps_its_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_shares_unsaved_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unlink_discards_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_moves_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_setattr_reaches_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncate_by_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writeback_close_then_upload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writeback_refused_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_path, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
