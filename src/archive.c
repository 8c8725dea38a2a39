/*
 * archive: the .ferry file. Layout of the tar (pax, zstd):
 *   manifest.ini        always the first member
 *   database.sqlite     SQLite: a consistent copy from the backup API
 *   database.pgdump     PostgreSQL: the logical dump (pgdump.c's stream)
 *   paths/<i>/...       the tree of [backup] paths entry i
 * The manifest has to come first yet carries every member's sha256, so the
 * writer works in two passes: the caller stages the database copy (it is a
 * file anyway) and hashes every data file first, then this file streams
 * them (hashed once: the second pass checks each file's identity and
 * length instead) and fails when a file changed between or during the
 * passes (it was not stopped). Memory is flat in the data's size: one
 * buffer per stream, zstd's jobs of 1 MiB, the manifest grows with the
 * number of members only.
 * The reader enables only the zstd filter and the tar format, accepts
 * regular files and directories named in the manifest, and checks size and
 * sha256 of each as it streams past; any surprise stops it with the member
 * named.
 */
#include "archive.h"
#include "dump.h"
#include "exits.h"
#include "log.h"
#include "progress.h"
#include "util.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define BUF_SIZE     (256 * 1024)
#define MAX_MANIFEST (256LL * 1024 * 1024)

static struct progress *progress;

struct arc_member *manifest_add(struct manifest *mf, const char *name, char type)
{
	struct arc_member *m;

	if (mf->n == mf->cap) {
		mf->cap = mf->cap ? mf->cap * 2 : 64;
		mf->m = xrealloc(mf->m, mf->cap * sizeof(*mf->m));
	}
	m = &mf->m[mf->n++];
	memset(m, 0, sizeof(*m));
	m->name = xstrdup(name);
	m->type = type;
	strcpy(m->sha256, "-");
	return m;
}

void manifest_add_path(struct manifest *mf, const char *path)
{
	mf->paths = xrealloc(mf->paths, (mf->npaths + 1) * sizeof(char *));
	mf->paths[mf->npaths++] = xstrdup(path);
}

void manifest_free(struct manifest *mf)
{
	for (size_t i = 0; i < mf->n; i++)
		free(mf->m[i].name);
	for (size_t i = 0; i < mf->npaths; i++)
		free(mf->paths[i]);
	free(mf->m);
	free(mf->paths);
	memset(mf, 0, sizeof(*mf));
}

struct strbuf {
	char *p;
	size_t len, cap;
};

