/*
 * snapshot: the file-level policy around the store's own snapshot call.
 * The newest is always <db>.pre-upgrade; older ones are renamed .1, .2 ...
 */
#include "snapshot.h"
#include "config.h"
#include "exits.h"
#include "log.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

char *snapshot_path(const struct config *c, const struct store *s, int index)
{
	const char *loc = s->ops->location((struct store *)s);
	char suffix[32] = "";

	if (index > 0)
		snprintf(suffix, sizeof(suffix), ".%d", index);
	if (c->snapshot_dir)
		return xasprintf("%s/%s.pre-upgrade%s", c->snapshot_dir, base_of(loc),
				 suffix);
	return xasprintf("%s.pre-upgrade%s", loc, suffix);
}

static int make_room(const struct config *c, const struct store *s)
{
	int keep = (int)c->snapshot_keep;

	/* the oldest kept one falls off, the others move one place down */
	for (int i = keep - 1; i >= 0; i--) {
		char *from = snapshot_path(c, s, i);
		char *to = snapshot_path(c, s, i + 1);
		int r = 0;

		if (i == keep - 1) {
			if (i > 0 && unlink(from) < 0 && errno != ENOENT)
				r = error_errno("cannot remove old snapshot '%s'", from);
		} else if (rename(from, to) < 0 && errno != ENOENT) {
			r = error_errno("cannot rename '%s' to '%s'", from, to);
		}
		free(from);
		free(to);
		if (r < 0)
			return -1;
	}
	return 0;
}

/*
 * A restore writes beside the database too (SQLite: a journal of up to
 * every page): that room must be there before the upgrade starts, or a
 * failure could not be undone. `taken` bytes of the snapshot's own
 * filesystem are already spoken for.
 */
static int restore_room(struct store *s, const char *snap_dir, unsigned long long taken)
{
	unsigned long long need = 0, avail;
	char *dir = dir_of(s->ops->location(s));
	struct statvfs vfs;
	struct stat a_st, b_st;
	char a[32], b[32];
	int rc = -1;

	if (!s->ops->restore_size) {
		rc = 0;
		goto out;
	}
	if (s->ops->restore_size(s, &need) < 0)
		goto out;
	if (statvfs(dir, &vfs) < 0) {
		error_errno("cannot check free space in '%s'", dir);
		goto out;
	}
	avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
	/* one filesystem: the snapshot's share comes off first */
	if (stat(dir, &a_st) == 0 && stat(snap_dir, &b_st) == 0 &&
	    a_st.st_dev == b_st.st_dev)
		avail = avail > taken ? avail - taken : 0;
	if (avail < need + need / 20) {
		error("not enough free space in '%s' to undo the upgrade if it fails (%s "
		      "needed beside the snapshot, %s free): nothing was changed",
		      dir, human_size(need, a, sizeof(a)),
		      human_size(avail, b, sizeof(b)));
		goto out;
	}
	rc = 0;
out:
	free(dir);
	return rc;
}

int snapshot_take(const struct config *c, struct store *s, const struct version *version,
		  bool undo_room)
{
	char *path = snapshot_path(c, s, 0), *dir = dir_of(path);
	char *fresh = xasprintf("%s.new", path);
	unsigned long long need = 0, avail;
	char a[32], b[32];
	struct snapshot_info info = { .how = "?" };
	struct statvfs vfs;
	double t0;
	int rc = EXIT_CANTCREAT;

	if (mkdir_p(dir, 0700) < 0)
		goto out;
	if (s->ops->size(s, &need) < 0)
		goto out;
	if (statvfs(dir, &vfs) < 0) {
		error_errno("cannot check free space in '%s'", dir);
		goto out;
	}
	avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
	/* keep a margin: the filesystem and the database need room too */
	if (avail < need + need / 20 + (1u << 16)) {
		error("cannot write snapshot '%s': not enough free space (%s needed, "
		      "%s free in '%s'); nothing was changed",
		      path, human_size(need, a, sizeof(a)),
		      human_size(avail, b, sizeof(b)), dir);
		goto out;
	}
	if (undo_room && restore_room(s, dir, need + need / 20 + (1u << 16)) < 0)
		goto out;
	t0 = now_seconds();
	s->snapshot_version = *version;
	/* with older snapshots to keep, they move only once the new one is whole */
	if (s->ops->snapshot(s, c->snapshot_keep > 1 ? fresh : path, &info) < 0) {
		log_error("no snapshot, so no upgrade: nothing was changed");
		goto out;
	}
	if (c->snapshot_keep > 1) {
		if (make_room(c, s) < 0)
			goto out;
		if (rename(fresh, path) < 0) {
			error_errno("cannot rename '%s' to '%s'", fresh, path);
			goto out;
		}
		if (fsync_dir_of(path) < 0)
			goto out;
	}
	{
		struct stat st;

		/* a file of its own size; a template copy's marker says little */
		if (info.is_file && stat(path, &st) == 0)
			log_event(
				LOG_INFO,
				LOG_FIELDS(.event = "snapshot_taken", .snapshot = path,
					   .from = version_str(version),
					   .duration_ms =
						   LOG_NUM((now_seconds() - t0) * 1000)),
				"snapshot written: %s (version %s, %s, %.2f s, %s)", path,
				version_str(version),
				human_size((unsigned long long)st.st_size, a, sizeof(a)),
				now_seconds() - t0, info.how);
		else
			log_event(LOG_INFO,
				  LOG_FIELDS(.event = "snapshot_taken", .snapshot = path,
					     .from = version_str(version),
					     .duration_ms = LOG_NUM((now_seconds() - t0) *
								    1000)),
				  "snapshot written: %s (version %s, %.2f s, %s)", path,
				  version_str(version), now_seconds() - t0, info.how);
	}
	rc = 0;
out:
	free(fresh);
	free(path);
	free(dir);
	return rc;
}

int snapshot_remove_all(const struct config *c, const struct store *s)
{
	int removed = 0;

	/* .N beyond keep may exist from an earlier, larger keep: look further */
	for (int i = 0; i < 100; i++) {
		char *p = snapshot_path(c, s, i);
		char *tmp = xasprintf("%s.tmp", p);

		if (unlink(p) == 0) {
			log_info("removed snapshot %s", p);
			removed++;
		} else if (errno != ENOENT) {
			error_errno("cannot remove '%s'", p);
		}
		unlink(tmp);
		if (i == 0) {
			char *fresh = xasprintf("%s.new", p),
			     *ftmp = xasprintf("%s.new.tmp", p);

			unlink(fresh);
			unlink(ftmp);
			free(fresh);
			free(ftmp);
		}
		free(tmp);
		free(p);
	}
	return removed;
}

void snapshot_discard_partial(struct store *s, const char *path)
{
	/* the backend's temp name, and with [snapshot] keep > 1 the new one
	 * that had not moved to its place yet (and its temp name) */
	static const char *const suffixes[] = { ".tmp", ".new", ".new.tmp" };

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char *p = xasprintf("%s%s", path, suffixes[i]);

		unlink(p);
		free(p);
	}
	if (s->ops->remove_partial)
		s->ops->remove_partial(s, path);
}
