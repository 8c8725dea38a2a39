/*
 * input: TAP tests for what reads input from outside and what prints it:
 * URL redaction and the passwords the log layer takes out, libpq's
 * refusals in ferry's words, one log line per event (escapes, JSON), the
 * INI reader on text in memory; and the inputs the fuzz harnesses of
 * tests/fuzz/ found, each kept here as a regression test.
 */
#include "config.h"
#include "log.h"
#include "pgurl.h"
#include "redact.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int n, failed;
static int log_fd;

static void ok(int cond, const char *what)
{
	n++;
	if (!cond)
		failed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", n, what);
}

/* what: a description; escapes control characters so TAP stays one line */
static const char *shown(const char *s)
{
	static char buf[4][1200];
	static int k;
	char *b = buf[k++ % 4];

	return redact_url(s, b, sizeof(buf[0]));
}

static void redacts(const char *url, const char *want)
{
	char buf[1024], what[2400];

	redact_url(url, buf, sizeof(buf));
	snprintf(what, sizeof(what), "redact %s -> %s (got %s)", shown(url), want,
		 shown(buf));
	ok(!strcmp(buf, want), what);
}

/* redact_url(url) must not show secret, whatever else it shows */
static void hides(const char *url, const char *secret)
{
	char buf[4096], what[4200];

	redact_url(url, buf, sizeof(buf));
	snprintf(what, sizeof(what), "redact %.300s hides '%s' (got %.300s)", url, secret,
		 buf);
	ok(!strstr(buf, secret), what);
}

/* The log lines written since the last call. */
static const char *log_take(void)
{
	static char buf[65536];
	off_t end = lseek(log_fd, 0, SEEK_END);
	ssize_t r = pread(log_fd, buf,
			  end < (off_t)sizeof(buf) ? (size_t)end : sizeof(buf) - 1, 0);

	buf[r > 0 ? r : 0] = '\0';
	if (ftruncate(log_fd, 0) < 0 || lseek(log_fd, 0, SEEK_SET) < 0)
		abort();
	return buf;
}

static int lines(const char *s)
{
	int k = 0;

	for (; *s; s++)
		k += *s == '\n';
	return k;
}

/*
 * store_init(url) refuses it with one line that says want and never
 * secret.
 */
static void refuses(const char *url, const char *want, const char *secret)
{
	struct store st;
	char what[1600];
	int rc = store_init(&st, url);
	const char *got = log_take();

	snprintf(what, sizeof(what),
		 "refused: %s -> one line with '%s', no '%s' (got %s)", shown(url), want,
		 shown(secret), shown(got));
	ok(rc < 0 && lines(got) == 1 && strstr(got, want) && !strstr(got, secret), what);
	store_release(&st);
	redact_reset();
}

/* pgurl_check(conninfo) says want, and not secret */
static void explains(const char *conninfo, const char *want, const char *secret)
{
	char why[512], what[1400];
	int rc = pgurl_check(conninfo, why, sizeof(why));

	snprintf(what, sizeof(what), "libpq refuses %s: '%s' (got %s)", shown(conninfo),
		 want, rc < 0 ? why : "accepted");
	ok(rc < 0 && strstr(why, want) && (!secret || !strstr(why, secret)), what);
}

