"""Readiness notification (sd_notify(3), src/notify.c): with NOTIFY_SOCKET
set, fedgated's relay sends READY=1 once it accepts, RELOADING=1 and
READY=1 around a reload (a refused one too), and STOPPING=1 on SIGTERM,
each as one datagram. As root the relay has dropped to nobody under its
seccomp filter before it sends: what the systemd unit (NotifyAccess=all)
relies on."""

import os
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import Fedgated, PeerError, Tap, free_port, tempdir

tap = Tap()
tmp = tempdir("fg-notify-")
root = os.geteuid() == 0
# The relay may run as nobody: it must reach the socket, as any service
# reaches systemd's (/run/systemd/notify is world-writable).
os.chmod(tmp, 0o755)
path = os.path.join(tmp, "notify")
mgr = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
mgr.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
mgr.bind(path)
os.chmod(path, 0o666)
os.environ["NOTIFY_SOCKET"] = path
CRED = socket.CMSG_SPACE(12)		# struct ucred: pid, uid, gid


def receive(timeout=10):
    """The next notification as (text, pid, uid), or (None, 0, 0)."""
    mgr.settimeout(timeout)
    try:
        data, anc, _, _ = mgr.recvmsg(4096, CRED)
    except socket.timeout:
        return None, 0, 0
    pid = uid = 0
    for level, kind, cdata in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = int.from_bytes(cdata[0:4], sys.byteorder)
            uid = int.from_bytes(cdata[4:8], sys.byteorder)
    return data.decode(), pid, uid


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)],
                         capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


port = free_port()
conf = """
dialback secret "notify-test-secret-0123456789"
listen public on 127.0.0.1 port %d
domain "corp.example" {
	upstream "127.0.0.1" port %d
}
peer default {
	deny
}
""" % (port, free_port())
if root:
    conf = 'user "nobody"\ngroup "nogroup"\n' + conf
fgdir = os.path.join(tmp, "fg")
os.mkdir(fgdir)
if root:
    os.chown(fgdir, 65534, -1)	# the relay removes its socket there

try:
    fg = Fedgated(conf, fgdir)
except PeerError as e:
    tap.ok(False, "fedgated starts", e)
    sys.exit(tap.done())

text, pid, uid = receive()
relays = children(fg.proc.pid)
tap.ok(text == "READY=1\nSTATUS=running", "READY=1 once running", text)
tap.ok(pid != 0 and pid in relays, "sent by the relay, the process that "
       "accepts", "sender %d, parent %d, relays %s" % (pid, fg.proc.pid,
                                                       relays))
if root:
    tap.ok(uid == 65534, "after the drop to nobody, under the seccomp "
           "filter", "uid %d" % uid)
try:
    c = socket.create_connection(("127.0.0.1", port), 5)
    c.close()
    tap.ok(True, "the listener accepts when READY=1 has come")
except OSError as e:
    tap.ok(False, "the listener accepts when READY=1 has come", e)
text, _, _ = receive(0.2)
tap.ok(text is None, "READY=1 is sent once", text)

os.kill(fg.proc.pid, signal.SIGHUP)
first, _, _ = receive()
second, _, _ = receive()
tap.ok(first == "RELOADING=1\nSTATUS=reloading" and
       second == "READY=1\nSTATUS=running",
       "a reload: RELOADING=1, then READY=1", "%r, %r" % (first, second))

with open(fg.conf, "a") as f:
    f.write("tls-requird\n")
os.kill(fg.proc.pid, signal.SIGHUP)
first, _, _ = receive()
second, _, _ = receive()
tap.ok(first == "RELOADING=1\nSTATUS=reloading" and second is not None and
       second.startswith("READY=1\nSTATUS=running; the last reload was "
                         "refused"),
       "a refused reload: READY=1 again, and the status says so",
       "%r, %r" % (first, second))

fg.proc.send_signal(signal.SIGTERM)
text, _, _ = receive()
tap.ok(text == "STOPPING=1\nSTATUS=draining", "STOPPING=1 on SIGTERM", text)
try:
    fg.proc.wait(15)		# one SIGTERM: finish() must not send another
except subprocess.TimeoutExpired:
    pass
fg.finish(tap)
tap.ok("cannot notify" not in fg.log_text(), "no notification failed",
       fg.log_text()[-2000:])
sys.exit(tap.done())
