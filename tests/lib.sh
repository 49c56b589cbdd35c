# tests/lib.sh: shared helpers for the scripted test layers (POSIX sh).
# Every wait is bounded; every process started is stopped by PID.
# Env: builddir (absolute build dir), top_srcdir.

: "${builddir:?builddir must name the build directory}"
FEDGATED="$builddir/src/fedgated"
FEDGATECTL="$builddir/src/fedgatectl/fedgatectl"
tap_n=0
tap_failed=0
TEST_PIDS=
TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/fedgate-test.XXXXXX")

ok() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $*"
}

not_ok() {
	tap_n=$((tap_n + 1))
	tap_failed=$((tap_failed + 1))
	echo "not ok $tap_n - $*"
}

# check DESCRIPTION CMD...: ok if CMD succeeds.
check() {
	desc=$1
	shift
	if "$@" >/dev/null; then ok "$desc"; else not_ok "$desc"; fi
}

diag() {
	sed 's/^/# /'
}

# free_port: print a TCP port of 127.0.0.1 that is free now (the kernel's
# choice), so that a test's listener does not collide with another's.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_until SECONDS CMD...: poll CMD every 50 ms until it succeeds.
wait_until() {
	limit=$(($1 * 20))
	shift
	i=0
	while [ "$i" -lt "$limit" ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}

# wait_log FILE REGEX SECONDS: until a line of FILE matches REGEX.
wait_log() {
	wait_until "$3" grep -Eq -- "$2" "$1"
}

# fedgated_start CONF LOG [ARGS...]: run fedgated -d in the background,
# set FG_PID, and wait until its control socket answers.
fedgated_start() {
	conf=$1
	log=$2
	shift 2
	"$FEDGATED" -d -f "$conf" "$@" >"$log" 2>&1 &
	FG_PID=$!
	TEST_PIDS="$TEST_PIDS $FG_PID"
	FG_SOCK=$(sed -n 's/^control socket "\([^"]*\)".*/\1/p' "$conf" | head -n1)
	wait_until 10 "$FEDGATECTL" -s "$FG_SOCK" status
}

# stop_pid PID [SIGNAL]: signal PID, wait up to 10 s, then SIGKILL.
stop_pid() {
	kill -"${2:-TERM}" "$1" 2>/dev/null || return 0
	wait_until 10 sh -c "! kill -0 $1" || kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null || true
}

test_cleanup() {
	for p in $TEST_PIDS; do
		kill -0 "$p" 2>/dev/null && stop_pid "$p" KILL
	done
	rm -rf "$TEST_TMP"
}
trap test_cleanup EXIT INT TERM

# tap_done: the plan line, and the exit status.
tap_done() {
	echo "1..$tap_n"
	[ "$tap_failed" -eq 0 ]
}
