"""fedgatectl check DOMAIN: the federation checks run by fedgated itself,
against dnsmasq on loopback (fedgated's `resolver`) and scripted peers.

A healthy peer (SRV, STARTTLS, a certificate for its domain from a CA
fedgated trusts, dialback and SASL EXTERNAL offered) passes every step and
exits 0, with the stream closed politely and no authentication attempted.
A domain without SRV records is reported as the RFC 6120 fallback; an
unknown domain fails naming the resolver; a dead port fails; a certificate
for another name fails naming the names it is valid for; a peer without
STARTTLS warns under "tls optional" and fails under "tls required". For
a local domain: SRV records pointing at this gateway pass, pointing
elsewhere fail, and an upstream that does not answer fails. -j gives the
same steps as JSON."""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import socket

from s2speer import (Dnsmasq, NS_TLS, Fedgated, PeerError, Server, Tap, TestCA,
                     free_port, tempdir, wait_until)

tap = Tap()
tmp = tempdir("fg-check-")
dnsmasq = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
if not os.path.exists(dnsmasq):
    print("ok 1 - fedgatectl check # SKIP dnsmasq is not installed")
    sys.exit(0)

ca = TestCA(tmp)
public_port, internal_port = free_port(), free_port()
dead_port = free_port()
closed_politely = []      # domains whose stream fedgated closed with </stream>
bad = []                  # what a peer saw that it should not have


def finish(peer, domain):
    """Wait for fedgated's </stream:stream> (nothing else may come: no
    db:result, no SASL), answer it."""
    while True:
        kind, el = peer.next_event()
        if kind == "end":
            break
        bad.append("%s: %r" % (domain, el))
    peer.close_stream()
    closed_politely.append(domain)


def answer_header(peer, sid):
    hdr = peer.expect_header()
    peer.open_stream(frm=hdr.get("to"), to=hdr.get("from"),
                     extra=" id='%s'" % sid)
    return hdr


def tls_peer(cert_domain):
    """STARTTLS with a certificate for cert_domain, then dialback and
    SASL EXTERNAL offered."""
    ctx = ca.server_context(cert_domain)

    def handler(peer):
        hdr = answer_header(peer, "s1")
        peer.send("<stream:features><starttls xmlns='%s'/><dialback "
                  "xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
                  "</stream:features>" % NS_TLS)
        peer.expect_element("starttls", NS_TLS)
        peer.send("<proceed xmlns='%s'/>" % NS_TLS)
        peer.starttls_server(ctx)
        answer_header(peer, "s2")
        peer.send("<stream:features><mechanisms xmlns='urn:ietf:params:xml:"
                  "ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms>"
                  "<dialback xmlns='urn:xmpp:features:dialback'><errors/>"
                  "</dialback></stream:features>")
        finish(peer, hdr.get("to"))
    return handler


def plain_peer(peer):
    """No STARTTLS: dialback only."""
    hdr = answer_header(peer, "p1")
    peer.send("<stream:features><dialback xmlns='urn:xmpp:features:"
              "dialback'/></stream:features>")
    finish(peer, hdr.get("to"))


def upstream_peer(peer):
    """The internal server: a header and its features."""
    hdr = answer_header(peer, "u1")
    peer.send("<stream:features/>")
    finish(peer, "upstream:" + (hdr.get("to") or ""))


def stalling_peer(peer):
    """Reads our header, never answers: fedgated gives up after 5 s."""
    peer.expect_header()
    peer.expect_closed(timeout=30)


healthy = Server(tls_peer("healthy.example"))
stall = Server(stalling_peer)
wrong = Server(tls_peer("other.example"))
plain = Server(plain_peer)
upstream = Server(upstream_peer)

