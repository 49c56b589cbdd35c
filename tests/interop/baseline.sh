#!/bin/sh
# tests/interop/baseline.sh: the interop toolkit proven without fedgated.
#
# Two Prosody servers, remote.example (203.0.113.20) and corp.example
# (203.0.113.30), in their own namespaces on one segment with a DNS server
# (203.0.113.53) holding their SRV records, federate directly:
#   plain  s2s over plain TCP, dialback only (no STARTTLS offered)
#   tls    s2s with STARTTLS, self-signed certificates, so dialback still
#          authenticates (s2s_secure_auth = false)
#   external  STARTTLS with certificates from a CA both trust and
#          s2s_secure_auth = true: SASL EXTERNAL (XEP-0178), no dialback
#   forged DNS sends corp.example's dialback check for remote.example to an
#          impostor Prosody (203.0.113.40) that also claims remote.example:
#          it denies the key, the stream fails, the message bounces
# Clients: alice@remote.example and bob@corp.example subscribe to each
# other's presence, see it, and exchange messages with unique tokens.
# TAP on stdout; exit status non-zero on failure. Needs root.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
fg_init
started=$(date +%s)

DNS=203.0.113.53
REMOTE=203.0.113.20
CORP=203.0.113.30
IMPOSTER=203.0.113.40

# ---- topology: one segment, four hosts
if switch_add lan && ns_add dns && ns_add remote && ns_add corp && ns_add imposter &&
    ns_attach dns lan eth0 "$DNS/24" &&
    ns_attach remote lan eth0 "$REMOTE/24" &&
    ns_attach corp lan eth0 "$CORP/24" &&
    ns_attach imposter lan eth0 "$IMPOSTER/24" &&
    ns_resolver remote "$DNS" && ns_resolver corp "$DNS" &&
    ns_resolver imposter "$DNS"; then
	ok "topology: namespaces, bridge, veth pairs, resolvers"
else
	bail "topology could not be built"
fi
check "remote reaches the DNS host over the segment" tcp_reachable remote "$DNS" 53

GOOD_DNS="srv=remote.example,xmpp.remote.example,5269
    host=xmpp.remote.example,$REMOTE
    srv=corp.example,xmpp.corp.example,5269
    host=xmpp.corp.example,$CORP"
# shellcheck disable=SC2086
dns_start lan dns "$DNS" $GOOD_DNS || bail "dnsmasq did not start"
ok "dnsmasq answers on $DNS:53"
check "SRV of corp.example as seen from remote" \
    dns_has remote "$DNS" _xmpp-server._tcp.corp.example SRV "SRV 0 0 5269 xmpp.corp.example"
check "A of xmpp.remote.example as seen from corp" \
    dns_has corp "$DNS" xmpp.remote.example A "A $REMOTE"

# has_line FILE REGEX / lacks_line FILE REGEX
has_line() { grep -Eq -- "$2" "$1"; }
lacks_line() { ! grep -Eq -- "$2" "$1"; }

# start_pair TAG CONFIG-OPTION...: both servers (prosody_config options for
# both) and both clients; 0 when all are up.
start_pair() {
	tag=$1
	shift
	cfg_r=$(prosody_config "remote-$tag" "$REMOTE" remote.example "$@")
	cfg_c=$(prosody_config "corp-$tag" "$CORP" corp.example "$@")
	if ! prosody_adduser "$cfg_r" alice@remote.example alice-pw ||
	    ! prosody_adduser "$cfg_c" bob@corp.example bob-pw; then
		not_ok "$tag: accounts created with prosodyctl register"
		return 1
	fi
	if prosody_start "remote-$tag" remote "$cfg_r" &&
	    prosody_start "corp-$tag" corp "$cfg_c"; then
		ok "$tag: both Prosody servers listen on c2s and s2s"
	else
		not_ok "$tag: both Prosody servers listen on c2s and s2s"
		return 1
	fi
	client_spawn "alice-$tag" remote alice@remote.example alice-pw "$REMOTE"
	client_spawn "bob-$tag" corp bob@corp.example bob-pw "$CORP"
	if client_online "alice-$tag" "bob-$tag"; then
		ok "$tag: alice@remote.example and bob@corp.example are online"
	else
		not_ok "$tag: alice@remote.example and bob@corp.example are online"
		return 1
	fi
}

stop_pair() {
	client_stop "alice-$1" "bob-$1"
	prosody_stop "remote-$1" "corp-$1"
}

# both_logs REGEX: the logs of both servers of the current pair match.
both_logs() {
	grep -Eq -- "$1" "$rl" && grep -Eq -- "$1" "$cl"
}
# neither_log REGEX
neither_log() {
	! grep -Eq -- "$1" "$rl" && ! grep -Eq -- "$1" "$cl"
}

