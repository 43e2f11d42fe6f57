/*
 * repair.c — the passes of repair_run() (see repair.h): settle flagged
 * records, remove orphan objects and temporaries, clear staging leftovers,
 * verify stored objects.
 *
 * Everything here goes through the core, the store and the backend wrappers;
 * the only files touched directly are those in the staging folder.  Every
 * finding is handed to the caller's callback; nothing is printed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "hash.h"
#include "key.h"
#include "lease.h"
#include "repair.h"
#include "restore.h"

#define REPAIR_IO_SIZE (1u << 20)
#define REPAIR_DETAIL_MAX 512
#define OBJ_PREFIX LAMFS_STORAGE_DIR "/"
#define TMP_PREFIX LAMFS_STORAGE_DIR "/.tmp."

/* A growing list of strings (object names, staging file names). */
struct strvec {
	char **v;
	size_t n, cap;
};

struct repair {
	struct core *c;
	struct meta *m;
	struct backend *b;
	unsigned flags;
	const struct repair_callbacks *cb;
	struct repair_summary *sum;
	struct repair_progress prog;
	uint64_t item_base;          /* prog.bytes_done when the current item began */
	unsigned char *buf;          /* REPAIR_IO_SIZE bytes for reading objects */
	struct strvec adoptable;     /* dry run: w.* files pass 1 would adopt */
};

/* ---------------------------------------------------------------- reporting */

const char *repair_kind_name(enum repair_kind kind)
{
	switch (kind) {
	case REPAIR_KIND_FLAGGED:
		return "flagged";
	case REPAIR_KIND_ORPHAN:
		return "orphan";
	case REPAIR_KIND_TEMPORARY:
		return "temporary";
	case REPAIR_KIND_STAGING:
		return "staging";
	case REPAIR_KIND_AFTER_BACKUP:
		return "after-backup";
	case REPAIR_KIND_VERIFY:
		return "verify";
	case REPAIR_KIND_LEASE:
		return "lease";
	}
	return "?";
}

const char *repair_action_name(enum repair_action action, int dry_run)
{
	switch (action) {
	case REPAIR_COMPLETED:
		return dry_run ? "would-complete" : "completed";
	case REPAIR_FLAG_CLEARED:
		return dry_run ? "would-clear-flag" : "flag-cleared";
	case REPAIR_ROLLED_BACK:
		return dry_run ? "would-roll-back" : "rolled-back";
	case REPAIR_REMOVED:
		return dry_run ? "would-remove" : "removed";
	case REPAIR_REGISTERED:
		return dry_run ? "would-register" : "registered";
	case REPAIR_KEPT:
		return "kept";
	case REPAIR_MISSING:
		return "missing";
	case REPAIR_CORRUPT:
		return "corrupt";
	case REPAIR_FAILED:
		return "failed";
	}
	return "?";
}

static void count(struct repair *r, enum repair_kind kind, enum repair_action action)
{
	struct repair_summary *s = r->sum;

	switch (action) {
	case REPAIR_COMPLETED:
		s->completed++;
		break;
	case REPAIR_FLAG_CLEARED:
		s->flags_cleared++;
		break;
	case REPAIR_ROLLED_BACK:
		s->rolled_back++;
		break;
	case REPAIR_REMOVED:
		if (kind == REPAIR_KIND_ORPHAN)
			s->orphans++;
		else if (kind == REPAIR_KIND_LEASE)
			s->leases++;
		else if (kind == REPAIR_KIND_TEMPORARY)
			s->temporaries++;
		else
			s->staging++;
		break;
	case REPAIR_REGISTERED:
		s->registered++;
		break;
	case REPAIR_KEPT:
		if (kind == REPAIR_KIND_AFTER_BACKUP)
			s->after_backup++;
		else
			s->kept++;
		break;
	case REPAIR_MISSING:
		s->missing++;
		break;
	case REPAIR_CORRUPT:
		s->corrupt++;
		break;
	case REPAIR_FAILED:
		s->failed++;
		break;
	}
}

/* Count a finding and hand it to the caller.  detail is printf-formatted. */
static void emit(struct repair *r, enum repair_kind kind, enum repair_action action,
		 const char *key, const char *uid, const char *name, int err,
		 const char *fmt, ...) __attribute__((format(printf, 8, 9)));

