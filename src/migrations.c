/*
 * migrations: reading a directory of migrations. A format is a struct
 * format (migrations.h), a row of the table below: which entries it
 * claims, how an entry's name gives a version, how a file gives its SQL
 * and directives. The loader reads the entries once, lets the formats
 * claim them, refuses a directory of two formats, then reads the one
 * format's migrations. ferry's format lives here; the others
 * (golang-migrate, dbmate, goose, Flyway, diesel) are a file fmt_NAME.c
 * and a row each.
 */
/* SHA256_Init and co (sha256_hex says why) */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "migrations.h"
#include "rebuild.h"
#include "exits.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * SHA-256 through OpenSSL's SHA256_* functions rather than EVP: the first
 * EVP digest of a process initialises OpenSSL 3's providers, reads its
 * config file and builds its method store (4.8 million instructions, a
 * third of the whole boot fast path with 200 migrations), where these
 * call the same assembly directly. Deprecated in OpenSSL 3, not removed:
 * the warning is silenced for this file alone (OPENSSL_SUPPRESS_DEPRECATED
 * above its includes).
 */
void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	SHA256_CTX ctx;

	SHA256_Init(&ctx);
	SHA256_Update(&ctx, data, len);
	SHA256_Final(md, &ctx);
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

bool migrations_ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

/* Reads a whole file: 0, or an errno value (the caller says which file). */
static int read_text(const char *path, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), e = 0;
	struct stat st;
	char *buf;
	size_t n = 0;

	if (fd < 0)
		return errno;
	if (fstat(fd, &st) < 0) {
		e = errno;
		close(fd);
		return e;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = errno;
			free(buf);
			close(fd);
			return e;
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

int migrations_line_at(const char *text, size_t at)
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
		n = UTF8_getc((const unsigned char *)text + i,
			      len - i < 4 ? (int)(len - i) : 4, &cp);
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

		return error(
			"migration '%s' has a NUL byte at offset %zu (line %d): SQLite "
			"and PostgreSQL stop reading a script there, so what follows "
			"would never run; remove it (nothing was changed)",
			m->path, at, migrations_line_at(text, at));
	}
	m->not_utf8_at = first_not_utf8(text, len);
	if (m->not_utf8_at < len)
		m->not_utf8_line = migrations_line_at(text, m->not_utf8_at);
	return 0;
}

int migrations_read_beside(const char *path, char **text)
{
	struct migration probe = { .path = (char *)path };
	size_t len;
	int e = read_text(path, text, &len);

	if (e == ENOENT)
		return 1;
	if (e)
		return error("cannot read '%s': %s", path, strerror(e));
	if (check_bytes(&probe, *text, len) < 0) {
		free(*text);
		*text = NULL;
		return -1;
	}
	migrations_normalise(*text, len);
	return 0;
}

bool migrations_blank_or_comment(const char *line, size_t len)
{
	size_t i = strspn(line, " \t");

	return i >= len || (len - i >= 2 && line[i] == '-' && line[i + 1] == '-');
}

bool migrations_any_line(const char *text, bool (*is)(const char *line, size_t len))
{
	for (const char *p = text; *p;) {
		size_t len = strcspn(p, "\n");

		if (is(p, len))
			return true;
		p += len + (p[len] == '\n');
	}
	return false;
}

void migrations_cut(struct migration *m, size_t up_end, size_t down_at)
{
	free(m->down_sql);
	m->down_sql = xstrdup(m->sql + down_at);
	m->sql[up_end] = '\0';
}

/* ---- the formats ---------------------------------------------------------- */

int migrations_parse_numbered(const char *entry, size_t suffix_len, struct version *v,
			      char **name)
{
	size_t digits = strspn(entry, "0123456789");
	size_t stem = strlen(entry) - suffix_len;
	struct version ver;
	long long n;

	if (digits == 0 || digits >= 32 || entry[digits] != '_' || digits + 1 >= stem)
		return -1;
	if (!version_parse(&ver, entry, digits) || !version_to_ll(&ver, &n))
		return -1;
	*v = ver;
	*name = xasprintf("%.*s", (int)stem, entry);
	return 0;
}

/* ferry: 0001_name.sql, up only; first line "-- ferry:no-transaction" */
static bool ferry_claims(const char *entry, const char *text)
{
	size_t digits = strspn(entry, "0123456789");

	(void)text;
	return digits > 0 && entry[digits] == '_' && migrations_ends_with(entry, ".sql");
}

int migrations_parse_sql_name(const char *entry, struct version *v, char **name,
			      bool *is_up)
{
	*is_up = true;
	return migrations_parse_numbered(entry, strlen(".sql"), v, name);
}

