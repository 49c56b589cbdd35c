#!/bin/sh
# tests/interop/t_muc.sh: group chat on a subdomain of the local domain,
# between real servers, and a leak check of the internal names.
#
#   outside: remote.example (Prosody, as in t_fedgate.sh) and a DNS that
#     sends both corp.example and conference.corp.example to the DMZ;
#   DMZ: fedgated with `subdomains "conference"` on corp.example (its
#     certificate from the test CA is valid for *.corp.example);
#   inside: the internal Prosody serving corp.internal with a MUC component
#     conference.corp.internal (rooms unlocked at creation, real JIDs shown
#     to every occupant, history on: 20 messages).
#
# bob@corp.internal makes room@conference.corp.internal and says something
# before anyone else is there; alice@remote.example joins
# room@conference.corp.example and receives that as history, with bob's
# real JID (bob@corp.example) in his occupant presence; group chat both
# ways; bob, in a second room, invites alice through the room (a mediated
# invitation, muc#user) and she joins it. Then every log on the outside —
# remote.example's Prosody at debug level with Prosody's mod_stanza_debug
# (every stanza it sent and received whole, payload included: the debug
# level alone logs only start tags), its stream headers, alice's client
# events, the outside DNS's queries — is
# read: none holds "corp.internal", and each holds traffic of the test (so
# the check cannot pass on an empty log). Inside, nothing names
# corp.example. fedgated: the subdomain's own dialback pairs on both faces,
# its sessions under its public name.
#
# The invitation carries a body of its own (the token): without one,
# Prosody writes "bob@corp.internal invited you to the room
# lounge@conference.corp.internal" into the body it adds, and fedgated
# rewrites JIDs, not text (fedgated.conf(5), internal-name): that text
# would reach the outside.
#
# The inside's MUC component federates through the inside Prosody's s2s
# (tls and dialback are inherited by components), its certificate being
# corp.internal's, valid for *.corp.internal.
# TAP on stdout; exit status non-zero on failure. Needs root.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
fg_init
started=$(date +%s)

# ---- the world
TOPO_DNS_OUT_EXTRA="srv=conference.corp.example,gw.corp.example,5269"
topo_fedgate || bail "topology could not be built"
topo_fedgate_dns || bail "DNS servers did not start"
topo_server corp \
    'global=Component "conference.corp.internal" "muc"' \
    'global=    muc_room_locking = false' \
    'global=    muc_room_default_public_jids = true' \
    'global=    muc_room_default_history_length = 20' module=stanza_debug ||
    bail "the internal Prosody (with its MUC component) did not start"
topo_server remote module=stanza_debug || bail "Prosody of remote.example did not start"
ok "topology, split-horizon DNS, the internal Prosody with conference.corp.internal, remote.example"
check "outside DNS sends conference.corp.example to the gateway" \
    dns_has remote "$OUT_DNS" _xmpp-server._tcp.conference.corp.example SRV \
    "SRV 0 0 5269 gw.corp.example"

# ---- fedgated
conf=$FG_TMP/fedgated.conf
flog=$FG_TMP/fedgated.log
topo_fedgated_conf "$conf" || bail "fedgated's configuration"
sed -i 's/^\tinternal-name "corp.internal"$/&\n\tsubdomains "conference"/' "$conf"
cat >>"$conf" <<'CONF'
peer "remote.example" { allow; tls optional; verify none }
peer default { deny }
CONF
check "the configuration covers the subdomain conference" \
    grep -q '^	subdomains "conference"$' "$conf"
fedgated_start_ns dmz "$conf" "$flog" "$DMZ_PUB:5269" "$DMZ_INT:5269" ||
    bail "fedgated did not start"
ok "fedgated listens on its public and internal faces"

# all_mention REGEX FILE...: every FILE has a match.
all_mention() {
	_re=$1
	shift
	for _f in "$@"; do
		grep -Eq -- "$_re" "$_f" || { note "$_f lacks $_re"; return 1; }
	done
}
L='leg [0-9]+'
IN_ROOM=room@conference.corp.internal
OUT_ROOM=room@conference.corp.example

client_spawn alice remote alice@remote.example alice-pw "$REMOTE_ADDR"
client_spawn bob corp bob@corp.internal bob-pw "$CORP_ADDR"
client_online alice bob || bail "clients did not come online"
ok "alice@remote.example and bob@corp.internal are online"

# ---- bob makes the room and speaks first: history for alice
client_cmd bob join "$IN_ROOM" bob >/dev/null
check "bob@corp.internal creates and joins $IN_ROOM" \
    client_expect bob "JOINED $IN_ROOM" 10
h=$(token history)
client_cmd bob groupchat "$IN_ROOM" "$h" >/dev/null
check "bob's first message comes back to him from the room" \
    client_expect bob "GROUPCHAT $h FROM $IN_ROOM/bob" 10

# ---- alice joins from outside, through fedgated
client_cmd alice join "$OUT_ROOM" alice >/dev/null
check "alice@remote.example joins $OUT_ROOM" \
    client_expect alice "JOINED $OUT_ROOM" 20
check "alice receives the room's history, from $OUT_ROOM/bob" \
    client_expect alice "HISTORY $h FROM $OUT_ROOM/bob" 10
