#!/bin/sh
# tests/interop/t_lifecycle.sh: federation through fedgated over time, with
# real servers (the fedgate topology, tests/interop/README.md; fedgated
# configured as in t_fedgate.sh for remote.example):
#   - first contact both ways at once: each side sends a burst of messages
#     before any stream exists; they queue while the legs authenticate
#     (the dialback checks of both directions cross) and arrive complete
#     and in order;
#   - reload: a broken file is refused and federation carries on; a file
#     that denies remote.example closes its legs with <policy-violation/>
#     and its messages bounce both ways; allowing it again restores
#     federation;
#   - remote.example's Prosody restarts (with a new dialback secret):
#     fedgated's public legs end, new ones are made on demand, while the
#     internal legs carry on;
#   - fedgated restarts, now trusting the upstream: while it is down the
#     servers' messages bounce (connection refused: remote-server-not-found);
#     once it is back, both servers open new streams and the internal
#     Prosody's dialback is accepted without a check back ("trusted");
#   - the internal Prosody restarts: fedgated's internal legs end and are
#     made again when the next stanza comes.
# Between the steps, alice@remote.example and bob@corp.internal exchange
# messages with unique tokens both ways.
# TAP on stdout; exit status non-zero on failure. Needs root.
set -u
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
fg_init
started=$(date +%s)

topo_fedgate || bail "topology could not be built"
topo_fedgate_dns || bail "DNS servers did not start"
{ topo_server corp && topo_server remote; } || bail "Prosody did not start"
conf=$FG_TMP/fedgated.conf
flog=$FG_TMP/fedgated.log
topo_fedgated_conf "$FG_TMP/base.conf" || bail "fedgated's configuration"
# fedgated_conf RULE: the configuration, with RULE for remote.example.
fedgated_conf() {
	cat "$FG_TMP/base.conf" >"$conf.new" &&
	    printf '\n%s\npeer default { deny }\n' "$1" >>"$conf.new" &&
	    mv "$conf.new" "$conf"
}
ALLOW='peer "remote.example" { allow; tls optional; verify none }'
fedgated_conf "$ALLOW"
fedgated_start_ns dmz "$conf" "$flog" "$DMZ_PUB:5269" "$DMZ_INT:5269" ||
    bail "fedgated did not start"
ok "topology, DNS, corp.internal, remote.example and fedgated are up"

L='leg [0-9]+'
# exchange TAG ALICE BOB: a message each way between the clients ALICE
# (alice@remote.example) and BOB (bob@corp.internal).
exchange() {
	w=$(echo "$1" | tr ' ' -)
	t=$(token "$w-in")
	client_cmd "$2" send bob@corp.example "$t" >/dev/null
	check "$1: message alice -> bob@corp.example delivered" \
	    client_expect "$3" "RECEIVED $t FROM alice@remote.example" 15
	t=$(token "$w-out")
	client_cmd "$3" send alice@remote.example "$t" >/dev/null
	check "$1: message bob -> alice delivered, from bob@corp.example" \
	    client_expect "$2" "RECEIVED $t FROM bob@corp.example" 15
}
# since MARK REGEX: a line fedgated logged after MARK matches.
since() {
	tail -n "+$(($1 + 1))" "$flog" | grep -Eq -- "$2"
}
# Whether fedgatectl lists a public leg with remote.example, an internal
# leg with corp.internal.
public_remote_legs() {
	fgctl_has_session face=public remote=remote.example
}
internal_legs() {
	fgctl_has_session face=internal remote=corp.internal
}

{ client_start alice remote alice@remote.example alice-pw "$REMOTE_ADDR" &&
    client_start bob corp bob@corp.internal bob-pw "$CORP_ADDR"; } ||
    bail "clients did not come online"

# ---- first contact, both ways at once
b=$(token burst)
i=1
while [ "$i" -le 10 ]; do
	client_cmd alice send bob@corp.example "$b-in-$i" >/dev/null
	client_cmd bob send alice@remote.example "$b-out-$i" >/dev/null
	i=$((i + 1))
