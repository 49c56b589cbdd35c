#!/bin/sh
# tests/interop/t_ejabberd.sh: Debian's ejabberd (23.01) on either side of
# fedgated, in the fedgate topology (tests/interop/README.md):
#
#   1. ejabberd outside, serving ej.example (203.0.113.24; STARTTLS
#      optional, self-signed certificate, mod_s2s_dialback), federating
#      through fedgated with the internal Prosody (corp.internal, known
#      outside as corp.example);
#   2. ejabberd as the internal server, serving corp.internal behind
#      fedgated (STARTTLS required, a certificate from the test CA it does
#      not trust, as the internal Prosody), federating with remote.example
#      (Prosody) outside.
#
# Each: presence subscription both ways (each user sees the other's
# presence), messages both ways with unique tokens, dialback on both faces
# as fedgated's log tells, and neither name of corp on the wrong side.
# ejabberd runs as a plain Erlang VM in its namespace (lib.sh: no
# ejabberdctl, no epmd), accounts made through its HTTP API on the
# namespace's loopback. TAP on stdout. Needs root and ejabberd.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
fg_init
started=$(date +%s)
if ! command -v erl >/dev/null 2>&1 ||
    ! ls -d "$EJABBERD_LIBS"/ejabberd-* >/dev/null 2>&1; then
	echo "1..0 # SKIP ejabberd is not installed (apt-get install ejabberd)"
	exit 0
fi

L='leg [0-9]+'

# ej_wire LOG: what ejabberd sent and received on its streams (its debug
# log's "Received XML on stream" and "Send XML on stream" lines).
ej_wire() { grep -E '(Received|Send) XML on stream' "$1"; }
# ej_wire_lacks LOG REGEX: no stanza or stream header ejabberd exchanged
# matches REGEX, payload JIDs included (Prosody stamps presence it replays
# with its own, internal, name in XEP-0203 <delay from=.../>: fedgated
# rewrites it, src/payload.c).
ej_wire_lacks() {
	ej_wire "$1" | grep -Eq -- "$2" && {
		note "ejabberd exchanged $2:"
		ej_wire "$1" | grep -E -- "$2" | head -n 3 | cut -c1-300 | diag
		return 1
	}
	[ -n "$(ej_wire "$1")" ]
}

# ---- the world: the fedgate topology, ej.example outside
topo_fedgate || bail "topology could not be built"
topo_outside_host ej "$EJ_ADDR" || bail "ej.example's host"
TOPO_DNS_OUT_EXTRA="srv=ej.example,xmpp.ej.example,5269 host=xmpp.ej.example,$EJ_ADDR"
TOPO_DNS_IN_EXTRA="srv=ej.example,gw-in.corp.internal,5269"
topo_fedgate_dns || bail "DNS servers did not start"

conf=$FG_TMP/fedgated.conf
topo_fedgated_conf "$conf" || bail "fedgated's configuration"
cat >>"$conf" <<'CONF'

# ejabberd: STARTTLS, a self-signed certificate, dialback
peer "ej.example" { allow; tls optional; verify none }
peer "remote.example" { allow; tls optional; verify none }
peer default { deny }
CONF

# ---- 1. ejabberd outside
topo_server corp || bail "the internal Prosody did not start"
ecfg=$(ejabberd_config ej "$EJ_ADDR" ej.example) || bail "ejabberd's configuration"
t0=$(date +%s)
ejabberd_start ej ej "$ecfg" || bail "ejabberd (ej.example) did not start"
ejabberd_adduser ej eve@ej.example eve-pw || bail "eve's account on ejabberd"
note "ejabberd started in $(($(date +%s) - t0)) s"
flog=$FG_TMP/fedgated.log
fedgated_start_ns dmz "$conf" "$flog" "$DMZ_PUB:5269" "$DMZ_INT:5269" ||
    bail "fedgated did not start"
ok "ejabberd (ej.example), the internal Prosody and fedgated are up"

