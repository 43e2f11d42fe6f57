/*
 * deadline.h — the absolute time `ms` milliseconds from now on clock `clk`,
 * as pthread_cond_timedwait() wants it (CLOCK_REALTIME unless the condition
 * variable was set to another clock).
 */
#ifndef LAMFS_DEADLINE_H
#define LAMFS_DEADLINE_H

#include <time.h>

static inline void deadline_after_ms(clockid_t clk, long ms, struct timespec *out)
{
	clock_gettime(clk, out);
	out->tv_sec += ms / 1000;
	out->tv_nsec += (ms % 1000) * 1000000L;
	if (out->tv_nsec >= 1000000000L) {
		out->tv_sec++;
		out->tv_nsec -= 1000000000L;
	}
}

#endif
