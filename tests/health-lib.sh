# tests/health-lib.sh: servers for the health gate tests (t2270, t3270).
# Source it after lib.sh. A "server" is a script the gate's ferry runs:
#   $HEALTHY_LATE  answers 200 on /health after about two seconds, then serves
#   $NEVER         listens nowhere (connection refused) until killed
#   $EXITS         exits 3 after a second
# HPORT is a free loopback port; HURL its /health URL.

HPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HURL=http://127.0.0.1:$HPORT/health
mkdir -p "$TMP/www"
echo ok >"$TMP/www/health"
HEALTHY_LATE=$TMP/healthy-late.sh
cat >"$HEALTHY_LATE" <<EOS
#!/bin/sh
sleep 2
cd "$TMP/www" && exec python3 -m http.server $HPORT --bind 127.0.0.1 2>/dev/null
EOS
NEVER=$TMP/never.sh
printf '#!/bin/sh\nexec sleep 300\n' >"$NEVER"
EXITS=$TMP/exits.sh
printf '#!/bin/sh\nsleep 1\nexit 3\n' >"$EXITS"
chmod +x "$HEALTHY_LATE" "$NEVER" "$EXITS"

# the gate, quick: probes every second, healthy within 4 s or not at all
export FERRY_HEALTH_INTERVAL_SECONDS=1 FERRY_HEALTH_TIMEOUT_SECONDS=4
unset FERRY_HEALTH_URL FERRY_HEALTH_COMMAND FERRY_HEALTH_MAX_ATTEMPTS \
	FERRY_RETRY_FAILED_UPGRADE

# has_text FILE PATTERN: FILE has a line matching the grep -E PATTERN.
has_text() { grep -Eq -- "$2" "$1"; }

# http_ok URL: a 2xx answer from URL (python's client, not ferry's).
http_ok() {
	python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null
}
