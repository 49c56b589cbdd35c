"""PROXY protocol v2: accepted on public listeners marked proxy-protocol,
sent to an upstream marked proxy-protocol.

Scenario: remote servers (scripted) reach fedgated through an imaginary L4
balancer: each connection starts with a PROXY v2 header written here. A
valid header from 203.0.113.7 is served, and 203.0.113.7 is the peer in
fedgatectl sessions -j, in the log and in the per-address limit; a LOCAL
header (a health check) keeps the socket's address; no header, a version
1 header, a header that stalls and an oversized one are refused, each
with its log line. A peer over direct TLS behind the balancer (IPv6
source) authenticates with SASL EXTERNAL. The internal server (scripted)
parses the PROXY v2 header fedgated sends first on each connection (the
parser is below, written from the specification): the remote peer's
address, PP2_TYPE_SSL with the TLS version, the authenticated domain
(0xE0) and the method (0xE1); and LOCAL on the dialback verification
fedgated makes for the internal server's own stream.
"""

import base64
import os
import socket
import ssl
import struct
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (NS_DB, NS_SASL, NS_STREAM, Fedgated, Inbox, Peer,
                     PeerError, Server, Tap, TestCA, authoritative_server,
                     dialback_key, free_port, tempdir, verify_back,
                     wait_until)

SECRET = "proxy-test-secret-0123456789abcdef"        # fedgated's
REMOTE_SECRET = "proxy-remote-secret-0123456789abc"  # remote.example's
INTERNAL_SECRET = "proxy-internal-secret-0123456789"  # the internal server's
tap = Tap()
tmp = tempdir("fg-proxy-")
ca = TestCA(tmp)
crt, key = ca.issue("corp.example")
public_port, tls_port, internal_port = free_port(), free_port(), free_port()
inbox = Inbox()

# -- PROXY v2, from the specification (section 2.2)
SIG = b"\r\n\r\n\x00\r\nQUIT\n"
CMD_LOCAL, CMD_PROXY = 0x20, 0x21
FAM_TCP4, FAM_TCP6, FAM_UNSPEC = 0x11, 0x21, 0x00
PP2_TYPE_SSL, PP2_SUBTYPE_SSL_VERSION = 0x20, 0x21
PP2_CLIENT_SSL, PP2_CLIENT_CERT_CONN, PP2_CLIENT_CERT_SESS = 1, 2, 4
TLV_DOMAIN, TLV_AUTH = 0xE0, 0xE1


def proxy_header(src, dst, cmd=CMD_PROXY):
    """A v2 header for TCP from src to dst ((host, port) pairs, both of
    the same family); cmd CMD_LOCAL writes no address."""
    if cmd == CMD_LOCAL:
        return SIG + bytes([CMD_LOCAL, FAM_UNSPEC]) + struct.pack(">H", 0)
    fam = socket.AF_INET6 if ":" in src[0] else socket.AF_INET
    block = (socket.inet_pton(fam, src[0]) + socket.inet_pton(fam, dst[0]) +
             struct.pack(">HH", src[1], dst[1]))
    return (SIG + bytes([cmd, FAM_TCP6 if fam == socket.AF_INET6 else
                         FAM_TCP4]) + struct.pack(">H", len(block)) + block)


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise PeerError("closed within the PROXY header")
        data += chunk
    return data


def parse_tlvs(data):
    """{type: value} of a TLV sequence; it must end exactly."""
    out, off = {}, 0
    while off < len(data):
        if len(data) - off < 3:
            raise PeerError("truncated TLV")
        t, n = data[off], struct.unpack(">H", data[off + 1:off + 3])[0]
        if off + 3 + n > len(data):
            raise PeerError("TLV 0x%02x overruns" % t)
        out[t] = data[off + 3:off + 3 + n]
        off += 3 + n
    return out


