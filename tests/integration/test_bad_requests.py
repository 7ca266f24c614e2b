"""Malformed requests -> 400, oversize headers -> 431, oversize body -> 413,
each with a message, and the next request is served normally."""
import socket

import pytest

from thawlib import raw_request, read_response

WORKER = '''
    from workers import WorkerEntrypoint, Response

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            body = await request.bytes()
            return Response("ok %d" % len(body))
'''


@pytest.fixture
def srv(serve):
    return serve(WORKER, args=("--max-body-size", "1000", "--max-header-size", "4096"))


def _served_normally(srv):
    r = srv.get("/")
    assert (r.status, r.body) == (200, b"ok 0"), r


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nThis line has no colon\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n: no-name\r\n\r\n",
], ids=["request-line", "request-line-extra", "header-no-colon", "header-empty-name"])
def test_malformed_request_is_400(srv, raw):
    r = raw_request(srv.port, raw)
    assert r.status == 400, r
    assert r.body.strip(), "400 without a message"
    _served_normally(srv)


def test_headers_over_limit_is_431(srv):
    big = b"a" * 8000
    r = raw_request(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + big + b"\r\n\r\n")
    assert r.status == 431, r
    assert r.body.strip(), "431 without a message"
    _served_normally(srv)


def test_headers_under_limit_are_fine(srv):
    r = srv.get("/", headers={"X-Medium": "b" * 2000})
    assert (r.status, r.body) == (200, b"ok 0"), r


def test_content_length_over_limit_is_413(srv):
    r = raw_request(srv.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
                    + b"z" * 5000)
    assert r.status == 413, r
    assert r.body.strip(), "413 without a message"
    _served_normally(srv)


def test_body_at_limit_is_fine(srv):
    r = srv.request("POST", "/", body=b"y" * 1000)
    assert (r.status, r.body) == (200, b"ok 1000"), r


def test_chunked_body_over_limit_is_413(srv):
    chunks = b"".join(b"1f4\r\n" + b"c" * 500 + b"\r\n" for _ in range(6)) + b"0\r\n\r\n"
    r = raw_request(srv.port, b"POST / HTTP/1.1\r\nHost: x\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
    assert r.status == 413, r
    assert r.body.strip(), "413 without a message"
    _served_normally(srv)


def test_default_body_limit_is_100mb(serve):
    srv = serve(WORKER)
    # announced length over 100 MB: rejected from the header alone
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
    try:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 104857601\r\n\r\n")
        r = read_response(s.makefile("rb"))
    finally:
        s.close()
    assert r.status == 413, r
    # a body of 2 MB is well under the default
    r = srv.request("POST", "/", body=b"q" * (2 << 20), timeout=30)
    assert (r.status, r.body) == (200, b"ok %d" % (2 << 20)), r


def test_default_header_limit_rejects_huge_headers(serve):
    srv = serve(WORKER)
    r = raw_request(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Huge: "
                    + b"h" * (1 << 20) + b"\r\n\r\n")
    assert r.status == 431, r
    _served_normally(srv)


def test_slow_headers_get_408_and_the_connection_closes(serve):
    import socket
    import time as _time
    srv = serve(WORKER, args=("--header-timeout", "300ms"))
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")   # and then nothing
        t0 = _time.monotonic()
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert b"header_timeout_ms" in data
    assert _time.monotonic() - t0 < 4, "the connection was not closed"
    assert srv.get("/").status == 200


def test_idle_keepalive_connection_is_closed(serve):
    import socket
    srv = serve('''
from workers import WorkerEntrypoint, Response
class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("ok")
''', args=("--keepalive-timeout", "300ms"))
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\nok" not in data:
            data += s.recv(4096)
        assert s.recv(4096) == b"", "idle connection still open after its timeout"
    finally:
        s.close()
