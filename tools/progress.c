/*
 * progress.c — the progress bar of progress.h: "\r", the bar, "\033[K".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

struct progress {
	const char *what;
	uint64_t total_items, total_bytes;
	int64_t start_ms;            /* when the rate's count began (new, or a label) */
	uint64_t base_bytes;         /* bytes_done then */
	int64_t last_draw_ms;
	int drawn;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct progress *progress_new(const char *what, uint64_t total_items, uint64_t total_bytes,
			      enum progress_mode mode)
{
	struct progress *p;

	if (mode == PROGRESS_OFF ||
	    (mode == PROGRESS_AUTO && (!isatty(STDOUT_FILENO) || !isatty(STDERR_FILENO))))
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->what = what;
	p->total_items = total_items;
	p->total_bytes = total_bytes;
	p->last_draw_ms = -1000;
	p->start_ms = now_ms();
	return p;
}

void progress_label(struct progress *p, const char *what, uint64_t bytes_done)
{
	if (p) {
		p->what = what;
		p->start_ms = now_ms();
		p->base_bytes = bytes_done;
		p->last_draw_ms = -1000;
	}
}

/* "1m05s" / "42s" into buf. */
static const char *duration(int64_t s, char *buf, size_t len)
{
	if (s >= 3600)
		snprintf(buf, len, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(buf, len, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
	else
		snprintf(buf, len, "%llds", (long long)s);
	return buf;
}

const char *progress_bytes(uint64_t n, char *buf, unsigned len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)n;
	unsigned u = 0;

	while (v >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}

static unsigned term_width(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	return 80;
}

void progress_update(struct progress *p, uint64_t items_done, uint64_t bytes_done,
		     const char *current)
{
	char line[512], done_b[16], total_b[16], rate_b[16], eta[24], bar[32];
	unsigned width, i, fill, n;
	int64_t t, el;
	double frac, rate;

	if (!p)
		return;
	t = now_ms();
	if (items_done < p->total_items && t - p->last_draw_ms < 100)
		return;
	p->last_draw_ms = t;
	if (p->total_bytes)
		frac = (double)bytes_done / (double)p->total_bytes;
	else
		frac = p->total_items ? (double)items_done / (double)p->total_items : 1.0;
	if (frac > 1)
		frac = 1;
	fill = (unsigned)(frac * 20 + 0.5);
	for (i = 0; i < 20; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[20] = '\0';
	el = t - p->start_ms;
	rate = el > 0 && bytes_done > p->base_bytes
		? (double)(bytes_done - p->base_bytes) * 1000.0 / (double)el : 0;
	if (rate >= 1 && p->total_bytes > bytes_done)
		duration((int64_t)((double)(p->total_bytes - bytes_done) / rate) + 1, eta,
			 sizeof(eta));
	else
		snprintf(eta, sizeof(eta), rate >= 1 ? "0s" : "?");
	n = (unsigned)snprintf(line, sizeof(line), "%s [%s] %3u%%  %llu/%llu  %s/%s  %s/s  ETA %s",
			       p->what, bar, (unsigned)(frac * 100), (unsigned long long)items_done,
			       (unsigned long long)p->total_items,
			       progress_bytes(bytes_done, done_b, sizeof(done_b)),
			       progress_bytes(p->total_bytes, total_b, sizeof(total_b)),
			       progress_bytes((uint64_t)rate, rate_b, sizeof(rate_b)), eta);
	if (n < sizeof(line) && current)
		snprintf(line + n, sizeof(line) - n, "  %s", current);
	width = term_width() - 1;
	if (strlen(line) > width)
		line[width] = '\0';
	fprintf(stderr, "\r%s\033[K", line);
	fflush(stderr);
	p->drawn = 1;
}

void progress_clear(struct progress *p)
{
	if (!p || !p->drawn)
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
	p->drawn = 0;
	p->last_draw_ms = -1000;
}

void progress_free(struct progress *p)
{
	progress_clear(p);
	free(p);
}
