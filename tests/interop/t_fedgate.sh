#!/bin/sh
# tests/interop/t_fedgate.sh: fedgated between real XMPP servers, deployed
# as it is meant to be (tests/interop/README.md, "The fedgate topology"):
#
#   outside 203.0.113.0/24: DNS (SRV of corp.example -> the DMZ's public
#     face) and one Prosody per kind of peer: remote.example (STARTTLS
#     optional, self-signed certificate: dialback), legacy.example (plain
#     TCP, dialback only), secure.example (TLS required, certificate from
#     the test CA, SASL EXTERNAL only), denied.example (denied by policy);
#   DMZ: fedgated built from this tree, public face 203.0.113.10:5269,
#     internal face 192.0.2.10:5269, resolving remote domains through the
#     outside DNS;
#   inside 192.0.2.0/24: the internal Prosody serving corp.internal, known
#     to the world as corp.example through fedgated's rewrite map
#     (internal-name), and an inside DNS that sends every remote domain's
#     SRV to the DMZ's internal face (split horizon).
#
# The internal Prosody is left as Prosody comes: s2s_require_encryption is
# true (0.12's default) and s2s_secure_auth false. So when it connects to
# fedgated's internal face (as corp.internal, to "remote.example") it
# requires STARTTLS; fedgated offers it with corp.example's certificate,
# which cannot be valid for remote.example, and Prosody falls back to
# dialback, as it does with any peer whose certificate it cannot check.
# Nothing is configured on it for fedgated: a real deployment would not
# either. Dialback on the inside, both ways:
#   - fedgated -> Prosody (as remote.example): Prosody checks fedgated's key
#     with "remote.example's authoritative server", which the inside DNS
#     says is the internal face. Prosody opens its own stream there,
#     authenticates it with its own db:result (which fedgated verifies
#     against the upstream, Prosody itself, as the upstream is not
#     "trusted") and sends the db:verify on that stream; fedgated answers
#     it for the key it minted.
#   - Prosody -> fedgated (as corp.internal): fedgated verifies the key with
#     a verify leg to the upstream.
# Outside, remote.example sends its db:verify for corp.example's key on its
# existing stream to the public face, in any state (a Prosody quirk).
#
# Scenarios: presence subscription both ways and presence changes between
# alice@remote.example and bob@corp.internal (alice sees bob@corp.example),
# messages both ways with unique tokens, XEP-0199 pings to the servers;
# legacy.example and secure.example federate both ways (the inside starting
# one, the outside the other); denied.example is refused with
# <policy-violation/> both ways and none of its stanzas reach the inside;
# neither name of corp leaks to the other side; fedgatectl sessions lists
# the legs as expected; SIGTERM ends fedgated cleanly.
# TAP on stdout; exit status non-zero on failure. Needs root.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
fg_init
started=$(date +%s)

# ---- the world: namespaces, split-horizon DNS, the five servers
topo_fedgate || bail "topology could not be built"
topo_fedgate_dns || bail "DNS servers did not start"
# mod_stanza_debug (shipped with Debian's Prosody): the debug logs hold
# whole stanzas, payloads included, for the leak checks below.
for h in corp remote legacy denied secure; do
	topo_server "$h" module=stanza_debug || bail "Prosody of $h did not start"
done
ok "topology, split-horizon DNS and five Prosody servers are up"

# ---- fedgated in the DMZ
conf=$FG_TMP/fedgated.conf
flog=$FG_TMP/fedgated.log
topo_fedgated_conf "$conf" || bail "fedgated's configuration"
cat >>"$conf" <<'CONF'

# TLS when the peer can, its (self-signed) certificate not checked: dialback
peer "remote.example" { allow; tls optional; verify none }
# an old server: plain TCP, dialback only
peer "legacy.example" { allow; tls none; verify none; auth dialback }
# TLS and a valid certificate required, SASL EXTERNAL only
peer "secure.example" { allow; tls required; verify required; auth external }
peer "denied.example" deny
peer default { deny }
CONF
check "fedgated -n accepts the configuration, in the DMZ" \
    sh -c "ip netns exec $(ns_name dmz) '$FEDGATED' -n -f '$conf' 2>&1 | grep -qx 'configuration OK'"
fedgated_start_ns dmz "$conf" "$flog" "$DMZ_PUB:5269" "$DMZ_INT:5269" ||
    bail "fedgated did not start"
ok "fedgated listens on its public and internal faces"

L='leg [0-9]+'
S2S_TLS='s2s(in|out)[0-9a-f]+[[:space:]]+info[[:space:]]+Stream encrypted'

