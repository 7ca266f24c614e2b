"""Outbound fetch (`workers.fetch`, `js.fetch`): black-box, through real
HTTP requests to a worker that fetches from HTTP servers this test starts
on loopback. Loopback is refused by thaw's egress policy unless the config
allows it, so most workers here allow 127.0.0.0/8."""
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from thawlib import REPO, HTTP_TIMEOUT, read_response

ALLOW_LOOPBACK = {"egress": {"allow": ["127.0.0.0/8"]}}


# ---------------------------------------------------------------- upstream

def pattern(n):
    """n deterministic bytes."""
    block = hashlib.sha256(b"thaw").digest() * 2048  # 64 KiB
    reps, rest = divmod(n, len(block))
    return block * reps + block[:rest]


class Upstream(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, host="127.0.0.1", family=socket.AF_INET):
        self.address_family = family
        super().__init__((host, 0), Handler)
        self.hits = []
        self.stop_event = threading.Event()
        self.broken = threading.Event()  # a streamed body's reader went away
        self.lock = threading.Lock()
        self.inflight = 0
        self.max_inflight = 0
        self.gate_target = 0
        self.gate_open = False
        self.cond = threading.Condition(self.lock)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self):
        return self.server_address[1]

    def url(self, path="/", host="127.0.0.1"):
        return f"http://{host}:{self.port}{path}"

    def close(self):
        self.stop_event.set()
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, status, body=b"", ctype="text/plain", headers=()):
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_any(self):
        srv = self.server
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        srv.hits.append((self.command, self.path))
        route = url.path
        if route == "/echo":
            headers = {}
            for k, v in self.headers.items():
                headers.setdefault(k.lower(), []).append(v)
            out = {"method": self.command, "path": self.path, "headers": headers,
                   "body": body.decode("latin-1"), "body_len": len(body),
                   "body_sha": hashlib.sha256(body).hexdigest()}
            self.send(200, json.dumps(out).encode(), "application/json")
        elif route == "/status":
            self.send_response(int(q["code"]), q.get("reason"))
            self.send_header("content-length", "0")
            self.send_header("x-thing", "a")
            self.send_header("x-thing", "b")
            self.end_headers()
        elif route == "/json":
            self.send(200, b'{"a": 1, "b": [1, 2, "\\u00e9"]}', "application/json")
        elif route == "/bytes":
            data = pattern(int(q["n"]))
            if q.get("chunked"):
                self.send_response(200)
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for i in range(0, len(data), 100000):
                    part = data[i:i + 100000]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send(200, data, "application/octet-stream")
        elif route == "/redirect":
            self.send(int(q.get("code", 302)), b"moved", headers=[("location", q["to"])])
        elif route == "/loop":
            self.send(302, headers=[("location", "/loop")])
        elif route == "/hang":
            srv.stop_event.wait(60)
        elif route == "/infinite":
            self.send_response(200)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                while not srv.stop_event.is_set():
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    time.sleep(0.002)
            except OSError:
                srv.broken.set()
        elif route == "/gate":
            # hold each request until gate_target are in flight at once
            with srv.cond:
                srv.inflight += 1
                srv.max_inflight = max(srv.max_inflight, srv.inflight)
                if srv.inflight >= srv.gate_target:
                    srv.gate_open = True  # stays open as they leave
                srv.cond.notify_all()
                srv.cond.wait_for(lambda: srv.gate_open, timeout=20)
            self.send(200, b"gate " + q.get("i", "").encode())
            with srv.cond:
                srv.inflight -= 1
        else:
            self.send(404, b"no route " + route.encode())

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_any


@pytest.fixture
def upstream():
    servers = []

    def make(**kw):
        s = Upstream(**kw)
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.close()


# ---------------------------------------------------------------- the worker

