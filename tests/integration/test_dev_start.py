"""thaw dev's first seconds: the port is taken at once (a taken port is an
error right away), and a client that connects before the worker's first
build has begun waits for it instead of getting an error. A browser or a
script that polls the port and sends its request at the first connect is
the user this is for."""
import shutil
import socket
import subprocess
import time

from thawlib import THAW, free_port, read_response, write_worker

HELLO = '''
from workers import WorkerEntrypoint, Response

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("Hello world!")
'''


def _connect_as_soon_as_possible(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "thaw dev exited before its port took a connection"
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=1)
        except OSError:
            time.sleep(0.001)
    raise AssertionError(f"nothing listened on {port} within {timeout}s")


def test_a_request_at_the_first_connect_waits_for_the_first_build(tmp_path, thaw_factory):
    write_worker(tmp_path / "w", HELLO)
    t = thaw_factory(tmp_path / "w", start=False)
    t.spawn()
    s = _connect_as_soon_as_possible(t.port, t.proc)
    # the first connect comes long before the zygote is up: thaw dev
    # answered such requests "500 no version of the worker is built"
    assert not t.ready.is_set()
    with s:
        s.settimeout(60)
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        resp = read_response(s.makefile("rb"))
    assert resp.status == 200, resp.body
    assert resp.body == b"Hello world!"
    assert t.wait_ready_or_exit()
    # every connection that came early is answered too
    socks = [socket.create_connection(("127.0.0.1", t.port), timeout=10) for _ in range(8)]
    for s in socks:
        with s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            assert read_response(s.makefile("rb")).status == 200


def test_a_taken_port_fails_at_once_naming_it(tmp_path):
    write_worker(tmp_path / "w", HELLO)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        p = subprocess.run([str(THAW), "dev", str(tmp_path / "w"), "--port", str(port),
                            "--ip", "127.0.0.1", "--no-sandbox"],
                           capture_output=True, text=True, timeout=60)
    finally:
        taken.close()
    assert p.returncode == 1, p
    assert f"cannot listen on 127.0.0.1:{port}" in p.stderr
    assert "address already in use" in p.stderr.lower()
    assert "Ready on" not in p.stdout


def test_a_zygote_that_never_starts_ends_thaw_dev_with_the_reason(tmp_path):
    # a thaw whose Python side cannot start (here: a thaw-zygote that
    # exits at once): it used to start the zygote again and again, for
    # ever, while a client that connected waited
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shutil.copy(THAW, bindir / "thaw")
    shutil.copy(THAW.parent / "thaw-pidns-init", bindir / "thaw-pidns-init")
    zygote = bindir / "thaw-zygote"
    zygote.write_text("#!/bin/sh\necho 'no Python here' >&2\nexit 1\n")
    zygote.chmod(0o755)
    write_worker(tmp_path / "w", HELLO)
    p = subprocess.run([str(bindir / "thaw"), "dev", str(tmp_path / "w"), "--port", str(free_port()),
                        "--ip", "127.0.0.1", "--no-sandbox"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p
    assert "no Python here" in p.stderr
    assert f"the Python zygote ({zygote}) exited before it was ready" in p.stderr
    assert p.stderr.count("restarting") == 0
    assert "Ready on" not in p.stdout
