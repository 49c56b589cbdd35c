# tests/interop/lib.sh: helpers for the interop tests (POSIX sh, run as root).
#
#   . "$top_srcdir/tests/interop/lib.sh"
#
# Real XMPP servers (Debian's prosody), dnsmasq and scripted clients run in
# network namespaces that the test creates and deletes itself; nothing is sent
# outside them (documentation address ranges only; the only default route,
# in the transparent topology, points at the run's own DMZ namespace).
# Every wait is bounded; every process is started in the background by a
# helper, recorded, and stopped by PID; every namespace and /etc/netns entry
# is removed by the EXIT trap, also on failure and on SIGTERM/SIGINT.
# See tests/interop/README.md for the topology and for Prosody's quirks.
#
# Env (all optional): top_srcdir, builddir (for fedgated; default: the
# tree's build/ if fedgated is built there), PYTHON (a python3 with
# slixmpp), FG_KEEP=1 (keep the work directory even on success),
# FG_VERBOSE=1 (echo every helper step as a TAP comment).

# ------------------------------------------------------------------ basics
# Helpers use global variables named _like_this (POSIX sh has no "local");
# tests should use plain names.

# The sourcing script lives in tests/interop/, next to this file (else
# top_srcdir must name the source tree).
INTEROP_DIR=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$INTEROP_DIR/xmpp_client.py" ] && [ -n "${top_srcdir:-}" ]; then
	INTEROP_DIR=$top_srcdir/tests/interop
fi
: "${top_srcdir:=$(cd "$INTEROP_DIR/../.." && pwd)}"
XMPP_CLIENT=$INTEROP_DIR/xmpp_client.py
# fedgated: from builddir, else from the tree's build/ (./quickstart's).
if [ -z "${builddir:-}" ] && [ -x "$top_srcdir/build/src/fedgated" ]; then
	builddir=$top_srcdir/build
fi
if [ -n "${builddir:-}" ]; then
	FEDGATED=$builddir/src/fedgated
	# shellcheck disable=SC2034
	FEDGATECTL=$builddir/src/fedgatectl/fedgatectl
fi

# Names of everything this run creates start with FG_RUN: namespaces are
# "$FG_RUN-SHORT" ("fgi-1234-dmz"). fg_reap_stale uses the PID in it.
FG_RUN=fgi-$$
FG_TMP=
FG_PIDS=		# "PID" list, in start order
FG_NETNS=		# namespaces created (full names)
FG_ETCNS=		# /etc/netns/NAME directories created
FG_VETH=0		# counter for switch-side veth names
FG_POLL=0.05		# polling interval of every wait, seconds

tap_n=0
tap_failed=0

ok() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $*"
}

not_ok() {
	tap_n=$((tap_n + 1))
	tap_failed=$((tap_failed + 1))
	echo "not ok $tap_n - $*"
}

skip() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $* # SKIP"
}

# not CMD...: succeeds when CMD fails (for check).
not() {
	! "$@"
}

# check DESCRIPTION CMD...: ok if CMD succeeds.
check() {
	_check_desc=$1
	shift
	if "$@"; then ok "$_check_desc"; else not_ok "$_check_desc"; fi
}

# diag: stdin as TAP comments.
diag() {
	sed 's/^/# /'
}

note() {
	echo "# $*"
}

verbose() {
	[ -n "${FG_VERBOSE:-}" ] && echo "# $*"
	return 0
}

# tap_done: the plan line, and the exit status.
tap_done() {
	echo "1..$tap_n"
	[ "$tap_failed" -eq 0 ]
}

# bail REASON: stop the whole test (cleanup still runs).
bail() {
	not_ok "$*"
	echo "Bail out! $*"
	echo "1..$tap_n"
	exit 1
}

# ------------------------------------------------------------------ waiting