static void test_redact(void)
{
	/* user info */
	redacts("postgres://app:s3cret@db:5432/app", "postgres://app:***@db:5432/app");
	redacts("postgres://u:p%zz@h/db", "postgres://u:***@h/db");
	redacts("postgres://u:secret@[::1/db", "postgres://u:***@[::1/db");
	redacts("postgres://u:p/w@h/db", "postgres://u:***@h/db");
	redacts("postgres://user@server:pw@h:5432/db",
		"postgres://user@server:***@h:5432/db");
	redacts("postgres:/u:pw@h/db", "postgres:/u:***@h/db");
	redacts("POSTGRES://u:pw@h/db", "POSTGRES://u:***@h/db");
	redacts("  postgres://u:pw@h/db", "  postgres://u:***@h/db");
	redacts("host=h dbname=postgres://u:pw@h/db",
		"host=h dbname=postgres://u:***@h/db");
	/* a host's port that is no number: postgres://user:secret */
	redacts("postgres://user:secret", "postgres://user:***");
	redacts("postgres://u@h:secret/db", "postgres://u@h:***/db");
	redacts("postgres://db:5432/app?user=a@b", "postgres://db:5432/app?user=a@b");
	redacts("postgres://[::1]:5432/db", "postgres://[::1]:5432/db");
	redacts("postgres://h1:5432,h2:5433/db", "postgres://h1:5432,h2:5433/db");
	/* keys */
	redacts("host='db'password=x port=1", "host='db'password=*** port=1");
	redacts("host=db\tpassword=x", "host=db\\tpassword=***");
	redacts("host=db password=a\\ b c", "host=db password=*** c");
	redacts("host=db password='a b' c=d", "host=db password=*** c=d");
	redacts("host=db password='unterminated c=d", "host=db password=***");
	redacts("postgres://h/d?pass%77ord=x&a=b", "postgres://h/d?pass%77ord=***&a=b");
	redacts("postgres://h/d?password =x&a=b", "postgres://h/d?password =***&a=b");
	redacts("postgres://h/d?password=a b&c=d", "postgres://h/d?password=***&c=d");
	redacts("host=db Password = 'x'", "host=db Password =***");
	/* what is not a password */
	redacts("sqlite:///data/u:x@y.db", "sqlite:///data/u:x@y.db");
	redacts("sqlite:data/app.db", "sqlite:data/app.db");
	redacts("/data/password=x.db", "/data/password=x.db");
	redacts("host=db passwordx=1", "host=db passwordx=1");
	/* one line */
	redacts("mysql://h/db\r\nferry: fake", "mysql://h/db\\r\\nferry: fake");
	redacts("a\x1b[31mb\x7f", "a\\x1b[31mb\\x7f");

	{
		char many[4096] = "host=db", buf[4096], small[8];
		int i;

		for (i = 0; i < 60; i++) {
			size_t len = strlen(many);
			snprintf(many + len, sizeof(many) - len, " password=Secret%02d",
				 i);
		}
		redact_url(many, buf, sizeof(buf));
		ok(!strstr(buf, "Secret"),
		   "60 password= keys: none shown (more than the spans kept)");
		redact_url("postgres://u:secret@h/db", small, sizeof(small));
		ok(!strcmp(small, "postgre"), "a short buffer: cut, NUL-terminated");
		ok(redact_has_secret("host=h password=x") &&
			   !redact_has_secret("/data/app.db") &&
			   redact_has_secret("\"host=db password=x\""),
		   "redact_has_secret");
	}

	/* found by fuzzing: a quote that ends early leaves a password key inside
	 * the value, and the password after it was shown */
	hides("host=h password='Zq7WmAa withost=h password='Zq7WmAb with spaces'  "
	      "spaces' db=x",
	      "Zq7WmAb");
	/* found by fuzzing: blanks before a query key's '=' made the key too
	 * long to be recognised */
	hides("postgres://h/db?a=b&password\v\v\v\v\v\v\v\v\v\v\v\v\v\v\v\v\v\v=Zq7WmAa",
	      "Zq7WmAa");
}

static void test_remember(void)
{
	char buf[512];

	redact_reset();
	redact_remember_url("postgres://u:s%40cret@h/db");
	ok(!strcmp(redact_text("libpq: \"s@cret\" and s%40cret", buf, sizeof(buf)),
		   "libpq: \"***\" and ***"),
	   "remembered: the URL's password, written and percent-decoded");
	redact_reset();
	redact_remember_url("host=h password='it\\'s secret'");
	ok(!strcmp(redact_text("x it's secret y", buf, sizeof(buf)), "x *** y"),
	   "remembered: a quoted value, backslashes undone");
	redact_reset();
	redact_remember("ab");
	ok(!strcmp(redact_text("role \"ab\" abc 'ab' ab", buf, sizeof(buf)),
		   "role \"***\" abc '***' ab"),
	   "a password of 2 characters: only where it stands quoted");
	redact_reset();
	redact_remember("secret");
	redact_remember("secret2");
	ok(!strcmp(redact_text("secret2 secret", buf, sizeof(buf)), "*** ***"),
	   "the longer password is replaced whole");
	redact_reset();
	ok(!strcmp(redact_text("secret", buf, sizeof(buf)), "secret"),
	   "redact_reset forgets");
}

