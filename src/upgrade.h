/*
 * upgrade: the boot sequence of DESIGN.md as one state machine: fast
 * path, lock, recovery of an unfinished upgrade, plan, then one strategy
 * of the table (create, one transaction, in place with a snapshot), each
 * step journalled so a crash anywhere is finished or undone next time.
 * Each function returns ferry's exit status.
 */
#ifndef FERRY_UPGRADE_H
#define FERRY_UPGRADE_H

#include <stdbool.h>

struct journal;
struct session;

/* ferry run and ferry migrate: bring the database to the image's version.
 * for_run: honour [migrations] auto_upgrade. */
int upgrade_boot(struct session *s, bool for_run);
/* Finishes or undoes what an earlier boot left in the journal. */
int upgrade_recover(struct session *s);
/* ferry rollback: puts the snapshot at path back, journalled. */
int upgrade_rollback(struct session *s, const char *path);
/* The health gate's verdict on an upgrade that waits for it (s->gated):
 * kept (the journal cleared), or undone from its snapshot (70, or 74 when
 * the restore failed) with the failure recorded. */
int upgrade_accept(struct session *s);
int upgrade_reject(struct session *s, const char *why, const char *probe);
/* The same when the server was stopped before a verdict (docker stop):
 * undone, but no failure of the release is recorded. */
int upgrade_undo_unverified(struct session *s);
/* What an upgrade of s->plan would refuse before its first write (65). */
int upgrade_check_pending(struct session *s);
/*
 * For strategies and commands kept in files of their own (downgrade.c,
 * appmode.c), the upgrade's own steps: the snapshot of the
 * database at s->plan.db_version into j->snapshot, journalled
 * (snapshotting -> snapshotted) with others kept out from then on; and
 * the undo of a failure after it (rolled back, or the snapshot restored
 * when something may have been committed): the exit status.
 */
int upgrade_take_snapshot(struct session *s, struct journal *j, bool exclusive);
int upgrade_undo(struct session *s, struct journal *j, const char *why,
		 bool may_have_committed);

/* The snapshot put back, journalled restoring (0, or 74 logged). */
int upgrade_restore(struct session *s, struct journal *j);

#endif