# federate MODE: presence both ways, messages both ways, and the servers'
# logs show how the s2s streams were set up. MODE:
#   plain     tls=off: plain TCP, dialback only
#   tls       STARTTLS, self-signed certificates (untrusted): dialback
#   external  STARTTLS, certificates from a CA both trust, s2s_secure_auth:
#             SASL EXTERNAL (XEP-0178), no dialback
federate() {
	tag=$1
	case $tag in
	plain)		set -- tls=off cert=self ;;
	tls)		set -- tls=on cert=self ;;
	external)	set -- tls=on cert=ca trust_ca=yes secure_auth=true ;;
	esac
	if ! start_pair "$tag" "$@"; then
		stop_pair "$tag"
		return
	fi
	a=alice-$tag
	b=bob-$tag
	client_cmd "$a" subscribe bob@corp.example >/dev/null
	check "$tag: bob approves alice's subscription" \
	    client_expect "$a" "SUBSCRIBED bob@corp.example" 15
	check "$tag: alice approves bob's subscription" \
	    client_expect "$b" "SUBSCRIBED alice@remote.example" 15
	check "$tag: bob sees alice's presence" \
	    client_expect "$b" "PRESENCE alice@remote.example available" 10
	check "$tag: alice sees bob's presence" \
	    client_expect "$a" "PRESENCE bob@corp.example available" 10

	t1=$(token a2b)
	client_cmd "$a" send bob@corp.example "$t1" >/dev/null
	check "$tag: message remote.example -> corp.example delivered" \
	    client_expect "$b" "RECEIVED $t1 FROM alice@remote.example" 10
	t2=$(token b2a)
	client_cmd "$b" send alice@remote.example "$t2" >/dev/null
	check "$tag: message corp.example -> remote.example delivered" \
	    client_expect "$a" "RECEIVED $t2 FROM bob@corp.example" 10

	rl=$(prosody_log "remote-$tag")
	cl=$(prosody_log "corp-$tag")
	check "$tag: remote.example logs both s2s streams complete" sh -c \
	    "grep -q 'Outgoing s2s connection remote.example->corp.example complete' '$rl' &&
	     grep -q 'Incoming s2s connection corp.example->remote.example complete' '$rl'"
	check "$tag: corp.example logs both s2s streams complete" sh -c \
	    "grep -q 'Outgoing s2s connection corp.example->remote.example complete' '$cl' &&
	     grep -q 'Incoming s2s connection remote.example->corp.example complete' '$cl'"
	enc='s2s(in|out)[0-9a-f]+[[:space:]]+info[[:space:]]+Stream encrypted'
	case $tag in
	plain)
		check "$tag: dialback offered, STARTTLS not offered on s2s" sh -c \
		    "grep -q 'Sending stream features: <stream:features>.*<dialback' '$cl' &&
		     ! grep -q 'Sending stream features: <stream:features>.*<starttls' '$cl'"
		check "$tag: s2s streams stayed plain TCP" neither_log "$enc"
		;;
	*)
		check "$tag: STARTTLS offered on s2s" both_logs \
		    "Sending stream features: <stream:features>.*<starttls"
		check "$tag: s2s streams encrypted in both directions" sh -c \
		    "grep -Eq 's2sin[0-9a-f]+[[:space:]]+info[[:space:]]+Stream encrypted' '$rl' &&
		     grep -Eq 's2sout[0-9a-f]+[[:space:]]+info[[:space:]]+Stream encrypted' '$rl' &&
		     grep -Eq 's2sin[0-9a-f]+[[:space:]]+info[[:space:]]+Stream encrypted' '$cl' &&
		     grep -Eq 's2sout[0-9a-f]+[[:space:]]+info[[:space:]]+Stream encrypted' '$cl'"
		;;
	esac
	case $tag in
	external)
		check "$tag: each server accepted the other's certificate" \
		    both_logs "certificate identity validation result: valid"
		check "$tag: both authenticated with SASL EXTERNAL" sh -c \
		    "grep -q 'SASL EXTERNAL with corp.example succeeded' '$rl' &&
		     grep -q 'Accepting SASL EXTERNAL identity from remote.example' '$cl' &&
		     grep -q 'SASL EXTERNAL with remote.example succeeded' '$cl' &&
		     grep -q 'Accepting SASL EXTERNAL identity from corp.example' '$rl'"
		check "$tag: no dialback key was verified" neither_log "verified dialback key"
		;;
	*)
		[ "$tag" = tls ] &&
		    check "$tag: peer certificates are self-signed, so not trusted" \
		    both_logs "certificate error\\(s\\) at depth 0: self-signed certificate"
		check "$tag: both authoritative servers verified a dialback key as valid" \
		    both_logs "verified dialback key\\.\\.\\. it is valid"
		;;
	esac
	stop_pair "$tag"
	check "$tag: servers and clients stopped" \
	    not ns_listening corp tcp "$CORP" 5269
}

federate plain
federate tls
federate external

# ---- forged DNS: remote.example's SRV points at an impostor
dns_stop lan
# shellcheck disable=SC2086
if dns_start lan dns "$DNS" \
    srv=remote.example,xmpp.imposter.example,5269 \
    host=xmpp.imposter.example,$IMPOSTER \
    srv=corp.example,xmpp.corp.example,5269 host=xmpp.corp.example,$CORP; then
	ok "forged: DNS restarted with remote.example -> $IMPOSTER"
else
	not_ok "forged: DNS restarted with remote.example -> $IMPOSTER"
fi
cfg_i=$(prosody_config imposter "$IMPOSTER" remote.example tls=off)
if prosody_start imposter imposter "$cfg_i" && start_pair forged tls=off; then
	t3=$(token forged)
	client_cmd alice-forged send bob@corp.example "$t3" >/dev/null
	check "forged: alice's message bounces (remote-server-timeout)" \
	    client_wait alice-forged "^ERROR message $t3 remote-server-timeout FROM bob@corp.example$" 20
	check "forged: bob did not receive it" \
	    lacks_line "$(client_out bob-forged)" "RECEIVED $t3 "
	check "forged: the impostor calls the key incorrect" \
	    has_line "$(prosody_log imposter)" "Asked to verify a dialback key that was incorrect"
	check "forged: corp.example logs the denied key" \
	    has_line "$(prosody_log corp-forged)" "authoritative server for remote.example denied the key"
	check "forged: remote.example logs the failed dialback" \
	    has_line "$(prosody_log remote-forged)" \
	    "Outgoing s2s stream remote.example->corp.example closed: dialback authentication failed"
fi
client_stop alice-forged bob-forged
prosody_stop remote-forged corp-forged imposter

note "elapsed: $(($(date +%s) - started)) s"
tap_done
