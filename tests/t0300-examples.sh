#!/bin/sh
# The examples users copy: each compose file is valid for docker-compose
# with its secret files made, and without them fails with a message saying
# what to do (not "Couldn't find env file"); PostgreSQL's journal and
# snapshots are on a volume; no healthcheck needs curl. The Kubernetes
# manifests parse, the Deployment is ready on a schema check and never
# restarted by one, and the migrate Job is a Helm pre-upgrade hook.
. "$(dirname "$0")/lib.sh"

EXAMPLES=$TESTS_DIR/../compose-examples

# compose DIR: docker-compose config of DIR/docker-compose.yml, in $out/$err
compose() {
	run_cmd docker-compose --project-directory "$1" -f "$1/docker-compose.yml" config
}

if command -v docker-compose >/dev/null 2>&1; then
	# ---- postgres: without its secrets --------------------------------------
	cp -R "$EXAMPLES/postgres" "$TMP/pg"
	rm -rf "$TMP/pg/secrets" "$TMP/pg/.env"
	compose "$TMP/pg"
	if [ "$rc" != 0 ]; then pass "postgres without secrets: refused (exit $rc)"
	else fail "postgres without secrets: refused" "docker-compose config passed"; fi
	like "$err" "run \./make-secrets\.sh first" "postgres without secrets: says to run ./make-secrets.sh"
	unlike "$err" "Couldn't find env file" "postgres without secrets: not 'Couldn't find env file'"

	# ---- postgres: with them ------------------------------------------------
	run_cmd "$TMP/pg/make-secrets.sh"
	expect_status 0 "make-secrets.sh makes the secrets"
	check "the URL secret exists" test -s "$TMP/pg/secrets/database_url"
	is "$(stat -c %a "$TMP/pg/secrets/database_url")" 600 "the URL secret has mode 0600"
	pw=$(cat "$TMP/pg/secrets/db_password")
	like "$(cat "$TMP/pg/secrets/database_url")" "^postgres://notes:$pw@db:5432/notes" \
		"the URL holds the database's password"
	compose "$TMP/pg"
	expect_status 0 "postgres with secrets: valid"
	pg=$out
	like "$pg" 'DATABASE_URL_FILE: /run/secrets/database_url' "postgres: the URL comes from a secret file"
	like "$pg" 'POSTGRES_PASSWORD_FILE: /run/secrets/db_password' "postgres: so does the database's password"
	unlike "$pg" "$pw" "postgres: the password is not in the effective config"
	like "$pg" 'FERRY_SNAPSHOT_DIR: /var/lib/ferry/snapshots' "postgres: snapshots under /var/lib/ferry"
	like "$pg" 'FERRY_DATABASE_STATE_DIR: /var/lib/ferry/state' "postgres: the journal under /var/lib/ferry"
	like "$pg" 'ferry:/var/lib/ferry' "postgres: /var/lib/ferry is a named volume"
	unlike "$pg" 'curl' "postgres: no healthcheck needs curl"
	like "$pg" '- ferry$' "postgres: the healthcheck is ferry health"

	# ---- sqlite: nothing to make ---------------------------------------------
	cp -R "$EXAMPLES/sqlite" "$TMP/sq"
	compose "$TMP/sq"
	expect_status 0 "sqlite: valid"
	unlike "$out" 'curl' "sqlite: no healthcheck needs curl"
else
	skip "compose files pass docker-compose config" "docker-compose not installed (.ci/deps installs it)"
fi

# ---- Kubernetes ---------------------------------------------------------------
if python3 -c 'import yaml' 2>/dev/null; then
	run_cmd python3 - "$EXAMPLES/kubernetes" <<-'EOF'
	import sys, yaml
	d = sys.argv[1]
	docs = []
	for f in ("deployment.yaml", "pre-upgrade-job.yaml"):
	    docs += [x for x in yaml.safe_load_all(open(d + "/" + f)) if x]
	kind = {x["kind"]: x for x in docs}
	spec = kind["Deployment"]["spec"]["template"]["spec"]
	app = spec["containers"][0]
	init = spec["initContainers"][0]
	r = app.get("readinessProbe", {})
	live = app.get("livenessProbe")
	print("readiness:", r.get("httpGet", {}).get("path"))
	print("liveness schema check:", bool(live and "httpGet" in live
	      and live["httpGet"].get("path") == r.get("httpGet", {}).get("path")))
	print("init:", " ".join(init["command"]), init["image"] == app["image"])
	job = kind["Job"]
	ann = job["metadata"]["annotations"]
	jc = job["spec"]["template"]["spec"]["containers"][0]
	print("hook:", ann.get("helm.sh/hook"))
	print("job:", " ".join(jc["command"]))
	env = lambda c: {e["name"]: e.get("value") for e in c["env"]}
	print("same state:", env(jc).get("FERRY_SNAPSHOT_DIR") == env(init).get("FERRY_SNAPSHOT_DIR") != None)
	print("url file:", env(app).get("DATABASE_URL_FILE") is not None, "DATABASE_URL" in env(app))
	EOF
	expect_status 0 "the Kubernetes manifests parse"
	like "$out" '^readiness: /health$' "the Deployment is ready on /health, the schema check"
	like "$out" '^liveness schema check: False$' "no liveness probe runs the schema check"
	like "$out" '^init: ferry migrate True$' "the init container runs ferry migrate, same image"
	like "$out" '^hook: .*pre-upgrade' "the Job is a Helm pre-upgrade hook"
	like "$out" '^job: ferry migrate$' "the Job runs ferry migrate"
	like "$out" '^same state: True$' "Job and init container share the snapshot dir"
	like "$out" '^url file: True False$' "the URL comes from a secret file"
else
	skip "the Kubernetes manifests parse" "python3-yaml not installed"
fi

done_testing
