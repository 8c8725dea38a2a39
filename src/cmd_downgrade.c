/*
 * ferry downgrade --to V: the newer image's down parts take the database
 * back to version V for an older image, keeping the data written since
 * (downgrade.h).
 */
#include "commands.h"
#include "downgrade.h"
#include "exits.h"
#include "log.h"
#include "session.h"

#include <string.h>

int cmd_downgrade(struct session *s, const struct cmd_args *a)
{
	struct version to;

	if (!a->to || !version_parse(&to, a->to, strlen(a->to))) {
		log_error("downgrade --to '%s': not a version (digits and dots, as 2, "
			  "20240101120000 or 1.2; 0 undoes every migration)",
			  a->to ? a->to : "");
		return EXIT_USAGE;
	}
	return downgrade_run(s, &to, a->dry_run);
}
