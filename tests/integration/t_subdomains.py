"""Subdomains of a local domain (subdomains "conference" "pubsub"): the
certificate SNI picks for each name (a further pair valid for
conference.corp.example, the domain's own for corp.example, over STARTTLS
and direct TLS), a listed subdomain no certificate is valid for (no
STARTTLS, warned at start-up, a tls-required peer refused with the
reason), an unlisted one (host-unknown), and a stanza to the subdomain
relayed to the upstream under its internal name after the subdomain's
own dialback."""

import os
import socket
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (NS_DB, NS_STREAM, NS_TLS, Fedgated, Inbox, Peer,
                     PeerError, Server, Tap, TestCA, authoritative_server,
                     dialback_key, free_port, receiving_server, tempdir,
                     wait_until)

SECRET = "subdomains-secret-0123456789abcdef"
tap = Tap()
tmp = tempdir("fg-sub-")
ca = TestCA(tmp)
crt, key = ca.issue("corp.example")
conf_crt, conf_key = ca.issue("conference.corp.example")
public_port, tls_port, internal_port = free_port(), free_port(), free_port()
inbox = Inbox()

up_srv = Server(receiving_server("conference.corp.internal", internal_port,
                                 inbox))
auth_srv = Server(authoritative_server("remote.example", "remote-secret"))
conf = """
dialback secret "%s"
tls ca-file "%s"
listen public on 127.0.0.1 port %d
listen public on 127.0.0.1 port %d tls
listen internal on 127.0.0.1 port %d
domain "corp.example" {
	upstream "127.0.0.1" port %d
	internal-name "corp.internal"
	certificate "%s"
	key "%s"
	certificate "%s"
	key "%s"
	subdomains "conference" "pubsub"
}
peer "remote.example" {
	allow
	tls optional
	verify none
	route "127.0.0.1" port %d
}
peer "strict.example" {
	allow
	tls required
	verify none
}
peer default {
	deny
}
""" % (SECRET, ca.crt, public_port, tls_port, internal_port, up_srv.port,
       crt, key, conf_crt, conf_key, auth_srv.port)

try:
    fg = Fedgated(conf, tmp)
except PeerError as e:
    tap.ok(False, "fedgated starts", e)
    sys.exit(tap.done())

tap.ok("no certificate is valid for subdomain pubsub.corp.example"
       in fg.log_text(), "start-up warns of the listed subdomain without a "
       "certificate")


def peer_names(sock):
    cert = sock.getpeercert()
    return sorted(v for k, v in cert.get("subjectAltName", ())
                  if k == "DNS") if cert else []


def starttls(frm, to):
    """A stream from frm to to; STARTTLS with SNI to, the certificate
    checked against to. Return (peer, the names of fedgated's
    certificate)."""
    p = Peer(port=public_port)
    p.open_stream(frm=frm, to=to)
    p.expect_header()
    feats = p.expect_element("features", NS_STREAM)
    if feats.find("starttls", NS_TLS) is None:
        raise PeerError("STARTTLS not offered")
    p.starttls_client(ca.client_context(), server_hostname=to)
    return p, peer_names(p.sock)


# 1. SNI: each name gets the certificate valid for it.
for name, want in (("conference.corp.example", ["conference.corp.example"]),
                   ("corp.example", ["corp.example"])):
    try:
        p, names = starttls("remote.example", name)
        tap.ok(names == want, "STARTTLS to %s presents the certificate "
               "valid for it" % name, names)
        p.close()
    except (PeerError, OSError, ssl.SSLError) as e:
        tap.ok(False, "STARTTLS to %s" % name, "%s\n%s" % (
            e, fg.log_text()[-2000:]))

