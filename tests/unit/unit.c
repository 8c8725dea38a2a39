/* unit: TAP tests for the parsers (config values, URL redaction). */
#include "config.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

static int n, failed;

static void ok(int cond, const char *what)
{
	n++;
	if (!cond)
		failed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", n, what);
}

static void redacts(const char *url, const char *want)
{
	char buf[512], what[700];

	redact_url(url, buf, sizeof(buf));
	snprintf(what, sizeof(what), "redact %s -> %s (got %s)", url, want, buf);
	ok(!strcmp(buf, want), what);
}

int main(void)
{
	bool st[256];

	redacts("postgres://app:s3cret@db:5432/app", "postgres://app:***@db:5432/app");
	redacts("postgresql://app@db/app", "postgresql://app@db/app");
	redacts("postgres://u:p%40ss@h/d?sslmode=require", "postgres://u:***@h/d?sslmode=require");
	redacts("postgres://u:a@b@h/d", "postgres://u:***@h/d");
	redacts("postgres://h/d?user=u&password=pw&sslmode=disable",
		"postgres://h/d?user=u&password=***&sslmode=disable");
	redacts("host=db user=app password=s3cret dbname=app",
		"host=db user=app password=*** dbname=app");
	redacts("host=db password = 'it\\'s secret' dbname=app",
		"host=db password =*** dbname=app");
	redacts("sqlite:///data/app.db", "sqlite:///data/app.db");
	redacts("/data/password=x.db", "/data/password=x.db");

	ok(config_parse_status_list(st, "143, 130") && st[143] && st[130] && !st[0],
	   "status list parses");
	ok(!config_parse_status_list(st, "256"), "status 256 refused");
	ok(!config_parse_status_list(st, "1,,2"), "empty list item refused");
	ok(!config_parse_status_list(st, "abc"), "word refused");

	printf("1..%d\n", n);
	return failed != 0;
}
