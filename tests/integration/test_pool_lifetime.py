"""Supervisor object lifetimes (issue 21): a deleted worker leaves nothing
behind (no fd, no process, no timer), and an idle supervisor sleeps: its
wakeups do not grow with the number of idle workers. Counts only, read from
/proc; no timing is asserted."""
import os
import time
from pathlib import Path

from servelib import hello, serve_factory  # noqa: F401
from thawlib import proc_descendants, proc_live, write_worker


def bundle(d):
    """The deploy bundle of directory d (format: docs/api.md)."""
    out = bytearray(b"THAWBND1")
    for p in sorted(Path(d).rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(d).as_posix().encode()
        data = p.read_bytes()
        out += len(rel).to_bytes(4, "little") + rel + b"\x00"
        out += len(data).to_bytes(4, "little") + data
    return bytes(out)


def worker_bundle(tmp_path, name, body):
    d = tmp_path / "src" / name
    write_worker(d, hello(body), name=name)
    return bundle(d)


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def processes(pid):
    return len([p for p in proc_descendants(pid) if proc_live(p)])


def settle(srv, base_fds, base_procs, timeout=30):
    """Waits until the counts come back down (exits are asynchronous);
    returns the last counts."""
    deadline = time.monotonic() + timeout
    while True:
        now = fds(srv.proc.pid), processes(srv.proc.pid)
        if (now[0] <= base_fds and now[1] <= base_procs) or time.monotonic() > deadline:
            return now
        time.sleep(0.2)


def cycle(srv, name, blob):
    st, doc = srv.api("PUT", f"/v1/workers/{name}", body=blob)
    assert st == 200, (st, doc, srv.log()[-2000:])
    r = srv.host_get(f"{name}.localhost")
    assert (r.status, r.text) == (200, name), r
    st, doc = srv.api("DELETE", f"/v1/workers/{name}")
    assert st == 200, (st, doc)


def test_deleted_workers_leave_no_fd_or_process(serve_factory, tmp_path):
    srv = serve_factory()
    names = [f"churn{i}" for i in range(4)]
    blobs = {n: worker_bundle(tmp_path, n, n) for n in names}
    for n in names:  # warm-up: the zygote's and the loop's own fds
        cycle(srv, n, blobs[n])
    base = settle(srv, 10 ** 6, 10 ** 6, timeout=0)
    base = settle(srv, base[0], base[1])
    for i in range(40):
        n = names[i % len(names)]
        cycle(srv, n, blobs[n])
    after = settle(srv, base[0], base[1])
    # every deleted worker used to keep a pidfd: 40 cycles, 40 fds
    assert after[0] <= base[0] + 2, (base, after, os.listdir(f"/proc/{srv.proc.pid}/fd"))
    assert after[1] <= base[1], (base, after)
    assert "BUG" not in srv.log()


def test_delete_with_requests_in_flight_answers_them(serve_factory, tmp_path):
    """A worker deleted while a request runs: the request gets an answer
    (503), the instance is killed, and its fd goes."""
    import threading
    srv = serve_factory()
    d = tmp_path / "src" / "slow"
    write_worker(d, '''
import asyncio
from workers import Response, WorkerEntrypoint
class Default(WorkerEntrypoint):
    async def fetch(self, request):
        if request.url.endswith("/slow"):
            await asyncio.sleep(30)
        return Response("slow")
''', name="slow")
    blob = bundle(d)
    st, doc = srv.api("PUT", "/v1/workers/slow", body=blob)
    assert st == 200, doc
    assert srv.host_get("slow.localhost").text == "slow"
    got = []
    t = threading.Thread(target=lambda: got.append(srv.host_get("slow.localhost", "/slow",
                                                                timeout=60)))
    t.start()
    time.sleep(1.0)  # the request reaches the instance (not asserted on)
    st, doc = srv.api("DELETE", "/v1/workers/slow")
    assert st == 200, doc
    t.join(60)
    # told why: the worker was deleted (not a crash of the instance)
    assert got and got[0].status == 503 and "deleted" in got[0].text, got
    deadline = time.monotonic() + 30
    while any(proc_live(p) for p in proc_descendants(srv.proc.pid)
              if open(f"/proc/{p}/comm").read().strip() == "thaw-instance"):
        assert time.monotonic() < deadline, "the instance outlived its worker"
        time.sleep(0.2)


def wakeups(pid):
    """Voluntary context switches of the supervisor's event-loop thread:
    one per time it slept and was woken (a timer, a socket)."""
    with open(f"/proc/{pid}/task/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches")


def reads(pid):
    """read() system calls of the supervisor so far (/proc/PID/io)."""
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("syscr:"):
                return int(line.split()[1])
    raise AssertionError("no syscr")


def quiet_counts(srv, seconds=3.0):
    """(wakeups, reads) of the supervisor over a quiet window."""
    w0, r0 = wakeups(srv.proc.pid), reads(srv.proc.pid)
    time.sleep(seconds)
    return wakeups(srv.proc.pid) - w0, reads(srv.proc.pid) - r0


def test_idle_workers_cost_no_wakeups(serve_factory, tmp_path):
    """30 warm idle workers (a template and instances each) wake the
    supervisor no more than none do, and make it read nothing: a timer per
    worker every 50 ms wakes it at least 20 times a second (the timers of
    many workers fall into the same wakeups) and read /proc for every idle
    instance."""
    srv = serve_factory()
    none = quiet_counts(srv)
    for i in range(30):
        name = f"idle{i}"
        st, doc = srv.api("PUT", f"/v1/workers/{name}", body=worker_bundle(tmp_path, name, name))
        assert st == 200, (st, doc)
        r = srv.host_get(f"{name}.localhost")
        assert (r.status, r.text) == (200, name), r
    time.sleep(1.0)  # spares forked after the last requests start
    many = quiet_counts(srv)
    # over 3 s: a 50 ms tick is 60 wakeups; allow a few for other work
    assert many[0] <= none[0] + 15, (none, many)
    assert many[1] <= none[1] + 15, (none, many)
