#!/bin/sh
# What users copy: the compose files pass `docker-compose config` and say
# what the README promises (pinned tags, healthchecks, secrets in env
# files, depends_on service_healthy, two replicas); every FERRY_* variable
# they and the Kubernetes snippet set is one ferry accepts; the Dockerfile
# builds with the script CI runs.
. "$(dirname "$0")/lib.sh"

EXAMPLES=$TESTS_DIR/../compose-examples
ROOT=$(cd "$TESTS_DIR/.." && pwd)

if command -v docker-compose >/dev/null 2>&1; then
	# ---- sqlite -----------------------------------------------------------
	cp -R "$EXAMPLES/sqlite" "$TMP/sqlite"
	run_cmd docker-compose --project-directory "$TMP/sqlite" -f "$TMP/sqlite/docker-compose.yml" config
	expect_status 0 "sqlite/docker-compose.yml passes docker-compose config"
	sqlite_config=$out
	like "$sqlite_config" 'image: [^ :]+:[0-9][0-9A-Za-z.-]*$' "sqlite: the image tag is pinned"
	unlike "$sqlite_config" 'image: .*:latest' "sqlite: no latest tag"
	like "$sqlite_config" '- data:/data' "sqlite: the database lives on a named volume"
	like "$sqlite_config" '/health' "sqlite: a healthcheck on /health"
	like "$sqlite_config" 'DATABASE_URL: sqlite:///data/app.db' "sqlite: DATABASE_URL on the volume"

	# ---- postgres -----------------------------------------------------------
	cp -R "$EXAMPLES/postgres" "$TMP/postgres"
	rm -rf "$TMP/postgres/secrets" "$TMP/postgres/.env"
	run_cmd docker-compose --project-directory "$TMP/postgres" -f "$TMP/postgres/docker-compose.yml" config
	if [ "$rc" != 0 ]; then pass "postgres: no config without the secret files (exit $rc)"
	else fail "postgres: no config without the secret files" "docker-compose config passed"; fi
	run_cmd "$TMP/postgres/make-secrets.sh"
	run_cmd docker-compose --project-directory "$TMP/postgres" -f "$TMP/postgres/docker-compose.yml" config
	expect_status 0 "postgres/docker-compose.yml passes docker-compose config (with the secret files)"
	pg_config=$out
	like "$pg_config" 'condition: service_healthy' "postgres: app depends_on db being healthy"
	like "$pg_config" 'replicas: 2' "postgres: two replicas of the app"
	like "$pg_config" 'pg_isready' "postgres: the db has a healthcheck"
	like "$pg_config" 'DATABASE_URL_FILE: /run/secrets/' "postgres: DATABASE_URL comes from a secret file"
	unlike "$pg_config" 'image: .*:latest' "postgres: no latest tag"
	run_cmd grep -Ei '^[^#]*(password:[[:space:]]*[^[:space:]]|://[^/@]*:[^/@]*@)' "$EXAMPLES/postgres/docker-compose.yml"
	is "$out" "" "postgres: no password inline in docker-compose.yml"
	check "postgres: the secret files are git-ignored" \
		grep -qx 'secrets/' "$EXAMPLES/postgres/.gitignore"
else
	skip "compose files pass docker-compose config" "docker-compose not installed (.ci/deps installs it)"
fi

# ---- every FERRY_* setting in the examples is one ferry accepts -----------
vars=$(cat "$EXAMPLES"/sqlite/docker-compose.yml "$EXAMPLES"/postgres/docker-compose.yml \
	"$ROOT"/entrypoint/k8s-init-container.yaml "$EXAMPLES"/kubernetes/*.yaml |
	sed -n 's/.*\(FERRY_[A-Z_]*\).*/\1/p' | sort -u)
mkdir -p "$TMP/m"
printf 'CREATE TABLE t (a INTEGER);\n' >"$TMP/m/0001_t.sql"
for v in $vars; do
	case $v in
	*_SECONDS | *_KEEP) value=5 ;;
	*_AUTO_UPGRADE) value=false ;;
	*_FORMAT) value=json ;;
	*_DIR) value=$TMP/snapshots; mkdir -p "$value" ;;
	*) value=x ;;
	esac
	run_cmd env "$v=$value" "$FERRY" status --database-url "sqlite://$TMP/app.db" --migrations "$TMP/m"
	if [ "$rc" = 78 ]; then fail "ferry accepts $v=$value" "$err"
	else pass "ferry accepts $v=$value (exit $rc)"; fi
done

# ---- the Kubernetes snippet ---------------------------------------------
if python3 -c 'import yaml' 2>/dev/null; then
	run_cmd python3 - "$ROOT/entrypoint/k8s-init-container.yaml" <<-'EOF'
	import sys, yaml
	docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
	deploy = next(d for d in docs if d["kind"] == "Deployment")
	spec = deploy["spec"]["template"]["spec"]
	init = spec["initContainers"][0]
	app = spec["containers"][0]
	print("init:", " ".join(init["command"]))
	print("same image:", init["image"] == app["image"])
	print("app env:", " ".join(e["name"] for e in app["env"]))
	EOF
	expect_status 0 "entrypoint/k8s-init-container.yaml is valid YAML"
	like "$out" '^init: ferry migrate$' "the init container runs ferry migrate"
	like "$out" '^same image: True$' "init container and app run the same image"
	like "$out" 'FERRY_MIGRATIONS_AUTO_UPGRADE' "the app container does not migrate itself"
else
	skip "entrypoint/k8s-init-container.yaml parses" "python3-yaml not installed"
fi

# ---- the Dockerfiles ---------------------------------------------------------
run_cmd grep -E '^RUN \.ci/build-static\.sh' "$ROOT/Dockerfile"
expect_status 0 "the Dockerfile's builder runs the script make static and CI run"
run_cmd grep -c '^FROM scratch' "$ROOT/Dockerfile"
is "$out" 1 "the final stage is FROM scratch"
like "$(cat "$ROOT/Dockerfile")" 'COPY --from=build /src/build/static/ferry /ferry' "the image holds /ferry"
like "$(cat "$ROOT/Dockerfile")" 'ca-certificates.crt' "and the CA certificates"
like "$(cat "$EXAMPLES/demo/Dockerfile")" 'ENTRYPOINT \["ferry", "run", "--"\]' \
	"the demo image boots through ferry run --"
like "$(cat "$EXAMPLES/demo/Dockerfile")" 'COPY --from=ferry /ferry /usr/local/bin/ferry' \
	"the demo image copies ferry from ferry's image"

done_testing
