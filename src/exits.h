/* exits: ferry's exit statuses (sysexits), the same for every command. */
#ifndef FERRY_EXITS_H
#define FERRY_EXITS_H

enum {
	EXIT_OK = 0,
	EXIT_CHECK_FAILED = 1, /* doctor found a failing check */
	EXIT_USAGE = 64,
	EXIT_DATA = 65,		  /* data refused, nothing changed */
	EXIT_UNAVAILABLE = 69,	  /* database unreachable */
	EXIT_UPGRADE_FAILED = 70, /* the database was restored */
	EXIT_OSERR = 71,
	EXIT_CANTCREAT = 73, /* cannot write a snapshot, nothing changed */
	EXIT_RESTORE_FAILED = 74,
	EXIT_TEMPFAIL = 75, /* try later */
	EXIT_NOPERM = 77,
	EXIT_CONFIG = 78,
	/* ferry run, the shell's conventions for the server it starts */
	EXIT_CANNOT_RUN = 126, /* found but not executable */
	EXIT_NOT_FOUND = 127,
	EXIT_SIGNALED = 128, /* + N: the server was killed by signal N */
};

#endif