DRIVER = """
import hashlib
import js
from workers import Response, WorkerEntrypoint, fetch

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        spec = await request.json()
        kw = {k: spec[k] for k in ("method", "headers", "redirect", "body") if k in spec}
        if "body_latin1" in spec:
            kw["body"] = spec["body_latin1"].encode("latin-1")
        f = js.fetch if spec.get("js") else fetch
        out = spec.get("out", "summary")
        try:
            r = await f(spec["url"], **kw)
            if out == "proxy":
                return r
            if out == "hash":
                h, n = hashlib.sha256(), 0
                async for chunk in r.body:
                    h.update(chunk)
                    n += len(chunk)
                return Response.json({"status": r.status, "sha": h.hexdigest(), "n": n})
            if out == "json":
                return Response.json({"status": r.status, "data": await r.json()})
            if out == "bytes":
                data = await r.bytes()
                return Response.json({"n": len(data), "sha": hashlib.sha256(data).hexdigest()})
            if out == "head":
                return Response.json({"status": r.status, "body_is_none": r.body is None})
            return Response.json({"status": r.status, "ok": r.ok, "statusText": r.status_text,
                                  "url": r.url, "redirected": r.redirected,
                                  "headers": list(r.headers.items()), "text": await r.text()})
        except Exception as e:
            return Response.json({"error": type(e).__name__, "message": str(e)})
"""


def call(srv, spec, timeout=HTTP_TIMEOUT):
    r = srv.request("POST", "/", body=json.dumps(spec), timeout=timeout)
    assert r.status == 200, (r, srv.log()[-3000:])
    return r.json()


@pytest.fixture
def driver(serve):
    """driver(**thaw_table) -> a running thaw serving DRIVER."""
    def make(thaw=ALLOW_LOOPBACK, fmt="toml"):
        return serve(DRIVER, thaw=thaw, fmt=fmt) if thaw is not None else serve(DRIVER, fmt=fmt)
    return make


# ---------------------------------------------------------------- basics

def test_get_with_status_headers_and_text(driver, upstream):
    up = upstream()
    srv = driver()
    out = call(srv, {"url": up.url("/echo?x=1"), "headers": {"X-Token": "abc", "Accept": "a/b"}})
    assert out["status"] == 200 and out["ok"] is True
    assert out["url"] == up.url("/echo?x=1") and out["redirected"] is False
    echo = json.loads(out["text"])
    assert echo["method"] == "GET" and echo["path"] == "/echo?x=1"
    assert echo["headers"]["x-token"] == ["abc"]
    assert echo["headers"]["accept"] == ["a/b"]
    assert echo["body_len"] == 0 and "content-length" not in echo["headers"]
    assert ("content-type", "application/json") in [tuple(h) for h in out["headers"]]


def test_post_put_patch_delete_with_bodies(driver, upstream):
    up = upstream()
    srv = driver()
    out = call(srv, {"url": up.url("/echo"), "method": "POST", "body": "héllo",
                     "headers": [["x-a", "1"], ["x-a", "2"]]})
    echo = json.loads(out["text"])
    assert echo["method"] == "POST"
    assert echo["body"].encode("latin-1") == "héllo".encode()
    assert echo["headers"]["content-type"] == ["text/plain;charset=UTF-8"]
    assert echo["headers"]["x-a"] == ["1", "2"]
    assert "expect" not in echo["headers"]

    raw = bytes(range(256)) * 10
    out = call(srv, {"url": up.url("/echo"), "method": "PUT",
                     "body_latin1": raw.decode("latin-1")})
    echo = json.loads(out["text"])
    assert echo["method"] == "PUT" and echo["body_sha"] == hashlib.sha256(raw).hexdigest()
    assert "content-type" not in echo["headers"]  # bytes: no made-up type

    out = call(srv, {"url": up.url("/echo"), "method": "post"})  # normalised
    echo = json.loads(out["text"])
    assert echo["method"] == "POST" and echo["headers"]["content-length"] == ["0"]

    for method in ("PATCH", "DELETE"):
        out = call(srv, {"url": up.url("/echo"), "method": method, "body": "{}",
                         "headers": {"content-type": "application/json"}})
        echo = json.loads(out["text"])
        assert echo["method"] == method and echo["body"] == "{}"
        assert echo["headers"]["content-type"] == ["application/json"]


def test_large_request_body(driver, upstream):
    up = upstream()
    srv = driver()
    raw = pattern(3 * 1024 * 1024 + 17)
    out = call(srv, {"url": up.url("/echo"), "method": "POST",
                     "body_latin1": raw.decode("latin-1")}, timeout=60)
    echo = json.loads(out["text"])
    assert echo["body_len"] == len(raw)
    assert echo["body_sha"] == hashlib.sha256(raw).hexdigest()


