"""`asgi.fetch` with hand-written ASGI apps, through the real binary: the
http scope, request bodies in chunks, streamed responses (SSE), lifespan
once per instance, errors before and after the response starts."""
import re
import concurrent.futures
import http.client
import json
import socket
import time

import pytest

from thawlib import raw_request, read_response, write_main

WORKER = '''
    import asyncio, os
    import asgi
    from workers import WorkerEntrypoint, asgi as workers_asgi

    MARKS = @MARKS@
    VERSION = @VERSION@
    started = 0  # lifespan startups in this process (0 in the template)


    def mark(name, text=""):
        with open(os.path.join(MARKS, name), "w") as f:
            f.write(text)


    async def wait_mark(name, timeout=10.0):
        end = asyncio.get_running_loop().time() + timeout
        while not os.path.exists(os.path.join(MARKS, name)):
            if asyncio.get_running_loop().time() > end:
                return False
            await asyncio.sleep(0.02)
        return True


    async def send_json(send, data, status=200):
        import json
        body = json.dumps(data).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


    async def lifespan(scope, receive, send):
        global started
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                started += 1
                scope["state"]["from_lifespan"] = "state-%d" % os.getpid()
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                mark("shutdown-%s-%d" % (VERSION, os.getpid()), str(started))
                await send({"type": "lifespan.shutdown.complete"})
                return


    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            return await lifespan(scope, receive, send)
        path = scope["path"]
        if path == "/started":
            return await send_json(send, {"started": started, "pid": os.getpid(),
                                          "state": scope["state"]["from_lifespan"]})
        if path == "/upload":
            sizes, first = [], True
            while True:
                msg = await receive()
                assert msg["type"] == "http.request", msg
                sizes.append([len(msg["body"]), msg.get("more_body", False)])
                if first:
                    mark("got-first-chunk")
                    first = False
                if not msg.get("more_body", False):
                    break
            return await send_json(send, {"messages": sizes})
        if path == "/sse":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            await send({"type": "http.response.body", "body": b"data: one\\n\\n",
                        "more_body": True})
            ok = await wait_mark("client-got-one")
            await send({"type": "http.response.body",
                        "body": b"data: two\\n\\n" if ok else b"data: timeout\\n\\n",
                        "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        if path == "/forever":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            try:
                while True:
                    await send({"type": "http.response.body", "body": b"tick\\n",
                                "more_body": True})
                    await asyncio.sleep(0.01)
            except OSError:
                mark("forever-ended", "send raised")
                raise
            except asyncio.CancelledError:
                mark("forever-ended", "cancelled")
                raise
        if path == "/raise-before":
            raise ValueError("asgi-boom-before-4711")
        if path == "/raise-after":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"partial", "more_body": True})
            await asyncio.sleep(0.05)
            raise ValueError("asgi-boom-after-4712")
        if path == "/no-content":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        if path == "/cookies":
            await send({"type": "http.response.start", "status": 201,
                        "headers": [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2"),
                                    (b"X-Mixed-Case", b"yes")]})
            await send({"type": "http.response.body", "body": b"made"})
            return
        # everything else: echo the scope
        body = b""
        while True:
            msg = await receive()
            body += msg["body"]
            if not msg.get("more_body"):
                break
        await send_json(send, {
            "type": scope["type"], "asgi": scope["asgi"],
            "http_version": scope["http_version"], "method": scope["method"],
            "scheme": scope["scheme"], "path": scope["path"],
            "raw_path": scope["raw_path"].decode("latin-1"),
            "query_string": scope["query_string"].decode("latin-1"),
            "root_path": scope["root_path"],
            "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]],
            "client": scope["client"], "server": list(scope["server"]),
            "greeting": scope["env"].GREETING, "body": body.decode(),
        })


    async def no_lifespan(scope, receive, send):
        assert scope["type"] == "http", "this app only speaks http"
        await send_json(send, {"plain": True})


    async def failing_startup(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "db-missing-9931"})
            return
        await send_json(send, {"unreachable": True})


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            how = request.headers.get("x-call", "js_object")
            if how == "plain":
                return await asgi.fetch(no_lifespan, request, self.env)
            if how == "failing":
                return await asgi.fetch(failing_startup, request, self.env)
            if how == "request":
                return await workers_asgi.fetch(app, request, self.env)
            return await asgi.fetch(app, request.js_object, self.env)
'''


def _source(marks, version="v1"):
    return WORKER.replace("@MARKS@", repr(str(marks))).replace("@VERSION@", repr(version))


@pytest.fixture
def marks(tmp_path):
    d = tmp_path / "marks"
    d.mkdir()
    return d


@pytest.fixture
def srv(serve, marks):
    return serve(_source(marks), vars={"GREETING": "hi-from-env"})


def test_http_scope_fields(srv):
    r = raw_request(srv.port, b"GET /a%20b/%C3%A9/x%2Fy?q=1&r=%20z HTTP/1.1\r\n"
                              b"Host: example.test:8443\r\nX-Rep: one\r\nx-rep: two\r\n"
                              b"X-Other: Value\r\nConnection: close\r\n\r\n")
    assert r.status == 200, r
    s = r.json()
    assert s["type"] == "http"
    assert s["asgi"]["version"] == "3.0"
    assert s["http_version"] == "1.1"
    assert s["method"] == "GET"
    assert s["scheme"] == "http"
    assert s["path"] == "/a b/é/x/y"
    assert s["raw_path"] == "/a%20b/%C3%A9/x%2Fy"
    assert s["query_string"] == "q=1&r=%20z"
    assert s["root_path"] == ""
    # the TCP peer as thaw saw it: loopback, the test's own port
    assert s["client"][0] == "127.0.0.1" and 0 < s["client"][1] < 65536, s["client"]
    assert s["server"] == ["example.test", 8443]
    assert s["greeting"] == "hi-from-env"
    # lower-case byte names, repeats kept in order
    reps = [h for h in s["headers"] if h[0] == "x-rep"]
    assert reps == [["x-rep", "one"], ["x-rep", "two"]]
    assert ["x-other", "Value"] in s["headers"]
    assert all(n == n.lower() for n, _ in s["headers"])