def read_proxy(sock):
    """Read one PROXY v2 header from sock, byte-exact; return a dict:
    command, src, dst, tlvs, and ssl (client, verify, sub-TLVs)."""
    fixed = recv_exactly(sock, 16)
    if fixed[:12] != SIG:
        raise PeerError("no PROXY v2 signature: %r" % fixed)
    ver_cmd, fam, n = fixed[12], fixed[13], struct.unpack(">H", fixed[14:])[0]
    block = recv_exactly(sock, n)
    h = {"version": ver_cmd >> 4, "command": ver_cmd & 0x0F, "family": fam,
         "src": None, "dst": None, "tlvs": {}, "ssl": None}
    if h["version"] != 2:
        raise PeerError("version %d" % h["version"])
    if h["command"] == 0:
        h["command"] = "LOCAL"
        return h
    h["command"] = "PROXY"
    if fam == FAM_TCP4:
        af, alen = socket.AF_INET, 4
    elif fam == FAM_TCP6:
        af, alen = socket.AF_INET6, 16
    else:
        raise PeerError("family 0x%02x" % fam)
    sport, dport = struct.unpack(">HH", block[2 * alen:2 * alen + 4])
    h["src"] = (socket.inet_ntop(af, block[:alen]), sport)
    h["dst"] = (socket.inet_ntop(af, block[alen:2 * alen]), dport)
    h["tlvs"] = parse_tlvs(block[2 * alen + 4:])
    if PP2_TYPE_SSL in h["tlvs"]:
        v = h["tlvs"][PP2_TYPE_SSL]
        if len(v) < 5:
            raise PeerError("short PP2_TYPE_SSL")
        h["ssl"] = (v[0], struct.unpack(">I", v[1:5])[0], parse_tlvs(v[5:]))
    return h


# -- the internal server: a PROXY header first on every connection
headers = []
headers_lock = threading.Lock()


def receive(peer, hdr, sid, el):
    """A db:result from fedgated: check it with fedgated's internal face,
    answer, then collect the stanzas."""
    verdict = verify_back(internal_port, "corp.internal", el.get("from"),
                          sid, el.text)
    peer.send("<db:result from='corp.internal' to='%s' type='%s'/>" % (
        el.get("from"), verdict))
    inbox.collect(peer)


def upstream(peer):
    h = read_proxy(peer.sock)
    with headers_lock:
        headers.append(h)
    authoritative_server("corp.internal", INTERNAL_SECRET, then=receive)(peer)


def header_for(domain):
    with headers_lock:
        return [h for h in headers if h["tlvs"].get(TLV_DOMAIN) ==
                domain.encode()]


int_srv = Server(upstream)
auth_srv = Server(authoritative_server("remote.example", REMOTE_SECRET))
conf = """
dialback secret "%s"
tls ca-file "%s"
listen public on 127.0.0.1 port %d proxy-protocol
listen public on 127.0.0.1 port %d tls proxy-protocol
listen internal on 127.0.0.1 port %d
limit connections-per-address 3
timeout handshake 2s
domain "corp.example" {
	upstream "127.0.0.1" port %d proxy-protocol
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
peer "secure.example" {
	allow
	tls required
	verify required
	auth external
}
peer default {
	deny
}
""" % (SECRET, ca.crt, public_port, tls_port, internal_port, int_srv.port,
       crt, key, auth_srv.port)

try:
    fg = Fedgated(conf, tmp)
except PeerError as e:
    tap.ok(False, "fedgated starts", e)
    sys.exit(tap.done())


def sessions():
    return fg.ctl_json("sessions")["sessions"]


def is_refused(p, timeout=None):
    """Whether fedgated closes p without a stream header (a reset
    counts: it closes with our bytes unread)."""
    try:
        p.expect_header(timeout=timeout)
        return False
    except PeerError as e:
        return p.closed or "connection error" in str(e)


def proxied_dialback(src, port=public_port):
    """remote.example behind the balancer, from src: header, stream,
    dialback. Return (peer, the db:result answer)."""
    p = Peer(port=port)
    p.send(proxy_header(src, ("192.0.2.1", 5269)))
    p.open_stream(frm="remote.example", to="corp.example")
    hdr = p.expect_header()
    p.expect_element("features", NS_STREAM)
    p.send("<db:result from='remote.example' to='corp.example'>%s"
           "</db:result>" % dialback_key(REMOTE_SECRET, "corp.example",
                                         "remote.example", hdr.get("id")))
    return p, p.expect_element("result", NS_DB)


