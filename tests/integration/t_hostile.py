"""Hostile peers on the public face: what an attacker would try, each
with the exact answer RFC 6120 (or the configured limit) calls for, and
fedgated serving an honest peer throughout.

- Peer strings in log lines: control characters injected through
  character references, and attributes far longer than any buffer.
- Dialback amplification: one stream sending db:result after db:result
  never causes more than `limit verifications-per-stream` connections;
  a second db:result for a pending pair and pairs past
  `limit domains-per-stream` end the stream.
- A verification that never finishes ends with a log line that says so.
- A peer that stops reading its answers is closed (resource-constraint),
  and fedgated's memory barely grows.
- SASL by the book (RFC 6120 6.4.5), and a bounded number of attempts.
- Stream errors: not-authorized for a stanza before authentication,
  bad-namespace-prefix, our </stream:stream> after a half-close.
"""

import base64
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (NS_DB, NS_SASL, NS_STREAM, NS_TLS, Fedgated, Peer,
                     PeerError, Server, Tap, TestCA, accept_stream,
                     authoritative_server, dialback_stream, free_port,
                     tempdir, wait_until)

SECRET = "hostile-secret-0123456789abcdef0123"
REMOTE_SECRET = "hostile-remote-secret-0123456789ab"
tap = Tap()
tmp = tempdir("fg-hostile-")
ca = TestCA(tmp)
crt, key = ca.issue("corp.example")
public_port = free_port()

# remote.example's authoritative server answers db:verify.
auth_srv = Server(authoritative_server("remote.example", REMOTE_SECRET))
auth2_srv = Server(authoritative_server("remote2.example", REMOTE_SECRET))

# slow.example's authoritative server takes the connection, answers the
# header, and never answers db:verify.
slow_release = threading.Event()


def silent_authority(peer):
    accept_stream(peer, "slow.example")
    slow_release.wait(30)


slow_srv = Server(silent_authority)

conf = """
dialback secret "%s"
tls ca-file "%s"
listen public on 127.0.0.1 port %d
timeout handshake 3s
limit output-buffer 64k
limit domains-per-stream 2
limit verifications-per-stream 3
limit sasl-attempts 2
domain "corp.example" {
	upstream "127.0.0.1" port %d
	certificate "%s"
	key "%s"
}
peer "remote.example" {
	allow
	tls none
	route "127.0.0.1" port %d
}
peer "remote2.example" {
	allow
	tls none
	route "127.0.0.1" port %d
}
peer "*.slow.example" {
	allow
	tls none
	route "127.0.0.1" port %d
}
peer "slow.example" {
	allow
	tls none
	route "127.0.0.1" port %d
}
peer "secure.example" {
	allow
	tls optional
	auth any
}
peer default {
	deny
}
""" % (SECRET, ca.crt, public_port, free_port(), crt, key, auth_srv.port,
       auth2_srv.port, slow_srv.port, slow_srv.port)

try:
    fg = Fedgated(conf, tmp)
except PeerError as e:
    tap.ok(False, "fedgated starts", e)
    sys.exit(tap.done())


def opened(frm="remote.example"):
    """A stream from frm to corp.example, its header and features read."""
    p = Peer(port=public_port)
    p.open_stream(frm=frm, to="corp.example")
    p.expect_header()
    p.expect_element("features", NS_STREAM)
    return p


def honest_peer_served(what):
    """An honest peer authenticates while the attack goes on."""
    try:
        p, _, _, r = dialback_stream(public_port, "remote.example",
                                     "corp.example", REMOTE_SECRET)
        p.close()
        ok = r.get("type") == "valid"
    except PeerError as e:
        ok, r = False, e
    tap.ok(ok, "an honest peer is served " + what, r)


