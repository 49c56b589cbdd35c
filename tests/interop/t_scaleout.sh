#!/bin/sh
# tests/interop/t_scaleout.sh: two fedgated instances behind Debian's
# HAProxy (mode tcp) in the DMZ, the L4-balancer shape of
# doc/deployment.md, with real servers on both sides (the fedgate
# topology, tests/interop/README.md):
#
#   HAProxy owns both faces: $DMZ_PUB:5269 is balanced, round robin, to
#   the public listeners of instances a and b (127.0.0.1, ports 25269 and
#   25270, proxy-protocol: HAProxy sends a PROXY v2 header, send-proxy-v2),
#   $DMZ_INT:5269 to their internal listeners (ports 26269 and 26270). The
#   two instances share one configuration but for ports, socket and state:
#   the same dialback secret, the same certificate.
#
# Scenarios:
#   - a key minted by one instance is verified by the other: bob's first
#     message reaches instance a (the internal backend lists a first), a
#     opens the stream to remote.example with its key, and remote.example
#     checks it with corp.example's authoritative server, which HAProxy's
#     public backend sends to instance b (listed first there);
#   - the public legs name remote.example's real address (from the PROXY
#     header), not HAProxy's;
#   - messages flow both ways, through both instances;
#   - instance a stops (SIGTERM) in the middle of a burst from bob: every
#     message of the burst reaches alice (a drains what it read, the
#     internal Prosody reconnects through HAProxy to b), and b serves on.
# TAP on stdout; exit status non-zero on failure. Needs root and haproxy.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
fg_init
started=$(date +%s)
if ! command -v haproxy >/dev/null 2>&1; then
	skip "two fedgated behind HAProxy: haproxy is not installed"
	tap_done
	exit 0
fi

topo_fedgate || bail "topology could not be built"
topo_fedgate_dns || bail "DNS servers did not start"
{ topo_server corp && topo_server remote; } || bail "Prosody did not start"
topo_fedgated_conf "$FG_TMP/base.conf" || bail "fedgated's configuration"

# instance_conf NAME PUBLIC_PORT INTERNAL_PORT: the configuration of one
# instance: the shared one, with its own listeners, socket and state.
instance_conf() {
	sed -e "s|^control socket .*|control socket \"$FG_TMP/$1.sock\" mode 0600|" \
	    -e "s|^listen public on .*|listen public on 127.0.0.1 port $2 proxy-protocol|" \
	    -e "s|^listen internal on .*|listen internal on 127.0.0.1 port $3|" \
	    "$FG_TMP/base.conf" >"$FG_TMP/$1.conf" &&
	    cat >>"$FG_TMP/$1.conf" <<CONF
state directory "$FG_TMP/state-$1"
peer "remote.example" { allow; tls optional; verify none }
peer default { deny }
CONF
}
instance_conf a 25269 26269 && instance_conf b 25270 26270 ||
    bail "the instances' configurations"

cat >"$FG_TMP/haproxy.cfg" <<CFG
global
	maxconn 200
	pidfile $FG_TMP/haproxy.pid
defaults
	mode tcp
	timeout connect 2s
	timeout client 10m
	timeout server 10m
	retries 2
	option redispatch
	default-server inter 500ms fall 1 rise 2
frontend public
	bind $DMZ_PUB:5269
	default_backend fedgate_public
backend fedgate_public
	balance roundrobin
	server b 127.0.0.1:25270 send-proxy-v2 check check-send-proxy
	server a 127.0.0.1:25269 send-proxy-v2 check check-send-proxy
frontend internal
	bind $DMZ_INT:5269
	default_backend fedgate_internal
backend fedgate_internal
	balance roundrobin
	server a 127.0.0.1:26269 check
	server b 127.0.0.1:26270 check
CFG
check "haproxy accepts its configuration" \
    ip netns exec "$(ns_name dmz)" haproxy -c -q -f "$FG_TMP/haproxy.cfg"

fedgated_start_ns dmz "$FG_TMP/a.conf" "$FG_TMP/a.log" 127.0.0.1:25269 \
    127.0.0.1:26269 || bail "instance a did not start"
PID_A=$FG_PID
fedgated_start_ns dmz "$FG_TMP/b.conf" "$FG_TMP/b.log" 127.0.0.1:25270 \
    127.0.0.1:26270 || bail "instance b did not start"
PID_B=$FG_PID
fg_spawn "$FG_TMP/haproxy.log" ip netns exec "$(ns_name dmz)" \
    haproxy -db -f "$FG_TMP/haproxy.cfg"
PID_H=$FG_LAST_PID
wait_until 10 ns_listening dmz tcp "$DMZ_PUB" 5269 &&
    wait_until 10 ns_listening dmz tcp "$DMZ_INT" 5269 ||
    bail "haproxy does not listen"
