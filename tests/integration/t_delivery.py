"""Nothing lost: a stanza counts as delivered only when the next hop has
acknowledged it (an XEP-0199 ping written after it was answered).

Scenario: remote.example (scripted, authenticated by dialback) sends 200
messages to corp.example; the internal server (scripted, corp.internal)
takes them, answers fedgated's pings through a stream of its own, and
resets its first connection in the middle of the burst. fedgated sends
what was not acknowledged again on a new leg: every message arrives,
none is bounced, the duplicates are counted, and sent = delivered +
resent. Then a second internal server that stops reading holds 30 more
when fedgated gets SIGTERM: fedgated waits for their acknowledgement,
accounts for every one of them in its log, and exits within
`timeout shutdown`. A third internal server offers stream management
(XEP-0198): fedgated acknowledges with <r/> and <a/> there instead of
pings, through a reset as well.
"""

import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (Fedgated, PeerError, Server, Tap, accept_dialback,
                     authoritative_server, dialback_stream, free_port,
                     tempdir, wait_until)

SECRET = "delivery-secret-0123456789abcdef"
REMOTE_SECRET = "delivery-remote-secret-0123456789"
COUNT, RESET_AFTER, STUCK = 200, 60, 30
SM_COUNT, SM_RESET_AFTER = 60, 25
NS_SM = "urn:xmpp:sm:3"
tap = Tap()
tmp = tempdir("fg-delivery-")
public_port, internal_port = free_port(), free_port()
lock = threading.Lock()
received = []          # message ids, in arrival order, all connections
pongs = []             # the return stream, made on the first ping
errors = []
stuck_gate = threading.Event()
sm_received, sm_pings = [], []


def pong(ping):
    """Answer fedgated's ping as the internal server would: on the
    internal server's own stream to remote.example (trusted upstream)."""
    with lock:
        if not pongs:
            p, _, _, r = dialback_stream(internal_port, "corp.internal",
                                         "remote.example")
            if r.get("type") != "valid":
                raise PeerError("return stream refused: %r" % r)
            pongs.append(p)
        pongs[0].send("<iq type='result' from='%s' to='%s' id='%s'/>" % (
            ping.get("to"), ping.get("from"), ping.get("id")))


def internal_server(peer):
    """corp.internal: verifies fedgated's key, records messages, answers
    pings; its first connection resets after RESET_AFTER messages."""
    first = internal_srv.connections == 1
    accept_dialback(peer, "corp.internal", internal_port)
    got = 0
    while True:
        try:
            el = peer.expect_element(timeout=30)
        except PeerError:
            return
        if el.name == "iq" and el.get("id", "").startswith("fedgate-ack-"):
            pong(el)
            continue
        with lock:
            received.append(el.get("id"))
        got += 1
        if first and got == RESET_AFTER:
            peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
            peer.sock.close()          # an RST, mid-burst
            return


def stuck_server(peer):
    """stuck.internal: lets fedgated in, then reads nothing."""
    accept_dialback(peer, "stuck.internal", internal_port)
    stuck_gate.wait(60)


def sm_server(peer):
    """sm.internal: offers XEP-0198, counts what it handles and answers
    <r/> with <a h/>; its first connection resets mid-burst."""
    first = sm_srv.connections == 1
    accept_dialback(peer, "sm.internal", internal_port, features=(
        "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/>"
        "<sm xmlns='%s'/></stream:features>" % NS_SM))
    h = 0
    while True:
        try:
            el = peer.expect_element(timeout=30)
        except PeerError:
            return
        if el.ns == NS_SM and el.name == "enable":
            peer.send("<enabled xmlns='%s'/>" % NS_SM)
        elif el.ns == NS_SM and el.name == "r":
            peer.send("<a xmlns='%s' h='%d'/>" % (NS_SM, h))
        elif el.name == "iq" and el.get("id", "").startswith("fedgate-ack-"):
            sm_pings.append(el.get("id"))
        else:
            h += 1
            with lock:
                sm_received.append(el.get("id"))
            if first and h == SM_RESET_AFTER:
                peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
                peer.sock.close()
                return


auth_srv = Server(authoritative_server("remote.example", REMOTE_SECRET))
internal_srv = Server(internal_server)
stuck_srv = Server(stuck_server)
sm_srv = Server(sm_server)
conf = """
dialback secret "%s"
listen public on 127.0.0.1 port %d
listen internal on 127.0.0.1 port %d
limit unacked 64
timeout ack 5s
timeout shutdown 4s
domain "corp.example" {
	upstream "127.0.0.1" port %d trusted
	internal-name "corp.internal"
}
domain "sm.example" {
	upstream "127.0.0.1" port %d trusted
	internal-name "sm.internal"
}
domain "stuck.example" {
	upstream "127.0.0.1" port %d trusted
	internal-name "stuck.internal"
}
peer "remote.example" {
	allow
	tls none
	route "127.0.0.1" port %d
}
peer default {
	deny
}
""" % (SECRET, public_port, internal_port, internal_srv.port, sm_srv.port,
       stuck_srv.port, auth_srv.port)

try:
    fg = Fedgated(conf, tmp, acks=True)
