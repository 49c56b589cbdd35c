"""workers 2: two relay processes behind one parent, both serving every
listener through SO_REUSEPORT, worker 0 answering the control socket and
the metrics endpoint for both.

Scenario: remote.example (scripted) opens many streams to corp.example on
the public face, each verified by dialback against its authoritative
server (scripted, reached by a static route); the kernel spreads them over
both workers, which fedgatectl sessions shows (its "worker" field). A
message on a stream of each worker makes that worker open its own internal
leg to the internal server (scripted, corp.internal), whose db:result the
internal server verifies on a connection it makes sure lands on the OTHER
worker: the answer is valid, since every worker answers from the shared
dialback secret. Then a message on every stream reaches the internal
server; status, metrics (control and HTTP) sum both workers; kill reaches
a leg of worker 1; an acknowledgement ping that ack.internal answers
on a stream of its own that landed on the other worker reaches the route
that sent it (handed over between the workers); a runtime policy deny
closes the legs of both; reload
(control and SIGHUP) reloads both, and says that a change of workers
needs a restart; SIGTERM stops all three processes, status 0.
"""

import json
import os
import signal
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (NS_DB, NS_STREAM, Fedgated, Inbox, Peer, PeerError,
                     Server, Tap, accept_stream, authoritative_server,
                     dialback_key, dialback_stream, free_port, make_cert,
                     stream_error, tempdir, wait_until)

SECRET = "workers-secret-0123456789abcdef01"          # fedgated's
REMOTE_SECRET = "remote-secret-for-its-own-keys-0003"  # remote.example's
STREAMS = 16
tap = Tap()
tmp = tempdir("fg-workers-")
public_port, internal_port = free_port(), free_port()
metrics_port = free_port()
inbox = Inbox()
cross = []      # (leg worker, verify worker, verdict) per internal leg
fg = None


def sessions():
    reply = fg.ctl_json("sessions")
    if not reply.get("ok"):
        raise PeerError("sessions: %r" % reply)
    return reply["sessions"]


def worker_of_peer(port):
    """The worker holding the incoming internal leg from our port."""
    for s in sessions():
        if s["direction"] == "in" and s["peer"] == "127.0.0.1:%d" % port:
            return s["worker"]
    return None


def verify_on_other_worker(leg_worker, receiving, originating, sid, key):
    """db:verify on the internal face, on a connection that landed on a
    worker other than leg_worker. Return (its worker, the answer)."""
    for _ in range(40):
        back = Peer(port=internal_port)
        try:
            back.open_stream(frm=receiving, to=originating)
            back.expect_header()
            back.expect_element("features", NS_STREAM)
            port = back.sock.getsockname()[1]
            w = None
            wait_until(lambda: worker_of_peer(port) is not None, 5)
            w = worker_of_peer(port)
            if w is None or w == leg_worker:
                continue
            back.send("<db:verify from='%s' to='%s' id='%s'>%s</db:verify>"
                      % (receiving, originating, sid, key))
            return w, back.expect_element("verify", NS_DB).get("type")
        finally:
            back.close()
    raise PeerError("no verify connection landed on another worker")


def internal_server(peer):
    """corp.internal: check fedgated's db:result on the other worker."""
    hdr, sid = accept_stream(peer, "corp.internal")
    r = peer.expect_element("result", NS_DB)
    legs = [s for s in sessions() if s["face"] == "internal" and
            s["direction"] == "out" and not s["verify"] and
            s["state"] != "ready"]
    if len(legs) != 1:
        raise PeerError("not one internal leg being verified: %r" % legs)
    w, verdict = verify_on_other_worker(legs[0]["worker"], "corp.internal",
                                        r.get("from"), sid, r.text)
    cross.append((legs[0]["worker"], w, verdict))
    peer.send("<db:result from='corp.internal' to='%s' type='%s'/>" % (
        r.get("from"), verdict))
    inbox.collect(peer)


