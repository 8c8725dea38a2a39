/*
 * The demo application: a small notes server on SQLite, the kind of app
 * that puts ferry into its image. One release of it expects one schema
 * version (built in with -DDEMO_SCHEMA=N, or --schema N); ferry brings the
 * database there before the server starts.
 *
 *   demo-app serve --db FILE [--schema N] [--listen ADDR:PORT]
 *       GET  /        the notes, one per line
 *       GET  /health  200 "ok" when the database is readable and at schema N,
 *                     503 with the reason otherwise
 *       POST /notes   adds a note (the request body is its text)
 *   demo-app get URL         a tiny HTTP client for healthchecks in images
 *   demo-app post URL TEXT   without curl: prints the body, exit 0 on a 2xx
 *                            status, else 1
 *
 * One connection at a time, Connection: close, and SIGTERM/SIGINT end it
 * with status 0 between two requests, like a server that was stopped.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_HEADER	   8192
#define MAX_BODY	   4096
#define IO_TIMEOUT_SECONDS 5
#ifndef DEMO_SCHEMA
#define DEMO_SCHEMA 3 /* the schema this release needs; --schema overrides */
#endif

static volatile sig_atomic_t stop_requested;

struct reply {
	int status;
	char *body; /* sqlite3_malloc'ed, or NULL */
	size_t len;
};

struct request {
	char method[8];
	char path[256];
	char body[MAX_BODY + 1];
	size_t body_len;
};

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("demo-app: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static bool parse_long(const char *s, long min, long max, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	return s[0] && !*end && !errno && *out >= min && *out <= max;
}

/* split_hostport "ADDR:PORT" into its parts (ADDR may be empty: all) */
static int split_hostport(const char *s, char *host, size_t hostsz, char *port,
			  size_t portsz)
{
	const char *colon = strrchr(s, ':');
	size_t n;

	if (!colon)
		return -1;
	n = (size_t)(colon - s);
	if (n >= hostsz || strlen(colon + 1) >= portsz || !colon[1])
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	memcpy(port, colon + 1, strlen(colon + 1) + 1);
	return 0;
}

