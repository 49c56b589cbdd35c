#!/usr/bin/python3
"""Scripted XMPP client for the interop tests (python3-slixmpp).

Four sub-commands:

  client   log in as one JID and print one machine-readable line per event:
             SESSION <full-jid>          logged in (after TLS and SASL)
             ONLINE <full-jid>           initial presence sent, roster fetched
             SENT <token> TO <jid>       a message was sent
             RECEIVED <token> FROM <bare-jid>
             PRESENCE <bare-jid> available|unavailable
             SUBSCRIBE-REQUEST <bare-jid>
             SUBSCRIBED <bare-jid>       our subscription request was approved
             UNSUBSCRIBED <bare-jid>
             ERROR <kind> <id> <condition> FROM <jid>   an error stanza came back
             PONG <jid> <id>             an XEP-0199 ping was answered
             JOINED <room>               our own presence came back from a
                                         room (XEP-0045 status 110)
             OCCUPANT <room>/<nick> <jid>|-   an occupant's presence, with
                                         its real JID when the room shows it
             GROUPCHAT <token> FROM <room>/<nick>   a group chat message
             HISTORY <token> FROM <room>/<nick>     one sent before we
                                         joined (it carries a delay)
             INVITED <room> FROM <jid>   a mediated invitation (muc#user,
                                         from the inviter) or a direct one
                                         (jabber:x:conference, from the room
                                         or the inviter)
             DONE                        every --expect-* was met
             MISSING presence <jid> | MISSING message <token> <from>
             TIMEOUT                     --timeout passed with expectations unmet
             FAILED connect|auth|disconnected <detail>
             BYE                         orderly exit
           Exit status: 0 all expectations met (or `quit` in control mode),
           1 timeout with expectations unmet, 2 connection, TLS or
           authentication failure, no session within the timeout, or an
           unexpected disconnect, 64 usage.

  ctl      send one command line to a running client's control socket and
           print its one-line reply; exit 0 on "OK ...", 1 otherwise.
           Commands: send JID TOKEN | subscribe JID | unsubscribe JID |
           presence [available|away|unavailable] | ping JID [ID] | status |
           join ROOM NICK (with up to 20 messages of history) |
           groupchat ROOM TOKEN | invite ROOM JID TOKEN (a mediated
           invitation through the room; TOKEN is its body, so that the
           room adds no text of its own) | quit

  dns      query a DNS server directly (no resolv.conf):
           dns SERVER NAME A|AAAA|SRV  prints one answer a line, exit 1 if none.

  probe    probe ADDR PORT: one TCP connection attempt; prints CONNECTED
           (exit 0) or FAILED <reason> / TIMEOUT (exit 1).

The client never uses DNS: --server is an address. TLS certificates are not
verified unless --cafile is given (then the name checked is the JID's domain).
All waiting is bounded by --timeout (expectations) and --lifetime (the whole
process). Message ids are the tokens, so a bounced message's ERROR line
carries the token it bounced.
"""

import argparse
import asyncio
import xml.etree.ElementTree as ET
import logging
import os
import signal
import ssl
import sys

EXIT_OK, EXIT_TIMEOUT, EXIT_FAILED, EXIT_USAGE = 0, 1, 2, 64


