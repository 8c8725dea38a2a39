/*
 * fuzz.h: what the libFuzzer harnesses share. ferry's log lines go to a
 * memory file that each harness reads back and checks (one event, one
 * line; no password); a violated property aborts, which libFuzzer reports
 * as a crash with the input that caused it.
 */
#ifndef FERRY_FUZZ_H
#define FERRY_FUZZ_H

#include "log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_log_fd = -1;

/* Sends ferry's log lines to a memory file, at level debug. */
static inline void fuzz_log_init(void)
{
	fuzz_log_fd = memfd_create("ferry-fuzz-log", 0);
	if (fuzz_log_fd < 0) {
		perror("memfd_create");
		abort();
	}
	log_set_fd(fuzz_log_fd);
	log_setup(LOG_DEBUG, LOG_TEXT);
}

/* The log lines written since the last call (malloc'd, NUL-terminated). */
static inline char *fuzz_log_take(size_t *len)
{
	off_t end = lseek(fuzz_log_fd, 0, SEEK_END);
	char *buf = malloc((size_t)end + 1);

	if (!buf || end < 0 || pread(fuzz_log_fd, buf, (size_t)end, 0) != end) {
		perror("reading the log back");
		abort();
	}
	buf[end] = '\0';
	*len = (size_t)end;
	if (ftruncate(fuzz_log_fd, 0) < 0 || lseek(fuzz_log_fd, 0, SEEK_SET) < 0)
		abort();
	return buf;
}

static inline void fuzz_fail(const char *what, const char *text, size_t len)
{
	fprintf(stderr, "PROPERTY VIOLATED: %s\n--- output ---\n%.*s\n--- end ---\n",
		what, (int)len, text);
	abort();
}

/*
 * One event, one line: text holds exactly lines lines, each ended by its
 * newline, with no other control character (a JSON or text line alike).
 * lines < 0: any number of lines; 0: a text with no newline at all.
 */
static inline void fuzz_check_lines(const char *what, const char *text, size_t len,
				    int lines)
{
	int n = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == '\n')
			n++;
		else if (c < 0x20 || c == 0x7f)
			fuzz_fail(what, text, len);
	}
	if ((lines != 0 && len > 0 && text[len - 1] != '\n') ||
	    (lines >= 0 && n != lines))
		fuzz_fail(what, text, len);
}

#endif
