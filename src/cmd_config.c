/*
 * ferry config: the effective configuration, every key of every section
 * with its value and where that value came from (file:line, a variable,
 * NAME_FILE and its file, an option, or the default), for "which setting
 * won?". Values are shown as config_item() makes them safe to print:
 * passwords masked, strings read from a NAME_FILE hidden. It opens no
 * database and reads no migrations.
 */
#include "commands.h"
#include "json.h"
#include "session.h"

#include <stdio.h>
#include <string.h>

#define VALUE_COLUMN 32 /* a longer value pushes only its own comment out */

static const char *const origin_names[] = {
	[ORIGIN_DEFAULT] = "default",	[ORIGIN_FILE] = "file",	    [ORIGIN_ENV] = "env",
	[ORIGIN_ENV_FILE] = "env_file", [ORIGIN_OPTION] = "option",
};

/* "ferry.ini:12", "DATABASE_URL_FILE (/run/secrets/db_url)", "default" */
static void source_text(const struct config_source *src, char *buf, size_t size)
{
	char path[6 * 1024];

	escape_line(path, sizeof(path), src->path ? src->path : "", false);
	switch (src->origin) {
	case ORIGIN_DEFAULT:
		snprintf(buf, size, "default");
		return;
	case ORIGIN_FILE:
		escape_line(path, sizeof(path), src->name, false);
		snprintf(buf, size, "%s:%d", path, src->line);
		return;
	case ORIGIN_ENV:
	case ORIGIN_OPTION:
		snprintf(buf, size, "%s", src->name);
		return;
	case ORIGIN_ENV_FILE:
		snprintf(buf, size, "%s (%s)", src->name, path);
		return;
	}
}

static void print_text(const struct config *c)
{
	const char *section = NULL;
	struct config_item it;
	int wkey = 0, wvalue = 0;

	/* the widths first, so that the columns line up */
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		int n, v;

		config_item(c, i, &it);
		n = (int)(strlen(it.section) + strlen(it.name) + 3);
		v = (int)strlen(it.text);
		if (n > wkey)
			wkey = n;
		if (v > wvalue && v <= VALUE_COLUMN)
			wvalue = v;
	}
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		char key[128], value[6 * sizeof(it.text)], source[8 * 1024];

		config_item(c, i, &it);
		if (section && strcmp(section, it.section))
			printf("\n"); /* a blank line between sections */
		section = it.section;
		snprintf(key, sizeof(key), "[%s] %s", it.section, it.name);
		escape_line(value, sizeof(value), it.text, false);
		source_text(it.source, source, sizeof(source));
		printf("%-*s = %-*s  # %s\n", wkey, key, wvalue, value, source);
	}
}

static void print_json(const struct config *c)
{
	const char *section = NULL;
	struct config_item it;
	struct json j;

	json_init(&j, stdout);
	json_object(&j, NULL);
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_source *src;

		config_item(c, i, &it);
		src = it.source;
		if (!section || strcmp(section, it.section)) {
			if (section)
				json_end(&j, '}');
			section = it.section;
			json_object(&j, section);
		}
		json_object(&j, it.name);
		if (it.kind == ITEM_NULL)
			json_null(&j, "value");
		else if (it.kind == ITEM_NUMBER)
			json_number(&j, "value", it.text);
		else if (it.kind == ITEM_BOOL)
			json_bool(&j, "value", !strcmp(it.text, "true"));
		else
			json_str(&j, "value", it.text);
		json_str(&j, "source", origin_names[src->origin]);
		if (src->origin == ORIGIN_FILE) {
			json_str(&j, "file", src->name);
			json_int(&j, "line", src->line);
		} else if (src->origin == ORIGIN_ENV || src->origin == ORIGIN_ENV_FILE) {
			json_str(&j, "variable", src->name);
		} else if (src->origin == ORIGIN_OPTION) {
			json_str(&j, "option", src->name);
		}
		if (src->origin == ORIGIN_ENV_FILE)
			json_str(&j, "path", src->path);
		json_end(&j, '}');
	}
	if (section)
		json_end(&j, '}');
	json_end(&j, '}');
}

int cmd_config(struct session *s, const struct cmd_args *a)
{
	if (a->json)
		print_json(s->c);
	else
		print_text(s->c);
	return 0;
}
