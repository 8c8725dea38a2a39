/*
 * restore: the swap of restore --mode replace, journalled in the state
 * dir's restore.journal so a crash mid-swap is finished at the next boot.
 * A pair is a staged tree (or "-": nothing) and the target it replaces;
 * "db:<name>_restore" and "db:<name>" a database that is no file
 * (swapped through the store), a target "-" a scratch file (see restore.c).
 */
#ifndef FERRY_RESTORE_H
#define FERRY_RESTORE_H

#include <stdbool.h>
#include <stddef.h>

struct store;

struct swap_pair {
	char *staged, *target;
};

/* Records the pairs in phase "staging" (a crash: the stagings are removed) */
int restore_journal_staging(const char *state_dir, const struct swap_pair *p, size_t n);
/* Phase "swap", then every rename, then the old trees removed; -1 logged;
 * 1 when the database (the first pair) could not be swapped and the
 * staging was abandoned: nothing changed, st->status may say why */
int restore_swap(struct store *st, const char *state_dir, const struct swap_pair *p,
		 size_t n);
/* Abandons a staging: removes the staged trees and the journal */
void restore_abandon(struct store *st, const char *state_dir, const struct swap_pair *p,
		     size_t n);
bool restore_pending(const char *state_dir); /* a restore.journal there */
/* At every session open, under the migrator lock: finishes or undoes a journalled
 * restore; 0 or -1 */
int restore_recover(struct store *st, const char *state_dir);
/* rm -rf path (no symlinks followed); -1 with errno */
int remove_tree(const char *path);

#endif
