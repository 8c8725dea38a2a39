/*
 * health: a small HTTP/1.1 client over a socket, and a command run with a
 * deadline. Hand-written because ferry links no HTTP library and the gate
 * needs only a status line from loopback; a command probe runs without a
 * shell, as the operator wrote it (sh -c '...' when a shell is wanted).
 */
#include "health.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

struct target {
	int family;
	union {
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} addr;
	char host[80];
	char path[1024];
};

static int parse_host(struct target *t, const char *host, long port)
{
	memset(&t->addr, 0, sizeof(t->addr));
	if (!strcmp(host, "localhost"))
		host = "127.0.0.1";
	if (inet_pton(AF_INET, host, &t->addr.in4.sin_addr) == 1) {
		if ((ntohl(t->addr.in4.sin_addr.s_addr) >> 24) != 127)
			return -1;
		t->family = AF_INET;
		t->addr.in4.sin_family = AF_INET;
		t->addr.in4.sin_port = htons((unsigned short)port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &t->addr.in6.sin6_addr) == 1 &&
	    IN6_IS_ADDR_LOOPBACK(&t->addr.in6.sin6_addr)) {
		t->family = AF_INET6;
		t->addr.in6.sin6_family = AF_INET6;
		t->addr.in6.sin6_port = htons((unsigned short)port);
		return 0;
	}
	return -1;
}