def out(*words):
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def split_hostport(s, default_port):
    """'203.0.113.20', '203.0.113.20:5222', '[2001:db8::1]:5222'"""
    if s.startswith("["):
        host, _, rest = s[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif s.count(":") == 1:
        host, port = s.split(":")
    else:
        host, port = s, ""
    return host, int(port) if port else default_port


# ---------------------------------------------------------------- client

def run_client(args):
    import slixmpp
    from slixmpp.exceptions import IqError, IqTimeout

    host, port = split_hostport(args.server, 5222)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    class Client(slixmpp.ClientXMPP):
        async def get_dns_records(self, domain, port_=None):
            # Never resolve: connect to the given address only.
            return [(self.boundjid.domain, host, port)]

    xmpp = Client(args.jid, args.password)
    if args.resource:
        xmpp.requested_jid.resource = args.resource
    xmpp.use_ipv6 = ":" in host
    xmpp.reconnect_max_attempts = 0
    xmpp.auto_authorize = None if args.no_auto_accept else True
    xmpp.auto_subscribe = not args.no_auto_accept
    xmpp.register_plugin("xep_0030")
    xmpp.register_plugin("xep_0199", {"keepalive": False})

    if args.cafile:
        xmpp.ca_certs = args.cafile
    else:
        xmpp.ssl_context.check_hostname = False
        xmpp.ssl_context.verify_mode = ssl.CERT_NONE

    state = {"online": False, "quitting": False}
    done = loop.create_future()
    want_presence = set(j.lower() for j in args.expect_presence)
    want_message = set((t, j.lower()) for t, j in args.expect_message)
    pending_sends = list(args.send)

    def finish(rc):
        if not done.done():
            done.set_result(rc)

    def do_send(to, token):
        msg = xmpp.make_message(mto=to, mbody=token, mtype="chat")
        msg["id"] = token
        msg.send()
        out("SENT", token, "TO", to)

    def flush_sends():
        # Sends wait for every expected presence, so that the route exists.
        if want_presence or not state["online"]:
            return
        while pending_sends:
            to, token = pending_sends.pop(0)
            do_send(to, token)

    def check_done():
        if state.get("said_done") or not state["online"]:
            return
        if want_presence or want_message or pending_sends:
            return
        state["said_done"] = True
        if args.control and not (args.expect_presence or args.expect_message or args.send):
            return
        out("DONE")
        if not args.control:
            finish(EXIT_OK)

    async def on_session_start(_event):
        out("SESSION", xmpp.boundjid.full)
        try:
            await xmpp.get_roster(timeout=args.timeout)
        except (IqError, IqTimeout) as e:
            fail("roster", type(e).__name__)
            return
        xmpp.send_presence(ppriority=args.priority)
        state["online"] = True
        out("ONLINE", xmpp.boundjid.full)
        for j in args.subscribe:
            xmpp.send_presence(pto=j, ptype="subscribe")
        flush_sends()
        check_done()

    def bare(jid):
        return jid.bare.lower() if jid.bare else jid.domain.lower()

    def on_presence_available(pres):
        j = bare(pres["from"])
        if j == xmpp.boundjid.bare.lower():
            return
        out("PRESENCE", j, "available")
        want_presence.discard(j)
        flush_sends()
        check_done()

    def on_presence_unavailable(pres):
        j = bare(pres["from"])
        if j != xmpp.boundjid.bare.lower():
            out("PRESENCE", j, "unavailable")

    def on_subscribe(pres):
        out("SUBSCRIBE-REQUEST", bare(pres["from"]))

    def on_subscribed(pres):
        out("SUBSCRIBED", bare(pres["from"]))

    def on_unsubscribed(pres):
        out("UNSUBSCRIBED", bare(pres["from"]))

    NS_MUC = "http://jabber.org/protocol/muc"
    NS_MUC_USER = NS_MUC + "#user"
    NS_CONFERENCE = "jabber:x:conference"
    NS_DELAY = "urn:xmpp:delay"

    def on_muc_presence(pres):
        x = pres.xml.find("{%s}x" % NS_MUC_USER)
        if x is None or pres["type"] not in ("available", "unavailable") \
                and pres["type"] not in pres.showtypes:
            return
        item = x.find("{%s}item" % NS_MUC_USER)
        real = item.get("jid") if item is not None else None
        codes = [st.get("code") for st in x.findall("{%s}status" % NS_MUC_USER)]
        if pres["type"] == "unavailable":
            return
        out("OCCUPANT", pres["from"].full, real or "-")
        if "110" in codes:
            out("JOINED", pres["from"].bare)

    def on_invitation(msg):
        """Print INVITED for an invitation in msg; True if there was one."""
        x = msg.xml.find("{%s}x" % NS_MUC_USER)
        inv = x.find("{%s}invite" % NS_MUC_USER) if x is not None else None
        if inv is not None:
            out("INVITED", msg["from"].bare, "FROM", inv.get("from") or "-")
            return True
        d = msg.xml.find("{%s}x" % NS_CONFERENCE)
        if d is not None:
            out("INVITED", d.get("jid") or "-", "FROM", msg["from"].full)
            return True
        return False

    def on_message(msg):
        if msg["type"] == "error":
            return
        if on_invitation(msg):
            return
        if msg["type"] == "groupchat":
            if msg["body"]:
                delayed = msg.xml.find("{%s}delay" % NS_DELAY) is not None
                out("HISTORY" if delayed else "GROUPCHAT", msg["body"],
                    "FROM", msg["from"].full)
            return
        body = msg["body"]
        if not body:
            return
        frm = bare(msg["from"])
        out("RECEIVED", body, "FROM", frm)
        want_message.discard((body, frm))
        check_done()

    def on_error(stanza):
        cond = stanza["error"]["condition"] or "undefined-condition"
        out("ERROR", stanza.name, stanza["id"] or "-", cond, "FROM",
            stanza["from"].full or "-")

    def fail(kind, detail):
        if done.done() or state["quitting"]:
            return
        out("FAILED", kind, str(detail or "-").replace("\n", " "))
        finish(EXIT_FAILED)

    def on_failed_auth(_e):
        fail("auth", args.jid)

    def on_connection_failed(e):
        fail("connect", e)

    def on_disconnected(reason):
        fail("disconnected", reason)

    def on_ssl_invalid(*_a):
        fail("connect", "certificate not trusted")

    xmpp.add_event_handler("session_start", on_session_start)
    xmpp.add_event_handler("presence_available", on_presence_available)
    xmpp.add_event_handler("presence_unavailable", on_presence_unavailable)
    xmpp.add_event_handler("presence_subscribe", on_subscribe)
    xmpp.add_event_handler("presence_subscribed", on_subscribed)
    xmpp.add_event_handler("presence_unsubscribed", on_unsubscribed)
    xmpp.add_event_handler("message", on_message)
    xmpp.add_event_handler("presence", on_muc_presence)
    xmpp.add_event_handler("message_error", on_error)
    xmpp.add_event_handler("presence_error", on_error)
    xmpp.add_event_handler("failed_auth", on_failed_auth)
    xmpp.add_event_handler("connection_failed", on_connection_failed)
    xmpp.add_event_handler("disconnected", on_disconnected)
    xmpp.add_event_handler("ssl_invalid_chain", on_ssl_invalid)
    xmpp.add_event_handler("ssl_invalid_cert", on_ssl_invalid)

    # ---- control socket: one command line in, one reply line out
    async def ping(jid, pid):
        iq = xmpp.make_iq_get(ito=jid)
        iq["id"] = pid
        iq.enable("ping")
        try:
            await iq.send(timeout=args.timeout)
            out("PONG", jid, pid)
        except IqError as e:
            on_error(e.iq)
        except IqTimeout:
            out("ERROR", "iq", pid, "timeout", "FROM", jid)

    async def command(line):
        w = line.split()
        if not w:
            return "ERR empty"
        c = w[0]
        if c == "send" and len(w) == 3:
            do_send(w[1], w[2])
        elif c in ("subscribe", "unsubscribe") and len(w) == 2:
            xmpp.send_presence(pto=w[1], ptype=c)
        elif c == "presence" and len(w) <= 2:
            kind = w[1] if len(w) == 2 else "available"
            if kind == "available":
                xmpp.send_presence(ppriority=args.priority)
            elif kind == "unavailable":
                xmpp.send_presence(ptype="unavailable")
            else:
                xmpp.send_presence(pshow=kind, ppriority=args.priority)
        elif c == "ping" and len(w) in (2, 3):
            pid = w[2] if len(w) == 3 else xmpp.new_id()
            asyncio.ensure_future(ping(w[1], pid))
            return "OK " + pid
        elif c == "join" and len(w) == 3:
            p = xmpp.make_presence(pto="%s/%s" % (w[1], w[2]))
            x = ET.SubElement(p.xml, "{%s}x" % NS_MUC)
            ET.SubElement(x, "{%s}history" % NS_MUC, maxstanzas="20")
            p.send()
        elif c == "groupchat" and len(w) == 3:
            m = xmpp.make_message(mto=w[1], mbody=w[2], mtype="groupchat")
            m["id"] = w[2]
            m.send()
            out("SENT", w[2], "TO", w[1])
        elif c == "invite" and len(w) == 4:
            m = xmpp.make_message(mto=w[1], mbody=w[3])
            m["id"] = w[3]
            x = ET.SubElement(m.xml, "{%s}x" % NS_MUC_USER)
            ET.SubElement(x, "{%s}invite" % NS_MUC_USER, to=w[2])
            m.send()
            out("SENT", w[3], "TO", w[1])
        elif c == "status" and len(w) == 1:
            return "OK " + ("online " + xmpp.boundjid.full if state["online"] else "offline")
        elif c == "quit" and len(w) == 1:
            finish(EXIT_OK)
        else:
            return "ERR unknown command: " + line
        return "OK"

    async def on_ctl(reader, writer):
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            reply = await command(line.decode(errors="replace").strip())
        except Exception as e:  # one bad command must not end the client
            reply = "ERR " + type(e).__name__ + " " + str(e)
        writer.write((reply + "\n").encode())
        try:
            await writer.drain()
        finally:
            writer.close()

    async def main():
        ctl = None
        if args.control:
            try:
                os.unlink(args.control)
            except FileNotFoundError:
                pass
            ctl = await asyncio.start_unix_server(on_ctl, path=args.control)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, finish, EXIT_FAILED)
        xmpp.connect(address=(host, port),
                     force_starttls=(args.tls == "starttls"),
                     disable_starttls=(args.tls == "none"))
        xmpp.default_domain = xmpp.boundjid.domain  # SNI and name check
        limit = args.lifetime if args.control else args.timeout
        try:
            rc = await asyncio.wait_for(asyncio.shield(done), limit)
        except asyncio.TimeoutError:
            if not state["online"]:
                out("FAILED", "connect", "no session within %g s" % limit)
                rc = EXIT_FAILED
            else:
                for j in sorted(want_presence):
                    out("MISSING", "presence", j)
                for t, j in sorted(want_message):
                    out("MISSING", "message", t, j)
                out("TIMEOUT")
                rc = EXIT_TIMEOUT
        if args.control and rc == EXIT_OK and (want_presence or want_message):
            for j in sorted(want_presence):
                out("MISSING", "presence", j)
            for t, j in sorted(want_message):
                out("MISSING", "message", t, j)
            rc = EXIT_TIMEOUT
        state["quitting"] = True
        if ctl is not None:
            ctl.close()
            try:
                os.unlink(args.control)
            except FileNotFoundError:
                pass
        if xmpp.transport is not None:
            try:
                await asyncio.wait_for(xmpp.disconnect(wait=1.0), 3)
            except (asyncio.TimeoutError, Exception):
                xmpp.abort()
        out("BYE")
        return rc

    if args.debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")
    else:
        logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    try:
        return loop.run_until_complete(main())
    finally:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.close()


