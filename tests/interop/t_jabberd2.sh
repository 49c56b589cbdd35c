#!/bin/sh
# tests/interop/t_jabberd2.sh: Debian's jabberd2 (2.7.0) as a legacy peer
# outside the fedgate topology (tests/interop/README.md): j2.example at
# 203.0.113.25, its s2s without a certificate (plain TCP, dialback only,
# as jabberd2 does without <pemfile>), federating through fedgated with
# the internal Prosody (corp.internal, corp.example outside).
#
# jabberd2 runs as its four processes (router, sm, c2s, s2s) in the
# namespace, its accounts and rosters in an SQLite file of the run
# (lib.sh). Checked: subscription requests both ways, both approved, each
# user sees the other's presence, messages both ways with unique tokens,
# fedgated's public legs with j2.example plain TCP and dialback both ways,
# and neither name of corp on the wrong side. TAP on stdout. Needs root
# and jabberd2.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
fg_init
started=$(date +%s)
if [ ! -x /usr/sbin/jabberd2-router ] || [ ! -f "$JABBERD2_SCHEMA" ]; then
	echo "1..0 # SKIP jabberd2 is not installed (apt-get install jabberd2)"
	exit 0
fi

L='leg [0-9]+'

topo_fedgate || bail "topology could not be built"
topo_outside_host j2 "$J2_ADDR" || bail "j2.example's host"
TOPO_DNS_OUT_EXTRA="srv=j2.example,xmpp.j2.example,5269 host=xmpp.j2.example,$J2_ADDR"
TOPO_DNS_IN_EXTRA="srv=j2.example,gw-in.corp.internal,5269"
topo_fedgate_dns || bail "DNS servers did not start"
topo_server corp || bail "the internal Prosody did not start"
jabberd2_config j2 "$J2_ADDR" j2.example >/dev/null &&
    jabberd2_adduser j2 jay@j2.example jay-pw &&
    jabberd2_start j2 j2 || bail "jabberd2 (j2.example) did not start"
ok "jabberd2 (router, sm, c2s, s2s) and the internal Prosody are up"

conf=$FG_TMP/fedgated.conf
flog=$FG_TMP/fedgated.log
topo_fedgated_conf "$conf" || bail "fedgated's configuration"
cat >>"$conf" <<'CONF'

# jabberd2 without a certificate: plain TCP, dialback only
peer "j2.example" { allow; tls none; verify none; auth dialback }
peer default { deny }
CONF
fedgated_start_ns dmz "$conf" "$flog" "$DMZ_PUB:5269" "$DMZ_INT:5269" ||
    bail "fedgated did not start"

client_spawn bob corp bob@corp.internal bob-pw "$CORP_ADDR"
client_spawn jay j2 jay@j2.example jay-pw "$J2_ADDR"
client_online bob jay || bail "clients did not come online"
ok "bob@corp.internal and jay@j2.example are online"

both_ways bob jay jay@j2.example peer

check "fedgated authenticated j2.example by dialback, plain TCP" sh -c \
    "grep -Eq '$L in public j2\\.example->corp\\.example: authenticated by dialback$' '$flog' &&
     grep -Eq '$L out public corp\\.example->j2\\.example: authenticated by dialback, ready' '$flog' &&
     ! grep -Eq '$L (in|out) public [^ ]*j2\\.example[^ ]*: tls ' '$flog'"
check "fedgated verified j2.example's key with jabberd2, and jabberd2 fedgated's" sh -c \
    "grep -Eq '$L out public corp\\.example->j2\\.example \\(verify\\): closed: verification done: valid' '$flog' &&
     grep -Eq '$L in public: db:verify corp\\.example->j2\\.example id [^ ]+: valid' '$flog'"
j2_plain() {
	fgctl_has_session face=public direction=in remote=j2.example tls= &&
	    fgctl_has_session face=public direction=out remote=j2.example tls= &&
	    ! fgctl_has_session face=public remote=j2.example "tls!="
}
check "sessions: both public legs with j2.example are plain TCP" j2_plain
s2slog=$(jabberd2_log j2 s2s)
note "jabberd2 s2s log:"
grep -v '^$' "$s2slog" | tail -n 12 | cut -c1-200 | diag
check "jabberd2's s2s has both routes with corp.example valid" sh -c \
    "grep -q \"outgoing route 'j2.example/corp.example' is now valid\" '$s2slog' &&
     grep -q \"incoming route 'j2.example/corp.example' is now valid\" '$s2slog'"
check "jabberd2's headers name nobody (pre-XMPP 1.0): fedgated answered as corp.example" \
    grep -Eq "$L in public: a pre-XMPP 1\\.0 header without 'to': answered as corp\\.example" "$flog"
check "corp.internal never reached jabberd2's logs, jay or the outside DNS" sh -c \
    "! grep -q 'corp\\.internal' '$FG_TMP'/jabberd2-j2/*.log '$(client_out jay)' '$(dns_log out)'"
check "corp.example never reached the internal Prosody or bob" sh -c \
    "! grep -q 'corp\\.example' '$(prosody_log corp)' '$(client_out bob)'"
check "fedgated logged no warning" lacks "$flog" " warning: "
fedgated_stop
check "fedgated exits 0 on SIGTERM" test $? -eq 0
client_stop bob jay
jabberd2_stop j2
prosody_stop corp
note "elapsed: $(($(date +%s) - started)) s"
tap_done
