#!/bin/sh
# tests/interop/t_legacy.sh: the seed's legacy peer profiles, each a real
# Prosody outside the fedgate topology (tests/interop/README.md):
#
#   legacy.example  plain TCP, dialback only (s2s_allow_encryption =
#                   false); fedgated: tls none
#   nocert.example  STARTTLS without a client certificate on its outgoing
#                   streams (Prosody presents its own; the test plugin
#                   prosody-plugins/mod_s2sout_nocert.lua takes it away),
#                   dialback; fedgated: tls required, verify none
#   old.example     speaks only TLS 1.0 on s2s (s2s_ssl protocol "tlsv1",
#                   one CBC cipher, @SECLEVEL=0: OpenSSL 3 refuses TLS
#                   1.0 at its default level); fedgated: tls required,
#                   tls min-version TLSv1, tls ciphers for it alone
#
# For each: presence subscription both ways, each user sees the other's
# presence, messages both ways with unique tokens, and what fedgated's
# public legs with it negotiated. The TLS 1.0 relaxation stays on
# old.example's legs: remote.example (Prosody as it comes) gets TLS 1.2
# or 1.3, and before the rule is given fedgated cannot talk to old.example.
# TAP on stdout. Needs root.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
fg_init
started=$(date +%s)

L='leg [0-9]+'
S2S_TLS='s2s(in|out)[0-9a-f]+[[:space:]]+info[[:space:]]+Stream encrypted'
OLD_CIPHER=ECDHE-ECDSA-AES128-SHA

# ---- the world
topo_fedgate || bail "topology could not be built"
topo_outside_host nocert "$NOCERT_ADDR" && topo_outside_host old "$OLD_ADDR" ||
    bail "the extra outside hosts"
TOPO_DNS_OUT_EXTRA="srv=nocert.example,xmpp.nocert.example,5269 host=xmpp.nocert.example,$NOCERT_ADDR
 srv=old.example,xmpp.old.example,5269 host=xmpp.old.example,$OLD_ADDR"
TOPO_DNS_IN_EXTRA="srv=nocert.example,gw-in.corp.internal,5269 srv=old.example,gw-in.corp.internal,5269"
topo_fedgate_dns || bail "DNS servers did not start"
topo_server corp && topo_server legacy && topo_server remote ||
    bail "Prosody of corp, legacy or remote did not start"
cfg=$(prosody_config nocert "$NOCERT_ADDR" nocert.example tls=on cert=self \
    require_encryption=true module=s2sout_nocert \
    "global=plugin_paths = { \"$INTEROP_DIR/prosody-plugins\" }") &&
    prosody_adduser "$cfg" nina@nocert.example nina-pw &&
    prosody_start nocert nocert "$cfg" || bail "Prosody of nocert.example"
cfg=$(prosody_config old "$OLD_ADDR" old.example tls=on cert=self \
    require_encryption=true \
    "global=s2s_ssl = { protocol = \"tlsv1\"; ciphers = \"$OLD_CIPHER:@SECLEVEL=0\" }") &&
    prosody_adduser "$cfg" otto@old.example otto-pw &&
    prosody_start old old "$cfg" || bail "Prosody of old.example"
ok "topology, DNS and five Prosody servers are up"
check "old.example speaks TLS 1.0 and nothing newer" sh -c \
    "echo | ip netns exec $(ns_name old) timeout 5 openssl s_client -connect $OLD_ADDR:5269 \
        -starttls xmpp-server -xmpphost old.example -tls1 -cipher '$OLD_CIPHER:@SECLEVEL=0' 2>&1 |
        grep -q 'Protocol *: TLSv1\$' &&
     ! echo | ip netns exec $(ns_name old) timeout 5 openssl s_client -connect $OLD_ADDR:5269 \
        -starttls xmpp-server -xmpphost old.example -tls1_2 >/dev/null 2>&1"

conf=$FG_TMP/fedgated.conf
topo_fedgated_conf "$conf" || bail "fedgated's configuration"
cat >>"$conf" <<'CONF'

# plain TCP, dialback only
peer "legacy.example" { allow; tls none; verify none; auth dialback }
# TLS, but no client certificate to check: dialback
peer "nocert.example" { allow; tls required; verify none; auth dialback }
peer "remote.example" { allow; tls optional; verify none }
peer default { deny }
CONF
cp "$conf" "$FG_TMP/fedgated-strict.conf"
cat >>"$conf" <<CONF
# only TLS 1.0: this peer's legs alone get the old version and cipher
peer "old.example" {
	allow
	tls required
	tls min-version TLSv1
	tls ciphers "$OLD_CIPHER:@SECLEVEL=0"
	verify none
	auth dialback
}
CONF
flog=$FG_TMP/fedgated.log
fedgated_start_ns dmz "$conf" "$flog" "$DMZ_PUB:5269" "$DMZ_INT:5269" ||
    bail "fedgated did not start"
ok "fedgated listens on its public and internal faces"

client_spawn bob corp bob@corp.internal bob-pw "$CORP_ADDR"
client_spawn lee legacy lee@legacy.example lee-pw "$LEGACY_ADDR"
client_spawn nina nocert nina@nocert.example nina-pw "$NOCERT_ADDR"
client_spawn otto old otto@old.example otto-pw "$OLD_ADDR"
client_spawn alice remote alice@remote.example alice-pw "$REMOTE_ADDR"
client_online bob lee nina otto alice || bail "clients did not come online"

