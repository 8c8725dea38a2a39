/*
 * owner: the files ferry makes for the database belong to the server's
 * user. Run as root with [run] user, ferry creates the database, SQLite's
 * sidecars (from inside SQLite, where no chown can follow), the state dir
 * and the snapshots as root, and the server, once it has dropped to its
 * user, could not write them. So, the way official images chown their
 * data directory before they drop privileges, ferry gives them to the
 * user in one pass over the paths it knows: at the start of `ferry run`
 * (root's files of an earlier version or of a crash) and whenever a
 * session closes (what this command created). A crash between a file's
 * creation and the pass leaves it to the next boot's pass.
 *
 * Only root-owned regular files and directories are given, never through
 * a symbolic link and never a file with a second hard link, so a link
 * planted in a directory the user can write cannot hand it something else.
 */
#include "owner.h"
#include "exits.h"
#include "log.h"
#include "session.h"
#include "snapshot.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What SQLite keeps beside a database file. */
static const char *const sidecars[] = { "", "-wal", "-shm", "-journal" };
#define NSIDECARS (sizeof(sidecars) / sizeof(sidecars[0]))

/* Gives path to uid:gid when root owns it; missing is fine. -1 warned. */
static int give_path(const char *path, uid_t uid, gid_t gid)
{
	int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC), rc = 0, e;
	struct stat st;

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		e = errno;
		log_warn("cannot give '%s' to uid %u: %s", path, (unsigned)uid,
			 strerror(e));
		return -1;
	}
	if (fstat(fd, &st) < 0 || st.st_uid != 0 ||
	    !(S_ISDIR(st.st_mode) || (S_ISREG(st.st_mode) && st.st_nlink == 1)))
		goto out;
	if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH) < 0) {
		e = errno;
		log_warn("cannot give '%s' to uid %u: %s", path, (unsigned)uid,
			 strerror(e));
		rc = -1;
		goto out;
	}
	log_debug("gave '%s' to uid %u gid %u", path, (unsigned)uid, (unsigned)gid);
out:
	close(fd);
	return rc;
}

/* The state dir and every file in it: all of it is ferry's. */
static void give_state_dir(const char *dir, uid_t uid, gid_t gid)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return; /* not created (yet): nothing to give */
	give_path(dir, uid, gid);
	while ((e = readdir(d))) {
		char *p;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		p = xasprintf("%s/%s", dir, e->d_name);
		give_path(p, uid, gid);
		free(p);
	}
	closedir(d);
}

void owner_give(struct session *s)
{
	const struct run_user *u = &s->owner;
	const char *loc;

	if (!u->set || u->uid == 0 || !s->have_store || !s->store.ops)
		return;
	loc = s->store.ops->location(&s->store);
	if (s->store.ops == &sqlite_ops)
		for (size_t i = 0; i < NSIDECARS; i++) {
			char *p = xasprintf("%s%s", loc, sidecars[i]);

			give_path(p, u->uid, u->gid);
			free(p);
		}
	/* keep + 1: the one a rotation moves out last */
	for (int i = 0; i <= (int)s->c->snapshot_keep; i++) {
		char *p = snapshot_path(s->c, &s->store, i);

		give_path(p, u->uid, u->gid);
		free(p);
	}
	if (s->have_state)
		give_state_dir(s->state.dir, u->uid, u->gid);
}

/* name is one of the database's own files: base itself, base-*, base.* */
static bool of_database(const char *name, const char *base)
{
	size_t n = strlen(base);

	return !strncmp(name, base, n) &&
	       (name[n] == '\0' || name[n] == '-' || name[n] == '.');
}

/*
 * The directory holds nothing but the database's files, ferry's state dir
 * and a file system's lost+found: a data directory (a fresh volume), not
 * one shared with the image's other files, which stay root's.
 */
static bool data_dir_only(const char *dir, const char *base)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool only = d != NULL;

	while (only && (e = readdir(d)))
		only = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		       !strcmp(e->d_name, ".ferry") || !strcmp(e->d_name, "lost+found") ||
		       of_database(e->d_name, base);
	if (d)
		closedir(d);
	return only;
}

/* "the server's user app (uid 1000)" */
static void who(const struct run_user *u, char *buf, size_t size)
{
	snprintf(buf, size, "the server's user %s (uid %u)", u->spec ? u->spec : "?",
		 (unsigned)u->uid);
}

/* u can create -wal and -journal beside the database. 0 or 73 logged. */
static int check_dir(struct session *s, const struct run_user *u, const char *path)
{
	char *dir = dir_of(path), name[300];
	struct stat st;
	int r = pid1_access_as(u, dir, W_OK | X_OK), rc = 0;

	if (r > 0 && s->owner.set && stat(dir, &st) == 0 && st.st_uid == 0 &&
	    data_dir_only(dir, base_of(path))) {
		log_info("giving '%s' (a directory with only the database's files) to "
			 "[run] user %s",
			 dir, u->spec);
		if (give_path(dir, u->uid, u->gid) == 0)
			r = pid1_access_as(u, dir, W_OK | X_OK);
	}
	if (r != 0) {
		who(u, name, sizeof(name));
		if (r > 0 && stat(dir, &st) == 0)
			error("%s cannot create files in '%s' (owner uid %u, mode %04o: "
			      "%s), where SQLite writes '%s-journal' or '-wal': give it "
			      "to the user (chown %u:%u '%s'), or keep the database in "
			      "a directory of its own",
			      name, dir, (unsigned)st.st_uid,
			      (unsigned)(st.st_mode & 07777), strerror(r), path,
			      (unsigned)u->uid, (unsigned)u->gid, dir);
		else if (r > 0)
			error("%s cannot create files in '%s': %s", name, dir,
			      strerror(r));
		rc = EXIT_CANTCREAT;
	}
	free(dir);
	return rc;
}

/* u can read and write each of the database's files there is. */
static int check_files(const struct run_user *u, const char *path)
{
	char name[300];
	int rc = 0;

	for (size_t i = 0; i < NSIDECARS && rc == 0; i++) {
		char *p = xasprintf("%s%s", path, sidecars[i]);
		struct stat st;
		int r;

		if (stat(p, &st) < 0) {
			free(p);
			continue;
		}
		r = pid1_access_as(u, p, R_OK | W_OK);
		if (r > 0) {
			who(u, name, sizeof(name));
			error("%s cannot write the database file '%s' (owner uid %u gid "
			      "%u, mode %04o: %s): give it to the user (chown %u:%u "
			      "'%s'); nothing was changed",
			      name, p, (unsigned)st.st_uid, (unsigned)st.st_gid,
			      (unsigned)(st.st_mode & 07777), strerror(r),
			      (unsigned)u->uid, (unsigned)u->gid, p);
		}
		rc = r != 0 ? EXIT_CANTCREAT : 0;
		free(p);
	}
	return rc;
}

int owner_check(struct session *s, const struct run_user *u)
{
	const char *path;
	int rc;

	/* PostgreSQL: the server writes no local file of ferry's */
	if (!u->set || !s->have_store || s->store.ops != &sqlite_ops)
		return 0;
	owner_give(s);
	path = s->store.ops->location(&s->store);
	rc = check_dir(s, u, path);
	if (rc == 0)
		rc = check_files(u, path);
	return rc;
}