except PeerError as e:
    tap.ok(False, "fedgated starts", e)
    sys.exit(tap.done())


def route(local, remote):
    for r in fg.ctl_json("routes")["routes"]:
        if r["local"] == local and r["remote"] == remote:
            return r
    return None


# 1. A reset in the middle of a burst.
try:
    p, _, _, r = dialback_stream(public_port, "remote.example",
                                 "corp.example", REMOTE_SECRET)
    tap.ok(r.get("type") == "valid", "remote.example authenticates", r)
    for i in range(COUNT):
        p.send("<message from='a@remote.example' to='b@corp.example' "
               "id='m%d'><body>%d</body></message>" % (i, i))
    tap.ok(wait_until(lambda: len(set(received)) >= COUNT, 30),
           "every message arrives despite the reset (%d distinct of %d)"
           % (len(set(received)), COUNT), received[-5:])
    tap.ok(internal_srv.connections >= 2, "fedgated made a new leg after "
           "the reset (%d connections)" % internal_srv.connections)
    tap.ok(fg.wait_log("not acknowledged go again"),
           "the log says what goes again")
    settled = wait_until(lambda: (route("remote.example", "corp.internal")
                                  or {}).get("unacked", 1) == 0, 15)
    ri = route("remote.example", "corp.internal")
    dup = len(received) - len(set(received))
    tap.ok(settled and ri["bounced"] == 0 and ri["dropped"] == 0,
           "nothing bounced or dropped, nothing left unacknowledged", ri)
    tap.ok(ri["sent"] - ri["resent"] == COUNT and ri["acked"] == COUNT,
           "sent %d = %d delivered + %d resent; %d acknowledged" % (
               ri["sent"], COUNT, ri["resent"], ri["acked"]), ri)
    tap.ok(0 <= dup <= ri["resent"], "%d duplicates arrived, at most the "
           "%d resent" % (dup, ri["resent"]))
    order = [int(i[1:]) for i in received]
    firsts = sorted(set(order), key=order.index)
    tap.ok(firsts == list(range(COUNT)), "first arrivals are in order")
except (PeerError, KeyError, TypeError) as e:
    tap.ok(False, "reset mid-burst", "%s\n%s" % (e, fg.log_text()[-3000:]))

# 2. The same with stream management (XEP-0198).
try:
    s, _, _, r = dialback_stream(public_port, "remote.example",
                                 "sm.example", REMOTE_SECRET)
    for i in range(SM_COUNT):
        s.send("<message from='a@remote.example' to='b@sm.example' "
               "id='sm%d'><body>%d</body></message>" % (i, i))
    tap.ok(wait_until(lambda: len(set(sm_received)) >= SM_COUNT, 30),
           "with XEP-0198, every message arrives despite the reset (%d of "
           "%d)" % (len(set(sm_received)), SM_COUNT))
    settled = wait_until(lambda: (route("remote.example", "sm.internal")
                                  or {}).get("unacked", 1) == 0, 15)
    ri = route("remote.example", "sm.internal")
    tap.ok(settled and ri["acked"] == SM_COUNT and ri["bounced"] == 0 and
           ri["resent"] > 0, "all %d acknowledged by <a/>, %d resent after "
           "the reset" % (ri["acked"], ri["resent"]), ri)
    tap.ok(not sm_pings, "no XEP-0199 ping where XEP-0198 is on", sm_pings)
except (PeerError, KeyError, TypeError) as e:
    tap.ok(False, "stream management", "%s\n%s" % (e, fg.log_text()[-3000:]))

# 3. SIGTERM with a stuck internal server.
try:
    q, _, _, r = dialback_stream(public_port, "remote.example",
                                 "stuck.example", REMOTE_SECRET)
    for i in range(STUCK):
        q.send("<message from='a@remote.example' to='b@stuck.example' "
               "id='s%d'><body>%s</body></message>" % (i, "x" * 100))
    tap.ok(wait_until(lambda: (route("remote.example", "stuck.internal")
                               or {}).get("unacked") == STUCK, 15),
           "the stuck server holds %d unacknowledged stanzas" % STUCK,
           route("remote.example", "stuck.internal"))
    t0 = time.monotonic()
    fg.finish(tap)
    elapsed = time.monotonic() - t0
    tap.ok(elapsed < 4.0 + 1.0, "fedgated exits within timeout shutdown "
           "(%.1f s for 4 s)" % elapsed)
    log = fg.log_text()
    tap.ok("%d written stanzas were not acknowledged" % STUCK in log,
           "the log counts the unacknowledged stanzas")
    missing = [i for i in range(STUCK)
               if not any("id='s%d'" % i in line and
                          ("bounced" in line or "dropped" in line)
                          for line in log.splitlines())]
    tap.ok(not missing, "each of them is logged as bounced or dropped",
           missing)
    stuck_gate.set()
except PeerError as e:
    tap.ok(False, "shutdown with a stuck server",
           "%s\n%s" % (e, fg.log_text()[-3000:]))
    fg.finish(tap)

tap.ok(not errors, "no scripted-server error", errors)
for srv in (auth_srv, internal_srv, stuck_srv, sm_srv):
    srv.stop()
sys.exit(tap.done())
