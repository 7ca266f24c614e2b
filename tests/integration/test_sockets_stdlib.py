"""The standard library's socket API inside a worker goes through thaw's
broker (the supervisor resolves and connects under the egress policy):
unmodified requests, urllib3, httpx (sync and async), http.client, smtplib,
redis and asyncio streams, against real servers this test starts on
loopback (an HTTP and an HTTPS server with a certificate from a CA made
with openssl, an SMTP-like STARTTLS server, a real redis-server)."""
import http.server
import shutil
import socket
import subprocess
import threading
import time
from urllib.parse import urlencode

import pytest

import socketservers as ss
from thawlib import Thaw, free_port, write_worker

# Sandboxed whatever THAW_TEST_DEV_SANDBOX says (conftest.py, thawlib.Thaw):
# sockets must work under seccomp, Landlock and an empty network namespace
SANDBOX = True

WORKER = r'''
import asyncio, json, socket, ssl
from urllib.parse import parse_qsl, urlsplit
from workers import Response, WorkerEntrypoint

CA = None


def ctx():
    return ssl.create_default_context(cafile=CA)


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        global CA
        CA = self.env.CA_FILE
        q = dict(parse_qsl(urlsplit(request.url).query))
        case = q.pop("case")
        try:
            fn = getattr(self, "case_" + case)
            out = await fn(**q) if asyncio.iscoroutinefunction(fn) else fn(**q)
        except Exception as e:
            out = {"raised": type(e).__name__, "message": str(e)}
        return Response(json.dumps(out), headers={"content-type": "application/json"})

    def case_requests(self, url):
        import requests
        r = requests.get(url, verify=CA, timeout=20)
        return {"status": r.status_code, "body": r.text}

    async def case_requests_in_thread(self, url):
        import requests
        r = await asyncio.to_thread(requests.get, url, verify=CA, timeout=20)
        return {"status": r.status_code, "body": r.text}

    def case_urllib3(self, url):
        import urllib3
        pool = urllib3.PoolManager(ca_certs=CA)
        r = pool.request("GET", url)
        return {"status": r.status, "body": r.data.decode()}

    def case_httpx_sync(self, url):
        import httpx
        with httpx.Client(verify=ctx()) as c:
            r = c.get(url)
        return {"status": r.status_code, "body": r.text}

    async def case_httpx_async(self, url):
        import httpx
        async with httpx.AsyncClient(verify=ctx()) as c:
            r = await c.get(url)
        return {"status": r.status_code, "body": r.text}

    def case_http_client(self, host, port, tls="0"):
        import http.client
        if tls == "1":
            c = http.client.HTTPSConnection(host, int(port), context=ctx(), timeout=20)
        else:
            c = http.client.HTTPConnection(host, int(port), timeout=20)
        c.request("GET", "/hello")
        r = c.getresponse()
        out = {"status": r.status, "body": r.read().decode()}
        c.close()
        return out

    def case_smtplib(self, port):
        import smtplib
        with smtplib.SMTP("localhost", int(port), timeout=20) as s:
            s.ehlo()
            s.starttls(context=ctx())
            code, _ = s.ehlo()
            noop = s.noop()[0]
        return {"ehlo": code, "noop": noop}

    def case_redis(self, port):
        import redis
        r = redis.Redis(host="localhost", port=int(port), socket_timeout=20)
        pong = r.ping()
        r.set("thaw", "sockets")
        out = {"ping": pong, "get": r.get("thaw").decode()}
        r.close()
        return out

    async def case_redis_async(self, port):
        import redis.asyncio as aredis
        r = aredis.Redis(host="localhost", port=int(port))
        pong = await r.ping()
        await r.close()
        return {"ping": pong}

    async def case_asyncio_streams(self, port, tls_port):
        reader, writer = await asyncio.open_connection("localhost", int(port))
        writer.write(b"plain\n")
        await writer.drain()
        plain = await reader.readline()
        writer.close()
        await writer.wait_closed()
        reader, writer = await asyncio.open_connection("localhost", int(tls_port))
        await writer.start_tls(ctx(), server_hostname="localhost")
        writer.write(b"tls\n")
        await writer.drain()
        secure = await reader.readline()
        writer.close()
        return {"plain": plain.decode(), "tls": secure.decode()}

    def case_socket_api(self, port):
        infos = socket.getaddrinfo("localhost", int(port), type=socket.SOCK_STREAM)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        fd = s.fileno()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(10)
        s.connect(("127.0.0.1", int(port)))
        same_fd = s.fileno() == fd
        nodelay = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        s.sendall(b"ping")
        got = s.recv(10)
        peer = s.getpeername()
        s.close()
        c = socket.create_connection(("localhost", int(port)), timeout=10)
        c.sendall(b"again")
        again = c.recv(10)
        c.close()
        refused = socket.socket().connect_ex(("127.0.0.1", 1))
        return {"families": sorted({i[0].name for i in infos}), "same_fd": same_fd,
                "nodelay": bool(nodelay), "got": got.decode(), "peer": list(peer),
                "again": again.decode(), "refused": refused}

    def case_once(self, port):
        # a blocking connect in the handler's first step, while the
        # request's body frames are still in the instance's buffer
        c = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
        c.sendall(b"x")
        c.recv(1)
        c.close()
        return {"ok": True}

    async def case_sandbox(self, port):
        import os, threading
        out = {}
        # thaw's own kind of socket: made by the instance itself
        a, b = socket.socketpair()
        a.sendall(b"u")
        out["socketpair"] = b.recv(1).decode()
        a.close(), b.close()
        # non-blocking from the start (type flag), IPv6
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        out["nonblocking"] = s.gettimeout() == 0.0 and not os.get_blocking(s.fileno())
        s.close()
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        out["v6"] = s6.family.name
        s6.close()
        # a plain thread (as a WSGI server's): its calls go through this
        # loop, so wait for it without blocking the loop
        got = []

        def in_thread():
            c = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
            c.sendall(b"t")
            got.append(c.recv(1).decode())
            c.close()
        t = threading.Thread(target=in_thread)
        t.start()
        while t.is_alive():
            await asyncio.sleep(0.01)
        out["thread"] = got
        # the system's CA store is readable, its private keys are not
        out["system_cas"] = len(ssl.create_default_context().get_ca_certs()) > 0
        try:
            os.listdir("/etc/ssl/private")
            out["private"] = "listed"
        except OSError as e:
            out["private"] = type(e).__name__
        try:
            import certifi
            with open(certifi.where()) as f:
                out["certifi"] = "BEGIN CERTIFICATE" in f.read()
        except ImportError:
            out["certifi"] = True
        return out

    def case_errors(self, port):
        out = {}
        try:
            socket.getaddrinfo("no-such-host.invalid", 80)
        except socket.gaierror as e:
            out["gaierror"] = str(e)
        try:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.connect(("127.0.0.1", 53))
        except PermissionError as e:
            out["udp"] = str(e)
        try:
            socket.create_connection(("10.255.255.1", 80), timeout=5)
        except PermissionError as e:
            out["policy"] = str(e)
        try:
            socket.create_connection(("127.0.0.1", int(port)), timeout=5)
        except ConnectionRefusedError as e:
            out["refused"] = str(e)
        return out
'''


class HelloHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        body = f"hello from {self.path}".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True


def start_http(tls=None):
    srv = HTTPServer(("127.0.0.1", 0), HelloHandler)
    if tls is not None:
        srv.socket = tls.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def smtp_handler(ctx):
    """Enough SMTP for smtplib: EHLO (with STARTTLS), STARTTLS, NOOP, QUIT."""
    def run(conn, srv):
        f = conn
        f.sendall(b"220 localhost thaw-test ESMTP\r\n")
        while True:
            line = ss.recv_line(f).strip().upper()
            if not line:
                return
            if line.startswith(b"EHLO"):
                f.sendall(b"250-localhost\r\n250-STARTTLS\r\n250 OK\r\n")
            elif line == b"STARTTLS":
                f.sendall(b"220 go ahead\r\n")
                f = ctx.wrap_socket(f, server_side=True)
                srv.report(("tls",))
            elif line == b"NOOP":
                f.sendall(b"250 OK\r\n")
            elif line == b"QUIT":
                f.sendall(b"221 bye\r\n")
                return
            else:
                f.sendall(b"500 what\r\n")
    return run


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("stdlib")
    ca, cert, key = ss.make_ca(d / "ca")
    tls = ss.server_context(cert, key)
    servers = {"http": start_http(), "https": start_http(tls)}
    tcp = {"echo": ss.Server(ss.echo), "tls_echo": ss.Server(ss.echo, tls),
           "smtp": ss.Server(smtp_handler(tls))}
    redis_proc = None
    redis_port = None
    if shutil.which("redis-server"):
        redis_port = free_port()
        redis_proc = subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", redis_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
    write_worker(d / "w", WORKER, vars={"CA_FILE": str(ca)},
                 thaw={"egress": {"allow": ["127.0.0.0/8", "::1"], "ca_file": str(ca)}})
    t = Thaw(d / "w", d, sandbox=SANDBOX)
    t.start()
    yield {"thaw": t, "http": servers["http"].server_address[1],
           "https": servers["https"].server_address[1], "redis": redis_port,
           **{k: v.port for k, v in tcp.items()}, "tcp": tcp}
    t.stop()
    for s in servers.values():
        s.shutdown()
    for s in tcp.values():
        s.close()
    if redis_proc:
        redis_proc.terminate()
        redis_proc.wait(10)


