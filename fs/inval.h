/*
 * inval.h — the kernel cache invalidation queue of a mount.
 *
 * With entry/attribute timeouts above zero the kernel answers stat() from its
 * cache.  When this mount changes what a path shows in a way the kernel
 * cannot know (a save committed at close, a failed save that must vanish, a
 * write-back upload finishing), the path is queued here and one thread tells
 * the kernel to drop its cached attributes (fuse_invalidate_path).  The
 * notification is never sent from a request handler itself: the kernel may
 * hold locks of the same inode while it waits for that handler's reply
 * (libfuse, fuse_lowlevel.h, notify_inval_*).
 *
 * Thread-safe.  A handler that must not reply before the kernel has dropped
 * its cache (flush: close() returns, then the next stat must be exact) waits
 * for its ticket with inval_wait(); that wait is bounded, so a kernel that
 * blocks the notification cannot hang the handler.
 */
#ifndef LAMFS_INVAL_H
#define LAMFS_INVAL_H

#include <stdint.h>

struct fuse;
struct inval;

/* Start the thread for fuse.  0, or -errno (-ENOMEM, pthread_create's). */
int inval_start(struct fuse *fuse, struct inval **out);
/* Queue "/" key (the mount-relative key, "" for the root).  Returns the
 * ticket to wait for, or 0 when nothing was queued (q NULL, out of memory:
 * then the attributes expire with the timeout). */
uint64_t inval_push(struct inval *q, const char *key);
/* Wait until the notification of ticket has been sent, at most timeout_ms. */
void inval_wait(struct inval *q, uint64_t ticket, long timeout_ms);
/* Send what is queued, stop the thread, free.  NULL is fine. */
void inval_stop(struct inval *q);

#endif
