"""The control commands that look at and act on legs: sessions, routes,
kill, kill --domain and drain.

Scenario: remote.example (scripted) opens a stream to corp.example on the
public face and is verified by dialback against its authoritative server
(scripted, reached by a static route); one message makes fedgated open the
outgoing internal leg to the internal server (scripted, corp.internal).
fedgatectl then lists both legs and the route, in JSON and as text; kills
the incoming leg by its id and another one by its remote domain (the
peers get policy-violation, "closed by the administrator"); and drains,
after which fedgated exits 0 and every peer has seen system-shutdown.
"""

import json
import os
import re
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (NS_DB, NS_STREAM, Fedgated, Inbox, Peer, PeerError,
                     Server, Tap, authoritative_server, dialback_key,
                     free_port, make_cert, receiving_server, stream_error,
                     tempdir, wait_until)

SECRET = "sessions-secret-0123456789abcdef"           # fedgated's
REMOTE_SECRET = "remote-secret-for-its-own-keys-0002"  # remote.example's
tap = Tap()
tmp = tempdir("fg-sessions-")
public_port, internal_port = free_port(), free_port()
inbox = Inbox()


crt, key = make_cert(tmp, "corp.example")
auth_srv = Server(authoritative_server("remote.example", REMOTE_SECRET))
int_srv = Server(receiving_server("corp.internal", internal_port, inbox))
conf = """
dialback secret "%s"
listen public on 127.0.0.1 port %d
listen internal on 127.0.0.1 port %d
domain "corp.example" {
	upstream "127.0.0.1" port %d
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
peer default {
	deny
}
""" % (SECRET, public_port, internal_port, int_srv.port, crt, key,
       auth_srv.port)

try:
    fg = Fedgated(conf, tmp)
except PeerError as e:
    tap.ok(False, "fedgated starts", e)
    sys.exit(tap.done())


def remote_stream():
    """A verified incoming stream from remote.example to corp.example."""
    p = Peer(port=public_port)
    p.open_stream(frm="remote.example", to="corp.example")
    hdr = p.expect_header()
    p.expect_element("features", NS_STREAM)
    p.send("<db:result from='remote.example' to='corp.example'>%s"
           "</db:result>" % dialback_key(REMOTE_SECRET, "corp.example",
                                         "remote.example", hdr.get("id")))
    res = p.expect_element("result", NS_DB)
    if res.get("type") != "valid":
        raise PeerError("dialback refused: %r" % res)
    return p


def ctl_json(*args):
    """fedgatectl -j args: (exit status, reply object or None, stderr)."""
    rc, out, err = fg.ctl("-j", *args, check=False)
    try:
        return rc, json.loads(out), err
    except ValueError:
        return rc, None, err + out


def sessions():
    rc, reply, err = ctl_json("sessions")
    if rc != 0 or reply is None:
        raise PeerError("fedgatectl -j sessions: %d %s" % (rc, err))
    return reply["sessions"]


def incoming(ls):
    return [s for s in ls if s["face"] == "public" and
            s["direction"] == "in" and s["remote"] == "remote.example" and
            s["state"] == "open"]


def expect_kill_error(p, desc):
    """p's next element is policy-violation by the administrator."""
    try:
        el = p.expect_element(timeout=10)
        tap.ok(stream_error(el) == ("policy-violation",
                                    "closed by the administrator"),
               desc, el)
        p.close_stream()
    except (PeerError, OSError) as e:
        tap.ok(False, desc, e)
    p.close()


