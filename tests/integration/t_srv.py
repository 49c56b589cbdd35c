"""Outbound discovery by DNS: fedgated asks a DNS server (dnsmasq on
loopback, started here) for _xmpp-server._tcp SRV records, tries the
targets in RFC 2782 order and fails over from a dead one to a live one;
a domain whose SRV target is "." gets its stanzas bounced with
remote-server-not-found.

Then: a lab under .test (RFC 6761) is asked of the forwarder like any
name; _xmpps-server._tcp targets (XEP-0368) are merged into the same order
and connected with TLS from the first byte, but not looked up for a peer
whose rule says "tls none"; a failed lookup is logged with the resolver
that failed, and a name answered by a local zone of the resolver options
is logged as such, not as an answer of the DNS."""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ssl

from s2speer import (Dnsmasq, NS_STANZA_ERR, Fedgated, Inbox, PeerError, Server, Tap,
                     dialback_stream, free_port, make_cert, receiving_server,
                     tempdir, wait_until)

SECRET = "srv-test-secret-0123456789abcdef"
tap = Tap()
tmp = tempdir("fg-srv-")
dnsmasq = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
if not os.path.exists(dnsmasq):
    print("ok 1 - SRV discovery # SKIP dnsmasq is not installed")
    sys.exit(0)

public_port, internal_port = free_port(), free_port()
dead_port = free_port()
inbox = Inbox()


rem_srv = Server(receiving_server("remote.example", public_port, inbox))
up_srv = Server(receiving_server("corp.internal", internal_port, inbox))
lab_srv = Server(receiving_server("lab.test", public_port, inbox))
notls_srv = Server(receiving_server("notls.example", public_port, inbox))
tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls_ctx.load_cert_chain(*make_cert(tmp, "tls.example"))
tls_srv = Server(receiving_server("tls.example", public_port, inbox),
                 tls=tls_ctx)
try:
    dns = Dnsmasq(tmp, [
    "--host-record=dead.remote.example,127.0.0.1",
    "--host-record=live.remote.example,127.0.0.1",
    "--srv-host=_xmpp-server._tcp.remote.example,dead.remote.example,%d,0,0"
    % dead_port,
    "--srv-host=_xmpp-server._tcp.remote.example,live.remote.example,%d,10,0"
    % rem_srv.port,
    "--srv-host=_xmpp-server._tcp.nowhere.example,.,0,0,0",
    # authoritative for these: unknown names are NXDOMAIN
    "--local=/example/", "--local=/test/",
    "--srv-host=_xmpp-server._tcp.lab.test,xmpp.lab.test,%d,0,0"
    % lab_srv.port,
    "--host-record=xmpp.lab.test,127.0.0.1",
    # XEP-0368: a dead STARTTLS target first, then a direct TLS one
    "--srv-host=_xmpp-server._tcp.tls.example,dead.tls.example,%d,0,0"
    % dead_port,
    "--srv-host=_xmpps-server._tcp.tls.example,tlsgw.tls.example,%d,10,0"
    % tls_srv.port,
    "--host-record=dead.tls.example,127.0.0.1",
    "--host-record=tlsgw.tls.example,127.0.0.1",
    # "tls none": the _xmpps-server record (dead, first) is never asked for
    "--srv-host=_xmpps-server._tcp.notls.example,notls.example,%d,0,0"
    % dead_port,
    "--srv-host=_xmpp-server._tcp.notls.example,notls.example,%d,10,0"
    % notls_srv.port,
    "--host-record=notls.example,127.0.0.1",
])
except PeerError as e:
    tap.ok(False, "SRV discovery: dnsmasq starts", e)
    sys.exit(tap.done())
dns_port = dns.port


conf = """
dialback secret "%s"
resolver 127.0.0.1 port %d
resolver option "local-zone:" "blocked.test. static"
listen public on 127.0.0.1 port %d
listen internal on 127.0.0.1 port %d
timeout connect 2s
domain "corp.example" {
	upstream "127.0.0.1" port %d trusted
	internal-name "corp.internal"
}
peer "notls.example" {
	allow
	tls none
	auth dialback
}
peer default {
	allow
	tls optional
	auth dialback
}
""" % (SECRET, dns_port, public_port, internal_port, up_srv.port)


streams = []


def internal_stream(to):
    """The internal server's stream to `to`, authenticated (trusted)."""
    p = dialback_stream(internal_port, "corp.internal", to)[0]
    streams.append(p)
    return p


def message(to, ident):
    internal_stream(to).send(
        "<message from='a@corp.internal' to='b@%s' id='%s'><body>%s</body>"
        "</message>" % (to, ident, ident))
    return inbox.wait_id(ident, 20)


def bounced(to, ident):
    """Send an iq to `to`; return the conditions of its bounce's error."""
    internal_stream(to).send(
        "<iq from='a@corp.internal/r' to='%s' id='%s' type='get'>"
        "<query xmlns='jabber:iq:version'/></iq>" % (to, ident))
    if not wait_until(lambda: inbox.by_id(ident), 20):
        return []
    err = inbox.by_id(ident)[0].find("error")
    return [c.name for c in err.children] if err is not None else []


