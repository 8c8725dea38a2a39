/*
 * log: the only place that writes ferry's own messages. Text lines start
 * with "ferry: " (then "error: " or "warning: " when they are one) so they
 * stand out in `docker compose logs` between the server's lines; JSON
 * lines carry time, level, message and the event's fields. Whoever wrote
 * a message, it leaves here as one line (control characters escaped) with
 * every remembered database password taken out.
 */
#include "log.h"
#include "json.h"
#include "redact.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level max_level = LOG_INFO;
static enum log_format out_format = LOG_TEXT;
static int out_fd = STDERR_FILENO;
static char *capture_buf; /* log_capture's */
static size_t capture_size;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_setup(enum log_level level, enum log_format format)
{
	max_level = level;
	out_format = format;
}

void log_set_fd(int fd)
{
	out_fd = fd;
}

void log_capture(char *buf, size_t size)
{
	capture_buf = size ? buf : NULL;
	capture_size = size;
	if (capture_buf)
		capture_buf[0] = '\0';
}

/* Appends ,"key":"value" (redacted, escaped) to out at *len. */
static void add_str(char *out, size_t size, size_t *len, const char *key, const char *v)
{
	char clean[4096], esc[6 * sizeof(clean)];
	int n;

	if (!v || *len >= size)
		return;
	redact_text(v, clean, sizeof(clean));
	escape_line(esc, sizeof(esc), clean, true);
	n = snprintf(out + *len, size - *len, ",\"%s\":\"%s\"", key, esc);
	if (n > 0)
		*len = (size_t)n >= size - *len ? size - 1 : *len + (size_t)n;
}

static void add_num(char *out, size_t size, size_t *len, const char *key,
		    struct log_num v)
{
	int n;

	if (!v.set || *len >= size)
		return;
	n = snprintf(out + *len, size - *len, ",\"%s\":%lld", key, v.value);
	if (n > 0)
		*len = (size_t)n >= size - *len ? size - 1 : *len + (size_t)n;
}

/* The event's fields as JSON members, each after a comma; "" for none. */
static void json_fields(char *out, size_t size, const struct log_fields *f)
{
	size_t len = 0;

	out[0] = '\0';
	if (!f)
		return;
	add_str(out, size, &len, "event", f->event);
	add_str(out, size, &len, "from", f->from);
	add_str(out, size, &len, "to", f->to);
	add_str(out, size, &len, "migration", f->migration);
	add_str(out, size, &len, "snapshot", f->snapshot);
	add_num(out, size, &len, "duration_ms", f->duration_ms);
	add_num(out, size, &len, "exit", f->exit);
}

static int format_line(char *line, size_t size, enum log_level level, const char *esc,
		       const struct log_fields *f)
{
	static const char *const marks[] = { "error: ", "warning: ", "", "" };
	char stamp[32], extra[8192];
	struct timespec ts;
	struct tm tm;

	if (out_format != LOG_JSON)
		return snprintf(line, size, "ferry: %s%s\n", marks[level], esc);
	json_fields(extra, sizeof(extra), f);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	return snprintf(line, size,
			"{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":\"%s\"%s}\n",
			stamp, ts.tv_nsec / 1000000, level_names[level], esc, extra);
}

static void vlog(enum log_level level, const struct log_fields *f, const char *fmt,
		 va_list ap) __attribute__((format(printf, 3, 0)));
static void vlog(enum log_level level, const struct log_fields *f, const char *fmt,
		 va_list ap)
{
	/* formatted larger than shown, so a password is whole when it is
	 * taken out and the cut falls in text that is left */
	char raw[16384], msg[4096], esc[6 * sizeof(msg)], line[sizeof(esc) + 8192 + 128];
	int saved = errno;
	int n;

	if (level > max_level)
		goto out;
	vsnprintf(raw, sizeof(raw), fmt, ap);
	redact_text(raw, msg, sizeof(msg));
	if (capture_buf && level == LOG_ERROR) {
		if (!capture_buf[0])
			snprintf(capture_buf, capture_size, "%s", msg);
		goto out;
	}
	escape_line(esc, sizeof(esc), msg, out_format == LOG_JSON);
	n = format_line(line, sizeof(line), level, esc, f);
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1;
	/* One write per line so lines of concurrent processes do not interleave. */
	for (const char *p = line; n > 0;) {
		ssize_t w = write(out_fd, p, (size_t)n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		p += w;
		n -= (int)w;
	}
out:
	errno = saved;
}

void log_event(enum log_level level, const struct log_fields *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, f, fmt, ap);
	va_end(ap);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, NULL, fmt, ap);
	va_end(ap);
}

int error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_ERROR, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

int error_errno(const char *fmt, ...)
{
	int e = errno;
	char msg[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	error("%s: %s", msg, strerror(e));
	errno = e;
	return -1;
}
