/*
 * escape.h — one line of human output for a name that may hold anything.
 *
 * Keys are legal with control characters, backslashes and (from other
 * writers of the database) invalid UTF-8.  Printed raw, such a name could
 * forge lines in a terminal or a log (a newline, an ESC sequence).  Every
 * human-readable output of a key (the CLI's text output, lamfs-repair's,
 * the log) goes through escape_str(); JSON output keeps the exact bytes.
 *
 * The form is GNU ls -b's: a backslash is "\\"; \a \b \t \n \v \f \r are
 * written so; every other C0 control, DEL, a C1 control (U+0080..U+009F,
 * which terminals also obey) and every byte that is not part of valid UTF-8
 * is "\ooo" (three octal digits per byte: ESC is "\033").  Valid UTF-8
 * otherwise passes unchanged, so ordinary names look the same.
 * Thread-safe (no state).
 */
#ifndef LAMFS_ESCAPE_H
#define LAMFS_ESCAPE_H

#include <stddef.h>

/* Room for the escaped form of n input bytes, the NUL included. */
#define ESCAPE_SIZE(n) (4 * (size_t)(n) + 1)

/*
 * Escape len bytes of s into out (size bytes, size >= 1): always
 * NUL-terminated; an escape that does not fit whole is left out with all
 * that follows.  Returns the length written.  *used (when not NULL) is set
 * to the number of input bytes consumed.
 */
size_t escape_buf(char *out, size_t size, const char *s, size_t len, size_t *used);

/* s (NULL prints "(null)") escaped into buf, which is returned: for use as a
 * printf argument.  ESCAPE_SIZE(strlen(s)) bytes hold all of it. */
const char *escape_str(const char *s, char *buf, size_t size);

/* 1 when escape_str() would change s (s holds something to escape). */
int escape_needed(const char *s);

#endif
