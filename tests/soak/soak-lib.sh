# tests/soak/soak-lib.sh: what the SQLite and the PostgreSQL halves of the
# soak share: random numbers, the writer process, the tally of outcomes.
# Sourced by soak.sh and pg-soak.sh; not run on its own.

SOAK_LIB_DIR=$(cd "$(dirname "$0")" && pwd)
WRITER=$SOAK_LIB_DIR/writer.py

# The kinds of violation, in the order the summary prints them.
# recovery: ferry or the boot after it exited with an unexpected status, or
# left its journal; leftovers: temp files left after the recovery boot;
# hang: a ferry run that did not end within SOAK_HANG_SECONDS.
KINDS="wrong-version data-mismatch lost-rows integrity recovery leftovers hang"
HANG_SECONDS=${SOAK_HANG_SECONDS:-20}

# rnd N: an integer in [0, N) from /dev/urandom
rnd() {
	_r=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
	echo $((_r % $1))
}

# rnd_delay SECONDS: uniform in [0, 1.1 * SECONDS], so a few kills land
# after the end of the run, which must be harmless too
rnd_delay() {
	_r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
	awk -v r="$_r" -v d="$1" 'BEGIN { printf "%.3f", r / 65535 * d * 1.1 }'
}

now() { date +%s.%N; }
# elapsed T0 [T1]: seconds from T0 to T1 (default now), 3 decimals
elapsed() { awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.3f", b - a }'; }

# signal_tree SIG PID: SIG to PID and all its descendants, children first
signal_tree() {
	for _k in $(pgrep -P "$2" 2>/dev/null); do signal_tree "$1" "$_k"; done
	kill "-$1" "$2" 2>/dev/null
	return 0
}

# exited PID: PID is gone or a zombie (shell builtins only: it is polled)
exited() {
	_st=
	read -r _st 2>/dev/null <"/proc/$1/stat" || return 0
	_st=${_st##*) }
	[ "${_st%% *}" = Z ]
}

# wait_ferry: waits for the background ferry $fpid, at most $HANG_SECONDS
# (a hang is a finding too: it is killed then, and $hung set); its exit
# status in $frc.
# shellcheck disable=SC2034
wait_ferry() {
	_i=0
	hung=
	while ! exited "$fpid"; do
		_i=$((_i + 1))
		if [ $_i -gt $((HANG_SECONDS * 50)) ]; then
			kill -KILL "$fpid" 2>/dev/null
			hung=1
			break
		fi
		sleep 0.02
	done
	wait "$fpid" 2>/dev/null
	frc=$?
	fpid=
}

# snapshot_how ERRFILE: how ferry's log says it took the snapshot
snapshot_how() {
	sed -n 's/.*snapshot written: .*, \([^,]*\))$/\1/p' "$1" | tail -1
}

# ---- the writer -------------------------------------------------------------
# writer_start LOG ARGS...: writer.py ARGS in the background (ARGS name
# LOG too), its counts in LOG.stats; returns once its first row is
# committed (LOG.ready), or fails after 10 s. Its pid is $wpid.
writer_start() {
	_wlog=$1
	shift
	rm -f "$_wlog.ready"
	: >"$_wlog"
	python3 -I -S "$WRITER" "$@" 2>"$_wlog.stats" &
	wpid=$!
	_i=0
	while [ ! -e "$_wlog.ready" ]; do
		_i=$((_i + 1))
		if [ $_i -gt 200 ] || ! kill -0 "$wpid" 2>/dev/null; then
			echo "soak: the writer did not start: $(cat "$_wlog.stats")" >&2
			return 1
		fi
		sleep 0.05
	done
}

# writer_freeze: the writer stops where it is (SIGSTOP), so that nothing it
# logs afterwards can have been committed after the moment of the kill.
writer_freeze() { kill -STOP "$wpid" 2>/dev/null; }

# writer_kill: a frozen writer (and its psql, if any) goes for good.
writer_kill() {
	signal_tree KILL "$wpid"
	wait "$wpid" 2>/dev/null
	return 0
}

# writer_stop: the writer finishes the row it is at and exits.
writer_stop() {
	kill -TERM "$wpid" 2>/dev/null
	wait "$wpid" 2>/dev/null
	return 0
}

# writer_stats LOG: its counts, "committed=N busy=N errors=N ..."
writer_stats() { tr '\n' ' ' <"$1.stats" | sed 's/ $//'; }

# upgrade_or_kill: one trial's ferry run by $kind: "fail" lets the failing
# set ($BAD) run to its restore, "kill-good"/"kill-bad" kill ferry with the
# good or failing set at a random instant of its expected run time; the
# writer is frozen at the kill. Sets $what and $delay, adds to $bad.
upgrade_or_kill() {
	case $kind in
	kill-good) set=$GOOD secs=$SECS_GOOD ;;
	*) set=$BAD secs=$SECS_BAD ;;
	esac
	start_ferry ferry migrate --migrations "$set"
	if [ "$kind" = fail ]; then
		wait_ferry
		what="fail: ferry $frc"
		if [ -n "$hung" ]; then
			bad="$bad hang" what="fail: ferry hung, killed after $HANG_SECONDS s"
		fi
		# a while longer: rows committed after the restore count too
		sleep 0.2
		writer_stop
	else
		delay=$(rnd_delay "$secs")
		sleep "$delay"
		writer_freeze
		kill -KILL "$fpid" 2>/dev/null
		wait_ferry
		writer_kill
		what="$kind: kill at ${delay}s, ferry $frc"
	fi
}

# ---- the tally ----------------------------------------------------------------
# tally_init ENGINE: zero counts; the counts go to $SOAK_COUNTS (one line
# per engine) at tally_write.
tally_init() {
	t_engine=$1 t_trials=0 t_old=0 t_new=0 t_bad=0
	for _k in $KINDS; do eval "t_$(echo "$_k" | tr - _)=0"; done
}

# tally_trial OLD|NEW|- KIND...: one trial ended old, new or neither, with
# the violations KIND... (none for a good trial).
tally_trial() {
	t_trials=$((t_trials + 1))
	case $1 in
	old) t_old=$((t_old + 1)) ;;
	new) t_new=$((t_new + 1)) ;;
	esac
	shift
	[ $# -gt 0 ] && t_bad=$((t_bad + 1))
	for _k in "$@"; do
		_v=t_$(echo "$_k" | tr - _)
		eval "$_v=\$(($_v + 1))"
	done
}

# tally_write: this engine's line in $SOAK_COUNTS:
# ENGINE TRIALS OLD NEW BAD-TRIALS COUNT-PER-KIND...
tally_write() {
	_line="$t_engine $t_trials $t_old $t_new $t_bad"
	for _k in $KINDS; do eval "_line=\"\$_line \$t_$(echo "$_k" | tr - _)\""; done
	echo "$_line" >>"$SOAK_COUNTS"
}

# trial_line ENGINE N WHAT RESULT [VIOLATIONS]: the one line of a trial
trial_line() {
	printf '%-6s %4s  %-52s %s\n' "$1" "$2" "$3" "$4"
}
