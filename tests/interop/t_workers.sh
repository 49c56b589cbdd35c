#!/bin/sh
# tests/interop/t_workers.sh: fedgated with "workers 2" between real
# servers (the fedgate topology, tests/interop/README.md): two relay
# processes share every listener (SO_REUSEPORT), so the kernel gives each
# connection to one of them, the Prosody servers' included.
#
# Prosody has no stream management on server-to-server streams, so
# fedgated's routes get their acknowledgements by XEP-0199 pings, whose
# answers come back on the reverse stream: a connection Prosody made,
# which may have landed on the other worker. The worker that gets such an
# answer hands it to the worker whose route sent the ping
# (doc/internals/workers.md); without that, the route would time out,
# close its leg and send its stanzas again.
#
# Scenarios: messages both ways, then a burst of 40 each way: every one
# arrives, none twice; every route that sent stanzas had them
# acknowledged and has none waiting; no acknowledgement timed out and no
# stanza was sent twice; then, legs closed and opened again until the
# kernel has given a reverse stream to the other worker (at most 12
# rounds), an answer handed between the workers acknowledges its route;
# fedgatectl answers for both workers; SIGTERM stops everything.
# TAP on stdout; exit status non-zero on failure. Needs root.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
fg_init
started=$(date +%s)

topo_fedgate || bail "topology could not be built"
topo_fedgate_dns || bail "DNS servers did not start"
{ topo_server corp && topo_server remote; } || bail "Prosody did not start"
conf=$FG_TMP/fedgated.conf
flog=$FG_TMP/fedgated.log
topo_fedgated_conf "$conf" || bail "fedgated's configuration"
cat >>"$conf" <<'CONF'
workers 2
peer "remote.example" { allow; tls optional; verify none }
peer default { deny }
CONF
fedgated_start_ns dmz "$conf" "$flog" "$DMZ_PUB:5269" "$DMZ_INT:5269" ||
    bail "fedgated did not start"
check "both workers run" wait_until 10 sh -c \
    "grep -q 'worker 0 of 2 running' '$flog' && grep -q 'worker 1 of 2 running' '$flog'"

{ client_start alice remote alice@remote.example alice-pw "$REMOTE_ADDR" &&
    client_start bob corp bob@corp.internal bob-pw "$CORP_ADDR"; } ||
    bail "clients did not come online"

t=$(token out)
client_cmd bob send alice@remote.example "$t" >/dev/null
check "bob's message reaches alice, from bob@corp.example" \
    client_expect alice "RECEIVED $t FROM bob@corp.example" 20
t=$(token in)
client_cmd alice send bob@corp.example "$t" >/dev/null
check "alice's message reaches bob" \
    client_expect bob "RECEIVED $t FROM alice@remote.example" 20

# got CLIENT PREFIX: how many messages PREFIX-* the client received,
# distinct (-u) or all.
got() {
	sed -n "s/^RECEIVED \($2-[0-9]*\) FROM .*/\1/p" "$(client_out "$1")" |
	    sort $3 | wc -l
}
n=40
bo=$(token burst-out)
bi=$(token burst-in)
i=1
while [ "$i" -le "$n" ]; do
	client_cmd bob send alice@remote.example "$bo-$i" >/dev/null
	client_cmd alice send bob@corp.example "$bi-$i" >/dev/null
	i=$((i + 1))
done
check "alice got all $n of bob's burst" \
    wait_until 30 sh -c "[ \$(sed -n 's/^RECEIVED \\($bo-[0-9]*\\) FROM .*/\\1/p' '$(client_out alice)' | sort -u | wc -l) -eq $n ]"
check "bob got all $n of alice's burst" \
    wait_until 30 sh -c "[ \$(sed -n 's/^RECEIVED \\($bi-[0-9]*\\) FROM .*/\\1/p' '$(client_out bob)' | sort -u | wc -l) -eq $n ]"
check "and none twice" sh -c \
    "[ $(got alice "$bo" '') -eq $n ] && [ $(got bob "$bi" '') -eq $n ]"

# routes_acked: every route (of either worker) that wrote stanzas has had
# them acknowledged and has none waiting.
routes_acked() {
	fgctl -j routes | "$PYTHON" -c '
import json, sys
rs = [r for r in json.load(sys.stdin).get("routes") or [] if r["sent"] > 0]
sys.exit(0 if len(rs) >= 2 and all(r["acked"] > 0 and r["unacked"] == 0
                                   for r in rs) else 1)
'
}
check "every route's stanzas were acknowledged, none waiting" \
    wait_until 40 routes_acked
fgctl -j routes | "$PYTHON" -c '
import json, sys
for r in json.load(sys.stdin).get("routes") or []:
    print("route %s->%s (%s) worker %s: sent %d acked %d unacked %d resent %d"
          % (r["local"], r["remote"], r["face"], r.get("worker"), r["sent"],
             r["acked"], r["unacked"], r["resent"]))' | diag
check "no acknowledgement timed out, nothing was sent again" sh -c \
    "! grep -Eq 'no answer to the acknowledgement ping|does not answer XEP-0199 pings|to another fedgated.s ping' '$flog'"

# Until an answer has crossed between the workers (the kernel's hash of
# the connections decides): close one face's legs (the inside's, then the
# outside's, in turn: both at once, the two peers reconnect in step and
# their new connections were seen to land on the same worker nine rounds
# in a row under ASan), wait for the next ones, and send one message each
# way, at most 12 rounds.
handed() { grep -c 'handed to worker' "$flog"; }
round=0
while [ "$(handed)" -eq 0 ] && [ "$round" -lt 12 ]; do
	round=$((round + 1))
	if [ $((round % 2)) -eq 1 ]; then
		fgctl kill --domain corp.internal >/dev/null 2>&1
	else
		fgctl kill --domain remote.example >/dev/null 2>&1
	fi
	to=$(token round-out)
	ti=$(token round-in)
	client_cmd bob send alice@remote.example "$to" >/dev/null
	client_cmd alice send bob@corp.example "$ti" >/dev/null
	client_expect alice "RECEIVED $to FROM bob@corp.example" 20 &&
	    client_expect bob "RECEIVED $ti FROM alice@remote.example" 20 &&
	    wait_until 40 routes_acked || break
done
check "an answer to a ping crossed between the workers (round $round)" \
    test "$(handed)" -gt 0
check "its route took it: every route acknowledged, none waiting" \
    routes_acked
check "still no acknowledgement timed out" sh -c \
    "! grep -Eq 'no answer to the acknowledgement ping|does not answer XEP-0199 pings|to another fedgated.s ping' '$flog'"
status_workers() {
	fgctl -j status | "$PYTHON" -c '
import json, sys
sys.exit(0 if json.load(sys.stdin).get("workers") == 2 else 1)'
}
check "fedgatectl status counts both workers" status_workers

client_stop alice bob
rc=0
stop_pid "$FG_PID" || rc=$?
check "fedgated exits 0 on SIGTERM" test "$rc" -eq 0
check "both relays stopped" sh -c \
    "grep -q 'relay 0 stopped' '$flog' && grep -q 'relay 1 stopped' '$flog'"
check "no sanitizer report" sh -c "! grep -Eq 'Sanitizer|runtime error' '$flog'"
note "t_workers.sh: $(($(date +%s) - started)) s"
tap_done
