"""Public incoming legs: a remote server connects to fedgated's public face.

Scenario: remote.example (scripted) opens a stream to corp.example, is
verified by dialback against its authoritative server (scripted, reached by
a static route), and sends a message; fedgated relays it to the internal
server (scripted, corp.internal through the rewrite map), which verifies
fedgated's dialback key through fedgated's internal face. Then every way a
peer can be refused, each with its exact stream error, while fedgated keeps
serving.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (NS_DB, NS_STREAM, NS_TLS, Fedgated, Inbox, Peer,
                     PeerError, Server, Tap, authoritative_server,
                     dialback_key, dialback_stream, free_port, make_cert,
                     receiving_server, tempdir)

SECRET = "integration-secret-0123456789abcdef"       # fedgated's
REMOTE_SECRET = "remote-secret-for-its-own-keys-0001"  # remote.example's
tap = Tap()
tmp = tempdir("fg-inbound-")
public_port, internal_port = free_port(), free_port()
inbox = Inbox()


crt, key = make_cert(tmp, "corp.example")
auth_srv = Server(authoritative_server("remote.example", REMOTE_SECRET))
int_srv = Server(receiving_server("corp.internal", internal_port, inbox))
conf = """
dialback secret "%s"
listen public on 127.0.0.1 port %d
listen internal on 127.0.0.1 port %d
domain "corp.example" {
	upstream "127.0.0.1" port %d
	internal-name "corp.internal"
	certificate "%s"
	key "%s"
}
peer "remote.example" {
	allow
	tls none
	auth dialback
	route "127.0.0.1" port %d
}
peer "remote2.example" {
	allow
	tls none
	route "127.0.0.1" port %d
}
peer "secure.example" {
	allow
	tls required
}
peer "denied.example" {
	deny
}
peer default {
	deny
}
""" % (SECRET, public_port, internal_port, int_srv.port, crt, key,
       auth_srv.port, auth_srv.port)

try:
    fg = Fedgated(conf, tmp)
except PeerError as e:
    tap.ok(False, "fedgated starts", e)
    sys.exit(tap.done())


# 1. The whole inbound flow.
try:
    p, hdr, feats, res = dialback_stream(public_port, "remote.example",
                                         "corp.example", REMOTE_SECRET)
    tap.ok(hdr.get("from") == "corp.example" and hdr.get("id"),
           "fedgated answers as corp.example with a stream id")
    tap.ok(feats.find("starttls", NS_TLS) is None,
           "a tls-none peer is not offered STARTTLS")
    tap.ok(res.get("type") == "valid", "dialback: remote.example is valid",
           res)
    p.send("<message from='alice@remote.example/pc' to='bob@corp.example' "
           "type='chat' id='m1'><body>token-inbound-1 &amp; more</body>"
           "<x xmlns='urn:example:extra'><y a='1'/></x></message>")
    m = inbox.by_id("m1") if inbox.wait_id("m1") else []
    tap.ok(m, "the message reaches the internal server", inbox.stanzas)
    if m:
        tap.ok(m[0].get("to") == "bob@corp.internal",
               "to is rewritten to the internal name", m[0])
        tap.ok(m[0].get("from") == "alice@remote.example/pc",
               "from is kept", m[0])
        tap.ok(m[0].find("body").text == "token-inbound-1 & more" and
               m[0].find("x", "urn:example:extra") is not None,
               "the payload passes unchanged", m[0])
    # Piggybacking: a second domain authenticates on the same stream.
    key2 = dialback_key(REMOTE_SECRET, "corp.example", "remote2.example",
                        hdr.get("id"))
    p.send("<db:result from='remote2.example' to='corp.example'>%s"
           "</db:result>" % key2)
    r2 = p.expect_element("result", NS_DB)
    tap.ok(r2.get("type") == "valid" and r2.get("to") == "remote2.example",
           "a second domain authenticates on the same stream", r2)
    p.send("<message from='x@remote2.example' to='bob@corp.example' "
           "id='m2'><body>piggyback</body></message>")
    tap.ok(inbox.wait_id("m2"), "and its stanzas are relayed too")
    # A denied domain piggybacking: only its db:result is refused.
    p.send("<db:result from='denied.example' to='corp.example'>00"
           "</db:result>")
    r3 = p.expect_element("result", NS_DB)
    tap.ok(r3.get("type") == "error" and r3.find("error") is not None and
           r3.find("error").find("policy-violation") is not None,
           "a denied domain piggybacking gets a policy-violation "
           "db:result error, the stream stays", r3)
    p.send("<message from='alice@remote.example' to='bob@corp.example' "
           "id='m4'><body>still here</body></message>")
    tap.ok(inbox.wait_id("m4"), "the stream still relays for the others")
    # A stanza from a domain that did not authenticate on this leg.
    p.send("<message from='eve@other.example' to='bob@corp.example'>"
           "<body>x</body></message>")
    tap.ok(p.expect_stream_error() == "invalid-from",
           "an unauthenticated from ends the leg with invalid-from")
    p.close()
except PeerError as e:
    tap.ok(False, "inbound dialback flow", "%s\n%s" % (e, fg.log_text()))


def refused(desc, cond, frm, to, before=None):
    try:
        p = Peer(port=public_port)
        p.open_stream(frm=frm, to=to)
        if before:
            before(p)
        got = p.expect_stream_error()
        tap.ok(got == cond, desc, "got %s" % got)
        p.close()
    except (PeerError, OSError) as e:
        tap.ok(False, desc, e)


# A prefix declared on the stream header and used in a stanza: the
# declaration travels with the relayed stanza; then a stanza without 'to'.
try:
    p = dialback_stream(public_port, "remote.example", "corp.example",
                        REMOTE_SECRET,
                        extra=" xmlns:ex='urn:example:prefixed'")[0]
    p.send("<message from='alice@remote.example' to='bob@corp.example' "
           "id='m3'><ex:note>prefixed</ex:note></message>")
    m = inbox.wait_id("m3")
    tap.ok(m is not None and m.find("note", "urn:example:prefixed")
           is not None, "a header-declared prefix is carried onto the "
           "relayed stanza", m)
    p.send("<message from='alice@remote.example'><body>x</body></message>")
    tap.ok(p.expect_stream_error() == "improper-addressing",
           "a stanza without 'to' gets improper-addressing")
    p.close()
except PeerError as e:
    tap.ok(False, "prefixed stanza", e)


refused("a denied domain gets policy-violation before TLS",
        "policy-violation", "denied.example", "corp.example")
refused("an unknown local domain gets host-unknown",
        "host-unknown", "remote.example", "nowhere.example")


def restricted(p):
    p.expect_header()
    p.expect_element("features", NS_STREAM)
    p.send("<!-- a comment -->")


refused("a comment gets restricted-xml", "restricted-xml",
        "remote.example", "corp.example", restricted)


def skip_tls(p):
    p.expect_header()
    feats = p.expect_element("features", NS_STREAM)
    if feats.find("starttls", NS_TLS) is None:
        raise PeerError("STARTTLS not offered to a tls-required peer")
    p.send("<db:result from='secure.example' to='corp.example'>00</db:result>")


refused("a tls-required peer that skips STARTTLS gets policy-violation",
        "policy-violation", "secure.example", "corp.example", skip_tls)

tap.ok(fg.alive(), "fedgated is still serving")
rc, out, err = fg.ctl("status", check=False)
tap.ok(rc == 0, "the control socket still answers")
fg.finish(tap)
auth_srv.stop()
int_srv.stop()
tap.ok(not auth_srv.errors and not int_srv.errors,
       "the scripted servers saw no protocol error",
       auth_srv.errors + int_srv.errors)
sys.exit(tap.done())
