/*
 * ferry health [URL]: the health gate's probe alone, for Docker's
 * HEALTHCHECK in images without curl (scratch, distroless): exit 0 when
 * healthy, 1 when not; [health] url (or command) unless a URL is given.
 */
#include "commands.h"
#include "config.h"
#include "exits.h"
#include "health.h"
#include "log.h"
#include "session.h"

#include <stdio.h>
#include <string.h>

int cmd_health(struct session *s, const struct cmd_args *a)
{
	const struct config *c = s->c;
	const char *url = a->rest[0] ? a->rest[0] : c->health_url;
	const char *command = a->rest[0] ? NULL : c->health_command;
	char why[256], answer[256];
	double timeout = (double)c->health_interval_seconds;
	int r;

	if (a->rest[0] && a->rest[1]) {
		log_error("health takes one URL (see 'ferry help health')");
		return EXIT_USAGE;
	}
	if (!url && !command) {
		log_error("no health probe: give a URL, or set [health] url or command");
		return EXIT_CONFIG;
	}
	if (url && health_check_url(url, why, sizeof(why)) < 0) {
		log_error("health URL%s%s%s: %s", strchr(url, '@') ? "" : " '",
			  strchr(url, '@') ? "" : url, strchr(url, '@') ? "" : "'", why);
		return EXIT_CONFIG;
	}
	r = health_probe(url, command, timeout < 10 ? timeout : 10, answer,
			 sizeof(answer));
	printf("%s: %s\n", r == 0 ? "healthy" : "unhealthy", answer);
	return r == 0 ? 0 : EXIT_CHECK_FAILED;
}
