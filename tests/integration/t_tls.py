"""TLS on both faces: STARTTLS as server and client, SASL EXTERNAL both
ways (XEP-0178), dialback without the round trip on a valid certificate
(XEP-0344), and certificate policy (verify required)."""

import base64
import os
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (NS_DB, NS_SASL, NS_STREAM, NS_TLS, Fedgated, Inbox, Peer,
                     PeerError, Server, Tap, TestCA, dialback_key, free_port,
                     receiving_server, tempdir, wait_until)

SECRET = "tls-test-secret-0123456789abcdef"
tap = Tap()
tmp = tempdir("fg-tls-")
ca = TestCA(tmp)
crt, key = ca.issue("corp.example")
public_port, internal_port = free_port(), free_port()
inbox, remote_inbox = Inbox(), Inbox()
sasl_seen = []


def secure_remote(peer):
    """secure.example: requires STARTTLS, offers SASL EXTERNAL after it
    and accepts corp.example's client certificate."""
    hdr = peer.expect_header()
    peer.open_stream(frm="secure.example", to=hdr.get("from"),
                     extra=" id='sec-1'")
    peer.send("<stream:features><starttls xmlns='%s'><required/></starttls>"
              "</stream:features>" % NS_TLS)
    peer.expect_element("starttls", NS_TLS)
    peer.send("<proceed xmlns='%s'/>" % NS_TLS)
    peer.starttls_server(ca.server_context("secure.example"))
    hdr = peer.expect_header()
    cert = peer.sock.getpeercert()
    sans = [v for k, v in cert.get("subjectAltName", ())] if cert else []
    sasl_seen.append(sans)
    peer.open_stream(frm="secure.example", to=hdr.get("from"),
                     extra=" id='sec-2'")
    peer.send("<stream:features><mechanisms xmlns='%s'><mechanism>EXTERNAL"
              "</mechanism></mechanisms></stream:features>" % NS_SASL)
    auth = peer.expect_element("auth", NS_SASL)
    sasl_seen.append(base64.b64decode(auth.text).decode())
    peer.send("<success xmlns='%s'/>" % NS_SASL)
    peer.reader.reset()
    hdr = peer.expect_header()
    peer.open_stream(frm="secure.example", to=hdr.get("from"),
                     extra=" id='sec-3'")
    peer.send("<stream:features/>")
    remote_inbox.collect(peer)


up_srv = Server(receiving_server("corp.internal", internal_port, inbox))
rem_srv = Server(secure_remote)
conf = """
dialback secret "%s"
tls ca-file "%s"
listen public on 127.0.0.1 port %d
listen internal on 127.0.0.1 port %d
domain "corp.example" {
	upstream "127.0.0.1" port %d trusted
	internal-name "corp.internal"
	certificate "%s"
	key "%s"
}
peer "secure.example" {
	allow
	tls required
	verify required
	auth any
	route "127.0.0.1" port %d
}
peer "certdb.example" {
	allow
	tls required
	verify optional
	auth dialback
}
peer "strict.example" {
	allow
	tls required
	verify required
}
peer default {
	deny
}
""" % (SECRET, ca.crt, public_port, internal_port, up_srv.port, crt, key,
       rem_srv.port)

try:
    fg = Fedgated(conf, tmp)
except PeerError as e:
    tap.ok(False, "fedgated starts", e)
    sys.exit(tap.done())


def tls_stream(frm, client_cert):
    """A remote server frm connecting with STARTTLS."""
    p = Peer(port=public_port)
    p.open_stream(frm=frm, to="corp.example")
    p.expect_header()
    feats = p.expect_element("features", NS_STREAM)
    st = feats.find("starttls", NS_TLS)
    if st is None:
        raise PeerError("STARTTLS not offered")
    ctx = ca.client_context(frm if client_cert else None)
    p.starttls_client(ctx, server_hostname="corp.example")
    p.open_stream(frm=frm, to="corp.example")
    hdr = p.expect_header()
    return p, hdr, p.expect_element("features", NS_STREAM), st


