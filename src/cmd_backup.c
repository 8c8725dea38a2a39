/*
 * ferry backup -o FILE|-: one .ferry archive of the database and the
 * [backup] paths (see archive.c for the layout). Two passes: the database
 * is copied with the backup API into FILE.tmp-<pid>.db (a consistent point
 * in time) and every data file is hashed, so that manifest.ini, written
 * first, holds each member's size and sha256; then everything streams into
 * FILE.tmp-<pid>, which is fsynced and renamed. A data file changing
 * between the passes fails the backup: stop the app (before_upgrade does)
 * or retry.
 * PostgreSQL: the database member is the logical dump (one consistent
 * view, store op archive_dump), staged uncompressed in that same temp
 * file and hashed as it is written (archive.h's arc_member_sink), then
 * streamed. A tar header needs the size before the data, and the manifest
 * the sha256; staging once costs one sequential write and read of the
 * dump, where dumping twice would read the database twice and need the
 * view held open in between.
 */
#include "archive.h"
#include "commands.h"
#include "dump.h"
#include "exits.h"
#include "log.h"
#include "progress.h"
#include "session.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef FERRY_VERSION
#define FERRY_VERSION "0.1.0"
#endif

/* nftw() has no argument for its callback */
static struct walk {
	struct manifest *mf;
	const char *exclude;
	size_t index, rootlen;
	int failed;
	unsigned long long bytes;
	char *skip; /* an excluded directory, whose entries nftw still visits */
} walk;

static bool excluded(const char *rel, const char *patterns)
{
	const char *p = patterns;

	while (p && *p) {
		size_t len = strcspn(p, " \t,");
		char pat[1024];

		if (len && len < sizeof(pat)) {
			memcpy(pat, p, len);
			pat[len] = 0;
			if (!fnmatch(pat, rel, 0) || !fnmatch(pat, base_of(rel), 0))
				return true;
		}
		p += len;
		p += strspn(p, " \t,");
	}
	return false;
}

static int visit(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	const char *rel = path + walk.rootlen;
	struct arc_member *m;
	char *name;

	(void)ftw;
	/* nftw's return values only: musl has no FTW_ACTIONRETVAL */
	if (walk.skip && !strncmp(path, walk.skip, strlen(walk.skip)) &&
	    path[strlen(walk.skip)] == '/')
		return 0;
	if (*rel == '/')
		rel++;
	if (*rel && excluded(rel, walk.exclude)) {
		if (flag == FTW_D) {
			free(walk.skip);
			walk.skip = xstrdup(path);
		}
		return 0;
	}
	if (strchr(rel, '\n')) {
		log_error("backup: '%s': a newline in a name cannot be archived", path);
		return walk.failed = 1;
	}
	if (flag != FTW_F && flag != FTW_D) {
		log_warn("backup: skipping '%s' (not a regular file or directory)", path);
		return 0;
	}
	if (flag == FTW_F && !S_ISREG(st->st_mode)) {
		log_warn("backup: skipping '%s' (not a regular file)", path);
		return 0;
	}
	name = *rel ? xasprintf("paths/%zu/%s", walk.index, rel)
		    : xasprintf("paths/%zu", walk.index);
	m = manifest_add(walk.mf, name, flag == FTW_D ? 'd' : 'f');
	free(name);
	m->mode = st->st_mode & 0777;
	m->mtime = (long long)st->st_mtime;
	m->uid = (unsigned)st->st_uid;
	m->gid = (unsigned)st->st_gid;
	if (flag == FTW_F && arc_hash_member(m, path) < 0) {
		log_error("backup: cannot read '%s': %s", path, strerror(errno));
		return walk.failed = 1;
	}
	walk.bytes += m->size;
	return 0;
}

/* Adds each [backup] paths entry; -1 logged */
static int collect_paths(const struct config *c, struct manifest *mf)
{
	const char *p = c->backup_paths;

	walk = (struct walk){ .mf = mf, .exclude = c->backup_exclude };
	while (p && *p) {
		size_t len = strcspn(p, " \t,");
		char *dir = xasprintf("%.*s", (int)len, p), *real = realpath(dir, NULL);

		if (len && !real) {
			log_error("backup: [backup] paths: '%s': %s", dir,
				  strerror(errno));
			free(dir);
			return -1;
		}
		if (len) {
			manifest_add_path(mf, real);
			walk.index = mf->npaths - 1;
			walk.rootlen = strlen(real);
			int r = nftw(real, visit, 32, FTW_PHYS);

			free(walk.skip);
			walk.skip = NULL;
			if (r < 0 || walk.failed) {
				free(real);
				free(dir);
				return -1;
			}
		}
		free(real);
		free(dir);
		p += len;
		p += strspn(p, " \t,");
	}
	return 0;
}