client_spawn eve ej eve@ej.example eve-pw "$EJ_ADDR"
client_spawn bob corp bob@corp.internal bob-pw "$CORP_ADDR"
client_online eve bob || bail "clients did not come online"

client_cmd eve subscribe bob@corp.example >/dev/null
check "outside: bob@corp.internal gets eve@ej.example's subscription request" \
    client_expect bob "SUBSCRIBE-REQUEST eve@ej.example" 20
check "outside: eve's request approved (eve sees bob@corp.example)" \
    client_expect eve "SUBSCRIBED bob@corp.example" 15
check "outside: eve gets bob's request, from bob@corp.example" \
    client_expect eve "SUBSCRIBE-REQUEST bob@corp.example" 15
check "outside: bob's request approved" \
    client_expect bob "SUBSCRIBED eve@ej.example" 15
check "outside: bob sees eve's presence" \
    client_expect bob "PRESENCE eve@ej.example available" 15
check "outside: eve sees bob's presence" \
    client_expect eve "PRESENCE bob@corp.example available" 15
t=$(token ej-in)
client_cmd eve send bob@corp.example "$t" >/dev/null
check "outside: message eve@ej.example -> bob@corp.example delivered" \
    client_expect bob "RECEIVED $t FROM eve@ej.example" 10
t=$(token ej-out)
client_cmd bob send eve@ej.example "$t" >/dev/null
check "outside: message bob -> eve@ej.example delivered, from bob@corp.example" \
    client_expect eve "RECEIVED $t FROM bob@corp.example" 10
check "outside: fedgated authenticated ej.example by dialback, after STARTTLS" sh -c \
    "grep -Eq '$L in public ej\\.example: tls TLSv1\\.[23] ' '$flog' &&
     grep -Eq '$L in public ej\\.example->corp\\.example: authenticated by dialback$' '$flog'"
check "outside: ejabberd accepted fedgated's key for corp.example" \
    has "$flog" "$L out public corp\\.example->ej\\.example: authenticated by dialback, ready"
check "outside: fedgated verified ej.example's key with ejabberd" \
    has "$flog" "$L out public corp\\.example->ej\\.example \\(verify\\): closed: verification done: valid"
elog=$(ejabberd_log ej)
check "outside: ejabberd authenticated both its streams with corp.example by dialback" sh -c \
    "grep -q 'Accepted outbound s2s dialback authentication ej.example -> corp.example' '$elog' &&
     grep -q 'Accepted inbound s2s dialback authentication corp.example -> ej.example' '$elog'"
check "outside: corp.internal never reached eve or the outside DNS" \
    none_mention 'corp\.internal' "$(client_out eve)" "$(dns_log out)"
check "outside: no stanza or header ejabberd exchanged names corp.internal" \
    ej_wire_lacks "$elog" 'corp\.internal'
check "outside: corp.example never reached the internal Prosody or bob" \
    none_mention 'corp\.example' "$(prosody_log corp)" "$(client_out bob)"
fedgated_stop
check "outside: fedgated exits 0 on SIGTERM" test $? -eq 0
check "outside: fedgated logged no warning" lacks "$flog" " warning: "
client_stop eve bob
ejabberd_stop ej
prosody_stop corp
note "ejabberd outside: $(($(date +%s) - started)) s"

# ---- 2. ejabberd as the internal server (corp.internal)
icfg=$(ejabberd_config corp "$CORP_ADDR" corp.internal starttls=required cert=ca) ||
    bail "the internal ejabberd's configuration"
t0=$(date +%s)
ejabberd_start corp corp "$icfg" || bail "the internal ejabberd did not start"
ejabberd_adduser corp bob@corp.internal bob-pw || bail "bob's account on ejabberd"
note "ejabberd started in $(($(date +%s) - t0)) s"
topo_server remote || bail "remote.example's Prosody did not start"
flog=$FG_TMP/fedgated-2.log
fedgated_start_ns dmz "$conf" "$flog" "$DMZ_PUB:5269" "$DMZ_INT:5269" ||
    bail "fedgated did not start again"