static void sb_addf(struct strbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void sb_addf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (b->len + (size_t)n + 1 > b->cap) {
		b->cap = (b->len + (size_t)n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *manifest_format(const struct manifest *mf, size_t *len)
{
	struct strbuf b = { 0 };

	sb_addf(&b, "[archive]\nformat = %lld\nengine = %s\nschema_version = %s\n",
		mf->format, mf->engine, mf->schema_version);
	sb_addf(&b, "ferry_version = %s\ncreated_at = %s\n", mf->ferry_version,
		mf->created_at);
	if (mf->rows[0])
		sb_addf(&b, "rows = %s\n", mf->rows);
	for (size_t i = 0; i < mf->npaths; i++)
		sb_addf(&b, "path.%zu = %s\n", i, mf->paths[i]);
	sb_addf(&b, "[members]\n# type size mode mtime sha256 name\n");
	for (size_t i = 0; i < mf->n; i++) {
		const struct arc_member *m = &mf->m[i];

		sb_addf(&b, "%c %llu %04o %lld %s %s\n", m->type, m->size, m->mode,
			m->mtime, m->sha256, m->name);
	}
	*len = b.len;
	return b.p;
}

static int set_header(struct manifest *mf, const char *k, const char *v)
{
	char *dst = NULL;
	size_t size = 0;

	if (!strcmp(k, "format"))
		return parse_ll(v, 1, 1000, &mf->format) ? 0 : -1;
	if (!strncmp(k, "path.", 5)) {
		long long i;

		if (!parse_ll(k + 5, 0, 1000, &i) || (size_t)i != mf->npaths || !*v)
			return -1;
		manifest_add_path(mf, v);
		return 0;
	}
#define FIELD(f)                                                                         \
	if (!strcmp(k, #f)) {                                                            \
		dst = mf->f, size = sizeof(mf->f);                                       \
	}
	FIELD(engine)
	FIELD(schema_version)
	FIELD(ferry_version)
	FIELD(created_at)
	FIELD(rows)
#undef FIELD
	if (!dst || strlen(v) >= size)
		return -1;
	strcpy(dst, v);
	return 0;
}

static int parse_member(struct manifest *mf, char *line)
{
	char type, sha[65], *name;
	unsigned long long size;
	unsigned mode;
	long long mtime;
	int off = 0;
	struct arc_member *m;

	if (sscanf(line, "%c %llu %o %lld %64s %n", &type, &size, &mode, &mtime, sha,
		   &off) != 5 ||
	    !off || (type != 'f' && type != 'd') || mode > 07777)
		return -1;
	name = line + off;
	if (!*name)
		return -1;
	m = manifest_add(mf, name, type);
	m->size = size;
	m->mode = mode;
	m->mtime = mtime;
	strcpy(m->sha256, sha);
	return type == 'f' && strlen(sha) != 64 ? -1 : 0;
}

int manifest_parse(struct manifest *mf, const char *text, size_t len, char *why,
		   size_t size)
{
	char *copy = xmalloc(len + 1), *line, *save = NULL;
	int section = 0, lineno = 0, rc = 0;

	memcpy(copy, text, len);
	copy[len] = 0;
	if (memchr(text, 0, len))
		rc = -1;
	for (line = strtok_r(copy, "\n", &save); line && !rc;
	     line = strtok_r(NULL, "\n", &save)) {
		char *eq;

		lineno++;
		if (line[0] == '#')
			continue;
		if (!strcmp(line, "[archive]") || !strcmp(line, "[members]")) {
			section = line[1] == 'a' ? 1 : 2;
			continue;
		}
		if (section == 2) {
			rc = parse_member(mf, line);
			continue;
		}
		eq = strstr(line, " = ");
		if (section != 1 || !eq) {
			rc = -1;
			continue;
		}
		*eq = 0;
		rc = set_header(mf, line, eq + 3);
	}
	free(copy);
	if (rc)
		snprintf(why, size, "manifest.ini line %d is malformed", lineno);
	else if (mf->format != ARC_FORMAT || !mf->engine[0])
		snprintf(why, size,
			 "manifest.ini: format %lld unknown (this ferry reads %d)",
			 mf->format, ARC_FORMAT),
			rc = -1;
	return rc;
}

/*
 * The writer: libarchive makes the tar (pax) and hands its blocks to
 * zwrite(), which compresses them with libzstd itself. libarchive's own
 * zstd filter cannot set the job size, and its multithreaded mode then
 * holds several 8 MiB jobs in and out (a 60 MiB peak RSS on any input);
 * with 1 MiB jobs the workers still compress in parallel with the reading
 * and hashing here, in a few MiB.
 */
#define ZSTD_JOB (1024 * 1024)

struct arc_writer {
	struct archive *a;
	char *buf;
	ZSTD_CCtx *z;
	int fd;
	char *zbuf;
	size_t zcap;
};

/* Compresses what libarchive gives (mode ZSTD_e_continue) or the end of
 * the frame (ZSTD_e_end), writing the output to the archive's fd */
static int zpush(struct arc_writer *w, const void *p, size_t n, ZSTD_EndDirective how)
{
	ZSTD_inBuffer in = { p, n, 0 };
	size_t left;

	do {
		ZSTD_outBuffer out = { w->zbuf, w->zcap, 0 };

		left = ZSTD_compressStream2(w->z, &out, &in, how);
		if (ZSTD_isError(left)) {
			archive_set_error(w->a, EIO, "zstd: %s", ZSTD_getErrorName(left));
			return -1;
		}
		if (out.pos && write_all(w->fd, w->zbuf, out.pos) < 0) {
			archive_set_error(w->a, errno, "%s", strerror(errno));
			return -1;
		}
	} while (how == ZSTD_e_end ? left != 0 : in.pos < in.size);
	return 0;
}

static la_ssize_t zwrite(struct archive *a, void *arg, const void *p, size_t n)
{
	(void)a;
	return zpush(arg, p, n, ZSTD_e_continue) < 0 ? -1 : (la_ssize_t)n;
}

/* libzstd refuses (rather than clamps) what it does not take as given */
static int zparam(ZSTD_CCtx *z, ZSTD_cParameter p, int v, const char *what)
{
	size_t r = ZSTD_CCtx_setParameter(z, p, v);

	if (ZSTD_isError(r)) {
		log_error("backup: zstd refused %s = %d: %s", what, v,
			  ZSTD_getErrorName(r));
		return -1;
	}
	log_debug("backup: zstd %s = %d", what, v);
	return 0;
}

/* Level, worker threads and their job size, each checked as taken */
static int zstd_setup(ZSTD_CCtx *z, int level, int threads)
{
	if (zparam(z, ZSTD_c_compressionLevel, level, "level") < 0 ||
	    zparam(z, ZSTD_c_checksumFlag, 1, "checksum") < 0)
		return -1;
	if (!threads)
		return 0;
	if (ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_nbWorkers, threads))) {
		log_warn("backup: this ferry's zstd has no worker threads ([backup] "
			 "threads = %d not taken): compressing in ferry's own thread",
			 threads);
		return 0;
	}
	return zparam(z, ZSTD_c_nbWorkers, threads, "threads") < 0 ||
			       zparam(z, ZSTD_c_jobSize, ZSTD_JOB, "job size") < 0
		       ? -1
		       : 0;
}

struct arc_writer *arc_writer_open(int fd, int level, int threads)
{
	struct arc_writer *w = xcalloc(1, sizeof(*w));

	w->fd = fd;
	w->a = archive_write_new();
	w->buf = xmalloc(BUF_SIZE);
	w->z = ZSTD_createCCtx();
	w->zcap = ZSTD_CStreamOutSize();
	w->zbuf = xmalloc(w->zcap);
	if (!w->a || !w->z ||
	    archive_write_set_format_pax_restricted(w->a) != ARCHIVE_OK) {
		log_error("backup: libarchive has no tar writer");
		goto fail;
	}
	/* names are bytes: stored as they are, whatever the locale */
	if (archive_write_set_format_option(w->a, "pax", "hdrcharset", "BINARY") !=
	    ARCHIVE_OK) {
		log_error("backup: libarchive: %s", archive_error_string(w->a));
		goto fail;
	}
	if (zstd_setup(w->z, level, threads) < 0)
		goto fail;
	/* blocks as large as the read buffer: fewer calls into zstd */
	archive_write_set_bytes_per_block(w->a, BUF_SIZE);
	archive_write_set_bytes_in_last_block(w->a, 1);
	/* no close callback: libarchive ignores what it returns; the frame
	 * ends in arc_writer_close */
	if (archive_write_open(w->a, w, NULL, zwrite, NULL) != ARCHIVE_OK) {
		log_error("backup: %s", archive_error_string(w->a));
		goto fail;
	}
	return w;
fail:
	archive_write_free(w->a);
	ZSTD_freeCCtx(w->z);
	free(w->zbuf);
	free(w->buf);
	free(w);
	return NULL;
}

static int write_header(struct arc_writer *w, const struct arc_member *m,
			const char *name, char type, unsigned long long size,
			unsigned mode, long long mtime)
{
	struct archive_entry *e = archive_entry_new();
	int r;

	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type == 'd' ? AE_IFDIR : AE_IFREG);
	archive_entry_set_size(e, type == 'd' ? 0 : (la_int64_t)size);
	archive_entry_set_perm(e, mode & 0777);
	archive_entry_set_mtime(e, mtime, 0);
	archive_entry_set_uid(e, m ? m->uid : getuid());
	archive_entry_set_gid(e, m ? m->gid : getgid());
	r = archive_write_header(w->a, e);
	archive_entry_free(e);
	if (r != ARCHIVE_OK) {
		log_error("backup: %s: %s", name, archive_error_string(w->a));
		return -1;
	}
	return 0;
}

static int write_data(struct arc_writer *w, const char *name, const void *p, size_t n)
{
	if (archive_write_data(w->a, p, n) != (la_ssize_t)n) {
		log_error("backup: %s: %s", name, archive_error_string(w->a));
		return -1;
	}
	return 0;
}

int arc_write_mem(struct arc_writer *w, const char *name, const void *data, size_t len)
{
	if (write_header(w, NULL, name, 'f', len, 0644, (long long)time(NULL)) < 0)
		return -1;
	return write_data(w, name, data, len);
}

int arc_write_dir(struct arc_writer *w, const struct arc_member *m)
{
	return write_header(w, m, m->name, 'd', 0, m->mode, m->mtime);
}

static void hex32(const unsigned char *md, char out[65])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = 0;
}

