"""Request bodies stream from the client to the instance; response bodies
stream back (chunked when no length is known)."""
import hashlib
import json
import os
import socket
import time

from thawlib import read_response

WORKER = '''
    import asyncio, hashlib, os
    from workers import WorkerEntrypoint, Response
    from urllib.parse import urlparse, parse_qs

    MARK_DIR = {mark_dir!r}

    async def wait_for(path, timeout=10.0):
        end = asyncio.get_running_loop().time() + timeout
        while not os.path.exists(path):
            if asyncio.get_running_loop().time() > end:
                return False
            await asyncio.sleep(0.02)
        return True

    async def agen(n):
        for i in range(n):
            yield b"chunk-%d;" % i
            await asyncio.sleep(0)

    def sgen(n):
        for i in range(n):
            yield b"sync-%d;" % i

    async def waiting_gen():
        yield b"first;"
        ok = await wait_for(os.path.join(MARK_DIR, "client-got-first"))
        yield b"second;" if ok else b"timeout;"

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            path = urlparse(request.url).path
            if path == "/digest":
                b = await request.bytes()
                return Response.json({{"n": len(b), "sha": hashlib.sha256(b).hexdigest()}})
            if path == "/iter-body":
                n = chunks = 0
                h = hashlib.sha256()
                async for chunk in request.body:
                    n += len(chunk)
                    chunks += 1
                    h.update(chunk)
                    if chunks == 1:
                        open(os.path.join(MARK_DIR, "server-got-first"), "w").close()
                return Response.json({{"n": n, "sha": h.hexdigest()}})
            if path == "/agen":
                return Response(agen(50))
            if path == "/sgen":
                return Response(sgen(20))
            if path == "/waiting":
                return Response(waiting_gen())
            return Response("?", status=404)
'''


def _serve(serve, tmp_path):
    mark = tmp_path / "marks"
    mark.mkdir()
    return serve(WORKER.format(mark_dir=str(mark))), mark


def test_20mb_body_with_content_length(serve, tmp_path):
    srv, _ = _serve(serve, tmp_path)
    blob = os.urandom(1 << 20) * 20
    r = srv.request("POST", "/digest", body=blob, timeout=60)
    assert r.status == 200, r
    assert r.json() == {"n": len(blob), "sha": hashlib.sha256(blob).hexdigest()}


def test_chunked_upload_read_as_stream(serve, tmp_path):
    srv, _ = _serve(serve, tmp_path)
    parts = [os.urandom(64 * 1024) for _ in range(80)]  # 5 MB in 80 chunks
    c = srv.conn(timeout=60)
    c.request("POST", "/iter-body", body=iter(parts), encode_chunked=True)
    r = c.getresponse()
    body = r.read()
    c.close()
    assert r.status == 200, body
    data = json.loads(body)
    whole = b"".join(parts)
    assert data == {"n": len(whole), "sha": hashlib.sha256(whole).hexdigest()}


def test_request_body_reaches_handler_before_upload_ends(serve, tmp_path):
    """The handler sees the first chunk while the client still holds the rest."""
    srv, mark = _serve(serve, tmp_path)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
    try:
        s.sendall(b"POST /iter-body HTTP/1.1\r\nHost: x\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n")
        deadline = time.monotonic() + 10
        while not (mark / "server-got-first").exists():
            assert time.monotonic() < deadline, \
                "handler did not get the first chunk before the body ended"
            time.sleep(0.02)
        s.sendall(b"6\r\n world\r\n0\r\n\r\n")
        r = read_response(s.makefile("rb"))
    finally:
        s.close()
    assert r.status == 200, r
    assert json.loads(r.body)["n"] == 11


def test_async_generator_body_is_chunked(serve, tmp_path):
    srv, _ = _serve(serve, tmp_path)
    r = srv.get("/agen")
    assert r.status == 200, r
    assert r.header("transfer-encoding") == "chunked"
    assert r.header("content-length") is None
    assert r.body == b"".join(b"chunk-%d;" % i for i in range(50))


def test_sync_iterator_body(serve, tmp_path):
    srv, _ = _serve(serve, tmp_path)
    r = srv.get("/sgen")
    assert r.status == 200, r
    assert r.body == b"".join(b"sync-%d;" % i for i in range(20))


def test_response_streams_before_body_is_complete(serve, tmp_path):
    """The client gets the first chunk while the generator is still waiting."""
    srv, mark = _serve(serve, tmp_path)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
    try:
        s.sendall(b"GET /waiting HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        status = f.readline()
        assert b" 200 " in status, status
        while f.readline() not in (b"\r\n", b""):
            pass
        got = b""
        while b"first;" not in got:
            line = f.readline()   # chunk size
            assert line, "connection closed before the first chunk"
            got += f.read(int(line.split(b";")[0], 16))
            f.readline()
        (mark / "client-got-first").touch()
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                break
            got += f.read(size)
            f.readline()
    finally:
        s.close()
    assert got == b"first;second;"
