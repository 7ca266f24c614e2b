"""workers.Response: bodies (str, bytes, None), status/status_text/headers,
Response.json and Response.redirect."""
import json

import pytest

WORKER = '''
    from workers import WorkerEntrypoint, Response
    from urllib.parse import urlparse

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            path = urlparse(request.url).path
            if path == "/str":
                return Response("héllo wörld")
            if path == "/bytes":
                return Response(b"\\x00\\x01binary\\xff")
            if path == "/none":
                return Response(None)
            if path == "/empty204":
                return Response(None, status=204)
            if path == "/status":
                return Response("short and stout", status=418,
                                status_text="I Am A Teapot",
                                headers={"x-one": "1", "X-Two": "two"})
            if path == "/json":
                return Response.json({"a": [1, 2, {"b": None}], "s": "é"})
            if path == "/json201":
                return Response.json([1, 2, 3], status=201, headers={"x-j": "yes"})
            if path == "/redirect":
                return Response.redirect("https://example.com/elsewhere")
            if path == "/redirect301":
                return Response.redirect("https://example.com/moved", status=301)
            return Response("not found", status=404)
'''


@pytest.fixture
def srv(serve):
    return serve(WORKER)


def test_str_body_defaults_to_text_plain_utf8(srv):
    r = srv.get("/str")
    assert r.status == 200, r
    assert r.body == "héllo wörld".encode()
    assert r.header("content-type") == "text/plain;charset=UTF-8"


def test_bytes_body_has_content_length(srv):
    r = srv.get("/bytes")
    assert r.status == 200, r
    assert r.body == b"\x00\x01binary\xff"
    assert r.header("content-length") == str(len(r.body))
    assert r.header("transfer-encoding") is None


def test_none_body(srv):
    r = srv.get("/none")
    assert (r.status, r.body) == (200, b""), r
    r = srv.get("/empty204")
    assert (r.status, r.body) == (204, b""), r


def test_status_status_text_and_headers(srv):
    r = srv.get("/status")
    assert r.status == 418, r
    assert r.reason == "I Am A Teapot"
    assert r.body == b"short and stout"
    assert r.header("x-one") == "1"
    assert r.header("x-two") == "two"


def test_response_json(srv):
    r = srv.get("/json")
    assert r.status == 200, r
    assert r.header("content-type").startswith("application/json")
    assert json.loads(r.body) == {"a": [1, 2, {"b": None}], "s": "é"}
    r = srv.get("/json201")
    assert r.status == 201, r
    assert r.header("x-j") == "yes"
    assert r.header("content-type").startswith("application/json")
    assert json.loads(r.body) == [1, 2, 3]


def test_response_redirect(srv):
    r = srv.get("/redirect")
    assert r.status == 302, r
    assert r.header("location") == "https://example.com/elsewhere"
    r = srv.get("/redirect301")
    assert r.status == 301, r
    assert r.header("location") == "https://example.com/moved"
