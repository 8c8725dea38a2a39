/*
 * progress: long work (backup, restore, rebuild) reports bytes done, total,
 * rate and ETA: a log line every 5 s, or one live line on a terminal.
 */
#ifndef FERRY_PROGRESS_H
#define FERRY_PROGRESS_H

#include <stdbool.h>

struct progress {
	const char *what;
	unsigned long long total, done;
	double start, last;
	bool tty, drawn;
};

void progress_start(struct progress *p, const char *what, unsigned long long total);
void progress_add(struct progress *p, unsigned long long bytes);
void progress_end(struct progress *p);

#endif
