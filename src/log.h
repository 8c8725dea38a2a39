/*
 * log: one line per event on stderr, "ferry: ..." for people (errors
 * "ferry: error: ...", warnings "ferry: warning: ...") or one JSON object
 * per line for log collectors. Every printed database URL goes
 * through redact.h, which this header brings along.
 */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "redact.h"

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
enum log_format { LOG_TEXT, LOG_JSON };

void log_setup(enum log_level level, enum log_format format);
/* Where lines go, stderr by default (the fuzz harnesses read them back). */
void log_set_fd(int fd);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * The structured fields of an event, for log collectors: in JSON they are
 * members of the line next to time, level and msg (a NULL string or an
 * unset number is left out); in text only the message is printed. Every
 * string goes through redaction as the message does.
 */
struct log_num {
	bool set;
	long long value;
};
#define LOG_NUM(v) ((struct log_num){ true, (long long)(v) })

struct log_fields {
	const char *event; /* what happened, e.g. "migration_applied" */
	const char *from, *to, *migration, *snapshot;
	struct log_num duration_ms, exit;
};

/* log_event(LOG_INFO, LOG_FIELDS(.event = "x", .to = "3"), "fmt", ...) */
#define LOG_FIELDS(...) (&(struct log_fields){ __VA_ARGS__ })

void log_event(enum log_level level, const struct log_fields *f, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/*
 * Until log_capture(NULL, 0), error lines are not written: the first one
 * is kept in buf (its password taken out, without "ferry: "), for a
 * caller that reports the failure in words of its own (ferry doctor,
 * whose failing check is a line of its report, not an abort).
 */
void log_capture(char *buf, size_t size);

/* Logs at error level and returns -1, for `return error(...)`. */
int error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same with ": <strerror(errno)>" appended; errno is kept. */
int error_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