def line_index(log, *needles):
    """The offset of the first log line holding every needle, or -1."""
    pos = 0
    for line in log.splitlines(True):
        if all(n in line for n in needles):
            return pos
        pos += len(line)
    return -1


def dns_log():
    with open("%s/dnsmasq.log" % tmp) as f:
        return f.read()

fg = None
try:
    fg = Fedgated(conf, tmp)
    p, _, _, res = dialback_stream(internal_port, "corp.internal",
                                   "remote.example")
    tap.ok(res.get("type") == "valid",
           "the internal stream authenticates (trusted upstream)")
    p.send("<message from='a@corp.internal' to='b@remote.example' id='s1'>"
           "<body>token-srv</body></message>")
    tap.ok(inbox.wait_id("s1", 20),
           "the message reaches remote.example through its SRV records",
           fg.log_text()[-3000:])
    log = fg.log_text()
    dead = log.find("127.0.0.1:%d" % dead_port)
    live = log.find("connected to 127.0.0.1:%d" % rem_srv.port)
    tap.ok(0 <= dead < live, "the priority-0 target was tried first, then "
           "the next one", log[-2000:])
    q = dialback_stream(internal_port, "corp.internal", "nowhere.example")[0]
    q.send("<iq from='a@corp.internal/r' to='nowhere.example' id='s2' "
           "type='get'><query xmlns='jabber:iq:version'/></iq>")

    def bounce():
        return inbox.by_id("s2")
    tap.ok(wait_until(lambda: bounce(), 20), "an iq to a domain whose SRV "
           "target is '.' bounces", fg.log_text()[-2000:])
    b = bounce()
    if b:
        err = b[0].find("error")
        tap.ok(err is not None and err.find("remote-server-not-found",
                                            NS_STANZA_ERR) is not None,
               "with remote-server-not-found", b[0])
    p.close()
    q.close()

    # RFC 6761 special-use names go to the forwarder like any other.
    tap.ok(message("lab.test", "s3"), "a message reaches lab.test through "
           "_xmpp-server._tcp.lab.test, asked of the forwarder",
           fg.log_text()[-3000:])

    # XEP-0368: merged order, direct TLS at connect.
    tap.ok(message("tls.example", "s4"), "a message reaches tls.example "
           "through its _xmpps-server._tcp target", fg.log_text()[-3000:])
    log = fg.log_text()
    dead = line_index(log, "tls.example", "127.0.0.1:%d" % dead_port)
    tls = line_index(log, "tls.example", "connected to 127.0.0.1:%d "
                     "(direct TLS)" % tls_srv.port)
    tap.ok(0 <= dead < tls, "the priority-0 STARTTLS target was tried "
           "first, then the priority-10 direct TLS one", log[-3000:])
    tap.ok(tls_srv.connections == 1 and not tls_srv.errors,
           "the direct TLS target saw a TLS handshake from the first byte",
           tls_srv.errors)
    tap.ok(line_index(log, "tls.example", "tls TLSv1", "established") > tls,
           "the leg logs the TLS it established", log[-3000:])

    # "tls none": no _xmpps-server lookup at all.
    tap.ok(message("notls.example", "s5"), "a message reaches notls.example "
           "(peer rule tls none) over its STARTTLS target",
           fg.log_text()[-3000:])
    dl = dns_log()
    tap.ok("_xmpps-server._tcp.tls.example" in dl and
           "_xmpp-server._tcp.notls.example" in dl and
           "_xmpps-server._tcp.notls.example" not in dl,
           "_xmpps-server._tcp is asked for by default, never for a peer "
           "whose rule says tls none", dl[-3000:])

    # Failures name the resolver, and tell a local answer from the DNS's.
    tap.ok("remote-server-not-found" in bounced("gone.example", "s6"),
           "an iq to a domain the DNS does not know bounces")
    tap.ok(line_index(fg.log_text(), "gone.example: nxdomain from "
                      "forwarder 127.0.0.1 port %d" % dns_port) >= 0,
           "the log names the forwarder that said nxdomain",
           fg.log_text()[-2000:])
    tap.ok("remote-server-not-found" in bounced("blocked.test", "s7"),
           "an iq to a name in a local zone of the resolver options "
           "bounces")
    log = fg.log_text()
    tap.ok(line_index(log, "blocked.test", "answered locally by libunbound",
                      "forwarder 127.0.0.1 port %d was not asked"
                      % dns_port) >= 0,
           "the log says the local zone answered, not the DNS", log[-2000:])
    tap.ok("blocked.test" not in dns_log(), "the forwarder was not asked "
           "about blocked.test")
    for s in streams:
        s.close()
except (PeerError, OSError) as e:
    tap.ok(False, "SRV discovery", "%s\n%s" % (
        e, fg.log_text()[-3000:] if fg else ""))
finally:
    if fg:
        tap.ok(fg.alive(), "fedgated is still serving")
        fg.finish(tap)
    dns.stop()
    for srv in (rem_srv, up_srv, lab_srv, notls_srv, tls_srv):
        srv.stop()
sys.exit(tap.done())
