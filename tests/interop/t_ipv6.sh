#!/bin/sh
# tests/interop/t_ipv6.sh: the fedgate topology (tests/interop/README.md)
# over IPv6 only: the outside segment 2001:db8:1::/64, the inside one
# 2001:db8:2::/64, no IPv4 address anywhere but loopback. Both DNS servers
# answer AAAA records only; fedgated resolves remote domains through the
# outside one (a forwarder given as an IPv6 address), listens on the
# DMZ's two IPv6 faces and reaches the internal Prosody at its IPv6
# address. alice@remote.example and bob@corp.internal subscribe to each
# other and exchange messages both ways; fedgatectl sessions shows IPv6
# peers on both faces.
# TAP on stdout; exit status non-zero on failure. Needs root.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
fg_init
started=$(date +%s)

# The addresses of lib.sh's topology, in IPv6 (topo_server and
# topo_fedgated_conf read them when called).
OUT_DNS=2001:db8:1::53
DMZ_PUB=2001:db8:1::10
REMOTE_ADDR=2001:db8:1::20
IN_DNS=2001:db8:2::53
DMZ_INT=2001:db8:2::10
CORP_ADDR=2001:db8:2::30

topo_ipv6() {
	switch_add sw-out && switch_add sw-in || return 1
	for _th in dnsout remote dmz dnsin corp; do
		ns_add "$_th" || return 1
	done
	ns_attach dnsout sw-out eth0 "$OUT_DNS/64" &&
	ns_attach remote sw-out eth0 "$REMOTE_ADDR/64" &&
	ns_attach dmz sw-out eth0 "$DMZ_PUB/64" &&
	ns_attach dmz sw-in eth1 "$DMZ_INT/64" &&
	ns_attach dnsin sw-in eth0 "$IN_DNS/64" &&
	ns_attach corp sw-in eth0 "$CORP_ADDR/64" || return 1
	ns_resolver remote "$OUT_DNS" && ns_resolver dmz "$OUT_DNS" &&
	    ns_resolver corp "$IN_DNS"
}

topo_ipv6 || bail "IPv6 topology could not be built"
# no_ipv4: no host has a global IPv4 address.
no_ipv4() {
	for _n in remote dmz corp; do
		ns_exec "$_n" ip -4 addr show scope global | grep -q inet &&
		    return 1
	done
	return 0
}
check "no IPv4 address on any host but loopback" no_ipv4
dns_start out dnsout "$OUT_DNS" \
    srv=corp.example,gw.corp.example,5269 host=gw.corp.example,$DMZ_PUB \
    srv=remote.example,xmpp.remote.example,5269 \
    host=xmpp.remote.example,$REMOTE_ADDR || bail "outside DNS"
dns_start in dnsin "$IN_DNS" \
    srv=corp.internal,xmpp.corp.internal,5269 host=xmpp.corp.internal,$CORP_ADDR \
    host=gw-in.corp.internal,$DMZ_INT \
    srv=remote.example,gw-in.corp.internal,5269 || bail "inside DNS"
check "outside: AAAA of gw.corp.example is the DMZ's public face" \
    dns_has remote "$OUT_DNS" gw.corp.example AAAA "AAAA $DMZ_PUB"
check "outside: no A record for gw.corp.example" \
    dns_none remote "$OUT_DNS" gw.corp.example A
{ topo_server corp && topo_server remote; } || bail "Prosody did not start"
ok "IPv6 topology, DNS and two Prosody servers are up"

conf=$FG_TMP/fedgated.conf
flog=$FG_TMP/fedgated.log
topo_fedgated_conf "$conf" || bail "fedgated's configuration"
cat >>"$conf" <<'CONF'
peer "remote.example" { allow; tls optional; verify none }
peer default { deny }
CONF
check "fedgated -n accepts the configuration, in the DMZ" sh -c \
    "ip netns exec $(ns_name dmz) '$FEDGATED' -n -f '$conf' 2>&1 | grep -qx 'configuration OK'"
fedgated_start_ns dmz "$conf" "$flog" "[$DMZ_PUB]:5269" "[$DMZ_INT]:5269" ||
    bail "fedgated did not start"
ok "fedgated listens on its two IPv6 faces"

{ client_start alice remote alice@remote.example alice-pw "$REMOTE_ADDR" &&
    client_start bob corp bob@corp.internal bob-pw "$CORP_ADDR"; } ||
    bail "clients did not come online"
client_cmd alice subscribe bob@corp.example >/dev/null
check "bob gets alice's subscription request" \
    client_expect bob "SUBSCRIBE-REQUEST alice@remote.example" 20
check "bob approves it (alice sees bob@corp.example)" \
    client_expect alice "SUBSCRIBED bob@corp.example" 10
check "alice gets bob's subscription request, from bob@corp.example" \
    client_expect alice "SUBSCRIBE-REQUEST bob@corp.example" 10
check "bob sees alice's presence" \
    client_expect bob "PRESENCE alice@remote.example available" 10
check "alice sees bob's presence" \
    client_expect alice "PRESENCE bob@corp.example available" 10
t=$(token in6)
client_cmd alice send bob@corp.example "$t" >/dev/null
check "message alice -> bob@corp.example delivered over IPv6" \
    client_expect bob "RECEIVED $t FROM alice@remote.example" 20
t=$(token out6)
client_cmd bob send alice@remote.example "$t" >/dev/null
check "message bob -> alice delivered over IPv6, from bob@corp.example" \
    client_expect alice "RECEIVED $t FROM bob@corp.example" 20
check "fedgatectl sessions: a public leg from remote.example's IPv6 address" \
    fgctl_has_session face=public remote=remote.example
check "fedgated's log names IPv6 peers on both faces" sh -c \
    "grep -q 'connection from \\[$REMOTE_ADDR\\]' '$flog' && grep -q 'connection from \\[$CORP_ADDR\\]' '$flog'"
check "the internal Prosody connected to the DMZ's internal face over IPv6" \
    grep -q "$DMZ_INT" "$(prosody_log corp)"

client_stop alice bob
rc=0
fedgated_stop || rc=$?
check "fedgated exits 0 on SIGTERM" test "$rc" -eq 0
check "no sanitizer report" not grep -Eq 'Sanitizer|runtime error' "$flog"
note "t_ipv6.sh: $(($(date +%s) - started)) s"
tap_done
