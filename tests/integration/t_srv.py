"""Outbound discovery by DNS: fedgated asks a DNS server (dnsmasq on
loopback, started here) for _xmpp-server._tcp SRV records, tries the
targets in RFC 2782 order and fails over from a dead one to a live one;
a domain whose SRV target is "." gets its stanzas bounced with
remote-server-not-found."""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (NS_STANZA_ERR, Fedgated, Inbox, PeerError, Server, Tap,
                     dialback_stream, free_port, receiving_server, tempdir,
                     wait_until)

SECRET = "srv-test-secret-0123456789abcdef"
tap = Tap()
tmp = tempdir("fg-srv-")
dnsmasq = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
if not os.path.exists(dnsmasq):
    print("ok 1 - SRV discovery # SKIP dnsmasq is not installed")
    sys.exit(0)

public_port, internal_port, dns_port = free_port(), free_port(), free_port()
dead_port = free_port()
inbox = Inbox()


rem_srv = Server(receiving_server("remote.example", public_port, inbox))
up_srv = Server(receiving_server("corp.internal", internal_port, inbox))
dns = subprocess.Popen([
    dnsmasq, "--keep-in-foreground", "--no-resolv", "--no-hosts",
    "--no-poll", "--bind-interfaces", "--listen-address=127.0.0.1",
    "--port=%d" % dns_port, "--user=root", "--pid-file=",
    "--log-facility=%s/dnsmasq.log" % tmp, "--log-queries",
    "--host-record=dead.remote.example,127.0.0.1",
    "--host-record=live.remote.example,127.0.0.1",
    "--srv-host=_xmpp-server._tcp.remote.example,dead.remote.example,%d,0,0"
    % dead_port,
    "--srv-host=_xmpp-server._tcp.remote.example,live.remote.example,%d,10,0"
    % rem_srv.port,
    "--srv-host=_xmpp-server._tcp.nowhere.example,.,0,0,0",
], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def dns_ready():
    return os.path.exists("%s/dnsmasq.log" % tmp) and \
        "started" in open("%s/dnsmasq.log" % tmp).read()


conf = """
dialback secret "%s"
resolver 127.0.0.1 port %d
listen public on 127.0.0.1 port %d
listen internal on 127.0.0.1 port %d
timeout connect 2s
domain "corp.example" {
	upstream "127.0.0.1" port %d trusted
	internal-name "corp.internal"
}
peer default {
	allow
	tls optional
	auth dialback
}
""" % (SECRET, dns_port, public_port, internal_port, up_srv.port)

fg = None
try:
    if not wait_until(dns_ready, 10):
        raise PeerError("dnsmasq did not start")
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
except (PeerError, OSError) as e:
    tap.ok(False, "SRV discovery", "%s\n%s" % (
        e, fg.log_text()[-3000:] if fg else ""))
finally:
    if fg:
        tap.ok(fg.alive(), "fedgated is still serving")
        fg.finish(tap)
    dns.terminate()
    dns.wait(10)
    rem_srv.stop()
    up_srv.stop()
sys.exit(tap.done())