def test_status_codes_reason_and_repeated_headers(driver, upstream):
    up = upstream()
    srv = driver()
    out = call(srv, {"url": up.url("/status?code=418&reason=Short%20and%20stout")})
    assert out["status"] == 418 and out["ok"] is False
    assert out["statusText"] == "Short and stout"
    assert [v for k, v in out["headers"] if k == "x-thing"] == ["a", "b"]
    out = call(srv, {"url": up.url("/nothing-here")})
    assert out["status"] == 404 and "no route" in out["text"]
    out = call(srv, {"url": up.url("/status?code=204"), "out": "head"})
    assert out == {"status": 204, "body_is_none": True}
    out = call(srv, {"url": up.url("/bytes?n=100"), "method": "HEAD", "out": "head"})
    assert out == {"status": 200, "body_is_none": True}


def test_json_text_and_bytes(driver, upstream):
    up = upstream()
    srv = driver()
    assert call(srv, {"url": up.url("/json"), "out": "json"}) == {
        "status": 200, "data": {"a": 1, "b": [1, 2, "é"]}}
    out = call(srv, {"url": up.url("/bytes?n=100000"), "out": "bytes"})
    assert out == {"n": 100000, "sha": hashlib.sha256(pattern(100000)).hexdigest()}


def test_js_fetch(driver, upstream):
    up = upstream()
    srv = driver()
    out = call(srv, {"url": up.url("/echo"), "js": True, "method": "POST", "body": "from js"})
    echo = json.loads(out["text"])
    assert out["status"] == 200 and echo["body"] == "from js"


def test_request_object_and_options_dict(serve, upstream):
    up = upstream()
    srv = serve(f"""
        import json
        from workers import Request, Response, WorkerEntrypoint, fetch

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                req = Request("{up.url('/echo')}", method="PUT", headers={{"x-r": "1"}},
                              body="req body")
                a = json.loads(await (await fetch(req)).text())
                b = json.loads(await (await fetch("{up.url('/echo')}",
                                                  {{"method": "POST", "body": "dict"}})).text())
                return Response.json([a["method"], a["body"], a["headers"]["x-r"],
                                      b["method"], b["body"]])
        """, thaw=ALLOW_LOOPBACK)
    assert srv.get("/").json() == ["PUT", "req body", ["1"], "POST", "dict"]


def test_bad_arguments_raise_type_error(driver, upstream):
    up = upstream()
    srv = driver()
    for spec, needle in [
        ({"url": "ftp://example.com/"}, "only http and https"),
        ({"url": "file:///etc/passwd"}, "only http and https"),
        ({"url": "not a url"}, "not a valid URL"),
        ({"url": up.url("/echo"), "method": "GET", "body": "x"}, "GET or HEAD"),
        ({"url": up.url("/echo"), "redirect": "sometimes"}, "redirect must be"),
        ({"url": up.url("/echo"), "method": "CONNECT"}, "forbidden"),
        ({"url": up.url("/echo"), "headers": {"x-bad": "a\r\nb"}}, "CR, LF"),
    ]:
        out = call(srv, spec)
        assert out.get("error") in ("TypeError", "ValueError"), (spec, out)
        assert needle in out["message"], (spec, out)


# ---------------------------------------------------------------- streaming

def test_large_body_streams_intact(driver, upstream):
    up = upstream()
    srv = driver()
    n = 50 * 1024 * 1024
    want = hashlib.sha256(pattern(n)).hexdigest()
    out = call(srv, {"url": up.url(f"/bytes?n={n}"), "out": "hash"}, timeout=120)
    assert out == {"status": 200, "sha": want, "n": n}
    out = call(srv, {"url": up.url(f"/bytes?n={n}&chunked=1"), "out": "hash"}, timeout=120)
    assert out == {"status": 200, "sha": want, "n": n}