leg = out_leg = None
# 1. sessions and routes, in JSON.
try:
    p = remote_stream()
    ls = sessions()
    ins = incoming(ls)
    tap.ok(len(ins) == 1, "sessions lists the incoming leg", ls)
    leg = ins[0] if ins else None
    if leg:
        tap.ok(leg["auth"] == "dialback" and leg["local"] == "corp.example"
               and leg["verify"] is False and leg["tls"] == "" and
               leg["peer"].startswith("127.0.0.1") and
               isinstance(leg["id"], int) and leg["queue"] is None,
               "the incoming leg: dialback, corp.example, no TLS, no queue",
               leg)
        tap.ok({"from": "remote.example", "to": "corp.example",
                "verifying": False} in leg["domains"],
               "its authenticated domain pair is listed", leg["domains"])
    p.send("<message from='alice@remote.example/pc' to='bob@corp.example' "
           "type='chat' id='s1'><body>counted</body></message>")
    tap.ok(inbox.wait_id("s1"), "the message reaches the internal server",
           inbox.stanzas)
    ls = sessions()
    now = [s for s in ls if leg and s["id"] == leg["id"]]
    tap.ok(now and now[0]["stanzas_in"] >= 1 and now[0]["bytes_in"] > 0,
           "the incoming leg counts the stanza and its bytes", now)
    outs = [s for s in ls if s["face"] == "internal" and
            s["direction"] == "out" and s["remote"] == "corp.internal" and
            not s["verify"]]
    tap.ok(len(outs) == 1 and outs[0]["state"] == "ready" and
           outs[0]["stanzas_out"] >= 1 and outs[0]["queue"] == 0,
           "the outgoing internal leg is ready, with its route's queue",
           ls)
    out_leg = outs[0] if outs else None
    rc, reply, err = ctl_json("routes")
    routes = reply["routes"] if reply else []
    r = [x for x in routes if x["face"] == "internal" and
         x["remote"] == "corp.internal"]
    tap.ok(rc == 0 and len(r) == 1 and out_leg and
           r[0]["leg"] == out_leg["id"] and r[0]["leg_state"] == "ready" and
           r[0]["sent"] >= 1 and r[0]["queue"] == 0 and
           r[0]["queue_bytes"] == 0 and r[0]["bounced"] == 0,
           "routes lists the internal route with its leg and counts",
           reply or err)
except (PeerError, KeyError, TypeError) as e:
    tap.ok(False, "sessions and routes", "%s\n%s" % (e, fg.log_text()))

# 2. The same as text for people.
rc, out, err = fg.ctl("sessions", check=False)
lines = out.splitlines()
tap.ok(rc == 0 and lines and lines[0].split()[:4] ==
       ["ID", "FACE", "DIR", "LOCAL"] and "STATE" in lines[0],
       "sessions prints a header line", out + err)
tap.ok(leg and any(line.split()[0] == str(leg["id"]) and
                   "remote.example" in line and "dialback" in line
                   for line in lines[1:]),
       "sessions prints a line for the leg, starting with its id", out)
starts = [[m.start() for m in re.finditer(r"\S+", line)] for line in lines]
tap.ok(len(lines) >= 3 and all(x == starts[0] for x in starts),
       "its columns are aligned, one word a cell", out)
rc, out, err = fg.ctl("routes", check=False)
tap.ok(rc == 0 and out.startswith("FACE") and "corp.internal" in out,
       "routes prints a table", out + err)

# 3. kill SESSION.
if leg:
    rc, reply, err = ctl_json("kill", str(leg["id"]))
    tap.ok(rc == 0 and reply and reply["ok"] and reply["closed"] == 1 and
           reply["command"] == "kill", "kill closes the leg", reply or err)
    expect_kill_error(p, "the peer gets policy-violation, closed by the "
                      "administrator")
    tap.ok(wait_until(lambda: all(s["id"] != leg["id"] for s in sessions()),
                      10), "sessions no longer lists the leg")
    rc, out, err = fg.ctl("kill", str(leg["id"]), check=False)
    tap.ok(rc == 1 and "no such session" in err,
           "killing it again fails: no such session", out + err)
rc, out, err = fg.ctl("kill", "--domain", "nosuch.example", check=False)
tap.ok(rc == 1 and out == "" and
       err.strip() == "fedgatectl: kill --domain: no such session",
       "kill --domain of an unknown domain exits 1", out + err)
rc, reply, err = ctl_json("kill", "--domain", "nosuch.example")
tap.ok(rc == 1 and reply == {"ok": False, "command": "kill --domain",
                             "domain": "nosuch.example",
                             "error": "no such session"},
       "... and says so in JSON", reply or err)

# 4. kill --domain, normalised.
try:
    p2 = remote_stream()
    rc, reply, err = ctl_json("kill", "--domain", "Remote.EXAMPLE.")
    tap.ok(rc == 0 and reply["domain"] == "remote.example" and
           reply["closed"] >= 1, "kill --domain closes the domain's legs",
           reply or err)
    expect_kill_error(p2, "its peer gets policy-violation too")
    rc, out, err = fg.ctl("sessions", check=False)
    tap.ok(rc == 0 and "corp.internal" in out,
           "the other legs stay", out + err)
except (PeerError, TypeError) as e:
    tap.ok(False, "kill --domain", "%s\n%s" % (e, fg.log_text()))

