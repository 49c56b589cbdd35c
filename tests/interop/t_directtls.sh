#!/bin/sh
# tests/interop/t_directtls.sh: peers that use optional protocol features
# reach the inside through fedgated (the fedgate topology,
# tests/interop/README.md):
#   - direct TLS (XEP-0368): the outside DNS also holds
#     _xmpps-server._tcp.corp.example -> gw.corp.example:5270, where
#     fedgated listens with "tls". Prosody asks that record first, so
#     remote.example (dialback) and secure.example (SASL EXTERNAL) connect
#     with TLS from the first byte;
#   - bidirectional streams (XEP-0288): remote.example and the internal
#     Prosody have mod_s2s_bidi enabled. remote.example's stream to
#     fedgated enables bidi, and fedgated's stanzas to remote.example go
#     back on it (no outgoing public leg); inside, fedgated's leg and the
#     internal Prosody's own (opened for its dialback verification) are
#     both bidirectional. secure.example has no bidi: a leg per direction.
#     t_bidi.sh has the one-connection-per-peer case.
# fedgated's own outgoing legs still use STARTTLS (it does not look up
# _xmpps-server records).
# TAP on stdout; exit status non-zero on failure. Needs root.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
fg_init
started=$(date +%s)

topo_fedgate || bail "topology could not be built"
TOPO_DNS_OUT_EXTRA="xmpps=corp.example,gw.corp.example,5270" topo_fedgate_dns ||
    bail "DNS servers did not start"
{ topo_server corp bidi=on && topo_server remote bidi=on &&
    topo_server secure; } || bail "Prosody did not start"
conf=$FG_TMP/fedgated.conf
flog=$FG_TMP/fedgated.log
topo_fedgated_conf "$conf" || bail "fedgated's configuration"
cat >>"$conf" <<CONF
listen public on $DMZ_PUB port 5270 tls

peer "remote.example" { allow; tls optional; verify none }
peer "secure.example" { allow; tls required; verify required; auth external }
peer default { deny }
CONF
fedgated_start_ns dmz "$conf" "$flog" "$DMZ_PUB:5269" "$DMZ_PUB:5270" \
    "$DMZ_INT:5269" || bail "fedgated did not start"
ok "fedgated listens on 5269 (STARTTLS) and 5270 (direct TLS)"
check "outside: SRV _xmpps-server._tcp.corp.example -> gw.corp.example:5270" \
    dns_has remote "$OUT_DNS" _xmpps-server._tcp.corp.example SRV \
    "SRV 0 0 5270 gw.corp.example"

client_spawn alice remote alice@remote.example alice-pw "$REMOTE_ADDR"
client_spawn sam secure sam@secure.example sam-pw "$SECURE_ADDR"
client_spawn bob corp bob@corp.internal bob-pw "$CORP_ADDR"
client_online alice sam bob || bail "clients did not come online"

L='leg [0-9]+'
for who in alice:remote sam:secure; do
	c=${who%:*}
	d=${who#*:}.example
	t=$(token "$c-in")
	client_cmd "$c" send bob@corp.example "$t" >/dev/null
	check "$d: message $c -> bob@corp.example delivered" \
	    client_expect bob "RECEIVED $t FROM $c@$d" 15
	t=$(token "$c-out")
	client_cmd bob send "$c@$d" "$t" >/dev/null
	check "$d: message bob -> $c delivered, from bob@corp.example" \
	    client_expect "$c" "RECEIVED $t FROM bob@corp.example" 15
	check "$d: its Prosody connected to port 5270, found by _xmpps-server" \
	    grep -q "Next target to try is $DMZ_PUB:5270" "$(prosody_log "${who#*:}")"
done
check "fedgated: both came in with direct TLS" sh -c \
    "[ \$(grep -Ec '$L in public: connection from 203\\.0\\.113\\.2[03]:[0-9]+ \\(direct TLS\\)' '$flog') -eq 2 ]"
check "fedgated: remote.example authenticated by dialback, secure.example by SASL EXTERNAL" sh -c \
    "grep -Eq '$L in public remote\\.example->corp\\.example: authenticated by dialback$' '$flog' &&
     grep -Eq '$L in public secure\\.example->corp\\.example: authenticated by sasl-external$' '$flog'"
check "no STARTTLS on the direct TLS legs (TLS was negotiated once each)" sh -c \
    "[ \$(grep -Ec '$L in public [a-z.?]+: tls TLSv' '$flog') -eq 2 ]"
bidi_offered() {
	grep -q "Sending stream features: .*urn:xmpp:features:bidi" "$(prosody_log remote)" &&
	    grep -q "Sending stream features: .*urn:xmpp:features:bidi" "$(prosody_log corp)"
}
check "remote.example and corp.internal offer bidi (XEP-0288)" bidi_offered
remote_bidi() {
	fgctl_has_session face=public direction=in remote=remote.example \
	    bidi=true &&
	    ! fgctl_has_session face=public direction=out remote=remote.example
}
check "fedgated sends to remote.example on remote.example's own stream (bidi)" \
    remote_bidi
check "the log says so" grep -Eq \
    "$L in public remote\\.example->corp\\.example: bidi: carries the route corp\\.example->remote\\.example" "$flog"
inside_bidi() {
	fgctl_has_session face=internal direction=in remote=corp.internal \
	    local=remote.example bidi=true &&
	    fgctl_has_session face=internal direction=out remote=corp.internal \
	    local=remote.example state=ready bidi=true
}
check "inside, both legs of remote.example's pairs are bidirectional" \
    inside_bidi
secure_two_legs() {
	fgctl_has_session face=public direction=in remote=secure.example \
	    bidi=false &&
	    fgctl_has_session face=public direction=out remote=secure.example \
	    state=ready bidi=false
}
check "secure.example (no mod_s2s_bidi) keeps one leg per direction" \
    secure_two_legs
note "fedgatectl sessions:"
fgctl sessions 2>&1 | diag

fedgated_stop
rc=$?
check "fedgated exits 0 on SIGTERM" test "$rc" -eq 0
check "fedgated logged no warning" not grep -q ' warning: ' "$flog"
client_stop alice sam bob
prosody_stop corp remote secure
note "elapsed: $(($(date +%s) - started)) s"
tap_done
