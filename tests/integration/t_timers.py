"""Timers: a peer that opens a connection and says nothing is closed with
connection-timeout after the handshake time; a ready outgoing leg sends
whitespace keepalives while idle, and closes cleanly after the idle time."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (Fedgated, Inbox, Peer, PeerError, Server, Tap,
                     dialback_stream, free_port, receiving_server, tempdir,
                     wait_until)

SECRET = "timers-secret-0123456789abcdef00"
tap = Tap()
tmp = tempdir("fg-timers-")
public_port, internal_port = free_port(), free_port()
inbox = Inbox()
rem_srv = Server(receiving_server("remote.example", public_port, inbox))
conf = """
dialback secret "%s"
listen public on 127.0.0.1 port %d
listen internal on 127.0.0.1 port %d
timeout handshake 1s
timeout idle 4s
keepalive 1s
domain "corp.example" {
	upstream "127.0.0.1" port %d trusted
	internal-name "corp.internal"
}
peer "remote.example" {
	allow
	tls none
	route "127.0.0.1" port %d
}
peer default {
	deny
}
""" % (SECRET, public_port, internal_port, free_port(), rem_srv.port)

try:
    fg = Fedgated(conf, tmp)
except PeerError as e:
    tap.ok(False, "fedgated starts", e)
    sys.exit(tap.done())

try:
    silent = Peer(port=public_port)
    cond = silent.expect_stream_error(timeout=5)
    tap.ok(cond == "connection-timeout", "a silent peer gets "
           "connection-timeout after the handshake time", cond)
    silent.close()
except PeerError as e:
    tap.ok(False, "handshake timeout", e)


def out_leg():
    for s in fg.ctl_json("sessions")["sessions"]:
        if s["face"] == "public" and s["direction"] == "out" and \
                not s["verify"]:
            return s
    return None


try:
    p = dialback_stream(internal_port, "corp.internal", "remote.example")[0]
    p.send("<message from='a@corp.internal' to='b@remote.example' id='k1'>"
           "<body>then silence</body></message>")
    tap.ok(inbox.wait_id("k1"), "the message is delivered")
    first = out_leg()
    tap.ok(first is not None and wait_until(
        lambda: (out_leg() or {}).get("bytes_out", 0) > first["bytes_out"],
        5), "an idle ready leg sends whitespace keepalives", first)
    tap.ok(wait_until(lambda: out_leg() is None, 10) and
           fg.wait_log("idle for 4s", 2), "after the idle time the leg "
           "closes", fg.log_text()[-1500:])
    tap.ok(not inbox.errors, "cleanly, without a stream error",
           inbox.errors)
    p.close()
except PeerError as e:
    tap.ok(False, "keepalive and idle", "%s\n%s" % (e, fg.log_text()))

tap.ok(fg.alive(), "fedgated is still serving")
fg.finish(tap)
rem_srv.stop()
sys.exit(tap.done())
