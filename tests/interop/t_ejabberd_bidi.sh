#!/bin/sh
# tests/interop/t_ejabberd_bidi.sh: bidirectional streams (XEP-0288)
# between fedgated and ejabberd, in the fedgate topology
# (tests/interop/README.md). Debian 12's ejabberd (23.01) has no
# mod_s2s_bidi; bookworm-backports' (24.12) has, and runs here from the
# tree quickstart unpacks (EJABBERD_BPO, lib.sh), never installed.
#
#   1. ejabberd outside (ej.example, mod_s2s_bidi): bob (inside) starts,
#      so fedgated connects to ejabberd, asks for bidi and authenticates
#      by dialback (ejabberd checks the key on a connection of its own,
#      closed once done); eve's stanzas come back on that one connection.
#      The internal Prosody enables bidi on its own stream to fedgated's
#      internal face.
#   2. ejabberd as the internal server (corp.internal, mod_s2s_bidi):
#      alice (outside, Prosody with mod_s2s_bidi) starts, so remote.example
#      enables bidi on its stream to fedgated's public face, and fedgated
#      asks the internal ejabberd for bidi on its internal leg; ejabberd
#      checks fedgated's key by dialback on a connection of its own, closed
#      once done.
#
# ejabberd 24.12 offers bidi in the request's namespace (urn:xmpp:bidi,
# not XEP-0288's urn:xmpp:features:bidi), which fedgated accepts, and as
# the initiating server looks for the feature there too, so it never asks
# fedgated (nor Prosody) for bidi: each case lets the other side start.
# Its SASL EXTERNAL on s2s crashes its stream process (badarg in
# ejabberd_s2s_in), so fedgated uses dialback with it.
# Each: subscriptions, presence and messages both ways, one TCP connection
# per face counted with ss(8) in the namespaces, the legs' bidi in
# fedgatectl sessions. TAP on stdout. Needs root, ejabberd and the
# backports tree.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
fg_init
started=$(date +%s)
if ! command -v erl >/dev/null 2>&1 || ! ejabberd_bpo_libs >/dev/null; then
	echo "1..0 # SKIP no ejabberd from bookworm-backports (EJABBERD_BPO; ./quickstart test unpacks it)"
	exit 0
fi

L='leg [0-9]+'

# ---- the world: the fedgate topology, ej.example outside
topo_fedgate || bail "topology could not be built"
topo_outside_host ej "$EJ_ADDR" || bail "ej.example's host"
TOPO_DNS_OUT_EXTRA="srv=ej.example,xmpp.ej.example,5269 host=xmpp.ej.example,$EJ_ADDR"
TOPO_DNS_IN_EXTRA="srv=ej.example,gw-in.corp.internal,5269"
topo_fedgate_dns || bail "DNS servers did not start"

conf=$FG_TMP/fedgated.conf
topo_fedgated_conf "$conf" || bail "fedgated's configuration"
cat >>"$conf" <<'CONF'

peer "ej.example" { allow; tls optional; verify none; bidi yes }
peer "remote.example" { allow; tls optional; verify none; bidi yes }
peer default { deny }
CONF

# ---- 1. ejabberd outside
topo_server corp bidi=on || bail "the internal Prosody did not start"
ecfg=$(ejabberd_config ej "$EJ_ADDR" ej.example release=backports bidi=on) ||
    bail "ejabberd's configuration"
t0=$(date +%s)
ejabberd_start ej ej "$ecfg" || bail "ejabberd 24.12 (ej.example) did not start"
ejabberd_adduser ej eve@ej.example eve-pw || bail "eve's account on ejabberd"
note "ejabberd started in $(($(date +%s) - t0)) s"
flog=$FG_TMP/fedgated.log
fedgated_start_ns dmz "$conf" "$flog" "$DMZ_PUB:5269" "$DMZ_INT:5269" ||
    bail "fedgated did not start"
ok "ejabberd 24.12 (ej.example), the internal Prosody and fedgated are up"

client_spawn eve ej eve@ej.example eve-pw "$EJ_ADDR"
client_spawn bob corp bob@corp.internal bob-pw "$CORP_ADDR"
client_online eve bob || bail "clients did not come online"
both_ways bob eve eve@ej.example inside

check "outside: fedgated asked ejabberd for bidi and got it" sh -c \
    "grep -Eq '$L out public corp\\.example->ej\\.example: authenticated by dialback, ready' '$flog' &&
     grep -Eq '$L out public corp\\.example->ej\\.example: bidi enabled' '$flog'"