def test_returning_the_fetched_response_proxies_it(driver, upstream):
    up = upstream()
    srv = driver()
    n = 50 * 1024 * 1024
    r = srv.request("POST", "/", body=json.dumps({"url": up.url(f"/bytes?n={n}&chunked=1"),
                                                  "out": "proxy"}), timeout=120)
    assert r.status == 200 and len(r.body) == n
    assert hashlib.sha256(r.body).hexdigest() == hashlib.sha256(pattern(n)).hexdigest()
    r = srv.request("POST", "/", body=json.dumps({"url": up.url("/status?code=418"),
                                                  "out": "proxy"}))
    assert r.status == 418 and r.headers.get_all("x-thing") == ["a", "b"]


def test_busy_instance_pauses_the_transfer_and_resumes(serve, upstream):
    """An instance that does not read its channel (a blocking sleep) backs
    the supervisor's queue up: the transfer pauses, then resumes intact."""
    up = upstream()
    n = 20 * 1024 * 1024
    srv = serve(f"""
        import hashlib, time
        from workers import Response, WorkerEntrypoint, fetch

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                r = await fetch("{up.url('/bytes')}?n={n}&chunked=1")
                h, got = hashlib.sha256(), 0
                async for chunk in r.body:
                    if got == 0:
                        time.sleep(1.5)  # the loop stops: nothing is read
                    h.update(chunk)
                    got += len(chunk)
                return Response.json({{"n": got, "sha": h.hexdigest()}})
        """, thaw=ALLOW_LOOPBACK)
    r = srv.get("/", timeout=120)
    assert r.json() == {"n": n, "sha": hashlib.sha256(pattern(n)).hexdigest()}


def test_client_gone_mid_stream_stops_the_upstream(driver, upstream):
    up = upstream()
    srv = driver()
    spec = json.dumps({"url": up.url("/infinite"), "out": "proxy"}).encode()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=HTTP_TIMEOUT)
    s.sendall(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (len(spec), spec))
    got = 0
    while got < 2 * 1024 * 1024:
        data = s.recv(65536)
        assert data, "the stream ended early"
        got += len(data)
    s.close()
    # the worker's body iterator is closed, the call cancelled, curl's
    # connection dropped: the upstream's next write fails
    assert up.broken.wait(20), srv.log()[-3000:]
    out = call(srv, {"url": up.url("/json"), "out": "json"})
    assert out["status"] == 200
    assert srv.proc.poll() is None


def test_worker_dropping_an_unread_body_stops_the_upstream(serve, upstream):
    up = upstream()
    srv = serve(f"""
        import gc
        from workers import Response, WorkerEntrypoint, fetch

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                r = await fetch("{up.url('/infinite')}")
                status = r.status
                del r
                gc.collect()
                return Response(f"dropped {{status}}")
        """, thaw=ALLOW_LOOPBACK)
    assert srv.get("/").text == "dropped 200"
    assert up.broken.wait(20), srv.log()[-3000:]


