/*
 * ferry restore FILE [--mode verify|replace] [--keep-owners]
 * verify (the default) reads the whole archive, checking every member
 * against manifest.ini, and changes nothing. replace extracts into staging
 * trees beside each target (same filesystem: the database's directory,
 * each data path's parent), verified as they stream in; only when all of
 * it is in and fsynced does restore.c swap them in by renames, journalled.
 * Files are written by hand with O_CREAT|O_EXCL|O_NOFOLLOW: modes without
 * setuid/setgid/sticky, no ACLs or xattrs, owned by [run] user.
 * PostgreSQL: the dump member is staged as a file in the state dir (the
 * archive streams past once; the load reads it after the whole archive
 * checked out) and loaded into the database <db>_restore, whose rows are
 * counted against the manifest's before the swap renames it to <db>.
 */
#include "archive.h"
#include "commands.h"
#include "dump.h"
#include "exits.h"
#include "log.h"
#include "pid1.h"
#include "progress.h"
#include "restore.h"
#include "session.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct extract {
	struct session *s;
	struct swap_pair *pairs; /* [0]: the database, [1 + i]: paths[i] */
	size_t npairs;
	struct run_user owner;
	bool db;		 /* the database is no file: pairs[0] is "db:" */
	bool chown, keep_owners; /* to owner / to the archive's owners */
	int status;		 /* why the extraction stopped, when it was ours */
};

/* Where member m goes under the staging trees; NULL: refused (logged) */
static char *staged_path(struct extract *x, const struct manifest *mf,
			 const struct arc_member *m)
{
	size_t idx;
	int off = 0;

	if (!x->db && !strcmp(m->name, ARC_DB_MEMBER) && m->type == 'f')
		return xstrdup(x->pairs[0].staged);
	if (x->db && !strcmp(m->name, ARC_PG_MEMBER) && m->type == 'f')
		return xstrdup(x->pairs[x->npairs - 1].staged); /* the scratch */
	if (sscanf(m->name, "paths/%zu%n", &idx, &off) == 1 && idx < mf->npaths &&
	    (m->name[off] == 0 || m->name[off] == '/'))
		return xasprintf("%s%s", x->pairs[1 + idx].staged, m->name + off);
	log_error("restore: archive member '%s' refused: not a database or data path "
		  "member",
		  m->name);
	return NULL;
}

static int open_member(void *arg, const struct manifest *mf, const struct arc_member *m)
{
	struct extract *x = arg;
	char *path = staged_path(x, mf, m);
	int fd;

	if (!path)
		return -1;
	if (m->type == 'd') {
		fd = mkdir(path, 0700) < 0 ? -1 : -2;
	} else {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			  0600);
	}
	if (fd == -1)
		log_error("restore: cannot create '%s': %s", path, strerror(errno));
	free(path);
	return fd;
}

static int member_done(void *arg, const struct arc_member *m, int fd)
{
	struct extract *x = arg;
	struct timespec t[2] = { { m->mtime, 0 }, { m->mtime, 0 } };
	int rc = 0;

	if (fd < 0)
		return 0;
	if (x->chown && fchown(fd, x->owner.uid, x->owner.gid) < 0)
		rc = -1;
	if (x->keep_owners && fchown(fd, m->uid, m->gid) < 0)
		rc = -1;
	if (rc == 0 &&
	    (fchmod(fd, m->mode & 0777) < 0 || futimens(fd, t) < 0 || fsync(fd) < 0))
		rc = -1;
	if (close(fd) < 0)
		rc = -1;
	if (rc < 0)
		log_error("restore: cannot write '%s': %s", m->name, strerror(errno));
	return rc;
}

