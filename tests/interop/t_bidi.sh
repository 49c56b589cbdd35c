#!/bin/sh
# tests/interop/t_bidi.sh: bidirectional streams (XEP-0288) through
# fedgated (the fedgate topology, tests/interop/README.md). The internal
# Prosody and remote.example run mod_s2s_bidi; remote.example trusts the
# test CA, so fedgated authenticates to it with SASL EXTERNAL (no dialback
# verification connection back to fedgated).
#
# bob (inside) starts: the internal Prosody connects to fedgated's internal
# face and enables bidi; fedgated connects to remote.example, asks for
# bidi before SASL. From then on, subscriptions, presence and messages
# flow both ways, each face over one TCP connection: remote.example's
# stanzas come back on fedgated's outgoing leg, the stanzas for the inside
# go on the internal Prosody's own stream. Counted with ss(8) in the
# namespaces, and read in fedgatectl sessions.
# TAP on stdout; exit status non-zero on failure. Needs root.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
fg_init
started=$(date +%s)

topo_fedgate || bail "topology could not be built"
topo_fedgate_dns || bail "DNS servers did not start"
{ topo_server corp bidi=on &&
    topo_server remote bidi=on trust_ca=yes; } || bail "Prosody did not start"
conf=$FG_TMP/fedgated.conf
flog=$FG_TMP/fedgated.log
topo_fedgated_conf "$conf" || bail "fedgated's configuration"
cat >>"$conf" <<CONF

peer "remote.example" { allow; tls optional; verify none; bidi yes }
peer default { deny }
CONF
fedgated_start_ns dmz "$conf" "$flog" "$DMZ_PUB:5269" "$DMZ_INT:5269" ||
    bail "fedgated did not start"
ok "fedgated started"

client_spawn alice remote alice@remote.example alice-pw "$REMOTE_ADDR"
client_spawn bob corp bob@corp.internal bob-pw "$CORP_ADDR"
client_online alice bob || bail "clients did not come online"

both_ways bob alice alice@remote.example inside

L='leg [0-9]+'
check "fedgated enabled bidi on the internal Prosody's stream" \
    grep -Eq "$L in internal corp\\.internal->remote\\.example: bidi enabled" "$flog"
check "fedgated asked remote.example for bidi and got it (SASL EXTERNAL)" sh -c \
    "grep -Eq '$L out public corp\\.example->remote\\.example: authenticated by sasl-external, ready' '$flog' &&
     grep -Eq '$L out public corp\\.example->remote\\.example: bidi enabled' '$flog'"
check "remote.example took the request (mod_s2s_bidi)" \
    grep -q "Requested bidirectional stream" "$(prosody_log remote)"
check "the internal Prosody asked for it" \
    grep -q "Requesting bidirectional stream" "$(prosody_log corp)"
check "fedgated: the route to the inside rides on the internal Prosody's stream" \
    grep -Eq "$L in internal corp\\.internal->remote\\.example: bidi: carries the route remote\\.example->corp\\.internal" "$flog"

# One TCP connection per peer, once the dialback verification fedgated
# made of the internal Prosody's key is closed.
check "outside: one connection between remote.example and fedgated" \
    wait_until 10 conns_are 1 remote "$DMZ_PUB"
check "inside: one connection between the internal Prosody and fedgated" \
    wait_until 10 conns_are 1 corp "$DMZ_INT"
check "dmz: two connections on 5269 in all" dmz_5269_conns_are 2
check "fedgatectl sessions: the public leg is outgoing and bidi, both ways" \
    fgctl_has_session face=public direction=out remote=remote.example \
    state=ready bidi=true
check "fedgatectl sessions: the internal leg is incoming and bidi" \
    fgctl_has_session face=internal direction=in remote=corp.internal \
    local=remote.example bidi=true
no_other_legs() {
	! fgctl_has_session face=public direction=in remote=remote.example &&
	    ! fgctl_has_session face=internal direction=out remote=corp.internal
}
check "fedgatectl sessions: no leg in the other direction" no_other_legs
carries_both() {
	fgctl -j sessions | "$PYTHON" -c '
import json, sys
want = {("corp.example", "remote.example"), ("remote.example", "corp.example"),
        ("corp.internal", "remote.example"), ("remote.example", "corp.internal")}
got = set()
for s in json.load(sys.stdin)["sessions"]:
    got |= {(f["from"], f["to"]) for f in s.get("carries", [])}
sys.exit(0 if want <= got else 1)
'
}
check "fedgatectl sessions: the two legs carry the four flows" carries_both
note "fedgatectl sessions:"
fgctl sessions 2>&1 | diag

# More traffic both ways: still one connection each.
t=$(token alice-again)
client_cmd alice send bob@corp.example "$t" >/dev/null
check "a second message alice -> bob" \
    client_expect bob "RECEIVED $t FROM alice@remote.example" 10
t=$(token bob-again)
client_cmd bob send alice@remote.example "$t" >/dev/null
check "a second message bob -> alice" \
    client_expect alice "RECEIVED $t FROM bob@corp.example" 10
one_each() {
	conns_are 1 remote "$DMZ_PUB" && conns_are 1 corp "$DMZ_INT"
}
check "still one connection outside and one inside" one_each

fedgated_stop
rc=$?
check "fedgated exits 0 on SIGTERM" test "$rc" -eq 0
check "fedgated logged no warning" not grep -q ' warning: ' "$flog"
client_stop alice bob
prosody_stop corp remote
note "elapsed: $(($(date +%s) - started)) s"
tap_done