# wait_until SECONDS CMD...: poll CMD until it succeeds, at most SECONDS.
wait_until() {
	_lim=$(awk -v s="$1" -v p="$FG_POLL" 'BEGIN { printf "%d", s / p + 1 }')
	shift
	_i=0
	while [ "$_i" -lt "$_lim" ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep "$FG_POLL"
		_i=$((_i + 1))
	done
	return 1
}

# wait_for "COMMAND STRING" SECONDS: the same with a command string, eval'd
# in this shell (helpers usable): wait_for "client_cmd bob status" 5
wait_for() {
	wait_until "$2" eval "$1"
}

# wait_log FILE REGEX SECONDS: until a line of FILE matches REGEX (grep -E).
wait_log() {
	wait_until "$3" grep -Eq -- "$2" "$1"
}

# log_mark FILE: the number of lines FILE has now (0 if absent); pass it to
# wait_log_from to wait for a line that appears after this point.
log_mark() {
	if [ -f "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi
}

_grep_from() {
	tail -n "+$(($2 + 1))" "$1" 2>/dev/null | grep -Eq -- "$3"
}

# wait_log_from FILE MARK REGEX SECONDS
wait_log_from() {
	wait_until "$4" _grep_from "$1" "$2" "$3"
}

# has FILE REGEX: a line of FILE matches, now or within 5 s (log lines
# about an event may come a little after a client saw the event).
has() { wait_log "$1" "$2" 5; }

# lacks FILE REGEX: FILE exists and no line matches.
lacks() { [ -f "$1" ] && ! grep -Eq -- "$2" "$1"; }

# none_mention REGEX FILE...: every FILE exists and none has a match (the
# first matches of the one that has are shown).
none_mention() {
	_re=$1
	shift
	for _f in "$@"; do
		[ -f "$_f" ] || { note "$_f is missing"; return 1; }
		lacks "$_f" "$_re" || {
			note "$_f matches $_re:"
			grep -E -- "$_re" "$_f" 2>/dev/null | head -n 5 | cut -c1-300 | diag
			return 1
		}
	done
}

# conns SHORT ADDR: established TCP connections of namespace SHORT with
# ADDR, whichever side opened them.
conns() {
	ip netns exec "$(ns_name "$1")" ss -Htn state established "dst $2" |
	    wc -l
}
# conns_are N SHORT ADDR
conns_are() { [ "$(conns "$2" "$3")" -eq "$1" ]; }
# dmz_5269_conns_are N: the DMZ has N established connections on port
# 5269, either way (the bidi tests: one per peer).
dmz_5269_conns_are() {
	[ "$(ip netns exec "$(ns_name dmz)" ss -Htn state established \
	    '( sport = :5269 or dport = :5269 )' | wc -l)" -eq "$1" ]
}

# count_log FILE REGEX: how many lines of FILE match.
count_log() {
	grep -Ec -- "$2" "$1" 2>/dev/null || true
}

# ------------------------------------------------------------------ processes

# fg_spawn LOG CMD...: start CMD in the background, output to LOG, record its
# PID in FG_PIDS and in $FG_LAST_PID. Must not be called from $(...).
fg_spawn() {
	_log=$1
	shift
	"$@" >"$_log" 2>&1 </dev/null &
	FG_LAST_PID=$!
	FG_PIDS="$FG_PIDS $FG_LAST_PID"
	verbose "started pid $FG_LAST_PID: $*"
}

_dead() {
	! kill -0 "$1" 2>/dev/null
}

# stop_pid PID [SIGNAL]: signal PID (TERM), wait up to 10 s, then SIGKILL;
# reap it and forget it. Returns the process's exit status when known.
stop_pid() {
	_p=$1
	FG_PIDS=$(echo " $FG_PIDS " | sed "s/ $_p / /g")
	if kill -"${2:-TERM}" "$_p" 2>/dev/null; then
		if ! wait_until 10 _dead "$_p"; then
			kill -KILL "$_p" 2>/dev/null
			wait_until 5 _dead "$_p"
		fi
	fi
	wait "$_p" 2>/dev/null
}

# stop_pids PID...: SIGTERM to all at once, then stop_pid each (bounded).
stop_pids() {
	for _q in "$@"; do
		kill -TERM "$_q" 2>/dev/null
	done
	for _q in "$@"; do
		stop_pid "$_q"
	done
}

# ------------------------------------------------------------------ cleanup

# fg_dump: the gist of every log of this run, as TAP comments (on failure).
fg_dump() {
	for _f in "$FG_TMP"/client-*/out; do
		[ -f "$_f" ] || continue
		echo "# ---- client $(basename "$(dirname "$_f")" | sed 's/^client-//')"
		tail -n 40 "$_f" | diag
	done
	for _f in "$FG_TMP"/prosody-*/prosody.log; do
		[ -f "$_f" ] || continue
		echo "# ---- prosody $(basename "$(dirname "$_f")" | sed 's/^prosody-//') (info and above; debug log: $_f)"
		grep -Ev '[[:space:]]debug[[:space:]]' "$_f" | tail -n 25 | cut -c1-240 | diag
	done
	for _f in "$FG_TMP"/ejabberd-*/log/ejabberd.log; do
		[ -f "$_f" ] || continue
		echo "# ---- ejabberd $(basename "$(dirname "$(dirname "$_f")")" | sed 's/^ejabberd-//') (not debug; debug log: $_f)"
		grep -E '\[(info|notice|warning|error)\]' "$_f" | tail -n 25 | cut -c1-240 | diag
	done
	for _f in "$FG_TMP"/jabberd2-*/*.log; do
		[ -f "$_f" ] || continue
		echo "# ---- jabberd2 $(basename "$(dirname "$_f")" | sed 's/^jabberd2-//') $(basename "$_f")"
		tail -n 15 "$_f" | cut -c1-240 | diag
	done
	for _f in "$FG_TMP"/fedgated*.log; do
		[ -f "$_f" ] || continue
		echo "# ---- $(basename "$_f" .log) (info and above; debug log: $_f)"
		grep -Ev ' debug: ' "$_f" | tail -n 30 | cut -c1-240 | diag
	done
	for _f in "$FG_TMP"/dns-*/dnsmasq.log; do
		[ -f "$_f" ] || continue
		echo "# ---- dnsmasq $(basename "$(dirname "$_f")" | sed 's/^dns-//')"
		tail -n 15 "$_f" | diag
	done
}

fg_cleanup() {
	_rc=$?
	trap - EXIT INT TERM
	# FG_SIGNAL_QUIET=1 (the demo): an exit by SIGINT or SIGTERM is no
	# failure to report; the work directory goes too.
	_quiet=
	if [ -n "${FG_SIGNAL_QUIET:-}" ] && [ "$tap_failed" -eq 0 ] &&
	    { [ "$_rc" -eq 130 ] || [ "$_rc" -eq 143 ]; }; then
		_quiet=1
	fi
	if [ -n "$FG_TMP" ] && [ -z "$_quiet" ] &&
	    { [ "$tap_failed" -gt 0 ] || [ "$_rc" -ne 0 ]; }; then
		fg_dump
	fi
	# Processes: newest first.
	_rev=
	for _p in $FG_PIDS; do _rev="$_p $_rev"; done
	for _p in $_rev; do
		kill -0 "$_p" 2>/dev/null && stop_pid "$_p"
	done
	for _n in $FG_NETNS; do
		# Anything still inside (a helper's stray child) dies with it.
		for _p in $(ip netns pids "$_n" 2>/dev/null); do
			kill -KILL "$_p" 2>/dev/null
		done
		ip netns del "$_n" 2>/dev/null
	done
	for _d in $FG_ETCNS; do
		rm -rf "$_d"
	done
	if [ -n "$FG_TMP" ] && [ -d "$FG_TMP" ]; then
		if [ -n "${FG_KEEP:-}" ] || { [ -z "$_quiet" ] &&
		    { [ "$tap_failed" -gt 0 ] || [ "$_rc" -ne 0 ]; }; }; then
			echo "# work directory kept: $FG_TMP"
		else
			rm -rf "$FG_TMP"
		fi
	fi
	exit "$_rc"
}

# fg_reap_stale: delete namespaces (and their processes, /etc/netns entries)
# left by an earlier run of this toolkit that was killed before its trap ran
# (its PID, in the name, is gone).
fg_reap_stale() {
	for _n in $(ip netns list 2>/dev/null | sed -n 's/^\(fgi-[0-9][0-9]*-[^ ]*\).*/\1/p'); do
		_owner=$(echo "$_n" | cut -d- -f2)
		kill -0 "$_owner" 2>/dev/null && continue
		for _p in $(ip netns pids "$_n" 2>/dev/null); do
			kill -KILL "$_p" 2>/dev/null
		done
		ip netns del "$_n" 2>/dev/null
		rm -rf "/etc/netns/$_n"
		echo "# removed stale namespace $_n"
	done
}

# fg_python: a python3 that has slixmpp (Debian's, not a pyenv shim).
fg_python() {
	for _py in ${PYTHON:-} /usr/bin/python3 python3; do
		"$_py" -c 'import slixmpp, aiodns' >/dev/null 2>&1 && { echo "$_py"; return 0; }
	done
	return 1
}

# fg_init: check the environment, create the work directory, set the traps.
# Not root: prints a skipped plan and exits 0. Missing tools: bails out.
fg_init() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "1..0 # SKIP needs root for network namespaces"
		exit 0
	fi
	for _t in ip ss dnsmasq prosody prosodyctl openssl awk timeout; do
		command -v "$_t" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
		command -v "$_t" >/dev/null 2>&1 || bail "missing tool: $_t"
	done
	PYTHON=$(fg_python) || bail "missing python3 with slixmpp (apt-get install python3-slixmpp)"
	FG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/fedgate-interop.XXXXXX")
	FG_CA_CRT=$FG_TMP/ca/ca.crt
	FG_CA_KEY=$FG_TMP/ca/ca.key
	FG_CTL=$FG_TMP/fedgated.sock
	trap fg_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	fg_reap_stale
	verbose "run $FG_RUN, work directory $FG_TMP"
}

# ------------------------------------------------------------------ namespaces

# ns_name SHORT: the full namespace name.
ns_name() {
	echo "$FG_RUN-$1"
}

# ns_exec SHORT CMD...: run CMD inside namespace SHORT.
ns_exec() {
	_ns=$(ns_name "$1")
	shift
	ip netns exec "$_ns" "$@"
}

# ns_add SHORT: a namespace with lo up, forwarding off, no IPv6 DAD delay.
ns_add() {
	_ns=$(ns_name "$1")
	ip netns add "$_ns" || return 1
	FG_NETNS="$FG_NETNS $_ns"
	ip -n "$_ns" link set lo up
	ns_exec "$1" sysctl -qw net.ipv4.ip_forward=0 \
	    net.ipv6.conf.all.forwarding=0 \
	    net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	verbose "namespace $_ns"
}

# switch_add SHORT: a namespace holding bridge br0: one network segment.
switch_add() {
	ns_add "$1" || return 1
	ip -n "$(ns_name "$1")" link add br0 type bridge &&
	    ip -n "$(ns_name "$1")" link set br0 up
}

# ns_attach SHORT SWITCH IFNAME ADDR/LEN...: a veth pair, IFNAME in SHORT
# with the given addresses, its peer a port of SWITCH's bridge.
ns_attach() {
	_h=$(ns_name "$1")
	_s=$(ns_name "$2")
	_if=$3
	shift 3
	FG_VETH=$((FG_VETH + 1))
	_peer=v$FG_VETH
	ip link add "$_if" netns "$_h" type veth peer name "$_peer" netns "$_s" ||
	    return 1
	ip -n "$_s" link set "$_peer" master br0 up
	for _a in "$@"; do
		ip -n "$_h" addr add "$_a" dev "$_if" nodad 2>/dev/null ||
		    ip -n "$_h" addr add "$_a" dev "$_if" || return 1
	done
	ip -n "$_h" link set "$_if" up
	verbose "$_h $_if $* on $_s"
}

# ns_resolver SHORT DNSADDR: /etc/resolv.conf as seen inside SHORT (ip netns
# exec bind-mounts /etc/netns/NAME/* over /etc/*).
ns_resolver() {
	_d=/etc/netns/$(ns_name "$1")
	mkdir -p "$_d" || return 1
	case " $FG_ETCNS " in *" $_d "*) ;; *) FG_ETCNS="$FG_ETCNS $_d" ;; esac
	printf 'nameserver %s\noptions timeout:1 attempts:2\n' "$2" >"$_d/resolv.conf"
}

# ns_listening SHORT tcp|udp ADDR PORT: a socket is bound to ADDR:PORT.
ns_listening() {
	case $2 in
	tcp)	_f=-Hltn ;;
	*)	_f=-Huln ;;
	esac
	case $3 in
	*:*)	_want="[$3]:$4" ;;
	*)	_want="$3:$4" ;;
	esac
	ns_exec "$1" ss $_f | awk -v w="$_want" '$4 == w { f = 1 } END { exit !f }'
}

# wait_listen SHORT tcp|udp ADDR PORT SECONDS
wait_listen() {
	wait_until "$5" ns_listening "$1" "$2" "$3" "$4"
}

# tcp_probe SHORT ADDR PORT [SECONDS]: a TCP connection from SHORT succeeds.
tcp_probe() {
	ns_exec "$1" "$PYTHON" "$XMPP_CLIENT" probe --timeout "${4:-2}" "$2" "$3" \
	    >/dev/null 2>&1
}

# tcp_reachable SHORT ADDR PORT [SECONDS]: ADDR answers from SHORT: the
# connection succeeds or is refused (as opposed to no route or no answer).
tcp_reachable() {
	ns_exec "$1" "$PYTHON" "$XMPP_CLIENT" probe --timeout "${4:-2}" "$2" "$3" \
	    2>/dev/null | grep -Eq '^CONNECTED|refused'
}

# ------------------------------------------------------------------ certificates

# ca_init: the run's test CA, made on first use ($FG_CA_CRT, $FG_CA_KEY:
# fixed paths, so that helpers run in $(...) find the same CA).
ca_init() {
	[ -s "$FG_CA_CRT" ] && [ -s "$FG_CA_KEY" ] && return 0
	mkdir -p "$FG_TMP/ca"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -days 2 -subj "/O=fedgate interop/CN=fedgate interop test CA" \
	    -addext "basicConstraints=critical,CA:TRUE" \
	    -addext "keyUsage=critical,keyCertSign,cRLSign" \
	    -keyout "$FG_CA_KEY" -out "$FG_CA_CRT" >/dev/null 2>&1
}

