"""JIDs inside stanzas cross the rewrite map too (payload.h).

Scenario: corp.example is served inside as corp.internal. The internal
server (scripted) sends remote.example (scripted) a MUC invitation, an
XEP-0033 addressed message and a forwarded message (XEP-0297, with an
XEP-0359 stanza id); every byte remote.example receives is free of the
internal name, and each JID in them reads the public name. Then
remote.example sends the same kinds inward: the internal server receives
the internal name in each, and no byte of the public name. Text that
mentions a name, and attributes that are no JID, pass unchanged.
"""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (Fedgated, Inbox, PeerError, Server, Tap,
                     authoritative_server, dialback_stream, free_port,
                     tempdir, verify_back)

SECRET = "payload-secret-0123456789abcdef"
INTERNAL_SECRET = "the-internal-servers-own-secret-42"
REMOTE_SECRET = "remote-secret-for-its-own-keys-0001"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_ADDRESS = "http://jabber.org/protocol/address"
NS_FORWARD = "urn:xmpp:forward:0"
tap = Tap()
tmp = tempdir("fg-payload-")
public_port, internal_port = free_port(), free_port()
remote_inbox, internal_inbox = Inbox(), Inbox()
lock = threading.Lock()
remote_peers, internal_peers = [], []   # the streams fedgated opened


def receiver(port, domain, inbox, peers):
    """Receive a stream fedgated opens to domain: check its key with
    fedgated's face on port, keep the stream's bytes, collect stanzas."""
    def then(peer, hdr, sid, r):
        verdict = verify_back(port, domain, r.get("from"), sid, r.text)
        peer.send("<db:result from='%s' to='%s' type='%s'/>" % (
            domain, r.get("from"), verdict))
        with lock:
            peers.append(peer)
        inbox.collect(peer)
    return then


def received(peers):
    with lock:
        return b"".join(p.received for p in peers)


# remote.example: authoritative for its own keys, and receiving server
# for the streams fedgated opens to it; the internal server likewise.
rem_srv = Server(authoritative_server(
    "remote.example", REMOTE_SECRET,
    then=receiver(public_port, "remote.example", remote_inbox, remote_peers)))
up_srv = Server(authoritative_server(
    "corp.internal", INTERNAL_SECRET,
    then=receiver(internal_port, "corp.internal", internal_inbox,
                  internal_peers)))
conf = """
dialback secret "%s"
listen public on 127.0.0.1 port %d
listen internal on 127.0.0.1 port %d
domain "corp.example" {
	upstream "127.0.0.1" port %d
	internal-name "corp.internal"
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
""" % (SECRET, public_port, internal_port, up_srv.port, rem_srv.port)

try:
    fg = Fedgated(conf, tmp)
except PeerError as e:
    tap.ok(False, "fedgated starts", e)
    sys.exit(tap.done())


def first(inbox, ident):
    el = inbox.wait_id(ident)
    tap.ok(el is not None, "stanza %s arrives" % ident, fg.log_text()[-3000:])
    return el


def attr(el, path, name):
    """The attribute name of the element at path ((ns, name), ...)."""
    for ns, n in path:
        el = el.find(n, ns) if el is not None else None
    return el.get(name) if el is not None else None


