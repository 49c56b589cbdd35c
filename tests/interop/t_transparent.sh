#!/bin/sh
# tests/interop/t_transparent.sh: fedgated in transparent mode between real
# XMPP servers (tests/interop/README.md, "The transparent topology"):
#
#   outside 203.0.113.0/24: the public DNS (SRV of corp.example -> the
#     DMZ's public face, of remote.example -> its server) and Prosody
#     serving remote.example;
#   DMZ: the inside's gateway (ip_forward on; it forwards only DNS, with
#     source NAT), fedgated with a public face on 203.0.113.10:5269 and a
#     transparent listener on 192.0.2.10:15269, and no internal listener;
#   inside 192.0.2.0/24: Prosody serving corp.internal (corp.example
#     outside, through fedgated's rewrite map), its default route via the
#     DMZ, resolving through the PUBLIC DNS. Nothing inside knows fedgated.
#
# nftables in the DMZ (contrib/nftables-redirect.nft, then
# contrib/nftables-tproxy.nft) diverts the internal Prosody's outbound
# 5269 to the transparent listener: its streams to remote.example, and its
# dialback verifications ("remote.example's authoritative server", port
# 5269 of 203.0.113.20), which fedgated answers as the internal face does.
#
# Variant 1, REDIRECT, peer rule "resolve original": fedgated reads the
# original destination from conntrack and connects there itself.
# Variant 2, TPROXY, the default "resolve srv": the listener has
# IP_TRANSPARENT, the original destination is the socket's local address,
# and fedgated finds remote.example by its own SRV lookup; the upstream is
# "transparent": fedgated connects to the internal server from
# remote.example's own address (contrib/nftables-upstream-transparent.nft
# brings the answers back), and the internal server logs that address.
# In both: presence and messages both ways between bob@corp.internal and
# alice@remote.example; fedgatectl sessions shows the intercepted legs and
# the choice of resolution; fedgatectl flows shows their conntrack entries.
# TAP on stdout; exit status non-zero on failure. Needs root.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
fg_init
started=$(date +%s)

if ! command -v nft >/dev/null 2>&1; then
	skip "nft is not installed"
	tap_done
	exit 0
fi

# ---- the world: the DMZ as the inside's gateway, public DNS only
topo_transparent || bail "topology could not be built"
topo_transparent_dns || bail "DNS server did not start"
check "inside: corp resolves through the public DNS (no split horizon)" \
    sh -c "ip netns exec $(ns_name corp) grep -qx 'nameserver $OUT_DNS' /etc/resolv.conf"
check "inside: corp's default route is the DMZ" \
    sh -c "ip netns exec $(ns_name corp) ip route show default | grep -q 'via $DMZ_INT'"
check "inside: corp sees remote.example's SRV as the world does" \
    dns_has corp "$OUT_DNS" _xmpp-server._tcp.remote.example SRV "SRV 0 0 5269 xmpp.remote.example"
topo_server corp || bail "Prosody of corp did not start"
topo_server remote || bail "Prosody of remote did not start"
check "the DMZ does not forward 5269: corp cannot reach remote.example itself" \
    not tcp_probe corp "$REMOTE_ADDR" 5269 1

L='leg [0-9]+'
# Every leg of flows has the entry of its own connection (the join is by
# the leg's addresses: the entry's original or reply tuple is local ->
# peer).
flows_joined() {
	fgctl -j flows | "$PYTHON" -c '
import json, sys
fs = json.load(sys.stdin).get("flows") or []
def own(f):
    c = f.get("conntrack")
    return c is not None and any(
        c[t]["src"] == f["local"] and c[t]["dst"] == f["peer"]
        for t in ("original", "reply"))
sys.exit(0 if fs and all(own(f) for f in fs) else 1)
'
}
# An internal outgoing leg's connection goes from remote.example's address
# to the internal server, and conntrack has it so.
flows_from_remote() {
	fgctl -j flows | "$PYTHON" -c '
import json, sys
fs = json.load(sys.stdin).get("flows") or []
src, dst = sys.argv[1] + ":", sys.argv[2]
sys.exit(0 if any(
    f["face"] == "internal" and f["direction"] == "out" and
    f["local"].startswith(src) and f["peer"] == dst and
    (f.get("conntrack") or {}).get("original", {}).get("src") == f["local"]
    for f in fs) else 1)
' "$REMOTE_ADDR" "$CORP_ADDR:5269"
}
flows_header() {
	fgctl flows | head -n 1 | grep -q 'ORIGINAL.*REPLY.*NAT.*STATE.*MARK'
}

