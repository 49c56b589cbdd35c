"""Scripted XMPP S2S peers for fedgated's integration tests.

A Peer is one TCP connection speaking the server-to-server protocol byte by
byte as a test scripts it: send raw bytes, expect the stream header, expect
top-level elements (parsed incrementally with expat, namespace aware), do
STARTTLS, and read stream errors. A Server accepts connections on loopback
and runs a handler per connection in a thread (a fake authoritative server
or a fake internal server). Every wait is bounded by a timeout.

Only the standard library is used.
"""

import hashlib
import hmac
import os
import socket
import ssl
import subprocess
import threading
import time
import xml.parsers.expat

NS_STREAM = "http://etherx.jabber.org/streams"
NS_SERVER = "jabber:server"
NS_DB = "jabber:server:dialback"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams"
NS_STANZA_ERR = "urn:ietf:params:xml:ns:xmpp-stanzas"

DEFAULT_TIMEOUT = 10.0


class PeerError(Exception):
    pass


class Element:
    """A parsed top-level element: ns, name, attrs, children, text."""

    def __init__(self, ns, name, attrs):
        self.ns, self.name, self.attrs = ns, name, attrs
        self.children = []
        self.text = ""

    def find(self, name, ns=None):
        for c in self.children:
            if c.name == name and (ns is None or c.ns == ns):
                return c
        return None

    def get(self, key, default=None):
        return self.attrs.get(key, default)

    def __repr__(self):
        kids = "".join("<%s/>" % c.name for c in self.children)
        return "<%s {%s} %r>%s%s" % (self.name, self.ns, self.attrs, kids,
                                      self.text[:40])


def split_name(qname):
    if " " in qname:
        ns, name = qname.split(" ", 1)
        return ns, name.split(" ")[0]
    return "", qname


class StreamReader:
    """Incremental expat reader of one XML stream: header, then elements."""

    def __init__(self):
        self.reset()

    def reset(self):
        p = xml.parsers.expat.ParserCreate(namespace_separator=" ")
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self._text
        self.parser = p
        self.depth = 0
        self.stack = []
        self.header = None
        self.events = []      # ("header", attrs) | ("element", el) | ("end",)

    def _start(self, qname, attrs):
        ns, name = split_name(qname)
        plain = {}
        for k, v in attrs.items():
            plain[split_name(k)[1] if " " in k else k] = v
        el = Element(ns, name, plain)
        if self.depth == 0:
            self.header = el
            self.events.append(("header", el))
        elif self.depth >= 2:
            self.stack[-1].children.append(el)
        self.stack.append(el)
        self.depth += 1

    def _end(self, qname):
        self.depth -= 1
        el = self.stack.pop()
        if self.depth == 1:
            self.events.append(("element", el))
        elif self.depth == 0:
            self.events.append(("end", el))

    def _text(self, data):
        if self.depth >= 2:
            self.stack[-1].text += data

    def feed(self, data):
        self.parser.Parse(data, False)