static int set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_SECONDS, .tv_usec = 0 };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0) {
		say("cannot set socket timeouts: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- the database ---------------------------------------------------- */

static void reply_text(struct reply *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reply_text(struct reply *r, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	r->status = status;
	r->body = sqlite3_vmprintf(fmt, ap);
	r->len = r->body ? strlen(r->body) : 0;
	if (!r->body)
		r->status = 500;
	va_end(ap);
}

/* The schema version is the highest one in ferry's ledger. */
static void health(sqlite3 *db, long schema, struct reply *r)
{
	sqlite3_stmt *st = NULL;
	long have;

	if (sqlite3_prepare_v2(db, "SELECT max(version) FROM ferry_migrations", -1, &st,
			       NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		reply_text(r, 503, "unhealthy: cannot read the schema version: %s\n",
			   sqlite3_errmsg(db));
		goto out;
	}
	have = (long)sqlite3_column_int64(st, 0);
	if (have != schema) {
		reply_text(r, 503,
			   "unhealthy: database schema %ld, this release needs %ld\n",
			   have, schema);
		goto out;
	}
	reply_text(r, 200, "ok\n");
out:
	sqlite3_finalize(st);
}

/* What each release shows: a note's first line (release 3: its title) and
 * the rest of it indented; release 2 added tags. */
#define FIRST_LINE                                                                       \
	"CASE WHEN instr(n.body, char(10)) > 0 "                                         \
	"THEN substr(n.body, 1, instr(n.body, char(10)) - 1) ELSE n.body END"
#define OTHER_LINES                                                                      \
	"CASE WHEN instr(n.body, char(10)) > 0 "                                         \
	"THEN substr(n.body, instr(n.body, char(10)) + 1) ELSE '' END"
#define TAGS "(SELECT group_concat(t.tag, ',') FROM tags t WHERE t.note_id = n.id)"

static const char *list_sql(long schema)
{
	if (schema <= 1)
		return "SELECT n.id, " FIRST_LINE ", " OTHER_LINES
		       ", '' FROM notes n ORDER BY n.id";
	if (schema == 2)
		return "SELECT n.id, " FIRST_LINE ", " OTHER_LINES ", " TAGS
		       " FROM notes n ORDER BY n.id";
	return "SELECT n.id, n.title, " OTHER_LINES ", " TAGS
	       " FROM notes n ORDER BY n.id";
}

static void list_notes(sqlite3 *db, long schema, struct reply *r)
{
	sqlite3_stmt *st = NULL;
	sqlite3_str *out = sqlite3_str_new(db);
	int rc;

	if (sqlite3_prepare_v2(db, list_sql(schema), -1, &st, NULL) != SQLITE_OK) {
		reply_text(r, 500, "cannot list notes: %s\n", sqlite3_errmsg(db));
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *rest = (const char *)sqlite3_column_text(st, 2);
		const char *tags = (const char *)sqlite3_column_text(st, 3);

		sqlite3_str_appendf(out, "#%lld", (long long)sqlite3_column_int64(st, 0));
		if (tags && *tags)
			sqlite3_str_appendf(out, " [%s]", tags);
		sqlite3_str_appendf(out, " %s\n",
				    (const char *)sqlite3_column_text(st, 1));
		while (rest && *rest) {
			size_t len = strcspn(rest, "\n");

			sqlite3_str_appendf(out, "    %.*s\n", (int)len, rest);
			rest += len + (rest[len] == '\n');
		}
	}
	if (rc != SQLITE_DONE) {
		reply_text(r, 500, "cannot list notes: %s\n", sqlite3_errmsg(db));
		goto out;
	}
	r->status = 200;
	r->len = (size_t)sqlite3_str_length(out);
	r->body = sqlite3_str_finish(out);
	out = NULL;
	if (!r->body)
		reply_text(r, 200, "%s", "");
out:
	if (out)
		sqlite3_free(sqlite3_str_finish(out));
	sqlite3_finalize(st);
}

static void add_note(sqlite3 *db, long schema, const char *text, struct reply *r)
{
	/* release 3's title: the first line, cut to 40 characters */
	const char *sql =
		schema >= 3
			? "INSERT INTO notes (title, body) VALUES (substr(CASE WHEN instr(?1, char(10)) > 0 "
			  "THEN substr(?1, 1, instr(?1, char(10)) - 1) ELSE ?1 END, 1, 40), ?1)"
			: "INSERT INTO notes (body) VALUES (?1)";
	sqlite3_stmt *st = NULL;

	if (!*text) {
		reply_text(r, 400, "a note needs a text\n");
		return;
	}
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, text, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		reply_text(r, 500, "cannot add the note: %s\n", sqlite3_errmsg(db));
	else
		reply_text(r, 201, "added #%lld\n",
			   (long long)sqlite3_last_insert_rowid(db));
	sqlite3_finalize(st);
}

/* ---- HTTP ------------------------------------------------------------- */

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 413:
		return "Payload Too Large";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

/* read_request: the request line, the headers (only Content-Length
 * matters) and a body of at most MAX_BODY bytes. Returns an HTTP status:
 * 200 when the request was read, 0 when the client went away. */
static int read_request(int fd, struct request *req)
{
	char buf[MAX_HEADER + MAX_BODY + 1];
	size_t have = 0, head_len, want;
	char *end = NULL, *cl;
	long content_length = 0;

	while (!end) {
		ssize_t n;

		if (have == MAX_HEADER)
			return 400;
		n = read(fd, buf + have, MAX_HEADER - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		have += (size_t)n;
		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	head_len = (size_t)(end - buf) + 4;
	*end = '\0';
	if (sscanf(buf, "%7s %255s", req->method, req->path) != 2)
		return 400;
	for (cl = strchr(buf, '\n'); cl; cl = strchr(cl + 1, '\n')) {
		if (!strncasecmp(cl + 1, "Content-Length:", 15)) {
			char num[32];
			size_t i = 0;
			const char *p = cl + 16;

			while (*p == ' ')
				p++;
			while (i < sizeof num - 1 && p[i] >= '0' && p[i] <= '9') {
				num[i] = p[i];
				i++;
			}
			num[i] = '\0';
			if (!parse_long(num, 0, LONG_MAX, &content_length))
				return 400;
		}
	}
	if (content_length > MAX_BODY)
		return 413;
	want = (size_t)content_length;
	req->body_len = have - head_len < want ? have - head_len : want;
	memcpy(req->body, buf + head_len, req->body_len);
	while (req->body_len < want) {
		ssize_t n = read(fd, req->body + req->body_len, want - req->body_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		req->body_len += (size_t)n;
	}
	req->body[req->body_len] = '\0';
	return 200;
}

static void serve_one(int fd, sqlite3 *db, long schema)
{
	struct request req = { .body_len = 0 };
	struct reply r = { .status = 500, .body = NULL, .len = 0 };
	char head[256];
	int status, n;

	if (set_timeouts(fd) < 0)
		return;
	status = read_request(fd, &req);
	if (status == 0)
		return;
	if (status != 200)
		reply_text(&r, status, "%s\n", reason(status));
	else if (!strcmp(req.path, "/health") || !strcmp(req.path, "/"))
		if (strcmp(req.method, "GET"))
			reply_text(&r, 405, "%s\n", reason(405));
		else if (!strcmp(req.path, "/health"))
			health(db, schema, &r);
		else
			list_notes(db, schema, &r);
	else if (!strcmp(req.path, "/notes"))
		if (strcmp(req.method, "POST"))
			reply_text(&r, 405, "%s\n", reason(405));
		else
			add_note(db, schema, req.body, &r);
	else
		reply_text(&r, 404, "%s\n", reason(404));
	n = snprintf(head, sizeof head,
		     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		     r.status, reason(r.status), r.len);
	if (n < 0 || (size_t)n >= sizeof head || write_all(fd, head, (size_t)n) < 0 ||
	    (r.len && write_all(fd, r.body, r.len) < 0))
		say("cannot answer %s %s: %s", req.method, req.path, strerror(errno));
	else if (strcmp(req.path, "/health"))
		say("%s %s %d", req.method, req.path, r.status);
	sqlite3_free(r.body);
}

static int listen_on(const char *addr)
{
	char host[256], port[16];
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
				  .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	int fd = -1, one = 1, rc;

	if (split_hostport(addr, host, sizeof host, port, sizeof port) < 0) {
		say("bad --listen '%s': expected ADDR:PORT", addr);
		return -1;
	}
	rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (rc) {
		say("cannot resolve '%s': %s", addr, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
	if (fd < 0) {
		say("cannot create a socket: %s", strerror(errno));
		goto out;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 16) < 0) {
		say("cannot listen on '%s': %s", addr, strerror(errno));
		if (close(fd) < 0)
			say("cannot close the socket: %s", strerror(errno));
		fd = -1;
	}
out:
	freeaddrinfo(res);
	return fd;
}

static int serve(const char *dbpath, long schema, const char *addr)
{
	struct sigaction sa = { .sa_handler = on_stop };
	sigset_t block, orig;
	sqlite3 *db = NULL;
	int lfd, rc = 1;

	sigemptyset(&sa.sa_mask);

	/* SIGTERM/SIGINT are blocked except inside pselect, so a stop request
	 * is never lost between two checks of the flag. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	if (sigprocmask(SIG_BLOCK, &block, &orig) < 0 ||
	    sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
	    signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		say("cannot set up signals: %s", strerror(errno));
		return 1;
	}
	sigdelset(&orig, SIGTERM);
	sigdelset(&orig, SIGINT);
	if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		say("cannot open the database '%s': %s", dbpath,
		    db ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	if (sqlite3_busy_timeout(db, 5000) != SQLITE_OK)
		goto out;
	lfd = listen_on(addr);
	if (lfd < 0)
		goto out;
	say("listening on %s (schema %ld, database %s)", addr, schema, dbpath);
	while (!stop_requested) {
		fd_set rfds;
		int fd, n;

		FD_ZERO(&rfds);
		FD_SET(lfd, &rfds);
		n = pselect(lfd + 1, &rfds, NULL, NULL, NULL, &orig);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			say("cannot wait for connections: %s", strerror(errno));
			goto out_close;
		}
		fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
				continue;
			say("cannot accept a connection: %s", strerror(errno));
			goto out_close;
		}
		serve_one(fd, db, schema);
		if (close(fd) < 0)
			say("cannot close a connection: %s", strerror(errno));
	}
	say("stopped");
	rc = 0;
out_close:
	if (close(lfd) < 0)
		say("cannot close the listening socket: %s", strerror(errno));
out:
	sqlite3_close(db);
	return rc;
}

/* ---- the client -------------------------------------------------------- */

static int request(const char *method, const char *url, const char *text)
{
	char hostport[300], host[256], port[16], req[600], buf[4096];
	const char *path, *slash;
	struct addrinfo hints = { .ai_flags = AI_NUMERICSERV,
				  .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	size_t have = 0, len;
	int fd, rc, status = 0, n;
	char *body = NULL;

	if (strncmp(url, "http://", 7)) {
		say("only http:// URLs: '%s'", url);
		return 2;
	}
	url += 7;
	slash = strchr(url, '/');
	len = slash ? (size_t)(slash - url) : strlen(url);
	path = slash ? slash : "/";
	if (len >= sizeof hostport) {
		say("bad URL: the host is too long");
		return 2;
	}
	memcpy(hostport, url, len);
	hostport[len] = '\0';
	if (split_hostport(hostport, host, sizeof host, port, sizeof port) < 0) {
		say("bad URL: expected http://HOST:PORT/PATH");
		return 2;
	}
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		say("cannot resolve '%s': %s", host, gai_strerror(rc));
		return 1;
	}
	fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
	if (fd < 0 || set_timeouts(fd) < 0 ||
	    connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
		say("cannot connect to %s: %s", hostport, strerror(errno));
		freeaddrinfo(res);
		if (fd >= 0 && close(fd) < 0)
			say("cannot close the socket: %s", strerror(errno));
		return 1;
	}
	freeaddrinfo(res);
	rc = 1;
	n = snprintf(req, sizeof req,
		     "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n"
		     "Connection: close\r\n\r\n",
		     method, path, hostport, strlen(text));
	if (n < 0 || (size_t)n >= sizeof req || write_all(fd, req, (size_t)n) < 0 ||
	    write_all(fd, text, strlen(text)) < 0) {
		say("cannot send the request: %s", strerror(errno));
		goto out_close;
	}
	/* the status line and headers first, then the body streamed out */
	for (;;) {
		ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			say("cannot read the answer: %s", strerror(errno));
			goto out_close;
		}
		have += (size_t)r;
		buf[have] = '\0';
		body = strstr(buf, "\r\n\r\n");
		if (body || r == 0 || have == sizeof buf - 1)
			break;
	}
	if (!body || sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
		say("not an HTTP answer");
		goto out_close;
	}
	body += 4;
	for (;;) {
		size_t chunk = have - (size_t)(body - buf);
		ssize_t r;

		if (chunk && fwrite(body, 1, chunk, stdout) != chunk)
			goto out_close;
		r = read(fd, buf, sizeof buf - 1);
		if (r < 0 && errno == EINTR) {
			have = 0;
			body = buf;
			continue;
		}
		if (r < 0) {
			say("cannot read the answer: %s", strerror(errno));
			goto out_close;
		}
		if (r == 0)
			break;
		have = (size_t)r;
		body = buf;
	}
	if (fflush(stdout) != EOF && status >= 200 && status <= 299)
		rc = 0;
out_close:
	if (close(fd) < 0)
		say("cannot close the connection: %s", strerror(errno));
	return rc;
}

static int usage(void)
{
	fputs("usage: demo-app serve --db FILE [--schema N] [--listen ADDR:PORT]\n"
	      "       demo-app get http://HOST:PORT/PATH\n"
	      "       demo-app post http://HOST:PORT/PATH TEXT\n",
	      stderr);
	return 2;
}

int main(int argc, char **argv)
{
	const char *db = NULL, *addr = "0.0.0.0:8080";
	long schema = DEMO_SCHEMA;
	int i;

	if (argc == 3 && !strcmp(argv[1], "get"))
		return request("GET", argv[2], "");
	if (argc == 4 && !strcmp(argv[1], "post"))
		return request("POST", argv[2], argv[3]);
	if (argc < 2 || strcmp(argv[1], "serve"))
		return usage();
	for (i = 2; i < argc; i++) {
		if (i + 1 >= argc)
			return usage();
		if (!strcmp(argv[i], "--db"))
			db = argv[++i];
		else if (!strcmp(argv[i], "--listen"))
			addr = argv[++i];
		else if (!strcmp(argv[i], "--schema")) {
			if (!parse_long(argv[++i], 1, 1000000, &schema)) {
				say("bad --schema '%s'", argv[i]);
				return 2;
			}
		} else
			return usage();
	}
	if (!db)
		return usage();
	return serve(db, schema, addr);
}
