/*
 * ferry status: where the database stands against the image, read
 * without a lock and without a write: versions, one row per migration
 * (shipped or in the ledger) with its state, the journal, the snapshots,
 * the last failed upgrade. Text or --json; --exit-code makes "not up to
 * date" a status of its own for scripts.
 */
#include "commands.h"
#include "exits.h"
#include "failures.h"
#include "json.h"
#include "session.h"
#include "snapshot.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* A migration's state, as Flyway's `info` shows it. */
enum row_state {
	ROW_APPLIED,	  /* in the ledger, clean, the file as it was applied */
	ROW_PENDING,	  /* shipped, not applied */
	ROW_DIRTY,	  /* started outside a transaction, never finished */
	ROW_CHANGED,	  /* applied, but the file's checksum differs now */
	ROW_UNKNOWN,	  /* in the ledger, not shipped by this image */
	ROW_ABOVE_TARGET, /* shipped above [migrations] target_version */
};

static const char *const state_names[] = {
	[ROW_APPLIED] = "applied", [ROW_PENDING] = "pending",
	[ROW_DIRTY] = "dirty",	   [ROW_CHANGED] = "changed",
	[ROW_UNKNOWN] = "unknown", [ROW_ABOVE_TARGET] = "above-target",
};

struct row {
	const struct version *version;
	const char *name;
	const struct ledger_row *applied; /* the ledger's row, NULL for none */
	enum row_state state;
	char *shown; /* the name escaped to one line, for the text */
};

struct snap {
	char *path;
	struct stat st;
};

struct status {
	struct session *s;
	struct journal j;
	struct row *rows;
	size_t n_rows;
	struct snap *snaps; /* those there, newest first */
	size_t n_snaps;
	bool have_latest; /* snaps[0] is snapshot_path(0) */
	struct failure f;
	bool have_failure;
};

static int row_cmp(const void *a, const void *b)
{
	return version_cmp(((const struct row *)a)->version,
			   ((const struct row *)b)->version);
}

static enum row_state shipped_state(const struct plan *p, const struct migration *m,
				    const struct ledger_row *r)
{
	if (!r)
		return version_cmp(&m->version, &p->image_version) > 0 ? ROW_ABOVE_TARGET
								       : ROW_PENDING;
	if (r->dirty)
		return ROW_DIRTY;
	return strcmp(r->sha256, m->sha256) ? ROW_CHANGED : ROW_APPLIED;
}

static char *one_line(const char *text)
{
	size_t size = 6 * strlen(text) + 1;
	char *out = xmalloc(size);

	escape_line(out, size, text, false);
	return out;
}

/* One row per version shipped or in the ledger, in version order. */
static void collect_rows(struct status *x)
{
	const struct session *s = x->s;
	struct row *r;

	x->rows = xcalloc(s->set.n + s->ledger.n + 1, sizeof(*x->rows));
	for (size_t i = 0; i < s->set.n; i++) {
		const struct migration *m = &s->set.items[i];

		r = &x->rows[x->n_rows++];
		r->version = &m->version;
		r->name = m->name;
		r->applied = ledger_find(&s->ledger, &m->version);
		r->state = shipped_state(&s->plan, m, r->applied);
	}
	for (size_t i = 0; i < s->ledger.n; i++) {
		const struct ledger_row *l = &s->ledger.rows[i];

		if (migrations_find(&s->set, &l->version))
			continue;
		r = &x->rows[x->n_rows++];
		r->version = &l->version;
		r->name = l->name;
		r->applied = l;
		r->state = l->dirty ? ROW_DIRTY : ROW_UNKNOWN;
	}
	qsort(x->rows, x->n_rows, sizeof(*x->rows), row_cmp);
	for (size_t i = 0; i < x->n_rows; i++)
		x->rows[i].shown = one_line(x->rows[i].name);
}

