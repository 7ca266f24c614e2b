"""In-process tests of the ASGI/WSGI adapters (workers.asgi, workers.wsgi):
the edge cases that are slow or awkward to reach over HTTP. The
integration tests (tests/integration/test_asgi*.py, test_wsgi.py) cover
the same adapters behind the real binary."""
import asyncio

import asgi
import workers
from workers import Request, Response
from workers import _asgi_lifespan
from workers._asgi_pipe import HIGH_WATER
from workers._asgi_scope import http_scope
from workers._env import Env
from workers._wsgi_environ import build_environ

run = asyncio.run


def _fresh_lifespans():
    # each asyncio.run is a new loop: forget lifespans from earlier tests
    _asgi_lifespan._by_app.clear()


async def _json_app(scope, receive, send, data=b'{"ok":true}'):
    if scope["type"] == "lifespan":
        raise RuntimeError("no lifespan here")
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})


def test_import_asgi_is_workers_asgi():
    assert asgi is workers.asgi
    from workers import wsgi
    assert wsgi is workers.wsgi


def test_scope_of_a_built_request():
    req = Request("https://h.test/p%2Fq?x=%41", method="patch",
                  headers=[("X-A", "1"), ("x-a", "2")])
    s = http_scope(req, Env({"K": "v"}), state={"s": 1})
    assert s["scheme"] == "https" and s["server"] == ("h.test", 443)
    assert s["path"] == "/p/q" and s["raw_path"] == b"/p%2Fq"
    assert s["query_string"] == b"x=%41"
    assert s["method"] == "PATCH"
    assert s["headers"] == [(b"x-a", b"1"), (b"x-a", b"2")]
    assert s["env"].K == "v"
    assert s["state"] == {"s": 1}


def test_finished_response_is_sized():
    _fresh_lifespans()
    resp = run(asgi.fetch(_json_app, Request("http://x/"), None))
    assert isinstance(resp, Response)
    assert resp._thaw_parts()[3] == b'{"ok":true}'  # bytes: the runtime sends a length


def test_app_returning_without_start_is_500():
    _fresh_lifespans()

    async def lazy(scope, receive, send):
        if scope["type"] == "lifespan":
            raise RuntimeError
    assert run(asgi.fetch(lazy, Request("http://x/"))).status == 500


def test_invalid_status_is_500():
    _fresh_lifespans()

    async def bad(scope, receive, send):
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 99, "headers": []})
            await send({"type": "http.response.body", "body": b""})
    assert run(asgi.fetch(bad, Request("http://x/"))).status == 500


def test_response_headers_from_the_app_are_checked():
    _fresh_lifespans()

    def app_with(headers):
        async def app(scope, receive, send):
            if scope["type"] == "http":
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": b"x"})
        return app

    ok = run(asgi.fetch(app_with([(b"X-Name", b" v1 "), (b"set-cookie", b"a=1"),
                                  (b"Set-Cookie", b"b=\xe9")]), Request("http://x/")))
    assert ok.status == 200
    # names lower-case, values stripped, repeats kept, latin-1 text
    assert ok._thaw_parts()[2] == [("x-name", "v1"), ("set-cookie", "a=1"),
                                   ("set-cookie", "b=\xe9")]
    for bad in ([(b"x-a", b"1\r\nx-injected: 1")], [(b"bad name", b"1")], [(b"", b"1")],
                [(b"x-a", b"1\x00")]):
        assert run(asgi.fetch(app_with(bad), Request("http://x/"))).status == 500, bad


def test_lifespan_starts_once_for_concurrent_first_requests():
    _fresh_lifespans()
    calls = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            await asyncio.sleep(0.01)  # requests pile up meanwhile
            calls.append("startup")
            await send({"type": "lifespan.startup.complete"})
            await receive()
            return
        assert calls == ["startup"]
        await _json_app(scope, receive, send)

    async def main():
        rs = await asyncio.gather(*(asgi.fetch(app, Request("http://x/")) for _ in range(5)))
        return [r.status for r in rs]
    assert run(main()) == [200] * 5
    assert calls == ["startup"]


def test_slow_reader_pauses_the_app():
    """The app's send waits once HIGH_WATER bytes are queued."""
    _fresh_lifespans()
    sent = []

    async def flood(scope, receive, send):
        if scope["type"] == "lifespan":
            raise RuntimeError
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(200):
            await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
            sent.append(1)
        await send({"type": "http.response.body", "body": b""})

    async def main():
        resp = await asgi.fetch(flood, Request("http://x/"))
        await asyncio.sleep(0.05)
        paused_at = len(sent)
        data = await resp.bytes()
        return paused_at, len(data)
    paused_at, n = run(main())
    assert paused_at * 65536 <= HIGH_WATER + 65536
    assert n == 200 * 65536


