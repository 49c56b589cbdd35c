#!/bin/sh
# fedgated's lifecycle: start, control socket, reload good and broken
# configurations, authorisation of mutating commands, SIGTERM.
set -u
. "$top_srcdir/tests/lib.sh"

conf=$TEST_TMP/fedgated.conf
chmod 755 "$TEST_TMP"	# nobody must reach the socket
sock=$TEST_TMP/ctl.sock
pidf=$TEST_TMP/fedgated.pid
log=$TEST_TMP/fedgated.log

write_conf() {
	cat >"$conf" <<CONF
control socket "$sock" mode 0666
log stderr
log level debug
pid-file "$pidf"
dialback secret "integration-test-secret-0123456789"
domain "corp.example" {
	upstream "127.0.0.1" port 15269
}
peer "legacy.example" {
	allow
	tls none
	auth dialback
}
$1
peer default {
	deny
}
CONF
}

write_conf ""
if fedgated_start "$conf" "$log"; then
	ok "fedgated starts and answers status"
else
	not_ok "fedgated starts and answers status"
	diag <"$log"
	tap_done
	exit 1
fi

out=$("$FEDGATECTL" -s "$sock" status)
check "status shows the running state" \
    sh -c "echo '$out' | grep -Eq 'state: +running'"
check "pid file holds the daemon's pid" \
    test "$(cat "$pidf" 2>/dev/null)" = "$FG_PID"
check "status -j is one JSON document" sh -c \
    "'$FEDGATECTL' -j -s '$sock' status | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"ok\"] and d[\"state\"] == \"running\"'"

check "policy check matches the exact rule" sh -c \
    "'$FEDGATECTL' -j -s '$sock' policy check LEGACY.example. | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"rule\"][\"pattern\"] == \"legacy.example\", d; assert d[\"settings\"][\"tls\"] == \"none\" and d[\"settings\"][\"allow\"] is True, d'"
check "policy check falls back to the default rule" sh -c \
    "'$FEDGATECTL' -j -s '$sock' policy check other.example | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"rule\"][\"pattern\"] == \"default\", d; assert d[\"settings\"][\"allow\"] is False'"
check "policy check refuses an invalid domain" sh -c \
    "! '$FEDGATECTL' -s '$sock' policy check 'bad..example' >/dev/null 2>&1"

# A good reload takes effect.
write_conf 'peer "*.partner.example" {
	allow
	tls required
}'
check "reload of a good configuration succeeds" \
    "$FEDGATECTL" -s "$sock" reload
check "the reloaded rule is in force" sh -c \
    "'$FEDGATECTL' -j -s '$sock' policy check a.partner.example | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"rule\"][\"pattern\"] == \"*.partner.example\", d'"

# A broken reload is refused with the file's errors; the old config stays.
cp "$conf" "$conf.good"
printf 'peer "x.example" {\n\ttls-requird\n}\n' >>"$conf"
out=$("$FEDGATECTL" -s "$sock" reload 2>&1)
rc=$?
check "reload of a broken configuration is refused" test "$rc" -ne 0
check "the refusal names FILE:LINE" sh -c \
    "echo '$out' | grep -q 'fedgated.conf:[0-9]*: '"
check "the daemon still serves the old configuration" sh -c \
    "'$FEDGATECTL' -j -s '$sock' policy check a.partner.example | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"rule\"][\"pattern\"] == \"*.partner.example\"'"
kill -HUP "$FG_PID"
check "SIGHUP with a broken file is logged as refused" \
    wait_log "$log" 'reload: configuration .* refused' 10
check "still serving after SIGHUP" "$FEDGATECTL" -s "$sock" status
cp "$conf.good" "$conf"

# Mutating commands need root or the control group.
if id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
	check "an unprivileged client may read status" \
	    setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    "$FEDGATECTL" -s "$sock" status
	out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    "$FEDGATECTL" -s "$sock" reload 2>&1)
	rc=$?
	check "an unprivileged client may not reload" test "$rc" -ne 0
	check "the refusal says why" sh -c "echo '$out' | grep -qi 'permission'"