# cert_make DOMAIN [ca|self]: a certificate and key for DOMAIN, valid for
# DOMAIN and *.DOMAIN (DNS-ID) and DOMAIN as XmppAddr, EC P-256, two days;
# signed by the run's test CA (ca, the default) or self-signed (self).
# Made once per run and kind; the paths: cert_path / key_path DOMAIN [KIND].
cert_make() {
	_kind=${2:-ca}
	mkdir -p "$FG_TMP/certs/$_kind"
	_c=$FG_TMP/certs/$_kind/$1.crt
	_k=$FG_TMP/certs/$_kind/$1.key
	[ -s "$_c" ] && [ -s "$_k" ] && return 0
	_san="subjectAltName=DNS:$1,DNS:*.$1,otherName:1.3.6.1.5.5.7.8.5;UTF8:$1"
	case $_kind in
	ca)
		ca_init || return 1
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		    -nodes -days 2 -subj "/CN=$1" -addext "$_san" \
		    -addext "extendedKeyUsage=serverAuth,clientAuth" \
		    -CA "$FG_CA_CRT" -CAkey "$FG_CA_KEY" \
		    -keyout "$_k" -out "$_c" >/dev/null 2>&1
		;;
	self)
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		    -nodes -days 2 -subj "/CN=$1" -addext "$_san" \
		    -keyout "$_k" -out "$_c" >/dev/null 2>&1
		;;
	*)	note "cert_make: unknown kind $_kind"; return 1 ;;
	esac
}

cert_path() { echo "$FG_TMP/certs/${2:-ca}/$1.crt"; }
key_path() { echo "$FG_TMP/certs/${2:-ca}/$1.key"; }

# ------------------------------------------------------------------ DNS

# dns_start NAME SHORT ADDR RECORD...: dnsmasq in namespace SHORT answering
# on ADDR:53 (UDP and TCP) from these records only (no upstream, no
# /etc/hosts, no cache; names under .example, .internal and .test that have
# no record get NXDOMAIN, other names REFUSED). RECORD is one of
#   srv=DOMAIN,TARGET,PORT[,PRIO,WEIGHT]    _xmpp-server._tcp.DOMAIN SRV
#   xmpps=DOMAIN,TARGET,PORT[,PRIO,WEIGHT]  _xmpps-server._tcp.DOMAIN SRV
#   client=DOMAIN,TARGET,PORT               _xmpp-client._tcp.DOMAIN SRV
#   host=NAME,ADDR[,ADDR6]                  A (and AAAA)
#   --any-dnsmasq-option                    passed through
# Log (every query): $FG_TMP/dns-NAME/dnsmasq.log.
dns_start() {
	_name=$1
	_short=$2
	_addr=$3
	shift 3
	_dir=$FG_TMP/dns-$_name
	mkdir -p "$_dir"
	: >"$_dir/dnsmasq.log"
	set -- "$@" END
	while [ "$1" != END ]; do
		case $1 in
		srv=*)	set -- "$@" "--srv-host=_xmpp-server._tcp.${1#srv=}" ;;
		xmpps=*) set -- "$@" "--srv-host=_xmpps-server._tcp.${1#xmpps=}" ;;
		client=*) set -- "$@" "--srv-host=_xmpp-client._tcp.${1#client=}" ;;
		host=*)	set -- "$@" "--host-record=${1#host=}" ;;
		--*)	set -- "$@" "$1" ;;
		*)	note "dns_start: bad record '$1'"; return 1 ;;
		esac
		shift
	done
	shift
	echo "$_short $_addr" >"$_dir/where"
	fg_spawn "$_dir/stdout" ip netns exec "$(ns_name "$_short")" \
	    dnsmasq --keep-in-foreground --conf-file=/dev/null \
	    --no-resolv --no-hosts --no-poll --cache-size=0 --local-ttl=0 \
	    --user=root --group=root \
	    --bind-interfaces --listen-address="$_addr" --port=53 \
	    --local=/example/ --local=/internal/ --local=/test/ \
	    --log-queries=extra --log-facility="$_dir/dnsmasq.log" \
	    --pid-file="$_dir/pid" "$@"
	echo "$FG_LAST_PID" >"$_dir/spid"
	if wait_listen "$_short" udp "$_addr" 53 10 &&
	    wait_listen "$_short" tcp "$_addr" 53 5; then
		return 0
	fi
	note "dnsmasq $_name did not start:"
	cat "$_dir/stdout" "$_dir/dnsmasq.log" | diag
	return 1
}

# dns_stop NAME
dns_stop() {
	_f=$FG_TMP/dns-$1/spid
	[ -f "$_f" ] && stop_pid "$(cat "$_f")"
	rm -f "$_f"
}

# dns_query SHORT SERVER NAME A|AAAA|SRV: print the answers as seen from SHORT
# ("SRV PRIO WEIGHT PORT TARGET", "A ADDR"; "NONE reason" and status 1).
dns_query() {
	ns_exec "$1" "$PYTHON" "$XMPP_CLIENT" dns "$2" "$3" "$4"
}

# dns_has SHORT SERVER NAME TYPE ANSWER: one answer line is exactly ANSWER.
dns_has() {
	dns_query "$1" "$2" "$3" "$4" 2>/dev/null | grep -qxF -- "$5"
}

# dns_none SHORT SERVER NAME TYPE: no answer (NXDOMAIN, NODATA, REFUSED).
dns_none() {
	! dns_query "$1" "$2" "$3" "$4" >/dev/null 2>&1
}

dns_log() { echo "$FG_TMP/dns-$1/dnsmasq.log"; }

# ------------------------------------------------------------------ Prosody

# prosody_config NAME ADDR DOMAINS [KEY=VALUE...]: write a Prosody
# configuration for one instance in $FG_TMP/prosody-NAME/ and print its path.
# DOMAINS is a comma-separated list of VirtualHosts. Keys (default first):
#   tls=on|off            s2s STARTTLS offered and used (off: plain TCP,
#                         dialback only; c2s keeps TLS when there is a cert)
#   cert=self|ca|none     certificate of each domain (test CA or self-signed;
#                         none: no TLS at all, c2s included)
#   trust_ca=no|yes       trust the test CA for peer certificates
#   secure_auth=false|true       s2s_secure_auth
#   require_encryption=false|true s2s_require_encryption
#   bidi=off|on           XEP-0288 (mod_s2s_bidi)
#   c2s_port=5222  s2s_port=5269  s2s_tls_port= (direct TLS, XEP-0368)
#   s2s_timeout=10        seconds Prosody waits for an s2s connection
#   dialback_secret=...   (default: random per start)
#   global=LUA            a line added to the global section (repeatable)
#   module=NAME           one more module to load (repeatable); test
#                         plugins: global=plugin_paths = { "$INTEROP_DIR/prosody-plugins" }
# Users: prosody_adduser. Start: prosody_start NAME SHORT CONFIG.
prosody_config() {
	_name=$1
	_addr=$2
	_domains=$(echo "$3" | tr ',' ' ')
	shift 3
	_tls=on _cert=self _trust=no _sec=false _req=false _bidi=off
	_c2s=5222 _s2s=5269 _s2stls='' _s2stmo=10 _dbsecret='' _global='' _more=''
	for _kv in "$@"; do
		case $_kv in
		tls=*)			_tls=${_kv#*=} ;;
		cert=*)			_cert=${_kv#*=} ;;
		trust_ca=*)		_trust=${_kv#*=} ;;
		secure_auth=*)		_sec=${_kv#*=} ;;
		require_encryption=*)	_req=${_kv#*=} ;;
		bidi=*)			_bidi=${_kv#*=} ;;
		c2s_port=*)		_c2s=${_kv#*=} ;;
		s2s_port=*)		_s2s=${_kv#*=} ;;
		s2s_tls_port=*)		_s2stls=${_kv#*=} ;;
		s2s_timeout=*)		_s2stmo=${_kv#*=} ;;
		dialback_secret=*)	_dbsecret=${_kv#*=} ;;
		global=*)		_global="$_global