class Peer:
    """One scripted S2S connection."""

    def __init__(self, host="127.0.0.1", port=5269, sock=None,
                 timeout=DEFAULT_TIMEOUT):
        self.timeout = timeout
        if sock is None:
            sock = socket.create_connection((host, port), timeout=timeout)
        sock.settimeout(timeout)
        self.sock = sock
        self.reader = StreamReader()
        self.closed = False
        self.received = b""

    # -- writing
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def open_stream(self, frm=None, to=None, version="1.0", db=True,
                    extra=""):
        attrs = ""
        if frm is not None:
            attrs += " from='%s'" % frm
        if to is not None:
            attrs += " to='%s'" % to
        if version is not None:
            attrs += " version='%s'" % version
        dbns = " xmlns:db='%s'" % NS_DB if db else ""
        self.send("<?xml version='1.0'?><stream:stream xmlns='jabber:server'"
                  " xmlns:stream='%s'%s%s%s>" % (NS_STREAM, dbns, attrs, extra))

    def close_stream(self):
        self.send("</stream:stream>")

    # -- reading
    def _pump(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PeerError("timeout")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise PeerError("timeout")
        except (ConnectionResetError, ssl.SSLError) as e:
            raise PeerError("connection error: %s" % e)
        if not data:
            self.closed = True
            raise PeerError("connection closed")
        self.received += data
        try:
            self.reader.feed(data)
        except xml.parsers.expat.ExpatError as e:
            raise PeerError("peer sent bad XML: %s" % e)

    def next_event(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.reader.events:
            self._pump(deadline)
        return self.reader.events.pop(0)

    def expect_header(self, timeout=None):
        kind, el = self.next_event(timeout)
        if kind != "header":
            raise PeerError("expected a stream header, got %s %r" % (kind, el))
        return el

    def expect_element(self, name=None, ns=None, timeout=None):
        kind, el = self.next_event(timeout)
        if kind != "element":
            raise PeerError("expected <%s/>, got %s %r" % (name, kind, el))
        if name is not None and (el.name != name or
                                 (ns is not None and el.ns != ns)):
            raise PeerError("expected <%s/>, got %r" % (name, el))
        return el

    def expect_stream_error(self, timeout=None):
        """Read until a stream error (after the header, if one comes
        first); return its condition name."""
        kind, el = self.next_event(timeout)
        if kind == "header":
            kind, el = self.next_event(timeout)
        if kind != "element":
            raise PeerError("expected a stream error, got %s %r" % (kind, el))
        if el.name != "error" or el.ns != NS_STREAM:
            raise PeerError("expected a stream error, got %r" % el)
        for c in el.children:
            if c.ns == NS_STREAMS_ERR and c.name != "text":
                return c.name
        raise PeerError("stream error without condition: %r" % el)

    def expect_closed(self, timeout=None):
        """Wait for </stream:stream> and/or the TCP close."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            if self.reader.events:
                kind, el = self.reader.events.pop(0)
                if kind == "end":
                    continue
                raise PeerError("expected the close, got %s %r" % (kind, el))
            try:
                self._pump(deadline)
            except PeerError as e:
                if self.closed:
                    return True
                raise e

    # -- TLS
    def starttls_client(self, ctx, server_hostname=None):
        self.send("<starttls xmlns='%s'/>" % NS_TLS)
        self.expect_element("proceed", NS_TLS)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        self.reader.reset()

    def starttls_server(self, ctx):
        self.sock = ctx.wrap_socket(self.sock, server_side=True)
        self.reader.reset()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Server:
    """Accept connections on loopback (IPv4, or IPv6 for a host such as
    "::1"); run handler(peer) in a thread each. With tls (an ssl server
    context), speak TLS from the first byte (XEP-0368). peer_addrs lists
    the address each connection came from."""

    def __init__(self, handler, host="127.0.0.1", port=0, tls=None):
        self.handler = handler
        self.tls = tls
        self.lsock = socket.socket(
            socket.AF_INET6 if ":" in host else socket.AF_INET,
            socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, port))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.errors = []
        self.peer_addrs = []
        self.connections = 0
        self.threads = []
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        self.lsock.settimeout(0.2)
        while not self.stopping:
            try:
                s, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._run, args=(s,), daemon=True)
            self.threads.append(t)
            t.start()

    def _run(self, s):
        self.peer_addrs.append(s.getpeername()[0])
        try:
            if self.tls is not None:
                s.settimeout(DEFAULT_TIMEOUT)
                s = self.tls.wrap_socket(s, server_side=True)
        except (OSError, ssl.SSLError) as e:
            self.errors.append("TLS: %r" % e)
            s.close()
            return
        peer = Peer(sock=s)
        try:
            self.handler(peer)
        except Exception as e:  # reported by the test, never lost
            self.errors.append(repr(e))
        finally:
            peer.close()

    def stop(self):
        self.stopping = True
        self.lsock.close()
        self.thread.join(5)
        for t in self.threads:
            t.join(5)


def dialback_key(secret, receiving, originating, stream_id):
    """XEP-0185: HMAC-SHA256 keyed with the hex SHA-256 of the secret."""
    k = hashlib.sha256(secret.encode()).hexdigest().encode()
    msg = ("%s %s %s" % (receiving, originating, stream_id)).encode()
    return hmac.new(k, msg, hashlib.sha256).hexdigest()


def make_cert(tmpdir, domain):
    """A self-signed certificate and key for domain; return their paths."""
    crt = os.path.join(tmpdir, domain + ".crt")
    key = os.path.join(tmpdir, domain + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-subj",
                    "/CN=" + domain, "-addext",
                    "subjectAltName=DNS:" + domain, "-days", "2",
                    "-keyout", key, "-out", crt], check=True,
                   capture_output=True)
    os.chmod(key, 0o600)
    return crt, key


DIALBACK_FEATURES = ("<stream:features><dialback xmlns='urn:xmpp:features:"
                     "dialback'/></stream:features>")


def stream_error(el):
    """(condition, text) of a <stream:error/>, or None for another
    element."""
    if el.name != "error" or el.ns != NS_STREAM:
        return None
    cond = text = None
    for c in el.children:
        if c.ns == NS_STREAMS_ERR and c.name == "text":
            text = c.text
        elif c.ns == NS_STREAMS_ERR:
            cond = c.name
    return cond, text


class Inbox:
    """What scripted servers received: stanzas, and stream errors."""

    def __init__(self):
        self.lock = threading.Lock()
        self.stanzas = []
        self.errors = []      # (condition, text)

    def collect(self, peer, timeout=30):
        """Take elements from peer until it ends or sends a stream error."""
        while True:
            try:
                el = peer.expect_element(timeout=timeout)
            except PeerError:
                return
            err = stream_error(el)
            with self.lock:
                (self.errors if err else self.stanzas).append(err or el)
            if err:
                peer.close_stream()
                return

    def by_id(self, ident):
        with self.lock:
            return [e for e in self.stanzas if e.get("id") == ident]

    def wait_id(self, ident, timeout=15):
        """Wait for the stanza with id ident; return it or None."""
        if wait_until(lambda: self.by_id(ident), timeout):
            return self.by_id(ident)[0]
        return None


_stream_ids = iter(range(1, 1 << 30))


def accept_stream(peer, domain, features=DIALBACK_FEATURES):
    """Answer an opening stream as domain; return (their header, our id)."""
    hdr = peer.expect_header()
    sid = "%s-%d" % (domain, next(_stream_ids))
    peer.open_stream(frm=domain, to=hdr.get("from"), extra=" id='%s'" % sid)
    peer.send(features)
    return hdr, sid


def dialback_stream(port, frm, to, secret=None, timeout=None, wait=True,
                    extra="", host="127.0.0.1"):
    """Open a stream from frm to to on host, port and send db:result, with
    a key minted from secret (XEP-0185) or a dummy one (for a trusted
    side). extra goes into our stream header. Return (peer, their header,
    their features, the db:result answer, or None without wait)."""
    p = Peer(host=host, port=port, timeout=timeout or DEFAULT_TIMEOUT)
    p.open_stream(frm=frm, to=to, extra=extra)
    hdr = p.expect_header()
    feats = p.expect_element("features", NS_STREAM)
    key = dialback_key(secret, to, frm, hdr.get("id")) if secret else "k"
    p.send("<db:result from='%s' to='%s'>%s</db:result>" % (frm, to, key))
    return p, hdr, feats, p.expect_element("result", NS_DB) if wait else None


def verify_back(port, receiving, originating, sid, key, host="127.0.0.1"):
    """Ask the authoritative server on host, port whether key is valid
    (XEP-0220 db:verify); return the answer's type."""
    back = Peer(host=host, port=port)
    try:
        back.open_stream(frm=receiving, to=originating)
        back.expect_header()
        back.expect_element("features", NS_STREAM)
        back.send("<db:verify from='%s' to='%s' id='%s'>%s</db:verify>" % (
            receiving, originating, sid, key))
        return back.expect_element("verify", NS_DB).get("type")
    finally:
        back.close()


def accept_dialback(peer, domain, authoritative_port,
                    features=DIALBACK_FEATURES, host="127.0.0.1"):
    """Answer an opening stream as domain's receiving server: check the
    db:result that follows with fedgated's authoritative face on host,
    authoritative_port and answer it. Return the verdict."""
    hdr, sid = accept_stream(peer, domain, features)
    r = peer.expect_element("result", NS_DB)
    verdict = verify_back(authoritative_port, domain, r.get("from"), sid,
                          r.text, host)
    peer.send("<db:result from='%s' to='%s' type='%s'/>" % (
        domain, r.get("from"), verdict))
    return verdict


def receiving_server(domain, authoritative_port, inbox, host="127.0.0.1"):
    """A handler for a server that fedgated connects to as `domain`'s
    receiving server: it checks fedgated's db:result with fedgated's
    authoritative face on host, authoritative_port, then collects into
    inbox."""
    def handler(peer):
        accept_dialback(peer, domain, authoritative_port, host=host)
        inbox.collect(peer)
    return handler


def authoritative_server(domain, secret, then=None):
    """A handler for `domain`'s authoritative server: answers db:verify
    for keys minted (XEP-0185) from secret. A db:result instead goes to
    the handler then (a server that is both), if given."""
    def handler(peer):
        hdr, sid = accept_stream(peer, domain)
        el = peer.expect_element()
        if el.name == "result" and then is not None:
            return then(peer, hdr, sid, el)
        if el.name != "verify" or el.ns != NS_DB:
            raise PeerError("expected db:verify, got %r" % el)
        good = el.text == dialback_key(secret, el.get("from"), el.get("to"),
                                       el.get("id"))
        peer.send("<db:verify from='%s' to='%s' id='%s' type='%s'/>" % (
            el.get("to"), el.get("from"), el.get("id"),
            "valid" if good else "invalid"))
        peer.close_stream()
    return handler


class TestCA:
    """A throwaway CA issuing leaf certificates for test domains."""

    def __init__(self, tmpdir):
        self.dir = tmpdir
        self.crt = os.path.join(tmpdir, "ca.crt")
        self.key = os.path.join(tmpdir, "ca.key")
        self._run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:P-256", "-nodes", "-subj",
                   "/CN=fedgate test CA", "-days", "2", "-keyout", self.key,
                   "-out", self.crt, "-addext",
                   "basicConstraints=critical,CA:TRUE", "-addext",
                   "keyUsage=critical,keyCertSign,cRLSign"])

    @staticmethod
    def _run(argv):
        subprocess.run(argv, check=True, capture_output=True)

    def issue(self, domain):
        """A certificate and key for domain (SAN DNS); return paths."""
        base = os.path.join(self.dir, domain)
        ext = base + ".ext"
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth,"
                    "clientAuth\n" % domain)
        self._run(["openssl", "req", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:P-256", "-nodes", "-subj",
                   "/CN=" + domain, "-keyout", base + ".key", "-out",
                   base + ".csr"])
        self._run(["openssl", "x509", "-req", "-in", base + ".csr", "-CA",
                   self.crt, "-CAkey", self.key, "-CAcreateserial", "-days",
                   "2", "-extfile", ext, "-out", base + ".crt"])
        os.chmod(base + ".key", 0o600)
        return base + ".crt", base + ".key"

    def client_context(self, domain=None):
        """An ssl client context trusting this CA, presenting domain's
        certificate when given."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.crt)
        if domain:
            ctx.load_cert_chain(*self.issue(domain))
        return ctx

    def server_context(self, domain):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*self.issue(domain))
        ctx.load_verify_locations(self.crt)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx


def tempdir(prefix):
    """A temporary directory removed when the test exits."""
    import atexit
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, d, True)
    return d


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_dual_port(host="127.0.0.1"):
    """A port of host free for both TCP and UDP now (a DNS server needs
    both)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        t = socket.socket(family, socket.SOCK_STREAM)
        u = socket.socket(family, socket.SOCK_DGRAM)
        try:
            t.bind((host, 0))
            port = t.getsockname()[1]
            u.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise PeerError("no port free for both TCP and UDP on %s" % host)