static int ferry_read(struct migration *m, size_t len)
{
	static const char directive[] = "-- ferry:no-transaction";
	size_t n = sizeof(directive) - 1;

	(void)len;
	if (!strncmp(m->sql, directive, n) && strchr(" \t\n", m->sql[n]))
		m->no_transaction = true;
	return 0;
}

static const struct format format_ferry = {
	.name = "ferry",
	.example = "0001_name.sql",
	.up_files = "*.sql",
	.claims = ferry_claims,
	.parse_name = migrations_parse_sql_name,
	.read = ferry_read,
};

/*
 * In claim order: an entry belongs to the first format that claims it, so
 * a more specific rule comes before a broader one it overlaps. The last
 * row is the format of a directory where no format claims anything.
 * Formats defined in files of their own are declared here. dbmate and
 * goose claim by content, and Flyway's and diesel's names overlap no
 * other's, so only golang-migrate's .up.sql must come before ferry's
 * .sql and the content claims before ferry.
 */
extern const struct format format_golang_migrate, format_dbmate, format_goose,
	format_flyway, format_diesel;

static const struct format *const formats[] = {
	&format_golang_migrate, &format_dbmate, &format_goose,
	&format_flyway,		&format_diesel, &format_ferry,
};

#define N_FORMATS (sizeof(formats) / sizeof(formats[0]))

/* ---- the loader ----------------------------------------------------------- */

/* A directory entry offered to the formats, with what was read of it. */
struct entry {
	char *name;
	char *path;		/* the up file: dir/name, or dir/name/member */
	const struct format *f; /* the format that claimed it; NULL: none */
	char *text;		/* its content when read, NUL-terminated */
	size_t len;
	int read_errno; /* why reading it failed; 0: read or not tried */
};

struct entries {
	struct entry *items; /* in readdir order */
	size_t n, cap;
};

/* The format that claims an entry: forced first when there is one. */
static const struct format *claimer(const struct format *forced, const char *name,
				    const char *text, bool is_dir)
{
	if (forced && !forced->member == !is_dir && forced->claims(name, text))
		return forced;
	for (size_t i = 0; i < N_FORMATS; i++)
		if (!formats[i]->member == !is_dir && formats[i]->claims(name, text))
			return formats[i];
	return NULL;
}

/*
 * The formats claim files by their text as the loader will read it (no
 * BOM, LF line ends): a dbmate file written on Windows is still dbmate's,
 * not a ferry file whose down section would run with its up. A copy only
 * when the text has something to normalise.
 */
static const struct format *claim_file(const struct format *forced, const char *name,
				       const char *text, size_t len)
{
	const struct format *f;
	char *copy;

	if (!text ||
	    (!memchr(text, '\r', len) && (len < 3 || memcmp(text, "\xEF\xBB\xBF", 3))))
		return claimer(forced, name, text, false);
	copy = xmalloc(len + 1);
	memcpy(copy, text, len);
	migrations_normalise(copy, len);
	f = claimer(forced, name, copy, false);
	free(copy);
	return f;
}

/*
 * Offers one entry to the formats: a regular file (read first when it is
 * a *.sql file), or a directory to the formats whose migrations are
 * directories. Kept: what a format claims, and unclaimed *.sql files
 * (refused later); anything else is ignored, as are entries stat()
 * cannot follow.
 */
static void collect_one(struct entries *es, const struct format *forced, const char *dir,
			const char *name)
{
	struct entry e = { .path = xasprintf("%s/%s", dir, name) };
	bool sql = migrations_ends_with(name, ".sql");
	struct stat st;

	if (stat(e.path, &st) < 0)
		goto skip;
	if (S_ISREG(st.st_mode)) {
		if (sql)
			e.read_errno = read_text(e.path, &e.text, &e.len);
		e.f = claim_file(forced, name, e.text, e.len);
		if (!e.f && !sql)
			goto skip;
	} else if (S_ISDIR(st.st_mode)) {
		/* a directory holding an up.sql that no format claims (a diesel
		 * one without its 14-digit stamp) is refused, not skipped */
		char *up;

		e.f = claimer(forced, name, NULL, true);
		up = xasprintf("%s/%s", e.path, e.f ? e.f->member : "up.sql");
		if (!e.f && access(up, F_OK) < 0) {
			free(up);
			goto skip;
		}
		free(e.path);
		e.path = up;
	} else {
		goto skip;
	}
	e.name = xstrdup(name);
	if (es->n == es->cap) {
		es->cap = es->cap ? 2 * es->cap : 16;
		es->items = xrealloc(es->items, es->cap * sizeof(*es->items));
	}
	es->items[es->n++] = e;
	return;
skip:
	free(e.path);
	free(e.text);
}

static void entries_release(struct entries *es)
{
	for (size_t i = 0; i < es->n; i++) {
		free(es->items[i].name);
		free(es->items[i].path);
		free(es->items[i].text);
	}
	free(es->items);
}

