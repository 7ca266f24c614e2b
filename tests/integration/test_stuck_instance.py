"""A handler that never yields (`while True: pass`, a long C call) holds its
instance's event loop: at request_timeout_ms the client gets 504 and thaw
sends CANCEL, which that loop never reads. thaw must not route later
requests into the same stuck instance, and must kill it (THAW_CANCEL_GRACE_MS
after the CANCEL, src/pool/tick.c) even when cpu_ms is far away; a fresh
instance serves the next requests. An instance whose loop runs answers the
CANCEL and lives on (test_pool.py's wall-clock test)."""
import socket
import struct
import time

import pytest

from thawlib import is_alive, proc_identity, thaw_processes

WORKER = '''
import asyncio
from urllib.parse import urlparse
from workers import WorkerEntrypoint, Response

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        path = urlparse(request.url).path
        if path == "/spin":
            while True:
                pass
        if path == "/hang":
            await asyncio.sleep(30)
        if path == "/later":
            await asyncio.sleep(2.5)   # takes the loop once /hang runs too
            while True:
                pass
        return Response("ok")
'''

# 2 s: room for a cold fork on a loaded machine; cpu_ms is ten minutes, so
# only the stuck-instance check can end the spinning one within this test
ARGS = ("--request-timeout", "2s", "--cpu-ms", "600000", "--prefork", "0")


def _only_instance(srv):
    pids = thaw_processes(srv.proc.pid, "thaw-instance")
    assert len(pids) == 1, pids
    return proc_identity(pids[0])


def _wait_gone(ident, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end and is_alive(ident):
        time.sleep(0.1)
    return not is_alive(ident)


@pytest.mark.parametrize("max_instances", [None, 1])
def test_instance_stuck_after_a_timeout_is_replaced(serve, max_instances):
    args = ARGS + (("--max-instances", str(max_instances)) if max_instances else ())
    srv = serve(WORKER, args=args)
    assert srv.get("/").status == 200
    stuck = _only_instance(srv)          # /spin goes to this warm idle one
    r = srv.get("/spin", timeout=30)
    assert r.status == 504, r
    assert "request_timeout_ms" in r.text, r.text
    for _ in range(4):
        r = srv.get("/", timeout=30)
        assert r.status == 200, r
        assert r.text == "ok"
    assert _wait_gone(stuck), "the stuck instance still runs"
    assert "never yields" in srv.log()
    assert srv.get("/").status == 200


def test_other_requests_on_a_stuck_instance_get_503_naming_why(serve):
    # concurrency 2 on one instance: /later's handler takes the loop once
    # /hang waits there too; /later's 504 comes first, its CANCEL is never
    # read, and /hang goes with the instance. Under heavy load /hang's own
    # timeout may come first: the 503 is checked when it came.
    args = ("--request-timeout", "4s", "--cpu-ms", "600000", "--prefork", "0",
            "--max-instances", "1", "--concurrency", "2")
    srv = serve(WORKER, args=args)
    assert srv.get("/").status == 200
    stuck = _only_instance(srv)
    later = srv.conn(timeout=30)
    later.request("GET", "/later")
    time.sleep(1.5)
    hang = srv.conn(timeout=30)
    hang.request("GET", "/hang")
    r = later.getresponse()
    assert r.status == 504, r.status
    h = hang.getresponse()
    body = h.read().decode()
    assert h.status in (503, 504), (h.status, body)
    if h.status == 503:
        assert "never yields" in body and "replaced" in body, body
    assert _wait_gone(stuck), "the stuck instance still runs"
    assert srv.get("/").status == 200


def test_an_instance_stuck_after_its_client_left_is_replaced(serve):
    # the client gives up before any timeout: thaw sends CANCEL then too,
    # and an instance that does not answer it is the stuck kind. Before,
    # that CANCEL was not watched: the spinning instance looked idle and
    # took the next request, which waited for request_timeout_ms (60 s)
    args = ("--request-timeout", "60s", "--cpu-ms", "600000", "--prefork", "0",
            "--max-instances", "1")
    srv = serve(WORKER, args=args)
    assert srv.get("/").status == 200
    stuck = _only_instance(srv)
    gone = srv.conn(timeout=30)
    gone.request("GET", "/spin")
    time.sleep(0.5)                       # it reached the handler
    # a reset, as a proxy or browser that gives up sends (a plain EOF after
    # a whole request may be a half-close: thaw still answers then)
    gone.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    gone.close()
    assert _wait_gone(stuck), "the stuck instance still runs"
    assert "never yields" in srv.log() and "its client left" in srv.log()
    r = srv.get("/", timeout=30)
    assert r.status == 200 and r.text == "ok", r
