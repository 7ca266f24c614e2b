"""HTTP/1.1 behaviour: keep-alive, pipelining (responses in order), HEAD."""
import socket

import pytest

from thawlib import read_response

WORKER = '''
    import asyncio
    from workers import WorkerEntrypoint, Response
    from urllib.parse import urlparse

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            path = urlparse(request.url).path
            if path == "/slow":
                await asyncio.sleep(0.3)
            if request.method == "POST":
                body = await request.bytes()
                return Response(b"posted:" + body)
            return Response("path=" + path)
'''


@pytest.fixture
def srv(serve):
    return serve(WORKER)


def test_keep_alive_reuses_connection(srv):
    c = srv.conn()
    try:
        c.request("GET", "/one")
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"path=/one")
        sock = c.sock
        assert sock is not None, "server closed a keep-alive connection"
        c.request("POST", "/two", body=b"payload")
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"posted:payload")
        c.request("GET", "/three")
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"path=/three")
        assert c.sock is sock, "requests did not share one connection"
    finally:
        c.close()


def test_pipelining_three_requests_in_one_write(srv):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
    try:
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                  b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        rs = [read_response(f) for _ in range(3)]
    finally:
        s.close()
    assert [r.status for r in rs] == [200, 200, 200], rs
    assert [r.body for r in rs] == [b"path=/slow", b"posted:abc", b"path=/c"]


def test_head_gets_no_body(srv):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
    try:
        # if the HEAD response carried a body, the GET response would not parse
        s.sendall(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        head = read_response(f, method="HEAD")
        after = read_response(f)
    finally:
        s.close()
    assert head.status == 200, head
    assert after.status == 200, after
    assert after.body == b"path=/after"
    # http.client also must not see a body
    r = srv.request("HEAD", "/h")
    assert (r.status, r.body) == (200, b"")
