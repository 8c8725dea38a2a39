# The supervisor's behaviours, shared by t1000-pid1.sh (MODE=pidns: ferry is
# PID 1 of a new PID namespace) and t1100-subreaper.sh (MODE=direct: ferry is
# an ordinary process and a child subreaper). Sourced after lib.sh.

case $MODE in
pidns) NS="unshare --pid --fork --mount-proc --kill-child" ;;
direct) NS= ;;
*) echo "Bail out! MODE must be pidns or direct"; exit 1 ;;
esac

printf '[run]\ngrace_seconds = 1\n' >"$TMP/grace1.ini"
printf '[run]\ngrace_seconds = 60\n' >"$TMP/grace60.ini"

# sup ARGS...: ferry ARGS in the foreground ($rc, $out, $err).
sup() { run_cmd $NS "$FERRY" "$@"; }

# sup_bg ARGS...: ferry ARGS in the background; $fpid is ferry's pid as seen
# from here (in MODE=pidns the child of unshare).
sup_bg() {
	start_bg $NS "$FERRY" "$@"
	fpid=$bgpid
	if [ -n "$NS" ]; then
		wait_for has_child "$bgpid" || fail "unshare started ferry"
		fpid=$(child_of "$bgpid")
	fi
}

# send SIG PID: SIG by name (USR1) or number.
send() { perl -e 'kill($ARGV[0], $ARGV[1]) or die "kill $ARGV[0] $ARGV[1]: $!\n"' "$1" "$2"; }

# ---- exit statuses ----

bad=
for i in $(seq 0 255); do
	sup run -- sh -c "exit $i"
	[ "$rc" = "$i" ] || bad="$bad $i->$rc"
done
is "$bad" "" "every exit status 0-255 is passed out unchanged"

sup run -- sh -c 'exit 0'
expect_status 0 "status 0"
sup run -- sh -c 'exit 42'
expect_status 42 "status 42"
sup run -- sh -c 'exit 255'
expect_status 255 "status 255"

sup run -- sh -c 'kill -KILL $$'
expect_status 137 "a child killed by SIGKILL gives 128+9"
like "$err" "'sh' was killed by SIGKILL" "the log says which signal killed it"
sup run -- sh -c 'kill -SEGV $$'
expect_status 139 "a child killed by SIGSEGV gives 128+11"
sup run -- sh -c 'kill -TERM $$'
expect_status 143 "a child killed by SIGTERM gives 128+15"

# ---- not runnable ----

sup run -- "$TMP/no-such-program" arg
expect_status 127 "a command that does not exist"
like "$err" "cannot run '$TMP/no-such-program'" "names the missing command"
printf '#!/bin/sh\nexit 0\n' >"$TMP/not-exec"
chmod 644 "$TMP/not-exec"
sup run -- "$TMP/not-exec"
expect_status 126 "a command that is not executable"
like "$err" "cannot run '$TMP/not-exec'" "names the command it cannot run"
sup run -- no-such-command-anywhere
expect_status 127 "a command not found in PATH"
like "$err" "cannot run 'no-such-command-anywhere'" "names it"

# ---- signals ----

rtnum=$(perl -MPOSIX -e 'print SIGRTMIN() + 1')
rec=$TMP/sigs
sup_bg -c "$TMP/grace60.ini" run -- "$SIGREC" "$rec"
wait_for test -e "$rec.ready" || fail "the signal recorder started"
# wait after each signal until it is recorded: the order is then certain and
# two equal signals can never coalesce
for sig in HUP INT QUIT USR1 USR2 WINCH CONT ALRM; do
	send "$sig" "$fpid"
	wait_for has_line "$rec" "$sig" || fail "SIG$sig reached the child"
done
# not forwarded: SIGTSTP (would stop the server) and SIGCHLD
send TSTP "$fpid"
send CHLD "$fpid"
send "$rtnum" "$fpid"
wait_for has_line "$rec" "RTMIN+1" || fail "SIGRTMIN+1 reached the child"
state=$(proc_state "$fpid")
check "ferry is not stopped by SIGTSTP (state $state)" [ "$state" != T -a -n "$state" ]
send TERM "$fpid"
finish_bg
expect_status 7 "SIGTERM reached the child; its own status came back"
is "$(tr '\n' ' ' <"$rec")" "HUP INT QUIT USR1 USR2 WINCH CONT ALRM RTMIN+1 TERM " \
	"every forwarded signal arrived, in order; TSTP and CHLD were not forwarded"

# SIGINT to a child with the default action: 128+2
sup_bg run -- sleep 1000
wait_for has_child "$fpid" || fail "ferry started sleep"
send INT "$fpid"
finish_bg
expect_status 130 "SIGINT forwarded to a child that dies of it"