/*
 * The directory's format: forced when there is one (an entry another
 * format claims is refused), else the one format that claimed entries,
 * the last row when none did; files of two formats are refused, one of
 * each named.
 */
static int detect(const struct entries *es, const struct format *forced, const char *dir,
		  const struct format **out)
{
	const struct entry *first = NULL;

	for (size_t i = 0; i < es->n; i++) {
		const struct entry *e = &es->items[i];

		if (!e->f)
			continue;
		if (forced && e->f != forced) {
			error("[migrations] format = %s, but '%s/%s' is a %s migration (%s "
			      "expects %s); set the format the directory holds, or auto "
			      "(nothing was changed)",
			      forced->name, dir, e->name, e->f->name, forced->name,
			      forced->example);
			return EXIT_DATA;
		}
		if (!first) {
			first = e;
		} else if (e->f != first->f) {
			error("[migrations] dir '%s' mixes two formats: '%s' is a %s migration, "
			      "'%s' a %s one; keep one format per directory (nothing was "
			      "changed)",
			      dir, first->name, first->f->name, e->name, e->f->name);
			return EXIT_DATA;
		}
	}
	*out = forced ? forced : first ? first->f : formats[N_FORMATS - 1];
	return 0;
}

/*
 * Reads an entry's file into *text (normalised; it then owns it) and its
 * length. Returns 0, or logs one line naming path and returns -1.
 */
static int read_entry(struct entry *e, struct migration *m, size_t *len)
{
	if (!e->text && !e->read_errno)
		e->read_errno = read_text(e->path, &e->text, &e->len);
	if (e->read_errno)
		return error("cannot read migration '%s': %s", e->path,
			     strerror(e->read_errno));
	m->path = e->path, m->sql = e->text;
	e->path = e->text = NULL;
	if (check_bytes(m, m->sql, e->len) < 0)
		return -1;
	*len = migrations_normalise(m->sql, e->len);
	return 0;
}

static void migration_free(struct migration *m)
{
	free(m->name), free(m->path), free(m->sql), free(m->down_sql);
	memset(m, 0, sizeof(*m));
}

/* What load_one() read. */
enum { LOADED_UP, LOADED_SKIP, LOADED_DOWN, LOADED_REPEATABLE };

/*
 * Reads one entry into *m (which it then owns: path and text move there).
 * Returns LOADED_UP, LOADED_REPEATABLE, LOADED_DOWN for a down file of its
 * own (m->version, m->path and m->sql, its down SQL), LOADED_SKIP for an
 * entry the format skips, or EXIT_DATA after one log line.
 */
static int load_one(const struct format *f, struct entry *e, struct migration *m)
{
	bool is_up = true;
	size_t len = 0;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	if (e->f == f)
		rc = f->parse_name(e->name, &m->version, &m->name, &is_up);
	if (rc < 0) {
		error("migration '%s': cannot read a version from the name (%s format "
		      "expects %s)",
		      e->path, f->name, f->example);
		return EXIT_DATA;
	}
	if (rc == NAME_SKIP)
		return LOADED_SKIP;
	if (read_entry(e, m, &len) < 0)
		goto fail;
	if (!is_up)
		return LOADED_DOWN;
	if (m->sql[strspn(m->sql, " \t\n\r")] == '\0') {
		error("migration '%s' is empty", m->path);
		goto fail;
	}
	sha256_hex(m->sql, len, m->sha256);
	if (f->read(m, len) < 0)
		goto fail;
	return rc == NAME_REPEATABLE ? LOADED_REPEATABLE : LOADED_UP;
fail:
	migration_free(m);
	return EXIT_DATA;
}

static int by_version(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;
	return version_cmp(&x->version, &y->version);
}

static int by_name(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;
	return strcmp(x->name, y->name);
}

static void push(struct migration **items, size_t *n, size_t *cap,
		 const struct migration *m)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		*items = xrealloc(*items, *cap * sizeof(**items));
	}
	(*items)[(*n)++] = *m;
}

/* Sorts the repeatables by name; 65 for two of one name. */
static int sort_repeatables(struct migration_set *set)
{
	if (set->n_repeatables > 1)
		qsort(set->repeatables, set->n_repeatables, sizeof(*set->repeatables),
		      by_name);
	for (size_t i = 1; i < set->n_repeatables; i++)
		if (!strcmp(set->repeatables[i].name, set->repeatables[i - 1].name)) {
			error("repeatable migrations '%s' and '%s' have the same "
			      "description '%s'",
			      set->repeatables[i - 1].path, set->repeatables[i].path,
			      set->repeatables[i].name);
			return EXIT_DATA;
		}
	return 0;
}

static void downs_free(struct migration *downs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		migration_free(&downs[i]);
	free(downs);
}

/*
 * Gives each down file (read by load_one) to the up migration of its
 * version; a second down file for one version is refused (65), one with
 * no up migration ignored.
 */
