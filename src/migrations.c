/*
 * migrations: each format is one entry of a table that says which file
 * names it owns and how to read a version and name from them; the first
 * format that owns any file of the directory reads the whole directory.
 * Later formats (dbmate, goose, Flyway, diesel) are new table entries.
 */
#include "migrations.h"
#include "exits.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct format {
	const char *name;
	const char *up_suffix;   /* what an up file's name ends with */
	const char *skip_suffix; /* files of the format that are not up files */
	const char *directive;   /* first-line no-transaction directive */
};

/* golang-migrate first: its names also end in ".sql". */
static const struct format formats[] = {
	{ "golang-migrate", ".up.sql", ".down.sql", NULL },
	{ "ferry", ".sql", NULL, "-- ferry:no-transaction" },
};

void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++) {
		static const char hex[] = "0123456789abcdef";
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

size_t migrations_normalise(char *text, size_t len)
{
	size_t r = 0, w = 0;

	if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3))
		r = 3;
	for (; r < len; r++) {
		if (text[r] == '\r' && r + 1 < len && text[r + 1] == '\n')
			continue;
		text[w++] = text[r];
	}
	text[w] = '\0';
	return w;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

static int read_text(const char *path, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	size_t n = 0;

	if (fd < 0)
		return error("cannot read migration '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		close(fd);
		return error("cannot read migration '%s': %s", path, strerror(errno));
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			free(buf);
			close(fd);
			return error("cannot read migration '%s': %s", path, strerror(e));
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* The 1-based line of the byte at offset at. */
static int line_at(const char *text, size_t at)
{
	int line = 1;

	for (size_t i = 0; i < at; i++)
		line += text[i] == '\n';
	return line;
}

/*
 * The offset of the first byte that starts no valid UTF-8 sequence (RFC
 * 3629: no overlong forms, surrogates or code points above U+10FFFF), or
 * len. libcrypto's UTF8_getc does the decoding.
 */
static size_t first_not_utf8(const char *text, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned long cp = 0;
		int n;

		if ((unsigned char)text[i] < 0x80) {
			i++;
			continue;
		}
		n = UTF8_getc((const unsigned char *)text + i, len - i < 4 ? (int)(len - i) : 4,
			      &cp);
		if (n <= 0 || cp > 0x10FFFF)
			return i;
		i += (size_t)n;
	}
	return len;
}

/*
 * What the SQL engines would not read to the end is refused here: they
 * take a script as a C string, so a NUL byte ends it and the statements
 * after it would silently never run. Bytes that are not UTF-8 are only
 * noted: the plan refuses them in a migration about to run (see plan.c).
 */
static int check_bytes(struct migration *m, const char *text, size_t len)
{
	const char *nul = memchr(text, '\0', len);

	if (nul) {
		size_t at = (size_t)(nul - text);

		return error("migration '%s' has a NUL byte at offset %zu (line %d): SQLite "
			     "and PostgreSQL stop reading a script there, so what follows "
			     "would never run; remove it (nothing was changed)", m->path, at,
			     line_at(text, at));
	}
	m->not_utf8_at = first_not_utf8(text, len);
	if (m->not_utf8_at < len)
		m->not_utf8_line = line_at(text, m->not_utf8_at);
	return 0;
}

static int by_version(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;
	return (x->version > y->version) - (x->version < y->version);
}

/* Does the format own this .sql file name? */
static bool owns(const struct format *f, const char *name)
{
	return ends_with(name, f->up_suffix) ||
	       (f->skip_suffix && ends_with(name, f->skip_suffix));
}

static const struct format *detect(DIR *d)
{
	struct dirent *e;

	for (size_t i = 0; i + 1 < sizeof(formats) / sizeof(formats[0]); i++) {
		rewinddir(d);
		while ((e = readdir(d)))
			if (e->d_name[0] != '.' && owns(&formats[i], e->d_name))
				return &formats[i];
	}
	return &formats[sizeof(formats) / sizeof(formats[0]) - 1];
}

/* "0002_add_tags.sql" -> version 2, name "0002_add_tags"; -1 if no match */
static int parse_name(const struct format *f, const char *file, struct migration *m)
{
	size_t digits = strspn(file, "0123456789");
	size_t stem = strlen(file) - strlen(f->up_suffix);
	char num[32];

	if (digits == 0 || digits >= sizeof(num) || file[digits] != '_' ||
	    digits + 1 >= stem)
		return -1;
	memcpy(num, file, digits);
	num[digits] = '\0';
	if (!parse_ll(num, 0, 999999999999999999LL, &m->version))
		return -1;
	m->name = strndup(file, stem);
	if (!m->name)
		return -1;
	return 0;
}

int migrations_load(struct migration_set *set, const char *dir)
{
	const struct format *f;
	struct dirent *e;
	size_t cap = 0;
	DIR *d;
	int rc = 0;

	memset(set, 0, sizeof(*set));
	set->dir = xstrdup(dir);
	d = opendir(dir);
	if (!d) {
		error("[migrations] dir '%s': %s", dir, strerror(errno));
		return EXIT_CONFIG;
	}
	f = detect(d);
	set->format = f->name;
	rewinddir(d);
	while ((e = readdir(d))) {
		struct migration m = { 0 };
		struct stat st;
		size_t len = 0;

		if (e->d_name[0] == '.' || !ends_with(e->d_name, ".sql"))
			continue;
		if (f->skip_suffix && ends_with(e->d_name, f->skip_suffix))
			continue;
		m.path = xasprintf("%s/%s", dir, e->d_name);
		if (stat(m.path, &st) < 0 || !S_ISREG(st.st_mode)) {
			free(m.path);
			continue;
		}
		if (!owns(f, e->d_name) || parse_name(f, e->d_name, &m) < 0) {
			error("migration '%s': cannot read a version from the name "
			      "(%s format expects %s)", m.path, f->name,
			      f == &formats[0] ? "000001_name.up.sql" : "0001_name.sql");
			free(m.path);
			rc = EXIT_DATA;
			goto out;
		}
		if (read_text(m.path, &m.sql, &len) < 0) {
			free(m.path);
			free(m.name);
			rc = EXIT_DATA;
			goto out;
		}
		if (check_bytes(&m, m.sql, len) < 0) {
			free(m.path), free(m.name), free(m.sql);
			rc = EXIT_DATA;
			goto out;
		}
		len = migrations_normalise(m.sql, len);
		if (m.sql[strspn(m.sql, " \t\n\r")] == '\0') {
			error("migration '%s' is empty", m.path);
			free(m.path), free(m.name), free(m.sql);
			rc = EXIT_DATA;
			goto out;
		}
		sha256_hex(m.sql, len, m.sha256);
		if (f->directive && !strncmp(m.sql, f->directive, strlen(f->directive)) &&
		    strchr(" \t\n", m.sql[strlen(f->directive)]))
			m.no_transaction = true;
		if (set->n == cap) {
			cap = cap ? 2 * cap : 16;
			set->items = xrealloc(set->items, cap * sizeof(*set->items));
		}
		set->items[set->n++] = m;
	}
	if (set->n == 0) {
		error("[migrations] dir '%s' holds no migrations (no *%s file): this image "
		      "ships nothing to bring a database to; check that it copies its "
		      "migrations there (nothing was changed)", dir, f->up_suffix);
		rc = EXIT_CONFIG;
		goto out;
	}
	qsort(set->items, set->n, sizeof(*set->items), by_version);
	for (size_t i = 1; i < set->n; i++) {
		if (set->items[i].version == set->items[i - 1].version) {
			error("migrations '%s' and '%s' have the same version %lld",
			      set->items[i - 1].path, set->items[i].path,
			      set->items[i].version);
			rc = EXIT_DATA;
			goto out;
		}
	}
out:
	closedir(d);
	return rc;
}

void migrations_release(struct migration_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->items[i].name);
		free(set->items[i].path);
		free(set->items[i].sql);
	}
	free(set->items);
	free(set->dir);
	memset(set, 0, sizeof(*set));
}

const struct migration *migrations_find(const struct migration_set *set,
					long long version)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->items[i].version == version)
			return &set->items[i];
	return NULL;
}

long long migrations_latest(const struct migration_set *set)
{
	return set->n ? set->items[set->n - 1].version : 0;
}