# a shell that does not exec and ignores SIGTERM: the grace period ends it
sup_bg -c "$TMP/grace1.ini" run -- sh -c 'trap "" TERM; sleep 1000; true'
wait_for has_child "$fpid" || fail "ferry started sh"
main=$(child_of "$fpid")
wait_for has_child "$main" || fail "sh started sleep"
send TERM "$fpid"
finish_bg
expect_status 137 "a shell ignoring SIGTERM (no exec) is SIGKILLed after the grace period"
like "$err" "grace period of 1 s is over: sending SIGKILL" "the log says the grace period ran out"
check "nothing of its process group is left" sh -c "! pgrep -g $main >/dev/null"

# an exec'd server that ignores SIGTERM
sup_bg -c "$TMP/grace1.ini" run -- \
	perl -e '$SIG{TERM} = "IGNORE"; open(my $f, ">", $ARGV[0]) or die; close $f; sleep 1 while 1' \
	"$TMP/ignoring"
wait_for test -e "$TMP/ignoring" || fail "the server started"
send TERM "$fpid"
finish_bg
expect_status 137 "a server ignoring SIGTERM is SIGKILLed after the grace period"
like "$err" "grace period .* SIGKILL" "logged"

# [run] signal_group
for sg in false true; do
	printf '[run]\ngrace_seconds = 60\nsignal_group = %s\n' "$sg" >"$TMP/sg.ini"
	rm -f "$TMP/c" "$TMP/g" "$TMP/c.ready" "$TMP/g.ready"
	sup_bg -c "$TMP/sg.ini" run -- sh -c '"$0" "$1/g" & exec "$0" "$1/c"' "$SIGREC" "$TMP"
	wait_for test -e "$TMP/c.ready" -a -e "$TMP/g.ready" || fail "child and grandchild started"
	send USR1 "$fpid"
	wait_for has_line "$TMP/c" USR1 || fail "the child got SIGUSR1 (signal_group = $sg)"
	[ $sg = true ] && { wait_for has_line "$TMP/g" USR1 || fail "the grandchild got SIGUSR1"; }
	send TERM "$fpid"
	finish_bg
	expect_status 7 "signal_group = $sg: the child's status"
	if [ $sg = true ]; then
		is "$(tr '\n' ' ' <"$TMP/g")" "USR1 TERM " "signal_group = true: signals reach the grandchild"
	else
		# the grandchild only gets the SIGTERM that stops the leftovers
		is "$(tr '\n' ' ' <"$TMP/g")" "TERM " "signal_group = false: only the child gets signals"
	fi
done

# ---- zombies ----

sup_bg run -- sh -c '
	for i in 1 2 3 4 5 6 7 8; do (sh -c "exit 0" &); done
	(sleep 0.1 &); (sh -c "kill -KILL \$\$" &)
	: >"$0/spawned"; exec sleep 1000' "$TMP"
wait_for test -e "$TMP/spawned" || fail "the orphans were spawned"
only_main() { [ "$(ps -o stat= --ppid "$fpid" | wc -l)" -eq 1 ]; }
wait_for only_main
stats=$(ps -o pid=,stat=,args= --ppid "$fpid")
unlike "$stats" ' Z' "no <defunct> child of ferry is left while the server runs"
is "$(ps -o args= --ppid "$fpid")" "sleep 1000" "the orphans were reaped, the server runs"
send TERM "$fpid"
finish_bg
expect_status 143 "and the server's status comes back"

# ---- what is left when the main child exits ----

# (in the foreground: ferry ends by itself)
sup -c "$TMP/grace1.ini" run -- sh -c '
	sh -c "trap \"echo got-term >>$0/f; exit 0\" TERM; : >$0/ready; while :; do sleep 0.1; done" &
	while [ ! -e "$0/ready" ]; do sleep 0.05; done
	exit 3' "$TMP"
expect_status 3 "the main child's status, not the helper's"
is "$(cat "$TMP/f" 2>/dev/null)" "got-term" "a helper left in the process group got SIGTERM"
like "$err" "exited; stopping what is left of its process group" "logged"
unlike "$err" "grace period .* is over" "no SIGKILL for a helper that stops in time"

rm -f "$TMP/ready"
sup -c "$TMP/grace1.ini" run -- sh -c '
	echo $$ >"$0/main"
	sh -c "trap \"\" TERM; : >$0/ready; while :; do sleep 0.1; done" &
	while [ ! -e "$0/ready" ]; do sleep 0.05; done
	exit 4' "$TMP"
expect_status 4 "a helper ignoring SIGTERM: the main child's status"
like "$err" "grace period of 1 s is over: sending SIGKILL to process group" \
	"the helper was SIGKILLed after the grace period"
if [ "$MODE" = direct ]; then # (a PID namespace dies with its PID 1 anyway)
	main=$(cat "$TMP/main")
	check "no process of the group survives ferry" sh -c "! pgrep -g $main >/dev/null"
fi

# ---- [run] exit_zero ----