static void emit(struct repair *r, enum repair_kind kind, enum repair_action action,
		 const char *key, const char *uid, const char *name, int err,
		 const char *fmt, ...)
{
	char detail[REPAIR_DETAIL_MAX];
	struct repair_event ev = {
		.kind = kind,
		.action = action,
		/* only the actions that change something have a "would" form */
		.dry_run = (r->flags & REPAIR_DRY_RUN) && action <= REPAIR_REGISTERED,
		.key = key,
		.uid = uid && *uid ? uid : NULL,
		.name = name,
		.detail = NULL,
		.err = err,
	};
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(detail, sizeof(detail), fmt, ap);
		va_end(ap);
		ev.detail = detail;
	}
	count(r, kind, action);
	if (r->cb && r->cb->event)
		r->cb->event(r->cb->ctx, &ev);
}

static void progress(struct repair *r)
{
	if (r->cb && r->cb->progress)
		r->cb->progress(r->cb->ctx, &r->prog);
}

static void pass_start(struct repair *r, const char *pass, uint64_t items, uint64_t bytes)
{
	memset(&r->prog, 0, sizeof(r->prog));
	r->prog.pass = pass;
	r->prog.items_total = items;
	r->prog.bytes_total = bytes;
	progress(r);
}

/* An item of the current pass begins / ends; bytes read meanwhile are counted
 * by object_read() and settled to the item's size at its end. */
static void item_begin(struct repair *r)
{
	r->item_base = r->prog.bytes_done;
}

static void item_end(struct repair *r, uint64_t bytes)
{
	r->prog.items_done++;
	r->prog.bytes_done = r->item_base + bytes;
	progress(r);
}

/* ------------------------------------------------------------------ hashing */

/* What reading an object back gave. */
struct obj_seen {
	uint64_t size;               /* as the backend says */
	uint64_t read;               /* bytes actually read */
	int hashed;                  /* hr is valid: read == size and hashing worked */
	struct hash_result hr;
};

/* Keep the part of buf (len bytes at off) at or after `tail` in fd, at the same
 * offsets, so hash_finish() can read the last chunk back. */
