"""Prometheus metrics: the counters show what happened, over HTTP (metrics
listen) and as fedgatectl metrics, and promtool finds the exposition
clean.

Scenario: remote.example (scripted) opens a stream to corp.example and is
verified by dialback against its authoritative server (scripted, static
route); one message goes to the internal server (scripted, corp.internal)
over an outgoing internal leg; a second domain pair, remote.example ->
down.example, authenticates on the same stream, and a message to
down.example, whose upstream does not answer, is bounced with
remote-server-not-found back to remote.example (its receiving server is
the same scripted server). A stream to a host fedgated does not serve is
refused (host-unknown), and stranger.example, which metrics domains does
not list, fails dialback: both count as "other".
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (NS_DB, NS_STREAM, Fedgated, Inbox, Peer, PeerError,
                     Server, Tap, authoritative_server, dialback_key,
                     free_port, make_cert, receiving_server, stream_error,
                     tempdir, verify_back, wait_until)

SECRET = "metrics-secret-0123456789abcdef"            # fedgated's
REMOTE_SECRET = "remote-secret-for-its-own-keys-0003"  # remote.example's
tap = Tap()
tmp = tempdir("fg-metrics-")
public_port, internal_port = free_port(), free_port()
metrics_port, down_port = free_port(), free_port()   # down: nobody listens
inbox = Inbox()          # the internal server's
remote_inbox = Inbox()   # remote.example's receiving server's


def remote_receiving(peer, hdr, sid, el):
    """remote.example's receiving server: fedgated's db:result is checked
    with fedgated's public face, then stanzas are collected."""
    verdict = verify_back(public_port, "remote.example", el.get("from"), sid,
                          el.text)
    peer.send("<db:result from='remote.example' to='%s' type='%s'/>" % (
        el.get("from"), verdict))
    remote_inbox.collect(peer)


crt, key = make_cert(tmp, "corp.example")
auth_srv = Server(authoritative_server("remote.example", REMOTE_SECRET,
                                       then=remote_receiving))
int_srv = Server(receiving_server("corp.internal", internal_port, inbox))
conf = """
dialback secret "%s"
listen public on 127.0.0.1 port %d
listen internal on 127.0.0.1 port %d
metrics listen on 127.0.0.1 port %d
metrics domains "Remote.Example" "unused.example"
domain "corp.example" {
	upstream "127.0.0.1" port %d
	internal-name "corp.internal"
	certificate "%s"
	key "%s"
}
domain "down.example" {
	upstream "127.0.0.1" port %d
}
peer "remote.example" {
	allow
	tls none
	auth dialback
	route "127.0.0.1" port %d
}
peer "stranger.example" {
	allow
	tls none
	auth dialback
	route "127.0.0.1" port %d
}
peer default {
	deny
}
""" % (SECRET, public_port, internal_port, metrics_port, int_srv.port, crt,
       key, down_port, auth_srv.port, auth_srv.port)

try:
    fg = Fedgated(conf, tmp)
except PeerError as e:
    tap.ok(False, "fedgated starts", e)
    sys.exit(tap.done())


def http(method, path, body=None):
    """One HTTP/1.1 request to the metrics endpoint: (status, headers,
    body)."""
    s = socket.create_connection(("127.0.0.1", metrics_port), timeout=10)
    try:
        req = "%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n" % (
            method, path)
        if body is not None:
            req += "Content-Length: %d\r\n" % len(body)
        s.sendall((req + "\r\n" + (body or "")).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0] else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest.decode()