check "outside: ejabberd offered bidi in urn:xmpp:bidi and took fedgated's request" sh -c \
    "grep -q \"Send XML on stream = .*<bidi xmlns='urn:xmpp:bidi'/></stream:features>\" '$(ejabberd_log ej)' &&
     grep -q \"Received XML on stream = .*<bidi xmlns='urn:xmpp:bidi'/>\" '$(ejabberd_log ej)'"
check "outside: fedgated enabled bidi on the internal Prosody's stream" \
    grep -Eq "$L in internal corp\\.internal->ej\\.example: bidi enabled" "$flog"
check "outside: one connection between ejabberd and fedgated, its dialback check closed" \
    wait_until 15 conns_are 1 ej "$DMZ_PUB"
check "outside: one connection between the internal Prosody and fedgated" \
    wait_until 10 conns_are 1 corp "$DMZ_INT"
check "outside: dmz: two connections on 5269 in all" dmz_5269_conns_are 2
check "outside: fedgatectl sessions: the public leg is outgoing and bidi" \
    fgctl_has_session face=public direction=out remote=ej.example \
    state=ready bidi=true
check "outside: fedgatectl sessions: no incoming leg from ejabberd" \
    not fgctl_has_session face=public direction=in remote=ej.example
note "fedgatectl sessions:"
fgctl sessions 2>&1 | diag
fedgated_stop
check "outside: fedgated exits 0 on SIGTERM" test $? -eq 0
check "outside: fedgated logged no warning" not grep -q ' warning: ' "$flog"
client_stop eve bob
ejabberd_stop ej
prosody_stop corp
note "ejabberd outside: $(($(date +%s) - started)) s"

# ---- 2. ejabberd as the internal server (corp.internal)
icfg=$(ejabberd_config corp "$CORP_ADDR" corp.internal starttls=required \
    cert=ca release=backports bidi=on) ||
    bail "the internal ejabberd's configuration"
t0=$(date +%s)
ejabberd_start corp corp "$icfg" || bail "the internal ejabberd 24.12 did not start"
ejabberd_adduser corp bob@corp.internal bob-pw || bail "bob's account on ejabberd"
note "ejabberd started in $(($(date +%s) - t0)) s"
topo_server remote bidi=on trust_ca=yes || bail "remote.example's Prosody did not start"
flog=$FG_TMP/fedgated-2.log
fedgated_start_ns dmz "$conf" "$flog" "$DMZ_PUB:5269" "$DMZ_INT:5269" ||
    bail "fedgated did not start again"
ok "the internal ejabberd 24.12 (corp.internal), remote.example and fedgated are up"

client_spawn alice remote alice@remote.example alice-pw "$REMOTE_ADDR"
client_spawn bob2 corp bob@corp.internal bob-pw "$CORP_ADDR"
client_online alice bob2 || bail "clients did not come online"
both_ways bob2 alice alice@remote.example peer

check "inside: remote.example enabled bidi on its stream to fedgated" \
    grep -Eq "$L in public remote\\.example->corp\\.example: bidi enabled" "$flog"
check "inside: fedgated asked the internal ejabberd for bidi and got it" sh -c \
    "grep -Eq '$L out internal remote\\.example->corp\\.internal: authenticated by dialback, ready' '$flog' &&
     grep -Eq '$L out internal remote\\.example->corp\\.internal: bidi enabled' '$flog'"
check "inside: the internal ejabberd took fedgated's bidi request" \
    grep -q "Received XML on stream = .*<bidi xmlns='urn:xmpp:bidi'/>" "$(ejabberd_log corp)"
check "inside: one connection between remote.example and fedgated" \
    wait_until 10 conns_are 1 remote "$DMZ_PUB"
check "inside: one connection between the internal ejabberd and fedgated, its dialback check closed" \
    wait_until 15 conns_are 1 corp "$DMZ_INT"
check "inside: dmz: two connections on 5269 in all" dmz_5269_conns_are 2
check "inside: fedgatectl sessions: the internal leg is outgoing and bidi" \
    fgctl_has_session face=internal direction=out remote=corp.internal \
    state=ready bidi=true
check "inside: fedgatectl sessions: no incoming leg from the internal ejabberd" \
    not fgctl_has_session face=internal direction=in remote=corp.internal
note "fedgatectl sessions:"
fgctl sessions 2>&1 | diag
fedgated_stop
check "inside: fedgated exits 0 on SIGTERM" test $? -eq 0
check "inside: fedgated logged no warning" not grep -q ' warning: ' "$flog"
client_stop alice bob2
ejabberd_stop corp
prosody_stop remote
note "elapsed: $(($(date +%s) - started)) s"
tap_done
