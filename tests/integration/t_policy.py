"""Runtime policy: fedgatectl policy allow, deny and remove.

Scenario: remote.example (scripted) is allowed by the file and holds a
verified incoming stream. `policy deny remote.example` closes it at once
with policy-violation and refuses the next one; the rule is listed as a
runtime rule, written to the state directory, kept across a reload and a
restart, and `policy remove` gives the file's rule back. `policy allow`
over a file rule changes its settings and says which rule it hides. A
broken state file stops fedgated -n and start-up with its FILE:LINE.
`log level` set at run time survives a reload of an unchanged file.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (NS_DB, NS_STREAM, Fedgated, Peer, PeerError, Server,
                     Tap, authoritative_server, dialback_key, free_port,
                     stream_error, tempdir)

SECRET = "policy-secret-0123456789abcdef-0001"
REMOTE_SECRET = "remote-secret-for-its-own-keys-0003"
tap = Tap()
tmp = tempdir("fg-policy-")
public_port = free_port()
state_file = os.path.join(tmp, "state", "policy")

auth_srv = Server(authoritative_server("remote.example", REMOTE_SECRET))
conf = """
dialback secret "%s"
listen public on 127.0.0.1 port %d
domain "corp.example" {
	upstream "127.0.0.1" port %d
}
peer "remote.example" {
	allow
	tls none
	auth dialback
	route "127.0.0.1" port %d
}
peer "partner.example" {
	allow
	tls optional
}
peer default {
	deny
}
""" % (SECRET, public_port, free_port(), auth_srv.port)


def remote_stream():
    """An incoming stream from remote.example; (peer, dialback result)."""
    p = Peer(port=public_port)
    p.open_stream(frm="remote.example", to="corp.example")
    hdr = p.expect_header()
    p.expect_element("features", NS_STREAM)
    p.send("<db:result from='remote.example' to='corp.example'>%s"
           "</db:result>" % dialback_key(REMOTE_SECRET, "corp.example",
                                         "remote.example", hdr.get("id")))
    return p, p.expect_element(timeout=10)


def ctl(fg, *args):
    return fg.ctl(*args, check=False)


def rule_of(fg, pattern):
    for r in fg.ctl_json("policy", "list")["rules"]:
        if r["pattern"] == pattern:
            return r
    return None


def check_of(fg, domain):
    return fg.ctl_json("policy", "check", domain)


try:
    fg = Fedgated(conf, tmp)
except PeerError as e:
    tap.ok(False, "fedgated starts", e)
    sys.exit(tap.done())

# 1. deny closes the verified stream and refuses the next one.
try:
    p, res = remote_stream()
    tap.ok(res.name == "result" and res.get("type") == "valid",
           "remote.example is verified while the file allows it", res)
    rc, out, err = ctl(fg, "policy", "deny", "remote.example")
    tap.ok(rc == 0 and "1 session closed" in out and "saved in" in out,
           "policy deny answers: one session closed, saved", out + err)
    el = p.expect_element(timeout=10)
    tap.ok(stream_error(el) is not None and
           stream_error(el)[0] == "policy-violation",
           "the stream ends with policy-violation", el)
    tap.ok(fg.wait_log("denied by a runtime policy rule"),
           "the log says why the leg closed")
    p.close()
    p = Peer(port=public_port)
    p.open_stream(frm="remote.example", to="corp.example")
    p.expect_header()
    el = p.expect_element(timeout=10)
    tap.ok(stream_error(el) is not None and
           stream_error(el)[0] == "policy-violation",
           "a new stream from remote.example is refused at its header", el)
    p.close()
except (PeerError, OSError) as e:
    tap.ok(False, "deny closes and refuses remote.example", e)

# 2. listed, saved, kept across a reload.
r = rule_of(fg, "remote.example")
tap.ok(r is not None and r["origin"] == "control" and
       r["settings"].get("allow") is False and
       r.get("overrides", {}).get("line", 0) > 0,
       "policy list shows a runtime deny over the file's rule", r)
rc, out, err = ctl(fg, "policy", "list")
tap.ok(rc == 0 and "runtime (over " in out,
       "the text list names the rule it hides", out)
try:
    with open(state_file) as f:
        saved = f.read()
except OSError as e:
    saved = str(e)
tap.ok('peer "remote.example" { deny }' in saved,
       "the state file holds the rule in fedgated.conf syntax", saved)
rc, out, err = ctl(fg, "reload")
tap.ok(rc == 0 and check_of(fg, "remote.example")["settings"]["allow"]
       is False, "after a reload the runtime deny is still in force",
       out + err)

# 3. allow over a file rule, with settings; remove gives the file's back.
rc, out, err = ctl(fg, "policy", "allow", "partner.example", "tls",
                   "required", "auth", "external")
s = check_of(fg, "partner.example")["settings"]
tap.ok(rc == 0 and s["allow"] is True and s["tls"] == "required" and
       s["auth"] == "external", "policy allow sets the given settings",
       out + err)
rc, out, err = ctl(fg, "policy", "allow", "partner.example", "tls",
                   "sometimes")
tap.ok(rc != 0 and "invalid tls mode" in err,
       "an invalid mode is refused by fedgatectl", err)
rc, out, err = ctl(fg, "policy", "remove", "partner.example")
s = check_of(fg, "partner.example")["settings"]
tap.ok(rc == 0 and s["tls"] == "optional" and s["auth"] == "any",
       "policy remove gives the file's rule back", out + err)
rc, out, err = ctl(fg, "policy", "remove", "legacy.example")
tap.ok(rc != 0 and "no runtime rule" in err,
       "removing a rule that is not a runtime rule is refused", err)
rc, out, err = ctl(fg, "policy", "deny", "bad..example")
tap.ok(rc != 0 and "invalid domain" in err, "an invalid pattern is refused",
       err)

# 4. log level: lowered at run time, kept over a reload of the same file.
rc, out, err = ctl(fg, "log", "level", "warning")
ctl(fg, "reload")
rc, out, err = ctl(fg, "log", "level")
tap.ok("warning" in out, "a lowered log level survives a reload of an "
       "unchanged file", out + err)

# 5. a restart reads the state directory.
rc = fg.stop()
tap.ok(rc == 0, "fedgated exits 0 on SIGTERM", "status %s" % rc)
try:
    fg = Fedgated(conf, tmp)
    r = rule_of(fg, "remote.example")
    tap.ok(r is not None and r["origin"] == "control" and
           r["settings"].get("allow") is False,
           "after a restart the runtime deny is back", r)
    tap.ok("1 runtime policy rules from" in fg.log_text(),
           "the start-up log counts the rules it read")
    rc, out, err = ctl(fg, "policy", "remove", "remote.example")
    p, res = remote_stream()
    tap.ok(rc == 0 and res.name == "result" and res.get("type") == "valid",
           "once removed, remote.example is verified again", res)
    p.close()
    fg.finish(tap)
except (PeerError, OSError) as e:
    tap.ok(False, "restart with the state directory", e)

# 6. a broken state file stops -n and start-up, with FILE:LINE.
with open(state_file, "a") as f:
    f.write('peer "x.example" { allow; tls sometimes }\n')
import subprocess
fedgated = os.path.join(os.environ["builddir"], "src", "fedgated")
n = subprocess.run([fedgated, "-n", "-f", fg.conf], capture_output=True,
                   text=True, timeout=15)
tap.ok(n.returncode == 1 and state_file + ":4:" in n.stderr,
       "fedgated -n names the broken line of the state file", n.stderr)
with open(state_file, "w") as f:
    f.write('listen public on 127.0.0.1 port 1\n')
n = subprocess.run([fedgated, "-n", "-f", fg.conf], capture_output=True,
                   text=True, timeout=15)
tap.ok(n.returncode == 1 and "only peer rules" in n.stderr,
       "a state file with anything but peer rules is refused", n.stderr)
auth_srv.stop()
sys.exit(tap.done())
