/*
 * repair.h — bring an instance back to a clean state (lamfs-repair's engine).
 *
 * repair_run() walks an opened instance in four passes and reports every
 * finding through a callback; it prints nothing itself, so lamfs-repair, a
 * mount starting up, or a test can each present the findings their own way.
 *
 *  1. flagged   every storage-ongoing record: finish the upload from
 *               staging/<uid> when the staged bytes match the record's size
 *               and sha256 (core_upload_flagged; with no staging/<uid>, an
 *               unowned w.* file holding exactly those bytes, left by a writer
 *               that died before naming it, becomes staging/<uid> first:
 *               core_staged_adopt); else clear the flag when the
 *               stored object already matches (meta_save_finish); else roll
 *               the record back (core_rollback_flagged: the previous version
 *               stays latest, any object and staging file of it go).
 *  2. storage   every object under ".lamindb/" whose uid has no record is an
 *               orphan (a delete interrupted between its commit and the object
 *               delete): removed.  In an instance restored from a backup
 *               (restore.h) such an object may have been saved after the
 *               backup: it is never removed but listed (after-backup, kept,
 *               with the key it would get), and with REPAIR_REGISTER saved
 *               again at that key (registered).  Temporaries ".lamindb/.tmp.*" and S3
 *               multipart uploads left open: backend_cleanup_incomplete().
 *  3. staging   files in INSTANCE/staging that no flagged record owns (w.*
 *               files of writes that never got saved, <uid> files of records
 *               no longer flagged): removed.
 *  0. leases    leases (meta.h) that have expired, or whose owner is a dead
 *               process of this machine using this instance directory
 *               (lease_dead_here): removed.  Live leases are the caller's to
 *               check before it runs (lamfs-repair refuses while one is).
 *  4. verify    (REPAIR_VERIFY) every committed record's object is read back
 *               through the backend and its size, LaminDB hash and sha256 are
 *               compared with the record.  A missing or corrupt object is
 *               reported, never "fixed": its record stays as it is.
 *
 * Temporaries and staging files may belong to a live mount, so passes 2 (the
 * temporaries only) and 3 touch them only with REPAIR_EXCLUSIVE, which the
 * caller sets when it holds the instance lock exclusively (core_lock(c, 1)).
 * Without it they are reported as kept.  Flagged records and orphans are
 * handled either way: the caller decides whether it is safe to run beside a
 * mount (lamfs-repair refuses unless told the mount is gone).
 *
 * REPAIR_DRY_RUN changes nothing (no metadata write, no object or file
 * removed, no upload) and reports what would be done; the core may then be
 * opened CORE_READONLY.
 *
 * Thread-safety: one repair_run per core at a time; callbacks run on the
 * calling thread.
 */
#ifndef LAMFS_REPAIR_H
#define LAMFS_REPAIR_H

#include <stdint.h>

#include "core.h"

enum repair_flags {
	REPAIR_DRY_RUN = 1u << 0,   /* change nothing, report what would be done */
	REPAIR_VERIFY = 1u << 1,    /* pass 4: re-read every committed object */
	REPAIR_EXCLUSIVE = 1u << 2, /* the instance lock is held exclusively:
	                               staging files and temporaries may go */
	REPAIR_REGISTER = 1u << 3,  /* a restored instance: register the objects
	                               saved after its backup again (restore.h) */
};

/* What a finding is about. */
enum repair_kind {
	REPAIR_KIND_FLAGGED = 0,    /* a storage-ongoing record */
	REPAIR_KIND_ORPHAN,         /* an object without a record */
	REPAIR_KIND_TEMPORARY,      /* an interrupted upload in storage */
	REPAIR_KIND_STAGING,        /* a staging file nobody owns */
	REPAIR_KIND_VERIFY,         /* a committed record's object */
	REPAIR_KIND_LEASE,          /* a lease left by a mount or repair that is gone */
	REPAIR_KIND_AFTER_BACKUP,   /* a restored instance: an object without a record,
	                               saved after the backup (restore.h) */
};

/* What was (or, on a dry run, would be) done.  The first four change
 * something and have a "would-" form on a dry run; keep them first. */
