"""workers.fetch's Python side: how it shapes the call to the supervisor
and the Response it builds, with a stand-in transport (the real one is
exercised end to end by tests/integration/test_fetch.py)."""
import asyncio
import json

import pytest

import js
from workers import Headers, Request, Response, _bind, fetch

run = asyncio.run


class Pending:
    def __init__(self, head, chunks, error=None):
        self.head, self.chunks, self.error = head, list(chunks), error
        self.has_body = True
        self.cancelled = False

    async def result(self):
        return self.head

    async def next_chunk(self):
        if self.chunks:
            return self.chunks.pop(0)
        if self.error:
            raise _bind.JsException("Error", self.error)
        return None

    def cancel(self):
        self.cancelled = True


class Transport:
    def __init__(self, head=None, chunks=(b"hello ", b"world"), error=None):
        self.calls = []
        self.pending = Pending(head or {"status": 200, "statusText": "OK",
                                        "headers": [["content-type", "text/plain"]],
                                        "url": "http://x/", "redirected": False},
                               chunks, error)

    def bind_call(self, binding, op, args, body):
        self.calls.append((binding, op, json.loads(args), body))
        return self.pending


@pytest.fixture
def transport():
    t = Transport()
    _bind._set_transport(t)
    yield t
    _bind._set_transport(None)


def test_call_shape_and_response(transport):
    async def go():
        r = await fetch("http://x/", method="post", headers={"X-A": "1"}, body="hé")
        return r, await r.text()
    r, text = run(go())
    binding, op, args, body = transport.calls[0]
    assert (binding, op) == ("__fetch", "fetch")
    assert args == {"url": "http://x/", "method": "POST", "redirect": "follow", "body": True,
                    "headers": [["x-a", "1"], ["content-type", "text/plain;charset=UTF-8"]]}
    assert body == "hé".encode()
    assert isinstance(r, Response) and r.status == 200 and r.ok and r.status_text == "OK"
    assert r.headers.get("content-type") == "text/plain" and text == "hello world"


def test_request_object_js_fetch_and_init_dict(transport):
    req = Request("http://x/r", method="PUT", headers=Headers([("a", "1"), ("a", "2")]),
                  body=b"\x00\xff")
    run(fetch(req))
    run(js.fetch("http://x/", {"method": "DELETE", "redirect": "manual"}))
    (_, _, a1, b1), (_, _, a2, b2) = transport.calls
    assert a1["method"] == "PUT" and a1["headers"] == [["a", "1"], ["a", "2"]]
    assert b1 == b"\x00\xff"
    assert a2["method"] == "DELETE" and a2["redirect"] == "manual" and b2 is None


def test_body_stream_and_error_after_head():
    t = Transport(chunks=[b"a"], error="TimeoutError: too slow")
    _bind._set_transport(t)
    try:
        async def go():
            r = await fetch("http://x/")
            got = []
            with pytest.raises(TimeoutError, match="too slow"):
                async for c in r.body:
                    got.append(c)
            return got
        assert run(go()) == [b"a"]
    finally:
        _bind._set_transport(None)


@pytest.mark.parametrize("kwargs,exc,needle", [
    ({"method": "GET", "body": "x"}, TypeError, "GET or HEAD"),
    ({"redirect": "maybe"}, TypeError, "redirect must be"),
    ({"mode": "cors"}, TypeError, "unknown option"),
    ({"signal": object()}, TypeError, "signal"),
])
def test_bad_options(transport, kwargs, exc, needle):
    with pytest.raises(exc, match=needle):
        run(fetch("http://x/", **kwargs))
    assert transport.calls == []


def test_outside_a_request_says_so():
    with pytest.raises(RuntimeError, match="top level"):
        run(fetch("http://x/"))