${_kv#*=}" ;;
		module=*)		_more="$_more \"${_kv#*=}\";" ;;
		*)	note "prosody_config: unknown option $_kv"; return 1 ;;
		esac
	done
	_dir=$FG_TMP/prosody-$_name
	rm -rf "$_dir"
	mkdir -p "$_dir/data" "$_dir/certs"
	_cfg=$_dir/prosody.cfg.lua
	# Without a certificate Prosody would still offer STARTTLS and then fail
	# the handshake: cert=none leaves mod_tls out (no TLS at all).
	_mods='"roster"; "saslauth"; "dialback"; "disco"; "ping"; "admin_shell";'
	[ "$_cert" != none ] && _mods="\"tls\"; $_mods"
	[ "$_bidi" = on ] && _mods="$_mods \"s2s_bidi\";"
	_mods="$_mods$_more"
	_ipv6=false
	case $_addr in *:*) _ipv6=true ;; esac
	_allow_tls=true
	[ "$_tls" = off ] && _allow_tls=false
	{
		echo "-- Prosody instance '$_name' for the fedgate interop tests."
		echo "-- Generated by tests/interop/lib.sh; every path is private to it."
		echo "run_as_root = true"
		echo "pidfile = \"$_dir/prosody.pid\""
		echo "data_path = \"$_dir/data\""
		echo "certificates = \"$_dir/certs\""
		echo "admin_socket = \"$_dir/admin.sock\""
		echo "log = { { levels = { min = \"debug\" }, to = \"file\", filename = \"$_dir/prosody.log\" } }"
		echo "interfaces = { \"$_addr\" }"
		echo "use_ipv6 = $_ipv6"
		echo "c2s_ports = { $_c2s }"
		echo "s2s_ports = { $_s2s }"
		echo "c2s_direct_tls_ports = { }"
		echo "legacy_ssl_ports = { }"
		echo "s2s_direct_tls_ports = { $_s2stls }"
		echo "modules_enabled = { $_mods }"
		echo "authentication = \"internal_hashed\""
		echo "storage = \"internal\""
		echo "c2s_require_encryption = false"
		echo "s2s_allow_encryption = $_allow_tls"
		echo "s2s_require_encryption = $_req"
		echo "s2s_secure_auth = $_sec"
		echo "s2s_timeout = $_s2stmo"
		echo "s2s_close_timeout = 3"
		echo "unbound = { resolvconf = true; hoststxt = false }"
		[ -n "$_dbsecret" ] && echo "dialback_secret = \"$_dbsecret\""
		[ "$_trust" = yes ] && { ca_init || return 1; echo "ssl = { cafile = \"$FG_CA_CRT\" }"; }
		[ -n "$_global" ] && echo "$_global"
		for _d in $_domains; do
			echo ""
			echo "VirtualHost \"$_d\""
			if [ "$_cert" != none ]; then
				cert_make "$_d" "$_cert" || return 1
				cp "$FG_TMP/certs/$_cert/$_d.crt" "$FG_TMP/certs/$_cert/$_d.key" "$_dir/certs/"
				echo "    ssl = { certificate = \"$_dir/certs/$_d.crt\"; key = \"$_dir/certs/$_d.key\" }"
			fi
		done
	} >"$_cfg"
	printf '%s\n' "$_addr $_c2s $_s2s" >"$_dir/where"
	echo "$_cfg"
}

# prosodyctl_cfg CONFIG ARGS...: prosodyctl on that instance (its own config).
prosodyctl_cfg() {
	_cfg=$1
	shift
	prosodyctl --config "$_cfg" "$@"
}

# prosody_adduser CONFIG JID PASSWORD: create an account (server may be down).
prosody_adduser() {
	prosodyctl --config "$1" register "${2%%@*}" "${2#*@}" "$3" >/dev/null
}

# prosody_start NAME SHORT CONFIG: run Prosody in the foreground in
# namespace SHORT (its /etc/netns resolv.conf is the DNS it uses) and wait
# for its c2s and s2s listeners.
prosody_start() {
	_name=$1
	_short=$2
	_cfg=$3
	_dir=$(dirname "$_cfg")
	read -r _addr _c2s _s2s <"$_dir/where"
	fg_spawn "$_dir/console.log" ip netns exec "$(ns_name "$_short")" \
	    prosody -F --config "$_cfg"
	echo "$FG_LAST_PID" >"$_dir/spid"
	echo "$_short" >"$_dir/ns"
	if wait_listen "$_short" tcp "$_addr" "$_s2s" 15 &&
	    wait_listen "$_short" tcp "$_addr" "$_c2s" 5; then
		return 0
	fi
	note "prosody $_name did not start:"
	tail -n 30 "$_dir/console.log" "$_dir/prosody.log" 2>/dev/null | diag
	return 1
}

# prosody_stop NAME...: stop these instances (all at once).
prosody_stop() {
	_ps=
	for _n in "$@"; do
		_f=$FG_TMP/prosody-$_n/spid
		[ -f "$_f" ] && _ps="$_ps $(cat "$_f")"
		rm -f "$_f"
	done
	# shellcheck disable=SC2086
	[ -n "$_ps" ] && stop_pids $_ps
	return 0
}

# prosody_log NAME: the path of its (debug) log.
prosody_log() { echo "$FG_TMP/prosody-$1/prosody.log"; }

# prosody_shell NAME COMMAND...: a mod_admin_shell command, e.g.
#   prosody_shell corp 's2s:show()'
prosody_shell() {
	_cfg=$FG_TMP/prosody-$1/prosody.cfg.lua
	shift
	timeout 10 prosodyctl --config "$_cfg" shell "$@"
}

# ------------------------------------------------------------------ ejabberd

# Debian's ejabberd (23.01) runs as a plain Erlang VM, not through
# ejabberdctl (which switches to the ejabberd user and uses /var/lib and
# /var/log) and not distributed (no -sname: no epmd, nothing shared between
# namespaces or runs): `erl -noinput -mnesia dir DIR -s ejabberd` with
# EJABBERD_CONFIG_PATH and EJABBERD_LOG_PATH naming the instance's files.
# Accounts are made through its HTTP API (mod_http_api "register"), which
# listens on the namespace's own 127.0.0.1:5280 only.
EJABBERD_LIBS=/usr/lib/x86_64-linux-gnu
# A newer ejabberd, from bookworm-backports (24.12: mod_s2s_bidi, XEP-0288),
# unpacked beside the build and never installed (quickstart's
# ejabberd_backports): its tree's lib directories go first in ERL_LIBS, so
# its applications shadow Debian 12's. Unset or absent: tests that need it
# skip.
EJABBERD_BPO=${EJABBERD_BPO:-}
# ejabberd_bpo_libs: ERL_LIBS for the backports tree, or nothing (status 1).
ejabberd_bpo_libs() {
	[ -n "$EJABBERD_BPO" ] &&
	    ls -d "$EJABBERD_BPO"/usr/lib/x86_64-linux-gnu/ejabberd-* >/dev/null 2>&1 ||
	    return 1
	echo "$EJABBERD_BPO/usr/lib/x86_64-linux-gnu:$EJABBERD_BPO/usr/lib/erlang/lib"
}

# ejabberd_config NAME ADDR DOMAIN [KEY=VALUE...]: write an ejabberd
# configuration for one instance in $FG_TMP/ejabberd-NAME/ and print its
# path. Keys (default first):
#   starttls=optional|required|false   s2s_use_starttls (false: plain TCP)
#   cert=self|ca                      the domain's certificate
#   trust_ca=no|yes                   trust the test CA for peer certificates
#   release=debian|backports          Debian 12's ejabberd, or EJABBERD_BPO's
#   bidi=off|on                       mod_s2s_bidi (XEP-0288; backports only)
# s2s: dialback (mod_s2s_dialback) after STARTTLS when the peer's
# certificate does not pass; c2s: STARTTLS offered, not required.
ejabberd_config() {
	_name=$1
	_addr=$2
	_dom=$3
	shift 3
	_stls=optional _cert=self _trust=no _libs=$EJABBERD_LIBS _bidi=off
	for _kv in "$@"; do
		case $_kv in
		starttls=*)	_stls=${_kv#*=} ;;
		cert=*)		_cert=${_kv#*=} ;;
		trust_ca=*)	_trust=${_kv#*=} ;;
		release=debian)	_libs=$EJABBERD_LIBS ;;
		release=backports)
			_libs=$(ejabberd_bpo_libs) ||
			    { note "ejabberd_config: no backports tree (EJABBERD_BPO)"; return 1; } ;;
		bidi=*)		_bidi=${_kv#*=} ;;
		*)	note "ejabberd_config: unknown option $_kv"; return 1 ;;
		esac
	done
	_dir=$FG_TMP/ejabberd-$_name
	rm -rf "$_dir"
	mkdir -p "$_dir/spool" "$_dir/log"
	cert_make "$_dom" "$_cert" || return 1
	cat "$(cert_path "$_dom" "$_cert")" "$(key_path "$_dom" "$_cert")" \
	    >"$_dir/$_dom.pem"
	_cfg=$_dir/ejabberd.yml
	{
		echo "# ejabberd instance '$_name' for the fedgate interop tests."
		echo "# Generated by tests/interop/lib.sh; every path is private to it."
		echo "hosts:"
		echo "  - \"$_dom\""
		echo "loglevel: debug"
		echo "log_rotate_count: 0"
		echo "certfiles:"
		echo "  - \"$_dir/$_dom.pem\""
		[ "$_trust" = yes ] && { ca_init || return 1; echo "ca_file: \"$FG_CA_CRT\""; }
		echo "listen:"
		echo "  - port: 5222"
		echo "    ip: \"$_addr\""
		echo "    module: ejabberd_c2s"
		echo "    starttls: true"
		echo "  - port: 5269"
		echo "    ip: \"$_addr\""
		echo "    module: ejabberd_s2s_in"
		echo "  - port: 5280"
		echo "    ip: \"127.0.0.1\""
		echo "    module: ejabberd_http"
		echo "    request_handlers:"
		echo "      /api: mod_http_api"
		echo "s2s_use_starttls: $_stls"
		echo "s2s_dns_timeout: 3"
		echo "s2s_dns_retries: 1"
		echo "s2s_timeout: 10"
		echo "negotiation_timeout: 10"
		echo "auth_method: internal"
		# 24.12 offers SCRAM-*-PLUS with a channel binding slixmpp does
		# not match under TLS 1.3, then refuses plain SCRAM from a
		# client that says it could bind ("Invalid channel binding"):
		# the test clients use PLAIN, inside TLS.
		if [ "$_libs" != "$EJABBERD_LIBS" ]; then
			echo "disable_sasl_mechanisms:"
			for _m in SCRAM-SHA-512-PLUS SCRAM-SHA-256-PLUS SCRAM-SHA-1-PLUS \
			    SCRAM-SHA-512 SCRAM-SHA-256 SCRAM-SHA-1 DIGEST-MD5 X-OAUTH2; do
				echo "  - \"$_m\""
			done
		fi
		echo "api_permissions:"
		echo "  \"register on loopback\":"
		echo "    who:"
		echo "      ip: 127.0.0.1/8"
		echo "    what:"
		echo "      - register"
		echo "modules:"
		echo "  mod_roster: {}"
		echo "  mod_disco: {}"
		echo "  mod_ping: {}"
		echo "  mod_s2s_dialback: {}"
		echo "  mod_http_api: {}"
		if [ "$_bidi" = on ]; then echo "  mod_s2s_bidi: {}"; fi
	} >"$_cfg"
	printf '%s\n' "$_addr 5222 5269" >"$_dir/where"
	printf '%s\n' "$_libs" >"$_dir/libs"
	echo "$_cfg"
}

