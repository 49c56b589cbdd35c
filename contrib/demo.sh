#!/bin/sh
# contrib/demo.sh BUILDDIR: fedgate's main job, end to end, in a few
# seconds (`./quickstart demo` runs it as root after the build).
#
# It builds a small federation in network namespaces with the interop
# toolkit (tests/interop/lib.sh): an outside network where Prosody serves
# remote.example, a DMZ where fedgated (from BUILDDIR) runs on a default
# configuration written here, and an inside network where an unchanged
# Prosody serves corp.internal, which the world knows as corp.example.
# Real XMPP clients on each side send a message through fedgated each way;
# then it shows `fedgatectl sessions` and `fedgatectl routes`, stops
# everything and removes the namespaces, also on Ctrl-C or a failure.
# Nothing leaves the namespaces: documentation addresses only, no routes
# out. The work directory (configs, logs) is removed at the end; set
# FG_KEEP=1 to keep it.
set -u
if [ $# -ne 1 ] || [ ! -x "$1/src/fedgated" ]; then
	echo "usage: contrib/demo.sh BUILDDIR (a build with src/fedgated)" >&2
	exit 64
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root, for network namespaces: sudo ./quickstart demo" >&2
	exit 1
fi
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$(cd "$1" && pwd)
export top_srcdir builddir
# shellcheck source=tests/interop/lib.sh source-path=SCRIPTDIR/..
. "$top_srcdir/tests/interop/lib.sh"
fg_init				# work directory, traps: teardown on any exit
# shellcheck disable=SC2034 # read by fg_cleanup
FG_SIGNAL_QUIET=1		# Ctrl-C is no failure: tear down quietly
trap 'echo; echo "==> interrupted: tearing everything down"; exit 130' INT
started=$(date +%s)

step=0
say() {
	step=$((step + 1))
	printf '\n==> %d. %s\n' "$step" "$*"
}
tell() { printf '    %s\n' "$*"; }
# die MESSAGE: stop here; the logs are printed and the namespaces removed.
die() {
	printf '\ndemo FAILED: %s\n(the logs of the run follow)\n' "$*" >&2
	exit 1
}

echo "fedgate demo: remote.example <-> fedgated <-> corp.internal (known outside as corp.example)"

say "Networks: outside, DMZ and inside, as network namespaces"
built=1
{ switch_add sw-out && switch_add sw-in; } || built=
for h in dnsout remote dmz dnsin corp; do
	[ -n "$built" ] && { ns_add "$h" || built=; }
done
if [ -n "$built" ] && ns_attach dnsout sw-out eth0 "$OUT_DNS/24" &&
    ns_attach remote sw-out eth0 "$REMOTE_ADDR/24" &&
    ns_attach dmz sw-out eth0 "$DMZ_PUB/24" &&
    ns_attach dmz sw-in eth1 "$DMZ_INT/24" &&
    ns_attach dnsin sw-in eth0 "$IN_DNS/24" &&
    ns_attach corp sw-in eth0 "$CORP_ADDR/24" &&
    ns_resolver remote "$OUT_DNS" && ns_resolver dmz "$OUT_DNS" &&
    ns_resolver corp "$IN_DNS"; then
	tell "outside 203.0.113.0/24: DNS $OUT_DNS, remote.example's server $REMOTE_ADDR"
	tell "DMZ: fedgated's public face $DMZ_PUB, internal face $DMZ_INT (no IP forwarding:"
	tell "     the only way across is through fedgated)"
	tell "inside 192.0.2.0/24: DNS $IN_DNS, corp.internal's server $CORP_ADDR"
else
	die "the namespaces could not be built"
fi

say "DNS: each side has its own view (split horizon)"
dns_start out dnsout "$OUT_DNS" \
    srv=corp.example,gw.corp.example,5269 "host=gw.corp.example,$DMZ_PUB" \
    srv=remote.example,xmpp.remote.example,5269 \
    "host=xmpp.remote.example,$REMOTE_ADDR" || die "the outside DNS did not start"
dns_start in dnsin "$IN_DNS" \
    srv=corp.internal,xmpp.corp.internal,5269 \
    "host=xmpp.corp.internal,$CORP_ADDR" \
    srv=remote.example,gw-in.corp.internal,5269 \
    "host=gw-in.corp.internal,$DMZ_INT" || die "the inside DNS did not start"
tell "outside: _xmpp-server._tcp.corp.example -> gw.corp.example:5269 = $DMZ_PUB (public face)"
tell "inside:  _xmpp-server._tcp.remote.example -> gw-in.corp.internal:5269 = $DMZ_INT (internal face)"

say "XMPP servers: Prosody on each side, with one user each"
topo_server remote || die "Prosody for remote.example did not start"
tell "remote.example at $REMOTE_ADDR (STARTTLS, self-signed certificate: dialback), user alice"
topo_server corp || die "Prosody for corp.internal did not start"
tell "corp.internal at $CORP_ADDR (Prosody's defaults; it knows nothing of fedgated), user bob"

say "fedgated's configuration (the demo's default), checked with fedgated -n"
conf=$FG_TMP/fedgated.conf
flog=$FG_TMP/fedgated.log
cert_make corp.example ca || die "no certificate for corp.example"
secret=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
cat >"$conf" <<CONF
# The demo's gateway: corp.example's federation goes through here.
control socket "$FG_CTL" mode 0600
log stderr
log level info
dialback secret "$secret"
resolver $OUT_DNS			# remote domains' SRV, outside view

listen public on $DMZ_PUB port 5269	# the world connects here
listen internal on $DMZ_INT port 5269	# corp.internal connects here

domain "corp.example" {
	upstream "$CORP_ADDR" port 5269	# the internal Prosody
	internal-name "corp.internal"		# the rewrite map
	certificate "$(cert_path corp.example ca)"
	key "$(key_path corp.example ca)"
}

# TLS when the peer can; its self-signed certificate is not checked.
peer "remote.example" { allow; tls optional; verify none }
peer default { deny }
CONF
grep -v '^dialback secret' "$conf" | sed 's/^/    | /'
tell "| dialback secret \"(random, made for this run)\""
ns_exec dmz "$FEDGATED" -n -f "$conf" 2>&1 | sed 's/^/    fedgated -n: /'

say "Starting fedgated in the DMZ"
fedgated_start_ns dmz "$conf" "$flog" "$DMZ_PUB:5269" "$DMZ_INT:5269" ||
    die "fedgated did not start"
tell "fedgated (pid $FG_PID) listens on $DMZ_PUB:5269 and $DMZ_INT:5269"

say "Clients: alice@remote.example outside, bob@corp.internal inside"
client_spawn alice remote alice@remote.example alice-pw "$REMOTE_ADDR"
client_spawn bob corp bob@corp.internal bob-pw "$CORP_ADDR"
client_online alice bob || die "the clients did not come online"
tell "both online"

# send FROM TO RECEIVER EXPECTED-FROM WHAT: one message, waited for.
send() {
	t=$(token "$5")
	t0=$(date +%s%N)
	client_cmd "$1" send "$2" "$t" >/dev/null || die "client $1 did not send"
	tell "$(client_jid "$1") sends \"$t\" to $2"
	client_expect "$3" "RECEIVED $t FROM $4" 15 ||
	    die "the message did not arrive: $(grep -E "^ERROR message $t " \
	    "$(client_out "$1")" || echo 'no answer')"
	tell "$(client_jid "$3") received it, from $4 ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
}
client_jid() { cat "$FG_TMP/client-$1/jid"; }

say "A message from outside in: alice -> bob@corp.example"
tell "(remote.example finds corp.example's server by SRV: fedgated; fedgated checks"
tell " remote.example's key with its server, then opens its own stream to the"
tell " internal Prosody as remote.example, where the name becomes corp.internal)"
send alice bob@corp.example bob alice@remote.example hello-from-alice

say "A message from inside out: bob -> alice@remote.example"
tell "(corp.internal's DNS sends it to fedgated's internal face; fedgated relays it"
tell " to remote.example on its own stream as corp.example)"
send bob alice@remote.example alice bob@corp.example hello-from-bob
if grep -q corp.internal "$(prosody_log remote)" "$(client_out alice)"; then
	die "the internal name corp.internal reached remote.example"
fi
tell "remote.example's server never saw the name corp.internal (its debug log has every stanza)"

say "How each stream authenticated (fedgated's log)"
tell "(a leg is one TCP stream: in = the peer connected, out = fedgated did;"
tell " (verify) = a connection that only checks a dialback key)"
grep -E 'authenticated|verification done|db:verify' "$flog" |
    sed -e 's/^[^ ]* info: /    /' -e 's/ (stanzas .*//'

say "fedgatectl sessions: the legs (one TCP stream each, one direction of stanzas)"
fgctl sessions | sed 's/^/    /'

say "fedgatectl routes: domain pairs crossing the gateway"
fgctl routes | sed 's/^/    /'

say "Stopping: fedgated closes every stream with <system-shutdown/>"
fedgated_stop || die "fedgated did not exit cleanly"
grep -E 'shutdown|stopped' "$flog" | grep -v 'closed: system shutdown' |
    sed 's/^[^ ]* info: /    /'
client_stop alice bob
prosody_stop remote corp
dns_stop out
dns_stop in
tell "clients, servers and DNS stopped; the namespaces go next"

printf '\nfedgate demo done in %d s.\n' "$(($(date +%s) - started))"