/*
 * The snapshots there: the latest (index 0) and the older ones kept
 * ([snapshot] keep), and any beyond keep a larger keep left behind.
 */
static void collect_snapshots(struct status *x)
{
	const struct session *s = x->s;

	for (int i = 0; i < 1000; i++) {
		char *path = snapshot_path(s->c, &s->store, i);
		struct stat st;

		if (stat(path, &st) < 0) {
			free(path);
			if (i >= s->c->snapshot_keep)
				break;
			continue;
		}
		x->snaps = xrealloc(x->snaps, (x->n_snaps + 1) * sizeof(*x->snaps));
		x->snaps[x->n_snaps++] = (struct snap){ path, st };
		if (i == 0)
			x->have_latest = true;
	}
}

/* Up to date and clean: what --exit-code answers 0 for. */
static bool is_clean(const struct status *x)
{
	if (x->s->plan.kind != PLAN_CURRENT || x->j.phase != PHASE_NONE)
		return false;
	for (size_t i = 0; i < x->n_rows; i++)
		if (x->rows[i].state != ROW_APPLIED &&
		    x->rows[i].state != ROW_ABOVE_TARGET)
			return false;
	return true;
}

static long long age_of(const struct snap *sn)
{
	return (long long)(time(NULL) - sn->st.st_mtime);
}

/* ---- --json ---------------------------------------------------------------- */

static void json_names(struct json *js, const char *key, const struct session *s,
		       bool unknown)
{
	json_array(js, key);
	for (size_t i = 0; i < s->ledger.n; i++) {
		const struct ledger_row *r = &s->ledger.rows[i];

		if (unknown ? !migrations_find(&s->set, &r->version) : r->dirty)
			json_str(js, NULL, r->name);
	}
	json_end(js, ']');
}

/* An integer version is a JSON number, as it always was; a dotted one a string. */
static void json_version(struct json *js, const char *key, const struct version *v)
{
	if (version_is_integer(v))
		json_number(js, key, version_str(v));
	else
		json_str(js, key, version_str(v));
}

static void json_snapshot(struct json *js, const char *key, const struct snap *sn)
{
	json_object(js, key);
	json_str(js, "path", sn->path);
	json_int(js, "bytes", (long long)sn->st.st_size);
	json_int(js, "age_seconds", age_of(sn));
	json_end(js, '}');
}

static void json_rows(struct json *js, const struct status *x)
{
	json_array(js, "migrations");
	for (size_t i = 0; i < x->n_rows; i++) {
		const struct row *r = &x->rows[i];

		json_object(js, NULL);
		json_version(js, "version", r->version);
		json_str(js, "name", r->name);
		json_str(js, "state", state_names[r->state]);
		if (r->applied) {
			json_str(js, "applied_at",
				 r->applied->applied_at[0] ? r->applied->applied_at
							   : NULL);
			json_int(js, "duration_ms", r->applied->duration_ms);
		} else {
			json_null(js, "applied_at");
			json_null(js, "duration_ms");
		}
		json_end(js, '}');
	}
	json_end(js, ']');
}

static void json_failure(struct json *js, const struct status *x)
{
	const struct failure *f = &x->f;

	if (!x->have_failure) {
		json_null(js, "failed_upgrade");
		return;
	}
	json_object(js, "failed_upgrade");
	json_version(js, "from", &f->from);
	json_version(js, "to", &f->to);
	json_int(js, "attempts", f->attempts);
	json_str(js, "time", f->time[0] ? f->time : NULL);
	json_str(js, "reason", f->reason);
	json_str(js, "probe", f->probe[0] ? f->probe : NULL);
	json_end(js, '}');
}

