/*
 * downgrade: ferry downgrade --to V. The down parts of the migrations
 * above V run newest first, each with the removal of its ledger row in
 * one transaction, after a snapshot and journalled like an upgrade (kind
 * downgrade), so a failure or a crash leaves the database at its old
 * version or at V. What was written since the upgrade stays, which a
 * rollback to the snapshot would lose.
 */
#ifndef FERRY_DOWNGRADE_H
#define FERRY_DOWNGRADE_H

#include <stdbool.h>

struct session;
struct version;

/* Under the migrator lock (the session's TAKE_LOCK): ferry's exit status.
 * dry_run: the checks, then what would be undone printed; nothing written. */
int downgrade_run(struct session *s, const struct version *to, bool dry_run);

#endif