static int attach_downs(struct migration_set *set, struct migration *downs, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		struct migration *up =
			(struct migration *)migrations_find(set, &downs[i].version);

		if (up && up->down_sql && rc == 0) {
			error("migration '%s' is a second down file for version %s; keep "
			      "one (nothing was changed)",
			      downs[i].path, version_str(&up->version));
			rc = EXIT_DATA;
		} else if (up && !up->down_sql) {
			up->down_sql = downs[i].sql;
			downs[i].sql = NULL;
		}
	}
	downs_free(downs, n);
	return rc;
}

/* Reads the format's files into set, sorted; 65 for a duplicate version. */
static int load_all(struct migration_set *set, const struct format *f, struct entries *es)
{
	struct migration *downs = NULL;
	size_t cap = 0, n_downs = 0, downs_cap = 0, rcap = 0;

	for (size_t i = 0; i < es->n; i++) {
		struct migration m;
		int rc = load_one(f, &es->items[i], &m);

		if (rc == LOADED_SKIP)
			continue;
		if (rc == LOADED_DOWN) {
			push(&downs, &n_downs, &downs_cap, &m);
		} else if (rc == LOADED_REPEATABLE) {
			push(&set->repeatables, &set->n_repeatables, &rcap, &m);
		} else if (rc == LOADED_UP) {
			push(&set->items, &set->n, &cap, &m);
		} else {
			downs_free(downs, n_downs);
			return rc;
		}
	}
	if (set->n == 0) {
		downs_free(downs, n_downs);
		error("[migrations] dir '%s' holds no migrations (no %s file): this image "
		      "ships nothing to bring a database to; check that it copies its "
		      "migrations there (nothing was changed)",
		      set->dir, f->up_files);
		return EXIT_CONFIG;
	}
	qsort(set->items, set->n, sizeof(*set->items), by_version);
	for (size_t i = 1; i < set->n; i++) {
		if (version_cmp(&set->items[i].version, &set->items[i - 1].version) ==
		    0) {
			downs_free(downs, n_downs);
			error("migrations '%s' and '%s' have the same version %s",
			      set->items[i - 1].path, set->items[i].path,
			      version_str(&set->items[i].version));
			return EXIT_DATA;
		}
	}
	if (sort_repeatables(set)) {
		downs_free(downs, n_downs);
		return EXIT_DATA;
	}
	return attach_downs(set, downs, n_downs);
}

const char *migrations_format_name(const char *name)
{
	for (size_t i = 0; i < N_FORMATS; i++)
		if (!strcasecmp(formats[i]->name, name))
			return formats[i]->name;
	return NULL;
}

int migrations_load(struct migration_set *set, const char *dir)
{
	return migrations_load_as(set, dir, NULL);
}

int migrations_load_as(struct migration_set *set, const char *dir, const char *format)
{
	const struct format *f, *forced = NULL;
	struct entries es = { 0 };
	struct dirent *e;
	DIR *d;
	int rc;

	memset(set, 0, sizeof(*set));
	set->dir = xstrdup(dir);
	d = opendir(dir);
	if (!d) {
		error_errno("[migrations] dir '%s'", dir);
		return EXIT_CONFIG;
	}
	for (size_t i = 0; format && i < N_FORMATS; i++)
		if (!strcasecmp(formats[i]->name, format))
			forced = formats[i];
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			collect_one(&es, forced, dir, e->d_name);
	closedir(d);
	rc = detect(&es, forced, dir, &f);
	if (rc == 0) {
		set->format = f->name;
		rc = load_all(set, f, &es);
	}
	entries_release(&es);
	return rc;
}

void migrations_release(struct migration_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		migration_free(&set->items[i]);
	free(set->items);
	for (size_t i = 0; i < set->n_repeatables; i++)
		migration_free(&set->repeatables[i]);
	free(set->repeatables);
	free(set->dir);
	rebuild_release(set->rebuild);
	memset(set, 0, sizeof(*set));
}

/*
 * The set is sorted by version (load_all), so a binary search finds a
 * shipped version in log n steps: the boot's fast path looks up every
 * ledger row, and 200 rows by 200 files was 40,000 comparisons. Not
 * found that way (a set someone built out of order), the linear scan
 * decides.
 */
const struct migration *migrations_find(const struct migration_set *set,
					const struct version *v)
{
	size_t lo = 0, hi = set->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = version_cmp(&set->items[mid].version, v);

		if (c == 0)
			return &set->items[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = 0; i < set->n; i++)
		if (version_cmp(&set->items[i].version, v) == 0)
			return &set->items[i];
	return NULL;
}

struct version migrations_latest(const struct migration_set *set)
{
	return set->n ? set->items[set->n - 1].version : VERSION_ZERO;
}
