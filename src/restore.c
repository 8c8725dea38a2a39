/*
 * restore: the replace mode's swap. The journal (state dir, restore.journal,
 * written with write_file_atomic) is
 *   phase staging|swap
 *   pid N
 *   pair <staged> <target>     one per line, "-" for nothing staged
 * A target "db:<name>" is a database that is no file (PostgreSQL): its
 * staged copy is the database "db:<name>_restore", swapped in by the
 * store's archive_swap (both renames in one transaction), the old one
 * kept as <name>_pre_restore until the end. A target "-" is scratch (the
 * staged dump it was loaded from): removed at the end, never swapped.
 * staging: the staged trees may be incomplete, nothing else was touched;
 * recovery removes them. swap: every staged tree is whole and fsynced;
 * recovery rolls forward: each target not yet swapped is moved to
 * <target>.pre-restore and its staged tree renamed in (each step checks
 * what is already done, so a crash anywhere is finished by running it
 * again), then the .pre-restore copies are removed and the journal too.
 */
#include "restore.h"
#include "log.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <stdbool.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int remove_tree(const char *path)
{
	if (!path_exists(path))
		return 0;
	return nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (!f)
		return -1;
	buf = xmalloc(65536);
	n = fread(buf, 1, 65535, f);
	fclose(f);
	buf[n] = 0;
	*out = buf;
	*len = n;
	return 0;
}

static char *journal_path(const char *state_dir)
{
	return xasprintf("%s/restore.journal", state_dir);
}

static int write_journal(const char *state_dir, const char *phase,
			 const struct swap_pair *p, size_t n)
{
	char *path = journal_path(state_dir),
	     *text = xasprintf("phase %s\npid %d\n", phase, (int)getpid());
	int rc;

	for (size_t i = 0; i < n; i++) {
		char *t = xasprintf("%spair %s %s\n", text,
				    p[i].staged ? p[i].staged : "-", p[i].target);
		free(text);
		text = t;
	}
	if (mkdir_p(state_dir, 0700) < 0)
		rc = -1;
	else
		rc = write_file_atomic(path, text, strlen(text), 0600);
	if (rc < 0)
		log_error("restore: cannot write '%s': %s", path, strerror(errno));
	free(text);
	free(path);
	return rc;
}

int restore_journal_staging(const char *state_dir, const struct swap_pair *p, size_t n)
{
	return write_journal(state_dir, "staging", p, n);
}

static bool is_db(const struct swap_pair *p)
{
	return !strncmp(p->target, "db:", 3) && !strncmp(p->staged, "db:", 3);
}

static bool is_scratch(const struct swap_pair *p)
{
	return !strcmp(p->target, "-");
}

/* Where the target goes while the staged copy takes its place */
static char *old_of(const struct swap_pair *p)
{
	return is_db(p) ? xasprintf("%s_pre_restore", p->target + 3)
			: xasprintf("%s.pre-restore", p->target);
}

static int swap_db(struct store *st, const struct swap_pair *p)
{
	char *old = old_of(p);
	int rc = st->ops->archive_swap
			 ? st->ops->archive_swap(st, p->staged + 3, p->target + 3, old)
			 : error("restore: %s has no database to swap", st->ops->engine);

	free(old);
	return rc;
}

/* The old copy of a swapped pair, or the scratch, removed */
static void remove_old(struct store *st, const struct swap_pair *p)
{
	char *old = is_scratch(p) ? xstrdup(p->staged) : old_of(p);

	if (is_db(p)) {
		if (st->ops->archive_drop && st->ops->archive_drop(st, old) < 0)
			log_warn("restore: drop database '%s' by hand", old);
	} else if (remove_tree(old) < 0) {
		log_warn("restore: cannot remove '%s': %s", old, strerror(errno));
	}
	free(old);
}

static int swap_one(const struct swap_pair *p)
{
	char *old = old_of(p);
	bool staged = p->staged && strcmp(p->staged, "-");
	int rc = 0;

	if (staged && !path_exists(p->staged)) /* done before a crash */
		goto out;
	if (path_exists(p->target) && !path_exists(old)) {
		if (rename(p->target, old) < 0)
			rc = -1;
		else
			crash_point("restore-moved-aside");
	}
	if (rc == 0 && staged && rename(p->staged, p->target) < 0)
		rc = -1;
	if (rc == 0 && fsync_dir_of(p->target) < 0)
		rc = -1;
	if (rc < 0)
		log_error("restore: cannot swap '%s' in: %s", p->target, strerror(errno));
out:
	free(old);
	return rc;
}

