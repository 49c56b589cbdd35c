"""Bidirectional streams (XEP-0288) on a real socket.

remote.example (scripted) connects to fedgated's public face, finds
<bidi xmlns='urn:xmpp:features:bidi'/> in the features, asks for it and
authenticates by dialback (its authoritative server is scripted, reached
by a static route). The internal server (scripted, a trusted upstream)
then sends a message to remote.example: fedgated writes it on
remote.example's own connection, and opens none of its own (the static
route's server sees the verification only). fedgatectl -j sessions marks
the leg bidi and lists both flows. When remote.example's connection
ends, the next message goes out on a new outgoing leg to the same server.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (NS_DB, NS_STREAM, Fedgated, Inbox, Peer, PeerError,
                     Server, Tap, authoritative_server, dialback_key,
                     dialback_stream, free_port, tempdir, verify_back,
                     wait_until)

SECRET = "bidi-secret-0123456789abcdef0123"             # fedgated's
REMOTE_SECRET = "remote-secret-for-its-own-keys-0003"   # remote.example's
NS_BIDI_FEATURE = "urn:xmpp:features:bidi"
tap = Tap()
tmp = tempdir("fg-bidi-")
public_port, internal_port = free_port(), free_port()
inbox = Inbox()


def remote_receiving(peer, hdr, sid, el):
    """remote.example's server when fedgated connects to it for the route:
    verify fedgated's key with its public face, then collect."""
    verdict = verify_back(public_port, "remote.example", el.get("from"),
                          sid, el.text)
    peer.send("<db:result from='remote.example' to='%s' type='%s'/>" % (
        el.get("from"), verdict))
    inbox.collect(peer)


remote_srv = Server(authoritative_server("remote.example", REMOTE_SECRET,
                                         then=remote_receiving))
conf = """
dialback secret "%s"
listen public on 127.0.0.1 port %d
listen internal on 127.0.0.1 port %d
domain "corp.example" {
	upstream "127.0.0.1" port %d trusted
	internal-name "corp.internal"
}
peer "remote.example" {
	allow
	tls none
	auth dialback
	route "127.0.0.1" port %d
}
peer default {
	deny
}
""" % (SECRET, public_port, internal_port, free_port(), remote_srv.port)

try:
    fg = Fedgated(conf, tmp)
except PeerError as e:
    tap.ok(False, "fedgated starts", e)
    sys.exit(tap.done())

# 1. remote.example connects, is offered bidi, asks for it, authenticates.
p = Peer(port=public_port)
p.open_stream(frm="remote.example", to="corp.example")
hdr = p.expect_header()
feats = p.expect_element("features", NS_STREAM)
tap.ok(feats.find("bidi", NS_BIDI_FEATURE) is not None,
       "the features offer bidi (XEP-0288)", repr(feats))
p.send("<bidi xmlns='urn:xmpp:bidi'/>")
p.send("<db:result from='remote.example' to='corp.example'>%s</db:result>"
       % dialback_key(REMOTE_SECRET, "corp.example", "remote.example",
                      hdr.get("id")))
res = p.expect_element("result", NS_DB)
tap.ok(res.get("type") == "valid", "remote.example authenticated", res)
tap.ok(fg.wait_log("remote.example->corp.example: bidi enabled"),
       "the log says bidi is enabled on the leg, with the peer")

# 2. The inside sends to remote.example: on remote.example's connection.
q, _, _, qres = dialback_stream(internal_port, "corp.internal",
                                "remote.example")
tap.ok(qres.get("type") == "valid", "the trusted upstream is in", qres)
q.send("<message from='bob@corp.internal/desk' to='alice@remote.example' "
       "id='m1'><body>over the same connection</body></message>")
try:
    m = p.expect_element("message")
except PeerError as e:
    m = None
    tap.ok(False, "the message comes back on remote.example's connection",
           e)
if m is not None:
    tap.ok(m.get("id") == "m1" and
           m.get("from") == "bob@corp.example/desk",
           "the message comes back on remote.example's connection, from "
           "the public name", m)
tap.ok(remote_srv.connections == 1,
       "fedgated opened no connection to remote.example's server but "
       "the verification", "connections: %d" % remote_srv.connections)

sessions = fg.ctl_json("sessions")["sessions"]
leg = [s for s in sessions if s["face"] == "public" and
       s["direction"] == "in" and s["remote"] == "remote.example"]
flows = [(f["from"], f["to"]) for f in leg[0]["carries"]] if leg else []
tap.ok(len(leg) == 1 and leg[0]["bidi"] is True and
       ("remote.example", "corp.example") in flows and
       ("corp.example", "remote.example") in flows,
       "sessions: the incoming leg is bidi and carries both flows", leg)
routes = fg.ctl_json("routes")["routes"]
tap.ok(any(r["face"] == "public" and r["remote"] == "remote.example" and
           leg and r["leg"] == leg[0]["id"] for r in routes),
       "routes: the route to remote.example names that leg", routes)

# 3. remote.example's connection ends: the next message dials out.
p.close()
tap.ok(fg.wait_log("leg gone (the bidirectional stream closed)") or
       fg.wait_log("public remote.example->corp.example: closed"),
       "fedgated sees the bidirectional leg end")
wait_until(lambda: not any(
    s["direction"] == "in" and s["face"] == "public"
    for s in fg.ctl_json("sessions")["sessions"]), 10)
q.send("<message from='bob@corp.internal/desk' to='alice@remote.example' "
       "id='m2'><body>on a leg of its own</body></message>")
got = inbox.wait_id("m2")
tap.ok(got is not None and got.get("from") == "bob@corp.example/desk",
       "the next message goes out on a new outgoing leg", got)
tap.ok(remote_srv.connections == 2, "one new connection for it",
       "connections: %d" % remote_srv.connections)
q.close()
fg.finish(tap)
remote_srv.stop()
tap.ok(not remote_srv.errors, "the scripted server saw no protocol error",
       remote_srv.errors)
sys.exit(tap.done())