/* http://HOST[:PORT][/PATH], HOST on loopback */
static int parse_url(const char *url, struct target *t, char *why, size_t size)
{
	const char *p = url + 7, *end, *colon;
	char host[80];
	long long port = 80;
	size_t hlen;

	if (strncmp(url, "http://", 7))
		return snprintf(why, size, "expected http://HOST:PORT/PATH"), -1;
	for (const char *c = url; *c; c++)
		if ((unsigned char)*c <= 0x20 || *c == 0x7f)
			return snprintf(why, size,
					"blanks and control characters are not "
					"allowed"),
			       -1;
	end = p + strcspn(p, "/?#");
	if (memchr(p, '@', (size_t)(end - p)))
		return snprintf(why, size,
				"a user or password in the URL is not supported "
				"(the probe asks a server on loopback)"),
		       -1;
	if (strcspn(end, "#") >= sizeof(t->path) - 1)
		return snprintf(why, size, "the path is too long"), -1;
	/* the fragment stays here; a query right after the host gets its / */
	snprintf(t->path, sizeof(t->path), "%s%.*s", *end == '/' ? "" : "/",
		 (int)strcspn(end, "#"), end);
	if (*p == '[') {
		colon = strchr(p, ']');
		if (!colon || colon > end)
			return snprintf(why, size,
					"an IPv6 address needs its closing ']'"),
			       -1;
		hlen = (size_t)(colon - p - 1);
		p++;
		colon = colon[1] == ':' ? colon + 1 : NULL;
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		hlen = (size_t)((colon ? colon : end) - p);
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return snprintf(why, size, "no host"), -1;
	memcpy(host, p, hlen);
	host[hlen] = '\0';
	if (colon) {
		char num[16];
		size_t n = (size_t)(end - colon - 1);

		snprintf(num, sizeof(num), "%.*s", (int)(n < 15 ? n : 15), colon + 1);
		if (n == 0 || n > 5 || !parse_ll(num, 1, 65535, &port))
			return snprintf(why, size,
					"the port must be a number from 1 to 65535"),
			       -1;
	}
	if (parse_host(t, host, (long)port) < 0)
		return snprintf(
			       why, size,
			       "'%s' is not a loopback address (127.0.0.1, "
			       "localhost or [::1]): the probe asks the server in this container",
			       host),
		       -1;
	snprintf(t->host, sizeof(t->host), "%.*s", (int)(end - (url + 7)), url + 7);
	return 0;
}

int health_check_url(const char *url, char *why, size_t size)
{
	struct target t;

	return parse_url(url, &t, why, size);
}

/* Waits until fd is ready for events or the deadline passes: 1, 0, -1. */
static int wait_fd(int fd, short events, double deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	double left;
	int r;

	do {
		left = deadline - now_seconds();
		if (left <= 0)
			return 0;
		r = poll(&p, 1, (int)(left * 1000) + 1);
	} while (r < 0 && errno == EINTR);
	return r;
}

static int connect_by(int fd, const struct target *t, double deadline, char *answer,
		      size_t size)
{
	socklen_t len = t->family == AF_INET ? sizeof(t->addr.in4) : sizeof(t->addr.in6);
	int err = 0;
	socklen_t elen = sizeof(err);

	if (connect(fd, (const struct sockaddr *)&t->addr, len) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return snprintf(answer, size, "%s", strerror(errno)), 1;
	if (wait_fd(fd, POLLOUT, deadline) <= 0)
		return snprintf(answer, size, "no connection within the probe's timeout"),
		       1;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err)
		return snprintf(answer, size, "%s", strerror(err ? err : errno)), 1;
	return 0;
}

/* Reads until the status line is complete; returns its status code. */
static int read_status(int fd, double deadline, char *answer, size_t size)
{
	char buf[512];
	size_t n = 0;
	int code;

	while (n < sizeof(buf) - 1 && !memchr(buf, '\n', n)) {
		ssize_t r;

		if (wait_fd(fd, POLLIN, deadline) <= 0)
			return snprintf(answer, size,
					"no answer within the probe's timeout"),
			       -1;
		r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (strncmp(buf, "HTTP/1.", 7) || (buf[7] != '0' && buf[7] != '1') ||
	    buf[8] != ' ' || !isdigit((unsigned char)buf[9]) ||
	    !isdigit((unsigned char)buf[10]) || !isdigit((unsigned char)buf[11]) ||
	    (buf[12] != ' ' && buf[12] != '\0'))
		return snprintf(answer, size, "not an HTTP answer"), -1;
	code = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	/* the reason phrase goes to logs and records: printable only */
	for (char *c = buf; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	snprintf(answer, size, "HTTP %.100s", buf + 9);
	return code;
}

static int probe_url(const char *url, double timeout, char *answer, size_t size)
{
	double deadline = now_seconds() + timeout;
	struct target t;
	char why[256], *req;
	int fd, rc = 1, code;

	if (parse_url(url, &t, why, size < sizeof(why) ? sizeof(why) : size) < 0)
		return snprintf(answer, size, "[health] url: %s", why), -1;
	fd = socket(t.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return snprintf(answer, size, "socket: %s", strerror(errno)), -1;
	if (connect_by(fd, &t, deadline, answer, size))
		goto out;
	req = xasprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ferry\r\n"
			"Connection: close\r\n\r\n",
			t.path, t.host);
	if (wait_fd(fd, POLLOUT, deadline) <= 0 || write_all(fd, req, strlen(req)) < 0)
		snprintf(answer, size, "cannot send the request: %s", strerror(errno));
	else if ((code = read_status(fd, deadline, answer, size)) >= 200 && code < 300)
		rc = 0;
	free(req);
out:
	close(fd);
	return rc;
}

/* The command's words (words_split), the reason named as [health]'s. */
static char **split_words(const char *command, char *why, size_t size)
{
	char reason[64];
	char **argv = words_split(command, reason, sizeof(reason));

	if (!argv)
		snprintf(why, size, "[health] command: %s", reason);
	return argv;
}

/* Waits for pid until the deadline; kills it after. */
static int reap_by(pid_t pid, double deadline, int *status)
{
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		if (now_seconds() >= deadline) {
			kill(pid, SIGKILL);
			while (waitpid(pid, status, 0) < 0 && errno == EINTR)
				;
			return 1;
		}
		usleep(20000);
	}
}

int health_check_command(const char *command, char *why, size_t size)
{
	char **argv = split_words(command, why, size);

	if (!argv)
		return -1;
	if (!argv[0]) {
		words_free(argv);
		return snprintf(why, size, "[health] command is empty"), -1;
	}
	words_free(argv);
	return 0;
}

static int probe_command(const char *command, double timeout, char *answer, size_t size)
{
	char **argv = split_words(command, answer, size);
	sigset_t none;
	int status = 0, rc = -1, r;
	pid_t pid;

	if (!argv)
		return -1;
	if (!argv[0]) {
		snprintf(answer, size, "[health] command is empty");
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(answer, size, "cannot fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execvp(argv[0], argv);
		_exit(errno == ENOENT ? 127 : 126);
	}
	r = reap_by(pid, now_seconds() + timeout, &status);
	if (r < 0)
		snprintf(answer, size, "waitpid: %s", strerror(errno));
	else if (r > 0)
		snprintf(answer, size, "'%s' took longer than %.0f s", argv[0], timeout),
			rc = 1;
	else if (WIFEXITED(status))
		snprintf(answer, size, "'%s' exited with status %d", argv[0],
			 WEXITSTATUS(status)),
			rc = WEXITSTATUS(status) == 0 ? 0 : 1;
	else
		snprintf(answer, size, "'%s' was killed by signal %d", argv[0],
			 WTERMSIG(status)),
			rc = 1;
out:
	words_free(argv);
	return rc;
}

int health_probe(const char *url, const char *command, double timeout, char *answer,
		 size_t size)
{
	answer[0] = '\0';
	if (url)
		return probe_url(url, timeout, answer, size);
	if (command)
		return probe_command(command, timeout, answer, size);
	snprintf(answer, size, "no [health] url or command configured");
	return -1;
}
