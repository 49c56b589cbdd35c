#!/bin/sh
# tests/interop/topology.sh: the DMZ topology of the fedgate interop tests,
# checked without fedgated (see README.md for the picture):
#   - split-horizon DNS: outside, corp.example's SRV points at the DMZ's
#     public face; inside, every remote domain's SRV points at the DMZ's
#     internal face;
#   - each namespace resolves through its side's DNS server (/etc/netns);
#   - the DMZ reaches both sides, each side reaches its DMZ face, and
#     nothing crosses the DMZ (no forwarding, even with routes through it);
#   - real servers on both sides (remote.example outside, corp.internal
#     inside) cannot federate with each other while nothing runs in the DMZ:
#     their messages bounce. fedgated's tests start from here.
# TAP on stdout; exit status non-zero on failure. Needs root.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
fg_init
started=$(date +%s)

if topo_fedgate; then
	ok "topology: outside, DMZ and inside namespaces built"
else
	bail "topology could not be built"
fi
if topo_fedgate_dns; then
	ok "split-horizon DNS servers answer on $OUT_DNS and $IN_DNS"
else
	bail "DNS servers did not start"
fi

check "outside: SRV corp.example -> gw.corp.example:5269" \
    dns_has remote "$OUT_DNS" _xmpp-server._tcp.corp.example SRV "SRV 0 0 5269 gw.corp.example"
check "outside: gw.corp.example is the DMZ's public face" \
    dns_has remote "$OUT_DNS" gw.corp.example A "A $DMZ_PUB"
check "outside: SRV legacy.example -> its own server" \
    dns_has dmz "$OUT_DNS" _xmpp-server._tcp.legacy.example SRV "SRV 0 0 5269 xmpp.legacy.example"
check "outside: no inside names" \
    dns_none remote "$OUT_DNS" xmpp.corp.internal A
check "inside: SRV remote.example -> gw-in.corp.internal:5269" \
    dns_has corp "$IN_DNS" _xmpp-server._tcp.remote.example SRV "SRV 0 0 5269 gw-in.corp.internal"
check "inside: gw-in.corp.internal is the DMZ's internal face" \
    dns_has corp "$IN_DNS" gw-in.corp.internal A "A $DMZ_INT"
check "inside: SRV corp.internal -> xmpp.corp.internal" \
    dns_has dmz "$IN_DNS" _xmpp-server._tcp.corp.internal SRV "SRV 0 0 5269 xmpp.corp.internal"
check "each side's namespaces resolve through their own DNS (/etc/netns)" sh -c \
    "ip netns exec $(ns_name remote) grep -qx 'nameserver $OUT_DNS' /etc/resolv.conf &&
     ip netns exec $(ns_name dmz) grep -qx 'nameserver $OUT_DNS' /etc/resolv.conf &&
     ip netns exec $(ns_name corp) grep -qx 'nameserver $IN_DNS' /etc/resolv.conf"
check "the DMZ does not forward" sh -c \
    "[ \$(ip netns exec $(ns_name dmz) sysctl -n net.ipv4.ip_forward) = 0 ] &&
     [ \$(ip netns exec $(ns_name dmz) sysctl -n net.ipv6.conf.all.forwarding) = 0 ]"

# The standard servers: inside corp.internal, outside one per peer policy.
for h in corp remote legacy denied secure; do
	if topo_server "$h"; then
		ok "Prosody of $h listens"
	else
		bail "Prosody of $h did not start"
	fi
done

check "the DMZ reaches the internal server" tcp_reachable dmz "$CORP_ADDR" 5269
check "the DMZ reaches remote.example" tcp_reachable dmz "$REMOTE_ADDR" 5269
check "inside reaches the DMZ's internal face" tcp_reachable corp "$DMZ_INT" 5269
check "outside reaches the DMZ's public face" tcp_reachable remote "$DMZ_PUB" 5269
check "outside has no route to the inside" \
    not tcp_reachable remote "$CORP_ADDR" 5269 1
ns_exec remote ip route add 192.0.2.0/24 via "$DMZ_PUB"
ns_exec corp ip route add 203.0.113.0/24 via "$DMZ_INT"
check "routed through the DMZ, outside still cannot reach the internal server" \
    not tcp_reachable remote "$CORP_ADDR" 5269 1
check "routed through the DMZ, inside still cannot reach remote.example" \
    not tcp_reachable corp "$REMOTE_ADDR" 5269 1
ns_exec remote ip route del 192.0.2.0/24
ns_exec corp ip route del 203.0.113.0/24

# Nothing in the DMZ: federation fails both ways, and the senders hear so.
if client_start alice remote alice@remote.example alice-pw "$REMOTE_ADDR" &&
    client_start bob corp bob@corp.internal bob-pw "$CORP_ADDR"; then
	ok "alice@remote.example and bob@corp.internal are online"
	t1=$(token out-in)
	client_cmd alice send bob@corp.example "$t1" >/dev/null
	check "without fedgated, alice's message to bob@corp.example bounces (remote-server-not-found)" \
	    client_wait alice "^ERROR message $t1 remote-server-not-found FROM bob@corp.example$" 15
	check "remote.example looked up corp.example's SRV on the outside DNS" \
	    grep -q "query\[SRV\] _xmpp-server._tcp.corp.example from $REMOTE_ADDR" "$(dns_log out)"
	t2=$(token in-out)
	client_cmd bob send alice@remote.example "$t2" >/dev/null
	check "without fedgated, bob's message to alice@remote.example bounces (remote-server-not-found)" \
	    client_wait bob "^ERROR message $t2 remote-server-not-found FROM alice@remote.example$" 15
	check "corp.internal looked up remote.example's SRV on the inside DNS" \
	    grep -q "query\[SRV\] _xmpp-server._tcp.remote.example from $CORP_ADDR" "$(dns_log in)"
else
	not_ok "alice@remote.example and bob@corp.internal are online"
fi
client_stop alice bob
prosody_stop corp remote legacy denied secure

note "elapsed: $(($(date +%s) - started)) s"
tap_done