# 1. A valid header from 203.0.113.7: served, and 203.0.113.7 everywhere.
try:
    p, res = proxied_dialback(("203.0.113.7", 40000))
    tap.ok(res.get("type") == "valid", "a peer behind a PROXY v2 header "
           "is served (dialback valid)", res)
    ins = [s for s in sessions() if s["face"] == "public" and
           s["direction"] == "in" and s["remote"] == "remote.example"]
    tap.ok(len(ins) == 1 and ins[0]["peer"] == "203.0.113.7:40000",
           "fedgatectl sessions -j shows the header's address as the peer",
           ins)
    rc, out, err = fg.ctl("sessions")
    tap.ok("203.0.113.7:40000" in out, "and so does fedgatectl sessions",
           out)
    tap.ok(fg.wait_log("connection from 203.0.113.7:40000 via 127.0.0.1:",
                       5), "the log names 203.0.113.7, via the balancer",
           fg.log_text()[-2000:])
    p.send("<message from='alice@remote.example/pc' to='bob@corp.example' "
           "id='p1'><body>through the balancer</body></message>")
    tap.ok(inbox.wait_id("p1"), "its message reaches the internal server",
           fg.log_text()[-3000:])
    hs = header_for("remote.example")
    tap.ok(len(hs) == 1, "the upstream got one PROXY v2 header for it",
           headers)
    if hs:
        h = hs[0]
        tap.ok(h["command"] == "PROXY" and h["family"] == FAM_TCP4 and
               h["src"] == ("203.0.113.7", 40000) and
               h["dst"] == ("192.0.2.1", 5269),
               "PROXY, TCP over IPv4, from the remote peer's address to "
               "the address it reached", h)
        tap.ok(h["tlvs"].get(TLV_AUTH) == b"dialback",
               "TLV 0xE1 says dialback", h["tlvs"])
        tap.ok(h["ssl"] is not None and h["ssl"][0] == 0 and
               h["ssl"][1] != 0 and PP2_SUBTYPE_SSL_VERSION not in
               h["ssl"][2], "PP2_TYPE_SSL says no TLS (client 0, no "
               "version)", h["ssl"])
    p.close()
except (PeerError, OSError) as e:
    tap.ok(False, "a proxied peer", "%s\n%s" % (e, fg.log_text()[-3000:]))

# 2. LOCAL: the balancer's own connection keeps the socket's address.
try:
    p = Peer(port=public_port)
    p.send(proxy_header(None, None, CMD_LOCAL))
    p.open_stream(frm="remote.example", to="corp.example")
    hdr = p.expect_header()
    tap.ok(hdr.get("from") == "corp.example", "a LOCAL header is accepted")
    ours = [s for s in sessions() if s["face"] == "public" and
            s["direction"] == "in" and s["state"] == "open" and
            s["peer"].startswith("127.0.0.1:")]
    tap.ok(len(ours) == 1, "its peer is the socket's, 127.0.0.1",
           sessions())
    p.close()
except (PeerError, OSError) as e:
    tap.ok(False, "a LOCAL header", e)


# 3. Refusals: closed, one log line each with the reason and the socket
# peer's address.
def refused(desc, data, reason, timeout=None):
    try:
        p = Peer(port=public_port)
        port = p.sock.getsockname()[1]
        p.send(data)
        tap.ok(is_refused(p, timeout), desc + ": closed without a stream "
               "header")
        tap.ok(fg.wait_log("connection from 127.0.0.1:%d refused: PROXY "
                           "header: %s" % (port, reason), 5),
               desc + ": the log says why", fg.log_text()[-1500:])
        p.close()
    except (PeerError, OSError) as e:
        tap.ok(False, desc, e)


refused("no header", "<?xml version='1.0'?><stream:stream xmlns='jabber:"
        "server' xmlns:stream='%s' to='corp.example'>" % NS_STREAM,
        "no PROXY v2 signature: byte 0 is 0x3c")
refused("a version 1 header", b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 "
        b"5269\r\n", "a PROXY version 1 (text) header")
refused("a truncated header that stalls",
        proxy_header(("203.0.113.7", 40000), ("192.0.2.1", 5269))[:20],
        "not complete within 2s (20 bytes read")
refused("an oversized length", SIG + bytes([CMD_PROXY, FAM_TCP4]) +
        struct.pack(">H", 600) + b"\0" * 600,
        "a block of 600 bytes, over the limit of 512")

# 4. limit connections-per-address counts the header's address.
try:
    held = [proxied_dialback(("203.0.113.9", 41000 + i))[0]
            for i in range(3)]
    p = Peer(port=public_port)
    p.send(proxy_header(("203.0.113.9", 41003), ("192.0.2.1", 5269)))
    p.open_stream(frm="remote.example", to="corp.example")
    tap.ok(is_refused(p, 5), "a fourth connection from 203.0.113.9 is refused "
           "(limit connections-per-address 3)")
    tap.ok(fg.wait_log("connection from 203.0.113.9:41003 via 127.0.0.1:",
                       5) and fg.wait_log("limit connections-per-address "
                                          "(3) reached", 5),
           "the log names 203.0.113.9 and the limit", fg.log_text()[-1500:])
    other, res = proxied_dialback(("203.0.113.10", 41000))
    tap.ok(res.get("type") == "valid", "while 203.0.113.10, through the "
           "same balancer, is served", res)
    for x in held + [p, other]:
        x.close()
