/*
 * util: small helpers every module needs: checked allocation and number
 * parsing, monotonic time, and the crash-safe file primitives.
 */
#ifndef FERRY_UTIL_H
#define FERRY_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The value of a hex digit, -1 for anything else. */
int hex_digit(char c);
/* Whole decimal number in [min, max]; false on anything else. */
bool parse_ll(const char *s, long long min, long long max, long long *out);

double now_seconds(void); /* CLOCK_MONOTONIC */
/* A SIGTERM or SIGINT waits (ferry run blocks them for the supervisor). */
bool stop_requested(void);

/*
 * The one way ferry waits for what another process holds (a lock, the
 * database to itself): try, pause, try again until timeout seconds have
 * passed or a stop is requested; say so when the wait starts and every
 * 10 s.
 */
struct wait {
	long long timeout; /* seconds; 0: a single try */
	double pause;	   /* seconds between tries */
	/* 0: got it; 1: still held (who says by whom, for the log); -1: failed
	 * (logged) */
	int (*try_once)(void *arg, char *who, size_t size);
	/* first: the wait starts now, else it goes on */
	void (*waiting)(void *arg, const char *who, bool first);
	/* the last word: timed out (or timeout 0), or stopped */
	void (*gave_up)(void *arg, const char *who, bool stopped);
	void *arg;
};
/* 0 got it; 1 gave up (logged by gave_up); -1 error (logged) */
int wait_for(const struct wait *w);

int write_all(int fd, const void *buf, size_t len);
int fsync_dir_of(const char *path); /* fsync the directory holding path */
int fsync_path(const char *path);
/* Writes data to path via path.tmp, fsync, rename, fsync of the directory. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
int mkdir_p(const char *path, mode_t mode);
bool path_exists(const char *path);
char *dir_of(const char *path); /* malloc'd dirname */
const char *base_of(const char *path);
/* "12.3 MiB" style size for log lines. */
const char *human_size(unsigned long long bytes, char *buf, size_t size);

#endif

/*
 * Copies size bytes from in to out, fastest way first: reflink (FICLONE),
 * copy_file_range, then read/write. *how names the way used. Logs a
 * progress line every few seconds under label; crash names the test
 * crash point hit after each chunk. -1 with errno set.
 */
int copy_fd(int in, int out, unsigned long long size, const char *label,
	    const char *crash, const char **how);
/* Test-only fault injection: kill -9 ourselves when FERRY_TEST_CRASH_AT
 * names this point. */
void crash_point(const char *name);

/*
 * A command's words: split on blanks, with the quoting a reader of the
 * ini file expects ('single' quotes literal, "double" quotes with \" and
 * \\, a backslash escaping the next character), no expansion of any
 * kind; NULL-terminated, words_free() frees them. NULL with why filled
 * ("an unclosed ' quote") when a quote is not closed.
 */
char **words_split(const char *command, char *why, size_t size);
void words_free(char **argv);