def call(env, **q):
    t = env["thaw"]
    r = t.get("/?" + urlencode(q), timeout=60)
    assert r.status == 200, (r.status, r.text, t.log()[-3000:])
    out = r.json()
    assert "raised" not in out, (out, t.log()[-3000:])
    return out


@pytest.mark.parametrize("case", ["requests", "requests_in_thread", "urllib3", "httpx_sync",
                                  "httpx_async"])
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_http_clients(env, case, scheme):
    url = f"{scheme}://localhost:{env[scheme]}/hi?x=1"
    assert call(env, case=case, url=url) == {"status": 200, "body": "hello from /hi?x=1"}


@pytest.mark.parametrize("tls", ["0", "1"])
def test_http_client_module(env, tls):
    port = env["https" if tls == "1" else "http"]
    out = call(env, case="http_client", host="localhost", port=port, tls=tls)
    assert out == {"status": 200, "body": "hello from /hello"}


def test_smtplib_starttls(env):
    out = call(env, case="smtplib", port=env["smtp"])
    assert out == {"ehlo": 250, "noop": 250}
    env["tcp"]["smtp"].wait_for(lambda e: e == ("tls",))


def test_redis(env):
    if not env["redis"]:
        pytest.skip("no redis-server")
    assert call(env, case="redis", port=env["redis"]) == {"ping": True, "get": "sockets"}
    assert call(env, case="redis_async", port=env["redis"]) == {"ping": True}


def test_asyncio_open_connection_and_start_tls(env):
    out = call(env, case="asyncio_streams", port=env["echo"], tls_port=env["tls_echo"])
    assert out == {"plain": "plain\n", "tls": "tls\n"}


def test_socket_module(env):
    out = call(env, case="socket_api", port=env["echo"])
    assert "AF_INET" in out["families"]
    assert out["same_fd"] is True and out["nodelay"] is True
    assert out["got"] == "ping" and out["again"] == "again"
    assert out["peer"] == ["127.0.0.1", env["echo"]]
    assert out["refused"] == 111  # ECONNREFUSED


def test_blocking_connect_in_a_handler_runs_it_once(env):
    """Frames read while a blocking socket call waits must not be handled
    twice (each request connects exactly once)."""
    srv = ss.Server(ss.echo)
    try:
        t = env["thaw"]
        for i in range(20):
            body = b"b" * (1000 * i)
            r = t.request("POST", "/?" + urlencode({"case": "once", "port": srv.port}),
                          body=body)
            assert r.status == 200 and r.json() == {"ok": True}, r
        time.sleep(0.5)
        assert [e for e in srv.events if e[0] == "error"] == []
    finally:
        srv.close()
    assert srv.accepted == 20


def test_sandbox_details(env):
    """socketpair (AF_UNIX) is the instance's own; SOCK_NONBLOCK and IPv6
    sockets come from thaw; a plain thread makes and connects sockets
    through the instance's loop; TLS reads the system's CA store (and
    certifi's), not the host's private keys."""
    out = call(env, case="sandbox", port=env["echo"])
    private = out.pop("private")
    assert out == {"socketpair": "u", "nonblocking": True, "v6": "AF_INET6",
                   "thread": ["t"], "system_cas": True, "certifi": True}, out
    if env["thaw"].sandbox:
        assert private in ("PermissionError", "FileNotFoundError"), private


def test_socket_errors(env):
    out = call(env, case="errors", port=ss_closed_port())
    assert "no-such-host.invalid" in out["gaierror"]
    assert "thaw brokers TCP connections only" in out["udp"]
    assert "thaw egress policy refused" in out["policy"] and "10.0.0.0/8" in out["policy"]
    assert "Connection refused" in out["refused"]


def ss_closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_stdlib_respects_the_policy(serve):
    """Without allow, requests to loopback fails with the policy's message."""
    t = serve(WORKER, vars={"CA_FILE": ""})
    srv = start_http()
    try:
        r = t.get("/?" + urlencode({"case": "requests",
                                    "url": f"http://127.0.0.1:{srv.server_address[1]}/"}))
        out = r.json()
        assert out["raised"] == "ConnectionError"
        assert "thaw egress policy refused" in out["message"]
    finally:
        srv.shutdown()



TOP_LEVEL_WORKER = r'''
import socket
from workers import Response, WorkerEntrypoint

try:
    socket.socket().close()
    AT_TOP = "made"
except PermissionError as e:
    AT_TOP = str(e)


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response(AT_TOP)
'''


def test_a_socket_at_the_top_level_says_where_sockets_work(serve):
    """The sandbox refuses the template an inet socket (there is no broker
    to ask yet): the message says to make it in the handler."""
    t = serve(TOP_LEVEL_WORKER)
    r = t.get("/")
    assert r.status == 200
    assert "not at the top level of the worker" in r.text, r.text