static void print_json(const struct status *x)
{
	static const char *const plans[] = { "current", "create", "upgrade", "refuse" };
	const struct session *s = x->s;
	struct json js;

	json_init(&js, stdout);
	json_object(&js, NULL);
	json_str(&js, "database", s->store.url_redacted);
	json_bool(&js, "exists", s->db_exists);
	json_version(&js, "database_version", &s->plan.db_version);
	json_version(&js, "image_version", &s->plan.image_version);
	json_str(&js, "plan", plans[s->plan.kind]);
	json_array(&js, "pending");
	for (size_t i = 0; i < s->plan.n_pending; i++)
		json_str(&js, NULL, s->plan.pending[i]->name);
	json_end(&js, ']');
	json_names(&js, "unknown", s, true);
	json_names(&js, "dirty", s, false);
	json_str(&js, "refusal", s->plan.kind == PLAN_REFUSE ? s->plan.why : NULL);
	if (x->have_latest)
		json_snapshot(&js, "snapshot", &x->snaps[0]);
	else
		json_null(&js, "snapshot");
	if (x->j.phase == PHASE_NONE) {
		json_str(&js, "journal", "none");
	} else {
		json_object(&js, "journal");
		json_str(&js, "kind", kind_name(x->j.kind));
		json_str(&js, "phase", phase_name(x->j.phase));
		json_version(&js, "from", &x->j.from);
		json_version(&js, "to", &x->j.to);
		json_end(&js, '}');
	}
	json_rows(&js, x);
	json_array(&js, "snapshots");
	for (size_t i = 0; i < x->n_snaps; i++)
		json_snapshot(&js, NULL, &x->snaps[i]);
	json_end(&js, ']');
	json_failure(&js, x);
	if (s->plan.app_identity) {
		json_object(&js, "app");
		json_str(&js, "recorded", s->app.recorded[0] ? s->app.recorded : NULL);
		json_str(&js, "recorded_at",
			 s->app.recorded_at[0] ? s->app.recorded_at : NULL);
		json_str(&js, "current", s->app.current);
		json_end(&js, '}');
	} else {
		json_null(&js, "app");
	}
	json_end(&js, '}');
}

/* ---- text -------------------------------------------------------------------- */

/* The history as a table: VERSION NAME STATE APPLIED AT DURATION. */
static void print_rows(const struct status *x)
{
	int wv = (int)strlen("VERSION"), wn = (int)strlen("NAME"),
	    ws = (int)strlen("STATE");
	int wa = (int)strlen("APPLIED AT");

	for (size_t i = 0; i < x->n_rows; i++) {
		const struct row *r = &x->rows[i];
		int v = (int)strlen(version_str(r->version)), n = (int)strlen(r->shown);
		int st = (int)strlen(state_names[r->state]);
		int a = r->applied ? (int)strlen(r->applied->applied_at) : 0;

		wv = v > wv ? v : wv;
		wn = n > wn ? n : wn;
		ws = st > ws ? st : ws;
		wa = a > wa ? a : wa;
	}
	printf("\n%-*s  %-*s  %-*s  %-*s  %s\n", wv, "VERSION", wn, "NAME", ws, "STATE",
	       wa, "APPLIED AT", "DURATION");
	for (size_t i = 0; i < x->n_rows; i++) {
		const struct row *r = &x->rows[i];
		const char *at = r->applied && r->applied->applied_at[0]
					 ? r->applied->applied_at
					 : "-";
		char dur[32] = "-";

		if (r->applied)
			snprintf(dur, sizeof(dur), "%lld ms", r->applied->duration_ms);
		printf("%-*s  %-*s  %-*s  %-*s  %s\n", wv, version_str(r->version), wn,
		       r->shown, ws, state_names[r->state], wa, at, dur);
	}
	printf("\n");
}