/* Directories last: their modes (maybe read-only) and mtimes, fsynced */
static int finish_dirs(struct extract *x, const struct manifest *mf)
{
	for (size_t i = mf->n; i-- > 0;) {
		const struct arc_member *m = &mf->m[i];
		struct timespec t[2] = { { m->mtime, 0 }, { m->mtime, 0 } };
		char *path;
		int rc = 0;

		if (m->type != 'd' || !(path = staged_path(x, mf, m)))
			continue;
		if (x->chown && chown(path, x->owner.uid, x->owner.gid) < 0)
			rc = -1;
		if (x->keep_owners && chown(path, m->uid, m->gid) < 0)
			rc = -1;
		if (rc == 0 && (fsync_path(path) < 0 || chmod(path, m->mode & 0777) < 0 ||
				utimensat(AT_FDCWD, path, t, 0) < 0))
			rc = -1;
		if (rc < 0)
			log_error("restore: cannot finish '%s': %s", path,
				  strerror(errno));
		free(path);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Is the archive's engine and schema version one this image takes? */
static int check_compatible(struct session *s, const struct manifest *mf)
{
	struct version v = VERSION_ZERO, top = migrations_latest(&s->set);

	if (strcmp(mf->engine, s->store.ops->engine)) {
		log_error(
			"restore: the archive holds a %s database, [database] url is %s",
			mf->engine, s->store.ops->engine);
		return EXIT_DATA;
	}
	if (strcmp(mf->schema_version, "0") &&
	    !version_parse(&v, mf->schema_version, strlen(mf->schema_version))) {
		log_error("restore: manifest.ini: bad schema_version '%s'",
			  mf->schema_version);
		return EXIT_DATA;
	}
	if (version_cmp(&v, &top) > 0) {
		log_error("restore: the archive's schema version %s is newer than this "
			  "image's %s; restore it with a newer image",
			  mf->schema_version, version_str(&top));
		return EXIT_DATA;
	}
	return 0;
}

/* Is dir one of the configured [backup] paths? */
static bool configured_path(const struct config *c, const char *dir)
{
	const char *p = c->backup_paths;

	while (p && *p) {
		size_t len = strcspn(p, " \t,");
		char *one = xasprintf("%.*s", (int)len, p), *real = realpath(one, NULL);
		bool same = len && (!strcmp(one, dir) || (real && !strcmp(real, dir)));

		free(one);
		free(real);
		if (same)
			return true;
		p += len;
		p += strspn(p, " \t,");
	}
	return false;
}

static void add_pair(struct extract *x, char *staged, char *target)
{
	x->pairs = xrealloc(x->pairs, (x->npairs + 1) * sizeof(*x->pairs));
	x->pairs[x->npairs++] = (struct swap_pair){ staged, target };
}

/* The database pair: a file beside the database, or a database beside it */
static int database_pair(struct extract *x, const char *dir, int pid)
{
	const char *db = x->s->store.path;
	struct store *st = &x->s->store;

	if (!x->db) {
		add_pair(x, xasprintf("%s/.ferry-restore-%d.db", dir, pid), xstrdup(db));
		return 0;
	}
	db = st->ops->archive_name(st);
	/* PostgreSQL names have at most 63 bytes */
	if (strlen(db) > 63 - strlen("_pre_restore")) {
		log_error("restore: the database name '%s' is too long for the names "
			  "of its restore copies (%s_pre_restore)",
			  db, db);
		return EXIT_CONFIG;
	}
	add_pair(x, xasprintf("db:%s_restore", db), xasprintf("db:%s", db));
	return 0;
}

/* The staging names, journalled before anything is created; 0 or status */
static int init_pairs(struct extract *x, const struct manifest *mf)
{
	const char *db = x->s->store.path;
	char *dir = dir_of(db);
	int pid = (int)getpid(), rc;

	if ((rc = check_compatible(x->s, mf)))
		return free(dir), rc;
	if (mkdir_p(dir, 0755) < 0) {
		log_error("restore: cannot create '%s': %s", dir, strerror(errno));
		return free(dir), EXIT_CANTCREAT;
	}
	if ((rc = database_pair(x, dir, pid)))
		return free(dir), rc;
	for (size_t i = 0; i < mf->npaths; i++) {
		char *parent = dir_of(mf->paths[i]);

		if (mkdir_p(parent, 0755) < 0) {
			log_error("restore: cannot create '%s': %s", parent,
				  strerror(errno));
			free(parent);
			return free(dir), EXIT_CANTCREAT;
		}

		if (!configured_path(x->s->c, mf->paths[i])) {
			log_error(
				"restore: the archive's data path '%s' is not in [backup] "
				"paths",
				mf->paths[i]);
			free(parent);
			return free(dir), EXIT_DATA;
		}
		add_pair(x,
			 xasprintf("%s/.ferry-restore-%d-%s", parent, pid,
				   base_of(mf->paths[i])),
			 xstrdup(mf->paths[i]));
		free(parent);
	}
	if (x->db) { /* the scratch, last */
		add_pair(x,
			 xasprintf("%s/.ferry-restore-%d.pgdump", x->s->state.dir, pid),
			 xstrdup("-"));
	} else {
		add_pair(x, xstrdup("-"), xasprintf("%s-wal", db));
		add_pair(x, xstrdup("-"), xasprintf("%s-shm", db));
	}
	free(dir);
	return restore_journal_staging(x->s->state.dir, x->pairs, x->npairs) < 0
		       ? EXIT_CANTCREAT
		       : 0;
}

static int open_first(void *arg, const struct manifest *mf, const struct arc_member *m)
{
	struct extract *x = arg;

	if (!x->pairs && (x->status = init_pairs(x, mf)))
		return -1;
	return open_member(arg, mf, m);
}

static int read_archive(struct session *s, const char *file, struct manifest *mf,
			const struct arc_sink *sink)
{
	struct arc_limits lim = { (unsigned long long)s->c->backup_max_bytes,
				  (unsigned long long)s->c->backup_max_members };
	struct progress p;
	int fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : 0, rc;

	if (fd < 0) {
		log_error("restore: cannot open '%s': %s", file, strerror(errno));
		return EXIT_DATA;
	}
	progress_start(&p, "restore", 0); /* the manifest gives the total */
	arc_set_progress(&p);
	rc = arc_read(fd, &lim, mf, sink);
	arc_set_progress(NULL);
	progress_end(&p);
	if (fd > 0)
		close(fd);
	return rc;
}

/* The staged dump loaded into <db>_restore and its rows counted; 0 or status */
static int load_database(struct extract *x, const struct manifest *mf)
{
	struct store *st = &x->s->store;
	const char *dump = x->pairs[x->npairs - 1].staged, *name = x->pairs[0].staged + 3;
	unsigned long long rows = 0;
	long long want = -1;
	int fd = open(dump, O_RDONLY | O_CLOEXEC);
	struct dump_source *in;
	int rc;

	if (fd < 0) {
		log_error("restore: the archive holds no %s (cannot open '%s': %s)",
			  ARC_PG_MEMBER, dump, strerror(errno));
		return EXIT_DATA;
	}
	if (mf->rows[0] && !parse_ll(mf->rows, 0, LLONG_MAX, &want)) {
		close(fd);
		log_error("restore: manifest.ini: bad rows '%s'", mf->rows);
		return EXIT_DATA;
	}
	log_info("restore: loading the database into %s", name);
	in = dump_source_plain_file(fd);
	rc = st->ops->archive_load(st, name, in, &rows);
	dump_source_close(in);
	if (rc < 0) /* the copy is dropped: nothing changed */
		return st->status ? st->status : EXIT_DATA;
	if (want >= 0 && rows != (unsigned long long)want) {
		log_error("restore: %s took %llu rows, the manifest says %lld", name,
			  rows, want);
		return EXIT_DATA;
	}
	log_info("restore: %s loaded and checked: %llu rows, as the manifest says", name,
		 rows);
	if (unlink(dump) < 0) /* its room back before the swap */
		log_warn("restore: cannot remove '%s': %s", dump, strerror(errno));
	return 0;
}

static int replace(struct session *s, const struct cmd_args *a, struct manifest *mf)
{
	struct extract x = { .s = s, .db = s->store.ops->archive_load != NULL };
	struct arc_sink sink = { open_first, member_done, &x };
	int rc;

	x.keep_owners = a->keep_owners && geteuid() == 0;
	if (!a->keep_owners && s->c->run_user && geteuid() == 0) {
		char why[256];

		if (pid1_resolve_user(s->c->run_user, &x.owner, why, sizeof(why)) < 0) {
			log_error("restore: [run] user: %s", why);
			return EXIT_CONFIG;
		}
		x.chown = true;
	}
	rc = read_archive(s, a->file, mf, &sink);
	if (rc && x.status)
		rc = x.status;
	if (rc == 0)
		rc = finish_dirs(&x, mf) < 0 ? EXIT_CANTCREAT : 0;
	if (rc == 0 && x.db)
		rc = load_database(&x, mf);
	if (rc == 0) {
		crash_point("restore-staged");
		rc = restore_swap(&s->store, s->state.dir, x.pairs, x.npairs);
		if (rc > 0) /* nothing changed */
			rc = s->store.status ? s->store.status : EXIT_RESTORE_FAILED;
		else if (rc < 0)
			rc = EXIT_RESTORE_FAILED;
	} else if (x.pairs) {
		restore_abandon(&s->store, s->state.dir, x.pairs, x.npairs);
	}
	for (size_t i = 0; i < x.npairs; i++)
		free(x.pairs[i].staged), free(x.pairs[i].target);
	free(x.pairs);
	pid1_release_user(&x.owner);
	return rc;
}

int cmd_restore(struct session *s, const struct cmd_args *a)
{
	const char *mode = a->mode ? a->mode : "verify";
	struct manifest mf = { 0 };
	int rc;

	if (!a->file) {
		log_error("restore: exactly one archive FILE expected");
		return EXIT_USAGE;
	}
	if (!strcmp(mode, "verify")) {
		rc = read_archive(s, a->file, &mf, NULL);
		if (rc == 0)
			rc = check_compatible(s, &mf);
	} else if (!strcmp(mode, "replace")) {
		rc = replace(s, a, &mf);
	} else {
		log_error("restore: --mode must be verify or replace, not '%s'", mode);
		return EXIT_USAGE;
	}
	if (rc == 0)
		log_info("restore: %s %s: %zu members, %s schema version %s, made %s by "
			 "ferry %s",
			 a->file, !strcmp(mode, "verify") ? "verified" : "restored", mf.n,
			 mf.engine, mf.schema_version, mf.created_at, mf.ferry_version);
	manifest_free(&mf);
	return rc;
}
