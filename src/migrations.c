/*
 * migrations: reading a directory of migrations. A format is a struct
 * format (migrations.h), a row of the table below: which entries it
 * claims, how an entry's name gives a version, how a file gives its SQL
 * and directives. The loader reads the entries once, lets the formats
 * claim them, refuses a directory of two formats, then reads the one
 * format's migrations. ferry's and golang-migrate's formats live here;
 * the later ones (dbmate, goose, Flyway, diesel) are a file and a row each.
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

static bool ends_with(const char *s, const char *suffix)
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
			m->path, at, line_at(text, at));
	}
	m->not_utf8_at = first_not_utf8(text, len);
	if (m->not_utf8_at < len)
		m->not_utf8_line = line_at(text, m->not_utf8_at);
	return 0;
}

/* ---- the formats ---------------------------------------------------------- */

/*
 * "0002_add_tags.sql" with a suffix of 4 -> 2, "0002_add_tags": digits (at
 * most 31, a value of at most 18 digits: ledgers keep an INTEGER), '_',
 * a name, the suffix. -1 for anything else.
 */
static int parse_numbered(const char *entry, size_t suffix_len, struct version *v,
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

/* golang-migrate: 000001_name.up.sql, and its .down.sql, which ferry skips */
static bool golang_claims(const char *entry, const char *text)
{
	(void)text;
	return ends_with(entry, ".up.sql") || ends_with(entry, ".down.sql");
}

static int golang_parse_name(const char *entry, struct version *v, char **name,
			     bool *is_up)
{
	*is_up = !ends_with(entry, ".down.sql");
	if (!*is_up)
		return 0;
	return parse_numbered(entry, strlen(".up.sql"), v, name);
}

/* The whole file migrates up, with no directive. */
static int read_plain(struct migration *m, size_t len)
{
	(void)m;
	(void)len;
	return 0;
}

static const struct format format_golang_migrate = {
	.name = "golang-migrate",
	.example = "000001_name.up.sql",
	.up_files = "*.up.sql",
	.claims = golang_claims,
	.parse_name = golang_parse_name,
	.read = read_plain,
};

/* ferry: 0001_name.sql, up only; first line "-- ferry:no-transaction" */
static bool ferry_claims(const char *entry, const char *text)
{
	size_t digits = strspn(entry, "0123456789");

	(void)text;
	return digits > 0 && entry[digits] == '_' && ends_with(entry, ".sql");
}

static int ferry_parse_name(const char *entry, struct version *v, char **name,
			    bool *is_up)
{
	*is_up = true;
	return parse_numbered(entry, strlen(".sql"), v, name);
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
	.parse_name = ferry_parse_name,
	.read = ferry_read,
};

/*
 * In claim order: an entry belongs to the first format that claims it, so
 * a more specific rule comes before a broader one it overlaps. The last
 * row is the format of a directory where no format claims anything.
 * Formats defined in files of their own are declared here:
 * extern const struct format format_NAME;
 */
static const struct format *const formats[] = {
	&format_golang_migrate,
	&format_ferry,
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

static const struct format *claimer(const char *name, const char *text, bool is_dir)
{
	for (size_t i = 0; i < N_FORMATS; i++)
		if (!formats[i]->member == !is_dir && formats[i]->claims(name, text))
			return formats[i];
	return NULL;
}

/*
 * Offers one entry to the formats: a regular file (read first when it is
 * a *.sql file), or a directory to the formats whose migrations are
 * directories. Kept: what a format claims, and unclaimed *.sql files
 * (refused later); anything else is ignored, as are entries stat()
 * cannot follow.
 */
static void collect_one(struct entries *es, const char *dir, const char *name)
{
	struct entry e = { .path = xasprintf("%s/%s", dir, name) };
	bool sql = ends_with(name, ".sql");
	struct stat st;

	if (stat(e.path, &st) < 0)
		goto skip;
	if (S_ISREG(st.st_mode)) {
		if (sql)
			e.read_errno = read_text(e.path, &e.text, &e.len);
		e.f = claimer(name, e.text, false);
		if (!e.f && !sql)
			goto skip;
	} else if (S_ISDIR(st.st_mode) && (e.f = claimer(name, NULL, true))) {
		char *up = xasprintf("%s/%s", e.path, e.f->member);

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
 * The directory's format: the one format that claimed entries, the last
 * row when none did; files of two formats are refused, one of each named.
 */
static int detect(const struct entries *es, const char *dir, const struct format **out)
{
	const struct entry *first = NULL;

	for (size_t i = 0; i < es->n; i++) {
		const struct entry *e = &es->items[i];

		if (!e->f)
			continue;
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
	*out = first ? first->f : formats[N_FORMATS - 1];
	return 0;
}

/*
 * Reads one up file into *m (which it then owns: path and text move
 * there). Returns 0, 1 for an entry the format skips, or EXIT_DATA after
 * one log line.
 */
static int load_one(const struct format *f, struct entry *e, struct migration *m)
{
	bool is_up = true;
	size_t len;

	memset(m, 0, sizeof(*m));
	if (e->f != f || f->parse_name(e->name, &m->version, &m->name, &is_up) < 0) {
		error("migration '%s': cannot read a version from the name (%s format "
		      "expects %s)",
		      e->path, f->name, f->example);
		return EXIT_DATA;
	}
	if (!is_up)
		return 1;
	if (!e->text && !e->read_errno)
		e->read_errno = read_text(e->path, &e->text, &e->len);
	if (e->read_errno) {
		error("cannot read migration '%s': %s", e->path, strerror(e->read_errno));
		goto fail;
	}
	m->path = e->path, m->sql = e->text;
	e->path = e->text = NULL;
	if (check_bytes(m, m->sql, e->len) < 0)
		goto fail;
	len = migrations_normalise(m->sql, e->len);
	if (m->sql[strspn(m->sql, " \t\n\r")] == '\0') {
		error("migration '%s' is empty", m->path);
		goto fail;
	}
	sha256_hex(m->sql, len, m->sha256);
	if (f->read(m, len) < 0)
		goto fail;
	return 0;
fail:
	free(m->name), free(m->path), free(m->sql);
	memset(m, 0, sizeof(*m));
	return EXIT_DATA;
}

static int by_version(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;
	return version_cmp(&x->version, &y->version);
}

/* Reads the format's up files into set, sorted; 65 for a duplicate version. */
static int load_all(struct migration_set *set, const struct format *f, struct entries *es)
{
	size_t cap = 0;

	for (size_t i = 0; i < es->n; i++) {
		struct migration m;
		int rc = load_one(f, &es->items[i], &m);

		if (rc == 1)
			continue;
		if (rc)
			return rc;
		if (set->n == cap) {
			cap = cap ? 2 * cap : 16;
			set->items = xrealloc(set->items, cap * sizeof(*set->items));
		}
		set->items[set->n++] = m;
	}
	if (set->n == 0) {
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
			error("migrations '%s' and '%s' have the same version %s",
			      set->items[i - 1].path, set->items[i].path,
			      version_str(&set->items[i].version));
			return EXIT_DATA;
		}
	}
	return 0;
}

int migrations_load(struct migration_set *set, const char *dir)
{
	struct entries es = { 0 };
	const struct format *f;
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
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			collect_one(&es, dir, e->d_name);
	closedir(d);
	rc = detect(&es, dir, &f);
	if (rc == 0) {
		set->format = f->name;
		rc = load_all(set, f, &es);
	}
	entries_release(&es);
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