# ejabberd_start NAME SHORT CONFIG: run ejabberd in namespace SHORT and
# wait (bounded) for its c2s, s2s and API listeners.
ejabberd_start() {
	_name=$1
	_short=$2
	_cfg=$3
	_dir=$(dirname "$_cfg")
	read -r _addr _c2s _s2s <"$_dir/where"
	read -r _libs <"$_dir/libs"
	fg_spawn "$_dir/console.log" env HOME="$_dir" ERL_LIBS="$_libs" \
	    EJABBERD_CONFIG_PATH="$_cfg" \
	    EJABBERD_LOG_PATH="$_dir/log/ejabberd.log" \
	    ERL_CRASH_DUMP="$_dir/erl_crash.dump" ERL_CRASH_DUMP_BYTES=0 \
	    ip netns exec "$(ns_name "$_short")" \
	    erl -noinput -noshell -mnesia dir "\"$_dir/spool\"" -s ejabberd
	echo "$FG_LAST_PID" >"$_dir/spid"
	echo "$_short" >"$_dir/ns"
	# Erlang starts in a few seconds, more on a busy machine.
	if wait_listen "$_short" tcp "$_addr" "$_s2s" 60 &&
	    wait_listen "$_short" tcp "$_addr" "$_c2s" 10 &&
	    wait_listen "$_short" tcp 127.0.0.1 5280 10; then
		return 0
	fi
	note "ejabberd $_name did not start:"
	tail -n 30 "$_dir/console.log" "$_dir/log/error.log" 2>/dev/null | diag
	return 1
}

# ejabberd_adduser NAME JID PASSWORD: create an account (server running).
ejabberd_adduser() {
	_dir=$FG_TMP/ejabberd-$1
	ns_exec "$(cat "$_dir/ns")" "$PYTHON" -c '
import json, sys, urllib.request
user, host = sys.argv[1].split("@")
body = json.dumps({"user": user, "host": host, "password": sys.argv[2]})
req = urllib.request.Request("http://127.0.0.1:5280/api/register",
    data=body.encode(), headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, timeout=10).read().decode())
' "$2" "$3" >"$_dir/adduser.out" 2>&1 ||
	    { diag <"$_dir/adduser.out"; return 1; }
}

# ejabberd_stop NAME...: stop these instances (SIGTERM: the VM shuts down).
ejabberd_stop() {
	_ps=
	for _n in "$@"; do
		_f=$FG_TMP/ejabberd-$_n/spid
		[ -f "$_f" ] && _ps="$_ps $(cat "$_f")"
		rm -f "$_f"
	done
	# shellcheck disable=SC2086
	[ -n "$_ps" ] && stop_pids $_ps
	return 0
}

# ejabberd_log NAME: the path of its (debug) log.
ejabberd_log() { echo "$FG_TMP/ejabberd-$1/log/ejabberd.log"; }

# ------------------------------------------------------------------ jabberd2

# Debian's jabberd2 (2.7.0) is four processes: a router (components
# connect to it on the namespace's 127.0.0.1:5347), the session manager
# sm, c2s and s2s. Each runs in the foreground with its own XML config in
# $FG_TMP/jabberd2-NAME/, the users and rosters in one SQLite file made
# there from Debian's schema (db-setup.sqlite), logs in files beside them
# (notice level and up: Debian builds it without debug logging).
JABBERD2_LIBDIR=/usr/lib/x86_64-linux-gnu/jabberd2
JABBERD2_SCHEMA=/usr/share/doc/jabberd2/db-setup.sqlite.gz

# _j2_router_link: the <router> element every component uses.
_j2_router_link() {
	cat <<XML
  <router>
    <ip>127.0.0.1</ip>
    <port>5347</port>
    <user>jabberd</user>
    <pass>router-secret</pass>
    <retry><init>10</init><lost>3</lost><sleep>1</sleep></retry>
  </router>
XML
}

# _j2_log DIR NAME: the <log> element of component NAME.
_j2_log() {
	printf "  <log type='file'><file>%s/%s.log</file></log>\n" "$1" "$2"
}

# jabberd2_config NAME ADDR DOMAIN: write the configuration of one
# jabberd2 instance serving DOMAIN on ADDR (c2s 5222 with STARTTLS, a
# self-signed certificate; s2s 5269 plain TCP, dialback only: no pemfile)
# in $FG_TMP/jabberd2-NAME/ and print its directory.
jabberd2_config() {
	_name=$1
	_addr=$2
	_dom=$3
	_dir=$FG_TMP/jabberd2-$_name
	rm -rf "$_dir"
	mkdir -p "$_dir"
	cert_make "$_dom" self || return 1
	cat "$(cert_path "$_dom" self)" "$(key_path "$_dom" self)" >"$_dir/c2s.pem"
	zcat "$JABBERD2_SCHEMA" | "$PYTHON" -c '
import sqlite3, sys
sqlite3.connect(sys.argv[1]).executescript(sys.stdin.read())
' "$_dir/sqlite.db" || return 1
	cat >"$_dir/router-users.xml" <<XML
<users><user><name>jabberd</name><secret>router-secret</secret></user></users>
XML
	{
		echo "<router><id>router</id><pidfile>$_dir/router.pid</pidfile>"
		_j2_log "$_dir" router
		echo "  <local><ip>127.0.0.1</ip><port>5347</port>"
		echo "    <users>$_dir/router-users.xml</users><secret>router-secret</secret></local>"
		echo "  <check><interval>60</interval><keepalive>0</keepalive></check>"
		echo "  <io><max_fds>256</max_fds></io>"
		echo "  <aci><acl type='all'><user>jabberd</user></acl></aci>"
		echo "</router>"
	} >"$_dir/router.xml"
	{
		echo "<sm><id>$_dom</id><pidfile>$_dir/sm.pid</pidfile>"
		_j2_router_link
		_j2_log "$_dir" sm
		echo "  <local><id>$_dom</id></local>"
		echo "  <storage><path>$JABBERD2_LIBDIR</path><driver>sqlite</driver>"
		echo "    <sqlite><dbname>$_dir/sqlite.db</dbname><busy-timeout>2000</busy-timeout></sqlite>"
		echo "  </storage>"
		echo "  <modules><path>$JABBERD2_LIBDIR</path>"
		echo "    <chain id='sess-start'><module>status</module></chain>"
		echo "    <chain id='sess-end'><module>status</module><module>iq-last</module></chain>"
		echo "    <chain id='in-sess'><module>validate</module><module>status</module>"
		echo "      <module>privacy</module><module>roster</module><module>iq-ping</module>"
		echo "      <module>disco</module><module>offline</module><module>presence</module>"
		echo "      <module>deliver</module></chain>"
		echo "    <chain id='in-router'><module>session</module><module>validate</module>"
		echo "      <module>presence</module><module>privacy</module></chain>"
		echo "    <chain id='out-router'><module>privacy</module></chain>"
		echo "    <chain id='pkt-sm'><module>iq-last</module><module>iq-ping</module>"
		echo "      <module>iq-time</module><module>iq-version</module><module>disco</module>"
		echo "      <module>status</module><module>presence</module></chain>"
		echo "    <chain id='pkt-user'><module>roster</module><module>presence</module>"
		echo "      <module>disco</module><module>deliver</module><module>offline</module>"
		echo "      <module>iq-last</module></chain>"
		echo "    <chain id='pkt-router'><module>session</module><module>disco</module></chain>"
		echo "    <chain id='user-load'><module>active</module><module>roster</module>"
		echo "      <module>privacy</module></chain>"
		echo "    <chain id='user-create'><module>active</module></chain>"
		echo "    <chain id='user-delete'><module>active</module><module>offline</module>"
		echo "      <module>privacy</module><module>roster</module><module>status</module>"
		echo "      <module>iq-last</module></chain>"
		echo "    <chain id='disco-extend'><module>iq-version</module></chain>"
		echo "  </modules>"
		echo "  <discovery><identity><category>server</category><type>im</type>"
		echo "    <name>jabberd2 (fedgate interop)</name></identity></discovery>"
		echo "  <user><auto-create/></user>"
		echo "</sm>"
	} >"$_dir/sm.xml"
	{
		echo "<c2s><id>c2s</id><pidfile>$_dir/c2s.pid</pidfile>"
		_j2_router_link
		_j2_log "$_dir" c2s
		echo "  <local><id realm='' pemfile='$_dir/c2s.pem'>$_dom</id>"
		echo "    <ip>$_addr</ip><port>5222</port></local>"
		echo "  <io><max_fds>256</max_fds><check><interval>0</interval><idle>0</idle><keepalive>0</keepalive></check></io>"
		echo "  <authreg><path>$JABBERD2_LIBDIR</path><module>sqlite</module>"
		echo "    <mechanisms><sasl><digest-md5/></sasl></mechanisms>"
		echo "    <ssl-mechanisms><sasl><plain/></sasl></ssl-mechanisms>"
		echo "    <sqlite><dbname>$_dir/sqlite.db</dbname><busy-timeout>2000</busy-timeout>"
		echo "      <password_type><plaintext/></password_type></sqlite>"
		echo "  </authreg>"
		echo "</c2s>"
	} >"$_dir/c2s.xml"
	{
		echo "<s2s><id>s2s</id><pidfile>$_dir/s2s.pid</pidfile>"
		_j2_router_link
		_j2_log "$_dir" s2s
		echo "  <local><ip>$_addr</ip><port>5269</port></local>"
		echo "  <io><max_fds>256</max_fds></io>"
		echo "  <check><interval>5</interval><queue>30</queue><retry>5</retry>"
		echo "    <idle>86400</idle><keepalive>0</keepalive><dnscache>0</dnscache></check>"
		echo "  <lookup><srv>xmpp-server</srv><min-ttl>0</min-ttl><max-ttl>0</max-ttl>"
		echo "    <bad-host-timeout>1</bad-host-timeout></lookup>"
		echo "</s2s>"
	} >"$_dir/s2s.xml"
	printf '%s\n' "$_addr $_dom" >"$_dir/where"
	echo "$_dir"
}