static void test_pgurl(void)
{
	explains("postgres://u:p%zz@h/db", "bad percent-escape in the password", "p%zz");
	explains("postgres://u%zz:pw@h/db", "bad percent-escape in the user name", NULL);
	explains("postgres://u:s%00x@h/db", "%00 in the password", "s%00x");
	explains("postgres://u:secret@[::1/db", "unclosed '[' in the host", "secret");
	explains("postgres://u:secret@[]/db", "empty [] in the host", "secret");
	explains("postgres://u:secret@[::1]x/db", "unexpected character after ']'",
		 "secret");
	explains("postgres://u:secret@h%zz/db", "bad percent-escape in the host",
		 "secret");
	explains("postgres://u:secret@h/d%zz", "bad percent-escape in the database name",
		 "secret");
	explains("postgres://u:secret@h/db?bogus=1",
		 "unknown option 'bogus' in the query", "secret");
	explains("postgres://h/db?password=a&b=c", "after the password is no option",
		 "a&b");
	explains("postgres://h/db?sslmode", "a query parameter without '='", NULL);
	explains("postgres://h/db?password=a=b",
		 "a second '=' in query parameter 'password'", "a=b");
	explains("postgres://h/db?password=a%zz",
		 "bad percent-escape in query parameter "
		 "'password'",
		 "a%zz");
	explains("host=h password=secret bogus=1",
		 "an unknown option after the value of "
		 "'password'",
		 "secret");
	explains("host=h password='my secret' bogus=1", "unknown option 'bogus'",
		 "my secret");
	explains("host=h PASSWORD=secret",
		 "unknown option 'PASSWORD' (options are lower case: "
		 "'password')",
		 "secret");
	explains("host=h password=my secret",
		 "a word without '=' after the value of "
		 "'password'",
		 "secret");
	explains("host=h password='secret", "unterminated quoted value of 'password'",
		 "secret");
	explains("host=h passwrd=secret", "unknown option 'passwrd'", "secret");
	ok(pgurl_check("postgres://u:pw@h/db?ssl=true&requiressl=1", (char[64]){ 0 },
		       64) == 0,
	   "libpq's ssl=true and requiressl are taken");
}

static void test_store(void)
{
	refuses("postgres://u:p%zzSECRET@h/db",
		"database URL: bad percent-escape in the "
		"password",
		"SECRET");
	refuses("postgres://u:SECRET@[::1/db", "unclosed '['", "SECRET");
	refuses("postgres://u:SECRET@h/db?bogus=1", "unknown option 'bogus'", "SECRET");
	refuses("host=h password='my SECRET pw' bogus=1", "unknown option 'bogus'",
		"SECRET");
	refuses("host=h Password=SECRET", "unknown option 'Password'", "SECRET");
	refuses("PASSWORD=SECRET host=h", "unknown option 'PASSWORD'", "SECRET");
	refuses("\"host=h password=SECRET\"", "it seems to hold a password", "SECRET");
	refuses("postgres:/u:SECRET@h/db", "it seems to hold a password", "SECRET");
	refuses("mysql://u:SECRET@h/db", "unknown kind of database URL", "SECRET");
	refuses("mysql://h/db\nferry: fake", "h/db\\nferry: fake", "\nferry");
	/* found by fuzzing: a key libpq reads in the query, inside what the
	 * user info of an odd URL masks, was named */
	refuses("postgres://u@h:pw?kSECRETy=a=b,e@x", "a second '=' in a query parameter",
		"SECRET");

	{
		struct store st;
		int rc = store_init(&st, "Host=db");

		ok(rc < 0 && strstr(log_take(), "(options are lower case: 'host')"),
		   "a key in capitals goes to libpq's parser, not into a file name");
		store_release(&st);
	}
	{
		struct store st;
		int rc = store_init(&st, "host=h password='SECRET pw'");

		log_error("connection to \"h\" failed for \"SECRET pw\"");
		ok(rc == 0 && !strstr(log_take(), "SECRET"),
		   "after store_init, a log line quoting the password does not show it");
		store_release(&st);
		redact_reset();
	}
}

