/* upgrade: placeholder until the SQLite backend lands (issue 3). */
#include "upgrade.h"
#include "exits.h"
#include "log.h"

static int later(void)
{
	log_error("database support is not built yet");
	return EXIT_CONFIG;
}

int upgrade_prepare(const struct config *c, bool dry_run, bool for_run)
{
	(void)c; (void)dry_run; (void)for_run;
	return later();
}
int upgrade_status(const struct config *c, bool json) { (void)c; (void)json; return later(); }
int upgrade_snapshot(const struct config *c) { (void)c; return later(); }
int upgrade_rollback(const struct config *c) { (void)c; return later(); }
int upgrade_cleanup(const struct config *c) { (void)c; return later(); }
void upgrade_print_versions(const struct config *c) { (void)c; }