static int tail_keep(int fd, uint64_t tail, const unsigned char *buf, size_t len, uint64_t off)
{
	size_t skip;

	if (off + len <= tail)
		return 0;
	skip = off < tail ? (size_t)(tail - off) : 0;
	buf += skip;
	len -= skip;
	off += skip;
	while (len > 0) {
		ssize_t w = pwrite(fd, buf, len, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		buf += w;
		len -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/*
 * Read obj through the backend and hash it as a save would.  0 with *seen
 * filled (seen->hashed says whether the hashes are valid), -ENOENT when the
 * object is missing, or the backend's errno.  Bytes read count as progress.
 */
static int object_read(struct repair *r, const char *obj, struct obj_seen *seen)
{
	struct backend_reader *rd = NULL;
	struct hash_state *h = NULL;
	uint64_t tail = 0;
	size_t got;
	int tfd = -1, rc;

	memset(seen, 0, sizeof(*seen));
	rc = backend_reader_open(r->b, obj, &rd, &seen->size);
	if (rc < 0)
		goto out;
	rc = hash_new(&h);
	if (rc < 0)
		goto out;
	if (seen->size > LAMFS_HASH_CHUNK) {
		/* sha1-fl covers the last chunk too, which hash_finish() reads back
		 * from a file: keep it in a sparse memory file at its own offsets. */
		tfd = memfd_create("lamfs-repair-tail", MFD_CLOEXEC);
		if (tfd < 0) {
			rc = -errno;
			goto out;
		}
		tail = seen->size - LAMFS_HASH_CHUNK;
	}
	while (seen->read < seen->size) {
		uint64_t left = seen->size - seen->read;
		size_t want = left < REPAIR_IO_SIZE ? (size_t)left : REPAIR_IO_SIZE;

		rc = backend_reader_pread(rd, r->buf, want, seen->read, &got);
		if (rc < 0)
			goto out;
		if (got == 0)
			break; /* shorter than the backend said: reported as a size mismatch */
		hash_update(h, r->buf, got);
		if (tfd >= 0) {
			rc = tail_keep(tfd, tail, r->buf, got, seen->read);
			if (rc < 0)
				goto out;
		}
		seen->read += got;
		r->prog.bytes_done = r->item_base + seen->read;
		progress(r);
	}
	if (seen->read == seen->size) {
		rc = hash_finish(h, tfd, &seen->hr);
		seen->hashed = rc == 0;
	}
out:
	if (tfd >= 0)
		close(tfd);
	hash_free(h);
	if (rd)
		backend_reader_close(rd);
	return rc;
}

/* 1 when what was read is exactly the record's content (size and sha256). */
static int seen_matches(const struct obj_seen *s, const struct lamfs_record *rec)
{
	return s->hashed && (int64_t)s->hr.size == rec->size &&
	       strcmp(s->hr.checksum, rec->checksum) == 0;
}

/* Append "; "-separated, printf-formatted text to out (outlen bytes, *len
 * used so far, cut when full) and count it in *n. */
static void note_add(char *out, size_t outlen, size_t *len, int *n, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void note_add(char *out, size_t outlen, size_t *len, int *n, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (*n && *len < outlen) {
		w = snprintf(out + *len, outlen - *len, "; ");
		*len += w > 0 ? (size_t)w : 0;
	}
	if (*len < outlen) {
		va_start(ap, fmt);
		w = vsnprintf(out + *len, outlen - *len, fmt, ap);
		va_end(ap);
		*len += w > 0 ? (size_t)w : 0;
	}
	(*n)++;
}

/* Describe how an object differs from its record into out; returns the number
 * of differences (0: intact, out is ""). */
static int seen_diff(const struct obj_seen *s, const struct lamfs_record *rec, char *out,
		     size_t outlen)
{
	size_t len = 0;
	int n = 0;

	out[0] = '\0';
	if (!s->hashed) {
		note_add(out, outlen, &len, &n,
			 "size %llu, but only %llu bytes could be read; record says %lld",
			 (unsigned long long)s->size, (unsigned long long)s->read,
			 (long long)rec->size);
		return n;
	}
	if ((int64_t)s->hr.size != rec->size)
		note_add(out, outlen, &len, &n, "size %llu, record says %lld",
			 (unsigned long long)s->hr.size, (long long)rec->size);
	if (strcmp(s->hr.hash, rec->hash) != 0 || strcmp(s->hr.hash_type, rec->hash_type) != 0)
		note_add(out, outlen, &len, &n, "hash %s (%s), record says %s (%s)", s->hr.hash,
			 s->hr.hash_type, rec->hash, rec->hash_type);
	if (strcmp(s->hr.checksum, rec->checksum) != 0)
		note_add(out, outlen, &len, &n, "sha256 %.12s..., record says %.12s...",
			 s->hr.checksum, rec->checksum);
	return n;
}

/* Check staging/<uid> holds exactly the record's bytes: 0, -ENOENT, -EBADMSG
 * (differs), or -errno. */
static int staged_check(const struct lamfs_record *rec, const char *path)
{
	struct hash_result hr;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0)
		rc = -errno;
	else if ((int64_t)st.st_size != rec->size)
		rc = -EBADMSG;
	else if ((rc = hash_fd(fd, &hr)) == 0 && strcmp(hr.checksum, rec->checksum) != 0)
		rc = -EBADMSG;
	close(fd);
	return rc;
}

/* ------------------------------------------------------------ small helpers */

static int is_base62(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z')))
			return 0;
	}
	return 1;
}

static int strvec_push(struct strvec *sv, const char *s)
{
	if (sv->n == sv->cap) {
		size_t cap = sv->cap ? 2 * sv->cap : 64;
		char **v = realloc(sv->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		sv->v = v;
		sv->cap = cap;
	}
	sv->v[sv->n] = strdup(s);
	if (!sv->v[sv->n])
		return -ENOMEM;
	sv->n++;
	return 0;
}

static int strvec_has(const struct strvec *sv, const char *s)
{
	size_t i;
	int has = 0;

	for (i = 0; i < sv->n && !has; i++)
		has = strcmp(sv->v[i], s) == 0;
	return has;
}

static void strvec_release(struct strvec *sv)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = sv->cap = 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strvec_sort(struct strvec *sv)
{
	if (sv->n > 1)
		qsort(sv->v, sv->n, sizeof(*sv->v), cmp_str);
}

/* Count (and sum the sizes of) records: all, only flagged, or only committed. */
struct tally {
	int committed_only;
	uint64_t n, bytes;
};

static int tally_cb(void *ctx, const struct lamfs_record *rec)
{
	struct tally *t = ctx;

	if (t->committed_only && rec->storage_ongoing)
		return 0;
	t->n++;
	t->bytes += rec->size > 0 ? (uint64_t)rec->size : 0;
	return 0;
}

/* "; version <uid> stays latest" or "; no earlier version": what a rolled-back
 * key shows now. */
static void latest_note(struct repair *r, const char *key, char *out, size_t outlen)
{
	struct meta_entry *e = malloc(sizeof(*e));

	out[0] = '\0';
	if (!e)
		return;
	if (meta_lookup(r->m, key, e) == 0 && e->type == META_FILE)
		snprintf(out, outlen, "; version %s stays latest", e->rec.uid);
	else
		snprintf(out, outlen, "; no earlier version");
	free(e);
}

/* ----------------------------------------------------- pass 1: flagged */

static void flagged_rollback(struct repair *r, const struct lamfs_record *rec,
			     const char *obj, const char *why)
{
	char note[64];
	int rc = 0;

	if (!(r->flags & REPAIR_DRY_RUN))
		rc = core_rollback_flagged(r->c, rec->uid);
	if (rc == 0) {
		latest_note(r, rec->key, note, sizeof(note));
		emit(r, REPAIR_KIND_FLAGGED, REPAIR_ROLLED_BACK, rec->key, rec->uid, obj, 0,
		     "%s%s", why, note);
	} else if (rc == -ENOENT) {
		/* settled meanwhile (only possible beside a live mount) */
	} else {
		emit(r, REPAIR_KIND_FLAGGED, REPAIR_FAILED, rec->key, rec->uid, obj, rc,
		     "%s; rolling back failed: %s", why, strerror(-rc));
	}
}

static void flagged_settle(struct repair *r, const struct lamfs_record *rec)
{
	char path[4096], obj[LAMFS_OBJ_MAX], why[REPAIR_DETAIL_MAX - 64], diff[256], anon[256];
	struct lamfs_record now;
	struct obj_seen seen;
	struct stat st;
	int dry = !!(r->flags & REPAIR_DRY_RUN);
	int rc, found, gone;

	core_staging_path(r->c, rec->uid, path, sizeof(path));
	key_object(rec->uid, rec->suffix, obj, sizeof(obj));
	found = stat(path, &st) == 0;
	gone = !found && errno == ENOENT;
	/* Its writer may have died before naming the staged copy staging/<uid>. */
	if (gone && core_staged_adopt(r->c, rec, dry, anon, sizeof(anon)) == 0) {
		if (dry) {
			/* out of memory: pass 3 then reports it as unsaved too */
			(void)strvec_push(&r->adoptable, anon);
			emit(r, REPAIR_KIND_FLAGGED, REPAIR_COMPLETED, rec->key, rec->uid, obj, 0,
			     "uploaded from the staged copy its writer left as %s (%lld bytes)",
			     anon, (long long)rec->size);
			return;
		}
		found = 1;
	}
	if (found) {
		rc = dry ? staged_check(rec, path) : core_upload_flagged(r->c, rec->uid, -1);
		if (rc == 0) {
			emit(r, REPAIR_KIND_FLAGGED, REPAIR_COMPLETED, rec->key, rec->uid, obj, 0,
			     "uploaded from the staged copy (%lld bytes)", (long long)rec->size);
			return;
		}
		if (rc == -EISDIR) {
			flagged_rollback(r, rec, obj, "uploaded, but the key is a folder now");
			return;
		}
		if (rc == -ENOENT && meta_get_uid(r->m, rec->uid, &now) == 0 &&
		    !now.storage_ongoing)
			return; /* settled meanwhile (only possible beside a live mount) */
		if (rc != -EBADMSG && rc != -ENOENT) {
			emit(r, REPAIR_KIND_FLAGGED, REPAIR_FAILED, rec->key, rec->uid, obj, rc,
			     "upload from the staged copy failed: %s; the record stays flagged",
			     strerror(-rc));
			return;
		}
		snprintf(why, sizeof(why), "%s",
			 rc == -EBADMSG ? "staged copy does not match the record"
					: "staged copy vanished");
	} else if (gone) {
		snprintf(why, sizeof(why), "no staged copy");
	} else {
		rc = -errno;
		emit(r, REPAIR_KIND_FLAGGED, REPAIR_FAILED, rec->key, rec->uid, path, rc,
		     "cannot look at the staged copy: %s; the record stays flagged",
		     strerror(-rc));
		return;
	}

	rc = object_read(r, obj, &seen);
	if (rc == 0 && seen_matches(&seen, rec)) {
		if (!dry)
			rc = meta_save_finish(r->m, rec->uid, NULL);
		if (rc == 0) {
			emit(r, REPAIR_KIND_FLAGGED, REPAIR_FLAG_CLEARED, rec->key, rec->uid, obj,
			     0, "%s; the stored object is complete and matches", why);
		} else if (rc == -EISDIR) {
			flagged_rollback(r, rec, obj, "stored, but the key is a folder now");
		} else if (rc != -ENOENT) {
			emit(r, REPAIR_KIND_FLAGGED, REPAIR_FAILED, rec->key, rec->uid, obj, rc,
			     "the stored object matches, but clearing the flag failed: %s",
			     strerror(-rc));
		}
		return;
	}
	if (rc == 0) {
		seen_diff(&seen, rec, diff, sizeof(diff));
		snprintf(why + strlen(why), sizeof(why) - strlen(why),
			 "; the stored object differs (%s)", diff);
	} else if (rc == -ENOENT) {
		snprintf(why + strlen(why), sizeof(why) - strlen(why), "; nothing stored");
	} else {
		emit(r, REPAIR_KIND_FLAGGED, REPAIR_FAILED, rec->key, rec->uid, obj, rc,
		     "%s; reading the stored object failed: %s; the record stays flagged", why,
		     strerror(-rc));
		return;
	}
	flagged_rollback(r, rec, obj, why);
}

static int flagged_cb(void *ctx, const struct lamfs_record *rec)
{
	struct repair *r = ctx;

	if (!rec->storage_ongoing)
		return 0;
	item_begin(r);
	r->sum->flagged++;
	flagged_settle(r, rec);
	item_end(r, rec->size > 0 ? (uint64_t)rec->size : 0);
	return 0;
}

static int pass_flagged(struct repair *r)
{
	struct tally t = { 0 };
	int rc = meta_foreach(r->m, META_FLAGGED_RECORDS, tally_cb, &t);

	if (rc < 0)
		return rc;
	pass_start(r, "flagged", t.n, t.bytes);
	return meta_foreach(r->m, META_FLAGGED_RECORDS, flagged_cb, r);
}

/* ---------------------------------------------------- pass 2: storage */

/* Every uid in the store, sorted, for orphan lookups. */
struct uidset {
	char (*v)[LAMFS_UID_LEN + 1];
	size_t n, cap;
};

static int uidset_cb(void *ctx, const struct lamfs_record *rec)
{
	struct uidset *u = ctx;

	if (u->n == u->cap) {
		size_t cap = u->cap ? 2 * u->cap : 1024;
		void *v = realloc(u->v, cap * sizeof(*u->v));

		if (!v)
			return -ENOMEM;
		u->v = v;
		u->cap = cap;
	}
	memcpy(u->v[u->n], rec->uid, sizeof(u->v[0]));
	u->v[u->n][LAMFS_UID_LEN] = '\0';
	u->n++;
	return 0;
}

static int cmp_uid(const void *a, const void *b)
{
	return strcmp(a, b);
}

struct listing {
	struct strvec objects;       /* ".lamindb/<uid><suffix>" and anything else */
	struct strvec temps;         /* ".lamindb/.tmp.*" */
};

static int listing_cb(void *ctx, const char *name, uint64_t size)
{
	struct listing *l = ctx;

	(void)size;
	if (strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0)
		return strvec_push(&l->temps, name);
	return strvec_push(&l->objects, name);
}

/* An object without a record in an instance restored from a backup: saved
 * after the backup (or an orphan of a delete: the two look alike), so never
 * removed; listed with the key it would get, registered with REPAIR_REGISTER. */
static void after_backup(struct repair *r, const char *uid, const char *name)
{
	char key[LAMFS_KEY_MAX + 1];
	enum restore_key_source src = restore_object_key(r->c, uid, name, key, sizeof(key));
	struct lamfs_record rec;
	int rc = 0;

	if (!(r->flags & REPAIR_REGISTER)) {
		emit(r, REPAIR_KIND_AFTER_BACKUP, REPAIR_KEPT, key, uid, name, 0,
		     "no record in the backup %s; key %s (%s); lamfs-repair --register "
		     "saves it again there", restore_backup_of(r->c), key,
		     restore_key_source_name(src));
		return;
	}
	if (!(r->flags & REPAIR_DRY_RUN))
		rc = restore_register(r->c, name, key, &rec);
	if (rc < 0)
		emit(r, REPAIR_KIND_AFTER_BACKUP, REPAIR_FAILED, key, uid, name, rc,
		     "registering it at %s failed: %s", key, strerror(-rc));
	else if (r->flags & REPAIR_DRY_RUN)
		emit(r, REPAIR_KIND_AFTER_BACKUP, REPAIR_REGISTERED, key, uid, name, 0,
		     "key %s (%s)", key, restore_key_source_name(src));
	else
		emit(r, REPAIR_KIND_AFTER_BACKUP, REPAIR_REGISTERED, key, uid, name, 0,
		     "key %s (%s), as uid %s", key, restore_key_source_name(src), rec.uid);
}

static void orphan_check(struct repair *r, const struct uidset *u, const char *name)
{
	const char *rest = name + strlen(OBJ_PREFIX);
	char uid[LAMFS_UID_LEN + 1];
	int rc = 0;

	/* Only names lamfs makes, "<uid><suffix>": anything else in the folder is
	 * not ours to judge. */
	if (strncmp(name, OBJ_PREFIX, strlen(OBJ_PREFIX)) != 0 ||
	    strlen(rest) < LAMFS_UID_LEN || !is_base62(rest, LAMFS_UID_LEN) ||
	    (rest[LAMFS_UID_LEN] != '\0' && rest[LAMFS_UID_LEN] != '.') || strchr(rest, '/'))
		return;
	memcpy(uid, rest, LAMFS_UID_LEN);
	uid[LAMFS_UID_LEN] = '\0';
	if (u->n && bsearch(uid, u->v, u->n, sizeof(*u->v), cmp_uid))
		return;
	if (restore_backup_of(r->c)) {
		after_backup(r, uid, name);
		return;
	}
	if (!(r->flags & REPAIR_DRY_RUN)) {
		rc = backend_remove(r->b, name);
		if (rc == -ENOENT)
			return; /* gone meanwhile */
	}
	if (rc == 0)
		emit(r, REPAIR_KIND_ORPHAN, REPAIR_REMOVED, NULL, uid, name, 0,
		     "no record has uid %s", uid);
	else
		emit(r, REPAIR_KIND_ORPHAN, REPAIR_FAILED, NULL, uid, name, rc,
		     "no record has uid %s; removing the object failed: %s", uid,
		     strerror(-rc));
}

static void temporaries(struct repair *r, const struct strvec *temps)
{
	int dry = !!(r->flags & REPAIR_DRY_RUN);
	unsigned n = 0;
	size_t i;
	int rc;

	if (!(r->flags & REPAIR_EXCLUSIVE)) {
		for (i = 0; i < temps->n; i++)
			emit(r, REPAIR_KIND_TEMPORARY, REPAIR_KEPT, NULL, NULL, temps->v[i], 0,
			     "the instance lock is not held: it may be a live upload");
		return;
	}
	rc = backend_cleanup_incomplete(r->b, dry, &n);
	if (rc < 0) {
		emit(r, REPAIR_KIND_TEMPORARY, REPAIR_FAILED, NULL, NULL, NULL, rc,
		     "cleaning up interrupted uploads failed: %s", strerror(-rc));
		return;
	}
	for (i = 0; i < temps->n; i++)
		emit(r, REPAIR_KIND_TEMPORARY, REPAIR_REMOVED, NULL, NULL, temps->v[i], 0,
		     "interrupted upload");
	if (n > temps->n) {
		/* Not listed as objects: S3 multipart uploads left open. */
		emit(r, REPAIR_KIND_TEMPORARY, REPAIR_REMOVED, NULL, NULL, NULL, 0,
		     "%u interrupted multipart upload%s %s", n - (unsigned)temps->n,
		     n - temps->n == 1 ? "" : "s", dry ? "left open" : "aborted");
		r->sum->temporaries += n - (unsigned)temps->n - 1;
	}
}

static int pass_storage(struct repair *r)
{
	struct listing l = { { 0 }, { 0 } };
	struct uidset u = { 0 };
	size_t i;
	int rc;

	/* List first, read the records second: an object stored by a save that is
	 * still running has its (flagged) record inserted before the upload, so it
	 * is in the set read afterwards and never taken for an orphan. */
	rc = backend_list(r->b, OBJ_PREFIX, listing_cb, &l);
	if (rc == 0)
		rc = meta_foreach(r->m, META_ALL_RECORDS, uidset_cb, &u);
	if (rc < 0)
		goto out;
	if (u.n > 1)
		qsort(u.v, u.n, sizeof(*u.v), cmp_uid);
	strvec_sort(&l.objects);
	strvec_sort(&l.temps);
	pass_start(r, "storage", l.objects.n + l.temps.n, 0);
	for (i = 0; i < l.objects.n; i++) {
		item_begin(r);
		orphan_check(r, &u, l.objects.v[i]);
		item_end(r, 0);
	}
	temporaries(r, &l.temps);
	r->prog.items_done = r->prog.items_total;
	progress(r);
out:
	free(u.v);
	strvec_release(&l.objects);
	strvec_release(&l.temps);
	return rc;
}

/* ---------------------------------------------------- pass 3: staging */

/* The uid a staging file belongs to: "<uid>" (the staged bytes of a flagged
 * record) or "<uid>.err" / "<uid>.err.tmp" (the write-back queue's note of its
 * last upload error).  0 when the name is none of these. */
static int staging_uid(const char *name, char uid[LAMFS_UID_LEN + 1])
{
	const char *rest = name + LAMFS_UID_LEN;

	if (strlen(name) < LAMFS_UID_LEN || !is_base62(name, LAMFS_UID_LEN) ||
	    (*rest && strcmp(rest, ".err") != 0 && strcmp(rest, ".err.tmp") != 0))
		return 0;
	memcpy(uid, name, LAMFS_UID_LEN);
	uid[LAMFS_UID_LEN] = '\0';
	return 1;
}

static void staging_check(struct repair *r, int dfd, const char *name)
{
	char path[4096], why[128], uid[LAMFS_UID_LEN + 1] = "";
	struct lamfs_record rec;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", core_staging_dir(r->c), name);
	if (strncmp(name, "w.", 2) == 0) {
		if (strvec_has(&r->adoptable, name))
			return; /* a dry run's pass 1 would have made it staging/<uid> */
		snprintf(why, sizeof(why), "an unsaved write");
	} else if (staging_uid(name, uid)) {
		rc = meta_get_uid(r->m, uid, &rec);
		if (rc == 0 && rec.storage_ongoing)
			return; /* a pending upload; pass 1 reported it if it stayed */
		if (rc < 0 && rc != -ENOENT) {
			emit(r, REPAIR_KIND_STAGING, REPAIR_FAILED, NULL, uid, path, rc,
			     "cannot look up its record: %s", strerror(-rc));
			return;
		}
		snprintf(why, sizeof(why), "%s",
			 rc == 0 ? "its record is committed already" : "no record has this uid");
	} else {
		return; /* not a name lamfs makes */
	}
	if (!(r->flags & REPAIR_EXCLUSIVE)) {
		emit(r, REPAIR_KIND_STAGING, REPAIR_KEPT, NULL, uid, path, 0,
		     "%s, but the instance lock is not held: a mount may still use it", why);
		return;
	}
	rc = 0;
	if (!(r->flags & REPAIR_DRY_RUN) && unlinkat(dfd, name, 0) != 0) {
		rc = -errno;
		if (rc == -ENOENT)
			return;
	}
	if (rc == 0)
		emit(r, REPAIR_KIND_STAGING, REPAIR_REMOVED, NULL, uid, path, 0, "%s", why);
	else
		emit(r, REPAIR_KIND_STAGING, REPAIR_FAILED, NULL, uid, path, rc,
		     "%s; removing failed: %s", why, strerror(-rc));
}

static int pass_staging(struct repair *r)
{
	struct strvec names = { 0 };
	struct dirent *e;
	DIR *d = opendir(core_staging_dir(r->c));
	size_t i;
	int rc = 0;

	if (!d)
		return -errno;
	while ((errno = 0, e = readdir(d)) != NULL) {
		struct stat st;

		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		rc = strvec_push(&names, e->d_name);
		if (rc < 0)
			goto out;
	}
	if (errno != 0) {
		rc = -errno;
		goto out;
	}
	strvec_sort(&names);
	pass_start(r, "staging", names.n, 0);
	for (i = 0; i < names.n; i++) {
		item_begin(r);
		staging_check(r, dirfd(d), names.v[i]);
		item_end(r, 0);
	}
out:
	strvec_release(&names);
	closedir(d);
	return rc;
}

/* ----------------------------------------------------- pass 4: verify */

static int verify_cb(void *ctx, const struct lamfs_record *rec)
{
	struct repair *r = ctx;
	char obj[LAMFS_OBJ_MAX], diff[256];
	struct obj_seen seen;
	int rc;

	if (rec->storage_ongoing)
		return 0;
	item_begin(r);
	key_object(rec->uid, rec->suffix, obj, sizeof(obj));
	rc = object_read(r, obj, &seen);
	if (rc == -ENOENT) {
		emit(r, REPAIR_KIND_VERIFY, REPAIR_MISSING, rec->key, rec->uid, obj, 0,
		     "the object is not in storage; the record is kept");
	} else if (rc < 0) {
		emit(r, REPAIR_KIND_VERIFY, REPAIR_FAILED, rec->key, rec->uid, obj, rc,
		     "reading the object failed: %s", strerror(-rc));
	} else if (seen_diff(&seen, rec, diff, sizeof(diff)) > 0) {
		emit(r, REPAIR_KIND_VERIFY, REPAIR_CORRUPT, rec->key, rec->uid, obj, 0, "%s",
		     diff);
	} else {
		r->sum->verified++;
		r->sum->verified_bytes += seen.read;
	}
	item_end(r, rec->size > 0 ? (uint64_t)rec->size : 0);
	return 0;
}

static int pass_verify(struct repair *r)
{
	struct tally t = { .committed_only = 1 };
	int rc = meta_foreach(r->m, META_ALL_RECORDS, tally_cb, &t);

	if (rc < 0)
		return rc;
	pass_start(r, "verify", t.n, t.bytes);
	return meta_foreach(r->m, META_ALL_RECORDS, verify_cb, r);
}

/* ------------------------------------------------------------------- run */

/* ---------------------------------------------------------------- leases */

static int lease_cb(void *ctx, const struct meta_lease *l)
{
	struct repair *r = ctx;
	char what[600];
	int dead = l->remaining_ms > 0 && lease_dead_here(l, core_instance_dir(r->c));
	int rc = 0;

	if (l->remaining_ms > 0 && !dead)
		return 0;   /* live: the caller decided to run beside it */
	lease_describe(l, what, sizeof(what));
	if (!(r->flags & REPAIR_DRY_RUN))
		rc = dead ? meta_lease_release(r->m, l->id) : meta_lease_sweep(r->m, l->id);
	if (rc == 0)
		emit(r, REPAIR_KIND_LEASE, REPAIR_REMOVED, NULL, NULL, l->id, 0, "%s%s", what,
		     dead ? "; that process is gone" : "");
	else if (rc == -EBUSY)
		emit(r, REPAIR_KIND_LEASE, REPAIR_KEPT, NULL, NULL, l->id, 0,
		     "%s; renewed meanwhile: its owner is alive", what);
	else if (rc != -ENOENT)
		emit(r, REPAIR_KIND_LEASE, REPAIR_FAILED, NULL, NULL, l->id, rc, "%s", what);
	return 0;
}

static int pass_leases(struct repair *r)
{
	return meta_lease_list(r->m, lease_cb, r);
}

int repair_run(struct core *c, unsigned flags, const struct repair_callbacks *cb,
	       struct repair_summary *sum)
{
	struct repair_summary local = REPAIR_SUMMARY_INIT;
	struct repair r = {
		.c = c,
		.m = core_meta(c),
		.b = core_backend(c),
		.flags = flags,
		.cb = cb,
		.sum = sum ? sum : &local,
	};
	int rc;

	memset(r.sum, 0, sizeof(*r.sum));
	r.buf = malloc(REPAIR_IO_SIZE);
	if (!r.buf)
		return -ENOMEM;
	rc = pass_leases(&r);
	if (rc == 0)
		rc = pass_flagged(&r);
	if (rc == 0)
		rc = pass_storage(&r);
	if (rc == 0)
		rc = pass_staging(&r);
	if (rc == 0 && (flags & REPAIR_VERIFY))
		rc = pass_verify(&r);
	strvec_release(&r.adoptable);
	free(r.buf);
	return rc;
}

int repair_status(const struct repair_summary *s, unsigned flags)
{
	unsigned repaired = s->completed + s->flags_cleared + s->rolled_back + s->orphans +
			    s->temporaries + s->staging + s->registered;
	unsigned problems = s->missing + s->corrupt + s->failed + s->after_backup;

	if (flags & REPAIR_DRY_RUN)
		problems += repaired;
	if (problems)
		return 4;
	return repaired ? 1 : 0;
}