# ---- legacy.example: plain TCP, dialback only
both_ways bob lee lee@legacy.example peer
check "legacy: both public legs are plain TCP, authenticated by dialback" sh -c \
    "grep -Eq '$L out public corp\\.example->legacy\\.example: authenticated by dialback, ready' '$flog' &&
     grep -Eq '$L in public legacy\\.example->corp\\.example: authenticated by dialback$' '$flog' &&
     ! grep -Eq '$L (in|out) public [^ ]*legacy\\.example[^ ]*: tls ' '$flog'"
check "legacy: legacy.example's s2s streams stayed plain" \
    lacks "$(prosody_log legacy)" "$S2S_TLS"

# ---- nocert.example: STARTTLS, no client certificate, dialback
both_ways bob nina nina@nocert.example inside
check "nocert: nocert.example's outgoing stream did STARTTLS without a client certificate" sh -c \
    "grep -q 's2sout TLS without a client certificate' '$(prosody_log nocert)' &&
     grep -Eq '$L in public nocert\\.example: tls TLSv1\\.[23] [^ ]+ established, client certificate none$' '$flog'"
check "nocert: fedgated authenticated it by dialback, after TLS" \
    has "$flog" "$L in public nocert\\.example->corp\\.example: authenticated by dialback$"
check "nocert: fedgated's own leg to nocert.example used TLS and dialback" sh -c \
    "grep -Eq '$L out public corp\\.example->nocert\\.example: tls TLSv1\\.[23] ' '$flog' &&
     grep -Eq '$L out public corp\\.example->nocert\\.example: authenticated by dialback, ready' '$flog'"

# ---- old.example: TLS 1.0 only
both_ways bob otto otto@old.example peer
check "old: fedgated's incoming leg from old.example is TLS 1.0 with its cipher" \
    has "$flog" "$L in public old\\.example: tls TLSv1 $OLD_CIPHER established"
check "old: fedgated's outgoing leg to old.example is TLS 1.0 with its cipher" \
    has "$flog" "$L out public corp\\.example->old\\.example: tls TLSv1 $OLD_CIPHER established"
check "old: both authenticated by dialback" sh -c \
    "grep -Eq '$L in public old\\.example->corp\\.example: authenticated by dialback$' '$flog' &&
     grep -Eq '$L out public corp\\.example->old\\.example: authenticated by dialback, ready' '$flog'"
check "old: fedgated said it relaxed TLS for old.example's legs only" sh -c \
    "grep -Eq '$L (in|out) public [^ ]*old\\.example[^ ]*: tls relaxed for this peer: min-version TLSv1 \\(security level 0\\), ciphers $OLD_CIPHER' '$flog' &&
     ! grep 'tls relaxed' '$flog' | grep -v 'old\\.example' | grep -q ."
check "old: Prosody of old.example logs TLSv1 streams" \
    grep -Eq 's2s(in|out)[0-9a-f]+[[:space:]]+info[[:space:]]+Stream encrypted \(TLSv1 with' "$(prosody_log old)"

# ---- remote.example: the other peers keep the built-in TLS
t=$(token remote-out)
client_cmd bob send alice@remote.example "$t" >/dev/null
check "remote: message bob -> alice delivered" \
    client_expect alice "RECEIVED $t FROM bob@corp.example" 15
check "remote: fedgated's legs with remote.example use TLS 1.2 or 1.3" sh -c \
    "grep -Eq '$L out public corp\\.example->remote\\.example: tls TLSv1\\.[23] ' '$flog' &&
     ! grep -Eq '$L (in|out) public [^ ]*remote\\.example[^ ]*: tls TLSv1 ' '$flog'"
check "fedgated logged no warning" lacks "$flog" " warning: "
fedgated_stop
check "fedgated exits 0 on SIGTERM" test $? -eq 0

# ---- without the rule, fedgated refuses TLS 1.0 with old.example
flog=$FG_TMP/fedgated-strict.log
conf=$FG_TMP/fedgated-strict.conf
echo 'peer "old.example" { allow; tls required; verify none; auth dialback }' >>"$conf"
fedgated_start_ns dmz "$conf" "$flog" "$DMZ_PUB:5269" "$DMZ_INT:5269" ||
    bail "fedgated (without tls min-version) did not start"
t=$(token old-strict)
client_cmd bob send otto@old.example "$t" >/dev/null
check "strict: without tls min-version, fedgated's TLS to old.example fails" \
    wait_log "$flog" "$L out public corp\\.example->old\\.example: closed: TLS: .*protocol version" 20
check "strict: bob's message to otto bounces" \
    client_wait bob "^ERROR message $t remote-server-not-found FROM otto@old\\.example$" 20
t=$(token old-strict-in)
client_cmd otto send bob@corp.example "$t" >/dev/null
check "strict: otto's message to bob bounces (old.example's TLS 1.0 refused)" \
    client_wait otto "^ERROR message $t [a-z-]+ FROM bob@corp\\.example$" 30
check "strict: neither message got through" sh -c \
    "! grep -q 'RECEIVED old-strict' '$(client_out otto)' &&
     ! grep -q 'RECEIVED old-strict' '$(client_out bob)'"
fedgated_stop

client_stop bob lee nina otto alice
prosody_stop corp legacy remote nocert old
note "elapsed: $(($(date +%s) - started)) s"
tap_done
