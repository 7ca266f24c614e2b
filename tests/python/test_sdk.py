"""Tests for the pure-Python SDK a worker imports (`workers`, `js`).

Async APIs are driven with asyncio.run so no pytest plugin is needed.
"""

import asyncio
import os
import subprocess
import sys
from http import HTTPStatus

import pytest

import js
from workers import (
    BodyUsedError,
    Headers,
    Request,
    Response,
    WorkerEntrypoint,
    handler,
)
from workers._env import Env

run = asyncio.run


class FakeBody:
    """Stands in for the runtime's request body: read() and async iteration."""

    def __init__(self, chunks):
        self.chunks = list(chunks)

    async def read(self):
        return b"".join(self.chunks)

    async def __aiter__(self):
        for c in self.chunks:
            yield c


def parts_body(resp):
    """Drain whatever _thaw_parts hands the runtime into one bytes value."""
    body = resp._thaw_parts()[3]
    if body is None or isinstance(body, bytes):
        return body

    async def drain():
        if hasattr(body, "__aiter__"):
            return [c async for c in body]
        return list(body)

    chunks = run(drain())
    assert all(isinstance(c, bytes) and c for c in chunks)
    return b"".join(chunks)


# -- Headers ---------------------------------------------------------------

def test_headers_case_insensitive():
    h = Headers({"Content-Type": "text/html"})
    assert h.get("content-type") == "text/html"
    assert h.get("CONTENT-TYPE") == "text/html"
    assert h.has("Content-type") and "content-TYPE" in h
    assert h["Content-Type"] == "text/html"
    assert h.keys() == ["content-type"]  # stored lower-case, as JS reports


def test_headers_repeats_kept_in_order():
    h = Headers([("Set-Cookie", "a=1"), ("X-A", "1"), ("set-cookie", "b=2")])
    assert h.get("set-cookie") == "a=1, b=2"  # JS Headers.get joins
    assert h.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert h.getSetCookie() == ["a=1", "b=2"]
    assert list(h) == [("set-cookie", "a=1"), ("x-a", "1"), ("set-cookie", "b=2")]
    assert h.items() == list(h)
    assert h.values() == ["a=1", "1", "b=2"]
    assert len(h) == 3
    assert h._thaw_pairs() == list(h)


def test_headers_set_append_delete():
    h = Headers([("a", "1"), ("b", "2"), ("A", "3")])
    h.set("A", "x")  # replaces every "a" with one field at the first's place
    assert h._thaw_pairs() == [("a", "x"), ("b", "2")]
    h.append("B", "3")
    assert h.get("b") == "2, 3"
    h.delete("B")
    assert not h.has("b")
    h["c"] = "4"
    del h["c"]
    del h["never-there"]  # silent, like JS delete
    assert h._thaw_pairs() == [("a", "x")]


def test_headers_missing():
    h = Headers()
    assert h.get("x") is None
    assert h.get("x", "dflt") == "dflt"
    assert h.get_all("x") is None
    assert "x" not in h
    with pytest.raises(KeyError):
        h["x"]


def test_headers_init_forms_and_copy():
    base = Headers({"a": "1"})
    copy = Headers(base)
    copy.set("a", "2")
    assert base.get("a") == "1"  # init from Headers copies
    assert Headers({"set-cookie": ["x=1", "y=2"]}).get_all("set-cookie") == ["x=1", "y=2"]
    assert Headers({"content-length": 5}).get("content-length") == "5"
    assert Headers({"a": "  padded\t"}).get("a") == "padded"
    with pytest.raises(TypeError):
        Headers([("only-one",)])
    with pytest.raises(TypeError):
        Headers("a: b")


@pytest.mark.parametrize("bad", ["\r", "\n", "\0", "x\r\nInjected: 1"])
def test_headers_reject_injection_in_value(bad):
    h = Headers()
    with pytest.raises(ValueError, match="x-evil"):
        h.set("X-Evil", "ok" + bad + "more")
    with pytest.raises(ValueError, match="x-evil"):
        h.append("X-Evil", "ok" + bad + "more")
    with pytest.raises(ValueError, match="x-evil"):
        Headers({"X-Evil": "a" + bad + "b"})
    assert len(h) == 0


@pytest.mark.parametrize("name", ["X-A\r\nB", "X\n", "X\0", "", "has space", "a:b"])
def test_headers_reject_bad_names(name):
    with pytest.raises(ValueError):
        Headers().append(name, "v")


