/*
 * upq.h — the write-back upload queue of a mount (-o writeback).
 *
 * The queue is durable by construction: an entry is a storage-ongoing record
 * plus its staging file INSTANCE/staging/<uid>; this in-memory queue only
 * schedules them.  Workers call core_upload_flagged(); a failure is retried
 * with exponential backoff and jitter, its text kept in
 * INSTANCE/staging/<uid>.err for `lamfs status`; after the last try the save is
 * rolled back (core_rollback_flagged) and logged — never left half-done.
 *
 * Settings (environment, for tests and tuning): LAMFS_WB_WORKERS (default 4),
 * LAMFS_WB_RETRIES (tries before rollback, default 8), LAMFS_WB_BACKOFF_MS
 * (first delay, default 500).  Thread-safe.
 */
#ifndef LAMFS_UPQ_H
#define LAMFS_UPQ_H

#include <stdint.h>

#include "core.h"

struct upq;

/* Start the workers.  0 or -errno. */
int upq_start(struct core *c, struct upq **out);
/* Call fn(arg, uid) from a worker after each upload that committed (uid is
 * latest now), e.g. so a mount drops what the kernel cached of its key.  Set
 * it before the first upq_push/upq_resume. */
void upq_set_done_hook(struct upq *q, void (*fn)(void *arg, const char *uid), void *arg);
/* Schedule the upload of flagged record uid; fd is its locked staging file
 * (from core_save_deferred), owned by the queue from now on, even on error.
 * 0 or -ENOMEM. */
int upq_push(struct upq *q, const char *uid, int fd);
/* Schedule every flagged record of the instance whose staging file no live
 * process owns (a mount that died, or an earlier run of this one): the lock
 * on staging/<uid> tells.  *n counts them. */
int upq_resume(struct upq *q, unsigned *n);
/* Pending and running uploads. */
unsigned upq_pending(struct upq *q);
/*
 * Wait until no upload of this queue is pending at key (this mount's own
 * write-back saves), at most timeout_ms: 0 or -ETIMEDOUT.  So a program on the
 * writing mount that reopens or looks up a file it just closed sees it, and an
 * append starts from the bytes just written, never from an older version.
 */
int upq_wait_key(struct upq *q, const char *key, long timeout_ms);
/* The newest save at key still waiting in this queue (its bytes are in
 * staging/<uid>): 0 and *out, or -ENOENT. */
int upq_newest_pending(struct upq *q, const char *key, struct lamfs_record *out);
/* Wait until nothing is pending or timeout_ms passed: 0 or -ETIMEDOUT. */
int upq_drain(struct upq *q, long timeout_ms);
/* Stop the workers (what is pending stays durable for the next mount) and free. */
void upq_stop(struct upq *q);

#endif