client_spawn alice remote alice@remote.example alice-pw "$REMOTE_ADDR"
client_spawn bob corp bob@corp.internal bob-pw "$CORP_ADDR"
client_spawn lee legacy lee@legacy.example lee-pw "$LEGACY_ADDR"
client_spawn sam secure sam@secure.example sam-pw "$SECURE_ADDR"
client_spawn dan denied dan@denied.example dan-pw "$DENIED_ADDR"
client_online alice bob lee sam dan || bail "clients did not come online"
ok "alice@remote.example, bob@corp.internal, lee@legacy.example, sam@secure.example, dan@denied.example are online"

# ---- remote.example: TLS optional, self-signed certificate, dialback
client_cmd alice subscribe bob@corp.example >/dev/null
check "remote: bob@corp.internal gets alice's subscription request" \
    client_expect bob "SUBSCRIBE-REQUEST alice@remote.example" 15
check "remote: bob approves it (alice sees bob@corp.example)" \
    client_expect alice "SUBSCRIBED bob@corp.example" 10
check "remote: alice gets bob's subscription request, from bob@corp.example" \
    client_expect alice "SUBSCRIBE-REQUEST bob@corp.example" 10
check "remote: alice approves it" \
    client_expect bob "SUBSCRIBED alice@remote.example" 10
check "remote: bob sees alice's presence" \
    client_expect bob "PRESENCE alice@remote.example available" 10
check "remote: alice sees bob's presence" \
    client_expect alice "PRESENCE bob@corp.example available" 10
m=$(log_mark "$(client_out alice)")
client_cmd bob presence unavailable >/dev/null
check "remote: bob goes offline, alice sees it" wait_log_from \
    "$(client_out alice)" "$m" "^PRESENCE bob@corp\\.example unavailable$" 10
m=$(log_mark "$(client_out alice)")
client_cmd bob presence available >/dev/null
check "remote: bob comes back, alice sees it" wait_log_from \
    "$(client_out alice)" "$m" "^PRESENCE bob@corp\\.example available$" 10

t=$(token remote-in)
client_cmd alice send bob@corp.example "$t" >/dev/null
check "remote: message alice -> bob@corp.example delivered to bob@corp.internal" \
    client_expect bob "RECEIVED $t FROM alice@remote.example" 10
t=$(token remote-out)
t_out=$t
client_cmd bob send alice@remote.example "$t" >/dev/null
check "remote: message bob -> alice delivered, from bob@corp.example" \
    client_expect alice "RECEIVED $t FROM bob@corp.example" 10
client_cmd alice ping corp.example p-out >/dev/null
check "remote: alice pings the server corp.example (rewritten both ways)" \
    client_expect alice "PONG corp.example p-out" 10
client_cmd bob ping remote.example p-in >/dev/null
check "remote: bob pings the server remote.example" \
    client_expect bob "PONG remote.example p-in" 10

check "remote: fedgated verified remote.example's key with its server (SRV), on the public face" \
    has "$flog" "$L out public corp\\.example->remote\\.example \\(verify\\): closed: verification done: valid"
check "remote: fedgated authenticated remote.example by dialback after STARTTLS" sh -c \
    "grep -Eq '$L in public remote\\.example: tls TLSv1\\.[23] ' '$flog' &&
     grep -Eq '$L in public remote\\.example->corp\\.example: authenticated by dialback$' '$flog'"
check "remote: remote.example accepted fedgated's key for corp.example (answered on the public face)" sh -c \
    "grep -Eq '$L in public: db:verify corp\\.example->remote\\.example id [^ ]+: valid' '$flog' &&
     grep -Eq '$L out public corp\\.example->remote\\.example: authenticated by dialback, ready' '$flog'"
check "remote: inside, fedgated verified corp.internal's key with the upstream" sh -c \
    "grep -Eq '$L out internal remote\\.example->corp\\.internal \\(verify\\): closed: verification done: valid' '$flog' &&
     grep -Eq '$L in internal corp\\.internal->remote\\.example: authenticated by dialback$' '$flog'"
check "remote: inside, the internal Prosody checked fedgated's key on the internal face" sh -c \
    "grep -Eq '$L in internal: db:verify remote\\.example->corp\\.internal id [^ ]+: valid' '$flog' &&
     grep -Eq '$L out internal remote\\.example->corp\\.internal: authenticated by dialback, ready' '$flog'"