def test_headers_reject_non_latin1_value():
    Headers({"a": "caf\u00e9"})  # U+00E9 fits a byte: allowed
    with pytest.raises(ValueError, match="x-euro"):
        Headers({"X-Euro": "\u20ac"})


def test_headers_repr_hides_values():
    r = repr(Headers({"Authorization": "Bearer secret"}))
    assert "authorization" in r and "secret" not in r


# -- Response: construction and _thaw_parts --------------------------------

def test_response_str_defaults():
    r = Response("héllo")
    status, reason, pairs, body = r._thaw_parts()
    assert (status, reason, body) == (200, None, "héllo".encode())
    assert pairs == [("content-type", "text/plain;charset=UTF-8")]
    assert r.ok and r.status_text == "" and r.statusText == ""
    assert not any(n == "content-length" for n, _ in pairs)  # runtime's job


def test_response_explicit_content_type_wins():
    r = Response("<p>", headers={"Content-Type": "text/html"})
    assert r._thaw_parts()[2] == [("content-type", "text/html")]


def test_response_bytes_like_and_none():
    assert Response(b"\x00\x01")._thaw_parts()[2:] == ([], b"\x00\x01")
    data = bytearray(b"abc")
    r = Response(data)
    data[0] = ord("z")  # mutation after construction must not leak
    assert r._thaw_parts()[3] == b"abc"
    assert Response(memoryview(b"mv"))._thaw_parts()[3] == b"mv"
    assert Response()._thaw_parts() == (200, None, [], None)


def test_response_headers_forms():
    pairs = [("X-A", "1"), ("x-a", "2")]
    for init in (pairs, Headers(pairs)):
        assert Response(b"", headers=init)._thaw_parts()[2] == [("x-a", "1"), ("x-a", "2")]
    assert Response(b"", headers={"X-B": "1"}).headers["x-b"] == "1"


def test_response_status_and_reason():
    r = Response("nope", status=404, status_text="Nope")
    assert r._thaw_parts()[:2] == (404, "Nope")
    assert not r.ok and r.status_text == "Nope"
    s = Response("x", status=HTTPStatus.CREATED)._thaw_parts()[0]
    assert s == 201 and type(s) is int
    with pytest.raises(ValueError):
        Response("x", status=99)
    with pytest.raises(ValueError):
        Response("x", status=600)
    with pytest.raises(TypeError):
        Response("x", status="200")
    with pytest.raises(ValueError):
        Response("x", status_text="OK\r\nX-Injected: 1")


def test_response_null_body_status():
    assert Response(status=204)._thaw_parts() == (204, None, [], None)
    assert Response("", status=304)._thaw_parts()[2:] == ([], None)  # "" tolerated
    with pytest.raises(TypeError):
        Response("body", status=204)


def test_response_rejects_bad_body_types():
    with pytest.raises(TypeError, match="Response.json"):
        Response({"a": 1})
    with pytest.raises(TypeError):
        Response(42)


# -- Response: streaming ---------------------------------------------------

def test_response_streams_sync_iterator_with_str_chunks():
    def gen():
        yield "héllo "
        yield b""  # dropped: an empty chunk could read as end-of-body
        yield b"world"

    r = Response(gen(), headers={"content-type": "text/plain"})
    body = r._thaw_parts()[3]
    assert not isinstance(body, bytes)
    assert parts_body(r) == "héllo world".encode()


def test_response_streams_async_iterator():
    async def agen():
        yield b"a"
        yield "b"
        yield bytearray(b"c")

    r = Response(agen())
    assert hasattr(r._thaw_parts()[3], "__aiter__")
    assert parts_body(r) == b"abc"
    assert r._thaw_parts()[2] == []  # no default content-type for streams


def test_response_stream_bad_chunk_type():
    r = Response(iter([b"ok", 3]))
    with pytest.raises(TypeError):
        parts_body(r)


def test_response_list_of_chunks_streams():
    assert parts_body(Response([b"a", "b"])) == b"ab"


# -- Response: json / redirect / new ---------------------------------------

