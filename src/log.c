/*
 * log: the only place that writes ferry's own messages. Text lines start
 * with "ferry: " so they stand out in `docker compose logs` between the
 * server's lines; JSON lines carry time, level and message.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static enum log_level max_level = LOG_INFO;
static enum log_format out_format = LOG_TEXT;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_setup(enum log_level level, enum log_format format)
{
	max_level = level;
	out_format = format;
}

static size_t json_escape(char *dst, size_t size, const char *src)
{
	size_t n = 0;

	for (; *src && n + 7 < size; src++) {
		unsigned char c = (unsigned char)*src;

		if (c == '"' || c == '\\') {
			dst[n++] = '\\';
			dst[n++] = (char)c;
		} else if (c == '\n') {
			dst[n++] = '\\';
			dst[n++] = 'n';
		} else if (c < 0x20) {
			n += (size_t)snprintf(dst + n, size - n, "\\u%04x", c);
		} else {
			dst[n++] = (char)c;
		}
	}
	dst[n] = '\0';
	return n;
}

static void vlog(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void vlog(enum log_level level, const char *fmt, va_list ap)
{
	char msg[4096], line[8300];
	int saved = errno;
	int n;

	if (level > max_level)
		goto out;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (out_format == LOG_JSON) {
		char esc[8192], stamp[32];
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		json_escape(esc, sizeof(esc), msg);
		n = snprintf(line, sizeof(line),
			     "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":\"%s\"}\n",
			     stamp, ts.tv_nsec / 1000000, level_names[level], esc);
	} else {
		n = snprintf(line, sizeof(line), "ferry: %s%s\n",
			     level == LOG_WARN ? "warning: " : "", msg);
	}
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1;
	/* One write per line so lines of concurrent processes do not interleave. */
	for (const char *p = line; n > 0;) {
		ssize_t w = write(STDERR_FILENO, p, (size_t)n);

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

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

int error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_ERROR, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Hand-written because libpq has no "print this URL safely" call: covers
 * scheme://user:PASSWORD@host, ?password=... query parameters and
 * password=... in key=value conninfo strings (quoted values included).
 */
char *redact_url(const char *url, char *buf, size_t size)
{
	const char *p = url, *scheme, *at, *colon, *end;
	size_t n = 0;

#define PUT(c) do { if (n + 1 < size) buf[n++] = (c); } while (0)
	if (size == 0)
		return buf;
	scheme = strstr(url, "://");
	if (scheme) {
		const char *auth = scheme + 3;

		/* as libpq reads it: user info is what comes before the last '@'
		 * ahead of the first '/', so a password may hold '?' or '#' */
		end = auth + strcspn(auth, "/");
		at = memchr(auth, '@', (size_t)(end - auth));
		/* the last '@' of the authority ends the user info */
		while (at) {
			const char *next = memchr(at + 1, '@', (size_t)(end - at - 1));
			if (!next)
				break;
			at = next;
		}
		colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
		if (colon) {
			for (; p <= colon; p++)
				PUT(*p);
			for (const char *s = "***"; *s; s++)
				PUT(*s);
			p = at;
		}
	}
	while (*p) {
		size_t kw = !strncasecmp(p, "password", 8) ? 8 :
			    !strncasecmp(p, "sslpassword", 11) ? 11 : 0;

		if (kw && (p == url || p[-1] == ' ' || p[-1] == '?' || p[-1] == '&' ||
			   p[-1] == '\t')) {
			const char *v = p + kw;

			while (*v == ' ')
				v++;
			if (*v == '=') {
				for (; p <= v; p++)
					PUT(*p);
				while (*p == ' ')
					p++;
				for (const char *s = "***"; *s; s++)
					PUT(*s);
				if (*p == '\'') {
					for (p++; *p && *p != '\''; p++)
						if (*p == '\\' && p[1])
							p++;
					if (*p)
						p++;
				} else {
					while (*p && *p != ' ' && *p != '&' && *p != '\t')
						p++;
				}
				continue;
			}
		}
		PUT(*p);
		p++;
	}
	buf[n] = '\0';
#undef PUT
	return buf;
}
