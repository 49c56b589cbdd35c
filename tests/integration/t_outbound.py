"""The internal server's outbound federation through fedgated.

The internal server (scripted, corp.internal) opens a stream to
remote.example on fedgated's internal face; fedgated verifies its dialback
key against the upstream (the internal server is authoritative for
corp.internal), then relays its stanzas on a public outgoing leg as
corp.example; remote.example (scripted) checks fedgated's key by asking
fedgated's public face (db:verify), and receives the message with 'from'
rewritten. Then undeliverable stanzas bounce back with the right stanza
error, and a denied destination is refused.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (NS_STANZA_ERR, Fedgated, Inbox, Peer, PeerError, Server,
                     Tap, authoritative_server, dialback_stream, free_port,
                     receiving_server, tempdir, verify_back, wait_until)

SECRET = "outbound-secret-0123456789abcdef"
INTERNAL_SECRET = "the-internal-servers-own-secret-42"
tap = Tap()
tmp = tempdir("fg-outbound-")
public_port, internal_port, dead_port = free_port(), free_port(), free_port()
remote_inbox, internal_inbox = Inbox(), Inbox()


rem_srv = Server(receiving_server("remote.example", public_port,
                                  remote_inbox))
# The internal server: authoritative for its own keys, and receiving
# server for the streams fedgated opens to it (bounces come that way).
up_srv = Server(authoritative_server(
    "corp.internal", INTERNAL_SECRET,
    then=lambda peer, hdr, sid, r: receive_back(peer, sid, r)))
conf = """
dialback secret "%s"
listen public on 127.0.0.1 port %d
listen internal on 127.0.0.1 port %d
timeout connect 2s
timeout backoff 60s
domain "corp.example" {
	upstream "127.0.0.1" port %d
	internal-name "corp.internal"
}
peer "remote.example" {
	allow
	tls none
	route "127.0.0.1" port %d
}
peer "unreachable.example" {
	allow
	tls none
	route "127.0.0.1" port %d
}
peer "denied.example" {
	deny
}
peer default {
	deny
}
""" % (SECRET, public_port, internal_port, up_srv.port, rem_srv.port,
       dead_port)

def receive_back(peer, sid, r):
    verdict = verify_back(internal_port, "corp.internal", r.get("from"), sid,
                          r.text)
    peer.send("<db:result from='corp.internal' to='%s' type='%s'/>" % (
        r.get("from"), verdict))
    internal_inbox.collect(peer)


try:
    fg = Fedgated(conf, tmp)
except PeerError as e:
    tap.ok(False, "fedgated starts", e)
    sys.exit(tap.done())


def internal_stream(to):
    """The internal server opens a stream to `to` and authenticates."""
    p, _, _, res = dialback_stream(internal_port, "corp.internal", to,
                                   INTERNAL_SECRET)
    return p, res


try:
    p, res = internal_stream("remote.example")
    tap.ok(res.get("type") == "valid",
           "the internal server's key is verified with the upstream", res)
    p.send("<message from='alice@corp.internal/desk' to='bob@remote.example'"
           " id='o1' type='chat'><body>token-outbound-1</body></message>")
    tap.ok(remote_inbox.wait_id("o1"),
           "the message reaches remote.example", fg.log_text()[-3000:])
    m = remote_inbox.by_id("o1")
    if m:
        tap.ok(m[0].get("from") == "alice@corp.example/desk",
               "from is rewritten to the public name", m[0])
        tap.ok(m[0].find("body").text == "token-outbound-1",
               "the body passes unchanged", m[0])
    p.close()
except PeerError as e:
    tap.ok(False, "outbound flow", "%s\n%s" % (e, fg.log_text()[-4000:]))

# Undeliverable: nothing listens behind unreachable.example's route.
try:
    p, res = internal_stream("unreachable.example")
    tap.ok(res.get("type") == "valid", "a stream to unreachable.example "
           "authenticates (the failure is on the far side)")
    p.send("<message from='alice@corp.internal' to='x@unreachable.example'"
           " id='u1'><body>lost?</body></message>")
    p.send("<presence from='alice@corp.internal' to='x@unreachable.example'"
           "/>")

    def bounced():
        return any(e.get("id") == "u1" and e.get("type") == "error"
                   for e in internal_inbox.stanzas)
    tap.ok(wait_until(bounced, 20), "the message bounces back to the "
           "internal server", fg.log_text()[-3000:])
    b = internal_inbox.by_id("u1")
    if b:
        err = b[0].find("error")
        cond = [c.name for c in (err.children if err else [])
                if c.ns == NS_STANZA_ERR and c.name != "text"]
        tap.ok(cond == ["remote-server-not-found"],
               "with remote-server-not-found", b[0])
        tap.ok(b[0].get("from") == "x@unreachable.example" and
               b[0].get("to") == "alice@corp.internal",
               "addressed from the unreachable JID to the sender", b[0])
    tap.ok(fg.wait_log("presence", 5) and "dropped" in fg.log_text(),
           "the presence is not bounced; its drop is logged",
           [l for l in fg.log_text().splitlines() if "route" in l][-5:])

    # The failure is cached: the next stanza bounces at once, no new leg.
    attempts = lambda: fg.log_text().count(
        "out public corp.example->unreachable.example: connecting")
    before = attempts()
    p.send("<message from='alice@corp.internal' to='x@unreachable.example'"
           " id='u2'><body>again</body></message>")
    tap.ok(wait_until(lambda: internal_inbox.by_id("u2"), 10),
           "the next message bounces too")
    b = internal_inbox.by_id("u2")
    text = b[0].find("error").find("text") if b else None
    tap.ok(text is not None and "(cached: no new attempt for" in text.text,
           "with the cached reason", b)
    tap.ok(attempts() == before, "and no new connection was tried",
           "%d then %d" % (before, attempts()))
    r = [x for x in fg.ctl_json("routes")["routes"]
         if x["remote"] == "unreachable.example"]
    tap.ok(r and r[0]["failure"] is not None and
           r[0]["failure"]["failures"] == 1 and
           r[0]["failure"]["retry_in_ms"] > 0 and
           r[0]["failure"]["condition"] == "remote-server-not-found",
           "fedgatectl routes shows the failure cache", r)
    rc, out, err = fg.ctl("routes")
    tap.ok("FAILED" in out and "1, retry in" in out and
           "corp.example->unreachable.example: remote-server-not-found" in out,
           "and says it in text", out)
    rc, out, err = fg.ctl("retry", "unreachable.example")
    tap.ok("1 route will try again at once" in out, "fedgatectl retry "
           "clears it", out + err)
    p.send("<message from='alice@corp.internal' to='x@unreachable.example'"
           " id='u3'><body>once more</body></message>")
    tap.ok(wait_until(lambda: internal_inbox.by_id("u3"), 10) and
           attempts() > before, "after it a new connection is tried",
           "%d then %d" % (before, attempts()))
    p.close()
except PeerError as e:
    tap.ok(False, "bounce flow", "%s\n%s" % (e, fg.log_text()[-4000:]))

# A denied destination is refused at the stream header.
try:
    p = Peer(port=internal_port)
    p.open_stream(frm="corp.internal", to="denied.example")
    cond = p.expect_stream_error()
    tap.ok(cond == "policy-violation",
           "a stream to a denied domain gets policy-violation", cond)
    p.close()
except PeerError as e:
    tap.ok(False, "denied destination", e)

# An internal stream claiming a domain that is not local.
try:
    p = Peer(port=internal_port)
    p.open_stream(frm="intruder.example", to="remote.example")
    cond = p.expect_stream_error()
    tap.ok(cond == "invalid-from", "a non-local from on the internal face "
           "gets invalid-from", cond)
    p.close()
except PeerError as e:
    tap.ok(False, "non-local from", e)

tap.ok(fg.alive(), "fedgated is still serving")
fg.finish(tap)
log = fg.log_text()
tap.ok("closed:" in log, "leg ends are logged with a reason")
rem_srv.stop()
up_srv.stop()
tap.ok(not rem_srv.errors and not up_srv.errors,
       "the scripted servers saw no protocol error",
       rem_srv.errors + up_srv.errors)
sys.exit(tap.done())