static void test_log(void)
{
	const char *got;

	log_error("a\nb\rc\td\x1b[0m\x7f"
		  "e");
	got = log_take();
	ok(!strcmp(got, "ferry: error: a\\nb\\rc\\td\\x1b[0m\\x7fe\n"),
	   "text: control characters escaped, one line");
	log_setup(LOG_DEBUG, LOG_JSON);
	log_error("q\"b\\ n\n \x01 \x7f \xc3\xa9 \xff \xed\xa0\x80 end");
	got = log_take();
	ok(lines(got) == 1 &&
		   strstr(got, "\"msg\":\"q\\\"b\\\\ n\\n \\u0001 \\u007f \xc3\xa9 "
			       "\\ufffd \\ufffd\\ufffd\\ufffd end\"}\n"),
	   "JSON: escapes, UTF-8 kept, other bytes U+FFFD");
	redact_remember("Sup3rSecret");
	log_event(LOG_INFO,
		  &(struct log_fields){ .event = "snapshot_taken",
					.snapshot = "/s/Sup3rSecret\"\n",
					.duration_ms = LOG_NUM(12),
					.exit = LOG_NUM(0) },
		  "m");
	got = log_take();
	ok(lines(got) == 1 && !strstr(got, "Sup3rSecret") &&
		   strstr(got, "\"msg\":\"m\",\"event\":\"snapshot_taken\","
			       "\"snapshot\":\"/s/***\\\"\\n\",\"duration_ms\":12,"
			       "\"exit\":0}\n"),
	   "JSON: the event's fields as members, escaped and redacted");
	log_setup(LOG_DEBUG, LOG_TEXT);
	log_event(LOG_INFO, &(struct log_fields){ .event = "x", .from = "1" }, "m");
	ok(!strcmp(log_take(), "ferry: m\n"), "text: an event is its message alone");
	log_warn("pw %s end", "Sup3rSecret");
	ok(!strcmp(log_take(), "ferry: warning: pw *** end\n"),
	   "a remembered password is taken out of any line");
	redact_reset();
	{
		char big[20000];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		log_info("%s", big);
		got = log_take();
		ok(lines(got) == 1 && strlen(got) < 4200,
		   "a long message: cut, still one line");
	}
}

static void config_text(const char *text, size_t len, const char *want, const char *what)
{
	struct config c;
	char msg[900];
	int rc;
	const char *got;

	config_defaults(&c);
	rc = config_load_text(&c, "t.ini", text, len);
	got = log_take();
	snprintf(msg, sizeof(msg), "%s (got %s)", what, shown(got));
	ok(want ? rc < 0 && lines(got) == 1 && strstr(got, want) : rc == 0 && !got[0],
	   msg);
	config_release(&c);
}

#define TEXT(s) s, sizeof(s) - 1

static void test_config(void)
{
	config_text(TEXT("[run]\ngrace_seconds = 7\n"), NULL, "INI text in memory");
	config_text(TEXT(""), NULL, "empty INI text");
	config_text(TEXT("[run]\ngrace\0_seconds = 1\n[log]\nlevel = info\n"),
		    "t.ini:2: a NUL byte in the line", "a NUL byte: refused at its line");
	config_text(TEXT("[run]\r\ngrace_seconds = 1\r2\r\n"),
		    "grace_seconds: bad value '1\\r2'", "a CR in a value: escaped");
	config_text(TEXT("[run]\ngrace_seconds = \x1b]0;x\x07\n"),
		    "bad value '\\x1b]0;x\\x07'", "terminal escapes in a value: escaped");
}

int main(void)
{
	log_fd = memfd_create("unit-log", 0);
	if (log_fd < 0) {
		perror("memfd_create");
		return 1;
	}
	log_set_fd(log_fd);
	log_setup(LOG_DEBUG, LOG_TEXT);
	test_redact();
	test_remember();
	test_pgurl();
	test_store();
	test_log();
	test_config();
	printf("1..%d\n", n);
	return failed != 0;
}
