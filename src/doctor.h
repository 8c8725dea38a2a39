/*
 * doctor: `ferry doctor`'s consistency checks (doctor.c, one row of its
 * table each; drift.c the schema against the migrations), all read-only:
 * nothing is written to the database or the state dir, and the migrator
 * lock is never taken.
 */
#ifndef FERRY_DOCTOR_H
#define FERRY_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>

struct session;
struct store;

enum doctor_status { DOCTOR_OK, DOCTOR_WARN, DOCTOR_FAIL };

/*
 * Runs the checks (deep: the slow ones too) on an open session, one line
 * each on stdout (or one JSON object), then the summary. Returns 0 when
 * none failed (warnings allowed), else EXIT_CHECK_FAILED.
 */
int doctor_run(struct session *s, bool deep, bool json);

/*
 * drift.c: the migrations the ledger has applied replayed on a scratch
 * database, and its schema compared with the live one; detail says what
 * differs (the first few), or why it could not be checked (a warning).
 */
enum doctor_status doctor_drift(struct session *s, char *detail, size_t size);

/*
 * appcheck.c: one of the application's checks, the file dir/file: its SQL
 * run read-only on the store must return no row; detail names the file
 * and, for a failure, its first rows or its error.
 */
enum doctor_status doctor_app_check(struct store *st, const char *dir, const char *file,
				    char *detail, size_t size);

#endif