rl=$(prosody_log remote)
cl=$(prosody_log corp)
check "remote: remote.example logs both s2s streams with corp.example complete" sh -c \
    "grep -q 'Outgoing s2s connection remote.example->corp.example complete' '$rl' &&
     grep -q 'Incoming s2s connection corp.example->remote.example complete' '$rl'"
check "remote: corp.internal logs both s2s streams with remote.example complete" sh -c \
    "grep -q 'Outgoing s2s connection corp.internal->remote.example complete' '$cl' &&
     grep -q 'Incoming s2s connection remote.example->corp.internal complete' '$cl'"
check "remote: corp.internal's s2s streams are encrypted both ways; fedgated's certificate does not pass, so dialback" sh -c \
    "grep -Eq 's2sin[0-9a-f]+[[:space:]]+info[[:space:]]+Stream encrypted' '$cl' &&
     grep -Eq 's2sout[0-9a-f]+[[:space:]]+info[[:space:]]+Stream encrypted' '$cl' &&
     grep -q 'certificate chain validation result: invalid' '$cl' &&
     grep -q 'corp.internal:dialback[[:space:]]*debug[[:space:]]*Initiating dialback' '$cl'"

# ---- legacy.example: plain TCP, dialback only (the inside starts)
t=$(token legacy-out)
client_cmd bob send lee@legacy.example "$t" >/dev/null
check "legacy: message bob -> lee@legacy.example delivered, from bob@corp.example" \
    client_expect lee "RECEIVED $t FROM bob@corp.example" 15
t=$(token legacy-in)
client_cmd lee send bob@corp.example "$t" >/dev/null
check "legacy: message lee -> bob@corp.example delivered" \
    client_expect bob "RECEIVED $t FROM lee@legacy.example" 15
check "legacy: both public legs authenticated by dialback" sh -c \
    "grep -Eq '$L out public corp\\.example->legacy\\.example: authenticated by dialback, ready' '$flog' &&
     grep -Eq '$L in public legacy\\.example->corp\\.example: authenticated by dialback$' '$flog'"
legacy_plain() {
	fgctl_has_session face=public direction=out remote=legacy.example \
	    state=ready tls= &&
	    fgctl_has_session face=public direction=in remote=legacy.example tls= &&
	    ! fgctl_has_session face=public remote=legacy.example "tls!="
}
check "legacy: fedgated's public legs with legacy.example are plain TCP" legacy_plain
check "legacy: legacy.example's s2s streams stayed plain" \
    lacks "$(prosody_log legacy)" "$S2S_TLS"

# ---- secure.example: TLS required, CA certificates, SASL EXTERNAL (the outside starts)
t=$(token secure-in)
client_cmd sam send bob@corp.example "$t" >/dev/null
check "secure: message sam -> bob@corp.example delivered" \
    client_expect bob "RECEIVED $t FROM sam@secure.example" 15
t=$(token secure-out)
client_cmd bob send sam@secure.example "$t" >/dev/null
check "secure: message bob -> sam@secure.example delivered, from bob@corp.example" \
    client_expect sam "RECEIVED $t FROM bob@corp.example" 15
sl=$(prosody_log secure)
check "secure: fedgated accepted secure.example's certificate for SASL EXTERNAL, and used its own" sh -c \
    "grep -Eq '$L in public secure\\.example->corp\\.example: authenticated by sasl-external$' '$flog' &&
     grep -Eq '$L out public corp\\.example->secure\\.example: authenticated by sasl-external, ready' '$flog'"
check "secure: secure.example authenticated with SASL EXTERNAL both ways" sh -c \
    "grep -q 'SASL EXTERNAL with corp.example succeeded' '$sl' &&
     grep -q 'Accepting SASL EXTERNAL identity from corp.example' '$sl'"
check "secure: no dialback with secure.example on the public face" sh -c \
    "! grep -Eq '$L out public [^ ]*secure\\.example \\(verify\\)|$L in public: db:verify [^ ]*secure\\.example' '$flog' &&
     ! grep -q 'verified dialback key' '$sl'"

# ---- denied.example: refused before anything else, both ways
t=$(token denied-in)
client_cmd dan send bob@corp.example "$t" >/dev/null
check "denied: dan's message bounces" \
    client_wait dan "^ERROR message $t remote-server-timeout FROM bob@corp\\.example$" 15
check "denied: bob never got dan's message" \
    lacks "$(client_out bob)" "RECEIVED $t "
check "denied: fedgated refused denied.example's stream with <policy-violation/>" \
    has "$flog" "$L in public denied\\.example->corp\\.example: closed: refused: denied\\.example is denied by policy \\(sent policy-violation\\)"