# jabberd2_adduser NAME JID PASSWORD: an account (plaintext, as Debian's
# sqlite authreg is configured), made in the SQLite file.
jabberd2_adduser() {
	"$PYTHON" -c '
import sqlite3, sys
user, realm = sys.argv[2].split("@")
db = sqlite3.connect(sys.argv[1])
db.execute("INSERT INTO authreg (username, realm, password) VALUES (?, ?, ?)",
    (user, realm, sys.argv[3]))
db.commit()
' "$FG_TMP/jabberd2-$1/sqlite.db" "$2" "$3"
}

# jabberd2_start NAME SHORT: run the router, then sm, c2s and s2s, in
# namespace SHORT, each waited for (bounded): the router's and the
# listeners' sockets, and the router's log line for each component.
jabberd2_start() {
	_dir=$FG_TMP/jabberd2-$1
	_short=$2
	read -r _addr _dom <"$_dir/where"
	echo "$_short" >"$_dir/ns"
	: >"$_dir/spids"
	for _c in router sm c2s s2s; do
		fg_spawn "$_dir/$_c.console" ip netns exec "$(ns_name "$_short")" \
		    "/usr/sbin/jabberd2-$_c" -c "$_dir/$_c.xml"
		echo "$FG_LAST_PID" >>"$_dir/spids"
		case $_c in
		router)	wait_listen "$_short" tcp 127.0.0.1 5347 10 ;;
		sm)	wait_log "$_dir/router.log" "\\[$_dom\\] online" 10 ;;
		c2s)	wait_listen "$_short" tcp "$_addr" 5222 10 ;;
		s2s)	wait_listen "$_short" tcp "$_addr" 5269 10 &&
			    wait_log "$_dir/router.log" "\\[s2s\\] set as default route" 10 ;;
		esac || {
			note "jabberd2 $1: $_c did not start:"
			tail -n 20 "$_dir/$_c.console" "$_dir/$_c.log" \
			    "$_dir/router.log" 2>/dev/null | diag
			return 1
		}
	done
}

# jabberd2_stop NAME...: stop every process of these instances.
jabberd2_stop() {
	_ps=
	for _n in "$@"; do
		_f=$FG_TMP/jabberd2-$_n/spids
		[ -f "$_f" ] && _ps="$_ps $(cat "$_f")"
		rm -f "$_f"
	done
	# shellcheck disable=SC2086
	[ -n "$_ps" ] && stop_pids $_ps
	return 0
}

# jabberd2_log NAME COMPONENT: the path of a component's log.
jabberd2_log() { echo "$FG_TMP/jabberd2-$1/$2.log"; }

# ------------------------------------------------------------------ clients

# client_spawn NAME SHORT JID PASSWORD ADDR[:PORT] [xmpp_client.py options]:
# a long-running client in namespace SHORT, driven through its control
# socket (client_cmd). Its event lines: client_out NAME. Does not wait.
client_spawn() {
	_name=$1
	_short=$2
	_jid=$3
	_pw=$4
	_srv=$5
	shift 5
	_dir=$FG_TMP/client-$_name
	mkdir -p "$_dir"
	echo "$_jid" >"$_dir/jid"
	fg_spawn "$_dir/out" ip netns exec "$(ns_name "$_short")" \
	    "$PYTHON" "$XMPP_CLIENT" client --jid "$_jid" --password "$_pw" \
	    --server "$_srv" --control "$_dir/ctl.sock" --lifetime 600 "$@"
	echo "$FG_LAST_PID" >"$_dir/spid"
}

# client_online NAME...: wait (bounded) until each client is online.
client_online() {
	for _n in "$@"; do
		_dir=$FG_TMP/client-$_n
		if wait_log "$_dir/out" '^(ONLINE|FAILED|BYE)' 20 &&
		    grep -q '^ONLINE' "$_dir/out"; then
			continue
		fi
		note "client $_n ($(cat "$_dir/jid")) did not come online:"
		diag <"$_dir/out"
		return 1
	done
}

# client_start NAME SHORT JID PASSWORD ADDR[:PORT] [options]: spawn, and
# wait until it is online.
client_start() {
	client_spawn "$@" && client_online "$1"
}

client_out() { echo "$FG_TMP/client-$1/out"; }

# client_cmd NAME WORDS...: one control command (send JID TOKEN,
# subscribe JID, unsubscribe JID, presence [KIND], ping JID [ID], status,
# quit); prints the reply, fails unless it is OK.
client_cmd() {
	_dir=$FG_TMP/client-$1
	shift
	"$PYTHON" "$XMPP_CLIENT" ctl "$_dir/ctl.sock" "$@"
}

# client_wait NAME REGEX SECONDS: until the client printed a matching line.
client_wait() {
	wait_log "$FG_TMP/client-$1/out" "$2" "$3"
}

# client_expect NAME LINE SECONDS: until the client printed exactly LINE,
# e.g. client_expect bob "RECEIVED $tok FROM alice@remote.example" 10
client_expect() {
	wait_until "$3" grep -Fxq -- "$2" "$FG_TMP/client-$1/out"
}

# client_stop NAME...: ask each to quit, wait (bounded) for each to end,
# then stop any that is left by PID.
client_stop() {
	_ps=
	for _n in "$@"; do
		_dir=$FG_TMP/client-$_n
		[ -f "$_dir/spid" ] || continue
		client_cmd "$_n" quit >/dev/null 2>&1
		_ps="$_ps $(cat "$_dir/spid")"
		rm -f "$_dir/spid"
	done
	for _q in $_ps; do
		wait_until 5 _dead "$_q"
		stop_pid "$_q"
	done
	return 0
}

# client_run SHORT SECONDS [xmpp_client.py client options]: a one-shot
# client in the foreground (--timeout SECONDS), bounded by timeout(1) too.
client_run() {
	_short=$1
	_t=$2
	shift 2
	timeout -k 2 "$((${_t%.*} + 10))" ip netns exec "$(ns_name "$_short")" \
	    "$PYTHON" "$XMPP_CLIENT" client --timeout "$_t" "$@"
}

# both_ways INSIDE NAME JID peer|inside: the usual federation checks
# between client INSIDE (bob@corp.internal, bob@corp.example outside) and
# client NAME (JID), as TAP results named after NAME: subscription
# requests both ways (started by NAME with "peer", by INSIDE with
# "inside"), both approved, each sees the other's presence, a message each
# way with a unique token.
both_ways() {
	_bi=$1 _bc=$2 _bj=$3
	_bo=$(sed 's/@corp\.internal$/@corp.example/' "$FG_TMP/client-$_bi/jid")
	if [ "$4" = peer ]; then
		client_cmd "$_bc" subscribe "$_bo" >/dev/null
		check "$_bc: $_bi gets $_bj's subscription request" \
		    client_expect "$_bi" "SUBSCRIBE-REQUEST $_bj" 20
		check "$_bc: $_bj gets $_bo's request back" \
		    client_expect "$_bc" "SUBSCRIBE-REQUEST $_bo" 15
	else
		client_cmd "$_bi" subscribe "$_bj" >/dev/null
		check "$_bc: $_bj gets $_bo's subscription request" \
		    client_expect "$_bc" "SUBSCRIBE-REQUEST $_bo" 20
		check "$_bc: $_bi gets $_bj's request back" \
		    client_expect "$_bi" "SUBSCRIBE-REQUEST $_bj" 15
	fi
	check "$_bc: both subscriptions approved" _both_subscribed
	check "$_bc: $_bi sees $_bj's presence" \
	    client_expect "$_bi" "PRESENCE $_bj available" 15
	check "$_bc: $_bj sees $_bo's presence" \
	    client_expect "$_bc" "PRESENCE $_bo available" 15
	_bt=$(token "$_bc-in")
	client_cmd "$_bc" send "$_bo" "$_bt" >/dev/null
	check "$_bc: message $_bj -> $_bo delivered" \
	    client_expect "$_bi" "RECEIVED $_bt FROM $_bj" 10
	_bt=$(token "$_bc-out")
	client_cmd "$_bi" send "$_bj" "$_bt" >/dev/null
	check "$_bc: message $_bi -> $_bj delivered, from $_bo" \
	    client_expect "$_bc" "RECEIVED $_bt FROM $_bo" 10
}