check "alice sees bob's real JID under its public name" \
    client_wait alice "^OCCUPANT $OUT_ROOM/bob bob@corp\\.example/" 10
check "bob sees alice join, with her real JID" \
    client_wait bob "^OCCUPANT $IN_ROOM/alice alice@remote\\.example/" 10

# ---- group chat both ways
t=$(token gc-out)
client_cmd bob groupchat "$IN_ROOM" "$t" >/dev/null
check "bob's group chat message reaches alice, from $OUT_ROOM/bob" \
    client_expect alice "GROUPCHAT $t FROM $OUT_ROOM/bob" 10
t=$(token gc-in)
client_cmd alice groupchat "$OUT_ROOM" "$t" >/dev/null
check "alice's group chat message reaches bob, from $IN_ROOM/alice" \
    client_expect bob "GROUPCHAT $t FROM $IN_ROOM/alice" 10
check "and comes back to alice from the room" \
    client_expect alice "GROUPCHAT $t FROM $OUT_ROOM/alice" 10

# ---- a mediated invitation to a second room
client_cmd bob join lounge@conference.corp.internal bob >/dev/null
check "bob makes lounge@conference.corp.internal" \
    client_expect bob "JOINED lounge@conference.corp.internal" 10
t=$(token invite)
client_cmd bob invite lounge@conference.corp.internal alice@remote.example \
    "$t" >/dev/null
check "alice is invited to lounge@conference.corp.example by bob@corp.example" \
    client_wait alice \
    "^INVITED lounge@conference\\.corp\\.example FROM bob@corp\\.example(/|$)" 15
client_cmd alice join lounge@conference.corp.example alice >/dev/null
check "alice accepts: she joins lounge@conference.corp.example" \
    client_expect alice "JOINED lounge@conference.corp.example" 15

# ---- fedgated: the subdomain's own pairs and sessions
check "public face: remote.example authenticated for conference.corp.example by dialback" \
    has "$flog" "$L in public remote\\.example->conference\\.corp\\.example: authenticated by dialback"
check "public face: fedgated's key for conference.corp.example was valid to remote.example" sh -c \
    "grep -Eq '$L in public: db:verify conference\\.corp\\.example->remote\\.example id [^ ]+: valid' '$flog' &&
     grep -Eq '$L out public conference\\.corp\\.example->remote\\.example: authenticated by dialback, ready' '$flog'"
check "internal face: the component's stream authenticated as conference.corp.internal" \
    has "$flog" "$L in internal conference\\.corp\\.internal->remote\\.example: authenticated by dialback"
check "internal face: the inside checked fedgated's key for conference.corp.internal" sh -c \
    "grep -Eq '$L in internal: db:verify remote\\.example->conference\\.corp\\.internal id [^ ]+: valid' '$flog' &&
     grep -Eq '$L out internal remote\\.example->conference\\.corp\\.internal: authenticated by dialback, ready' '$flog'"
note "fedgatectl sessions:"
fgctl sessions 2>&1 | diag
check "sessions: a public leg to remote.example as conference.corp.example, ready" \
    fgctl_has_session face=public direction=out local=conference.corp.example \
    remote=remote.example state=ready
check "sessions: a public leg from remote.example to conference.corp.example" \
    fgctl_has_session face=public direction=in local=conference.corp.example \
    remote=remote.example

# ---- the leak check
rl=$(prosody_log remote)
cl=$(prosody_log corp)
ac=$(client_out alice)
# outside_traffic: what the leak check reads holds the test's stanzas,
# payloads included (attribute order varies: one grep per attribute).
outside_traffic() {
	grep 'RECV: <message[^>]*from=.room@conference\.corp\.example/bob' "$rl" |
	    grep "$h" | grep -q '<delay [^>]*from=.room@conference\.corp\.example.' &&
	    grep 'RECV: <presence' "$rl" |
	    grep -q '<item [^>]*jid=.bob@corp\.example/' &&
	    grep 'RECV: <message.*<invite from=.bob@corp\.example/' "$rl" |
	    grep -q 'jid=.lounge@conference\.corp\.example.' &&
	    grep -q "^HISTORY $h" "$ac" &&
	    grep -q 'conference\.corp\.example' "$(dns_log out)"
}
check "the outside logs hold the test's traffic, payloads included (the check is not vacuous)" \
    outside_traffic
check "no outside log names corp.internal (remote.example's Prosody, alice, the outside DNS)" \
    none_mention 'corp\.internal' "$rl" "$ac" "$(dns_log out)"
check "the inside logs hold the test's traffic" \
    all_mention 'conference\.corp\.internal' "$cl" "$(client_out bob)"
check "no inside log names corp.example (the internal Prosody, bob, the inside DNS)" \
    none_mention 'corp\.example' "$cl" "$(client_out bob)" "$(dns_log in)"

fedgated_stop
rc=$?
check "fedgated exits 0 on SIGTERM" test "$rc" -eq 0
check "fedgated logged no warning" lacks "$flog" " warning: "

client_stop alice bob
prosody_stop corp remote
note "elapsed: $(($(date +%s) - started)) s"
tap_done
