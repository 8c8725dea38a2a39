/*
 * snapshot: where pre-upgrade snapshots live, how many are kept, whether
 * there is room for the next one, and taking one through the store.
 */
#ifndef FERRY_SNAPSHOT_H
#define FERRY_SNAPSHOT_H

#include <stdbool.h>

struct config;
struct store;
struct version;

/* <db>.pre-upgrade (index 0) or <db>.pre-upgrade.N, in [snapshot] dir if set */
char *snapshot_path(const struct config *c, const struct store *s, int index);
/*
 * Checks free space (undo_room: also for a restore beside the database),
 * keeps at most keep-1 older snapshots, writes the new one (of schema
 * version `version`) to snapshot_path(0). Returns 0, or 73 (logged) when
 * it cannot be written; the database is never changed.
 */
int snapshot_take(const struct config *c, struct store *s, const struct version *version,
		  bool undo_room);
/* Removes what a snapshot to path that was cut short left behind. */
void snapshot_discard_partial(struct store *s, const char *path);
/* Removes every snapshot and leftover temp file; returns how many. */
int snapshot_remove_all(const struct config *c, const struct store *s);

#endif
