/*
 * upgrade: the boot sequence of DESIGN.md, and the database commands built
 * on the same pieces. Each function returns ferry's exit status.
 */
#ifndef FERRY_UPGRADE_H
#define FERRY_UPGRADE_H

#include <stdbool.h>

struct config;

/* for_run: honour [migrations] auto_upgrade (ferry run); dry_run: plan only */
int upgrade_prepare(const struct config *c, bool dry_run, bool for_run);
int upgrade_status(const struct config *c, bool json);
int upgrade_snapshot(const struct config *c);
int upgrade_rollback(const struct config *c);
int upgrade_cleanup(const struct config *c);
/* Prints "image schema: N" / "database schema: N" lines as far as known. */
void upgrade_print_versions(const struct config *c);

#endif