ok "two fedgated instances and HAProxy are up in the DMZ"

# fgctl_on NAME ARGS...: fedgatectl on instance NAME.
fgctl_on() {
	_i=$1
	shift
	FG_CTL=$FG_TMP/$_i.sock fgctl "$@"
}

{ client_start alice remote alice@remote.example alice-pw "$REMOTE_ADDR" &&
    client_start bob corp bob@corp.internal bob-pw "$CORP_ADDR"; } ||
    bail "clients did not come online"

# ---- a key minted by a, verified by b
t=$(token first-out)
client_cmd bob send alice@remote.example "$t" >/dev/null
check "bob's first message reaches alice, from bob@corp.example" \
    client_expect alice "RECEIVED $t FROM bob@corp.example" 20
check "instance a carried it: its public leg to remote.example" \
    grep -Eq 'leg [0-9]+ out public corp\.example->remote\.example: authenticated' "$FG_TMP/a.log"
check "instance b answered remote.example's db:verify of a's key: valid" \
    grep -Eq 'db:verify corp\.example->remote\.example id .*: valid' "$FG_TMP/b.log"
check "instance a answered none" \
    not grep -Eq 'db:verify corp\.example->remote\.example id .*: valid' "$FG_TMP/a.log"
check "b's incoming leg names remote.example's address, not HAProxy's" \
    grep -Eq "in public: connection from $REMOTE_ADDR:[0-9]+ via 127\\.0\\.0\\.1" "$FG_TMP/b.log"

# ---- both ways, through both
t=$(token in)
client_cmd alice send bob@corp.example "$t" >/dev/null
check "alice's message reaches bob" \
    client_expect bob "RECEIVED $t FROM alice@remote.example" 20
t=$(token out)
client_cmd bob send alice@remote.example "$t" >/dev/null
check "bob's next message reaches alice" \
    client_expect alice "RECEIVED $t FROM bob@corp.example" 20
check "both instances relayed stanzas" sh -c \
    "grep -q 'authenticated' '$FG_TMP/a.log' && grep -q 'authenticated' '$FG_TMP/b.log'"

# ---- a stops in the middle of a burst
b=$(token burst)
n=30
i=1
while [ "$i" -le "$n" ]; do
	client_cmd bob send alice@remote.example "$b-$i" >/dev/null
	if [ "$i" -eq 10 ]; then
		kill -TERM "$PID_A"
	fi
	i=$((i + 1))
done
rc_a=0
stop_pid "$PID_A" || rc_a=$?
check "instance a exits 0 on SIGTERM" test "$rc_a" -eq 0
# got_all CLIENT PREFIX N: the client received PREFIX-1 .. PREFIX-N.
got_all() {
	[ "$(sed -n "s/^RECEIVED \($2-[0-9]*\) FROM .*/\1/p" "$(client_out "$1")" |
	    sort -u | wc -l)" -eq "$3" ]
}
check "alice got all $n messages of the burst" wait_until 30 got_all alice "$b" "$n"
note "alice got $(sed -n "s/^RECEIVED \($b-[0-9]*\) FROM .*/\1/p" "$(client_out alice)" | sort -u | wc -l) of $n"
# each_once CLIENT PREFIX N: no message of the burst came twice.
each_once() {
	[ "$(sed -n "s/^RECEIVED \($2-[0-9]*\) FROM .*/\1/p" "$(client_out "$1")" |
	    wc -l)" -eq "$3" ]
}
check "and none twice" each_once alice "$b" "$n"
# The answers to XEP-0199 acknowledgement pings come back on the reverse
# stream, which HAProxy may have given to the other instance.
check "a ping answer that reached the other instance was not taken as its own" \
    grep -q "to another fedgated's ping, not relayed" "$FG_TMP/a.log" "$FG_TMP/b.log"
note "instance a at SIGTERM: $(grep -c 'route .*: dropped message' "$FG_TMP/a.log") written messages unconfirmed (their acknowledgement went to b)"
t=$(token after-in)
client_cmd alice send bob@corp.example "$t" >/dev/null
check "after a stopped, alice's message reaches bob (through b)" \
    client_expect bob "RECEIVED $t FROM alice@remote.example" 20
t=$(token after-out)
client_cmd bob send alice@remote.example "$t" >/dev/null
check "and bob's reaches alice" \
    client_expect alice "RECEIVED $t FROM bob@corp.example" 20

client_stop alice bob
rc_b=0
stop_pid "$PID_B" || rc_b=$?
check "instance b exits 0 on SIGTERM" test "$rc_b" -eq 0
stop_pid "$PID_H"
check "no sanitizer report" sh -c \
    "! grep -Eq 'Sanitizer|runtime error' '$FG_TMP/a.log' '$FG_TMP/b.log'"
note "t_scaleout.sh: $(($(date +%s) - started)) s"
tap_done
