/*
 * owner: what ferry creates for the database belongs to the server's user
 * ([run] user), and that user can write the database before it starts.
 */
#ifndef FERRY_OWNER_H
#define FERRY_OWNER_H

#include "pid1.h"

struct session;

/*
 * When ferry runs as root with a [run] user (s->owner): gives the user
 * the root-owned files of the database (SQLite's file and its -wal, -shm,
 * -journal), the snapshots, the state dir and its files. A failure is a
 * warning: the check below reports what it means for the server.
 */
void owner_give(struct session *s);
/*
 * Before the upgrade of `ferry run`: the server, as u, can write the
 * SQLite database and create its sidecars in its directory. Gives root's
 * leftovers first (owner_give), and a root-owned directory that holds
 * nothing but the database's files (a fresh volume). 0, or 73 logged,
 * naming the file and the user.
 */
int owner_check(struct session *s, const struct run_user *u);

#endif