/* PostgreSQL: the dump staged at db_copy as member m; 0 or exit status */
static int stage_dump(struct session *s, struct manifest *mf, const char *db_copy,
		      const struct version *top)
{
	struct arc_member *m = manifest_add(mf, ARC_PG_MEMBER, 'f');
	struct dump_sink *out;
	unsigned long long rows = 0;
	int fd = open(db_copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	m->mode = 0600;
	m->uid = (unsigned)getuid();
	m->gid = (unsigned)getgid();
	m->mtime = (long long)time(NULL);
	if (fd < 0) {
		log_error("backup: cannot create '%s': %s", db_copy, strerror(errno));
		return EXIT_CANTCREAT;
	}
	s->store.snapshot_version = *top; /* the dump's V record */
	out = arc_member_sink(fd, m);
	if (s->store.ops->archive_dump(&s->store, out, &rows) < 0) {
		dump_sink_abort(out);
		return s->store.status ? s->store.status : EXIT_DATA;
	}
	if (dump_sink_close(out) < 0) {
		log_error("backup: cannot write '%s': %s", db_copy, strerror(errno));
		return EXIT_CANTCREAT;
	}
	snprintf(mf->rows, sizeof(mf->rows), "%llu", rows);
	return 0;
}

/* The header and the staged database copy at db_copy; 0 or exit status */
static int stage_database(struct session *s, struct manifest *mf, const char *db_copy,
			  bool opened)
{
	struct snapshot_info info = { 0 };
	struct version top;
	time_t now = time(NULL);
	struct arc_member *m;

	if (!opened &&
	    (s->store.ops->open(&s->store) < 0 || ledger_read(&s->store, &s->ledger) < 0))
		return EXIT_DATA;
	top = ledger_top(&s->ledger);
	mf->format = ARC_FORMAT;
	snprintf(mf->engine, sizeof(mf->engine), "%s", s->store.ops->engine);
	snprintf(mf->schema_version, sizeof(mf->schema_version), "%s", version_str(&top));
	snprintf(mf->ferry_version, sizeof(mf->ferry_version), "%s", FERRY_VERSION);
	strftime(mf->created_at, sizeof(mf->created_at), "%Y-%m-%dT%H:%M:%SZ",
		 gmtime(&now));
	if (s->store.ops->archive_dump)
		return stage_dump(s, mf, db_copy, &top);
	info.scratch = true; /* read into the archive, then deleted */
	if (s->store.ops->snapshot(&s->store, db_copy, &info) < 0)
		return EXIT_CANTCREAT;
	m = manifest_add(mf, ARC_DB_MEMBER, 'f');
	{
		struct stat st;

		if (stat(s->store.path, &st) == 0) {
			m->mode = st.st_mode & 0777;
			m->uid = (unsigned)st.st_uid;
			m->gid = (unsigned)st.st_gid;
		} else {
			m->mode = 0600;
		}
	}
	m->mtime = (long long)now;
	if (arc_hash_member(m, db_copy) < 0) {
		log_error("backup: cannot read the copy '%s': %s", db_copy,
			  strerror(errno));
		return EXIT_CANTCREAT;
	}
	return 0;
}

static int write_members(struct arc_writer *w, const struct manifest *mf,
			 const char *db_copy)
{
	size_t len;
	char *text = manifest_format(mf, &len);
	int rc = arc_write_mem(w, ARC_MANIFEST, text, len);

	free(text);
	for (size_t i = 0; i < mf->n && rc == 0; i++) {
		const struct arc_member *m = &mf->m[i];
		char *path;
		size_t idx;
		int off = 0;

		if (m->type == 'd') {
			rc = arc_write_dir(w, m);
			continue;
		}
		if (!strcmp(m->name, ARC_DB_MEMBER) || !strcmp(m->name, ARC_PG_MEMBER)) {
			rc = arc_write_file(w, m, db_copy);
			continue;
		}
		sscanf(m->name, "paths/%zu/%n", &idx, &off);
		path = xasprintf("%s/%s", mf->paths[idx], m->name + off);
		rc = arc_write_file(w, m, path);
		free(path);
	}
	return rc;
}

/* Streams the archive into fd; 0 or -1 logged */
static int write_archive(const struct config *c, const struct manifest *mf,
			 const char *db_copy, int fd, unsigned long long total)
{
	struct progress p;
	struct arc_writer *w =
		arc_writer_open(fd, (int)c->backup_zstd_level, (int)c->backup_threads);
	int rc;

	if (!w)
		return -1;
	progress_start(&p, "backup", total);
	arc_set_progress(&p);
	rc = write_members(w, mf, db_copy);
	if (arc_writer_close(w) < 0)
		rc = -1;
	arc_set_progress(NULL);
	progress_end(&p);
	return rc;
}

static int finish_file(int fd, const char *tmp, const char *out)
{
	if (fsync(fd) < 0 || close(fd) < 0) {
		log_error("backup: cannot write '%s': %s", tmp, strerror(errno));
		return -1;
	}
	if (rename(tmp, out) < 0 || fsync_dir_of(out) < 0) {
		log_error("backup: cannot rename '%s' to '%s': %s", tmp, out,
			  strerror(errno));
		return -1;
	}
	return 0;
}

static int backup_run(struct session *s, const char *out, bool opened)
{
	bool to_stdout = !strcmp(out, "-");
	const char *dir = to_stdout ? s->store.snapshot_dir : NULL;
	char *db_copy = dir ? xasprintf("%s/.ferry-backup-%d.db", dir, (int)getpid())
			    : xasprintf("%s.tmp-%d.db", out, (int)getpid());
	char *tmp = xasprintf("%s.tmp-%d", out, (int)getpid());
	struct manifest mf = { 0 };
	int fd = -1, rc = stage_database(s, &mf, db_copy, opened);

	if (rc == 0 && collect_paths(s->c, &mf) < 0)
		rc = EXIT_DATA;
	if (rc == 0) {
		fd = to_stdout ? 1
			       : open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			log_error("backup: cannot create '%s': %s", tmp, strerror(errno));
		rc = fd < 0 ? EXIT_CANTCREAT : 0;
	}
	if (rc == 0 &&
	    write_archive(s->c, &mf, db_copy, fd, walk.bytes + mf.m[0].size) < 0)
		rc = EXIT_CANTCREAT;
	if (rc == 0 && !to_stdout && finish_file(fd, tmp, out) < 0)
		rc = EXIT_CANTCREAT, fd = -1;
	else if (rc && fd > 1)
		close(fd);
	if (rc && !to_stdout)
		unlink(tmp);
	unlink(db_copy);
	if (rc == 0)
		log_info("backup: %s written: %zu members, schema version %s", out, mf.n,
			 mf.schema_version);
	manifest_free(&mf);
	free(db_copy);
	free(tmp);
	return rc;
}

int backup_write(struct session *s, const char *out)
{
	return backup_run(s, out, false);
}

int backup_before_upgrade(struct session *s)
{
	const char *dir = s->c->backup_dir ? s->c->backup_dir : s->c->snapshot_dir;
	char *d = dir ? xstrdup(dir) : dir_of(s->store.ops->location(&s->store)), *out;
	char stamp[32];
	time_t now = time(NULL);
	int rc;

	if (!s->c->backup_before_upgrade)
		return free(d), 0;
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime(&now));
	out = xasprintf("%s/pre-upgrade-%s.ferry", d, stamp);
	log_info("backup: [backup] before_upgrade: writing %s", out);
	rc = mkdir_p(d, 0700) < 0 ? EXIT_CANTCREAT : backup_run(s, out, true);
	free(out);
	free(d);
	return rc;
}

int cmd_backup(struct session *s, const struct cmd_args *a)
{
	if (!a->output) {
		log_error("backup: -o FILE (or -o - for stdout) is required");
		return EXIT_USAGE;
	}
	if (!s->db_exists) {
		log_error("backup: no database at '%s'", s->store.path);
		return EXIT_DATA;
	}
	return backup_write(s, a->output);
}
