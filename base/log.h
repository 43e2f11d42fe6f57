/*
 * log.h — one log for the daemon and the tools.
 *
 * Messages go to stderr until log_open() names a file (the daemon logs to
 * <instance>/lamfs.log once it is in the background).  Never pass secrets.
 * Thread-safe.
 */
#ifndef LAMFS_LOG_H
#define LAMFS_LOG_H

enum log_level { LL_ERR = 0, LL_WARN = 1, LL_INFO = 2, LL_DEBUG = 3 };

/* Append to path from now on; returns 0 or -errno (then stderr stays). */
int log_open(const char *path);
void log_close(void);
void log_set_level(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LL_DEBUG, __VA_ARGS__)

#endif