# 5. drain.
try:
    p3 = remote_stream()
    rc, reply, err = ctl_json("drain")
    tap.ok(rc == 0 and reply["ok"] and reply["legs"] >= 2 and
           reply["state"] in ("draining", "stopped"),
           "drain answers before the daemon stops", reply or err)
    el = p3.expect_element(timeout=15)
    tap.ok(stream_error(el) == ("system-shutdown", None),
           "the incoming peer gets system-shutdown", el)
    p3.close_stream()
    p3.close()
    tap.ok(wait_until(lambda: inbox.errors, 15) and
           inbox.errors[0][0] == "system-shutdown",
           "the internal server gets system-shutdown",
           inbox.errors)
except (PeerError, OSError, TypeError) as e:
    tap.ok(False, "drain", "%s\n%s" % (e, fg.log_text()))
try:
    status = fg.proc.wait(20)
except Exception:
    status = None
tap.ok(status == 0, "fedgated exits 0 after the drain", fg.log_text()
       if status != 0 else None)
tap.ok("drain requested from the control socket" in fg.log_text(),
       "the reason is logged")
tap.ok(not os.path.exists(fg.sock), "the control socket is removed")
fg.stop()
auth_srv.stop()
int_srv.stop()
tap.ok(not auth_srv.errors and not int_srv.errors,
       "the scripted servers saw no protocol error",
       auth_srv.errors + int_srv.errors)

# 6. Text rendering of what the scenario does not produce (TLS, a
# verification leg, large counts), from a canned reply on a fake socket.
CANNED = {"ok": True, "command": "sessions", "sessions": [
    {"id": 12, "face": "public", "direction": "in", "verify": False,
     "local": "corp.example", "remote": "", "peer": "192.0.2.7:41000",
     "state": "wait-header", "tls": "TLSv1.3 TLS_AES_256_GCM_SHA384",
     "auth": "none", "domains": [], "age": 3725, "stanzas_in": 0,
     "stanzas_out": 0, "bytes_in": 5, "bytes_out": 0, "queue": None,
     "transparent": "redirect", "original": "203.0.113.20:5269"},
    {"id": 13, "face": "public", "direction": "out", "verify": True,
     "local": "corp.example", "remote": "remote.example",
     "peer": "[2001:db8::1]:5269", "state": "dialback",
     "tls": "TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256", "auth": "none",
     "domains": [], "age": 90061, "stanzas_in": 2, "stanzas_out": 1500,
     "bytes_in": 1536, "bytes_out": 5 * 1024 * 1024, "queue": 4,
     "transparent": None, "original": None, "resolve": "srv"},
    {"id": 14, "face": "public", "direction": "in", "verify": False,
     "local": "corp.example", "remote": "remote.example",
     "peer": "198.51.100.7:40312", "state": "open", "tls": "",
     "auth": "dialback", "domains": [], "age": 5, "stanzas_in": 1,
     "stanzas_out": 1, "bytes_in": 100, "bytes_out": 100, "queue": 0,
     "bidi": True, "carries": [
         {"from": "remote.example", "to": "corp.example"},
         {"from": "corp.example", "to": "remote.example"}]}]}


def fake_daemon(path, reply):
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)

    def serve():
        c, _ = s.accept()
        c.recv(4096)
        c.sendall((json.dumps(reply) + "\n").encode())
        c.close()
        s.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t


fake = os.path.join(tmp, "fake.sock")
t = fake_daemon(fake, CANNED)
rc, out, err = fg.ctl("-s", fake, "sessions", check=False)  # the last -s
t.join(5)
rows = [line.split() for line in out.splitlines()]
tap.ok(rc == 0 and len(rows) == 4 and all(len(r) == 14 for r in rows),
       "every cell of a sessions line is one word", out + err)
if len(rows) == 4:
    tap.ok(rows[1][4] == "-" and rows[1][8] == "1.3/AES_256_GCM" and
           rows[1][10] == "1h2m" and rows[1][13] == "-",
           "unknown remote and no queue are -, TLS and age are short",
           out)
    tap.ok(rows[2][2] == "verify" and
           rows[2][8] == "1.2/ECDHE-RSA-AES128-GCM" and
           rows[2][10] == "1d1h" and rows[2][11] == "2/1.5k" and
           rows[2][12] == "1500/5.0M" and rows[2][13] == "4",
           "a verification leg, stanzas/bytes and days", out)
    tap.ok(rows[0][6] == "VIA" and
           rows[1][6] == "redirect>203.0.113.20:5269" and
           rows[2][6] == "srv",
           "VIA: a transparent leg's original destination, an outgoing "
           "leg's resolution", out)
    tap.ok(rows[3][2] == "in+bidi" and rows[1][2] == "in",
           "DIR marks a bidirectional leg (XEP-0288)", out)
sys.exit(tap.done())
