/*
 * fuzz config: the INI reader (inih with ferry's line reader and key
 * table) and the environment overlay. The input is INI text, optionally
 * followed by "\0ENV\0" and NAME=VALUE records separated by NUL bytes,
 * which become the whole environment. Properties: a refusal is exactly one
 * log line (no newline or other control character of the input in it),
 * acceptance logs nothing, and what is accepted is within each key's range.
 */
#include "config.h"
#include "fuzz.h"

#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_init();
	return 0;
}

/* Makes the records in env[0..len) the whole environment. */
static void set_environment(const char *env, size_t len)
{
	const char *p = env, *end = env + len;

	clearenv();
	setenv("FUZZ", "1", 1); /* never an empty environ */
	for (int i = 0; p < end && i < 16; i++) {
		const char *rec_end = memchr(p, '\0', (size_t)(end - p));
		size_t rl = rec_end ? (size_t)(rec_end - p) : (size_t)(end - p);
		char *rec = strndup(p, rl), *eq = rec ? strchr(rec, '=') : NULL;

		if (!rec)
			abort();
		if (eq && eq > rec) {
			*eq = '\0';
			setenv(rec, eq + 1, 1);
		}
		free(rec);
		p += rl + 1;
	}
}

/* A target version is canonical: its text parses back to it. */
static bool version_canonical(const struct version *v)
{
	const char *text = version_str(v);
	struct version back;

	return version_parse(&back, text, strlen(text)) &&
	       !strcmp(version_str(&back), text) && !version_cmp(&back, v);
}

static void check_ranges(const struct config *c)
{
	if (c->wait_seconds < 0 || c->wait_seconds > 86400 ||
	    c->lock_timeout_seconds < 0 || c->lock_timeout_seconds > 86400 ||
	    c->statement_lock_timeout < 1 || c->statement_lock_timeout > 3600 ||
	    !version_canonical(&c->target_version) || c->snapshot_keep < 1 ||
	    c->snapshot_keep > 100 || c->grace_seconds < 0 || c->grace_seconds > 3600 ||
	    c->log_level < LOG_ERROR || c->log_level > LOG_DEBUG ||
	    (c->log_format != LOG_TEXT && c->log_format != LOG_JSON))
		fuzz_fail("a value out of its key's range was accepted", "", 0);
	if ((c->database_url && !c->database_url[0]) ||
	    (c->state_dir && !c->state_dir[0]) ||
	    (c->snapshot_dir && !c->snapshot_dir[0]) || (c->run_user && !c->run_user[0]))
		fuzz_fail("an empty string was kept (empty means unset)", "", 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *env = NULL;
	size_t ini_len = size, len;
	struct config c;
	char *log;
	int rc;

	for (size_t i = 0; i + 5 <= size; i++) {
		if (!memcmp(data + i, "\0ENV\0", 5)) {
			ini_len = i;
			env = text + i + 5;
			break;
		}
	}
	log_setup(LOG_DEBUG, size % 2 ? LOG_JSON : LOG_TEXT);
	config_defaults(&c);
	rc = config_load_text(&c, "fuzz.ini", text, ini_len);
	log = fuzz_log_take(&len);
	fuzz_check_lines("the INI reader logs one line when it refuses", log, len,
			 rc < 0);
	free(log);
	if (rc == 0) {
		set_environment(env ? env : "", env ? size - ini_len - 5 : 0);
		rc = config_load_env(&c);
		log = fuzz_log_take(&len);
		fuzz_check_lines("the environment logs one line when it refuses", log,
				 len, rc < 0);
		free(log);
		if (rc == 0)
			check_ranges(&c);
	}
	config_release(&c);
	return 0;
}
