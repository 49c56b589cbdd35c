"""Limits: connections per peer address (refused at accept), connections
per peer domain (policy-violation when one more stream authenticates),
and a peer rule's stanza size (policy-violation on a bigger stanza)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (Fedgated, Peer, PeerError, Server, Tap,
                     authoritative_server, dialback_stream, free_port,
                     tempdir)

SECRET = "limits-secret-0123456789abcdef00"
REMOTE_SECRET = "limits-remote-secret-0123456789ab"
tap = Tap()
tmp = tempdir("fg-limits-")
public_port = free_port()
auth_srv = Server(authoritative_server("remote.example", REMOTE_SECRET))
conf = """
dialback secret "%s"
listen public on 127.0.0.1 port %d
limit connections-per-address 3
domain "corp.example" {
	upstream "127.0.0.1" port %d
}
peer "remote.example" {
	allow
	tls none
	route "127.0.0.1" port %d
	limit connections 1
	limit stanza-size 1k
}
peer default {
	deny
}
""" % (SECRET, public_port, free_port(), auth_srv.port)

try:
    fg = Fedgated(conf, tmp)
except PeerError as e:
    tap.ok(False, "fedgated starts", e)
    sys.exit(tap.done())


try:
    first, _, _, r = dialback_stream(public_port, "remote.example",
                                     "corp.example", REMOTE_SECRET)
    tap.ok(r.get("type") == "valid", "the first stream authenticates", r)
    second = dialback_stream(public_port, "remote.example", "corp.example",
                             REMOTE_SECRET, wait=False)[0]
    cond = second.expect_stream_error()
    tap.ok(cond == "policy-violation", "a second stream of remote.example "
           "gets policy-violation (limit connections 1)", cond)
    tap.ok(fg.wait_log("limit connections", 5),
           "the log names the limit")
    second.close()
    first.send("<message from='a@remote.example' to='b@corp.example'>"
               "<body>%s</body></message>" % ("x" * 2048))
    cond = first.expect_stream_error()
    tap.ok(cond == "policy-violation", "a 2 KiB stanza from a peer limited "
           "to 1k gets policy-violation", cond)
    first.close()
except PeerError as e:
    tap.ok(False, "per-domain limits", "%s\n%s" % (e, fg.log_text()))

try:
    idle = [Peer(port=public_port) for _ in range(3)]
    fourth = Peer(port=public_port)
    try:
        fourth.expect_header(timeout=5)
        refused = False
    except PeerError:
        refused = fourth.closed
    tap.ok(refused, "a fourth connection from the same address is closed "
           "at once (limit connections-per-address 3)")
    tap.ok(fg.wait_log("connections-per-address", 5),
           "the log says which limit refused it")
    for p in idle + [fourth]:
        p.close()
except PeerError as e:
    tap.ok(False, "per-address limit", e)

tap.ok(fg.alive(), "fedgated is still serving")
fg.finish(tap)
auth_srv.stop()
sys.exit(tap.done())