# 2. Direct TLS (XEP-0368): the certificate follows the SNI alone.
try:
    raw = socket.create_connection(("127.0.0.1", tls_port), timeout=10)
    s = ca.client_context().wrap_socket(
        raw, server_hostname="conference.corp.example")
    tap.ok(peer_names(s) == ["conference.corp.example"],
           "direct TLS with SNI conference.corp.example presents its "
           "certificate", peer_names(s))
    s.close()
except (OSError, ssl.SSLError) as e:
    tap.ok(False, "direct TLS to the subdomain", e)

# 3. A listed subdomain without a certificate: no STARTTLS, and a peer
#    whose rule requires TLS is refused, saying why.
try:
    p = Peer(port=public_port)
    p.open_stream(frm="strict.example", to="pubsub.corp.example")
    p.expect_header()
    feats = p.expect_element("features", NS_STREAM)
    tap.ok(feats.find("starttls", NS_TLS) is None,
           "no STARTTLS for a subdomain no certificate is valid for")
    p.send("<db:result from='strict.example' to='pubsub.corp.example'>00"
           "</db:result>")
    cond = p.expect_stream_error()
    tap.ok(cond == "policy-violation", "a tls-required peer of it is "
           "refused with policy-violation", cond)
    p.close()
    tap.ok(fg.wait_log("no certificate is valid for subdomain "
                       "pubsub.corp.example: STARTTLS not offered, though "
                       "the peer's rule requires TLS") and
           fg.wait_log("refused: TLS is required for strict.example"),
           "the log says why", fg.log_text()[-2000:])
except (PeerError, OSError) as e:
    tap.ok(False, "a subdomain without a certificate", e)

# 4. A subdomain not listed is not local.
try:
    p = Peer(port=public_port)
    p.open_stream(frm="remote.example", to="muc.corp.example")
    cond = p.expect_stream_error()
    tap.ok(cond == "host-unknown", "an unlisted subdomain is host-unknown",
           cond)
    p.close()
except (PeerError, OSError) as e:
    tap.ok(False, "an unlisted subdomain", e)

# 5. remote.example -> conference.corp.example: its own dialback (verified
#    with remote.example's authoritative server), then the stanza reaches
#    the upstream as conference.corp.internal, whose check of the key
#    minted for that pair (on the internal face) is valid.
try:
    p, names = starttls("remote.example", "conference.corp.example")
    p.open_stream(frm="remote.example", to="conference.corp.example")
    hdr = p.expect_header()
    p.expect_element("features", NS_STREAM)
    p.send("<db:result from='remote.example' to='conference.corp.example'>"
           "%s</db:result>" % dialback_key("remote-secret",
                                           "conference.corp.example",
                                           "remote.example", hdr.get("id")))
    r = p.expect_element("result", NS_DB)
    tap.ok(r.get("type") == "valid", "the subdomain's pair authenticates "
           "by dialback", r)
    p.send("<message from='juliet@remote.example/b' to='room@conference."
           "corp.example' id='s1'><x xmlns='jabber:x:conference' "
           "jid='room@conference.corp.example'/></message>")
    m = inbox.wait_id("s1")
    tap.ok(m is not None and m.get("to") == "room@conference.corp.internal",
           "the stanza reaches the upstream as conference.corp.internal",
           "%r\n%s" % (m, fg.log_text()[-3000:]))
    x = m.find("x", "jabber:x:conference") if m is not None else None
    tap.ok(x is not None and x.get("jid") == "room@conference.corp.internal",
           "the room's JID in the body is rewritten too", x)
    sessions = fg.ctl("sessions")[1]
    tap.ok("conference.corp.example" in sessions,
           "fedgatectl sessions shows the subdomain's public name",
           sessions)
    p.close()
except (PeerError, OSError, ssl.SSLError) as e:
    tap.ok(False, "relay to the subdomain", "%s\n%s" % (
        e, fg.log_text()[-3000:]))

tap.ok(fg.alive(), "fedgated is still serving")
fg.finish(tap)
up_srv.stop()
auth_srv.stop()
sys.exit(tap.done())
