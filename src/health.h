/*
 * health: the probe of the server that ferry started: an HTTP GET on
 * loopback (healthy on 2xx), or a command (healthy on exit 0). Used by
 * the health gate after an upgrade and by `ferry health` for Docker's
 * HEALTHCHECK in images without curl.
 */
#ifndef FERRY_HEALTH_H
#define FERRY_HEALTH_H

#include <stddef.h>

/*
 * Checks that url is one the probe can ask: http://HOST[:PORT][/PATH]
 * with HOST a loopback address (127.x.y.z, localhost, [::1]). 0, or -1
 * with why filled.
 */
int health_check_url(const char *url, char *why, size_t size);

/* Checks that command splits into words (quotes closed): 0, or -1 with why. */
int health_check_command(const char *command, char *why, size_t size);

/*
 * One probe, given up after timeout seconds: url when set, else command
 * (split on blanks, run without a shell). Returns 0 healthy, 1 not (answer
 * says what it saw: "HTTP 503", "connection refused", "exit status 3"),
 * -1 when it cannot probe at all (answer says why).
 */
int health_probe(const char *url, const char *command, double timeout, char *answer,
		 size_t size);

#endif
