"""A drain (SIGTERM) loses nothing a peer sent before it saw the close.

Scenario: remote.example (scripted) authenticates by dialback and sends a
message, which reaches the internal server (scripted). fedgated gets
SIGTERM: it closes remote.example's stream with system-shutdown first and
reads on; remote.example sends one more message after the error, then
ends its stream. That message still reaches the internal server (RFC 6120
4.4: the other party gets time to send outstanding data), over the
outgoing leg that the drain closes only after the incoming ones.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (Fedgated, Inbox, PeerError, Server, Tap,
                     authoritative_server, dialback_stream, free_port,
                     receiving_server, tempdir, wait_until)

SECRET = "integration-secret-0123456789abcdef"
REMOTE_SECRET = "remote-secret-for-its-own-keys-0001"
tap = Tap()
tmp = tempdir("fg-drain-")
public_port, internal_port = free_port(), free_port()
inbox = Inbox()

auth_srv = Server(authoritative_server("remote.example", REMOTE_SECRET))
int_srv = Server(receiving_server("corp.internal", internal_port, inbox))
conf = """
dialback secret "%s"
listen public on 127.0.0.1 port %d
listen internal on 127.0.0.1 port %d
timeout shutdown 6s
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
""" % (SECRET, public_port, internal_port, int_srv.port, auth_srv.port)

try:
    fg = Fedgated(conf, tmp)
except PeerError as e:
    tap.ok(False, "fedgated starts", e)
    sys.exit(tap.done())

try:
    p, hdr, feats, res = dialback_stream(public_port, "remote.example",
                                         "corp.example", REMOTE_SECRET)
    tap.ok(res.get("type") == "valid", "remote.example authenticates", res)
    p.send("<message from='a@remote.example' to='b@corp.example' "
           "id='before'><body>before the drain</body></message>")
    tap.ok(inbox.wait_id("before"), "its message reaches the internal "
           "server", inbox.stanzas)
    fg.proc.terminate()
    cond = p.expect_stream_error(timeout=10)
    tap.ok(cond == "system-shutdown",
           "SIGTERM: remote.example's stream gets system-shutdown", cond)
    # What a peer had in flight when the error came.
    p.send("<message from='a@remote.example' to='b@corp.example' "
           "id='crossing'><body>sent before it saw the close</body>"
           "</message>")
    m = inbox.wait_id("crossing", timeout=10)
    tap.ok(m is not None and m.get("to") == "b@corp.internal",
           "a message sent after the error still reaches the internal "
           "server, rewritten", inbox.stanzas)
    p.close_stream()
    tap.ok(wait_until(lambda: not fg.alive(), 10),
           "fedgated exits once remote.example ended its stream")
    log = fg.log_text()
    tap.ok("leg 1 in public remote.example->corp.example: closed: system "
           "shutdown" in log, "the log gives the leg's close its reason",
           log[-2000:])
    tap.ok("dropped" not in log and "bounced" not in log,
           "nothing bounced or dropped", log[-2000:])
    tap.ok(wait_until(lambda: inbox.errors, 10) and
           inbox.errors[0][0] == "system-shutdown",
           "the leg to the internal server closes after, with "
           "system-shutdown", inbox.errors)
    p.close()
except PeerError as e:
    tap.ok(False, "drain", "%s\n%s" % (e, fg.log_text()[-3000:]))
fg.finish(tap)

for srv in (auth_srv, int_srv):
    srv.stop()
sys.exit(tap.done())
