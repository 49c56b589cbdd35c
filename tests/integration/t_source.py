"""Source addresses of outgoing legs (source public|internal ADDRESS).

fedgated connects from 127.0.0.2 on its public face and from 127.0.0.3 on
its internal face (all of 127/8 is loopback): the scripted remote server
sees its outgoing legs, including the dialback verification leg, come
from 127.0.0.2, and the scripted internal server sees its leg come from
127.0.0.3. A source that is not an address of this host (2001:db8::5,
for IPv6 destinations) is warned about at start, and a leg that needs it
fails, saying so, and bounces its stanza.
"""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (NS_STANZA_ERR, Fedgated, Inbox, PeerError, Server, Tap,
                     authoritative_server, dialback_stream, free_port,
                     receiving_server, tempdir, verify_back, wait_until)

SECRET = "source-test-secret-0123456789abcdef"
REMOTE_SECRET = "the-remote-servers-own-secret-0042"
tap = Tap()
tmp = tempdir("fg-source-")
public_port, internal_port = free_port(), free_port()
remote_inbox, internal_inbox = Inbox(), Inbox()


def receive_as_remote(peer, hdr, sid, r):
    """remote.example as receiving server of fedgated's outgoing leg."""
    verdict = verify_back(public_port, "remote.example", r.get("from"), sid,
                          r.text)
    peer.send("<db:result from='remote.example' to='%s' type='%s'/>" % (
        r.get("from"), verdict))
    remote_inbox.collect(peer)


# remote.example: authoritative for its keys, and receiving server.
rem_srv = Server(authoritative_server("remote.example", REMOTE_SECRET,
                                      then=receive_as_remote))
up_srv = Server(receiving_server("corp.internal", internal_port,
                                 internal_inbox))
v6 = True
try:
    v6_srv = Server(receiving_server("v6.example", public_port,
                                     remote_inbox), host="::1")
except OSError:
    v6, v6_srv = False, None

conf = """
dialback secret "%s"
listen public on 127.0.0.1 port %d
listen internal on 127.0.0.1 port %d
source public 127.0.0.2
source public 2001:db8::5
source internal 127.0.0.3
timeout connect 2s
domain "corp.example" {
	upstream "127.0.0.1" port %d trusted
	internal-name "corp.internal"
}
peer "remote.example" {
	allow
	tls none
	auth dialback
	route "127.0.0.1" port %d
}
peer "v6.example" {
	allow
	tls none
	auth dialback
	route "::1" port %d
}
peer default {
	deny
}
""" % (SECRET, public_port, internal_port, up_srv.port, rem_srv.port,
       v6_srv.port if v6 else 9)

fg = None
streams = []
try:
    fg = Fedgated(conf, tmp)
    tap.ok("source public 2001:db8::5: cannot bind" in fg.log_text(),
           "a source address that is not this host's is warned about at "
           "start", fg.log_text()[-2000:])

    # Public outgoing leg: the internal server writes to remote.example.
    p = dialback_stream(internal_port, "corp.internal", "remote.example")[0]
    streams.append(p)
    p.send("<message from='a@corp.internal' to='b@remote.example' id='o1'>"
           "<body>out</body></message>")
    tap.ok(remote_inbox.wait_id("o1", 20), "a message reaches "
           "remote.example", fg.log_text()[-3000:])
    tap.ok(rem_srv.peer_addrs and
           set(rem_srv.peer_addrs) == {"127.0.0.2"},
           "remote.example saw fedgated's public legs come from the "
           "public source 127.0.0.2", rem_srv.peer_addrs)

    # Internal outgoing leg: remote.example writes to corp.example.
    q, _, _, res = dialback_stream(public_port, "remote.example",
                                   "corp.example", secret=REMOTE_SECRET)
    streams.append(q)
    tap.ok(res.get("type") == "valid", "remote.example authenticates, "
           "verified by a leg from 127.0.0.2", res)
    tap.ok(len(rem_srv.peer_addrs) >= 2 and
           set(rem_srv.peer_addrs) == {"127.0.0.2"},
           "the dialback verification leg came from 127.0.0.2 too",
           rem_srv.peer_addrs)
    q.send("<message from='b@remote.example' to='a@corp.example' id='i1'>"
           "<body>in</body></message>")
    tap.ok(internal_inbox.wait_id("i1", 20), "a message reaches the "
           "internal server", fg.log_text()[-3000:])
    tap.ok(up_srv.peer_addrs == ["127.0.0.3"], "the internal server saw "
           "fedgated's internal leg come from the internal source "
           "127.0.0.3", up_srv.peer_addrs)

    # An IPv6 destination needs the IPv6 source, which cannot be bound.
    if v6:
        r = dialback_stream(internal_port, "corp.internal", "v6.example")[0]
        streams.append(r)
        r.send("<iq from='a@corp.internal/r' to='v6.example' id='o2' "
               "type='get'><query xmlns='jabber:iq:version'/></iq>")
        tap.ok(wait_until(lambda: internal_inbox.by_id("o2") or
                          remote_inbox.by_id("o2"), 20),
               "an iq to a peer reached only from the unusable source "
               "comes back", fg.log_text()[-2000:])
        b = internal_inbox.by_id("o2")
        err = b[0].find("error") if b else None
        tap.ok(err is not None and err.find(
            "remote-server-not-found", NS_STANZA_ERR) is not None,
            "bounced with remote-server-not-found", b)
        tap.ok("from source 2001:db8::5: Cannot assign requested address"
               in fg.log_text(), "the log says which source could not be "
               "used, and why", fg.log_text()[-2000:])
        tap.ok(v6_srv.connections == 0, "nothing reached the IPv6 peer")
    else:
        print("ok - IPv6 source # SKIP no IPv6 on loopback")
except (PeerError, OSError) as e:
    tap.ok(False, "source addresses", "%s\n%s" % (
        e, fg.log_text()[-3000:] if fg else ""))
finally:
    for s in streams:
        s.close()
    if fg:
        tap.ok(fg.alive(), "fedgated is still serving")
        fg.finish(tap)
    for srv in (rem_srv, up_srv, v6_srv):
        if srv is not None:
            srv.stop()
sys.exit(tap.done())