def test_scope_default_port_and_request_object(srv):
    """asgi.fetch also takes `request` itself (not .js_object), and
    `from workers import asgi` is the same adapter."""
    r = srv.request("POST", "/echo", body=b"hello body",
                    headers={"Host": "plain.test", "x-call": "request"})
    assert r.status == 200, r
    s = r.json()
    assert s["server"] == ["plain.test", 80]
    assert s["method"] == "POST"
    assert s["body"] == "hello body"
    assert s["query_string"] == ""


def test_request_body_streams_as_http_request_messages(srv, marks):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
    try:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n")
        deadline = time.monotonic() + 10
        while not (marks / "got-first-chunk").exists():
            assert time.monotonic() < deadline, "the app did not get the first chunk early"
            time.sleep(0.02)
        s.sendall(b"6\r\n world\r\n0\r\n\r\n")
        r = read_response(s.makefile("rb"))
    finally:
        s.close()
    assert r.status == 200, r
    msgs = r.json()["messages"]
    assert msgs[0] == [5, True]
    assert msgs[-1][1] is False
    assert sum(n for n, _ in msgs) == 11
    assert all(more for _, more in msgs[:-1])


def test_sse_arrives_incrementally(srv, marks):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
    try:
        s.sendall(b"GET /sse HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        assert b" 200 " in f.readline()
        head = []
        while True:
            line = f.readline()
            if line in (b"\r\n", b""):
                break
            head.append(line.decode().lower())
        assert any("content-type: text/event-stream" in h for h in head), head
        assert any("transfer-encoding: chunked" in h for h in head), head
        got = b""
        while b"data: one\n\n" not in got:
            size = f.readline()
            assert size, "closed before the first event"
            got += f.read(int(size.split(b";")[0], 16))
            f.readline()
        (marks / "client-got-one").touch()
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                break
            got += f.read(size)
            f.readline()
    finally:
        s.close()
    assert got == b"data: one\n\ndata: two\n\n"


def test_client_leaving_mid_stream_stops_the_app(srv, marks):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
    try:
        s.sendall(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        assert b" 200 " in f.readline()
        assert b"tick" in f.read(200)
        f.close()  # the socket stays open while its file is
    finally:
        s.close()
    ended = marks / "forever-ended"
    deadline = time.monotonic() + 10
    while not ended.exists():
        assert time.monotonic() < deadline, f"the app kept running\n{srv.log()[-2000:]}"
        time.sleep(0.05)
    assert srv.get("/started").status == 200


def test_lifespan_startup_once_per_instance(srv):
    first = srv.get("/started").json()
    assert first["started"] == 1  # ran before the first request was handled
    assert first["state"] == "state-%d" % first["pid"]  # scope["state"] from lifespan
    for _ in range(5):
        assert srv.get("/started").json()["started"] == 1
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        seen = list(pool.map(lambda _: srv.get("/started").json(), range(24)))
    for d in seen:  # however many instances served these, each started once
        assert d["started"] == 1, seen


def test_lifespan_shutdown_when_instance_exits(srv, marks):
    pid = srv.get("/started").json()["pid"]
    write_main(srv.workdir, _source(marks, "v2"))  # a new version retires the instance
    srv.poll_until(lambda r: r.status == 200 and r.json()["pid"] != pid, "/started")
    done = marks / f"shutdown-v1-{pid}"
    deadline = time.monotonic() + 10
    while not done.exists():
        assert time.monotonic() < deadline, f"no lifespan shutdown\n{srv.log()[-2000:]}"
        time.sleep(0.05)
    assert done.read_text() == "1"


def test_app_without_lifespan_support(srv):
    r = srv.get("/", headers={"x-call": "plain"})
    assert r.status == 200, r
    assert r.json() == {"plain": True}
    assert "Traceback" not in srv.log()


def test_lifespan_startup_failed_gives_500(srv):
    r = srv.get("/", headers={"x-call": "failing"})
    assert r.status == 500, r
    assert "db-missing-9931" in srv.wait_log("db-missing-9931")


def test_exception_before_start_is_500_with_traceback(srv):
    r = srv.get("/raise-before")
    assert r.status == 500, r
    log = srv.wait_log("asgi-boom-before-4711")
    assert "Traceback" in log
    # tagged with the worker and the request it failed
    assert re.search(r"\[test-worker req=\d+\] ValueError: asgi-boom-before-4711", log), log
    assert srv.get("/started").status == 200  # the instance still serves


def test_exception_after_start_aborts_the_stream(srv):
    c = srv.conn()
    try:
        c.request("GET", "/raise-after")
        r = c.getresponse()
        assert r.status == 200
        with pytest.raises((http.client.IncompleteRead, ConnectionError)):
            r.read()
    finally:
        c.close()
    assert "asgi-boom-after-4712" in srv.wait_log("asgi-boom-after-4712")
    assert srv.get("/started").status == 200


def test_null_body_status_and_repeated_response_headers(srv):
    r = srv.get("/no-content")
    assert r.status == 204 and r.body == b""
    r = srv.get("/cookies")
    assert r.status == 201 and r.body == b"made"
    assert r.headers.get_all("set-cookie") == ["a=1", "b=2"]
    assert r.header("x-mixed-case") == "yes"