static void print_failure(const struct status *x)
{
	const struct failure *f = &x->f;
	char *reason, *probe;

	if (!x->have_failure) {
		printf("failed upgrade: none\n");
		return;
	}
	reason = one_line(f->reason);
	probe = one_line(f->probe);
	if (f->identity[0])
		printf("failed upgrade: to app identity '%s' at %s (%lld attempt%s): %s\n",
		       f->identity, f->time[0] ? f->time : "?", f->attempts,
		       f->attempts == 1 ? "" : "s", reason);
	else
		printf("failed upgrade: %s -> %s at %s (%lld attempt%s): %s\n",
		       version_str(&f->from), version_str(&f->to),
		       f->time[0] ? f->time : "?", f->attempts,
		       f->attempts == 1 ? "" : "s", reason);
	if (probe[0])
		printf("failed upgrade probe: %s\n", probe);
	free(reason);
	free(probe);
}

static void print_text(const struct status *x)
{
	const struct session *s = x->s;
	const struct plan *p = &s->plan;
	char size[32];

	printf("database: %s%s\n", s->store.url_redacted,
	       s->db_exists ? "" : " (does not exist yet)");
	printf("database version: %s\n", version_str(&p->db_version));
	if (p->app_identity)
		printf("app identity: %s recorded%s%s, the image is '%s'\n",
		       s->app.recorded[0] ? s->app.recorded : "none",
		       s->app.recorded_at[0] ? " at " : "", s->app.recorded_at,
		       p->app_identity);
	else
		printf("image version: %s (%s, %s format)\n",
		       version_str(&p->image_version), s->set.dir, s->set.format);
	printf("pending: %zu", p->n_pending);
	for (size_t i = 0; i < p->n_pending; i++)
		printf("%s%s", i ? ", " : " (", p->pending[i]->name);
	printf("%s\n", p->n_pending ? ")" : "");
	printf("unknown: %zu\n", p->n_unknown);
	printf("dirty: %zu\n", p->n_dirty);
	if (p->kind == PLAN_REFUSE)
		printf("refusal: %s\n", p->why);
	print_rows(x);
	if (x->j.phase == PHASE_NONE)
		printf("journal: none\n");
	else if (x->j.phase == PHASE_APPLIED)
		printf("journal: applied (an upgrade waits for the server's health "
		       "check, or ferry stopped while it waited: then the next ferry "
		       "migrate or run undoes it)\n");
	else
		printf("journal: %s (%s interrupted; the next ferry migrate or run "
		       "finishes it)\n",
		       phase_name(x->j.phase),
		       x->j.kind == KIND_ROLLBACK    ? "a rollback was"
		       : x->j.kind == KIND_DOWNGRADE ? "a downgrade was"
						     : "an upgrade was");
	if (!x->have_latest)
		printf("snapshot: none\n");
	for (size_t i = 0; i < x->n_snaps; i++)
		printf("%s: %s (%s, %lld s old)\n",
		       i == 0 && x->have_latest ? "snapshot" : "older snapshot",
		       x->snaps[i].path,
		       human_size((unsigned long long)x->snaps[i].st.st_size, size,
				  sizeof(size)),
		       age_of(&x->snaps[i]));
	print_failure(x);
}

int cmd_status(struct session *s, const struct cmd_args *a)
{
	struct status x = { .s = s };
	int rc = journal_read(&s->state, &x.j);

	if (rc < 0)
		return journal_status(rc);
	rc = session_read_plan(s);
	if (rc)
		return rc;
	rc = failure_read(&s->state, &x.f);
	if (rc < 0)
		return EXIT_CANTCREAT; /* unreadable, as journal_read's -1 */
	x.have_failure = rc == 1;
	collect_rows(&x);
	collect_snapshots(&x);
	if (a->json)
		print_json(&x);
	else
		print_text(&x);
	/* status's own "a check failed", as doctor's (exits.h) */
	rc = a->exit_code && !is_clean(&x) ? EXIT_CHECK_FAILED : 0;
	for (size_t i = 0; i < x.n_rows; i++)
		free(x.rows[i].shown);
	free(x.rows);
	for (size_t i = 0; i < x.n_snaps; i++)
		free(x.snaps[i].path);
	free(x.snaps);
	return rc;
}
