"""Back-pressure: when the remote server stops reading, fedgated's
outgoing leg congests and fedgated stops reading the internal server's
stream instead of queueing and bouncing; once the remote reads again,
every stanza arrives, in order, and none is bounced."""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (NS_DB, Fedgated, Inbox, PeerError, Server, Tap,
                     accept_stream, dialback_stream, free_port, tempdir,
                     verify_back, wait_until)

SECRET = "backpressure-secret-0123456789ab"
COUNT, SIZE = 160, 100 * 1024
tap = Tap()
tmp = tempdir("fg-bp-")
public_port, internal_port = free_port(), free_port()
inbox = Inbox()
gate = threading.Event()


def slow_remote(peer):
    """remote.example: authenticates fedgated, then reads nothing until
    the gate opens."""
    hdr, sid = accept_stream(peer, "remote.example")
    r = peer.expect_element("result", NS_DB)
    verdict = verify_back(public_port, "remote.example", r.get("from"), sid,
                          r.text)
    peer.send("<db:result from='remote.example' to='%s' type='%s'/>" % (
        r.get("from"), verdict))
    gate.wait(60)
    inbox.collect(peer, timeout=30)


rem_srv = Server(slow_remote)
conf = """
dialback secret "%s"
listen public on 127.0.0.1 port %d
listen internal on 127.0.0.1 port %d
limit queue 8
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


def sessions():
    return fg.ctl_json("sessions")["sessions"]


def paused():
    return any(s["face"] == "internal" and s["direction"] == "in" and
               s.get("paused") for s in sessions())


sent = []
try:
    p, _, _, res = dialback_stream(internal_port, "corp.internal",
                                   "remote.example", timeout=90)
    tap.ok(res.get("type") == "valid",
           "the internal stream authenticates")
    body = "y" * SIZE

    def writer():
        for i in range(COUNT):
            p.send("<message from='a@corp.internal' to='b@remote.example' "
                   "id='bp%d'><body>%s</body></message>" % (i, body))
            sent.append(i)
    w = threading.Thread(target=writer, daemon=True)
    w.start()
    tap.ok(wait_until(paused, 60), "fedgated pauses the internal stream "
           "while remote.example does not read",
           "%d sent; %s" % (len(sent), sessions()))
    tap.ok(len(sent) < COUNT, "the sender is held back (%d of %d written)"
           % (len(sent), COUNT))
    gate.set()
    w.join(90)
    tap.ok(len(sent) == COUNT, "once remote.example reads, the sender "
           "gets through", len(sent))
    tap.ok(wait_until(lambda: len(inbox.stanzas) >= COUNT, 60),
           "every stanza arrives", len(inbox.stanzas))
    ids = [e.get("id") for e in inbox.stanzas]
    tap.ok(ids == ["bp%d" % i for i in range(COUNT)], "in order")
    routes = fg.ctl_json("routes")["routes"]
    tap.ok(all(r["bounced"] == 0 and r["dropped"] == 0 for r in routes),
           "nothing bounced or dropped", routes)
    p.close()
except PeerError as e:
    tap.ok(False, "back-pressure", "%s\n%s" % (e, fg.log_text()[-3000:]))

gate.set()
tap.ok(fg.alive(), "fedgated is still serving")
fg.finish(tap)
rem_srv.stop()
sys.exit(tap.done())