done
# in_order CLIENT PREFIX: the client received PREFIX-1 .. PREFIX-10, in order.
in_order() {
	[ "$(sed -n "s/^RECEIVED \($2-[0-9]*\) FROM .*/\1/p" "$(client_out "$1")" |
	    tr '\n' ' ')" = "$(seq -f "$2-%g" 1 10 | tr '\n' ' ')" ]
}
check "first contact: bob got alice's 10 messages, in order" \
    wait_until 15 in_order bob "$b-in"
check "first contact: alice got bob's 10 messages, in order" \
    wait_until 15 in_order alice "$b-out"
check "first contact: fedgated bounced and dropped nothing" \
    not grep -Eq 'route .*: (bounced|dropped) ' "$flog"

# ---- reload
m=$(log_mark "$flog")
cp "$conf" "$FG_TMP/good.conf"
printf 'peer "broken.example" { allw }\n' >>"$conf"
# reload_ok / reload_refused: fedgatectl reload, and what it said.
reload_ok() {
	fgctl reload >"$FG_TMP/reload.out" 2>&1 &&
	    grep -qx 'reload OK' "$FG_TMP/reload.out"
}
reload_refused() {
	! fgctl reload >"$FG_TMP/reload.out" 2>&1 &&
	    grep -q '^reload refused' "$FG_TMP/reload.out" &&
	    grep -q 'fedgated\.conf:[0-9]*: ' "$FG_TMP/reload.out"
}
check "reload: a broken file is refused, with its error" reload_refused
diag <"$FG_TMP/reload.out"
cp "$FG_TMP/good.conf" "$conf"
check "reload: the legs stayed" public_remote_legs
exchange "reload refused" alice bob

fedgated_conf 'peer "remote.example" deny'
check "reload: a file that denies remote.example is accepted" reload_ok
check "reload: fedgated closed the legs of remote.example with <policy-violation/>" \
    wait_until 5 since "$m" \
    "$L in public remote\\.example->corp\\.example: closed: denied by the reloaded policy \\(sent policy-violation\\)"
check "reload: and the internal Prosody's stream to remote.example" since "$m" \
    "$L in internal corp\\.internal->remote\\.example: closed: denied by the reloaded policy \\(sent policy-violation\\)"
check "reload: remote.example's Prosody was told policy-violation" \
    wait_log "$(prosody_log remote)" "s2s stream .*closed: policy-violation" 5
check "reload: no public leg with remote.example is left" \
    wait_until 5 not public_remote_legs
t=$(token denied-in)
client_cmd alice send bob@corp.example "$t" >/dev/null
check "reload: now alice's message bounces" \
    client_wait alice "^ERROR message $t remote-server-timeout FROM bob@corp\\.example$" 15
check "reload: bob did not get it" not grep -q "RECEIVED $t " "$(client_out bob)"
check "reload: fedgated refused remote.example's new stream" since "$m" \
    "$L in public remote\\.example->corp\\.example: closed: refused: remote\\.example is denied by policy \\(sent policy-violation\\)"
t=$(token denied-out)
client_cmd bob send alice@remote.example "$t" >/dev/null
check "reload: bob's message to alice bounces" \
    client_wait bob "^ERROR message $t remote-server-timeout FROM alice@remote\\.example$" 15
check "reload: alice did not get it" not grep -q "RECEIVED $t " "$(client_out alice)"

fedgated_conf "$ALLOW"
check "reload: a file that allows remote.example again is accepted" reload_ok
exchange "reload allowed again" alice bob

# ---- remote.example restarts
m=$(log_mark "$flog")
client_stop alice
prosody_stop remote
check "remote restart: fedgated's public legs with remote.example ended (system-shutdown)" \
    wait_until 10 since "$m" \
    "$L (in|out) public [^ ]*remote\\.example[^ ]*: closed: peer sent stream error system-shutdown"