# fedgated_transparent_conf FILE RESOLVE [UPSTREAM]: the shared
# configuration with the transparent listener in place of the internal
# one, and the peer rule for remote.example (RESOLVE: original, or "" for
# the default); UPSTREAM "transparent" makes the upstream transparent.
fedgated_transparent_conf() {
	topo_fedgated_conf "$1.in" || return 1
	grep -v '^listen internal ' "$1.in" |
	    sed "s/^\(	upstream .*\)\$/\1 ${3:-}/" >"$1" || return 1
	{
		echo "listen transparent on $DMZ_INT port $TRANSPARENT_PORT"
		echo "peer \"remote.example\" { allow; tls optional; verify none${2:+; resolve $2} }"
		echo "peer default { deny }"
	} >>"$1"
}

# variant MODE RESOLVE N [transparent]: one run of fedgated with nftables
# MODE (redirect, tproxy) and resolve RESOLVE (original, srv), clients
# aliceN and bobN; with "transparent", the upstream is transparent.
variant() {
	mode=$1
	resolve=$2
	n=$3
	up=${4:-}
	conf=$FG_TMP/fedgated-$mode.conf
	flog=$FG_TMP/fedgated-$mode.log
	cl=$(prosody_log corp)
	clmark=$(log_mark "$cl")
	if [ "$resolve" = original ]; then
		fedgated_transparent_conf "$conf" original "$up"
	else
		fedgated_transparent_conf "$conf" "" "$up"
	fi || bail "fedgated's configuration"
	topo_transparent_nft "$mode" || bail "nftables $mode rules"
	if [ -n "$up" ]; then
		topo_upstream_transparent_nft || bail "upstream transparent rules"
	fi
	check "$mode: contrib/nftables-$mode.nft loads in the DMZ" \
	    sh -c "ip netns exec $(ns_name dmz) nft list table inet fedgate | grep -q $mode"
	check "$mode: fedgated -n accepts the configuration, in the DMZ" \
	    sh -c "ip netns exec $(ns_name dmz) '$FEDGATED' -n -f '$conf' 2>&1 | grep -qx 'configuration OK'"
	fedgated_start_ns dmz "$conf" "$flog" "$DMZ_PUB:5269" \
	    "$DMZ_INT:$TRANSPARENT_PORT" || bail "fedgated did not start"
	ok "$mode: fedgated listens on its public face and its transparent listener"

	a=alice$n
	b=bob$n
	client_spawn "$a" remote alice@remote.example alice-pw "$REMOTE_ADDR"
	client_spawn "$b" corp bob@corp.internal bob-pw "$CORP_ADDR"
	client_online "$a" "$b" || bail "clients did not come online"

	# The inside starts: its stream to remote.example is intercepted.
	client_cmd "$b" subscribe alice@remote.example >/dev/null
	check "$mode: alice gets bob's subscription request, from bob@corp.example" \
	    client_expect "$a" "SUBSCRIBE-REQUEST bob@corp.example" 20
	check "$mode: bob gets alice's subscription request" \
	    client_expect "$b" "SUBSCRIBE-REQUEST alice@remote.example" 15
	check "$mode: alice sees bob's presence" \
	    client_expect "$a" "PRESENCE bob@corp.example available" 15
	check "$mode: bob sees alice's presence" \
	    client_expect "$b" "PRESENCE alice@remote.example available" 15
	t=$(token "$mode-out")
	client_cmd "$b" send alice@remote.example "$t" >/dev/null
	check "$mode: message bob -> alice delivered, from bob@corp.example" \
	    client_expect "$a" "RECEIVED $t FROM bob@corp.example" 10
	t=$(token "$mode-in")
	client_cmd "$a" send bob@corp.example "$t" >/dev/null
	check "$mode: message alice -> bob@corp.example delivered to bob@corp.internal" \
	    client_expect "$b" "RECEIVED $t FROM alice@remote.example" 10

	check "$mode: fedgated took corp's connection to remote.example's server ($mode)" \
	    has "$flog" "$L in internal: connection from $CORP_ADDR:[0-9]+ \\(transparent, $mode, original destination $REMOTE_ADDR:5269\\)"
	check "$mode: the intercepted stream authenticated corp.internal (verified with the upstream)" sh -c \
	    "grep -Eq '$L in internal corp\\.internal->remote\\.example: authenticated by dialback$' '$flog' &&
	     grep -Eq '$L out internal remote\\.example->corp\\.internal \\(verify\\): closed: verification done: valid' '$flog'"
	check "$mode: corp's dialback verification, intercepted too, answered by fedgated" sh -c \
	    "grep -Eq '$L in internal: db:verify remote\\.example->corp\\.internal id [^ ]+: valid' '$flog' &&
	     grep -Eq '$L out internal remote\\.example->corp\\.internal: authenticated by dialback, ready' '$flog'"
	if [ "$resolve" = original ]; then
		check "$mode: resolve original: fedgated connected where corp meant to go" \
		    has "$flog" "$L out public corp\\.example->remote\\.example: resolve original: connecting to $REMOTE_ADDR:5269"
		check "$mode: sessions: the public outgoing leg says resolve original" \
		    fgctl_has_session face=public direction=out remote=remote.example \
		    resolve=original "peer=$REMOTE_ADDR:5269"
	else
		check "$mode: resolve srv: no original destination used" \
		    lacks "$flog" "resolve original"
		check "$mode: sessions: the public outgoing leg says resolve srv" \
		    fgctl_has_session face=public direction=out remote=remote.example \
		    resolve=srv state=ready
	fi
	check "$mode: sessions: the intercepted leg, with its original destination" \
	    fgctl_has_session face=internal direction=in remote=corp.internal \
	    local=remote.example transparent="$mode" "original=$REMOTE_ADDR:5269"
	note "$mode: fedgatectl sessions:"
	fgctl sessions 2>&1 | diag
	note "$mode: fedgatectl flows:"
	fgctl flows 2>&1 | diag
	if [ "$mode" = redirect ]; then
		nat=redirect
		replysrc=$DMZ_INT:$TRANSPARENT_PORT
	else
		nat=none
		replysrc=$REMOTE_ADDR:5269
	fi
	check "$mode: flows: the intercepted leg's conntrack entry (NAT $nat)" \
	    fgctl_has_flow face=internal direction=in transparent="$mode" \
	    "conntrack.original.dst=$REMOTE_ADDR:5269" \
	    "conntrack.reply.src=$replysrc" "conntrack.reply.dst!=null" \
	    conntrack.nat="$nat" conntrack.state=ESTABLISHED
	check "$mode: flows: the public legs have entries too, without NAT" \
	    fgctl_has_flow face=public conntrack.nat=none \
	    conntrack.state=ESTABLISHED
	check "$mode: flows: every leg joined with its own connection's entry" \
	    flows_joined
	check "$mode: flows in text: a table with the conntrack columns" \
	    flows_header
	# Who the internal server saw connecting (Prosody's debug log:
	# "New connection FD 20 (SRC, SPORT, 192.0.2.30, 5269)").
	if [ -n "$up" ]; then
		check "$mode: upstream transparent: fedgated connected to corp from remote.example's address" \
		    has "$flog" "$L out internal remote\\.example->corp\\.internal: connected to $CORP_ADDR:5269 from $REMOTE_ADDR:[0-9]+ \\(upstream transparent\\)"
		check "$mode: upstream transparent: the internal server logs the real peer address" \
		    wait_log_from "$cl" "$clmark" "New connection FD [0-9]+ \\($REMOTE_ADDR, [0-9]+, $CORP_ADDR, 5269\\)" 5
		check "$mode: sessions: the internal outgoing leg says where it connects from" \
		    fgctl_has_session face=internal direction=out verify=false \
		    remote=corp.internal "source!=null"
		check "$mode: flows: that leg's connection is from remote.example's address" \
		    flows_from_remote
	else
		check "$mode: the internal server sees fedgated's inside address, as configured" sh -c \
		    "tail -n +$((clmark + 1)) '$cl' | grep -Eq 'New connection FD [0-9]+ \\($DMZ_INT, ' &&
		     ! tail -n +$((clmark + 1)) '$cl' | grep -Eq 'New connection FD [0-9]+ \\($REMOTE_ADDR, '"
	fi
	rl=$(prosody_log remote)
	check "$mode: remote.example has both s2s streams with corp.example, from the DMZ" sh -c \
	    "grep -q 'Incoming s2s connection corp.example->remote.example complete' '$rl' &&
	     grep -q 'Outgoing s2s connection remote.example->corp.example complete' '$rl'"
	check "$mode: the internal name corp.internal never reached the outside" sh -c \
	    "! grep -q 'corp\\.internal' '$rl' '$(client_out "$a")'"

	client_stop "$a" "$b"
	fedgated_stop
	rc=$?
	check "$mode: fedgated exits 0 on SIGTERM" test "$rc" -eq 0
	check "$mode: fedgated logged no warning" lacks "$flog" " warning: "
}

variant redirect original 1
# Fresh servers for the second variant: no stream survives from the first.
prosody_stop corp remote
topo_server corp || bail "Prosody of corp did not restart"
topo_server remote || bail "Prosody of remote did not restart"
variant tproxy srv 2 transparent

prosody_stop corp remote
note "elapsed: $(($(date +%s) - started)) s"
tap_done