printf '[run]\nexit_zero = 143, 130\n' >"$TMP/ez.ini"
sup -c "$TMP/ez.ini" run -- sh -c 'kill -TERM $$'
expect_status 0 "exit_zero = 143: killed by SIGTERM is reported as 0"
sup -c "$TMP/ez.ini" run -- sh -c 'exit 143'
expect_status 0 "exit_zero = 143: exit 143 is reported as 0"
sup -c "$TMP/ez.ini" run -- sh -c 'kill -INT $$'
expect_status 0 "exit_zero = 130 too"
sup -c "$TMP/ez.ini" run -- sh -c 'exit 3'
expect_status 3 "exit_zero: other statuses unchanged"
sup -c "$TMP/ez.ini" run -- sh -c 'kill -KILL $$'
expect_status 137 "exit_zero: other signals unchanged"
FERRY_RUN_EXIT_ZERO=3 sup run -- sh -c 'exit 3'
expect_status 0 "FERRY_RUN_EXIT_ZERO=3"

# ---- [run] exec ----

printf '[run]\nexec = true\n' >"$TMP/exec.ini"
run_cmd $NS sh -c 'echo $$; exec "$0" "$@"' "$FERRY" -c "$TMP/exec.ini" run -- sh -c 'echo $$; exit 5'
expect_status 5 "exec = true: the command's status"
is "$(echo "$out" | sed -n 2p)" "$(echo "$out" | sed -n 1p)" "exec = true: the command has ferry's pid"
[ "$MODE" = pidns ] && is "$(echo "$out" | sed -n 2p)" 1 "exec = true: the command is PID 1"
run_cmd $NS sh -c 'echo $$; exec "$0" "$@"' "$FERRY" run -- sh -c 'echo $$'
isnt=$(echo "$out" | uniq | wc -l)
is "$isnt" 2 "exec = false: the command is a child of ferry"
FERRY_RUN_EXEC=1 sup run -- "$TMP/no-such-program"
expect_status 127 "exec = true: a missing command"
like "$err" "cannot run" "exec = true: says so"

# ---- what the child inherits ----

mkdir "$TMP/wd"
(cd "$TMP/wd" && FERRY_TEST_VAR='a b' sup run -- sh -c 'pwd; echo "$FERRY_TEST_VAR"' && \
	printf '%s\n' "$out" >"$TMP/inherit")
is "$(cat "$TMP/inherit")" "$TMP/wd
a b" "the child inherits the working directory and the environment"

closefds='use POSIX (); POSIX::close($_) for 3 .. 1023; exec {$ARGV[0]} @ARGV or die'
printf '[run]\ngrace_seconds = 5\n' >"$TMP/fds.ini"
run_cmd perl -e "$closefds" $NS "$FERRY" -c "$TMP/fds.ini" run -- ls /proc/self/fd
expect_status 0 "listing the child's descriptors"
is "$(echo $out)" "0 1 2 3" "the child has no descriptor but 0, 1, 2 (3 is ls's own)"

sigbit() { # sigbit HEXMASK SIGNUM: prints 1 when the signal is in the mask
	perl -e 'print((hex($ARGV[0]) >> ($ARGV[1] - 1)) & 1)' "$1" "$2"
}
# (grep, not sh: dash clears its signal mask when it starts)
sup run -- grep -E "^Sig(Blk|Ign):" /proc/self/status
blk=$(echo "$out" | sed -n 's/^SigBlk:[[:space:]]*//p')
is "$blk" 0000000000000000 "a child started normally has no signal blocked"
ign=$(echo "$out" | sed -n 's/^SigIgn:[[:space:]]*//p')
is "$(sigbit "$ign" 10)" 0 "nor SIGUSR1 ignored"
run_cmd perl -e '$SIG{USR1} = "IGNORE"; exec {$ARGV[0]} @ARGV or die' $NS "$FERRY" run -- \
	grep -E "^Sig(Blk|Ign):" /proc/self/status
ign=$(echo "$out" | sed -n 's/^SigIgn:[[:space:]]*//p')
is "$(sigbit "$ign" 10)" 1 "SIGUSR1 ignored when ferry started: ignored in the child"
run_cmd perl -e 'use POSIX; sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGUSR2)) or die;
	exec {$ARGV[0]} @ARGV or die' $NS "$FERRY" run -- grep -E "^SigBlk:" /proc/self/status
blk=$(echo "$out" | sed -n 's/^SigBlk:[[:space:]]*//p')
is "$(sigbit "$blk" 12)" 1 "SIGUSR2 blocked when ferry started: blocked in the child"
is "$(sigbit "$blk" 15)" 0 "and SIGTERM, blocked by ferry itself, is not"

# ---- a terminal ----

cat >"$TMP/tty.sh" <<EOF
exec $NS "$FERRY" run -- perl -MPOSIX -e 'print "fg=", (tcgetpgrp(0) == getpgrp() ? "yes" : "no"), " tty=", (-t 0 ? "yes" : "no"), "\n"'
EOF
if script -qec true /dev/null >/dev/null 2>&1 </dev/null; then
	SHELL=/bin/sh script -qec "sh $TMP/tty.sh" /dev/null </dev/null >"$TMP/tty.out" 2>&1
	like "$(tr -d '\r' <"$TMP/tty.out")" "^fg=yes tty=yes" "a child started on a terminal gets the foreground"
else
	skip "a child started on a terminal gets the foreground" "script(1) cannot allocate a pty here"
fi