records = [
    "--srv-host=_xmpp-server._tcp.healthy.example,xmpp.healthy.example,%d,0,0"
    % healthy.port,
    "--host-record=xmpp.healthy.example,127.0.0.1",
    "--host-record=fallback.example,127.0.0.1",
    "--srv-host=_xmpp-server._tcp.dead.example,xmpp.dead.example,%d,0,0"
    % dead_port,
    "--host-record=xmpp.dead.example,127.0.0.1",
    "--srv-host=_xmpp-server._tcp.wrong.example,xmpp.wrong.example,%d,0,0"
    % wrong.port,
    "--host-record=xmpp.wrong.example,127.0.0.1",
    "--srv-host=_xmpp-server._tcp.plain.example,xmpp.plain.example,%d,0,0"
    % plain.port,
    "--srv-host=_xmpp-server._tcp.strict.example,xmpp.plain.example,%d,0,0"
    % plain.port,
    "--host-record=xmpp.plain.example,127.0.0.1",
    "--srv-host=_xmpp-server._tcp.slow.example,xmpp.slow.example,%d,0,0"
    % stall.port,
    "--host-record=xmpp.slow.example,127.0.0.1",
    # local domains: one served here, one pointing elsewhere
    "--srv-host=_xmpp-server._tcp.corp.example,gw.corp.example,%d,0,0"
    % public_port,
    "--host-record=gw.corp.example,127.0.0.1",
    "--srv-host=_xmpp-server._tcp.conference.corp.example,gw.corp.example,"
    "%d,0,0" % public_port,
    "--srv-host=_xmpp-server._tcp.away.example,gw.away.example,5269,0,0",
    "--host-record=gw.away.example,192.0.2.44",
    "--srv-host=_xmpp-server._tcp.down.example,gw.corp.example,%d,0,0"
    % public_port,
    "--local=/example/",
]
try:
    dns = Dnsmasq(tmp, records)
except PeerError as e:
    tap.ok(False, "fedgatectl check: dnsmasq starts", e)
    sys.exit(tap.done())
dns_port = dns.port

conf = """
dialback secret "check-test-secret-0123456789abcdef"
resolver 127.0.0.1 port %d
tls ca-file "%s"
listen public on 127.0.0.1 port %d
listen internal on 127.0.0.1 port %d
domain "corp.example" {
	upstream "127.0.0.1" port %d trusted
	internal-name "corp.internal"
	subdomains "conference"
}
domain "away.example" {
	upstream "127.0.0.1" port %d
}
domain "down.example" {
	upstream "127.0.0.1" port %d
}
peer "strict.example" {
	allow
	tls required
}
peer default {
	allow
	tls optional
	auth any
}
""" % (dns_port, ca.crt, public_port, internal_port, upstream.port,
       upstream.port, dead_port)


def check(fg, domain, *extra):
    """Run fedgatectl -j check; return (exit status, reply, steps as
    {(step, subject): (verdict, reason)} and in order)."""
    p = subprocess.run(
        [os.path.join(fg.builddir, "src", "fedgatectl", "fedgatectl"), "-s",
         fg.sock, "-j", "check", domain] + list(extra),
        capture_output=True, text=True, timeout=90)
    try:
        reply = json.loads(p.stdout)
    except ValueError:
        reply = {"stdout": p.stdout, "stderr": p.stderr}
    return p.returncode, reply, reply.get("steps", [])


def find(steps, step, subject=None):
    """The first step named step (about subject, if given), or {}."""
    for s in steps:
        if s["step"] == step and (subject is None or s["subject"] == subject):
            return s
    return {}


def verdicts(steps):
    return "\n".join("%s %s %s %s" % (s["verdict"], s["step"], s["subject"],
                                        s["reason"]) for s in steps)


