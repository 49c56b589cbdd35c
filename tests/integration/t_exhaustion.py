"""Resource exhaustion: fedgated runs with few descriptors and plain TCP
connections use them all up. accept() then fails with EMFILE; fedgated
pauses accepting instead of spinning: little CPU, a few log lines that
carry a count, the control socket still answers, and once the connections
go, it accepts and serves streams again."""

import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s2speer import (Fedgated, Peer, PeerError, Tap, free_port, tempdir,
                     wait_until)

NOFILE = 64                 # fedgated's RLIMIT_NOFILE
EXTRA = 16                  # connections beyond what it can accept
WINDOW = 2.0                # seconds of exhaustion measured
CPU_MAX = 0.3               # seconds of CPU allowed in WINDOW
LINES_MAX = 5               # accept-error lines allowed in WINDOW

tap = Tap()
tmp = tempdir("fg-exhaustion-")
public_port = free_port()
conf = """
dialback secret "exhaustion-secret-0123456789abcd"
listen public on 127.0.0.1 port %d
limit connections 10000
limit connections-per-address 10000
timeout handshake 300s
domain "corp.example" {
	upstream "127.0.0.1" port %d
}
peer "remote.example" {
	allow
	tls none
}
peer default {
	deny
}
""" % (public_port, free_port())

PREFIX = "listener 127.0.0.1:%d: accept:" % public_port
REPORT = re.compile(re.escape(PREFIX) +
                    r" Too many open files: (\d+) accepts? failed, paused")
RESUMED = "listener 127.0.0.1:%d: accepting again" % public_port
RETRY = "listener 127.0.0.1:%d: paused -> accepting" % public_port


def cpu_seconds(pid):
    """utime + stime of pid, in seconds (proc(5): fields 14 and 15)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def error_lines():
    return [l for l in fg.log_text().splitlines() if PREFIX in l]


def reports():
    return [int(m.group(1)) for m in
            (REPORT.search(l) for l in fg.log_text().splitlines()) if m]


try:
    fg = Fedgated(conf, tmp, nofile=NOFILE)
except PeerError as e:
    tap.ok(False, "fedgated starts", e)
    sys.exit(tap.done())

conns = []
try:
    for _ in range(NOFILE + EXTRA):
        conns.append(socket.create_connection(("127.0.0.1", public_port),
                                              timeout=5))
    tap.ok(fg.wait_log(PREFIX, 10) and reports(),
           "with its descriptors used up, accept fails and the line "
           "carries a count", fg.log_text()[-1500:])

    pid = fg.proc.pid
    cpu0, lines0, t0 = cpu_seconds(pid), len(error_lines()), time.monotonic()
    time.sleep(WINDOW)      # the measured window, not a synchronisation
    cpu = cpu_seconds(pid) - cpu0
    wall = time.monotonic() - t0
    lines = len(error_lines()) - lines0
    print("# exhausted for %.2f s: %.2f s of CPU, %d accept-error lines" %
          (wall, cpu, lines), flush=True)
    tap.ok(cpu < CPU_MAX, "little CPU while exhausted (%.2f s in %.1f s)"
           % (cpu, wall))
    tap.ok(lines <= LINES_MAX, "few log lines while exhausted (%d in %.1f s)"
           % (lines, wall), "\n".join(error_lines()[-10:]))

    status = fg.ctl_json("status")
    tap.ok(status.get("ok") and status.get("state") == "running" and
           status.get("legs", 0) > 0,
           "fedgatectl status answers while exhausted", status)
    # The descriptor that client used must go back to the control socket,
    # not to the next waiting connection: once the listener has tried
    # again, a second client is answered too.
    retries = fg.log_text().count(RETRY)
    tap.ok(wait_until(lambda: fg.log_text().count(RETRY) > retries, 5) and
           fg.ctl_json("status").get("ok"),
           "and again after the listener has retried")

    tap.ok(wait_until(lambda: any(n > 1 for n in reports()), 10),
           "a later line counts the failures since the previous one",
           "\n".join(error_lines()[-10:]))
    tap.ok(len(error_lines()) <= LINES_MAX,
           "the whole episode logged few accept-error lines (%d)"
           % len(error_lines()), "\n".join(error_lines()[-10:]))
except (OSError, PeerError, ValueError) as e:
    tap.ok(False, "exhaustion", "%s\n%s" % (e, fg.log_text()[-1500:]))

for c in conns:
    c.close()

try:
    tap.ok(fg.wait_log(RESUMED, 10), "once the connections are gone, the "
           "log says accepting resumed", fg.log_text()[-1500:])
    p = Peer(port=public_port)
    p.open_stream(frm="remote.example", to="corp.example")
    hdr = p.expect_header(timeout=5)
    tap.ok(hdr.get("from") == "corp.example",
           "a new connection gets a stream header again", hdr)
    p.close()
except (OSError, PeerError) as e:
    tap.ok(False, "serving resumes", "%s\n%s" % (e, fg.log_text()[-1500:]))

tap.ok(fg.alive(), "fedgated is still serving")
fg.finish(tap)
sys.exit(tap.done())