_both_subscribed() {
	client_expect "$_bi" "SUBSCRIBED $_bj" 15 &&
	    client_expect "$_bc" "SUBSCRIBED $_bo" 15
}

# token [WORD]: a unique token for a message body.
token() {
	FG_TOKEN_N=$((${FG_TOKEN_N:-0} + 1))
	echo "${1:-tok}-$$-$FG_TOKEN_N-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
}

# ------------------------------------------------------------------ fedgated

# fedgated_start_ns SHORT CONF LOG ADDR:PORT...: run fedgated -d -f CONF in
# namespace SHORT (output to LOG), record its PID in FG_PID, and wait until
# it listens on every ADDR:PORT given (IPv6: [ADDR]:PORT). fgctl then talks
# to it, in SHORT, on $FG_CTL (the config must name that control socket).
fedgated_start_ns() {
	_short=$1
	_conf=$2
	_log=$3
	shift 3
	[ -x "${FEDGATED:-}" ] || { note "fedgated not built (builddir unset?)"; return 1; }
	fg_spawn "$_log" ip netns exec "$(ns_name "$_short")" "$FEDGATED" -d -f "$_conf"
	# shellcheck disable=SC2034 # for the caller
	FG_PID=$FG_LAST_PID
	FG_CTL_NS=$_short
	for _l in "$@"; do
		_port=${_l##*:}
		_a=${_l%:*}
		_a=${_a#[}
		_a=${_a%]}
		# Listening, or gone (then there is no point waiting).
		wait_until 10 _fedgated_up "$_short" "$_a" "$_port"
		if ! ns_listening "$_short" tcp "$_a" "$_port"; then
			note "fedgated does not listen on $_l:"
			tail -n 30 "$_log" | diag
			return 1
		fi
	done
}

_fedgated_up() {
	ns_listening "$1" tcp "$2" "$3" || _dead "$FG_PID"
}

# fedgated_stop: SIGTERM to fedgated (FG_PID), wait (bounded) and return
# its exit status.
fedgated_stop() {
	stop_pid "$FG_PID"
}

# fgctl [-j] COMMAND...: fedgatectl on the running fedgated's control
# socket ($FG_CTL, in its namespace), bounded to 5 s.
fgctl() {
	ip netns exec "$(ns_name "$FG_CTL_NS")" "$FEDGATECTL" -t 5 -s "$FG_CTL" "$@"
}

# fgctl_has_session KEY=VALUE|KEY!=VALUE...: one leg listed by
# `fedgatectl -j sessions` matches every condition. Keys are the JSON
# fields (doc/internals/control-protocol.md); values compare as text
# (booleans: true, false): fgctl_has_session face=public direction=in \
# remote=legacy.example tls=   (an incoming public leg without TLS)
fgctl_has_session() {
	fgctl -j sessions | "$PYTHON" -c '
import json, sys

def text(v):
    return json.dumps(v) if isinstance(v, bool) or v is None else str(v)

def matches(leg, cond):
    neg = "!=" in cond
    key, val = cond.split("!=" if neg else "=", 1)
    return (text(leg.get(key)) != val) if neg else (text(leg.get(key)) == val)

legs = json.load(sys.stdin).get("sessions") or []
sys.exit(0 if any(all(matches(l, c) for c in sys.argv[1:]) for l in legs) else 1)
' "$@"
}

# fgctl_has_flow KEY=VALUE|KEY!=VALUE...: one entry of `fedgatectl -j
# flows` matches every condition, as fgctl_has_session; a KEY may name a
# field of the entry's conntrack object with a dotted path
# (conntrack.nat=redirect, conntrack.original.dst=203.0.113.20:5269).
fgctl_has_flow() {
	fgctl -j flows | "$PYTHON" -c '
import json, sys

def text(v):
    return json.dumps(v) if isinstance(v, bool) or v is None else str(v)

def get(o, path):
    for k in path.split("."):
        o = o.get(k) if isinstance(o, dict) else None
    return o

def matches(f, cond):
    neg = "!=" in cond
    key, val = cond.split("!=" if neg else "=", 1)
    v = text(get(f, key))
    return v != val if neg else v == val

fs = json.load(sys.stdin).get("flows") or []
sys.exit(0 if any(all(matches(f, c) for c in sys.argv[1:]) for f in fs) else 1)
' "$@"
}

# fgctl_route_acked LOCAL REMOTE: the route LOCAL -> REMOTE (as written on
# its outgoing leg) has had stanzas acknowledged by the real server behind
# it (XEP-0198 or XEP-0199) and has none waiting for that.
fgctl_route_acked() {
	fgctl -j routes | "$PYTHON" -c '
import json, sys
rs = [r for r in json.load(sys.stdin).get("routes") or []
      if r["local"] == sys.argv[1] and r["remote"] == sys.argv[2]]
sys.exit(0 if rs and rs[0]["acked"] > 0 and rs[0]["unacked"] == 0 else 1)
' "$@"
}

# ------------------------------------------------------------------ topologies

# Addresses of the fedgate topology (see README.md). Outside: 203.0.113.0/24,
# inside: 192.0.2.0/24; the DMZ has a face on each and does not forward.
OUT_DNS=203.0.113.53
DMZ_PUB=203.0.113.10
REMOTE_ADDR=203.0.113.20	# remote.example: TLS optional, self-signed cert
LEGACY_ADDR=203.0.113.21	# legacy.example: plain TCP, dialback only
DENIED_ADDR=203.0.113.22	# denied.example: denied by fedgated's policy
SECURE_ADDR=203.0.113.23	# secure.example: TLS required, CA-signed cert
IN_DNS=192.0.2.53
DMZ_INT=192.0.2.10
CORP_ADDR=192.0.2.30		# the internal Prosody: corp.internal

# More outside hosts, for the peers of t_ejabberd.sh, t_jabberd2.sh and
# t_legacy.sh (topo_outside_host adds one to topo_fedgate's outside).
EJ_ADDR=203.0.113.24		# ej.example: ejabberd
J2_ADDR=203.0.113.25		# j2.example: jabberd2, plain TCP, dialback
NOCERT_ADDR=203.0.113.26	# nocert.example: TLS without client certificate
OLD_ADDR=203.0.113.27		# old.example: TLS 1.0 only

# topo_outside_host SHORT ADDR: one more host on topo_fedgate's outside
# segment (sw-out), resolving through $OUT_DNS.
topo_outside_host() {
	ns_add "$1" && ns_attach "$1" sw-out eth0 "$2/24" &&
	    ns_resolver "$1" "$OUT_DNS"
}

# topo_fedgate: build the namespaces of the full topology:
#   sw-out, sw-in       the two segments (bridges)
#   dnsout remote legacy denied secure    outside hosts
#   dmz                 eth0 = $DMZ_PUB (outside), eth1 = $DMZ_INT (inside)
#   dnsin corp          inside hosts
# and their resolvers (outside hosts and dmz: $OUT_DNS; inside: $IN_DNS).
# DNS servers and XMPP servers are started separately (topo_fedgate_dns,
# prosody_start), so tests can choose their records and policies.
topo_fedgate() {
	switch_add sw-out && switch_add sw-in || return 1
	for _th in dnsout remote legacy denied secure dmz dnsin corp; do
		ns_add "$_th" || return 1
	done
	ns_attach dnsout sw-out eth0 "$OUT_DNS/24" &&
	ns_attach remote sw-out eth0 "$REMOTE_ADDR/24" &&
	ns_attach legacy sw-out eth0 "$LEGACY_ADDR/24" &&
	ns_attach denied sw-out eth0 "$DENIED_ADDR/24" &&
	ns_attach secure sw-out eth0 "$SECURE_ADDR/24" &&
	ns_attach dmz sw-out eth0 "$DMZ_PUB/24" &&
	ns_attach dmz sw-in eth1 "$DMZ_INT/24" &&
	ns_attach dnsin sw-in eth0 "$IN_DNS/24" &&
	ns_attach corp sw-in eth0 "$CORP_ADDR/24" || return 1
	for _th in remote legacy denied secure dmz; do
		ns_resolver "$_th" "$OUT_DNS" || return 1
	done
	ns_resolver corp "$IN_DNS"
}

# topo_fedgate_dns: split-horizon DNS for topo_fedgate.
#   outside ($OUT_DNS): corp.example -> gw.corp.example ($DMZ_PUB):5269,
#     each remote domain -> its own server;
#   inside ($IN_DNS): each remote domain -> gw-in.corp.internal ($DMZ_INT),
#     corp.internal -> xmpp.corp.internal ($CORP_ADDR).
# Extra records for either side: TOPO_DNS_OUT_EXTRA, TOPO_DNS_IN_EXTRA.
topo_fedgate_dns() {
	# shellcheck disable=SC2086
	dns_start out dnsout "$OUT_DNS" \
	    srv=corp.example,gw.corp.example,5269 host=gw.corp.example,$DMZ_PUB \
	    srv=remote.example,xmpp.remote.example,5269 host=xmpp.remote.example,$REMOTE_ADDR \
	    srv=legacy.example,xmpp.legacy.example,5269 host=xmpp.legacy.example,$LEGACY_ADDR \
	    srv=denied.example,xmpp.denied.example,5269 host=xmpp.denied.example,$DENIED_ADDR \
	    srv=secure.example,xmpp.secure.example,5269 host=xmpp.secure.example,$SECURE_ADDR \
	    ${TOPO_DNS_OUT_EXTRA:-} || return 1
	# shellcheck disable=SC2086
	dns_start in dnsin "$IN_DNS" \
	    srv=corp.internal,xmpp.corp.internal,5269 host=xmpp.corp.internal,$CORP_ADDR \
	    host=gw-in.corp.internal,$DMZ_INT \
	    srv=remote.example,gw-in.corp.internal,5269 \
	    srv=legacy.example,gw-in.corp.internal,5269 \
	    srv=denied.example,gw-in.corp.internal,5269 \
	    srv=secure.example,gw-in.corp.internal,5269 \
	    ${TOPO_DNS_IN_EXTRA:-}
}

# topo_server SHORT [prosody_config options...]: the standard XMPP server of
# host SHORT in topo_fedgate, configured (extra options override the
# standard ones), given its user, and started:
#   remote  remote.example  TLS optional, self-signed certificate: dialback
#   legacy  legacy.example  plain TCP (no STARTTLS at all): dialback only
#   denied  denied.example  like remote; fedgated's policy denies it
#   secure  secure.example  TLS required, certificate from the test CA which
#                           it trusts, s2s_secure_auth: SASL EXTERNAL only
#   corp    corp.internal   the internal server (inside), as Prosody comes:
#                           TLS required on s2s (s2s_require_encryption's
#                           default), s2s_secure_auth off, its own
#                           certificate from the test CA (which it does not
#                           trust): STARTTLS, then dialback
# Users: alice@remote.example, lee@legacy.example, dan@denied.example,
# sam@secure.example, bob@corp.internal; each one's password is NAME-pw.
# fedgated's own certificate for corp.example: cert_make corp.example ca.
topo_server() {
	_th=$1
	shift
	case $_th in
	remote)	set -- "$REMOTE_ADDR" remote.example alice tls=on cert=self "$@" ;;
	legacy)	set -- "$LEGACY_ADDR" legacy.example lee tls=off cert=self "$@" ;;
	denied)	set -- "$DENIED_ADDR" denied.example dan tls=on cert=self "$@" ;;
	secure)	set -- "$SECURE_ADDR" secure.example sam tls=on cert=ca trust_ca=yes \
		    require_encryption=true secure_auth=true "$@" ;;
	corp)	set -- "$CORP_ADDR" corp.internal bob tls=on cert=ca \
		    require_encryption=true "$@" ;;
	*)	note "topo_server: unknown host $_th"; return 1 ;;
	esac
	_a=$1
	_dom=$2
	_user=$3
	shift 3
	_cfg=$(prosody_config "$_th" "$_a" "$_dom" "$@") &&
	    prosody_adduser "$_cfg" "$_user@$_dom" "$_user-pw" &&
	    prosody_start "$_th" "$_th" "$_cfg"
}