enum repair_action {
	REPAIR_COMPLETED = 0,       /* flagged: uploaded from staging, flag cleared */
	REPAIR_FLAG_CLEARED,        /* flagged: object was stored already */
	REPAIR_ROLLED_BACK,         /* flagged: record, object, staging file gone */
	REPAIR_REMOVED,             /* orphan, temporary, staging file removed */
	REPAIR_REGISTERED,          /* after-backup: saved again at its key */
	REPAIR_KEPT,                /* left alone on purpose (see detail) */
	REPAIR_MISSING,             /* verify: the object is not in storage */
	REPAIR_CORRUPT,             /* verify: size, hash or checksum differ */
	REPAIR_FAILED,              /* the action (or the check) failed: err says why */
};

/*
 * One finding.  Strings are valid during the callback only; key and uid are
 * NULL when unknown (an orphan has a uid but no key; a w.* staging file has
 * neither).  `name` is the object name (".lamindb/<uid><suffix>") or the
 * staging path the finding is about, NULL when there is none (e.g. a count of
 * aborted multipart uploads).  `dry_run` is set when the action was not done
 * but would be.  `err` is 0 or the negative errno of a failed action.
 */
struct repair_event {
	enum repair_kind kind;
	enum repair_action action;
	int dry_run;
	const char *key;
	const char *uid;
	const char *name;
	const char *detail;         /* one human-readable line, or NULL */
	int err;
};

/* Where a pass stands: items and bytes done of the pass's totals (totals are 0
 * when not known up front). */
struct repair_progress {
	const char *pass;           /* "flagged", "storage", "staging", "verify" */
	uint64_t items_done, items_total;
	uint64_t bytes_done, bytes_total;
};

struct repair_callbacks {
	void (*event)(void *ctx, const struct repair_event *ev);       /* may be NULL */
	void (*progress)(void *ctx, const struct repair_progress *p);  /* may be NULL */
	void *ctx;
};

/* Totals of one run.  "Repaired" counts are actions done (or, on a dry run,
 * that would be done). */
struct repair_summary {
	unsigned flagged;           /* flagged records found */
	unsigned completed, flags_cleared, rolled_back;
	unsigned orphans, temporaries, staging;   /* removed (or would be) */
	unsigned kept;              /* staging files/temporaries left for lack of the lock */
	unsigned verified;          /* objects verified and found intact */
	uint64_t verified_bytes;
	unsigned missing, corrupt;
	unsigned failed;            /* actions or checks that failed */
	unsigned leases;            /* stale leases removed (or would be); housekeeping:
	                               not counted by repair_status() */
	unsigned after_backup;      /* after-backup objects listed, not registered */
	unsigned registered;        /* after-backup objects registered (or would be) */
};
#define REPAIR_SUMMARY_INIT { 0 }

/*
 * Run the passes above on c.  Findings go to cb (may be NULL); *sum (when not
 * NULL) is filled even on failure with what was done so far.
 * Returns 0 when every pass ran to its end (findings, even failed actions, are
 * not errors: they are in *sum), or a negative errno when a pass could not run
 * (the store or the storage listing failed, out of memory).
 */
int repair_run(struct core *c, unsigned flags, const struct repair_callbacks *cb,
	       struct repair_summary *sum);

/* fsck-style status of a finished run: 0 nothing found, 1 everything found
 * was repaired, 4 problems left (missing, corrupt, failed, after-backup
 * objects not registered; on a dry run also anything that would be
 * repaired).  Operational errors (8) are the caller's. */
int repair_status(const struct repair_summary *sum, unsigned flags);

/* Names for reports: "flagged", "orphan", "temporary", "staging", "verify",
 * "lease", "after-backup";
 * "completed", "flag-cleared", "rolled-back", "removed", "registered", "kept",
 * "missing", "corrupt", "failed", and on a dry run "would-complete",
 * "would-clear-flag", "would-roll-back", "would-remove", "would-register". */
const char *repair_kind_name(enum repair_kind kind);
const char *repair_action_name(enum repair_action action, int dry_run);

#endif
