"""Transparent listeners on loopback: what can be shown without nftables.

The internal server (scripted, corp.internal) connects straight to
fedgated's transparent listener: no NAT, and 127.0.0.1 is this host's, so
the leg is "direct" and its original destination is the listener itself.
It is an internal incoming leg: its dialback key is verified with the
upstream, and db:verify for keys fedgated minted is answered on it as on
the internal face. With "resolve original" in the peer rule, the route it
feeds would connect to that original destination: fedgated refuses (a
loopback address, fedgated itself), logs why and bounces the stanza with
remote-server-not-found. fedgatectl sessions shows the leg's way in and
original destination; fedgatectl flows answers (conntrack entries, or a
clear error where conntrack cannot be read), and without any transparent
feature in the configuration it refuses with a clear error.
tests/interop/t_transparent.sh runs the real thing (nftables REDIRECT and
TPROXY, real servers).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (NS_STANZA_ERR, Fedgated, Inbox, PeerError, Server, Tap,
                     authoritative_server, dialback_key, dialback_stream,
                     free_port, tempdir, verify_back, wait_until)

SECRET = "transparent-secret-0123456789abcdef"
INTERNAL_SECRET = "the-internal-servers-own-secret-42"
tap = Tap()
tmp = tempdir("fg-transparent-")
public_port, transparent_port = free_port(), free_port()
internal_inbox = Inbox()


def receive_back(peer, sid, r):
    """The internal server as receiving server of fedgated's stream to it
    (bounces come that way): verify fedgated's key on the transparent
    listener, which answers db:verify as the internal face does."""
    verdict = verify_back(transparent_port, "corp.internal", r.get("from"),
                          sid, r.text)
    peer.send("<db:result from='corp.internal' to='%s' type='%s'/>" % (
        r.get("from"), verdict))
    internal_inbox.collect(peer)


up_srv = Server(authoritative_server(
    "corp.internal", INTERNAL_SECRET,
    then=lambda peer, hdr, sid, r: receive_back(peer, sid, r)))
conf = """
dialback secret "%s"
listen public on 127.0.0.1 port %d
listen transparent on 127.0.0.1 port %d
timeout connect 2s
domain "corp.example" {
	upstream "127.0.0.1" port %d
	internal-name "corp.internal"
}
peer "remote.example" {
	allow
	tls none
	resolve original
}
peer default {
	deny
}
""" % (SECRET, public_port, transparent_port, up_srv.port)

try:
    fg = Fedgated(conf, tmp)
except PeerError as e:
    tap.ok(False, "fedgated starts", e)
    sys.exit(tap.done())

orig = "127.0.0.1:%d" % transparent_port
try:
    p, hdr, _, res = dialback_stream(transparent_port, "corp.internal",
                                     "remote.example", INTERNAL_SECRET)
    tap.ok(res.get("type") == "valid", "a stream on the transparent "
           "listener is an internal incoming leg: its key is verified "
           "with the upstream", res)
    tap.ok(fg.wait_log("(transparent, direct, original destination %s)" %
                       orig, 5),
           "its log line says how it came and where it meant to go",
           fg.log_text()[-2000:])
    legs = fg.ctl_json("sessions")["sessions"]
    t = [s for s in legs if s["face"] == "internal" and
         s["direction"] == "in" and s["remote"] == "corp.internal"]
    tap.ok(len(t) == 1 and t[0]["transparent"] == "direct" and
           t[0]["original"] == orig and t[0]["resolve"] is None,
           "sessions: transparent direct, with its original destination",
           legs)
    rc, out, err = fg.ctl("sessions", check=False)
    tap.ok(rc == 0 and ("direct>" + orig) in out,
           "sessions in text: the VIA cell", out + err)

    # db:verify on the transparent leg, as on the internal face.
    good = dialback_key(SECRET, "corp.internal", "remote.example", "sid-1")
    tap.ok(verify_back(transparent_port, "corp.internal", "remote.example",
                       "sid-1", good) == "valid",
           "db:verify of a key fedgated minted: valid")
    tap.ok(verify_back(transparent_port, "corp.internal", "remote.example",
                       "sid-1", "0" * 64) == "invalid",
           "db:verify of another key: invalid")

    # resolve original to fedgated itself: refused, logged, bounced.
    p.send("<message from='alice@corp.internal/desk' to='bob@remote.example'"
           " id='t1' type='chat'><body>token-loop</body></message>")

    def bounced():
        return any(e.get("id") == "t1" and e.get("type") == "error"
                   for e in internal_inbox.stanzas)
    tap.ok(wait_until(bounced, 15), "the message bounces back to the "
           "internal server", fg.log_text()[-3000:])
    b = internal_inbox.by_id("t1")
    if b:
        err_el = b[0].find("error")
        cond = [c.name for c in (err_el.children if err_el else [])
                if c.ns == NS_STANZA_ERR and c.name != "text"]
        tap.ok(cond == ["remote-server-not-found"],
               "with remote-server-not-found", b[0])
    tap.ok(fg.wait_log("out public corp.example->remote.example: original "
                       "destination %s refused: a loopback address" % orig,
                       5), "the refusal is logged with its reason",
           fg.log_text()[-3000:])
    tap.ok("token-loop" not in "".join(str(e) for e in internal_inbox.stanzas
                                       if e.get("type") != "error"),
           "nothing was relayed back in to the inside")

    # flows: conntrack entries where the kernel lets us read them.
    rc, out, err = fg.ctl("-j", "flows", check=False)
    if rc == 0:
        import json
        flows = json.loads(out)["flows"]
        tap.ok(all("conntrack" in f and (f["conntrack"] is not None or
                                         f.get("note")) for f in flows) and
               any(f.get("transparent") == "direct" and
                   f["local"] == orig for f in flows),
               "flows lists every leg, with its entry or a note", out)
    else:
        tap.ok("conntrack" in err, "flows says why conntrack cannot be "
               "read", err)
    p.close()
except (PeerError, KeyError, TypeError) as e:
    tap.ok(False, "transparent flow", "%s\n%s" % (e, fg.log_text()[-4000:]))

tap.ok(fg.alive(), "fedgated is still serving")
fg.finish(tap)

# Without any transparent feature, flows refuses and says why.
tmp2 = tempdir("fg-transparent-off-")
conf2 = """
dialback secret "%s"
listen public on 127.0.0.1 port %d
domain "corp.example" {
	upstream "127.0.0.1" port %d
}
""" % (SECRET, free_port(), up_srv.port)
try:
    fg2 = Fedgated(conf2, tmp2)
    rc, out, err = fg2.ctl("flows", check=False)
    tap.ok(rc == 1 and out == "" and "CAP_NET_ADMIN" in err and
           "listen transparent" in err,
           "flows without transparent features: a clear error", out + err)
    rc, out, err = fg2.ctl("-j", "flows", check=False)
    tap.ok(rc == 1 and '"ok": false' in out.replace('":false', '": false'),
           "... also in JSON", out + err)
    fg2.finish(tap)
except PeerError as e:
    tap.ok(False, "fedgated without transparent features", e)

up_srv.stop()
tap.ok(not up_srv.errors, "the scripted server saw no protocol error",
       up_srv.errors)
sys.exit(tap.done())
