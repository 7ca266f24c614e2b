"""The seccomp filter is compiled once in the zygote and loaded by every
template (src/sandbox/seccomp.c, seccomp-load.c): these check that it is in
force where worker code runs, both at the top level (the template) and in
the handler (an instance, which inherits it), with each of its outcomes:
a denied call fails with EPERM, a call on neither list stops the process
and the log names it. The system calls chosen succeed without the filter,
so a filter that was not applied cannot pass for one that was."""
import time

SANDBOX = True

# personality(0xffffffff) only asks for the current persona (0 without
# the filter; on the deny list: EPERM); sysfs(3) counts the filesystem
# types (on neither list: SIGSYS)
WORKER = r'''
import ctypes, os
from workers import Response, WorkerEntrypoint

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def personality():
    ctypes.set_errno(0)
    r = libc.syscall(135, ctypes.c_ulong(0xffffffff))
    return f"{r} {os.strerror(ctypes.get_errno()) if r < 0 else 'ok'}"

AT_TOP = personality()

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        if request.url.endswith("/sysfs"):
            libc.syscall(139, 3)
            return Response("sysfs ran: no filter")
        return Response.json({"top": AT_TOP, "handler": personality()})
'''

TOP_LEVEL_TRAP = r'''
import ctypes
from workers import Response, WorkerEntrypoint

ctypes.CDLL(None).syscall(139, 3)  # sysfs, at the top level

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("the top level ran past sysfs: no filter")
'''


def _wait_for(t, text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while text not in t.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    return text in t.log()


def test_a_denied_call_fails_at_top_level_and_in_the_handler(serve):
    t = serve(WORKER)
    r = t.get("/")
    assert r.status == 200, r
    out = r.json()
    assert out["top"] == "-1 Operation not permitted", out
    assert out["handler"] == "-1 Operation not permitted", out


def test_an_unlisted_call_stops_the_instance_and_is_named(serve):
    t = serve(WORKER)
    r = t.get("/sysfs")
    assert r.status == 502, r
    assert _wait_for(t, "seccomp: forbidden system call sysfs"), t.log()
    # the next request gets a new instance, under the same filter
    r = t.get("/")
    assert r.status == 200 and r.json()["handler"] == "-1 Operation not permitted", r


def test_an_unlisted_call_at_top_level_stops_the_template_and_is_named(serve):
    t = serve(TOP_LEVEL_TRAP)
    r = t.get("/")
    assert r.status == 500, r
    assert "the top level ran past sysfs" not in r.text
    assert _wait_for(t, "seccomp: forbidden system call sysfs"), t.log()
