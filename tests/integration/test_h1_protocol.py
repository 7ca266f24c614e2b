"""Protocol edges every port answers the same way (src/server/h1-rules.c):
400 for several Host headers and for HTTP/1.1 without one, 501 for CONNECT
and TRACE, 505 for versions other than 1.0/1.1, and an absolute-form target
routed by its authority (RFC 9112 §3.2.2) - on the public port of
`thaw dev` and `thaw serve`, and on both admin ports."""
import json

import pytest

from servelib import project, serve_factory  # noqa: F401
from thawlib import free_port, raw_request

WORKER = '''
    from workers import WorkerEntrypoint, Response

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            return Response("seen " + request.method + " " + request.url)
'''

EDGES = [
    (b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", 400, b"Host"),
    (b"GET / HTTP/1.1\r\n\r\n", 400, b"Host"),
    (b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 501, b"CONNECT"),
    (b"TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", 501, b"TRACE"),
    (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", 505, b"HTTP/1.1"),
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, b"HTTP/1.1"),
]
IDS = ["duplicate-host", "no-host-1.1", "connect", "trace", "http-9.9", "http-2.0"]


@pytest.fixture
def dev(serve):
    admin = free_port()
    srv = serve(WORKER, args=("--admin", f"127.0.0.1:{admin}"))
    srv.admin_port = admin
    return srv


@pytest.mark.parametrize("raw,status,word", EDGES, ids=IDS)
def test_public_port_edges(dev, raw, status, word):
    r = raw_request(dev.port, raw)
    assert r.status == status, r
    assert word in r.body, r
    assert b"seen" not in r.body, "the worker was called"
    assert dev.get("/").status == 200


def test_http10_without_host_is_served(dev):
    r = raw_request(dev.port, b"GET /x HTTP/1.0\r\n\r\n")
    assert r.status == 200 and r.body.startswith(b"seen GET http://"), r


@pytest.mark.parametrize("raw,status,word", EDGES, ids=IDS)
def test_dev_admin_port_edges(dev, raw, status, word):
    raw = raw.replace(b" / ", b" /healthz ")
    r = raw_request(dev.admin_port, raw)
    assert r.status == status, r


def test_absolute_form_is_routed_by_its_authority(serve_factory, tmp_path):
    srv = serve_factory()
    srv.cli("deploy", str(project(tmp_path, "alpha", "alpha")))
    srv.cli("deploy", str(project(tmp_path, "beta", "beta")))
    # the authority wins over Host (RFC 9112 §3.2.2)
    r = raw_request(srv.port, b"GET http://alpha.localhost/x?q=1 HTTP/1.1\r\n"
                              b"Host: beta.localhost\r\n\r\n")
    assert (r.status, r.body) == (200, b"alpha"), r
    r = raw_request(srv.port, b"GET http://beta.localhost HTTP/1.1\r\n"
                              b"Host: alpha.localhost\r\n\r\n")
    assert (r.status, r.body) == (200, b"beta"), r
    # scheme and host are case-insensitive (RFC 9110 §4.2.3)
    r = raw_request(srv.port, b"GET HTTP://ALPHA.localhost/ HTTP/1.1\r\n"
                              b"Host: beta.localhost\r\n\r\n")
    assert (r.status, r.body) == (200, b"alpha"), r
    r = raw_request(srv.port, b"GET http://nobody.localhost/ HTTP/1.1\r\n"
                              b"Host: alpha.localhost\r\n\r\n")
    assert r.status == 404, r


@pytest.mark.parametrize("raw,status,word", EDGES, ids=IDS)
def test_serve_ports_edges(serve_factory, tmp_path, raw, status, word):
    srv = serve_factory()
    srv.cli("deploy", str(project(tmp_path, "alpha", "alpha")))
    r = raw_request(srv.port, raw.replace(b"Host: x\r\n", b"Host: alpha.localhost\r\n"))
    assert r.status == status, r
    assert r.body != b"alpha", "the worker was called"
    # the admin API: before authentication, like any malformed request
    r = raw_request(srv.admin_port, raw.replace(b" / ", b" /v1/workers "))
    assert r.status == status, r
    status_, body = srv.api("GET", "/v1/workers")
    assert status_ == 200, body