def parse(text):
    """{(name, frozenset of label pairs): value} of an exposition."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        if not m:
            raise ValueError("bad sample line %r" % line)
        labels = frozenset(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"',
                                      m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0)


def families(text):
    return sorted(line for line in text.splitlines()
                  if line.startswith("# TYPE ") or line.startswith("# HELP "))


def ctl_metrics():
    rc, out, err = fg.ctl("metrics", check=False)
    return rc, out, err


sent = [0]   # bytes our remote.example peer wrote


def remote_stream():
    """A verified incoming stream from remote.example to corp.example."""
    p = Peer(port=public_port)
    orig = p.send

    def counting_send(data):
        sent[0] += len(data.encode() if isinstance(data, str) else data)
        orig(data)
    p.send = counting_send
    p.open_stream(frm="remote.example", to="corp.example")
    hdr = p.expect_header()
    p.expect_element("features", NS_STREAM)
    p.send("<db:result from='remote.example' to='corp.example'>%s"
           "</db:result>" % dialback_key(REMOTE_SECRET, "corp.example",
                                         "remote.example", hdr.get("id")))
    res = p.expect_element("result", NS_DB)
    if res.get("type") != "valid":
        raise PeerError("dialback refused: %r" % res)
    return p, hdr.get("id")


# 1. What the scenario does.
try:
    p, sid = remote_stream()
    p.send("<message from='alice@remote.example/pc' to='bob@corp.example' "
           "type='chat' id='m1'><body>counted</body></message>")
    tap.ok(inbox.wait_id("m1"), "the message reaches the internal server",
           inbox.stanzas)
    p.send("<db:result from='remote.example' to='down.example'>%s"
           "</db:result>" % dialback_key(REMOTE_SECRET, "down.example",
                                         "remote.example", sid))
    res = p.expect_element("result", NS_DB)
    tap.ok(res.get("type") == "valid", "remote.example -> down.example "
           "authenticates on the same stream", res)
    p.send("<message from='alice@remote.example/pc' to='carol@down.example' "
           "type='chat' id='m2'><body>bounced</body></message>")
    bounce = remote_inbox.wait_id("m2", 20)
    cond = bounce and bounce.find("error") and \
        [c.name for c in bounce.find("error").children]
    tap.ok(bounce is not None and bounce.get("type") == "error" and
           cond and "remote-server-not-found" in cond,
           "the message to down.example comes back: remote-server-not-found",
           "%r\n%s" % (bounce, fg.log_text()[-3000:]))
    # A stream to a host fedgated does not serve: refused, host-unknown.
    q = Peer(port=public_port)
    q.open_stream(frm="stranger.example", to="nowhere.example")
    el = q.expect_stream_error()
    tap.ok(el == "host-unknown", "a stream to nowhere.example is refused "
           "with host-unknown", el)
    q.close()
    # stranger.example fails dialback (a key not minted by its server).
    s = Peer(port=public_port)
    s.open_stream(frm="stranger.example", to="corp.example")
    shdr = s.expect_header()
    s.expect_element("features", NS_STREAM)
    s.send("<db:result from='stranger.example' to='corp.example'>%s"
           "</db:result>" % dialback_key("not-the-right-secret-0123456789",
                                         "corp.example", "stranger.example",
                                         shdr.get("id")))
    res = s.expect_element("result", NS_DB)
    tap.ok(res.get("type") == "invalid", "stranger.example's key is invalid",
           res)
    s.close_stream()
    s.close()
except (PeerError, OSError, TypeError) as e:
    tap.ok(False, "the scenario", "%s\n%s" % (e, fg.log_text()))

# 2. The counters, over HTTP.
status, headers, text = http("GET", "/metrics")
tap.ok(status == 200 and headers.get("content-type", "").startswith(
    "text/plain; version=0.0.4"), "GET /metrics: 200, text format 0.0.4",
    "%s %r" % (status, headers))
try:
    m = parse(text)
except ValueError as e:
    m = {}
    tap.ok(False, "every sample line parses", e)
L = "127.0.0.1:%d" % public_port
R = "remote.example"
checks = [
    ("connections accepted on the public listener: 4", value(
        m, "fedgate_connections_accepted_total", listener=L,
        face="public"), 4),
    ("streams accepted from remote.example (its own, and its receiving "
     "server's check of our key)", value(
         m, "fedgate_streams_accepted_total", face="public", direction="in",
         domain=R), 2),
    ("stranger.example's stream is accepted as other", value(
        m, "fedgate_streams_accepted_total", face="public", direction="in",
        domain="other"), 1),
    ("the refused stream: reason host_unknown, domain other", value(
        m, "fedgate_streams_refused_total", face="public", direction="in",
        domain="other", reason="host_unknown"), 1),
    ("remote.example authenticated twice by dialback", value(
        m, "fedgate_authentications_total", face="public", direction="in",
        domain=R, method="dialback", result="ok"), 2),
    ("stranger.example failed dialback, as other", value(
        m, "fedgate_authentications_total", face="public", direction="in",
        domain="other", method="dialback", result="failed"), 1),
    ("our dialback towards the internal server as remote.example", value(
        m, "fedgate_authentications_total", face="internal",
        direction="out", domain=R, method="dialback", result="ok"), 1),
    ("our dialback towards remote.example (for the bounce)", value(
        m, "fedgate_authentications_total", face="public", direction="out",
        domain=R, method="dialback", result="ok"), 1),
    ("two stanzas in from remote.example", value(
        m, "fedgate_stanzas_total", face="public", direction="in",
        domain=R), 2),
    ("one stanza out to the internal server", value(
        m, "fedgate_stanzas_total", face="internal", direction="out",
        domain=R), 1),
    ("one stanza out to remote.example: the bounce", value(
        m, "fedgate_stanzas_total", face="public", direction="out",
        domain=R), 1),
    ("one bounce, remote-server-not-found, of remote.example's stanza",
     value(m, "fedgate_stanzas_bounced_total", face="public", domain=R,
           condition="remote-server-not-found"), 1),
    ("nothing dropped", sum(v for (n, _), v in m.items()
                            if n == "fedgate_stanzas_dropped_total"), 0),
    ("the listed but unseen domain has no series", sum(
        1 for (n, lb) in m if ("domain", "unused.example") in lb), 0),
]
for desc, got, want in checks:
    tap.ok(got == want, desc, "got %s, want %s" % (got, want))
bin_ = value(m, "fedgate_stream_bytes_total", face="public", direction="in",
             domain=R)
tap.ok(bin_ >= sent[0] > 0, "bytes in from remote.example count at least "
       "what its peer sent", "%s < %s" % (bin_, sent[0]))
tap.ok(value(m, "fedgate_stream_bytes_total", face="internal",
             direction="out", domain=R) > 0,
       "bytes out to the internal server are counted")
tap.ok(value(m, "fedgate_legs_open", face="public", direction="in") >= 1 and
       value(m, "fedgate_legs_open", face="internal", direction="out") >= 1,
       "open legs: the incoming one and the internal one")
tap.ok(value(m, "fedgate_handshake_seconds_count", face="public",
             direction="in") >= 1 and
       value(m, "fedgate_authentication_seconds_count", face="public",
             direction="in") >= 1 and
       value(m, "fedgate_handshake_seconds_bucket", face="public",
             direction="in", le="+Inf") == value(
                 m, "fedgate_handshake_seconds_count", face="public",
                 direction="in"),
       "handshake and authentication times are observed")
tap.ok(value(m, "fedgate_dns_answers_total", query="address",
             status="ok") >= 1, "DNS answers are counted by status")
tap.ok(not any(("domain", "stranger.example") in lb or
               ("domain", "nowhere.example") in lb for (_, lb) in m),
       "unlisted domains never become label values")

# 3. fedgatectl metrics: the same families.
rc, out, err = ctl_metrics()
tap.ok(rc == 0 and families(out) == families(text) and
       len(families(text)) == 34,
       "fedgatectl metrics prints the same 17 families", out + err)
cm = parse(out) if rc == 0 else {}
tap.ok(value(cm, "fedgate_stanzas_bounced_total", face="public", domain=R,
             condition="remote-server-not-found") == 1 and
       value(cm, "fedgate_stanzas_total", face="public", direction="in",
             domain=R) == 2, "... with the same counts")
rc, out_j, err = fg.ctl("-j", "metrics", check=False)
try:
    reply = json.loads(out_j)
except ValueError:
    reply = {}
tap.ok(rc == 0 and reply.get("ok") is True and
       reply.get("command") == "metrics" and
       families(reply.get("text", "")) == families(text),
       "fedgatectl -j metrics: the text in one JSON field", out_j + err)

# 4. promtool.
promtool = shutil.which("promtool")
if promtool is None:
    print("ok %d # SKIP promtool is absent (Debian package prometheus)" %
          (tap.n + 1), flush=True)
    tap.n += 1
else:
    for what, body in (("GET /metrics", text), ("fedgatectl metrics", out)):
        r = subprocess.run([promtool, "check", "metrics"], input=body,
                           capture_output=True, text=True, timeout=30)
        tap.ok(r.returncode == 0 and r.stdout.strip() == "" and
               r.stderr.strip() == "", "promtool check metrics: %s is "
               "clean" % what, r.stdout + r.stderr)

# 5. Only GET /metrics.
status, headers, body = http("GET", "/")
tap.ok(status == 404, "GET / is 404", status)
status, headers, body = http("GET", "/metrics/x")
tap.ok(status == 404, "GET /metrics/x is 404", status)
status, headers, body = http("POST", "/metrics", "x=1")
tap.ok(status in (405, 413) and (status != 405 or
                                 headers.get("allow") == "GET"),
       "POST /metrics with a body is refused", "%s %r" % (status, headers))
status, headers, body = http("DELETE", "/metrics")
tap.ok(status == 405 and headers.get("allow") == "GET",
       "DELETE /metrics is 405, Allow: GET", "%s %r" % (status, headers))
status, headers, body = http("GET", "/metrics?name=x")
tap.ok(status == 200, "a query string is ignored", status)
try:
    big = socket.create_connection(("127.0.0.1", metrics_port), timeout=10)
    big.sendall(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 20000 +
                b"\r\n\r\n")
    data = b""
    while True:
        chunk = big.recv(65536)
        if not chunk:
            break
        data += chunk
    big.close()
    tap.ok(not data.startswith(b"HTTP/1.1 200"),
           "a request with 20 KB of headers is not served", data[:80])
except OSError as e:
    tap.ok(True, "a request with 20 KB of headers is not served (%s)" % e)
tap.ok("metrics on http://127.0.0.1:%d/metrics" % metrics_port in
       fg.log_text(), "the endpoint is logged at start-up")
tap.ok(fg.alive(), "fedgated is still serving")

try:
    p.close_stream()
    p.close()
except (OSError, NameError):
    pass
fg.finish(tap)
auth_srv.stop()
int_srv.stop()
sys.exit(tap.done())