def fedgated_rss_kb():
    with open("/proc/%d/status" % fg.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def under_asan():
    """ASan keeps freed memory in quarantine: RSS says nothing there."""
    with open("/proc/%d/maps" % fg.proc.pid) as f:
        return "libasan" in f.read()


def log_is_clean(text):
    """Every line printable ASCII and of bounded length."""
    for line in text.splitlines():
        if len(line) > 4096 or any(c < " " or c > "~" for c in line):
            return False, line[:200]
    return True, None


# 1. Peer strings: control characters and overlong attributes.
try:
    p = Peer(port=public_port)
    # XML allows LF, DEL and the C1 controls (CSI here) as references.
    p.open_stream(frm="remote.example", to="corp.example&#10;fake: line"
                  "&#127;&#x9b;31m")
    cond = p.expect_stream_error()
    tap.ok(cond == "host-unknown", "a 'to' with control characters gets "
           "host-unknown", cond)
    p.close()
    p = opened()
    p.send("<db:verify from='remote.example' to='corp.example' id='%s'>"
           "%s</db:verify>" % ("i&#10;d" * 50, "k" * 70000))
    v = p.expect_element("verify", NS_DB)
    tap.ok(v.get("type") == "invalid", "a db:verify with a 70 KB key is "
           "answered invalid", v)
    p.send("<db:verify from='remote.example' to='corp.example' id='%s'>"
           "k</db:verify>" % ("i&#10;d" * 20000))
    cond = p.expect_stream_error()
    tap.ok(cond == "policy-violation", "a db:verify with a 60 KB id (it "
           "would be echoed) gets policy-violation", cond)
    p.close()
    p = opened()
    p.send("<%s/>" % ("x" * 50000))
    cond = p.expect_stream_error()
    tap.ok(cond == "unsupported-stanza-type", "a 50 KB element name gets "
           "unsupported-stanza-type", "%s\n%s" % (cond,
                                                  fg.log_text()[-600:]))
    p.close()
    ok, line = log_is_clean(fg.log_text())
    tap.ok(ok, "the log has no control character and no line over 4 KB",
           line)
    tap.ok(fg.wait_log("...(") and "fake: line" not in
           [l.split(": ", 1)[-1] for l in fg.log_text().splitlines()],
           "long peer strings are cut and marked; no injected line")
except PeerError as e:
    tap.ok(False, "peer strings", "%s\n%s" % (e, fg.log_text()[-3000:]))

# 2. Dialback amplification.
try:
    base = auth_srv.connections
    p = opened()
    # In one write: fedgated ends the stream after the second, and a
    # write after its close would be reset.
    p.send("".join("<db:result from='remote.example' to='corp.example'>"
                   "bad%d</db:result>" % i for i in range(200)))
    answers = []
    cond = None
    for _ in range(10):
        el = p.expect_element()
        if el.name == "error" and el.ns == NS_STREAM:
            cond = [c.name for c in el.children][0]
            break
        answers.append(el)
    tap.ok(cond == "policy-violation", "200 db:result for one pair end "
           "the stream with policy-violation", (cond, answers))
    p.close()
    wait_until(lambda: fg.log_text().count("(verify): closed") >= 1, 3)
    made = auth_srv.connections - base
    # One verify leg was started; it may be closed, with the stream that
    # asked for it, before its connection reaches the server (0).
    tap.ok(made <= 3 and "(verify)" in fg.log_text(), "they made %d "
           "verification connections (at most 3)" % made)
    # One failure after another: bounded by verifications-per-stream.
    p = opened("remote2.example")
    cond = None
    for i in range(20):
        p.send("<db:result from='remote2.example' to='corp.example'>bad%d"
               "</db:result>" % i)
        el = p.expect_element()
        if el.name == "error" and el.ns == NS_STREAM:
            cond = [c.name for c in el.children][0]
            break
        if el.get("type") != "invalid":
            break
    tap.ok(cond == "policy-violation" and i == 3, "the 4th verification on "
           "one stream ends it (limit verifications-per-stream 3)", (cond, i))
    tap.ok(fg.wait_log("limit verifications-per-stream"),
           "the log names the limit")
    wait_until(lambda: auth2_srv.connections >= 3, 3)
    made = auth2_srv.connections
    tap.ok(made == 3, "the stream made %d verification connections "
           "(limit verifications-per-stream 3)" % made,
           "\n".join(l for l in fg.log_text().splitlines()
                     if "(verify)" in l))
    p.close()
    # Domains per stream.
    p = opened()
    for i in range(3):
        p.send("<db:result from='d%d.slow.example' to='corp.example'>k"
               "</db:result>" % i)
    cond = p.expect_stream_error()
    tap.ok(cond == "policy-violation", "a 3rd domain pair on one stream "
           "gets policy-violation (limit domains-per-stream 2)", cond)
    tap.ok(fg.wait_log("limit domains-per-stream"), "the log says so")
    p.close()
    honest_peer_served("after the dialback floods")
except PeerError as e:
    tap.ok(False, "dialback bounds", "%s\n%s" % (e, fg.log_text()[-3000:]))

# 3. A verification that never finishes.
try:
    p = opened("slow.example")
    p.send("<db:result from='slow.example' to='corp.example'>k</db:result>")
    cond = p.expect_stream_error(timeout=10)
    tap.ok(cond == "connection-timeout", "a verification that never "
           "finishes ends the stream with connection-timeout", cond)
    tap.ok(fg.wait_log("dialback verification of slow.example->corp.example"
                       " did not finish within 3s"),
           "the log says the verification timed out",
           fg.log_text()[-1500:])
    slow_release.set()
    p.close()
except PeerError as e:
    tap.ok(False, "verification timeout", "%s\n%s" % (e, fg.log_text()))

# 4. A peer that does not read its answers.
try:
    rss0 = fedgated_rss_kb()
    s = socket.create_connection(("127.0.0.1", public_port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.sendall(("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
               "xmlns:stream='%s' xmlns:db='%s' from='remote.example' "
               "to='corp.example' version='1.0'>" % (NS_STREAM, NS_DB))
              .encode())
    chunk = ("<db:verify from='remote.example' to='corp.example' id='%s'>"
             "%s</db:verify>" % ("i" * 40, "k" * 64)).encode() * 200
    sent = 0
    deadline = time.monotonic() + 20
    while sent < 40 * 1024 * 1024 and time.monotonic() < deadline:
        try:
            s.sendall(chunk)
            sent += len(chunk)
        except (socket.timeout, OSError):
            break
    rss1 = fedgated_rss_kb()
    tap.ok(fg.wait_log("the peer does not read"), "a peer that does not "
           "read is closed (limit output-buffer)", fg.log_text()[-1000:])
    tap.ok(sent < 40 * 1024 * 1024, "fedgated stopped reading it after "
           "%d KB" % (sent // 1024))
    if under_asan():
        tap.ok(True, "fedgated's RSS grew by %d KB # SKIP under ASan, "
               "whose quarantine holds freed memory" % (rss1 - rss0))
    else:
        tap.ok(rss1 - rss0 < 8 * 1024, "fedgated's RSS grew by %d KB "
               "(< 8 MB)" % (rss1 - rss0))
    s.close()
    honest_peer_served("after the flood")
except PeerError as e:
    tap.ok(False, "output bound", "%s\n%s" % (e, fg.log_text()[-2000:]))

# 5. SASL by the book.
try:
    p = opened()
    p.send("<auth xmlns='%s' mechanism='EXTERNAL'>=</auth>" % NS_SASL)
    f = p.expect_element("failure", NS_SASL)
    tap.ok(f.children and f.children[0].name == "invalid-mechanism",
           "EXTERNAL when it was not offered: invalid-mechanism", f)
    p.close()

    def secure_stream():
        p = opened("secure.example")
        p.starttls_client(ca.client_context("secure.example"),
                          server_hostname="corp.example")
        p.open_stream(frm="secure.example", to="corp.example")
        p.expect_header()
        feats = p.expect_element("features", NS_STREAM)
        return p, feats

    def failure(p, mech, data):
        p.send("<auth xmlns='%s' mechanism='%s'>%s</auth>" % (NS_SASL, mech,
                                                             data))
        el = p.expect_element()
        return el.children[0].name if el.name == "failure" else el.name

    p, feats = secure_stream()
    tap.ok(feats.find("mechanisms", NS_SASL) is not None,
           "EXTERNAL is offered with a valid certificate", feats)
    got = failure(p, "PLAIN", "=")
    tap.ok(got == "invalid-mechanism", "mechanism PLAIN: invalid-mechanism",
           got)
    got = failure(p, "EXTERNAL", "not*base64")
    tap.ok(got == "incorrect-encoding", "bad base64: incorrect-encoding",
           got)
    cond = p.expect_stream_error()
    tap.ok(cond == "policy-violation", "the second failure ends the "
           "stream (limit sasl-attempts 2)", cond)
    p.close()
    p, feats = secure_stream()
    got = failure(p, "EXTERNAL",
                  base64.b64encode(b"other.example").decode())
    tap.ok(got == "invalid-authzid", "an authzid the certificate is not "
           "valid for: invalid-authzid", got)
    p.send("<auth xmlns='%s' mechanism='EXTERNAL'>=</auth>" % NS_SASL)
    el = p.expect_element()
    tap.ok(el.name == "success", "then EXTERNAL without authzid succeeds",
           el)
    p.close()
except PeerError as e:
    tap.ok(False, "SASL", "%s\n%s" % (e, fg.log_text()[-2000:]))

# 6. Stream errors by the book.
try:
    p = opened()
    p.send("<message from='a@remote.example' to='b@corp.example'/>")
    cond = p.expect_stream_error()
    tap.ok(cond == "not-authorized", "a stanza before authentication: "
           "not-authorized", cond)
    p.close()
    p = opened()
    p.send("<foo:message from='a@remote.example' to='b@corp.example'/>")
    cond = p.expect_stream_error()
    tap.ok(cond == "bad-namespace-prefix", "an unbound prefix: "
           "bad-namespace-prefix", cond)
    p.close()
    p = opened()
    p.sock.shutdown(socket.SHUT_WR)
    kind = None
    try:
        kind, el = p.next_event()
    except PeerError as e:
        el = e
    tap.ok(kind == "end", "a half-close gets our </stream:stream>",
           (kind, el))
    p.close()
    tap.ok(fg.wait_log("the peer closed the connection"),
           "the log says the peer closed")
except PeerError as e:
    tap.ok(False, "stream errors", "%s\n%s" % (e, fg.log_text()[-2000:]))

honest_peer_served("at the end")
tap.ok(fg.alive(), "fedgated is still running")
fg.finish(tap)
for srv in (auth_srv, auth2_srv, slow_srv):
    srv.stop()
sys.exit(tap.done())
