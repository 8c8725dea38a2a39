/*
 * ferry status: where the database stands against the image, read
 * without a lock and without a write: versions, pending, unknown and
 * dirty migrations, the snapshot, the journal. Text or --json.
 */
#include "commands.h"
#include "exits.h"
#include "json.h"
#include "session.h"
#include "snapshot.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

struct status {
	struct session *s;
	struct journal j;
	struct stat st;
	char *snap;
	bool have_snap;
};

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
	if (x->have_snap) {
		json_object(&js, "snapshot");
		json_str(&js, "path", x->snap);
		json_int(&js, "bytes", (long long)x->st.st_size);
		json_int(&js, "age_seconds", (long long)(time(NULL) - x->st.st_mtime));
		json_end(&js, '}');
	} else {
		json_null(&js, "snapshot");
	}
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
	json_end(&js, '}');
}

static void print_text(const struct status *x)
{
	const struct session *s = x->s;
	const struct plan *p = &s->plan;
	char size[32];

	printf("database: %s%s\n", s->store.url_redacted,
	       s->db_exists ? "" : " (does not exist yet)");
	printf("database version: %s\n", version_str(&p->db_version));
	printf("image version: %s (%s, %s format)\n", version_str(&p->image_version),
	       s->set.dir, s->set.format);
	printf("pending: %zu", p->n_pending);
	for (size_t i = 0; i < p->n_pending; i++)
		printf("%s%s", i ? ", " : " (", p->pending[i]->name);
	printf("%s\n", p->n_pending ? ")" : "");
	printf("unknown: %zu\n", p->n_unknown);
	printf("dirty: %zu\n", p->n_dirty);
	if (p->kind == PLAN_REFUSE)
		printf("refusal: %s\n", p->why);
	if (x->have_snap)
		printf("snapshot: %s (%s, %lld s old)\n", x->snap,
		       human_size((unsigned long long)x->st.st_size, size, sizeof(size)),
		       (long long)(time(NULL) - x->st.st_mtime));
	else
		printf("snapshot: none\n");
	if (x->j.phase == PHASE_NONE)
		printf("journal: none\n");
	else
		printf("journal: %s (%s interrupted; the next ferry migrate or run "
		       "finishes it)\n",
		       phase_name(x->j.phase),
		       x->j.kind == KIND_ROLLBACK ? "a rollback was" : "an upgrade was");
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
	x.snap = snapshot_path(s->c, &s->store, 0);
	x.have_snap = stat(x.snap, &x.st) == 0;
	if (a->json)
		print_json(&x);
	else
		print_text(&x);
	free(x.snap);
	return 0;
}
