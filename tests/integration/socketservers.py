"""Real TCP servers on loopback for the socket tests (test_sockets*.py):
an echo server, scripted servers, a TLS server whose certificate comes from
a CA made here with openssl, and an SMTP-like STARTTLS server."""
import hashlib
import socket
import ssl
import subprocess
import threading
from pathlib import Path


def pattern(n):
    block = hashlib.sha256(b"thaw-sockets").digest() * 2048  # 64 KiB
    reps, rest = divmod(n, len(block))
    return block * reps + block[:rest]


def make_ca(d):
    """A CA and a certificate for localhost / 127.0.0.1 signed by it.
    Returns (ca.pem, server.pem, server.key)."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    run = lambda *a: subprocess.run(a, cwd=d, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "2", "-subj", "/CN=thaw test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", "/CN=localhost")
    (d / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                           "basicConstraints=CA:FALSE\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext")
    return d / "ca.pem", d / "server.pem", d / "server.key"


def server_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


class Server:
    """A threaded TCP server on 127.0.0.1 running handler(conn, server) per
    connection. `events` collects what handlers report."""

    def __init__(self, handler, tls=None, host="127.0.0.1"):
        self.handler = handler
        self.tls = tls
        self.events = []
        self.cond = threading.Condition()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            self.handler(conn, self)
        except Exception as exc:  # reported, for the test to see
            self.report(("error", repr(exc)))
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def report(self, item):
        with self.cond:
            self.events.append(item)
            self.cond.notify_all()

    def wait_for(self, pred, timeout=30):
        with self.cond:
            ok = self.cond.wait_for(lambda: any(pred(e) for e in self.events), timeout)
        assert ok, f"server events: {self.events}"
        return next(e for e in self.events if pred(e))

    def close(self):
        self.sock.close()


def recv_line(conn):
    data = b""
    while not data.endswith(b"\n"):
        c = conn.recv(1)
        if not c:
            break
        data += c
    return data


def echo(conn, srv):
    while True:
        d = conn.recv(65536)
        if not d:
            return
        conn.sendall(d)


def sink(conn, srv):
    """Reads to EOF; reports ("sink", n, sha256)."""
    h = hashlib.sha256()
    n = 0
    while True:
        d = conn.recv(1 << 20)
        if not d:
            break
        h.update(d)
        n += len(d)
    srv.report(("sink", n, h.hexdigest()))


def source(n):
    """Sends n pattern bytes, then closes."""
    def run(conn, srv):
        data = pattern(n)
        view = memoryview(data)
        for i in range(0, len(data), 1 << 20):
            conn.sendall(view[i:i + (1 << 20)])
        srv.report(("sent", n))
    return run


def half_closer(conn, srv):
    """Says "bye", ends its side (FIN), then reports what it still gets."""
    conn.sendall(b"bye")
    conn.shutdown(socket.SHUT_WR)
    got = b""
    conn.settimeout(10)
    try:
        while True:
            d = conn.recv(65536)
            if not d:
                break
            got += d
    except (OSError, socket.timeout):
        pass
    srv.report(("after-fin", got))


def starttls_server(ctx):
    """SMTP-like: plain "HELLO" -> "250 hello", "STARTTLS" -> "220 go ahead",
    then TLS: "ping" -> "pong"."""
    def run(conn, srv):
        conn.sendall(b"220 thaw-test ready\r\n")
        assert recv_line(conn).strip() == b"HELLO"
        conn.sendall(b"250 hello\r\n")
        assert recv_line(conn).strip() == b"STARTTLS"
        conn.sendall(b"220 go ahead\r\n")
        tls = ctx.wrap_socket(conn, server_side=True)
        line = recv_line(tls).strip()
        tls.sendall(b"pong\r\n" if line == b"ping" else b"what?\r\n")
        srv.report(("tls", line))
        tls.close()
    return run
