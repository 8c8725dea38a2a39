/* progress: see progress.h. */
#include "progress.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <unistd.h>

#define INTERVAL 5.0

void progress_start(struct progress *p, const char *what, unsigned long long total)
{
	p->what = what;
	p->total = total;
	p->done = 0;
	p->start = p->last = now_seconds();
	p->tty = isatty(2) == 1;
	p->drawn = false;
}

static void report(struct progress *p, double now)
{
	double secs = now - p->start, rate = secs > 0 ? (double)p->done / secs : 0;
	char d[32], t[32], r[32], eta[32] = "?";

	if (rate > 0 && p->total >= p->done)
		snprintf(eta, sizeof(eta), "%.0fs", (double)(p->total - p->done) / rate);
	human_size(p->done, d, sizeof(d));
	human_size(p->total, t, sizeof(t));
	human_size((unsigned long long)rate, r, sizeof(r));
	if (p->tty) {
		fprintf(stderr, "\r%s: %s of %s, %s/s, ETA %s   ", p->what, d, t, r, eta);
		p->drawn = true;
	} else {
		log_info("%s: %s of %s, %s/s, ETA %s", p->what, d, t, r, eta);
	}
}

void progress_add(struct progress *p, unsigned long long bytes)
{
	double now;

	p->done += bytes;
	now = now_seconds();
	if (now - p->last >= (p->tty ? 0.5 : INTERVAL)) {
		p->last = now;
		report(p, now);
	}
}

void progress_end(struct progress *p)
{
	if (p->drawn)
		fputc('\n', stderr);
	p->drawn = false;
}