fi

# A dead daemon gives a one-line error, not a hang.
out=$(timeout 5 "$FEDGATECTL" -s "$TEST_TMP/nothing.sock" status 2>&1)
rc=$?
check "a missing socket fails at once with one line" sh -c \
    "[ $rc -eq 1 ] && [ \$(echo '$out' | wc -l) -eq 1 ]"

kill -TERM "$FG_PID"
if wait_until 10 sh -c "! kill -0 $FG_PID"; then
	wait "$FG_PID"
	rc=$?
	check "SIGTERM ends fedgated with status 0" test "$rc" -eq 0
else
	not_ok "SIGTERM ends fedgated with status 0"
fi
check "the control socket is removed" test ! -e "$sock"
check "the pid file is removed" test ! -e "$pidf"
check "the shutdown is logged" grep -q 'shutdown: SIGTERM' "$log"

# Privilege separation: a root parent, and a relay that binds as root,
# then runs as nobody with no capability and no new privileges.
status_of() {	# status_of PID FIELD: the field's value in /proc/PID/status
	sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" 2>/dev/null
}
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1 &&
    command -v openssl >/dev/null; then
	pconf=$TEST_TMP/priv.conf
	psock=$TEST_TMP/run/ctl.sock
	ppid=$TEST_TMP/priv.pid
	port=$(free_port)
	# a key and a secret only root may read, in a directory only root
	# may search (as /etc/ssl/private is)
	mkdir -m 0700 "$TEST_TMP/private"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -subj /CN=corp.example -addext subjectAltName=DNS:corp.example \
	    -days 2 -keyout "$TEST_TMP/private/corp.key" -out "$TEST_TMP/corp.pem" \
	    >/dev/null 2>&1
	printf 'a-root-only-dialback-secret\n' >"$TEST_TMP/private/db.secret"
	chmod 0600 "$TEST_TMP/private/corp.key" "$TEST_TMP/private/db.secret"
	write_priv_conf() {
		cat >"$pconf" <<CONF
user "nobody"
group "nogroup"
control socket "$psock" mode 0660
pid-file "$ppid"
log stderr
log level debug
listen public on 127.0.0.1 port $port
dialback secret file "private/db.secret"
domain "corp.example" {
	upstream "127.0.0.1" port 15269
	certificate "corp.pem"
	key "private/corp.key"
}
peer default {
	$1
}
CONF
	}
	write_priv_conf deny
	if fedgated_start "$pconf" "$TEST_TMP/priv.log"; then
		ok "fedgated starts with a user to drop to"
		relay=$(ps -o pid= --ppid "$FG_PID" | tr -d ' ' | head -n1)
		check "the pid file holds the parent's pid" \
		    test "$(cat "$ppid" 2>/dev/null)" = "$FG_PID"
		check "two processes: the parent and one relay" \
		    test -n "$relay" -a "$(ps -o pid= --ppid "$FG_PID" | wc -l)" -eq 1
		check "the parent runs as root" \
		    test "$(status_of "$FG_PID" Uid)" = "0	0	0	0"
		check "the relay runs as nobody" \
		    test "$(status_of "$relay" Uid)" = "65534	65534	65534	65534"
		check "the relay holds the listener, the parent none" sh -c \
		    "ss -Hltnp 'sport = :$port' | grep -q 'pid=$relay,' &&
		     ! ss -Hltnp | grep -q 'pid=$FG_PID,'"
		for f in CapEff CapPrm CapInh CapBnd CapAmb; do
			check "the relay's $f is empty" \
			    test "$(status_of "$relay" $f)" = 0000000000000000
		done
		check "the relay has no new privileges" \
		    test "$(status_of "$relay" NoNewPrivs)" = 1
		check "the relay runs under a seccomp filter" \
		    test "$(status_of "$relay" Seccomp)" = 2
		check "the socket directory was made for it" \
		    test "$(stat -c %U "$TEST_TMP/run")" = nobody
		check "the relay cannot read the key itself" \
		    setpriv --reuid=nobody --regid=nogroup --clear-groups \
		    sh -c "! cat '$TEST_TMP/private/corp.key' 2>/dev/null"
		write_priv_conf allow
		check "reload with a root-only key and secret succeeds" \
		    "$FEDGATECTL" -s "$psock" reload
		check "the changed policy is in force" sh -c \
		    "'$FEDGATECTL' -j -s '$psock' policy check a.example | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"settings\"][\"allow\"] is True, d'"
		kill -HUP "$FG_PID"
		check "SIGHUP to the parent reloads through it" \
		    wait_log "$TEST_TMP/priv.log" 'SIGHUP: reloading' 10
		check "and the reload succeeds" \
		    wait_until 10 sh -c "[ \$(grep -c 'reload: configuration .* loaded' '$TEST_TMP/priv.log') -ge 2 ]"
		printf 'bogus\n' >>"$pconf"
		out=$("$FEDGATECTL" -s "$psock" reload 2>&1)
		check "a broken file is refused with its FILE:LINE errors" sh -c \
		    "echo '$out' | grep -q 'priv.conf:[0-9]*: unknown keyword'"
		write_priv_conf allow
		kill -TERM "$FG_PID"
		if wait_until 10 sh -c "! kill -0 $FG_PID"; then
			wait "$FG_PID"
			rc=$?
			check "SIGTERM to the parent ends fedgated with status 0" \
			    test "$rc" -eq 0
		else
			not_ok "SIGTERM to the parent ends fedgated with status 0"
		fi
		check "the relay is gone too" sh -c "! kill -0 $relay 2>/dev/null"
		check "after the drop it still removes its socket on exit" \
		    test ! -e "$psock"
		check "the parent removes the pid file" test ! -e "$ppid"
		check "no sanitizer report" sh -c \
		    "! grep -Eq 'Sanitizer|runtime error' '$TEST_TMP/priv.log'"
	else
		not_ok "fedgated starts with a user to drop to"
		diag <"$TEST_TMP/priv.log"
	fi

	# The parent dies: the relay sees the channel close and stops.
	if fedgated_start "$pconf" "$TEST_TMP/orphan.log"; then
		relay=$(ps -o pid= --ppid "$FG_PID" | tr -d ' ' | head -n1)
		kill -KILL "$FG_PID"
		wait "$FG_PID" 2>/dev/null
		check "without its parent the relay stops" \
		    wait_until 15 sh -c "! kill -0 $relay 2>/dev/null"
		check "and says why" grep -q 'shutdown: privileged parent gone' \
		    "$TEST_TMP/orphan.log"
		kill -KILL "$relay" 2>/dev/null
	else
		not_ok "fedgated starts again"
		diag <"$TEST_TMP/orphan.log"
	fi
fi

# The transparent features need CAP_NET_ADMIN kept for the relay: where
# the bounding set lacks it (the systemd unit without its drop-in), -n
# says what to add instead of start-up failing on capset().
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	tconf=$TEST_TMP/transparent.conf
	cat >"$tconf" <<CONF
control socket "$TEST_TMP/transparent.sock"
dialback secret "integration-test-secret-0123456789"
listen transparent on 127.0.0.1 port $(free_port)
domain "corp.example" {
	upstream "127.0.0.1" port 15269
}
peer default {
	deny
}
CONF
	check "-n passes a transparent configuration with CAP_NET_ADMIN" \
	    "$FEDGATED" -n -f "$tconf"
	setpriv --bounding-set -net_admin "$FEDGATED" -n -f "$tconf" \
	    >"$TEST_TMP/tn.out" 2>&1
	check "without CAP_NET_ADMIN in the bounding set, -n says what to add" \
	    grep -q 'CapabilityBoundingSet=CAP_NET_ADMIN' "$TEST_TMP/tn.out"
fi
tap_done