fg = None
try:
    fg = Fedgated(conf, tmp)
    who = "forwarder 127.0.0.1 port %d" % dns_port

    # A healthy peer: every step ok.
    rc, reply, steps = check(fg, "healthy.example")
    tap.ok(rc == 0 and reply.get("works") == "yes",
           "healthy.example: federation would work, exit 0",
           "rc %d\n%s\n%s" % (rc, reply, fg.log_text()[-3000:]))
    names = [s["step"] for s in steps]
    for want in ("policy", "srv", "addresses", "tcp", "stream", "features",
                 "starttls", "tls", "certificate", "dialback",
                 "sasl-external"):
        tap.ok(want in names, "healthy.example: the %s step is reported"
               % want, verdicts(steps))
    tap.ok(all(s["verdict"] == "ok" for s in steps),
           "healthy.example: every step is ok", verdicts(steps))
    srv = find(steps, "srv", "_xmpp-server._tcp.healthy.example")
    tap.ok("xmpp.healthy.example:%d" % healthy.port in srv.get("reason", ""),
           "the SRV step names the target", srv)
    xs = find(steps, "srv", "_xmpps-server._tcp.healthy.example")
    tap.ok(("no record (nxdomain from %s)" % who) in xs.get("reason", ""),
           "the _xmpps-server name is asked too (XEP-0368), and its own "
           "answer reported", verdicts(steps))
    cert = find(steps, "certificate")
    tap.ok("valid for healthy.example" in cert.get("reason", "") and
           "expires" in cert.get("reason", ""),
           "the certificate step says valid for the domain, and its expiry",
           cert)
    tap.ok(wait_until(lambda: "healthy.example" in closed_politely, 5) and
           not bad, "the stream is closed politely, with no authentication "
           "attempted", bad)

    # Text output: one line per step, then the verdict.
    rc2, out, err = fg.ctl("check", "healthy.example", check=False)
    lines = out.splitlines()
    tap.ok(rc2 == 0 and len(lines) == len(steps) + 1 and
           lines[-1].startswith("federation with healthy.example would "
                                "work: yes"),
           "text output: one line per step and the outcome", out + err)

    # No SRV record: the RFC 6120 fallback is reported.
    rc, reply, steps = check(fg, "fallback.example")
    srv = find(steps, "srv", "_xmpp-server._tcp.fallback.example")
    tap.ok(srv.get("verdict") == "warn" and
           "fallback: fallback.example port 5269" in srv.get("reason", ""),
           "no SRV: the RFC 6120 fallback is reported", verdicts(steps))
    tap.ok(find(steps, "addresses", "fallback.example").get("verdict") ==
           "ok", "the fallback host's addresses are looked up",
           verdicts(steps))

    # NXDOMAIN: fail, naming the resolver.
    rc, reply, steps = check(fg, "gone.example")
    a = find(steps, "addresses", "gone.example")
    tap.ok(rc == 1 and a.get("verdict") == "fail" and
           ("nxdomain from %s" % who) in a.get("reason", ""),
           "an unknown domain fails, naming the resolver, exit 1",
           "rc %d\n%s" % (rc, verdicts(steps)))

    # A dead port.
    rc, reply, steps = check(fg, "dead.example")
    t = find(steps, "tcp")
    tap.ok(rc == 1 and t.get("verdict") == "fail" and
           t.get("subject") == "127.0.0.1:%d" % dead_port and
           "refused" in t.get("reason", "").lower(),
           "a dead port fails the tcp step, exit 1",
           "rc %d\n%s" % (rc, verdicts(steps)))

    # A certificate for another name.
    rc, reply, steps = check(fg, "wrong.example")
    cert = find(steps, "certificate")
    tap.ok(rc == 1 and cert.get("verdict") == "fail" and
           "not valid for wrong.example" in cert.get("reason", "") and
           "other.example" in cert.get("reason", ""),
           "a certificate for another name fails, naming its names",
           "rc %d\n%s" % (rc, verdicts(steps)))

    # No STARTTLS: warn under tls optional, fail under tls required.
    rc, reply, steps = check(fg, "plain.example")
    st = find(steps, "starttls")
    tap.ok(rc == 0 and st.get("verdict") == "warn" and
           find(steps, "certificate").get("verdict") == "skip",
           "no STARTTLS under tls optional: warn, exit 0",
           "rc %d\n%s" % (rc, verdicts(steps)))
    rc, reply, steps = check(fg, "strict.example")
    st = find(steps, "starttls")
    tap.ok(rc == 1 and st.get("verdict") == "fail" and
           "requires TLS" in st.get("reason", ""),
           "no STARTTLS under tls required: fail, exit 1",
           "rc %d\n%s" % (rc, verdicts(steps)))

    # Local domains.
    rc, reply, steps = check(fg, "corp.example")
    gw = find(steps, "gateway")
    up = find(steps, "features", "127.0.0.1:%d" % upstream.port)
    tap.ok(rc == 0 and reply.get("local") is True and
           gw.get("verdict") == "ok" and up.get("verdict") == "ok",
           "a local domain whose SRV points here and whose upstream "
           "answers: ok, exit 0", "rc %d\n%s" % (rc, verdicts(steps)))
    tap.ok(wait_until(lambda: "upstream:corp.internal" in closed_politely,
                      5), "the upstream is asked as the internal name",
           closed_politely)
    rc, reply, steps = check(fg, "conference.corp.example")
    gw = find(steps, "gateway")
    tap.ok(rc == 0 and reply.get("local") is True and
           gw.get("verdict") == "ok" and
           wait_until(lambda: "upstream:conference.corp.internal" in
                      closed_politely, 5),
           "a subdomain is local: the upstream is asked as its internal "
           "name", "rc %d\n%s\n%s" % (rc, verdicts(steps), closed_politely))
    rc, reply, steps = check(fg, "away.example")
    gw = find(steps, "gateway")
    tap.ok(rc == 1 and gw.get("verdict") == "fail" and
           "192.0.2.44:5269" in gw.get("reason", "") and
           "127.0.0.1:%d" % public_port in gw.get("reason", ""),
           "a local domain whose SRV points elsewhere fails, saying where",
           "rc %d\n%s" % (rc, verdicts(steps)))
    rc, reply, steps = check(fg, "down.example")
    t = find(steps, "tcp", "127.0.0.1:%d" % dead_port)
    tap.ok(rc == 1 and find(steps, "gateway").get("verdict") == "ok" and
           t.get("verdict") == "fail",
           "a local domain whose upstream is down fails, exit 1",
           "rc %d\n%s" % (rc, verdicts(steps)))

    # The reply comes later; pipelined lines wait for it, in order.
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(30)
    c.connect(fg.sock)
    c.sendall(b"check dead.example\nstatus\n")
    buf = b""
    while buf.count(b"\n") < 2:
        data = c.recv(65536)
        if not data:
            break
        buf += data
    c.close()
    replies = [json.loads(x) for x in buf.split(b"\n") if x]
    tap.ok([r.get("command") for r in replies] == ["check", "status"],
           "a pipelined command after check is answered after it", replies)

    # At most 4 checks wait at once; each step is bounded in time.
    socks = []
    for i in range(5):
        c = socket.socket(socket.AF_UNIX)
        c.settimeout(30)
        c.connect(fg.sock)
        c.sendall(b"check slow.example\n")
        socks.append(c)
    answers = []
    for c in socks:
        buf = b""
        while not buf.endswith(b"\n"):
            data = c.recv(65536)
            if not data:
                break
            buf += data
        c.close()
        answers.append(json.loads(buf) if buf else {})
    refused = [a for a in answers if "too many commands waiting" in
               a.get("error", "")]
    done = [a for a in answers if a.get("ok")]
    tap.ok(len(refused) == 1 and len(done) == 4,
           "a fifth concurrent check is refused, the four others run",
           answers)
    st = find(done[0].get("steps", []) if done else [], "stream")
    tap.ok(st.get("verdict") == "fail" and "within 5s" in st.get("reason", "")
           and done[0].get("works") == "no",
           "a peer that never answers fails the stream step after 5 s",
           done[:1])

    # Errors: exit 2.
    rc, reply, steps = check(fg, "bad..domain")
    tap.ok(rc == 2 and reply.get("ok") is False,
           "an invalid domain is an error, exit 2", reply)
    tap.ok(fg.ctl("status", check=False)[0] == 0, "the control socket "
           "still answers after the checks")
    tap.ok(not healthy.errors and not wrong.errors and not plain.errors and
           not upstream.errors, "the scripted peers saw no error",
           healthy.errors + wrong.errors + plain.errors + upstream.errors)
except (PeerError, OSError, subprocess.TimeoutExpired) as e:
    tap.ok(False, "fedgatectl check", "%s\n%s" % (
        e, fg.log_text()[-3000:] if fg else ""))
finally:
    if fg:
        tap.ok(fg.alive(), "fedgated is still serving")
        fg.finish(tap)
    dns.stop()
    for srv in (healthy, wrong, plain, upstream, stall):
        srv.stop()
sys.exit(tap.done())