acks = {}       # what ack.internal saw: ping ids, the answer's worker


def ack_server(peer):
    """ack.internal (trusted upstream): takes messages; answers each
    fedgated ping on a return stream of its own that landed on a worker
    other than the pinging one (the W of fedgate-ack-NONCE-W-N)."""
    hdr, sid = accept_stream(peer, "ack.internal")
    peer.expect_element("result", NS_DB)
    peer.send("<db:result from='ack.internal' to='remote.example' "
              "type='valid'/>")
    while True:
        try:
            el = peer.expect_element(timeout=30)
        except PeerError:
            return
        ident = el.get("id", "")
        if el.name != "iq" or not ident.startswith("fedgate-ack-"):
            inbox.stanzas.append(el)
            continue
        pinger = int(ident.split("-")[3])
        acks.setdefault("pings", []).append(ident)
        for _ in range(40):
            back, _, _, r = dialback_stream(internal_port, "ack.internal",
                                            "remote.example")
            port = back.sock.getsockname()[1]
            wait_until(lambda: worker_of_peer(port) is not None, 5)
            w = worker_of_peer(port)
            if r.get("type") == "valid" and w is not None and w != pinger:
                break
            back.close()
        else:
            acks["error"] = "no return stream on another worker"
            return
        acks["answered_on"] = (pinger, w)
        back.send("<iq type='result' from='%s' to='%s' id='%s'/>" % (
            el.get("to"), el.get("from"), ident))
        acks.setdefault("backs", []).append(back)


crt, key = make_cert(tmp, "corp.example")
ack_srv = Server(ack_server)
auth_srv = Server(authoritative_server("remote.example", REMOTE_SECRET))
int_srv = Server(internal_server)
conf = """
workers 2
metrics listen on 127.0.0.1 port %d
dialback secret "%s"
listen public on 127.0.0.1 port %d
listen internal on 127.0.0.1 port %d
domain "corp.example" {
	upstream "127.0.0.1" port %d
	internal-name "corp.internal"
	certificate "%s"
	key "%s"
}
domain "ack.example" {
	upstream "127.0.0.1" port %d trusted
	internal-name "ack.internal"
}
peer "remote.example" {
	allow
	tls none
	auth dialback
	route "127.0.0.1" port %d
}
peer default {
	deny
}
""" % (metrics_port, SECRET, public_port, internal_port, int_srv.port, crt,
       key, ack_srv.port, auth_srv.port)

try:
    fg = Fedgated(conf, tmp, acks=True)
except PeerError as e:
    tap.ok(False, "fedgated starts", e)
    sys.exit(tap.done())


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


relays = children(fg.proc.pid)
tap.ok(len(relays) == 2, "the parent runs two relays", relays)
tap.ok(fg.wait_log("worker 1 of 2 running") and
       fg.wait_log("worker 0 of 2 running"), "both workers say they run",
       fg.log_text())


def remote_stream(to="corp.example"):
    """A verified incoming stream from remote.example to `to`."""
    p = Peer(port=public_port)
    p.open_stream(frm="remote.example", to=to)
    hdr = p.expect_header()
    p.expect_element("features", NS_STREAM)
    p.send("<db:result from='remote.example' to='%s'>%s</db:result>" % (
        to, dialback_key(REMOTE_SECRET, to, "remote.example",
                         hdr.get("id"))))
    res = p.expect_element("result", NS_DB)
    if res.get("type") != "valid":
        raise PeerError("dialback refused: %r" % res)
    return p


def incoming():
    return [s for s in sessions() if s["face"] == "public" and
            s["direction"] == "in" and s["remote"] == "remote.example" and
            s["state"] == "open"]