check "denied: denied.example's Prosody got <policy-violation/>" sh -c \
    "grep -q 'Outgoing s2s stream denied.example->corp.example closed: policy-violation' '$(prosody_log denied)'"
check "denied: refused before TLS" \
    lacks "$(prosody_log denied)" "$S2S_TLS"
t=$(token denied-out)
client_cmd bob send dan@denied.example "$t" >/dev/null
check "denied: bob's message to dan bounces" \
    client_wait bob "^ERROR message $t remote-server-timeout FROM dan@denied\\.example$" 15
check "denied: dan never got bob's message" \
    lacks "$(client_out dan)" "RECEIVED $t "
check "denied: fedgated refused corp.internal's stream to denied.example with <policy-violation/>" sh -c \
    "grep -Eq '$L in internal corp\\.internal->denied\\.example: closed: refused: denied\\.example is denied by policy \\(sent policy-violation\\)' '$flog' &&
     grep -q 'Outgoing s2s stream corp.internal->denied.example closed: policy-violation' '$cl'"
check "denied: fedgated never connected anywhere for denied.example" sh -c \
    "! grep -Eq '$L out [a-z]+ [^ ]*denied\\.example' '$flog' &&
     ! grep -q 'query\\[[A-Z]*\\] [^ ]*denied\\.example from $DMZ_PUB' '$(dns_log out)'"

# ---- names: each side sees only its own name of corp (the Prosody debug
# logs hold every stanza, payload included, and every stream header they
# sent and received).
check "remote.example's log holds whole stanzas (the check below reads payloads)" \
    grep -q "<body>$t_out</body>" "$rl"
check "the internal name corp.internal never reached the outside servers or clients" \
    none_mention 'corp\.internal' "$rl" "$(prosody_log legacy)" "$sl" \
    "$(prosody_log denied)" "$(client_out alice)" "$(client_out lee)" \
    "$(client_out sam)" "$(client_out dan)" "$(dns_log out)"
check "the public name corp.example never reached the internal server or bob" \
    none_mention 'corp\.example' "$cl" "$(client_out bob)" "$(dns_log in)"

# ---- fedgatectl
note "fedgatectl sessions:"
fgctl sessions 2>&1 | diag
note "fedgatectl routes:"
fgctl routes 2>&1 | diag
check "sessions: a public incoming leg from remote.example, TLS, dialback" \
    fgctl_has_session face=public direction=in remote=remote.example \
    local=corp.example state=open auth=dialback "tls!="
check "sessions: an internal outgoing leg to corp.internal as remote.example, ready" \
    fgctl_has_session face=internal direction=out local=remote.example \
    remote=corp.internal state=ready auth=dialback verify=false
check "sessions: an internal incoming leg from corp.internal to remote.example" \
    fgctl_has_session face=internal direction=in local=remote.example \
    remote=corp.internal auth=dialback
check "sessions: a public outgoing leg to remote.example as corp.example, ready" \
    fgctl_has_session face=public direction=out local=corp.example \
    remote=remote.example state=ready
secure_external() {
	fgctl_has_session face=public direction=in remote=secure.example \
	    auth=sasl-external &&
	    fgctl_has_session face=public direction=out remote=secure.example \
	    auth=sasl-external
}
check "sessions: secure.example's legs use SASL EXTERNAL" secure_external
no_denied() {
	fgctl sessions >/dev/null &&
	    ! fgctl_has_session remote=denied.example &&
	    ! fgctl_has_session local=denied.example
}
check "sessions: no leg for denied.example" no_denied
check "routes: corp.internal (Prosody) acknowledged what fedgated relayed to it" \
    wait_until 40 fgctl_route_acked remote.example corp.internal
check "routes: remote.example (Prosody) acknowledged what fedgated relayed to it" \
    wait_until 40 fgctl_route_acked corp.example remote.example

# ---- SIGTERM: every stream closed with system-shutdown, clean exit
fedgated_stop
rc=$?
check "fedgated exits 0 on SIGTERM" test "$rc" -eq 0
check "fedgated logged its orderly stop" has "$flog" "info: fedgated stopped$"
check "corp.internal was told system-shutdown" has "$cl" \
    "Outgoing s2s stream corp\\.internal->remote\\.example closed: system-shutdown"
check "fedgated logged no warning" lacks "$flog" " warning: "

client_stop alice bob lee sam dan
prosody_stop corp remote legacy denied secure
note "elapsed: $(($(date +%s) - started)) s"
tap_done