check "remote restart: none is listed any more" \
    wait_until 10 not public_remote_legs
check "remote restart: the internal legs carry on" internal_legs
prosody_start remote remote "$(dirname "$(prosody_log remote)")/prosody.cfg.lua" ||
    bail "remote.example did not restart"
client_start alice2 remote alice@remote.example alice-pw "$REMOTE_ADDR" ||
    bail "alice did not come back online"
exchange "remote restart" alice2 bob
new_public_legs() {
	since "$m" "$L in public remote\\.example->corp\\.example: authenticated by dialback$" &&
	    since "$m" "$L out public corp\\.example->remote\\.example: authenticated by dialback, ready"
}
check "remote restart: new public legs, both ways" new_public_legs

# ---- fedgated restarts, trusting the upstream
fedgated_stop
rc=$?
check "fedgated restart: fedgated exits 0 on SIGTERM" test "$rc" -eq 0
check "fedgated restart: corp.internal was told system-shutdown" \
    wait_log "$(prosody_log corp)" "s2s stream .*closed: system-shutdown" 5
t=$(token down)
client_cmd alice2 send bob@corp.example "$t" >/dev/null
check "fedgated restart: while it is down, alice's message bounces (remote-server-not-found)" \
    client_wait alice2 "^ERROR message $t remote-server-not-found FROM bob@corp\\.example$" 15
check "fedgated restart: bob did not get it" \
    not grep -q "RECEIVED $t " "$(client_out bob)"
mv "$flog" "$FG_TMP/fedgated-1.log"
sed 's/^\([[:space:]]*upstream .*\)$/\1 trusted/' "$conf" >"$conf.new" &&
    mv "$conf.new" "$conf"
check "fedgated restart: the upstream is now trusted" \
    grep -Eq '^[[:space:]]*upstream "[0-9.]+" port 5269 trusted$' "$conf"
fedgated_start_ns dmz "$conf" "$flog" "$DMZ_PUB:5269" "$DMZ_INT:5269" ||
    bail "fedgated did not start again"
ok "fedgated restart: listening again"
exchange "fedgated restart" alice2 bob
check "fedgated restart: corp.internal's dialback accepted as trusted, without a check back" sh -c \
    "grep -Eq '$L in internal corp\\.internal->remote\\.example: authenticated by trusted$' '$flog' &&
     ! grep -Eq '$L out internal [^ ]* \\(verify\\)' '$flog'"
check "fedgated restart: fedgatectl shows the internal incoming leg as trusted" \
    fgctl_has_session face=internal direction=in remote=corp.internal auth=trusted

# ---- the internal Prosody restarts
m=$(log_mark "$flog")
client_stop bob
prosody_stop corp
check "corp restart: fedgated's internal legs ended (system-shutdown)" \
    wait_until 10 since "$m" \
    "$L (in|out) internal [^ ]*corp\\.internal[^ ]*: closed: peer sent stream error system-shutdown"
check "corp restart: none is listed any more" wait_until 10 not internal_legs
prosody_start corp corp "$(dirname "$(prosody_log corp)")/prosody.cfg.lua" ||
    bail "corp.internal did not restart"
client_start bob2 corp bob@corp.internal bob-pw "$CORP_ADDR" ||
    bail "bob did not come back online"
exchange "corp restart" alice2 bob2

fedgated_stop
rc=$?
check "fedgated exits 0 on SIGTERM" test "$rc" -eq 0
no_warning() {
	! grep -h ' warning: ' "$flog" "$FG_TMP/fedgated-1.log" |
	    grep -v ' warning: reload: ' | grep -q .
}
check "fedgated logged no warning but the refused reload's" no_warning
client_stop alice2 bob2
prosody_stop corp remote
note "elapsed: $(($(date +%s) - started)) s"
tap_done