class Dnsmasq:
    """dnsmasq on host (127.0.0.1 or ::1) as one test's DNS server: the
    records are dnsmasq options (--srv-host=..., --host-record=...), every
    query is logged to TMP/dnsmasq.log. Its port is free for UDP and TCP
    when chosen; if dnsmasq still cannot bind it (another process took it
    in between), it is started again on another port, three times at
    most. Stopped by PID: stop(), and at exit."""

    def __init__(self, tmp, records, host="127.0.0.1"):
        import shutil
        self.log = os.path.join(tmp, "dnsmasq.log")
        self.host = host
        self.proc = None
        exe = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        import atexit
        atexit.register(self.stop)
        for _ in range(3):
            self.port = free_dual_port(host)
            open(self.log, "w").close()
            self.proc = subprocess.Popen([
                exe, "--keep-in-foreground", "--no-resolv", "--no-hosts",
                "--no-poll", "--bind-interfaces",
                "--listen-address=%s" % host, "--port=%d" % self.port,
                "--user=root", "--pid-file=",
                "--log-facility=%s" % self.log, "--log-queries"]
                + list(records),
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            wait_until(lambda: "started" in self.log_text() or
                       self.proc.poll() is not None, 10)
            if self.proc.poll() is None and "started" in self.log_text():
                return
            self.stop()
        raise PeerError("dnsmasq did not start:\n" + self.log_text())

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def wait_until(fn, timeout=DEFAULT_TIMEOUT, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(interval)
    return False


class Tap:
    """TAP output for a scenario script."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc, diag=None):
        self.n += 1
        if cond:
            print("ok %d - %s" % (self.n, desc), flush=True)
        else:
            self.failed += 1
            print("not ok %d - %s" % (self.n, desc), flush=True)
            if diag:
                for line in str(diag).splitlines():
                    print("# " + line, flush=True)
        return cond

    def done(self):
        print("1..%d" % self.n, flush=True)
        return 1 if self.failed else 0


class Fedgated:
    """Start fedgated -d with a config text; stop it by PID. With nofile,
    fedgated runs with that many descriptors at most (RLIMIT_NOFILE).

    The scripted servers do not answer XEP-0199 pings, so unless acks is
    set, the config turns acknowledgements off (limit unacked 0): a
    stanza counts as delivered once written, and no ping reaches them."""

    def __init__(self, conf_text, tmpdir, acks=False, nofile=None):
        self.builddir = os.environ["builddir"]
        self.tmp = tmpdir
        self.sock = os.path.join(tmpdir, "ctl.sock")
        self.conf = os.path.join(tmpdir, "fedgated.conf")
        self.log = os.path.join(tmpdir, "fedgated.log")
        with open(self.conf, "w") as f:
            f.write('control socket "%s" mode 0600\nlog stderr\n'
                    'log level debug\nstate directory "%s"\n'
                    % (self.sock, os.path.join(tmpdir, "state")))
            if not acks:
                f.write("limit unacked 0\n")
            f.write(conf_text)
        self.logf = open(self.log, "w")
        # Stopped by PID even when the test dies half-way.
        import atexit
        atexit.register(self._kill)
        limit = None
        if nofile is not None:
            import resource

            def limit():
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen(
            [os.path.join(self.builddir, "src", "fedgated"), "-d", "-f",
             self.conf], stdout=self.logf, stderr=subprocess.STDOUT,
            preexec_fn=limit)
        if not wait_until(lambda: self.ctl("status", check=False)[0] == 0 or
                          self.proc.poll() is not None, 10) or \
                self.proc.poll() is not None:
            raise PeerError("fedgated did not start:\n" + self.log_text())

    def ctl(self, *args, check=True):
        p = subprocess.run(
            [os.path.join(self.builddir, "src", "fedgatectl", "fedgatectl"),
             "-s", self.sock] + list(args), capture_output=True, text=True,
            timeout=15)
        if check and p.returncode != 0:
            raise PeerError("fedgatectl %s: %s" % (" ".join(args), p.stderr))
        return p.returncode, p.stdout, p.stderr

    def ctl_json(self, *args):
        import json
        rc, out, err = self.ctl("-j", *args)
        return json.loads(out)

    def log_text(self):
        if not self.logf.closed:
            self.logf.flush()
        with open(self.log) as f:
            return f.read()

    def wait_log(self, needle, timeout=DEFAULT_TIMEOUT):
        return wait_until(lambda: needle in self.log_text(), timeout)

    def alive(self):
        return self.proc.poll() is None

    def _kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def finish(self, tap):
        """Stop fedgated and assert a clean exit: status 0 and no
        sanitizer report in its log."""
        rc = self.stop()
        tap.ok(rc == 0, "fedgated exits 0 on SIGTERM", "status %s" % rc)
        bad = [line for line in self.log_text().splitlines()
               if "Sanitizer" in line or "runtime error" in line]
        tap.ok(not bad, "no sanitizer report", "\n".join(bad[:20]))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.logf.close()
        return self.proc.returncode
