"""workers Request: url, method, headers (case-insensitive, repeats joined),
text(), json(), bytes()."""
import json

import pytest

from thawlib import raw_request

WORKER = '''
    from workers import WorkerEntrypoint, Response
    from urllib.parse import urlparse

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            path = urlparse(request.url).path
            if path == "/info":
                return Response.json({
                    "url": request.url, "method": request.method,
                    "custom": request.headers.get("X-Custom-Thing"),
                    "custom_lower": request.headers.get("x-custom-thing"),
                    "rep": request.headers.get("x-a"),
                    "missing": request.headers.get("x-not-sent"),
                })
            if path == "/text":
                t = await request.text()
                return Response.json({"type": type(t).__name__, "text": t})
            if path == "/json":
                data = await request.json()
                return Response.json({"type": type(data).__name__, "got": data})
            if path == "/bytes":
                b = await request.bytes()
                return Response(type(b).__name__.encode() + b":" + b)
            return Response("?", status=404)
'''


@pytest.fixture
def srv(serve):
    return serve(WORKER)


def test_url_and_method(srv):
    r = srv.get("/info?q=1&r=two", headers={"X-Custom-Thing": "abc"})
    assert r.status == 200, r
    d = r.json()
    assert d["url"] == f"http://127.0.0.1:{srv.port}/info?q=1&r=two"
    assert d["method"] == "GET"
    assert d["custom"] == "abc" and d["custom_lower"] == "abc"
    assert d["missing"] is None
    for m in ("POST", "DELETE", "PATCH"):
        r = srv.request(m, "/info", body=b"")
        assert r.status == 200, r
        assert r.json()["method"] == m


def test_headers_case_insensitive_and_repeats_joined(srv):
    req = (b"GET /info HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
           b"x-custom-thing: lower-sent\r\n"
           b"X-A: one\r\nx-a: two\r\n\r\n") % srv.port
    r = raw_request(srv.port, req)
    assert r.status == 200, r
    d = json.loads(r.body)
    assert d["custom"] == "lower-sent"
    assert d["rep"] == "one, two"


def test_text_body(srv):
    r = srv.request("POST", "/text", body="héllo ünïcode".encode())
    assert r.status == 200, r
    assert r.json() == {"type": "str", "text": "héllo ünïcode"}


def test_json_body(srv):
    payload = {"a": 1, "b": [True, None, "x"], "c": {"d": 2.5}}
    r = srv.request("POST", "/json", body=json.dumps(payload).encode(),
                    headers={"content-type": "application/json"})
    assert r.status == 200, r
    assert r.json() == {"type": "dict", "got": payload}


def test_bytes_body(srv):
    blob = bytes(range(256)) * 4
    r = srv.request("POST", "/bytes", body=blob,
                    headers={"content-type": "application/octet-stream"})
    assert r.status == 200, r
    assert r.body == b"bytes:" + blob