peers = {}      # local port -> Peer
by_worker = {0: [], 1: []}
try:
    for i in range(STREAMS):
        p = remote_stream()
        peers[p.sock.getsockname()[1]] = p
    for s in incoming():
        port = int(s["peer"].rsplit(":", 1)[1])
        if port in peers:
            by_worker[s["worker"]].append((s, peers[port]))
    tap.ok(sum(len(v) for v in by_worker.values()) == STREAMS,
           "sessions lists the %d streams, from both workers" % STREAMS,
           by_worker)
    tap.ok(by_worker[0] and by_worker[1],
           "the kernel spread them over both workers",
           {k: len(v) for k, v in by_worker.items()})
    ids = [s["id"] for v in by_worker.values() for s, _ in v]
    tap.ok(len(set(ids)) == len(ids) and
           all((s["id"] - 1) % 2 == w for w, v in by_worker.items()
               for s, _ in v),
           "leg ids are unique and name their worker", ids)
except (PeerError, OSError, KeyError) as e:
    tap.ok(False, "streams over both workers", "%s\n%s" % (e, fg.log_text()))

# One message per worker, one after the other: each worker opens its own
# internal leg, verified on the other worker.
n = 0
for w in (0, 1):
    if not by_worker[w]:
        continue
    s, p = by_worker[w][0]
    n += 1
    p.send("<message from='alice@remote.example/pc' to='bob@corp.example' "
           "type='chat' id='w%d'><body>from worker %d</body></message>"
           % (w, w))
    tap.ok(inbox.wait_id("w%d" % w),
           "a message through worker %d reaches the internal server" % w,
           fg.log_text()[-3000:])
tap.ok(len(cross) == 2 and all(a != b and v == "valid"
                               for a, b, v in cross),
       "each worker's dialback key is valid on the other worker", cross)

# Every stream relays.
for w, v in by_worker.items():
    for s, p in v:
        p.send("<message from='alice@remote.example/pc' "
               "to='bob@corp.example' type='chat' id='m%d'>"
               "<body>x</body></message>" % s["id"])
tap.ok(all(inbox.wait_id("m%d" % s["id"]) for v in by_worker.values()
           for s, _ in v), "a message on each stream is relayed",
       len(inbox.stanzas))

# An acknowledgement answered on the other worker's connection.
ack_peer = p = remote_stream("ack.example")
p.send("<message from='alice@remote.example/pc' to='bob@ack.example' "
       "type='chat' id='ack1'><body>acknowledge me</body></message>")
tap.ok(inbox.wait_id("ack1"), "a message reaches ack.internal",
       fg.log_text()[-2000:])


def ack_route():
    for r in fg.ctl_json("routes").get("routes", []):
        if r["face"] == "internal" and "ack" in r["local"] + r["remote"]:
            return r
    return {}


tap.ok(wait_until(lambda: ack_route().get("acked", 0) >= 1 and
                  ack_route().get("unacked") == 0, 15),
       "its ping, answered on a stream of the other worker, acknowledges "
       "it", (acks, ack_route(), fg.log_text()[-2000:]))
pinger, answerer = acks.get("answered_on", (None, None))
tap.ok(pinger is not None and pinger != answerer and
       ack_route().get("worker") == pinger,
       "the answer came on worker %s, the route is worker %s's" % (
           answerer, pinger), acks)
tap.ok("another fedgated's" not in fg.log_text() and
       "no answer to the acknowledgement ping" not in fg.log_text(),
       "no ping answer taken for another fedgated's", fg.log_text()[-2000:])

# status, routes and metrics cover both workers.
st = fg.ctl_json("status")
total = len(sessions())
tap.ok(st.get("ok") and st.get("workers") == 2 and st.get("legs") == total,
       "status: 2 workers, the legs of both", (st, total))
routes = fg.ctl_json("routes").get("routes", [])
tap.ok(sorted(r["worker"] for r in routes if r["face"] == "internal" and
              "ack" not in r["local"] + r["remote"]) ==
       [0, 1], "routes lists the internal route of each worker", routes)