# 1. Inbound STARTTLS + SASL EXTERNAL.
try:
    p, hdr, feats, st = tls_stream("secure.example", True)
    tap.ok(st.find("required") is not None,
           "STARTTLS is offered as required to a tls-required peer")
    tap.ok(p.sock.version() in ("TLSv1.2", "TLSv1.3"),
           "TLS 1.2 or newer is negotiated", p.sock.version())
    mech = feats.find("mechanisms", NS_SASL)
    tap.ok(mech is not None and any(c.text == "EXTERNAL"
                                    for c in mech.children),
           "SASL EXTERNAL is offered after TLS with a valid certificate")
    p.send("<auth xmlns='%s' mechanism='EXTERNAL'>%s</auth>" % (
        NS_SASL, base64.b64encode(b"secure.example").decode()))
    p.expect_element("success", NS_SASL)
    p.reader.reset()
    p.open_stream(frm="secure.example", to="corp.example")
    p.expect_header()
    p.expect_element("features", NS_STREAM)
    p.send("<message from='a@secure.example' to='b@corp.example' id='t1'>"
           "<body>token-tls-in</body></message>")
    tap.ok(wait_until(lambda: any(e.get("id") == "t1"
                                  for e in inbox.stanzas), 15),
           "a stanza over TLS + EXTERNAL reaches the internal server",
           fg.log_text()[-2000:])
    p.close()
except (PeerError, OSError, ssl.SSLError) as e:
    tap.ok(False, "inbound TLS + EXTERNAL", "%s\n%s" % (e,
           fg.log_text()[-3000:]))

# 2. XEP-0344: dialback accepted on a valid certificate, no round trip.
try:
    p, hdr, feats, st = tls_stream("certdb.example", True)
    key_ = dialback_key("anything", "corp.example", "certdb.example",
                        hdr.get("id"))
    p.send("<db:result from='certdb.example' to='corp.example'>%s"
           "</db:result>" % key_)
    r = p.expect_element("result", NS_DB)
    tap.ok(r.get("type") == "valid", "dialback on a valid certificate is "
           "accepted without asking the authoritative server", r)
    tap.ok("authenticated by dialback+cert" in fg.log_text(),
           "the log says how it authenticated")
    p.close()
except (PeerError, OSError, ssl.SSLError) as e:
    tap.ok(False, "XEP-0344", "%s\n%s" % (e, fg.log_text()[-3000:]))

# 3. verify required and no client certificate: refused.
try:
    p, hdr, feats, st = tls_stream("strict.example", False)
    tap.ok(feats.find("mechanisms", NS_SASL) is None,
           "no EXTERNAL without a client certificate")
    p.send("<db:result from='strict.example' to='corp.example'>00"
           "</db:result>")
    cond = p.expect_stream_error()
    tap.ok(cond == "policy-violation", "verify required without a "
           "certificate gets policy-violation", cond)
    p.close()
except (PeerError, OSError, ssl.SSLError) as e:
    tap.ok(False, "verify required", e)

# 4. Outbound: STARTTLS as client with SNI, SASL EXTERNAL as initiator.
try:
    q = Peer(port=internal_port)
    q.open_stream(frm="corp.internal", to="secure.example")
    hdr = q.expect_header()
    q.expect_element("features", NS_STREAM)
    q.send("<db:result from='corp.internal' to='secure.example'>%s"
           "</db:result>" % dialback_key(SECRET, "corp.internal",
                                         "secure.example", hdr.get("id")))
    r = q.expect_element("result", NS_DB)
    tap.ok(r.get("type") == "valid", "a trusted upstream's key is accepted "
           "without verification", r)
    if r.get("type") == "valid":
        q.send("<message from='a@corp.internal' to='z@secure.example' "
               "id='t2'><body>token-tls-out</body></message>")
    tap.ok(wait_until(lambda: any(e.get("id") == "t2"
                                  for e in remote_inbox.stanzas), 15),
           "a stanza reaches secure.example over STARTTLS + EXTERNAL",
           fg.log_text()[-3000:])
    tap.ok(sasl_seen[:2] == [["corp.example"], "corp.example"],
           "fedgated presents corp.example's certificate and authzid",
           sasl_seen)
    q.close()
except (PeerError, OSError, ssl.SSLError) as e:
    tap.ok(False, "outbound TLS", "%s\n%s" % (e, fg.log_text()[-3000:]))

tap.ok(fg.alive(), "fedgated is still serving")
fg.finish(tap)
up_srv.stop()
rem_srv.stop()
sys.exit(tap.done())