def test_response_json_static():
    r = Response.json({"a": [1, 2], "é": None}, status=201)
    status, _, pairs, body = r._thaw_parts()
    assert status == 201
    assert pairs == [("content-type", "application/json")]
    assert body == b'{"a": [1, 2], "\\u00e9": null}'  # json.dumps(data), as Cloudflare's SDK
    assert Response.from_json([1])._thaw_parts()[3] == b"[1]"


def test_response_json_keeps_given_content_type():
    r = Response.json({}, headers={"Content-Type": "application/vnd.x+json", "X": "1"})
    assert r.headers.get("content-type") == "application/vnd.x+json"
    assert r.headers["x"] == "1"


def test_response_json_instance_reads_body():
    r = Response.json({"k": "v"})
    assert run(r.json()) == {"k": "v"}


def test_response_redirect():
    r = Response.redirect("https://example.com/next")
    assert r._thaw_parts() == (302, None, [("location", "https://example.com/next")], None)
    assert Response.redirect("/x", 308).status == 308
    for bad in (200, 300, 304, 404):
        with pytest.raises(ValueError):
            Response.redirect("/x", bad)
    with pytest.raises(ValueError):
        Response.redirect("/x\r\nSet-Cookie: a=1")


def test_response_new_js_style():
    assert js.Response is Response
    r = Response.new("hi", status=418, statusText="Teapot", headers={"X": "1"})
    assert r._thaw_parts() == (418, "Teapot", [("x", "1"), ("content-type", "text/plain;charset=UTF-8")], b"hi")
    r2 = Response.new("hi", {"status": 201, "statusText": "Made", "headers": [("y", "2")]})
    assert (r2.status, r2.status_text, r2.headers["y"]) == (201, "Made", "2")
    r3 = Response.new(b"new", r)  # init copied from another Response
    assert (r3.status, r3.status_text, r3.headers["x"]) == (418, "Teapot", "1")
    assert Response.new(status_text="Fine").status_text == "Fine"


def test_js_response_json_static():
    # a JS value is written as JS's Response.json writes it (compact) ...
    obj = js.Object.fromEntries([["ok", True]])
    r = js.Response.json(obj, status=400, statusText="Bad")
    assert r._thaw_parts()[:2] == (400, "Bad")
    assert r._thaw_parts()[3] == b'{"ok":true}'
    # ... a Python value as Cloudflare's SDK does: json.dumps(data)
    assert Response.json({"ok": True, "s": "é"})._thaw_parts()[3] == b'{"ok": true, "s": "\\u00e9"}'


def test_response_replace_body():
    r = Response.json({"a": 1}, status=202).replace_body("x")
    assert (r.status, r.headers["content-type"], r._thaw_parts()[3]) == (202, "application/json", b"x")


# -- Response: reading back ------------------------------------------------

def test_response_read_back_once():
    r = Response("text")
    assert run(r.text()) == "text"
    assert r.body_used and r.bodyUsed
    with pytest.raises(BodyUsedError) as exc:
        run(r.bytes())
    assert isinstance(exc.value, OSError) and isinstance(exc.value, TypeError)


def test_response_read_back_streaming_and_empty():
    async def agen():
        yield b"x"
        yield "y"

    assert run(Response(agen()).bytes()) == b"xy"
    assert run(Response().text()) == ""
    assert Response().body is None
    assert run(Response(b"raw").buffer()).to_bytes() == b"raw"


# -- Request ---------------------------------------------------------------

def thaw_request(chunks=(b'{"name": "thaw"}',), method="POST"):
    return Request._thaw_new(
        method, "https://example.com/p?q=1",
        [("Content-Type", "application/json"), ("x-a", "1"), ("X-A", "2")],
        FakeBody(chunks) if chunks is not None else None,
    )


def test_request_from_runtime():
    req = thaw_request()
    assert (req.method, req.url) == ("POST", "https://example.com/p?q=1")
    assert req.headers.get("content-type") == "application/json"
    assert req.headers.get("X-A") == "1, 2"
    assert req.headers._thaw_pairs()[0] == ("content-type", "application/json")
    assert req.js_object is req
    assert repr(req) == "Request(method='POST', url='https://example.com/p?q=1')"


def test_request_json_text_bytes():
    assert run(thaw_request().json()) == {"name": "thaw"}
    assert run(thaw_request([b"a", b"b"]).text()) == "ab"
    assert run(thaw_request([b"\x00\xff"]).bytes()) == b"\x00\xff"
    assert run(thaw_request([b"\xff"]).text()) == "\ufffd"  # as TextDecoder
    assert run(thaw_request().arrayBuffer()).to_bytes() == b'{"name": "thaw"}'