# 1. Inside -> outside: internal names become public ones.
try:
    p, _, _, res = dialback_stream(internal_port, "corp.internal",
                                   "remote.example", INTERNAL_SECRET)
    tap.ok(res.get("type") == "valid", "the internal server authenticates",
           res)
    p.send("<message from='room@corp.internal' to='bob@remote.example' "
           "id='o1'><x xmlns='%s'><invite from='alice@corp.internal/desk'>"
           "<reason>come &amp; see</reason></invite></x><x "
           "xmlns='jabber:x:conference' jid='room@corp.internal' "
           "reason='the plan'/></message>" % NS_MUC_USER)
    p.send("<message from='alice@corp.internal' to='bob@remote.example' "
           "id='o2'><m:addresses xmlns:m='%s'><m:address type='to' "
           "jid='bob@remote.example'/><m:address type='cc' "
           "jid=\"carol@CORP.internal/it's home\"/></m:addresses>"
           "<body>hello</body></message>" % NS_ADDRESS)
    p.send("<message from='alice@corp.internal' to='bob@remote.example' "
           "id='o3'><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='%s'>"
           "<message xmlns='jabber:client' from='alice@corp.internal/desk' "
           "to='dave@corp.internal'><stanza-id xmlns='urn:xmpp:sid:0' "
           "id='s1' by='alice@corp.internal'/></message></forwarded></sent>"
           "</message>" % NS_FORWARD)
    o1, o2, o3 = (first(remote_inbox, i) for i in ("o1", "o2", "o3"))
    if o1 is not None:
        tap.ok(attr(o1, [(NS_MUC_USER, "x"), (NS_MUC_USER, "invite")],
                    "from") == "alice@corp.example/desk",
               "the MUC invitation's inviter reads the public name", o1)
        tap.ok(attr(o1, [("jabber:x:conference", "x")], "jid") ==
               "room@corp.example", "the direct invitation's room too", o1)
        tap.ok(o1.get("from") == "room@corp.example",
               "and the stanza's from, as before", o1)
    if o2 is not None:
        addrs = o2.find("addresses", NS_ADDRESS)
        jids = [a.get("jid") for a in (addrs.children if addrs else [])]
        tap.ok(jids == ["bob@remote.example",
                        "carol@corp.example/it's home"],
               "the XEP-0033 addresses read the public name", jids)
    if o3 is not None:
        fw = o3.find("sent", "urn:xmpp:carbons:2")
        fw = fw.find("forwarded", NS_FORWARD) if fw else None
        inner = fw.find("message", "jabber:client") if fw else None
        tap.ok(inner is not None and
               inner.get("from") == "alice@corp.example/desk" and
               inner.get("to") == "dave@corp.example",
               "the forwarded message's own addresses too", o3)
        tap.ok(attr(inner, [("urn:xmpp:sid:0", "stanza-id")], "by") ==
               "alice@corp.example", "and the JIDs of its payload", o3)
    raw = received(remote_peers)
    tap.ok(raw and b"corp.internal" not in raw.lower(),
           "no byte remote.example received names corp.internal",
           raw.decode(errors="replace")[-1500:])
    tap.ok(b"<reason>come &amp; see</reason>" in raw and
           b"reason='the plan'" in raw,
           "text and other attributes pass as they came")
    # What is no JID of the table passes unchanged, names and all.
    p.send("<message from='alice@corp.internal' to='bob@remote.example' "
           "id='o4'><body>mail alice@corp.internal</body><x "
           "xmlns='urn:example:other' jid='a@corp.internal'/></message>")
    o4 = first(remote_inbox, "o4")
    if o4 is not None:
        tap.ok(o4.find("body").text == "mail alice@corp.internal" and
               attr(o4, [("urn:example:other", "x")], "jid") ==
               "a@corp.internal",
               "a name in text or in another namespace is not touched", o4)
    p.close()
except PeerError as e:
    tap.ok(False, "inside to outside", "%s\n%s" % (e, fg.log_text()[-4000:]))

# 2. Outside -> inside: public names become internal ones.
try:
    p, _, _, res = dialback_stream(public_port, "remote.example",
                                   "corp.example", REMOTE_SECRET)
    tap.ok(res.get("type") == "valid", "remote.example authenticates", res)
    p.send("<message from='room@remote.example' to='alice@corp.example' "
           "id='i1'><x xmlns='%s'><invite from='dave@corp.example/pc'>"
           "<reason>join</reason></invite></x></message>" % NS_MUC_USER)
    p.send("<message from='bob@remote.example' to='alice@corp.example' "
           "id='i2'><addresses xmlns='%s'><address type='to' "
           "jid='alice@corp.example'/><address type='cc' "
           "jid='carol@corp&#46;example'/></addresses></message>"
           % NS_ADDRESS)
    i1, i2 = (first(internal_inbox, i) for i in ("i1", "i2"))
    if i1 is not None:
        tap.ok(attr(i1, [(NS_MUC_USER, "x"), (NS_MUC_USER, "invite")],
                    "from") == "dave@corp.internal/pc",
               "the MUC invitation's inviter reads the internal name", i1)
        tap.ok(i1.get("to") == "alice@corp.internal", "and the stanza's to",
               i1)
    if i2 is not None:
        addrs = i2.find("addresses", NS_ADDRESS)
        jids = [a.get("jid") for a in (addrs.children if addrs else [])]
        tap.ok(jids == ["alice@corp.internal", "carol@corp.internal"],
               "the XEP-0033 addresses read the internal name, a character "
               "reference included", jids)
    raw = received(internal_peers)
    tap.ok(raw and b"corp.example" not in raw.lower(),
           "no byte the internal server received names corp.example",
           raw.decode(errors="replace")[-1500:])
    p.close()
except PeerError as e:
    tap.ok(False, "outside to inside", "%s\n%s" % (e, fg.log_text()[-4000:]))

tap.ok(fg.alive(), "fedgated is still serving")
fg.finish(tap)
rem_srv.stop()
up_srv.stop()
tap.ok(not rem_srv.errors and not up_srv.errors,
       "the scripted servers saw no protocol error",
       rem_srv.errors + up_srv.errors)
sys.exit(tap.done())