# ---------------------------------------------------------------- ctl

def run_ctl(args):
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(args.timeout)
    try:
        s.connect(args.socket)
        s.sendall((" ".join(args.words) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        print("ERR", e)
        return 1
    finally:
        s.close()
    reply = data.decode(errors="replace").strip()
    print(reply)
    return 0 if reply.startswith("OK") else 1


# ---------------------------------------------------------------- dns

def run_dns(args):
    import aiodns

    async def q():
        r = aiodns.DNSResolver(nameservers=[args.server], timeout=args.timeout, tries=1)
        try:
            ans = await r.query(args.name, args.type.upper())
        except aiodns.error.DNSError as e:
            print("NONE", e.args[1] if len(e.args) > 1 else e)
            return 1
        if not isinstance(ans, list):
            ans = [ans]
        for a in ans:
            if args.type.upper() == "SRV":
                print("SRV", a.priority, a.weight, a.port, a.host)
            else:
                print(args.type.upper(), a.host)
        return 0 if ans else 1

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(q())
    finally:
        loop.close()


# ---------------------------------------------------------------- probe

def run_probe(args):
    import socket
    try:
        s = socket.create_connection((args.addr, args.port), timeout=args.timeout)
    except socket.timeout:
        print("TIMEOUT")
        return 1
    except OSError as e:
        print("FAILED", e.strerror or e)
        return 1
    s.close()
    print("CONNECTED")
    return 0


def main(argv):
    p = argparse.ArgumentParser(prog="xmpp_client.py")
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("client", help="log in and run a scripted exchange")
    c.add_argument("--jid", required=True)
    c.add_argument("--password", required=True)
    c.add_argument("--server", required=True, help="ADDR[:PORT] (no DNS)")
    c.add_argument("--resource", default="interop")
    c.add_argument("--tls", choices=("starttls", "optional", "none"), default="optional",
                   help="starttls: required; optional: if offered; none: never")
    c.add_argument("--cafile", help="verify the server certificate with this CA")
    c.add_argument("--priority", type=int, default=1)
    c.add_argument("--subscribe", action="append", default=[], metavar="JID")
    c.add_argument("--no-auto-accept", action="store_true",
                   help="do not approve subscription requests nor subscribe back")
    c.add_argument("--expect-presence", action="append", default=[], metavar="JID")
    c.add_argument("--expect-message", action="append", default=[], nargs=2,
                   metavar=("TOKEN", "FROM"))
    c.add_argument("--send", action="append", default=[], nargs=2, metavar=("TO", "TOKEN"),
                   help="sent once every --expect-presence has been seen")
    c.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to meet the expectations (and per iq)")
    c.add_argument("--control", metavar="SOCKET",
                   help="serve commands on this Unix socket; stay until quit")
    c.add_argument("--lifetime", type=float, default=300.0,
                   help="upper bound of a --control client's life, seconds")
    c.add_argument("--debug", action="store_true", help="slixmpp debug log on stderr")

    k = sub.add_parser("ctl", help="send a command to a --control client")
    k.add_argument("--timeout", type=float, default=5.0)
    k.add_argument("socket")
    k.add_argument("words", nargs="+")

    d = sub.add_parser("dns", help="query a DNS server directly")
    d.add_argument("--timeout", type=float, default=2.0)
    d.add_argument("server")
    d.add_argument("name")
    d.add_argument("type", choices=("A", "AAAA", "SRV", "a", "aaaa", "srv"))

    t = sub.add_parser("probe", help="try one TCP connection")
    t.add_argument("--timeout", type=float, default=2.0)
    t.add_argument("addr")
    t.add_argument("port", type=int)

    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        return EXIT_USAGE if e.code else 0
    if args.cmd == "client":
        return run_client(args)
    if args.cmd == "ctl":
        return run_ctl(args)
    if args.cmd == "probe":
        return run_probe(args)
    return run_dns(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
