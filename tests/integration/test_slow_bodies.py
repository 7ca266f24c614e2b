"""Slow request bodies do not starve a worker (issue 15 item 4): 300
clients that declare a 1 MB body and trickle it take no more than half of
a body-reading worker's slots (instances x concurrency); the rest of their
bodies are read whole before they get one, so other clients are served
while they are still sending."""
import resource
import socket
import threading
import time

import pytest

from thawlib import raw_request

WORKER = '''
    from workers import WorkerEntrypoint, Response

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            body = await request.bytes()
            return Response("ok %d" % len(body))
'''

SLOW = 300


def test_300_slow_bodies_leave_slots_for_others(serve):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1024:
        if hard != resource.RLIM_INFINITY and hard < 1024:
            pytest.skip(f"needs 1024 file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    # 8 slots; no minimum rate and a long gap allowed, so only the slot
    # rule can keep the worker free (the clocks are tested elsewhere)
    srv = serve(WORKER, args=("--max-instances", "2", "--concurrency", "4",
                              "--queue-timeout", "5000", "--body-min-rate", "0",
                              "--body-timeout", "120000"))
    assert srv.get("/").status == 200
    slow = []
    stop = threading.Event()
    try:
        for _ in range(SLOW):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
            s.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nz")
            slow.append(s)

        def trickle():
            while not stop.wait(2):
                for s in slow:
                    try:
                        s.sendall(b"z")
                    except OSError:
                        pass
        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        time.sleep(1)  # let thaw take them all in
        for i in range(10):
            body = b"x" * (i + 1)
            r = raw_request(srv.port, b"POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: %d"
                                      b"\r\nConnection: close\r\n\r\n" % len(body) + body,
                            timeout=30)
            assert (r.status, r.body) == (200, b"ok %d" % len(body)), (i, r)
        # the slow ones are still being read, not refused
        answered = 0
        for s in slow:
            s.setblocking(False)
            try:
                if s.recv(1, socket.MSG_PEEK):
                    answered += 1
            except BlockingIOError:
                pass
            except OSError:
                answered += 1
        assert answered == 0, f"{answered} slow clients were answered or cut"
    finally:
        stop.set()
        for s in slow:
            s.close()
