#!/bin/sh
# contrib/demo.sh BUILDDIR: the main job on an embedded default
# configuration, run by `./quickstart demo`. Everything lives in a temporary
# directory and is removed at the end; fedgated is stopped by its PID.
set -eu
build=$1
fedgated=$build/src/fedgated
ctl=$build/src/fedgatectl/fedgatectl
tmp=$(mktemp -d /tmp/fedgate-demo.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

say() { printf '\n==> %s\n' "$*"; }

say "generating a self-signed certificate for corp.example"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj /CN=corp.example -addext subjectAltName=DNS:corp.example \
    -days 30 -keyout "$tmp/corp.example.key" -out "$tmp/corp.example.crt" \
    2>/dev/null
chmod 600 "$tmp/corp.example.key"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/dialback.key"
chmod 600 "$tmp/dialback.key"

cat >"$tmp/fedgated.conf" <<CONF
# The demo's embedded default: one local domain, three kinds of peer.
control socket "$tmp/fedgated.sock" mode 0600
log stderr
log level info
dialback secret file "$tmp/dialback.key"

domain "corp.example" {
	upstream "127.0.0.1" port 15269
	internal-name "corp.internal"
	certificate "$tmp/corp.example.crt"
	key "$tmp/corp.example.key"
}

peer "legacy.example" {
	allow
	tls none
	verify none
	auth dialback
}
peer "*.partner.example" {
	allow
	tls required
	verify required
}
peer "blocked.example" {
	deny
}
peer default {
	deny
}
CONF

say "fedgated -n (check the configuration)"
"$fedgated" -n -f "$tmp/fedgated.conf"

say "starting fedgated in the foreground on loopback"
"$fedgated" -d -f "$tmp/fedgated.conf" 2>"$tmp/fedgated.log" &
pid=$!
i=0
until "$ctl" -s "$tmp/fedgated.sock" status >/dev/null 2>&1; do
	i=$((i + 1))
	if [ "$i" -gt 200 ] || ! kill -0 "$pid" 2>/dev/null; then
		echo "fedgated did not come up:" >&2
		cat "$tmp/fedgated.log" >&2
		exit 1
	fi
	sleep 0.05
done

say "fedgatectl status"
"$ctl" -s "$tmp/fedgated.sock" status
for d in legacy.example chat.partner.example blocked.example other.example; do
	say "fedgatectl policy check $d"
	"$ctl" -s "$tmp/fedgated.sock" policy check "$d"
done

say "stopping fedgated (SIGTERM)"
kill -TERM "$pid"
wait "$pid"
pid=
say "fedgated's log"
cat "$tmp/fedgated.log"
