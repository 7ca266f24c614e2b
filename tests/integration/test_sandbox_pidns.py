"""Nothing of a worker version survives it (issue 15): the version's
processes live in a pid namespace of their own, whose init
(thaw-pidns-init, src/sandbox/keeper.c) exits when the supervisor lets go
of the version's template channel, and the kernel then kills every process
left in it. A handler that forks a spinning child (double-forked, setsid)
or starts a thread and returns: after a redeploy, a rollback, DELETE, a
template eviction or a restart of thaw, no process of the old version is
left. Processes are found by a marker in their name (comm), unique per
test, by scanning /proc. And a template cannot tell a live host pid from
a dead one: its pid namespace holds none."""
import errno
import os
import secrets
import signal
import subprocess
import time

from servelib import serve_factory  # noqa: F401 (fixture)
from thawlib import wait_for, write_worker

SPINNER = r'''
import ctypes, os, threading
from workers import Response, WorkerEntrypoint

MARK = {mark!r}
libc = ctypes.CDLL(None)

def named(name):
    libc.prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME: this thread's comm

def spin():
    named(MARK)
    while True:
        pass

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        if request.url.endswith("/fork"):
            pid = os.fork()
            if pid == 0:
                os.setsid()
                if os.fork() == 0:
                    spin()
                os._exit(0)
            os.waitpid(pid, 0)
        elif request.url.endswith("/thread"):
            threading.Thread(target=spin).start()  # not a daemon
        return Response(MARK)
'''


def marked(mark):
    """pids of the processes with a thread named mark."""
    out = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    if f.read().strip() == mark:
                        out.add(int(pid))
        except OSError:
            pass
    return out


def deploy(srv, root, name, mark):
    d = root / name
    write_worker(d, SPINNER.format(mark=mark), name=name)
    srv.cli("deploy", str(d))


def spawn(srv, name, mark, what=("/fork", "/thread")):
    for path in what:
        r = srv.host_get(f"{name}.localhost", path)
        assert r.status == 200 and r.text == mark, (r, srv.log()[-2000:])
    wait_for(lambda: marked(mark), f"the spinners of {mark}")


def gone(srv, mark, after):
    wait_for(lambda: not marked(mark),
             f"the processes of {mark} to go after {after}: {marked(mark)}\n{srv.log()[-2000:]}")


def test_nothing_of_a_version_survives_redeploy_rollback_delete_or_restart(
        serve_factory, tmp_path):
    srv = serve_factory()
    a, b = "tw" + secrets.token_hex(4), "tw" + secrets.token_hex(4)
    deploy(srv, tmp_path / "v1", "spin", a)
    spawn(srv, "spin", a)
    deploy(srv, tmp_path / "v2", "spin", b)
    gone(srv, a, "a redeploy")
    spawn(srv, "spin", b)
    st, doc = srv.api("POST", "/v1/workers/spin/rollback", body=b'{"version": 1}')
    assert st == 200, doc
    gone(srv, b, "a rollback")
    spawn(srv, "spin", a)
    st, doc = srv.api("DELETE", "/v1/workers/spin")
    assert st == 200, doc
    gone(srv, a, "DELETE")
    # a restart, the hard way: the supervisor is killed
    c = "tw" + secrets.token_hex(4)
    deploy(srv, tmp_path / "v3", "again", c)
    spawn(srv, "again", c)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    gone(srv, c, "thaw was killed")


def test_nothing_of_an_evicted_template_survives(serve_factory, tmp_path):
    srv = serve_factory(args=["--template-idle-timeout", "1s"])
    mark = "tw" + secrets.token_hex(4)
    deploy(srv, tmp_path, "sleepy", mark)
    spawn(srv, "sleepy", mark, what=("/fork",))
    wait_for(lambda: "its template is evicted" in srv.log(), "the eviction")
    gone(srv, mark, "the template's eviction")


PROBE = r'''
import ctypes, os
from workers import Response, WorkerEntrypoint

libc = ctypes.CDLL(None, use_errno=True)

def probe(pid):
    ctypes.set_errno(0)
    return 0 if libc.kill(pid, 0) == 0 else ctypes.get_errno()

PIDS = {pids!r}
TOP = {{k: probe(v) for k, v in PIDS.items()}}

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response.json({{"top": TOP, "handler": {{k: probe(v) for k, v in PIDS.items()}}}})
'''


def test_a_template_cannot_tell_a_live_host_pid_from_a_dead_one(serve_factory, tmp_path):
    srv = serve_factory()
    dead = subprocess.Popen(["true"])
    dead.wait()
    zygote = int(subprocess.run(["pgrep", "-P", str(srv.proc.pid), "thaw-zygote"],
                                capture_output=True, text=True).stdout.split()[0])
    pids = {"thaw": srv.proc.pid, "zygote": zygote, "dead": dead.pid}
    d = tmp_path / "probe"
    write_worker(d, PROBE.format(pids=pids), name="probe")
    srv.cli("deploy", str(d))
    r = srv.host_get("probe.localhost")
    assert r.status == 200, r
    out = r.json()
    for where in ("top", "handler"):
        assert out[where] == {k: errno.ESRCH for k in pids}, (where, out)


# The init holds the channels the template hands it on a control socket
# the worker's top level can reach too: it must refuse a socket of the
# worker's own, whose peer a spinner could keep open for ever.
HOLD_MY_OWN = SPINNER.replace("class Default", r'''
import socket
mine = socket.socketpair()
SENT = 0
for fd in range(3, 256):
    try:
        s = socket.socket(fileno=os.dup(fd))
    except OSError:
        continue
    try:
        if s.type == socket.SOCK_SEQPACKET:
            socket.send_fds(s, [b"i"], [mine[0].fileno()])
            SENT += 1
    except OSError:
        pass
    finally:
        s.close()

class Default''')


def test_a_worker_cannot_keep_its_namespace_alive_with_a_socket_of_its_own(
        serve_factory, tmp_path):
    srv = serve_factory()
    mark = "tw" + secrets.token_hex(4)
    d = tmp_path / "clingy"
    write_worker(d, HOLD_MY_OWN.format(mark=mark), name="clingy")
    srv.cli("deploy", str(d))
    spawn(srv, "clingy", mark, what=("/fork",))
    st, doc = srv.api("DELETE", "/v1/workers/clingy")
    assert st == 200, doc
    gone(srv, mark, "DELETE, though the worker handed the init a socket of its own")