def test_request_body_read_once():
    req = thaw_request()
    run(req.text())
    with pytest.raises(BodyUsedError, match="Body already used"):
        run(req.json())
    with pytest.raises(TypeError):  # JS-style catch works too
        run(req.bytes())


def test_request_body_stream():
    req = thaw_request([b"one", b"two"])

    async def collect():
        return [c async for c in req.body]

    assert not req.body_used  # touching .body alone does not consume it
    assert run(collect()) == [b"one", b"two"]
    assert req.body_used
    with pytest.raises(OSError):
        run(req.text())


def test_request_without_body():
    req = thaw_request(None, method="GET")
    assert req.body is None
    assert run(req.bytes()) == b""


def test_request_user_built():
    req = Request("https://x.test/", method="post", headers={"X": "1"}, body="hi")
    assert req.method == "POST"  # Fetch upper-cases the standard methods
    assert req.headers["content-type"] == "text/plain;charset=UTF-8"
    assert run(req.text()) == "hi"
    assert Request("https://x.test/").method == "GET"
    assert Request("https://x.test/", method="patch").method == "patch"
    with pytest.raises(TypeError):
        Request("https://x.test/", body="no")  # GET with a body
    with pytest.raises(ValueError):
        Request("https://x.test/", method="GE T")
    with pytest.raises(ValueError):
        Request("https://x.test/", headers={"X": "a\nb"})


def test_request_from_request_transfers_body():
    src = Request("https://x.test/", method="PUT", body=b"data")
    copy = Request(src)
    assert (copy.method, copy.url) == ("PUT", "https://x.test/")
    assert run(copy.bytes()) == b"data"
    assert src.body_used
    req = Request.new("https://x.test/", {"method": "DELETE"})
    assert req.method == "DELETE"


# -- Env -------------------------------------------------------------------

def test_env_access():
    env = Env({"GREETING": "hi", "LIMIT": 3, "CFG": {"a": [1]}, "keys": "k"})
    assert env.GREETING == "hi" and env["LIMIT"] == 3
    assert env.CFG == {"a": [1]}  # JSON values passed through as-is
    assert env.keys == "k"  # no method shadows a binding name
    assert "GREETING" in env and "NOPE" not in env
    assert sorted(env) == ["CFG", "GREETING", "LIMIT", "keys"]
    assert not hasattr(env, "NOPE")


def test_env_missing_binding_message():
    env = Env({"B": "1", "A": "2"})
    with pytest.raises(AttributeError, match=r"'MISSING'.*A, B"):
        env.MISSING
    with pytest.raises(KeyError, match="MISSING"):
        env["MISSING"]
    with pytest.raises(AttributeError, match=r"\(none\)"):
        Env().X


def test_env_repr_hides_values_and_is_read_only():
    env = Env({"API_KEY": "s3cret"})
    assert "API_KEY" in repr(env) and "s3cret" not in repr(env)
    with pytest.raises(AttributeError):
        env.API_KEY = "other"


# -- Entrypoint, handler, js helpers, import cost ----------------------------

def test_worker_entrypoint():
    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            return Response(self.env.NAME)

    ctx, env = object(), Env({"NAME": "w"})
    d = Default(ctx, env)
    assert d.ctx is ctx and d.env is env
    resp = run(d.fetch(thaw_request()))
    assert resp._thaw_parts()[3] == b"w"


def test_handler_is_passthrough():
    async def on_fetch(request, env):
        return Response("x")

    assert handler(on_fetch) is on_fetch


def test_js_helpers():
    assert js.JSON.parse('{"a":1}') == {"a": 1}
    assert js.JSON.stringify({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    assert js.Headers.new({"A": "1"}.items()).get("a") == "1"
    assert js.Object.fromEntries([("a", 1)]) == {"a": 1}


def test_import_is_light():
    # workers is preloaded in every process; keep heavy modules out of it.
    code = ("import sys, workers, js; "
            "print(','.join(m for m in ('inspect', 'typing', 'asyncio', 'http.client') "
            "if m in sys.modules))")
    python_dir = os.path.join(os.path.dirname(__file__), "..", "..", "python")
    out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {python_dir!r}); " + code],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