def test_many_concurrent_fetches(driver, upstream):
    up = upstream()
    srv = driver()
    up.gate_target = 100  # each upstream request waits until 100 are in flight
    results = [None] * 200
    barrier = threading.Barrier(200)

    def one(i):
        barrier.wait()
        try:
            results[i] = call(srv, {"url": up.url(f"/gate?i={i}")}, timeout=60)
        except Exception as e:
            results[i] = e
    ts = [threading.Thread(target=one, args=(i,)) for i in range(200)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(90)
    for i, r in enumerate(results):
        assert isinstance(r, dict) and r.get("text") == f"gate {i}", (i, r, srv.log()[-2000:])
    assert up.max_inflight >= 100


def test_many_fetches_from_one_request(serve, upstream):
    up = upstream()
    up.gate_target = 300
    srv = serve(f"""
        import asyncio
        from workers import Response, WorkerEntrypoint, fetch

        async def one(i):
            r = await fetch("{up.url('/gate')}?i=" + str(i))
            return await r.text()

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                texts = await asyncio.gather(*(one(i) for i in range(300)))
                return Response.json(texts)
        """, thaw=ALLOW_LOOPBACK)
    r = srv.get("/", timeout=60)
    assert r.json() == [f"gate {i}" for i in range(300)]
    assert up.max_inflight == 300


# ---------------------------------------------------------------- redirects

def test_redirect_follow(driver, upstream):
    up = upstream()
    srv = driver()
    out = call(srv, {"url": up.url("/redirect?code=302&to=/echo%3Fhop%3D1")})
    assert out["status"] == 200 and out["redirected"] is True
    assert out["url"] == up.url("/echo?hop=1")
    assert json.loads(out["text"])["path"] == "/echo?hop=1"
    # absolute, and a chain of them
    target = up.url("/redirect?code=308&to=" + up.url("/echo"))
    out = call(srv, {"url": up.url("/redirect?code=301&to=") + target.replace("&", "%26")})
    assert out["status"] == 200 and out["url"] == up.url("/echo")


@pytest.mark.parametrize("code,method,want_method,keeps_body", [
    (303, "POST", "GET", False),
    (303, "PUT", "GET", False),
    (301, "POST", "GET", False),
    (302, "POST", "GET", False),
    (302, "PUT", "PUT", True),
    (307, "POST", "POST", True),
    (308, "PUT", "PUT", True),
])
def test_redirect_method_rules(driver, upstream, code, method, want_method, keeps_body):
    up = upstream()
    srv = driver()
    out = call(srv, {"url": up.url(f"/redirect?code={code}&to=/echo"), "method": method,
                     "body": "payload", "headers": {"content-type": "text/x-thing",
                                                    "authorization": "Bearer t"}})
    echo = json.loads(out["text"])
    assert echo["method"] == want_method
    assert echo["body"] == ("payload" if keeps_body else "")
    assert ("content-type" in echo["headers"]) == keeps_body
    assert echo["headers"]["authorization"] == ["Bearer t"]  # same origin


def test_cross_origin_redirect_drops_authorization(driver, upstream):
    a, b = upstream(), upstream()
    srv = driver()
    out = call(srv, {"url": a.url("/redirect?code=307&to=" + b.url("/echo")),
                     "headers": {"authorization": "Bearer t", "x-keep": "1"}})
    echo = json.loads(out["text"])
    assert "authorization" not in echo["headers"] and echo["headers"]["x-keep"] == ["1"]


def test_redirect_manual_and_error(driver, upstream):
    up = upstream()
    srv = driver()
    out = call(srv, {"url": up.url("/redirect?code=302&to=/echo"), "redirect": "manual"})
    assert out["status"] == 302 and out["redirected"] is False and out["text"] == "moved"
    assert ("location", "/echo") in [tuple(h) for h in out["headers"]]
    out = call(srv, {"url": up.url("/redirect?code=302&to=/echo"), "redirect": "error"})
    assert out["error"] == "TypeError" and "redirect" in out["message"]
    assert ("GET", "/echo") not in up.hits


def test_redirect_loop_and_bad_targets(driver, upstream):
    up = upstream()
    srv = driver()
    out = call(srv, {"url": up.url("/loop")})
    assert out["error"] == "ConnectionError" and "more than 20 redirects" in out["message"]
    assert len([h for h in up.hits if h[1] == "/loop"]) == 21
    out = call(srv, {"url": up.url("/redirect?to=ftp://example.com/")})
    assert out["error"] == "TypeError" and "only http and https" in out["message"]


def test_redirect_hop_into_a_forbidden_address_is_refused(driver, upstream):
    up = upstream()
    srv = driver(thaw={"egress": {"allow": ["127.0.0.1"]}})
    out = call(srv, {"url": up.url("/echo")})
    assert out["status"] == 200  # 127.0.0.1 itself is allowed
    for target, rule in [(up.url("/echo", host="127.0.0.2"), "127.0.0.0/8"),
                         ("http://169.254.169.254/latest/meta-data/", "169.254.0.0/16")]:
        out = call(srv, {"url": up.url("/redirect?code=302&to=") + target})
        assert out["error"] == "PermissionError", out
        assert "thaw egress policy refused" in out["message"] and rule in out["message"]
        assert "(a redirect)" in out["message"]


# ---------------------------------------------------------------- egress policy

def test_loopback_refused_without_allow(driver, upstream):
    up = upstream()
    srv = driver(thaw=None)
    out = call(srv, {"url": up.url("/echo")})
    assert out["error"] == "PermissionError"
    msg = out["message"]
    assert msg.startswith("thaw egress policy refused")
    assert "127.0.0.1" in msg and "127.0.0.0/8" in msg and "loopback" in msg
    assert "[thaw.egress]" in msg and "wrangler.toml" in msg
    assert up.hits == []  # no connection was made


@pytest.mark.parametrize("url,rule", [
    ("http://10.1.2.3/", "10.0.0.0/8"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.0.0/16"),
    ("http://172.16.0.1:8080/", "172.16.0.0/12"),
    ("http://192.168.1.1/", "192.168.0.0/16"),
    ("http://100.64.0.1/", "100.64.0.0/10"),
    ("http://0.0.0.0/", "0.0.0.0/8"),
    ("http://[fd00:ec2::254]/", "fc00::/7"),
    ("http://[fe80::1]/", "fe80::/10"),
    ("http://[::ffff:10.0.0.1]/", "10.0.0.0/8"),
    ("http://[64:ff9b::a9fe:a9fe]/", "169.254.0.0/16"),
])
def test_private_and_metadata_addresses_refused(driver, url, rule):
    srv = driver()  # loopback allowed: the others are still refused
    out = call(srv, {"url": url})
    assert out["error"] == "PermissionError", out
    assert "thaw egress policy refused" in out["message"] and rule in out["message"]
    assert f'add "{rule}" to `allow`' in out["message"]


def test_hostname_resolving_to_loopback_is_refused(driver, upstream):
    up = upstream()
    srv = driver(thaw=None)
    out = call(srv, {"url": up.url("/echo", host="localhost")})
    assert out["error"] == "PermissionError"
    assert "connection to localhost (address" in out["message"]
    assert up.hits == []


def test_mapped_loopback_refused_even_when_port_is_served(driver, upstream):
    up = upstream()
    srv = driver(thaw=None)
    out = call(srv, {"url": up.url("/echo", host="[::ffff:127.0.0.1]")})
    assert out["error"] == "PermissionError" and "127.0.0.0/8" in out["message"]
    assert up.hits == []


def test_ipv6_loopback_refused_then_allowed(driver, upstream):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        up = upstream(host="::1", family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback")
    srv = driver(thaw=None)
    out = call(srv, {"url": up.url("/echo", host="[::1]")})
    assert out["error"] == "PermissionError" and "::1/128" in out["message"]
    srv.stop()
    srv = driver(thaw={"egress": {"allow": ["::1"]}})
    out = call(srv, {"url": up.url("/echo", host="[::1]")})
    assert out["status"] == 200, out


def test_allow_in_json_config(driver, upstream):
    up = upstream()
    srv = driver(thaw={"egress": {"allow": ["127.0.0.0/8"]}}, fmt="json")
    assert call(srv, {"url": up.url("/json"), "out": "json"})["status"] == 200


def test_unresolvable_host_and_refused_port(driver, upstream):
    srv = driver()
    out = call(srv, {"url": "http://no-such-host.invalid/"})
    assert out["error"] == "ConnectionError" and "no-such-host.invalid" in out["message"]
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    out = call(srv, {"url": f"http://127.0.0.1:{port}/"})
    assert out["error"] == "ConnectionError" and "failed" in out["message"]


# ---------------------------------------------------------------- limits

def test_timeout(driver, upstream):
    up = upstream()
    srv = driver(thaw={"egress": {"allow": ["127.0.0.0/8"], "timeout_ms": 1000}})
    out = call(srv, {"url": up.url("/hang")})
    assert out["error"] == "TimeoutError", out
    assert "timeout_ms is 1000" in out["message"]
    # and the worker is fine afterwards
    assert call(srv, {"url": up.url("/json"), "out": "json"})["status"] == 200


def test_max_response_bytes(driver, upstream):
    up = upstream()
    srv = driver(thaw={"egress": {"allow": ["127.0.0.0/8"], "max_response_bytes": 100000}})
    out = call(srv, {"url": up.url("/bytes?n=100000"), "out": "bytes"})
    assert out["n"] == 100000
    # a content-length over it: refused before the head reaches the worker
    out = call(srv, {"url": up.url("/bytes?n=100001")})
    assert out["error"] == "JsException" and "max_response_bytes" in out["message"]
    # no length: the body read fails once it is over
    out = call(srv, {"url": up.url("/bytes?n=300000&chunked=1"), "out": "bytes"})
    assert out["error"] == "JsException" and "max_response_bytes" in out["message"]


@pytest.mark.parametrize("egress,needle", [
    ({"allow": ["127.0.0.1/8"]}, 'write "127.0.0.0/8" for the whole range'),
    ({"allow": ["localhost"]}, "hostnames are not accepted"),
    ({"allow": ["10.0.0.0/33"]}, "from 0 to 32"),
    ({"allow": "127.0.0.0/8"}, "must be a list"),
    ({"allow": [8]}, "item 1 is not a string"),
    ({"timeout_ms": 0}, "`thaw.egress.timeout_ms` must be a whole number"),
    ({"max_response_bytes": "big"}, "`thaw.egress.max_response_bytes`"),
    ({"alow": []}, "unknown key `thaw.egress.alow`"),
])
def test_bad_egress_config_is_an_error(serve, egress, needle):
    srv = serve("from workers import Response\nasync def on_fetch(request):\n"
                "    return Response('x')\n", thaw={"egress": egress})
    r = srv.get("/")
    assert r.status == 500
    assert needle in r.text and "wrangler.toml" in r.text, r.text
    assert needle in srv.log()


# ---------------------------------------------------------------- TLS

def _make_ca(tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("no openssl")
    ca_key, ca, key, csr, crt, ext = (tmp_path / n for n in (
        "ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem", "ext.cnf"))
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
        "-out", ca, "-days", "2", "-subj", "/CN=thaw test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=127.0.0.1")
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
        "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext)
    return ca, crt, key


def test_https_with_private_ca(serve, upstream, tmp_path):
    ca, crt, key = _make_ca(tmp_path)
    up = upstream()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    up.socket = ctx.wrap_socket(up.socket, server_side=True)
    url = f"https://127.0.0.1:{up.port}/json"
    source = DRIVER
    srv = serve(source, thaw={"egress": {"allow": ["127.0.0.0/8"]}})
    out = call(srv, {"url": url, "out": "json"})
    assert out["error"] == "ConnectionError" and "certificate" in out["message"].lower()
    srv.stop()
    shutil.copy(ca, tmp_path / "worker" / "ca.pem")
    srv = serve(source, thaw={"egress": {"allow": ["127.0.0.0/8"], "ca_file": "ca.pem"}})
    out = call(srv, {"url": url, "out": "json"})
    assert out == {"status": 200, "data": {"a": 1, "b": [1, 2, "é"]}}


# ---------------------------------------------------------------- the example

def test_example(thaw_factory, upstream, tmp_path):
    up = upstream()
    d = tmp_path / "example"
    shutil.copytree(REPO / "examples" / "fetch", d)
    cfg = (d / "wrangler.toml").read_text()
    assert 'UPSTREAM = "https://example.com"' in cfg
    cfg = cfg.replace('UPSTREAM = "https://example.com"', f'UPSTREAM = "{up.url("")}"')
    (d / "wrangler.toml").write_text(cfg + '\n[thaw.egress]\nallow = ["127.0.0.0/8"]\n')
    srv = thaw_factory(d)
    r = srv.get("/proxy/json")
    assert r.status == 200 and json.loads(r.body)["a"] == 1
    r = srv.request("POST", "/proxy/echo?q=1", body=b"up", headers={"x-h": "v"})
    echo = r.json()
    assert echo["method"] == "POST" and echo["path"] == "/echo?q=1" and echo["body"] == "up"
    assert echo["headers"]["x-h"] == ["v"]
    r = srv.get("/aggregate?path=/json&path=/bytes%3Fn%3D1000&path=/nope")
    res = r.json()["results"]
    assert [x.get("status") for x in res] == [200, 200, 404]
    assert res[1]["bytes"] == 1000
    # unchanged config: loopback is refused, and the summary says why
    (d / "wrangler.toml").write_text(cfg)
    srv.stop()
    srv = thaw_factory(d)
    res = srv.get("/aggregate?path=/json").json()["results"]
    assert res[0]["error"].startswith("PermissionError: thaw egress policy refused")
