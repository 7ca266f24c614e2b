"""Escape 8 of issue 14: a worker deployed on `thaw serve` must reach no
unix socket of the host, whatever its path or mode. Before the fix the
worker's top level and its handler could socket(AF_UNIX) and connect() to
a server socket under /var/lib or /srv (Landlock does not cover connecting
to a pathname socket, file modes do not stop uid 0), and a datagram
socketpair could sendto() any datagram socket (/dev/log).

The test is the host: it listens on unix stream and datagram sockets with
mode 0666 in 0755 directories under /var/lib and /srv (and an abstract
one), deploys a hostile worker through the admin API that tries every way
in, and checks that each try raised PermissionError, that no server saw a
connection or a datagram, that the worker's TCP through thaw still works
(socket.socket() is the supervisor's, its connect the egress policy's) and
that the innocent worker keeps serving."""
import json
import os
import select
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from tenantlib import tenant  # noqa: F401 (fixture)

HOSTILE = r'''
import ctypes, errno, json, os, socket
from workers import Response, WorkerEntrypoint

libc = ctypes.CDLL(None, use_errno=True)


def attempt(fn):
    try:
        fn()
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return "REACHED"


def stream_connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(path)
    s.sendall(b"stream hello")


def dgram_sendto(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(b"dgram hello", path)


def pair_dgram_connect(path):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.connect(path)
    a.send(b"pair hello")


def pair_dgram_sendto(path):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.sendto(b"pair hello", path)


def pair_stream_connect(path):
    # a stream socketpair is allowed (asyncio's self-pipe); it is connected
    # already, and connect() is refused anyway
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    a.connect(path)


def pair_seqpacket():
    socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def raw_socket_syscall():
    # around the socket module: socket(2) itself
    fd = libc.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    os.close(fd)


def raw_socketpair_dgram():
    sv = (ctypes.c_int * 2)()
    if libc.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, 0, sv) < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def tries(env):
    out = {"raw_socket": attempt(raw_socket_syscall),
           "raw_socketpair_dgram": attempt(raw_socketpair_dgram),
           "pair_seqpacket": attempt(pair_seqpacket)}
    for name, path in (("var_lib", env.VAR_LIB_STREAM), ("srv", env.SRV_STREAM),
                       ("abstract", "\0" + env.ABSTRACT)):
        out["stream_" + name] = attempt(lambda: stream_connect(path))
        out["pair_stream_" + name] = attempt(lambda: pair_stream_connect(path))
    for name, path in (("var_lib", env.VAR_LIB_DGRAM), ("srv", env.SRV_DGRAM)):
        out["dgram_" + name] = attempt(lambda: dgram_sendto(path))
        out["pair_dgram_connect_" + name] = attempt(lambda: pair_dgram_connect(path))
        out["pair_dgram_sendto_" + name] = attempt(lambda: pair_dgram_sendto(path))
    return out


class _Env:
    # the host's socket paths, shipped in the bundle (the top level has
    # no env)
    def __init__(self):
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "paths.json")) as f:
            self.__dict__.update(json.load(f))


ENV = _Env()
AT_TOP = tries(ENV)


def listen_on_host():
    # the supervisor's socket lives in the host's network namespace:
    # listen() would bind it to a host port (Landlock does not see that)
    s = socket.socket()
    s.listen(5)
    return s.getsockname()


def fastopen(port):
    s = socket.socket()
    s.sendto(b"x", socket.MSG_FASTOPEN, ("127.0.0.1", port))


def brokered_tcp(port):
    s = socket.socket()  # made by the supervisor: must still work
    s.settimeout(5)
    s.connect(("127.0.0.1", port))  # the egress policy's call: loopback


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        port = int(ENV.INNOCENT_PORT)
        out = {"top": AT_TOP, "handler": tries(ENV),
               "listen": attempt(listen_on_host),
               "fastopen": attempt(lambda: fastopen(port)),
               "brokered_tcp": attempt(lambda: brokered_tcp(port))}
        return Response(json.dumps(out), headers={"content-type": "application/json"})
'''


class HostSockets:
    """Unix sockets of 'the host': permissive modes, outside the hidden
    directories of the sandbox."""

    def __init__(self):
        self.dirs, self.made_srv = [], False
        if not os.path.isdir("/srv"):
            os.mkdir("/srv", 0o755)
            self.made_srv = True
        self.servers, self.paths = [], {}
        for key, parent in (("VAR_LIB", "/var/lib"), ("SRV", "/srv")):
            d = tempfile.mkdtemp(prefix="thaw-test-", dir=parent)
            os.chmod(d, 0o755)
            self.dirs.append(d)
            self.paths[key + "_STREAM"] = self._server(socket.SOCK_STREAM, f"{d}/s.sock")
            self.paths[key + "_DGRAM"] = self._server(socket.SOCK_DGRAM, f"{d}/d.sock")
        name = f"thaw-test-{os.getpid()}-{id(self)}"
        self._server(socket.SOCK_STREAM, "\0" + name)
        self.paths["ABSTRACT"] = name

    def _server(self, kind, path):
        s = socket.socket(socket.AF_UNIX, kind)
        s.bind(path)
        if not path.startswith("\0"):
            os.chmod(path, 0o666)
        if kind == socket.SOCK_STREAM:
            s.listen(16)
        s.setblocking(False)
        self.servers.append(s)
        return path

    def heard(self):
        """What any server received: pending connections or datagrams."""
        got = []
        readable, _, _ = select.select(self.servers, [], [], 0)
        for s in readable:
            try:
                if s.type == socket.SOCK_STREAM:
                    c, _ = s.accept()
                    got.append((s.getsockname(), "connection"))
                    c.close()
                else:
                    got.append((s.getsockname(), s.recv(100)))
            except BlockingIOError:
                pass
        return got

    def close(self):
        for s in self.servers:
            s.close()
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)
        if self.made_srv:
            os.rmdir("/srv")


@pytest.fixture
def host_sockets():
    h = HostSockets()
    yield h
    h.close()


def test_worker_reaches_no_unix_socket_of_the_host(tenant, host_sockets):  # noqa: F811
    srv = tenant.serve()
    vars_ = dict(host_sockets.paths, INNOCENT_PORT=str(srv.port))
    rc, out = tenant.deploy("hostile", HOSTILE, files={"src/paths.json": json.dumps(vars_)})
    assert rc == 0, out
    r = srv.host_get("hostile.localhost")
    assert r.status == 200, r
    res = json.loads(r.text)
    assert host_sockets.heard() == [], res
    for where in ("top", "handler"):
        for name, what in res[where].items():
            assert what.startswith("PermissionError"), (where, name, what)
    # the supervisor's unconnected TCP socket: no host port, no connect
    assert res["listen"].startswith("PermissionError"), res["listen"]
    assert res["fastopen"].startswith("PermissionError"), res["fastopen"]
    # socket.socket() still works and its connect is thaw's (loopback is
    # refused by the egress policy, with its own message)
    assert res["brokered_tcp"].startswith("PermissionError"), res["brokered_tcp"]
    assert "egress" in res["brokered_tcp"], res["brokered_tcp"]
    tenant.innocent_serves()


def test_a_unix_socket_names_why_it_is_refused(tenant):  # noqa: F811
    srv = tenant.serve(innocent=False)
    rc, out = tenant.deploy("curious", r'''
import socket
from workers import Response, WorkerEntrypoint

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        try:
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        except PermissionError as e:
            return Response(str(e))
        return Response("made a unix socket")
''')
    assert rc == 0, out
    r = srv.host_get("curious.localhost")
    assert r.status == 200 and "cannot open sockets of their own" in r.text, r