int restore_swap(struct store *st, const char *state_dir, const struct swap_pair *p,
		 size_t n)
{
	char *path;

	if (write_journal(state_dir, "swap", p, n) < 0)
		return -1;
	crash_point("restore-swap-journalled");
	for (size_t i = 0; i < n; i++) {
		if (is_scratch(&p[i]))
			continue;
		if (is_db(&p[i]) ? swap_db(st, &p[i]) < 0 : swap_one(&p[i]) < 0) {
			if (i > 0 || !is_db(&p[i]))
				return -1;
			/* the database comes first and swaps in one step:
			 * nothing has moved yet, the staging goes */
			restore_abandon(st, state_dir, p, n);
			return 1;
		}
		crash_point("restore-swapped-one");
	}
	for (size_t i = 0; i < n; i++)
		remove_old(st, &p[i]);
	path = journal_path(state_dir);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("restore: cannot remove '%s': %s", path, strerror(errno));
	fsync_dir_of(path);
	free(path);
	return 0;
}

void restore_abandon(struct store *st, const char *state_dir, const struct swap_pair *p,
		     size_t n)
{
	char *path = journal_path(state_dir);

	for (size_t i = 0; i < n; i++) {
		if (is_db(&p[i])) {
			if (st->ops->archive_drop &&
			    st->ops->archive_drop(st, p[i].staged + 3) < 0)
				log_warn("restore: drop database '%s' by hand",
					 p[i].staged + 3);
		} else if (p[i].staged && strcmp(p[i].staged, "-") &&
			   remove_tree(p[i].staged) < 0) {
			log_warn("restore: cannot remove '%s': %s", p[i].staged,
				 strerror(errno));
		}
	}
	unlink(path);
	free(path);
}

static int parse_journal(char *text, char **phase, long *pid, struct swap_pair **p,
			 size_t *n)
{
	char *save = NULL;

	*n = 0;
	*p = NULL;
	*phase = NULL;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, "phase ", 6))
			*phase = l + 6;
		else if (!strncmp(l, "pid ", 4))
			*pid = strtol(l + 4, NULL, 10);
		else if (!strncmp(l, "pair ", 5) && strchr(l + 5, ' ')) {
			*p = xrealloc(*p, (*n + 1) * sizeof(**p));
			(*p)[*n].staged = l + 5;
			(*p)[*n].target = strchr(l + 5, ' ') + 1;
			(*p)[*n].target[-1] = 0;
			(*n)++;
		} else
			return -1;
	}
	return *phase ? 0 : -1;
}

bool restore_pending(const char *state_dir)
{
	char *path = journal_path(state_dir);
	bool there = path_exists(path);

	free(path);
	return there;
}

int restore_recover(struct store *st, const char *state_dir)
{
	char *path = journal_path(state_dir), *text = NULL, *phase;
	struct swap_pair *p = NULL;
	size_t len, n;
	long pid = 0;
	int rc = 0;

	if (read_file(path, &text, &len) < 0) {
		free(path);
		return 0;
	}
	if (parse_journal(text, &phase, &pid, &p, &n) < 0) {
		log_error("restore: '%s' is malformed; fix or remove it by hand", path);
		rc = -1;
	} else if (!strcmp(phase, "swap")) {
		log_warn("restore: an interrupted restore is being finished");
		rc = restore_swap(st, state_dir, p, n);
		if (rc == 0)
			log_info("restore: finished the interrupted restore");
		else if (rc > 0)
			log_error("restore: the interrupted restore could not be "
				  "finished: its staging was removed, the state before "
				  "it stands; run the restore again");
		rc = rc ? -1 : 0;
	} else {
		log_warn("restore: removing the staging of an interrupted restore");
		restore_abandon(st, state_dir, p, n);
	}
	free(p);
	free(text);
	free(path);
	return rc;
}