ok "the internal ejabberd (corp.internal), remote.example and fedgated are up"

client_spawn alice remote alice@remote.example alice-pw "$REMOTE_ADDR"
client_spawn bob2 corp bob@corp.internal bob-pw "$CORP_ADDR"
client_online alice bob2 || bail "clients did not come online"
client_cmd bob2 subscribe alice@remote.example >/dev/null
check "inside: alice gets bob's subscription request, from bob@corp.example" \
    client_expect alice "SUBSCRIBE-REQUEST bob@corp.example" 20
check "inside: bob's request approved" \
    client_expect bob2 "SUBSCRIBED alice@remote.example" 15
check "inside: bob@corp.internal (ejabberd) gets alice's request" \
    client_expect bob2 "SUBSCRIBE-REQUEST alice@remote.example" 15
check "inside: alice's request approved (alice sees bob@corp.example)" \
    client_expect alice "SUBSCRIBED bob@corp.example" 15
check "inside: alice sees bob's presence" \
    client_expect alice "PRESENCE bob@corp.example available" 15
check "inside: bob sees alice's presence" \
    client_expect bob2 "PRESENCE alice@remote.example available" 15
t=$(token ejin-out)
client_cmd bob2 send alice@remote.example "$t" >/dev/null
check "inside: message bob -> alice delivered, from bob@corp.example" \
    client_expect alice "RECEIVED $t FROM bob@corp.example" 10
t=$(token ejin-in)
client_cmd alice send bob@corp.example "$t" >/dev/null
check "inside: message alice -> bob@corp.example delivered to ejabberd's bob" \
    client_expect bob2 "RECEIVED $t FROM alice@remote.example" 10
check "inside: fedgated verified ejabberd's key with the upstream" sh -c \
    "grep -Eq '$L out internal remote\\.example->corp\\.internal \\(verify\\): closed: verification done: valid' '$flog' &&
     grep -Eq '$L in internal corp\\.internal->remote\\.example: authenticated by dialback$' '$flog'"
check "inside: ejabberd checked fedgated's key on the internal face" sh -c \
    "grep -Eq '$L in internal: db:verify remote\\.example->corp\\.internal id [^ ]+: valid' '$flog' &&
     grep -Eq '$L out internal remote\\.example->corp\\.internal: authenticated by dialback, ready' '$flog'"
check "inside: ejabberd's streams with fedgated used STARTTLS both ways" sh -c \
    "grep -Eq '$L in internal corp\\.internal: tls TLSv1\\.[23] ' '$flog' &&
     grep -Eq '$L out internal remote\\.example->corp\\.internal: tls TLSv1\\.[23] ' '$flog'"
ilog=$(ejabberd_log corp)
check "inside: ejabberd authenticated both its streams with remote.example by dialback" sh -c \
    "grep -q 'Accepted outbound s2s dialback authentication corp.internal -> remote.example' '$ilog' &&
     grep -q 'Accepted inbound s2s dialback authentication remote.example -> corp.internal' '$ilog'"
check "inside: corp.internal never reached remote.example or alice" \
    none_mention 'corp\.internal' "$(prosody_log remote)" "$(client_out alice)" \
    "$(dns_log out)"
check "inside: corp.example never reached bob" \
    none_mention 'corp\.example' "$(client_out bob2)"
check "inside: no stanza or header ejabberd exchanged names corp.example" \
    ej_wire_lacks "$ilog" 'corp\.example'
fedgated_stop
check "inside: fedgated exits 0 on SIGTERM" test $? -eq 0
check "inside: fedgated logged no warning" lacks "$flog" " warning: "
client_stop alice bob2
ejabberd_stop corp
prosody_stop remote
note "elapsed: $(($(date +%s) - started)) s"
tap_done
