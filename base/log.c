/*
 * log.c — the one log: "2024-05-01T12:00:00.123Z LEVEL message\n", written
 * with a single write() per line under a mutex, to stderr or to a file
 * opened with O_APPEND (several processes may append to one log).
 *
 * A message is escaped (escape.h) before it is written: messages name keys,
 * and a key may hold a newline or an ESC sequence, which must not forge a
 * line of the log or drive the terminal of whoever reads it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "escape.h"
#include "log.h"

#define LOG_LINE_MAX 4096

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;                          /* guarded by log_lock; -1: stderr */
static enum log_level log_level = LL_INFO;       /* guarded by log_lock */

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

int log_open(const char *path)
{
	int rc = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	pthread_mutex_lock(&log_lock);
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	pthread_mutex_unlock(&log_lock);
out:
	return rc;
}

void log_close(void)
{
	pthread_mutex_lock(&log_lock);
	if (log_fd >= 0)
		close(log_fd);
	log_fd = -1;
	pthread_mutex_unlock(&log_lock);
}

void log_set_level(enum log_level level)
{
	pthread_mutex_lock(&log_lock);
	log_level = level;
	pthread_mutex_unlock(&log_lock);
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ LEVEL " into buf; returns its length. */
static size_t log_prefix(char *buf, size_t size, enum log_level level)
{
	struct timespec ts;
	struct tm tm;
	size_t n;
	int m;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	m = snprintf(buf + n, size - n, ".%03ldZ %s ", ts.tv_nsec / 1000000L,
		     level_names[level]);
	if (m > 0)
		n += (size_t)m < size - n ? (size_t)m : size - n - 1;
	return n;
}

/* Write all of buf to fd, retrying on EINTR and short writes; errors dropped
 * (there is nowhere left to report them). */
static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		buf += w;
		len -= (size_t)w;
	}
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX], msg[LOG_LINE_MAX];
	enum log_level max;
	size_t n, len;
	va_list ap;
	int m;
	int saved_errno = errno;   /* callers log and then use errno */

	if ((int)level < LL_ERR || level > LL_DEBUG)
		level = LL_ERR;
	pthread_mutex_lock(&log_lock);
	max = log_level;
	pthread_mutex_unlock(&log_lock);
	if (level > max)
		goto out;
	n = log_prefix(line, sizeof(line) - 1, level);
	va_start(ap, fmt);
	m = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	len = m > 0 ? ((size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1) : 0;
	while (len > 0 && msg[len - 1] == '\n')
		len--;
	n += escape_buf(line + n, sizeof(line) - 1 - n, msg, len, NULL);
	line[n++] = '\n';
	pthread_mutex_lock(&log_lock);
	write_all(log_fd >= 0 ? log_fd : STDERR_FILENO, line, n);
	pthread_mutex_unlock(&log_lock);
out:
	errno = saved_errno;
}