def test_closing_the_body_stops_the_app():
    """What the runtime does when the client leaves mid-response."""
    _fresh_lifespans()
    ended = []

    async def forever(scope, receive, send):
        if scope["type"] == "lifespan":
            raise RuntimeError
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"t", "more_body": True})
                await asyncio.sleep(0)
        except (OSError, asyncio.CancelledError) as e:
            ended.append(type(e).__name__)
            raise

    async def main():
        resp = await asgi.fetch(forever, Request("http://x/"))
        body = resp._thaw_parts()[3]
        assert await body.__anext__() == b"t"
        await body.aclose()
        for _ in range(500):
            await asyncio.sleep(0.01)
            if ended:
                return
    run(main())
    assert ended


def test_receive_after_body_waits_for_the_end_of_the_exchange():
    """Starlette's StreamingResponse listens for http.disconnect while it
    streams: receive() must not report one before the response is over."""
    _fresh_lifespans()
    seen = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            raise RuntimeError
        while True:  # the whole request body first
            msg = await receive()
            seen.append(msg)
            if not msg.get("more_body"):
                break

        async def listen():
            seen.append(await receive())
        listener = asyncio.ensure_future(listen())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(3):
            await asyncio.sleep(0.01)
            assert not listener.done()
            await send({"type": "http.response.body", "body": b"%d" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        await listener

    async def main():
        resp = await asgi.fetch(app, Request("http://x/", method="POST", body=b"hi"))
        return await resp.bytes()
    assert run(main()) == b"012"
    assert b"".join(m["body"] for m in seen[:-1]) == b"hi"
    assert seen[-1] == {"type": "http.disconnect"}


def test_asgi_env_dependency_helper():
    _fresh_lifespans()
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    async def root(env=asgi.env):
        return {"v": env.V}

    resp = run(asgi.fetch(app, Request("http://x/"), Env({"V": "from-env"})))
    assert resp.status == 200
    assert run(resp.json()) == {"v": "from-env"}


def test_wsgi_environ_of_a_built_request():
    req = Request("https://h.test:444/a%20b?q", method="POST", body=b"abc",
                  headers={"content-type": "text/plain"})
    e = build_environ(req, b"abc", "ENV")
    assert e["wsgi.url_scheme"] == "https"
    assert (e["SERVER_NAME"], e["SERVER_PORT"]) == ("h.test", "444")
    assert e["PATH_INFO"] == "/a b" and e["QUERY_STRING"] == "q"
    assert e["CONTENT_TYPE"].startswith("text/plain") and e["CONTENT_LENGTH"] == "3"
    assert e["wsgi.input"].read() == b"abc"
    assert e["workers.env"] == "ENV"


def test_wsgi_start_response_twice_is_500():
    from workers import wsgi

    def app(environ, start_response):
        start_response("200 OK", [])
        start_response("200 OK", [])
        return [b""]
    assert run(wsgi.fetch(app, Request("http://x/"))).status == 500


def test_wsgi_error_replaces_headers_before_the_body():
    from workers import wsgi
    import sys

    def app(environ, start_response):
        start_response("200 OK", [("x-first", "1")])
        try:
            raise KeyError("late")
        except KeyError:
            start_response("503 Service Unavailable", [("x-second", "1")], sys.exc_info())
        return [b"sorry"]
    resp = run(wsgi.fetch(app, Request("http://x/")))
    assert resp.status == 503
    assert resp.headers.get("x-second") == "1" and not resp.headers.has("x-first")
    assert run(resp.bytes()) == b"sorry"


# -- the adapter's fast path (an app that answers without waiting runs
#    inside fetch(), with no loop turn) and its fallbacks --------------------

def _run_without_suspending(coro):
    """The outcome of `coro` when it finishes in a single step, which it
    must: nothing it awaits may yield to the event loop."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError("it waited on the event loop")


def test_an_app_that_does_not_wait_answers_without_a_loop_turn():
    _fresh_lifespans()
    from fastapi import FastAPI

    api = FastAPI()

    @api.get("/items/{n}")
    async def item(n: int):
        return {"n": n}

    async def raw(scope, receive, send):
        if scope["type"] == "lifespan":
            raise RuntimeError
        assert await receive() == {"type": "http.request", "body": b"",
                                   "more_body": False}
        await _json_app(scope, receive, send)

    async def main():
        await asgi.fetch(api, Request("http://x/items/0"))  # lifespan startup
        await asgi.fetch(raw, Request("http://x/"))
        r1 = _run_without_suspending(asgi.fetch(api, Request("http://x/items/7")))
        r2 = _run_without_suspending(asgi.fetch(raw, Request("http://x/")))
        return r1, r2
    r1, r2 = run(main())
    assert r1.status == 200 and r1._thaw_parts()[3] == b'{"n":7}'  # sized
    assert r1.headers.get("content-type") == "application/json"
    assert r2._thaw_parts()[3] == b'{"ok":true}'


def test_streaming_app_streams_while_it_runs():
    """An app still running after http.response.start keeps running in its
    own task: its first chunk reaches the client before it finishes."""
    _fresh_lifespans()
    log = []
    gate = asyncio.Event()  # bound to a loop at its first wait

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            raise RuntimeError
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        log.append("sent one")
        await gate.wait()
        await send({"type": "http.response.body", "body": b"two"})
        log.append("done")

    async def main():
        resp = await asgi.fetch(app, Request("http://x/"))
        body = resp._thaw_parts()[3]
        assert not isinstance(body, bytes)  # streamed, no length
        first = await body.__anext__()
        assert first == b"one" and log == ["sent one"]  # the app is still waiting
        gate.set()
        rest = [c async for c in body]
        return rest
    assert run(main()) == [b"two"]
    assert log == ["sent one", "done"]


def test_app_awaiting_before_the_response_gets_a_sized_response():
    _fresh_lifespans()

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            raise RuntimeError
        await asyncio.sleep(0.01)  # a database, an upstream fetch, ...
        await _json_app(scope, receive, send)

    resp = run(asgi.fetch(app, Request("http://x/")))
    assert resp.status == 200 and resp._thaw_parts()[3] == b'{"ok":true}'


def test_work_after_the_complete_body_does_not_hold_the_response():
    """Background tasks (Starlette runs them after the body): the response
    goes out sized at once; the app finishes later; a failure then is
    logged, not sent."""
    _fresh_lifespans()
    log = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            raise RuntimeError
        await _json_app(scope, receive, send)
        await asyncio.sleep(0.01)
        log.append("background done")
        raise KeyError("background failure")

    async def main():
        resp = await asgi.fetch(app, Request("http://x/"))
        assert log == []
        assert resp._thaw_parts()[3] == b'{"ok":true}'
        for _ in range(100):
            await asyncio.sleep(0.01)
            if log:
                break
        await asyncio.sleep(0)
    run(main())
    assert log == ["background done"]


def test_the_app_keeps_one_task_across_its_first_wait():
    """The first step runs inside fetch() but already in the app's own task:
    anyio cancel scopes (Starlette's task groups) entered before the app
    first waits are exited in the task that entered them."""
    _fresh_lifespans()
    import anyio
    seen = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            raise RuntimeError
        seen.append(asyncio.current_task())
        with anyio.CancelScope():
            await asyncio.sleep(0)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"a", "more_body": True})
            await asyncio.sleep(0)
        seen.append(asyncio.current_task())
        await send({"type": "http.response.body", "body": b"b"})

    async def main():
        resp = await asgi.fetch(app, Request("http://x/"))
        return asyncio.current_task(), await resp.bytes()
    caller, data = run(main())
    assert data == b"ab"
    assert seen[0] is seen[1] and seen[0] is not caller


def test_app_raising_cancelled_error_itself_is_500():
    """Not taken for a cancel of fetch() (the runtime would then send
    nothing at all)."""
    _fresh_lifespans()

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            raise RuntimeError
        raise asyncio.CancelledError()
    assert run(asgi.fetch(app, Request("http://x/"))).status == 500


def test_context_variables_the_app_sets_stay_in_its_context():
    import contextvars
    _fresh_lifespans()
    var = contextvars.ContextVar("var", default="caller")

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            raise RuntimeError
        assert var.get() == "caller"
        var.set("app")
        await _json_app(scope, receive, send)

    async def main():
        await asgi.fetch(app, Request("http://x/"))
        return var.get()
    assert run(main()) == "caller"


def test_scope_url_parts_match_urlsplit():
    """The scope's URL parts come from string operations and caches; they
    must be what urllib's urlsplit gives."""
    from urllib.parse import unquote_to_bytes, urlsplit

    def reference(url):
        p = urlsplit(url)
        scheme = p.scheme or "http"
        try:
            port = p.port
        except ValueError:
            port = None
        if port is None:
            port = 443 if scheme == "https" else 80
        raw = p.path.encode("utf-8", "surrogateescape") or b"/"
        return (scheme, (p.hostname or "", port),
                unquote_to_bytes(raw).decode("utf-8", "replace"), raw,
                p.query.encode("utf-8", "surrogateescape"))

    urls = ["http://h/", "http://h", "http://h?q", "https://H.Test:444/a%20b?q=1#f",
            "http://h/p?x?y#z", "http://h/p#a?b", "http://[::1]:8080/x",
            "http://u:p@h:81/", "http://h:abc/", "http://h:99999/", "http://h:/",
            "HTTP://h/x", "http://h/\udcff%41", "http://h/caf\u00e9?\u00e9",
            "https://h/%2F/%zz", "http:///p", "ftp://h/x", "/relative?x=1"]
    for url in urls * 2:  # the second time from the caches
        s = http_scope(Request._thaw_new("GET", url, [], None), None)
        got = (s["scheme"], s["server"], s["path"], s["raw_path"], s["query_string"])
        assert got == reference(url), url
