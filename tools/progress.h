/*
 * progress.h — a one-line progress bar on stderr for long CLI operations:
 * items, bytes, rate and time left, redrawn in place ("\r", "\033[K").
 *
 * PROGRESS_AUTO shows it only when stdout and stderr are terminals, so a
 * pipe, a log file or a script sees only the command's real output;
 * PROGRESS_ON draws it anyway, PROGRESS_OFF never.  Not thread-safe.
 *
 *   struct progress *p = progress_new("saving", n_files, n_bytes, PROGRESS_AUTO);
 *   progress_update(p, done, bytes_done, name);   (as often as you like)
 *   progress_clear(p); printf(...);               (before other terminal output)
 *   progress_free(p);                             (erases the line)
 */
#ifndef LAMFS_PROGRESS_H
#define LAMFS_PROGRESS_H

#include <stdint.h>

struct progress;

enum progress_mode { PROGRESS_AUTO = 0, PROGRESS_ON = 1, PROGRESS_OFF = 2 };

/* A new bar, or NULL when it is not to be shown (or on no memory); every
 * function accepts NULL.  total_bytes may be 0 when unknown. */
struct progress *progress_new(const char *what, uint64_t total_items, uint64_t total_bytes,
			      enum progress_mode mode);
/* Redraw (at most ten times a second, always for the last item).  current:
 * the item being worked on, or NULL. */
void progress_update(struct progress *p, uint64_t items_done, uint64_t bytes_done,
		     const char *current);
/* Change the label (a phase: "hashing", "storing"; what must outlive p) and
 * count the rate from now and bytes_done on. */
void progress_label(struct progress *p, const char *what, uint64_t bytes_done);
/* Erase the bar's line; the next update draws it again. */
void progress_clear(struct progress *p);
/* Erase the line and free. */
void progress_free(struct progress *p);

/* "12.3 MiB" into buf (>= 16 bytes). */
const char *progress_bytes(uint64_t n, char *buf, unsigned len);

#endif