# topo_fedgated_conf FILE: write to FILE the part of fedgated's
# configuration that the tests of topo_fedgate share; append the peer
# rules. Control socket $FG_CTL, debug log on stderr, a dialback secret of
# the run, the outside DNS as resolver, the test CA for peer certificates,
# the public face on $DMZ_PUB:5269, the internal face on $DMZ_INT:5269,
# and the local domain corp.example: the internal Prosody at $CORP_ADDR,
# which calls it corp.internal, with a certificate from the test CA.
topo_fedgated_conf() {
	cert_make corp.example ca || return 1
	[ -s "$FG_TMP/dialback.secret" ] ||
	    od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$FG_TMP/dialback.secret"
	cat >"$1" <<CONF
# fedgated for the fedgate interop topology (tests/interop/README.md).
control socket "$FG_CTL" mode 0600
log stderr
log level debug
dialback secret "$(cat "$FG_TMP/dialback.secret")"
resolver $OUT_DNS
tls ca-file "$FG_CA_CRT"
timeout handshake 10s connect 5s dns 5s shutdown 2s

listen public on $DMZ_PUB port 5269
listen internal on $DMZ_INT port 5269

domain "corp.example" {
	upstream "$CORP_ADDR" port 5269
	internal-name "corp.internal"
	certificate "$(cert_path corp.example ca)"
	key "$(key_path corp.example ca)"
}
CONF
}

# ------------------------------------------------------------------ transparent topology

# Where fedgated's transparent listener is, in topo_transparent.
TRANSPARENT_PORT=15269

# topo_transparent: the shape of transparent mode (README.md, "The
# transparent topology"). Outside: dnsout and remote, as in topo_fedgate.
# The DMZ is the inside's gateway: corp's default route is $DMZ_INT and
# the DMZ forwards (ip_forward=1); corp resolves through the public DNS
# ($OUT_DNS), as every host does: no split horizon, nothing inside knows
# fedgated. The DMZ's firewall (nftables table "lab") forwards only the
# inside's DNS, with source NAT to $DMZ_PUB (the outside has no route
# inside); its outbound 5269 is diverted by topo_transparent_nft.
topo_transparent() {
	switch_add sw-out && switch_add sw-in || return 1
	for _th in dnsout remote dmz corp; do
		ns_add "$_th" || return 1
	done
	ns_attach dnsout sw-out eth0 "$OUT_DNS/24" &&
	ns_attach remote sw-out eth0 "$REMOTE_ADDR/24" &&
	ns_attach dmz sw-out eth0 "$DMZ_PUB/24" &&
	ns_attach dmz sw-in eth1 "$DMZ_INT/24" &&
	ns_attach corp sw-in eth0 "$CORP_ADDR/24" || return 1
	ns_exec corp ip route add default via "$DMZ_INT" || return 1
	ns_exec dmz sysctl -qw net.ipv4.ip_forward=1 || return 1
	ns_exec dmz nft -f - <<NFT || return 1
table ip lab {
	chain through {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "eth1" oifname "eth0" meta l4proto { tcp, udp } th dport 53 accept
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 192.0.2.0/24 oifname "eth0" masquerade
	}
}
NFT
	for _th in remote dmz corp; do
		ns_resolver "$_th" "$OUT_DNS" || return 1
	done
}

# topo_transparent_dns: the public DNS, the only one: corp.example ->
# gw.corp.example ($DMZ_PUB):5269, remote.example -> its own server.
topo_transparent_dns() {
	dns_start out dnsout "$OUT_DNS" \
	    srv=corp.example,gw.corp.example,5269 host=gw.corp.example,$DMZ_PUB \
	    srv=remote.example,xmpp.remote.example,5269 \
	    host=xmpp.remote.example,$REMOTE_ADDR
}

# topo_transparent_nft redirect|tproxy: divert the inside's outbound TCP
# 5269 in the DMZ to fedgated's transparent listener ($DMZ_INT,
# $TRANSPARENT_PORT) with contrib/nftables-MODE.nft as shipped (only its
# port definition set); tproxy adds the policy routing it needs. Replaces
# what an earlier call (or topo_upstream_transparent_nft) loaded.
topo_transparent_nft() {
	ns_exec dmz nft delete table inet fedgate 2>/dev/null
	ns_exec dmz nft delete table inet fedgate_upstream 2>/dev/null
	ns_exec dmz ip rule del fwmark 1 lookup 100 2>/dev/null
	ns_exec dmz ip route flush table 100 2>/dev/null
	sed "s/^define fedgated_port = [0-9]*/define fedgated_port = $TRANSPARENT_PORT/" \
	    "$top_srcdir/contrib/nftables-$1.nft" >"$FG_TMP/nftables-$1.nft" &&
	    ns_exec dmz nft -f "$FG_TMP/nftables-$1.nft" || return 1
	[ "$1" = tproxy ] || return 0
	ns_exec dmz ip rule add fwmark 1 lookup 100 &&
	    ns_exec dmz ip route add local 0.0.0.0/0 dev lo table 100
}

# topo_upstream_transparent_nft: let fedgated's connections to the internal
# server from remote addresses (upstream ... transparent) get their answers:
# contrib/nftables-upstream-transparent.nft as shipped, and its policy
# routing (kept if topo_transparent_nft tproxy added it already).
topo_upstream_transparent_nft() {
	ns_exec dmz nft -f "$top_srcdir/contrib/nftables-upstream-transparent.nft" ||
	    return 1
	ns_exec dmz ip rule show | grep -q 'fwmark 0x1 lookup 100' ||
	    ns_exec dmz ip rule add fwmark 1 lookup 100 || return 1
	ns_exec dmz ip route show table 100 | grep -q '^local default' ||
	    ns_exec dmz ip route add local 0.0.0.0/0 dev lo table 100
}