except (PeerError, OSError) as e:
    tap.ok(False, "per-address limit", "%s\n%s" % (e, fg.log_text()[-2000:]))

# 5. Direct TLS behind the balancer, IPv6 source, SASL EXTERNAL.
try:
    raw = socket.create_connection(("127.0.0.1", tls_port), timeout=10)
    raw.sendall(proxy_header(("2001:db8::8", 40001), ("2001:db8::1", 5270)))
    ctx = ca.client_context("secure.example")
    p = Peer(sock=ctx.wrap_socket(raw, server_hostname="corp.example"))
    version = p.sock.version()
    p.open_stream(frm="secure.example", to="corp.example")
    p.expect_header()
    feats = p.expect_element("features", NS_STREAM)
    mech = feats.find("mechanisms", NS_SASL)
    tap.ok(mech is not None and any(c.text == "EXTERNAL"
                                    for c in mech.children),
           "direct TLS after the PROXY header: EXTERNAL is offered", feats)
    p.send("<auth xmlns='%s' mechanism='EXTERNAL'>%s</auth>" % (
        NS_SASL, base64.b64encode(b"secure.example").decode()))
    p.expect_element("success", NS_SASL)
    p.reader.reset()
    p.open_stream(frm="secure.example", to="corp.example")
    p.expect_header()
    p.expect_element("features", NS_STREAM)
    ins = [s for s in sessions() if s["remote"] == "secure.example" and
           s["direction"] == "in"]
    tap.ok(ins and ins[0]["peer"] == "[2001:db8::8]:40001",
           "sessions shows the IPv6 address of the header", ins)
    p.send("<message from='a@secure.example' to='b@corp.example' id='p2'>"
           "<body>tls through the balancer</body></message>")
    tap.ok(inbox.wait_id("p2"), "its message reaches the internal server",
           fg.log_text()[-3000:])
    hs = header_for("secure.example")
    tap.ok(len(hs) == 1, "the upstream got a PROXY header for it", headers)
    if hs:
        h = hs[0]
        tap.ok(h["family"] == FAM_TCP6 and
               h["src"] == ("2001:db8::8", 40001) and
               h["dst"] == ("2001:db8::1", 5270),
               "PROXY, TCP over IPv6, from the peer's address", h)
        tap.ok(h["tlvs"].get(TLV_AUTH) == b"sasl-external",
               "TLV 0xE1 says sasl-external", h["tlvs"])
        tls = h["ssl"]
        tap.ok(tls is not None and tls[0] & PP2_CLIENT_SSL and
               tls[0] & PP2_CLIENT_CERT_SESS and tls[1] == 0 and
               tls[2].get(PP2_SUBTYPE_SSL_VERSION) == version.encode(),
               "PP2_TYPE_SSL: TLS, a verified client certificate, version "
               "%s" % version, tls)
    p.close()
except (PeerError, OSError, ssl.SSLError) as e:
    tap.ok(False, "direct TLS behind the balancer",
           "%s\n%s" % (e, fg.log_text()[-3000:]))

# 6. No remote peer behind it: the verification of the internal server's
# own dialback key goes to the upstream with a LOCAL header.
try:
    before = len(headers)
    q = Peer(port=internal_port)
    q.open_stream(frm="corp.internal", to="remote.example")
    hdr = q.expect_header()
    q.expect_element("features", NS_STREAM)
    q.send("<db:result from='corp.internal' to='remote.example'>%s"
           "</db:result>" % dialback_key(INTERNAL_SECRET, "remote.example",
                                         "corp.internal", hdr.get("id")))
    res = q.expect_element("result", NS_DB)
    tap.ok(res.get("type") == "valid", "the internal server's key is "
           "verified with the upstream", res)
    with headers_lock:
        new = headers[before:]
    tap.ok(len(new) == 1 and new[0]["command"] == "LOCAL" and
           new[0]["family"] == FAM_UNSPEC,
           "that connection starts with a LOCAL header", new)
    q.close()
except (PeerError, OSError) as e:
    tap.ok(False, "LOCAL to the upstream", "%s\n%s" % (e,
           fg.log_text()[-2000:]))

tap.ok(fg.alive(), "fedgated is still serving")
fg.finish(tap)
int_srv.stop()
auth_srv.stop()
tap.ok(not int_srv.errors and not auth_srv.errors,
       "the scripted servers saw no protocol error",
       int_srv.errors + auth_srv.errors)
sys.exit(tap.done())
