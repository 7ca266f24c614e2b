"""Keep-alive and pipelining on the admin ports: they run on the same
HTTP/1 core as the public port (src/server/h1-conn.c), so a deploy script
that reuses one connection for its requests is served on it, pipelined
requests are answered in order, and `Connection: close`, HTTP/1.0 and an
idle connection end the way they do on the public port."""
import http.client
import json
import socket
import time

import pytest

from churnlib import hello_bundle
from servelib import serve_factory  # noqa: F401
from thawlib import free_port, read_response

WORKER = '''
    from workers import WorkerEntrypoint, Response

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            return Response("ok")
'''


def _ask(c, method, path, token, body=None):
    c.request(method, path, body=body, headers={"Authorization": f"Bearer {token}"})
    r = c.getresponse()
    data = r.read()
    return r.status, data, r.getheader("connection")


def test_a_deploy_script_reuses_one_api_connection(serve_factory, tmp_path):
    srv = serve_factory()
    c = http.client.HTTPConnection("127.0.0.1", srv.admin_port, timeout=60)
    try:
        status, data, _ = _ask(c, "GET", "/v1/workers", srv.token)
        assert status == 200, data
        sock = c.sock
        local = sock.getsockname()
        status, data, _ = _ask(c, "PUT", "/v1/workers/alpha", srv.token,
                               hello_bundle(tmp_path, "alpha", "one"))
        assert status == 200, data
        status, data, _ = _ask(c, "GET", "/v1/workers", srv.token)
        assert status == 200 and "alpha" in data.decode(), data
        assert srv.host_get("alpha.localhost").text == "one"
        status, data, _ = _ask(c, "PUT", "/v1/workers/alpha", srv.token,
                               hello_bundle(tmp_path / "v2", "alpha", "two"))
        assert status == 200 and json.loads(data)["version"] == 2, data
        assert srv.host_get("alpha.localhost").text == "two"
        # a refused request (404) keeps the connection too
        status, data, _ = _ask(c, "GET", "/v1/nothing-here", srv.token)
        assert status == 404, data
        status, data, _ = _ask(c, "DELETE", "/v1/workers/alpha", srv.token)
        assert status == 200, data
        # every answer came on the connection the first one opened
        assert c.sock is sock and sock.getsockname() == local
    finally:
        c.close()


def test_pipelined_api_requests_are_answered_in_order(serve_factory):
    srv = serve_factory()
    auth = f"Authorization: Bearer {srv.token}\r\n".encode()
    s = socket.create_connection(("127.0.0.1", srv.admin_port), timeout=30)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /v1/workers HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
                  b"GET /v1/nope HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
                  b"GET /v1/workers HTTP/1.1\r\nHost: x\r\n" + auth +
                  b"Connection: close\r\n\r\n")
        f = s.makefile("rb")
        answers = [read_response(f) for _ in range(4)]
        assert [r.status for r in answers] == [200, 200, 404, 200], answers
        assert "close" not in answers[1].headers.get("connection", ""), answers[1]
        assert answers[3].headers.get("connection") == "close", answers[3]
        assert f.read() == b"", "the connection stayed open after Connection: close"
    finally:
        s.close()


def _one_answer_then_closed(port, raw, status):
    """raw on a new connection is answered with status and `Connection:
    close`, and then thaw closes the connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        s.sendall(raw)
        f = s.makefile("rb")
        r = read_response(f)
        assert r.status == status and r.headers.get("connection") == "close", r
        assert f.read() == b"", "the connection stayed open"
    finally:
        s.close()


def test_unauthenticated_api_request_closes_its_connection(serve_factory):
    # a stranger's body is never read: the 401 ends the connection
    srv = serve_factory()
    _one_answer_then_closed(srv.admin_port, b"GET /v1/workers HTTP/1.1\r\nHost: x\r\n\r\n", 401)


@pytest.fixture
def dev(serve):
    admin = free_port()
    srv = serve(WORKER, args=("--admin", f"127.0.0.1:{admin}", "--keepalive-timeout", "500ms"))
    srv.admin_port = admin
    return srv


def test_dev_admin_port_keeps_the_connection(dev):
    s = socket.create_connection(("127.0.0.1", dev.admin_port), timeout=30)
    try:
        f = s.makefile("rb")
        for path in (b"/healthz", b"/metrics", b"/nothing", b"/healthz"):
            s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            r = read_response(f)
            assert r.status == (404 if path == b"/nothing" else 200), r
            assert "connection" not in r.headers, r
        # HTTP/1.0 asks for keep-alive explicitly, and is told so
        s.sendall(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = read_response(f)
        assert r.status == 200 and r.headers.get("connection") == "keep-alive", r
        # idle past keepalive_timeout_ms: thaw closes it
        t0 = time.monotonic()
        assert f.read() == b""
        assert time.monotonic() - t0 < 10
    finally:
        s.close()


def test_dev_admin_port_http10_closes_after_the_answer(dev):
    _one_answer_then_closed(dev.admin_port, b"GET /healthz HTTP/1.0\r\n\r\n", 200)
