"""An instance's channel (python/thaw_runtime/instance.py) with the C
codec: the frames of one write come apart and are answered together, a
request head split across reads is put back together, and a malformed
frame stops the instance after the good frames before it are answered.
A real Instance on a socketpair, its loop in this process."""
import socket
import struct
import sys
import threading
import types

sys.modules.setdefault("_thaw", types.ModuleType("_thaw"))  # the zygote's module

from thaw_runtime import instance, ipc  # noqa: E402
from thaw_runtime.handler import resolve_handler  # noqa: E402
from workers import Response, WorkerEntrypoint  # noqa: E402
from workers._env import Env  # noqa: E402


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response(f"{request.method} {request.url} {request.headers.get('x-n')}")


def worker():
    mod = types.ModuleType("entry")
    mod.Default = Default
    return instance.Worker("test", mod, resolve_handler(mod), Env())


def request(sid, n):
    head = ipc.fields("GET", f"http://h/{n}", ":client-ip", "127.0.0.1", ":client-port", "1",
                      "host", "h", "x-n", str(n))
    return ipc.frame(ipc.REQ_HEAD, sid, head) + ipc.frame(ipc.REQ_END, sid)


def answers(data):
    """{sid: body} of the complete responses in data."""
    out, bodies, off = {}, {}, 0
    while off + ipc.HEADER_SIZE <= len(data):
        ln, ftype, _flags, _r, sid = struct.unpack_from("<IBBHI", data, off)
        payload = data[off + ipc.HEADER_SIZE:off + ipc.HEADER_SIZE + ln]
        if ftype == ipc.RESP_BODY:
            bodies[sid] = bodies.get(sid, b"") + payload
        elif ftype == ipc.RESP_END:
            out[sid] = bodies.pop(sid, b"").decode()
        off += ipc.HEADER_SIZE + ln
    return out


def serve(send):
    """Runs an instance until it stops; send(sock) plays the supervisor
    from a thread. Returns what the instance wrote, and whether it stopped
    by itself (else, after 5 s of silence, EOF stops it)."""
    a, b = socket.socketpair()
    inst = instance.Instance(b.detach(), worker(), 1)
    received = bytearray()
    stuck = []

    def supervisor():
        send(a)
        a.settimeout(5)
        try:
            while True:
                chunk = a.recv(65536)
                if not chunk:
                    break
                received.extend(chunk)
        except socket.timeout:
            stuck.append(True)
            a.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=supervisor)
    t.start()
    inst.run()  # returns when the loop stops
    inst.sock.close()
    t.join(10)
    a.close()
    return bytes(received), not stuck


def test_frames_of_one_write_and_a_head_split_across_reads():
    import time

    def send(sock):
        sock.sendall(request(1, 1) + request(2, 2) + request(3, 3))
        whole = request(4, 4)
        sock.sendall(whole[:7])  # not even a frame header
        time.sleep(0.1)
        sock.sendall(whole[7:30])
        time.sleep(0.1)
        sock.sendall(whole[30:])
        time.sleep(0.2)
        sock.shutdown(socket.SHUT_WR)  # EOF: the instance stops
    data, _ = serve(send)
    assert answers(data) == {n: f"GET http://h/{n} {n}" for n in (1, 2, 3, 4)}


def test_a_malformed_frame_stops_the_instance_after_the_good_ones(capsys):
    def send(sock):
        bad = struct.pack("<IBBHI", 0, ipc.REQ_END, 0, 1, 9)  # reserved bits set
        sock.sendall(request(1, 1) + request(2, 2) + bad + request(3, 3))
        # no EOF: the instance must stop by itself
    data, stopped = serve(send)
    assert stopped, "the instance went on after a malformed frame"
    assert answers(data) == {1: "GET http://h/1 1", 2: "GET http://h/2 2"}
    assert "malformed frame from the supervisor (bad frame header)" in capsys.readouterr().err
