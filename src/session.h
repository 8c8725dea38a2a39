/*
 * session: what a command works on, opened once as the command table's
 * flags ask (git's RUN_SETUP): the database's store, the image's
 * migrations, the state dir with journal and lock, the ledger and plan.
 * Only the command layer (cli.c and cmd_*.c) opens one.
 */
#ifndef FERRY_SESSION_H
#define FERRY_SESSION_H

#include <stdbool.h>

#include "appmode.h"
#include "config.h"
#include "journal.h"
#include "ledger.h"
#include "migrations.h"
#include "pid1.h"
#include "plan.h"
#include "store.h"

enum session_flags {
	NEED_DATABASE = 1 << 0,	  /* a database URL must be configured (78) */
	NEED_MIGRATIONS = 1 << 1, /* the image's migrations are read */
	TAKE_LOCK = 1 << 2,	  /* the migrator lock, without waiting (75) */
	NO_UNFINISHED = 1 << 3,	  /* refuse (75) while an upgrade is unfinished */
};

struct session {
	const struct config *c; /* &cfg */
	struct config cfg;	/* the command's, directories resolved */
	char *state_dir, *snapshot_dir;
	struct store store;
	struct state state;
	struct migration_set set;
	struct ledger ledger;
	struct plan plan;
	bool db_exists;
	bool have_store, have_state, have_set;
	/* the health gate: gate asks for it (ferry run with [health]); gated
	 * says an upgrade was committed and waits for the server's health,
	 * its journal at the phase applied */
	bool gate, gated;
	struct journal gated_journal;
	/* [run] user when ferry runs as root: the files ferry creates for the
	 * database are given to it (owner.c), also when the session closes */
	struct run_user owner;
	/* [migrations] mode = app: the image's and the recorded identity */
	struct app_identity app;
};

/* Opens what flags ask for; returns 0 or the exit status (logged). */
int session_open(struct session *s, const struct config *c, unsigned flags);
/* Gives the database's files to the owner first (owner_give). */
void session_close(struct session *s);
/* Opens the database if it exists, reads the ledger, makes the plan. */
int session_read_plan(struct session *s);
/* The migrator lock, waiting up to timeout s: 0, or the exit status. */
int session_lock(struct session *s, long long timeout);
/* 0, or 75 (logged) while an earlier upgrade is unfinished. */
int session_check_finished(struct session *s);

#endif
