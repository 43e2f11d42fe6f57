/*
 * progress.h — a one-line progress bar on stderr for long CLI operations.
 *
 * Shown only when stderr is a terminal; in a pipe or a log file every call is
 * a no-op, so scripts see only the command's real output.  Not thread-safe.
 *
 *   struct progress *p = progress_new("saving", n_files, n_bytes);
 *   progress_update(p, done, bytes_done, name);   (as often as you like)
 *   progress_clear(p); printf(...);               (before other terminal output)
 *   progress_free(p);                             (erases the line)
 */
#ifndef LAMFS_PROGRESS_H
#define LAMFS_PROGRESS_H

#include <stdint.h>

struct progress;

/* A new bar, or NULL when stderr is not a terminal (or on no memory); every
 * function accepts NULL.  total_bytes may be 0 when unknown. */
struct progress *progress_new(const char *what, uint64_t total_items, uint64_t total_bytes);
/* Redraw (at most ten times a second, always for the last item).  current:
 * the item being worked on, or NULL. */
void progress_update(struct progress *p, uint64_t items_done, uint64_t bytes_done,
		     const char *current);
/* Erase the bar's line; the next update draws it again. */
void progress_clear(struct progress *p);
/* Erase the line and free. */
void progress_free(struct progress *p);

/* "12.3 MiB" into buf (>= 16 bytes). */
const char *progress_bytes(uint64_t n, char *buf, unsigned len);

#endif
