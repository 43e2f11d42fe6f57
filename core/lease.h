/*
 * lease.h — this process's lease on its instance's metadata store.
 *
 * A mount, and a running lamfs-repair, keep a row in the store's lease table
 * (meta.h, "leases") for as long as they live, renewed from a thread every
 * TTL/3; its expiry is computed with the database's clock.  The rows are how
 * a repair on one machine learns of a mount on another (the flock on
 * INSTANCE/lamfs.lock only sees this machine), and how a mount learns that a
 * repair is running: meta_lease_take() refuses a mount while a repair is live
 * and a repair while anything else is live.  A process that dies (SIGKILL, a
 * machine lost) leaves its row to expire after at most TTL.
 *
 * Renewal failures (the database down or restarting) are logged and retried
 * about every second; they never stop the mount.  If the row has been removed
 * meanwhile (it expired and a repair swept it), the lease is taken again as
 * soon as no repair is live, and that is logged as an error: a repair may
 * have rolled back this mount's saves in flight.
 *
 * Thread-safety: lease_start/lease_stop from one thread; the renewal thread
 * only calls meta (the core's handle, which is thread-safe).
 */
#ifndef LAMFS_LEASE_H
#define LAMFS_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "meta.h"

struct lease;

#define LEASE_TTL_DEFAULT_S 30

/* The lease time to live: LAMFS_LEASE_TTL seconds (a positive integer;
 * anything else is ignored), else LEASE_TTL_DEFAULT_S.  In milliseconds. */
int64_t lease_ttl_ms(void);

/*
 * Take a lease of `kind` on c's store for this process and start renewing it.
 * mountpoint: the mount point (NULL or "" for a repair).  flags:
 * META_LEASE_FORCE takes it whatever else is live.  Host, pid and instance
 * directory are this process's (bytes other than printable ASCII are stored
 * as '?': the fields only inform).
 * On 0 *out is the lease, released with lease_stop().  -EBUSY: refused, and
 * *blocker (when not NULL) is the live lease in the way.  -EROFS on a
 * read-only core; other errnos from the store or pthread.
 */
int lease_start(struct core *c, enum meta_lease_kind kind, const char *mountpoint,
		unsigned flags, struct lease **out, struct meta_lease *blocker);

/* Stop renewing and remove the row (a failure is logged; the row then
 * expires by itself).  NULL is fine.  Must run before core_close(). */
void lease_stop(struct lease *l);

/*
 * 1 when l belongs to a process of this machine (same host name) using the
 * same instance directory that no longer exists (kill(pid, 0) says ESRCH):
 * a mount or repair killed here, whose lease need not be waited out.
 */
int lease_dead_here(const struct meta_lease *l, const char *instance_dir);

/* This lease's id (the row's). */
const char *lease_id(const struct lease *l);

/* One line about l for users, e.g. "a mount on host1 (pid 42, mount point
 * /mnt/x, instance /srv/inst), lease expires in 12 s" (or "expired 3 s
 * ago").  Always terminated. */
void lease_describe(const struct meta_lease *l, char *buf, size_t size);

#endif
