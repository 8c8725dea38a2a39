/*
 * pgpipe: a run of transactional migrations through libpq's pipeline
 * mode, inside the one transaction postgres.c opened. Each round trip
 * carries the ledger row of the migration before (its duration is known
 * by then) and every statement of the next one, then a sync; the results
 * come back in the order sent, so a failure still names its migration and
 * line. psql -1 -f waits for every statement; this waits once per
 * migration. Nothing commits before the COMMIT that follows, as without
 * the pipeline: a sync inside an open transaction block commits nothing.
 */
#include "postgres.h"
#include "log.h"
#include "migrations.h"
#include "store.h"
#include "util.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * COPY cannot run in a pipeline (and FROM STDIN has no data here): a run
 * with a migration that mentions it at all goes statement by statement.
 */
bool pg_pipe_fits(const struct migration *const *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcasestr(m[i]->sql, "copy"))
			return false;
	return true;
}

/* What pg_sql_exec does while a pipeline is open: send, read later. */
int pg_pipe_send(struct store *s, const char *sql, int n, const char *const *params)
{
	if (!PQsendQueryParams(pg_conn(s), sql, n, NULL, params, NULL, NULL, 0)) {
		snprintf(s->err, sizeof(s->err), "%s", PQerrorMessage(pg_conn(s)));
		return -1;
	}
	pg_priv(s)->queued++;
	return 0;
}

/*
 * The result of one command sent: 0, or -1 with s->err and sqlstate set
 * for the first command that failed (st: the statement; NULL: a ledger
 * row). Commands after a failure come back aborted, which says nothing new.
 */
static int take_result(struct store *s, const struct sql_statement *st, char sqlstate[6],
		       bool *failed)
{
	PGconn *c = pg_conn(s);
	PGresult *r = PQgetResult(c);
	ExecStatusType status = PQresultStatus(r);
	int rc = 0;

	if (!r) {
		if (!*failed)
			snprintf(s->err, sizeof(s->err), "the connection failed: %s",
				 PQerrorMessage(c));
		*failed = true;
		return -1;
	}
	if (status == PGRES_PIPELINE_ABORTED)
		rc = -1;
	else if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK &&
		 status != PGRES_EMPTY_QUERY) {
		const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		const char *prim = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

		if (!*failed) {
			snprintf(sqlstate, 6, "%s", code ? code : "");
			if (st)
				pg_statement_error(s, st, r);
			else
				snprintf(s->err, sizeof(s->err), "%s",
					 prim ? prim : "the ledger row failed");
		}
		*failed = true;
		rc = -1;
	}
	PQclear(r);
	while ((r = PQgetResult(c))) /* the NULL that ends each command's results */
		PQclear(r);
	return rc;
}

/*
 * Sync, then the results in the order sent: the ledger rows queued since
 * the last round, then the statements st[0..nst). *where: 0 all fine,
 * 1 a ledger row failed, 2 a statement did. -1 when something failed.
 */
static int round_trip(struct store *s, const struct sql_statement *st, size_t nst,
		      char sqlstate[6], int *where)
{
	struct pg *p = pg_priv(s);
	PGconn *c = pg_conn(s);
	bool failed = false;
	PGresult *r;
	int queued = p->queued;

	*where = 0;
	p->queued = 0;
	if (!PQpipelineSync(c)) {
		snprintf(s->err, sizeof(s->err), "%s", PQerrorMessage(c));
		*where = 2;
		return -1;
	}
	for (int i = 0; i < queued; i++)
		if (take_result(s, NULL, sqlstate, &failed) < 0 && !*where)
			*where = 1;
	for (size_t i = 0; i < nst; i++)
		if (take_result(s, &st[i], sqlstate, &failed) < 0 && !*where)
			*where = 2;
	r = PQgetResult(c);
	if (PQresultStatus(r) != PGRES_PIPELINE_SYNC && !failed) {
		snprintf(s->err, sizeof(s->err), "the pipeline lost its sync: %s",
			 PQerrorMessage(c));
		*where = 2;
	}
	PQclear(r);
	return *where ? -1 : 0;
}

/* Every statement of one migration into the pipeline */
static int send_script(struct store *s, const struct sql_statement *st, size_t nst)
{
	for (size_t i = 0; i < nst; i++) {
		char *sql = xasprintf("%.*s", (int)st[i].len, st[i].start);
		int ok = PQsendQueryParams(pg_conn(s), sql, 0, NULL, NULL, NULL, NULL, 0);

		free(sql);
		if (!ok) {
			snprintf(s->err, sizeof(s->err), "%s",
				 PQerrorMessage(pg_conn(s)));
			return -1;
		}
	}
	return 0;
}

/*
 * Results wait in the server's socket buffer until the sync is read; a
 * long script is cut into rounds so that they never fill it (the server
 * would stop reading, and ferry block writing: a deadlock).
 */
#define PIPE_MAX 200

/*
 * Runs m[0..n) and their ledger rows in the open transaction; *at is
 * the index of the migration that failed. 0, or -1 with s->err set.
 */
int pg_pipe_apply(struct store *s, const struct migration *const *m, size_t n, size_t *at,
		  char sqlstate[6])
{
	struct pg *p = pg_priv(s);
	PGconn *c = pg_conn(s);
	double t1 = now_seconds();
	int rc = 0, where = 0;

	if (!PQenterPipelineMode(c)) {
		snprintf(s->err, sizeof(s->err), "cannot pipeline: %s",
			 PQerrorMessage(c));
		*at = 0;
		return -1;
	}
	p->piping = true;
	p->queued = 0;
	for (size_t i = 0; i <= n && rc == 0; i++) {
		struct sql_statement *st = NULL;
		size_t nst = i < n ? pg_split(m[i]->sql, &st) : 0;
		char point[96];

		/* in rounds of at most PIPE_MAX statements (one when nst is 0) */
		for (size_t done = 0; rc == 0 && (done < nst || done == 0);
		     done += PIPE_MAX) {
			size_t k = nst - done < PIPE_MAX ? nst - done : PIPE_MAX;

			rc = send_script(s, st + done, k);
			if (rc == 0)
				rc = round_trip(s, st + done, k, sqlstate, &where);
			if (nst == 0)
				break;
		}
		free(st);
		if (rc < 0) {
			*at = where == 1 ? i - 1 : (i < n ? i : n - 1);
			break;
		}
		if (i == n)
			break;
		/* pg_check_migration refused transaction control already */
		if (PQtransactionStatus(c) != PQTRANS_INTRANS) {
			snprintf(s->err, sizeof(s->err),
				 "a statement ended ferry's transaction");
			*at = i;
			rc = -1;
			break;
		}
		if (s->recorder->record(s, m[i], (long long)((now_seconds() - t1) * 1000),
					false) < 0) {
			pg_record_failed(s);
			*at = i;
			rc = -1;
			break;
		}
		t1 = now_seconds();
		snprintf(point, sizeof(point), "migration:%s:before-commit",
			 version_str(&m[i]->version));
		crash_point(point);
	}
	/* a ledger row sent but not synced (a record that failed later) */
	if (p->queued && round_trip(s, NULL, 0, sqlstate, &where) < 0 && rc == 0)
		rc = -1;
	p->piping = false;
	if (!PQexitPipelineMode(c) && rc == 0) {
		snprintf(s->err, sizeof(s->err), "cannot end the pipeline: %s",
			 PQerrorMessage(c));
		*at = n - 1;
		rc = -1;
	}
	return rc;
}
