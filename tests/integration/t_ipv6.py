"""IPv6 end to end: every socket on ::1.

dnsmasq (started here) listens on ::1 and holds remote.example's SRV
record, whose target has only an AAAA record, ::1. fedgated listens on
::1 (public and internal faces), asks the DNS over IPv6, and connects
from its IPv6 source address. The internal server (scripted, on ::1)
writes to remote.example: the message goes out by SRV and AAAA; then
remote.example (scripted, on ::1) writes back: fedgated verifies its
dialback key with remote.example's authoritative server, found the same
way, and relays the message to the internal server.
"""

import os
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (Dnsmasq, Fedgated, Inbox, PeerError, Server, Tap,
                     authoritative_server, dialback_stream, receiving_server,
                     tempdir, verify_back, wait_until)

SECRET = "ipv6-test-secret-0123456789abcdef"
REMOTE_SECRET = "the-remote-servers-own-secret-0006"
tap = Tap()
tmp = tempdir("fg-ipv6-")
dnsmasq = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
if not os.path.exists(dnsmasq):
    print("ok 1 - IPv6 # SKIP dnsmasq is not installed")
    sys.exit(0)


def free_port6():
    s = socket.socket(socket.AF_INET6)
    try:
        s.bind(("::1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


try:
    public_port, internal_port = free_port6(), free_port6()
except OSError:
    print("ok 1 - IPv6 # SKIP no IPv6 on loopback")
    sys.exit(0)
remote_inbox, internal_inbox = Inbox(), Inbox()


def receive_as_remote(peer, hdr, sid, r):
    verdict = verify_back(public_port, "remote.example", r.get("from"), sid,
                          r.text, host="::1")
    peer.send("<db:result from='remote.example' to='%s' type='%s'/>" % (
        r.get("from"), verdict))
    remote_inbox.collect(peer)


rem_srv = Server(authoritative_server("remote.example", REMOTE_SECRET,
                                      then=receive_as_remote), host="::1")
up_srv = Server(receiving_server("corp.internal", internal_port,
                                 internal_inbox, host="::1"), host="::1")
try:
    dns = Dnsmasq(tmp, [
    "--local=/example/",
    "--host-record=xmpp6.remote.example,::1",
    "--srv-host=_xmpp-server._tcp.remote.example,xmpp6.remote.example,%d,0,0"
    % rem_srv.port,
], host="::1")
except PeerError as e:
    tap.ok(False, "IPv6: dnsmasq starts", e)
    sys.exit(tap.done())
dns_port = dns.port


conf = """
dialback secret "%s"
resolver ::1 port %d
listen public on ::1 port %d
listen internal on ::1 port %d
source public ::1
source internal ::1
timeout connect 2s
domain "corp.example" {
	upstream "::1" port %d trusted
	internal-name "corp.internal"
}
peer default {
	allow
	tls none
	auth dialback
}
""" % (SECRET, dns_port, public_port, internal_port, up_srv.port)

fg = None
streams = []
try:
    fg = Fedgated(conf, tmp)
    log = fg.log_text()
    tap.ok("listening on [::1]:%d (public" % public_port in log and
           "listening on [::1]:%d (internal" % internal_port in log and
           "forwarder ::1 port %d" % dns_port in log,
           "fedgated listens on ::1 and asks the DNS on ::1", log[-2000:])

    p = dialback_stream(internal_port, "corp.internal", "remote.example",
                        host="::1")[0]
    streams.append(p)
    p.send("<message from='a@corp.internal' to='b@remote.example' id='o1'>"
           "<body>out over IPv6</body></message>")
    tap.ok(remote_inbox.wait_id("o1", 20), "a message from the internal "
           "server reaches remote.example by SRV and AAAA",
           fg.log_text()[-3000:])
    tap.ok("connected to [::1]:%d" % rem_srv.port in fg.log_text(),
           "fedgated connected to the SRV target's IPv6 address",
           fg.log_text()[-2000:])
    tap.ok(rem_srv.peer_addrs and set(rem_srv.peer_addrs) == {"::1"},
           "remote.example saw the legs come from ::1", rem_srv.peer_addrs)

    q, _, _, res = dialback_stream(public_port, "remote.example",
                                   "corp.example", secret=REMOTE_SECRET,
                                   host="::1")
    streams.append(q)
    tap.ok(res.get("type") == "valid", "remote.example's stream on ::1 "
           "is verified with its authoritative server found by SRV", res)
    q.send("<message from='b@remote.example' to='a@corp.example' id='i1'>"
           "<body>in over IPv6</body></message>")
    tap.ok(internal_inbox.wait_id("i1", 20), "and its message reaches the "
           "internal server on ::1", fg.log_text()[-3000:])
    tap.ok(up_srv.peer_addrs == ["::1"], "the internal server saw the "
           "leg come from ::1", up_srv.peer_addrs)
    dl = open("%s/dnsmasq.log" % tmp).read()
    tap.ok("query[AAAA] xmpp6.remote.example from ::1" in dl,
           "the AAAA query came over IPv6", dl[-2000:])
except (PeerError, OSError) as e:
    tap.ok(False, "IPv6 end to end", "%s\n%s" % (
        e, fg.log_text()[-3000:] if fg else ""))
finally:
    for s in streams:
        s.close()
    if fg:
        tap.ok(fg.alive(), "fedgated is still serving")
        fg.finish(tap)
    dns.stop()
    rem_srv.stop()
    up_srv.stop()
sys.exit(tap.done())
