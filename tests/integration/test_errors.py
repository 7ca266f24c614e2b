"""Handler failures: exceptions, non-Response results, missing handler,
instances that die mid-request, clients that disconnect mid-response.
Each gives a clear error and the next request is served normally."""
import socket
import time

import pytest

WORKER = '''
    import asyncio, ctypes, os
    from workers import WorkerEntrypoint, Response
    from urllib.parse import urlparse

    MARKER = {marker!r}
    DIED = MARKER + ".died-pid"

    async def endless():
        try:
            while True:
                yield b"x" * 4096
                await asyncio.sleep(0.005)
        finally:
            with open(MARKER, "w") as f:
                f.write("closed")

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            path = urlparse(request.url).path
            if path == "/raise":
                raise ValueError("kaboom-4821 in handler")
            if path == "/int":
                return 42
            if path == "/dict":
                return {{"not": "a response"}}
            if path in ("/exit", "/segv"):
                with open(DIED, "w") as f:
                    f.write(str(os.getpid()))
                if path == "/exit":
                    os._exit(1)
                ctypes.string_at(0)
            if path == "/endless":
                return Response(endless())
            return Response("fine pid=%d" % os.getpid())
'''

NAME = "errors-worker-7731"


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "endless-closed"


@pytest.fixture
def srv(serve, marker):
    return serve(WORKER.format(marker=str(marker)), name=NAME)


def _served_normally(srv):
    r = srv.get("/ok")
    assert r.status == 200, r
    assert r.body.startswith(b"fine"), r


def test_handler_exception_is_500_with_traceback_in_log(srv):
    r = srv.get("/raise")
    assert r.status == 500, r
    assert len(r.body) < 2000, "500 body should be short"
    log = srv.wait_log("Traceback", "kaboom-4821", NAME)
    assert "Traceback" in log and "kaboom-4821" in log and "ValueError" in log, log
    assert NAME in log, "log does not name the worker"
    _served_normally(srv)


@pytest.mark.parametrize("path,typename", [("/int", "int"), ("/dict", "dict")])
def test_non_response_result_is_500_naming_type(srv, path, typename):
    r = srv.get(path)
    assert r.status == 500, r
    assert typename in r.text, r
    _served_normally(srv)


@pytest.mark.parametrize("path", ["/exit", "/segv"])
def test_instance_death_is_502_then_new_instance(srv, marker, path):
    _served_normally(srv)
    r = srv.get(path)
    assert r.status == 502, r
    dead = int((marker.parent / (marker.name + ".died-pid")).read_text())
    after = srv.get("/ok")
    assert after.status == 200, after
    assert after.body != b"fine pid=%d" % dead, "dead instance answered again"
    _served_normally(srv)


def test_client_disconnect_releases_instance(srv, marker):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
    s.sendall(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    while len(got) < 32 * 1024:
        data = s.recv(65536)
        assert data, "server closed the endless stream"
        got += data
    assert b" 200 " in got.split(b"\r\n", 1)[0]
    s.close()
    deadline = time.monotonic() + 5
    while not marker.exists():
        assert time.monotonic() < deadline, \
            "generator's finally did not run after the client went away"
        time.sleep(0.05)
    _served_normally(srv)


def test_missing_handler_is_500_naming_it(serve):
    srv = serve('''
        from workers import Response

        def not_a_handler(request, env):
            return Response("never")
    ''')
    r = srv.get("/")
    assert r.status == 500, r
    assert "fetch" in r.text, r   # "Default.fetch" / "on_fetch"
    r = srv.get("/")
    assert r.status == 500, r


def test_entrypoint_without_fetch_is_500(serve):
    srv = serve('''
        from workers import WorkerEntrypoint, Response

        class Default(WorkerEntrypoint):
            async def other(self, request):
                return Response("never")
    ''')
    r = srv.get("/")
    assert r.status == 500, r
    assert "fetch" in r.text, r