/* The identity of the open file fd: -1 with errno */
static int ident_of(int fd, struct arc_ident *id)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -1;
	id->dev = (unsigned long long)st.st_dev;
	id->ino = (unsigned long long)st.st_ino;
	id->size = (unsigned long long)st.st_size;
	id->mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	id->ctime_ns = (long long)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
	return 0;
}

static bool same_file(int fd, const struct arc_ident *was)
{
	struct arc_ident now;

	return ident_of(fd, &now) == 0 && !memcmp(&now, was, sizeof(now));
}

/*
 * One read of the file, no second hash: any write to it moves its ctime
 * (and a replacement its inode), so the identity taken before the hash
 * pass, checked again before and after this one, tells a changed file as
 * the second hash did, at the cost of a stat instead of a SHA-256 pass.
 */
int arc_write_file(struct arc_writer *w, const struct arc_member *m, const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	unsigned long long left = m->size;
	int rc = -1;

	if (fd < 0) {
		log_error("backup: cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* a hint only */
	if (!same_file(fd, &m->id))
		goto changed;
	if (write_header(w, m, m->name, 'f', m->size, m->mode, m->mtime) < 0)
		goto out;
	while (left) {
		ssize_t n = read(fd, w->buf, left < BUF_SIZE ? left : BUF_SIZE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error("backup: '%s' %s while being read", path,
				  n < 0 ? strerror(errno) : "shrank");
			goto out;
		}
		if (progress)
			progress_add(progress, (unsigned long long)n);
		if (write_data(w, m->name, w->buf, (size_t)n) < 0)
			goto out;
		left -= (unsigned long long)n;
	}
	if (read(fd, w->buf, 1) == 0 && same_file(fd, &m->id)) {
		rc = 0;
		goto out;
	}
changed:
	log_error("backup: '%s' changed while being backed up (stop the app, or retry)",
		  path);
out:
	close(fd);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Staging a member whose bytes are made, not read (the PostgreSQL dump) */

struct member_sink {
	struct dump_sink sink; /* first: the sink is the struct */
	struct arc_member *m;
	EVP_MD_CTX *h;
	int fd;
	size_t used;
	char *buf;
};

static int member_flush(struct member_sink *ms)
{
	if (ms->used && write_all(ms->fd, ms->buf, ms->used) < 0)
		return -1;
	ms->used = 0;
	return 0;
}

static int member_write(struct dump_sink *sink, const void *data, size_t len)
{
	struct member_sink *ms = (struct member_sink *)sink;

	EVP_DigestUpdate(ms->h, data, len);
	ms->m->size += len;
	if (ms->used + len > BUF_SIZE && member_flush(ms) < 0)
		return -1;
	if (len >= BUF_SIZE)
		return write_all(ms->fd, data, len);
	memcpy(ms->buf + ms->used, data, len);
	ms->used += len;
	return 0;
}

static void member_free(struct member_sink *ms)
{
	int e = errno;

	EVP_MD_CTX_free(ms->h);
	free(ms->buf);
	free(ms);
	errno = e;
}

static int member_close(struct dump_sink *sink)
{
	struct member_sink *ms = (struct member_sink *)sink;
	unsigned char md[32];
	int rc = member_flush(ms);

	if (rc == 0 && ident_of(ms->fd, &ms->m->id) < 0)
		rc = -1;
	if (close(ms->fd) < 0)
		rc = -1;
	EVP_DigestFinal_ex(ms->h, md, NULL);
	hex32(md, ms->m->sha256);
	member_free(ms);
	return rc;
}

static void member_abort(struct dump_sink *sink)
{
	struct member_sink *ms = (struct member_sink *)sink;

	close(ms->fd);
	member_free(ms);
}

struct dump_sink *arc_member_sink(int fd, struct arc_member *m)
{
	struct member_sink *ms = xcalloc(1, sizeof(*ms));

	ms->sink.write = member_write;
	ms->sink.close = member_close;
	ms->sink.abort = member_abort;
	ms->m = m;
	ms->fd = fd;
	ms->buf = xmalloc(BUF_SIZE);
	ms->h = EVP_MD_CTX_new();
	if (!ms->h) { /* as xmalloc does */
		log_error("out of memory");
		exit(EXIT_OSERR);
	}
	EVP_DigestInit_ex(ms->h, EVP_sha256(), NULL);
	m->size = 0;
	return &ms->sink;
}

int arc_writer_close(struct arc_writer *w)
{
	int rc = archive_write_close(w->a) == ARCHIVE_OK &&
				 zpush(w, NULL, 0, ZSTD_e_end) == 0
			 ? 0
			 : -1;

	if (rc)
		log_error("backup: %s", archive_error_string(w->a));
	archive_write_free(w->a);
	ZSTD_freeCCtx(w->z);
	free(w->zbuf);
	free(w->buf);
	free(w);
	return rc;
}

/* A member name the reader accepts: relative, no "..", ".", or empty parts */
static bool name_safe(const char *n)
{
	const char *p = n;

	if (!*n || *n == '/')
		return false;
	while (*p) {
		size_t len = strcspn(p, "/");

		if (!len || (len == 1 && p[0] == '.') ||
		    (len == 2 && !strncmp(p, "..", 2)))
			return false;
		p += len;
		if (*p == '/' && !*++p)
			return false;
	}
	return true;
}

struct reader {
	struct archive *a;
	const struct arc_limits *lim;
	struct manifest *mf;
	const struct arc_sink *sink;
	unsigned long long bytes, members;
	char *buf;
};

static struct arc_member *find_member(struct manifest *mf, const char *name)
{
	for (size_t i = 0; i < mf->n; i++)
		if (!strcmp(mf->m[i].name, name))
			return &mf->m[i];
	return NULL;
}

static int refuse(const char *name, const char *why)
{
	log_error("restore: archive member '%s' refused: %s", name, why);
	return EXIT_DATA;
}

static int read_manifest(struct reader *r, struct archive_entry *e)
{
	la_int64_t size = archive_entry_size(e);
	char why[256];
	size_t got = 0;
	char *text;
	int rc;

	if (strcmp(archive_entry_pathname(e), ARC_MANIFEST) ||
	    archive_entry_filetype(e) != AE_IFREG)
		return refuse(archive_entry_pathname(e),
			      "the first member must be manifest.ini");
	if (size < 0 || size > MAX_MANIFEST)
		return refuse(ARC_MANIFEST, "too large");
	text = xmalloc((size_t)size + 1);
	while (got < (size_t)size) {
		la_ssize_t n = archive_read_data(r->a, text + got, (size_t)size - got);

		if (n <= 0) {
			free(text);
			return refuse(ARC_MANIFEST,
				      n < 0 ? archive_error_string(r->a) : "truncated");
		}
		got += (size_t)n;
	}
	rc = manifest_parse(r->mf, text, got, why, sizeof(why));
	free(text);
	if (rc)
		return refuse(ARC_MANIFEST, why);
	if (r->mf->n > r->lim->max_members)
		return refuse(ARC_MANIFEST, "more members than [backup] max_members");
	if (progress) { /* the bytes to come, uncompressed */
		progress->total = 0;
		for (size_t i = 0; i < r->mf->n; i++)
			progress->total += r->mf->m[i].size;
	}
	return 0;
}

static int check_entry(struct reader *r, struct archive_entry *e, struct arc_member **out)
{
	const char *raw = archive_entry_pathname(e);
	mode_t type = archive_entry_filetype(e);
	struct arc_member *m;
	char name[4096];
	size_t len;

	if (!raw || (len = strlen(raw)) >= sizeof(name))
		return refuse(raw ? "(too long)" : "?", "no usable name");
	memcpy(name, raw, len + 1);
	if (type == AE_IFDIR && len > 1 && name[len - 1] == '/')
		name[len - 1] = 0; /* tar writes directories as "name/" */
	if (!name_safe(name))
		return refuse(name, "absolute path or '..'/'.' component");
	if (archive_entry_hardlink(e) || archive_entry_symlink(e))
		return refuse(name, "links are not restored");
	if (type != AE_IFREG && type != AE_IFDIR)
		return refuse(name, "not a regular file or directory");
	m = find_member(r->mf, name);
	if (!m)
		return refuse(name, "not in the manifest");
	if (m->seen)
		return refuse(name, "appears twice");
	if ((m->type == 'd') != (type == AE_IFDIR))
		return refuse(name, "type differs from the manifest");
	if (archive_entry_size(e) < 0 ||
	    (unsigned long long)archive_entry_size(e) != m->size)
		return refuse(name, "size differs from the manifest");
	if (++r->members > r->lim->max_members)
		return refuse(name, "more members than [backup] max_members");
	r->bytes += m->size;
	if (r->bytes > r->lim->max_bytes)
		return refuse(name, "total size over [backup] max_bytes");
	m->seen = true;
	m->uid = (unsigned)archive_entry_uid(e);
	m->gid = (unsigned)archive_entry_gid(e);
	*out = m;
	return 0;
}

static int stream_member(struct reader *r, struct arc_member *m, int fd)
{
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	unsigned long long got = 0;
	unsigned char md[32];
	char hex[65];
	la_ssize_t n;

	EVP_DigestInit_ex(h, EVP_sha256(), NULL);
	while ((n = archive_read_data(r->a, r->buf, BUF_SIZE)) > 0) {
		got += (unsigned long long)n;
		if (got > m->size)
			break;
		EVP_DigestUpdate(h, r->buf, (size_t)n);
		if (progress)
			progress_add(progress, (unsigned long long)n);
		if (fd >= 0 && write_all(fd, r->buf, (size_t)n) < 0) {
			EVP_MD_CTX_free(h);
			log_error("restore: writing '%s': %s", m->name, strerror(errno));
			return EXIT_CANTCREAT;
		}
	}
	EVP_DigestFinal_ex(h, md, NULL);
	EVP_MD_CTX_free(h);
	hex32(md, hex);
	if (n < 0)
		return refuse(m->name, archive_error_string(r->a));
	if (got != m->size)
		return refuse(m->name,
			      got > m->size ? "larger than declared" : "truncated");
	if (strcmp(hex, m->sha256))
		return refuse(m->name, "sha256 differs from the manifest");
	return 0;
}

static int read_members(struct reader *r)
{
	struct archive_entry *e;
	int rc, first = 1;

	for (;;) {
		struct arc_member *m = NULL;
		int fd = -2;

		rc = archive_read_next_header(r->a, &e);
		if (rc == ARCHIVE_EOF)
			break;
		if (rc != ARCHIVE_OK)
			return refuse(first ? ARC_MANIFEST : "(next)",
				      archive_error_string(r->a)
					      ? archive_error_string(r->a)
					      : "corrupt stream");
		if (first) {
			first = 0;
			if ((rc = read_manifest(r, e)))
				return rc;
			continue;
		}
		if ((rc = check_entry(r, e, &m)))
			return rc;
		if (r->sink && (fd = r->sink->open(r->sink->arg, r->mf, m)) == -1)
			return EXIT_CANTCREAT;
		if (m->type == 'f' && (rc = stream_member(r, m, fd)))
			return rc;
		if (r->sink && r->sink->done && r->sink->done(r->sink->arg, m, fd) < 0)
			return EXIT_CANTCREAT;
	}
	if (first)
		return refuse(ARC_MANIFEST, "empty archive");
	for (size_t i = 0; i < r->mf->n; i++)
		if (!r->mf->m[i].seen)
			return refuse(r->mf->m[i].name, "in the manifest but missing");
	return 0;
}

static int run_reader(struct reader *r)
{
	int rc;

	r->buf = xmalloc(BUF_SIZE);
	rc = read_members(r);
	archive_read_free(r->a);
	free(r->buf);
	return rc;
}

static struct archive *reader_new(void)
{
	struct archive *a = archive_read_new();

	if (!a || archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
	    archive_read_support_format_tar(a) != ARCHIVE_OK) {
		log_error("restore: libarchive has no zstd or tar reader");
		archive_read_free(a);
		return NULL;
	}
	return a;
}

int arc_read(int fd, const struct arc_limits *lim, struct manifest *mf,
	     const struct arc_sink *sink)
{
	struct reader r = { .lim = lim, .mf = mf, .sink = sink };

	if (!(r.a = reader_new()))
		return EXIT_OSERR;
	if (archive_read_open_fd(r.a, fd, BUF_SIZE) != ARCHIVE_OK) {
		log_error(
			"restore: the archive is unreadable (not a .ferry file, damaged or truncated): %s",
			archive_error_string(r.a));
		archive_read_free(r.a);
		return EXIT_DATA;
	}
	return run_reader(&r);
}

int arc_read_mem(const void *data, size_t len, const struct arc_limits *lim)
{
	struct manifest mf = { 0 };
	struct reader r = { .lim = lim, .mf = &mf };
	int rc;

	if (!(r.a = reader_new()))
		return EXIT_OSERR;
	if (archive_read_open_memory(r.a, data, len) != ARCHIVE_OK) {
		archive_read_free(r.a);
		return EXIT_DATA;
	}
	rc = run_reader(&r);
	manifest_free(&mf);
	return rc;
}

int arc_hash_member(struct arc_member *m, const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), e;
	EVP_MD_CTX *h;
	unsigned char md[32];
	char *buf;
	ssize_t n;

	m->size = 0;
	if (fd < 0 || ident_of(fd, &m->id) < 0) {
		e = errno;
		if (fd >= 0)
			close(fd);
		errno = e;
		return -1;
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* a hint only */
	h = EVP_MD_CTX_new();
	buf = xmalloc(BUF_SIZE);
	EVP_DigestInit_ex(h, EVP_sha256(), NULL);
	while ((n = read(fd, buf, BUF_SIZE)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		EVP_DigestUpdate(h, buf, (size_t)n);
		m->size += (unsigned long long)n;
	}
	e = errno;
	EVP_DigestFinal_ex(h, md, NULL);
	EVP_MD_CTX_free(h);
	free(buf);
	close(fd);
	hex32(md, m->sha256);
	errno = e;
	return n < 0 ? -1 : 0;
}

void arc_set_progress(struct progress *p)
{
	progress = p;
}