def sample(text, name):
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            if 'face="public"' in line or "{" not in line:
                return int(float(line.rsplit(" ", 1)[1]))
    return None


m = fg.ctl_json("metrics")
acc = 'fedgate_connections_accepted_total{listener="127.0.0.1:%d"' % \
    public_port
got = [line for line in m.get("text", "").splitlines()
       if line.startswith(acc)]
tap.ok(m.get("ok") and got and got[0].endswith(" %d" % (STREAMS + 1)),
       "metrics sums the connections both workers accepted (and ack.example's)",
       got)
try:
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" %
                                metrics_port, timeout=10) as r:
        body = r.read().decode()
    got2 = [line for line in body.splitlines() if line.startswith(acc)]
    tap.ok(got2 == got, "GET /metrics sums them too", got2)
except OSError as e:
    tap.ok(False, "GET /metrics sums them too", e)

# kill reaches a leg of worker 1.
if by_worker[1]:
    s, p = by_worker[1][-1]
    r = fg.ctl_json("kill", str(s["id"]))
    tap.ok(r.get("ok") and r.get("closed") == 1,
           "kill closes a leg of worker 1", r)
    try:
        el = p.expect_element(timeout=10)
        tap.ok(stream_error(el) == ("policy-violation",
                                    "closed by the administrator"),
               "its peer hears why", el)
    except PeerError as e:
        tap.ok(False, "its peer hears why", e)
    by_worker[1].pop()
    rc, out, err = fg.ctl("kill", str(s["id"]), check=False)
    tap.ok(rc == 1 and "no such session" in err,
           "killing it again: no such session", out + err)

# A runtime deny closes the legs of both workers.
left = sum(len(v) for v in by_worker.values())
r = fg.ctl_json("policy", "deny", "remote.example")
tap.ok(r.get("ok") and r.get("closed", 0) >= left,
       "policy deny closes the remote legs of both workers", (r, left))
tap.ok(wait_until(lambda: not incoming(), 10),
       "no remote leg is left", sessions())
r = fg.ctl_json("policy", "remove", "remote.example")
tap.ok(r.get("ok"), "policy remove, on both workers", r)
p = remote_stream() if r.get("ok") else None
tap.ok(p is not None, "remote.example is allowed again")

# Reload: both workers, from the control socket and SIGHUP.
r = fg.ctl_json("reload")
tap.ok(r.get("ok"), "reload reloads both workers", r)
tap.ok(wait_until(lambda: fg.log_text().count(
    "reload: configuration") >= 2, 10), "both workers log the reload",
    fg.log_text()[-2000:])
with open(fg.conf) as f:
    text = f.read()
with open(fg.conf, "w") as f:
    f.write(text.replace("workers 2", "workers 3"))
os.kill(fg.proc.pid, signal.SIGHUP)
tap.ok(fg.wait_log("reload: workers change (2 to 3) takes effect only "
                   "after a restart"), "a change of workers needs a restart",
       fg.log_text()[-2000:])
tap.ok(wait_until(lambda: fg.log_text().count("reload: configuration") >= 4,
                  10), "SIGHUP to the parent reloads both workers",
       fg.log_text()[-2000:])
tap.ok(len(children(fg.proc.pid)) == 2 and fg.ctl_json("status").get(
    "workers") == 2, "still two workers")

fg.finish(tap)
gone = wait_until(lambda: not any(os.path.exists("/proc/%d" % pid)
                                  for pid in relays), 5)
tap.ok(gone, "no relay process is left", relays)
tap.ok(fg.log_text().count("relay 0 stopped") == 1 and
       fg.log_text().count("relay 1 stopped") == 1,
       "both relays stopped cleanly", fg.log_text()[-2000:])
for v in by_worker.values():
    for _, q in v:
        q.close()
if p is not None:
    p.close()
ack_peer.close()
for q in acks.get("backs", []):
    q.close()
sys.exit(tap.done())
