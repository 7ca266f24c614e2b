"""Churn against `thaw serve`, and what the supervisor holds meanwhile.

Deploys, requests, deletes and restarts go through the admin API and the
public port as an operator's client would send them (bundles built by
python/thaw_tools, the code of `thaw deploy`). What thaw holds is read from
/proc: its open fds, its live descendant processes and its resident memory.

Used by test_leak.py, test_restart_churn.py, bench/churn-leak, the soak
test (tests/soak/) and the end-to-end churn of `make check-asan`; they run
outside pytest too, so failures raise ChurnError instead of pytest.fail.
"""
import os
import sys
import time
from collections import namedtuple
from pathlib import Path

from thawlib import REPO, proc_comm, proc_descendants, proc_live, write_worker

sys.path.insert(0, str(REPO / "python"))
from thaw_tools.remote import bundle  # noqa: E402

WORKER = '''
from workers import Response, WorkerEntrypoint

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response({body!r})
'''


class ChurnError(AssertionError):
    pass


def hello_bundle(root, name, body, **cfg):
    """The bundle of a worker NAME answering BODY to every request; its
    project is written under root/name."""
    d = Path(root) / name
    write_worker(d, WORKER.format(body=body), name=name, **cfg)
    data, _ = bundle(str(d))
    return data


def deploy(srv, name, data):
    """PUT the bundle; the deploy must succeed. Returns its version."""
    status, doc = srv.api("PUT", f"/v1/workers/{name}", body=data)
    if status != 200:
        raise ChurnError(f"deploy of {name} answered {status}: {doc}\n"
                         f"{srv.status()}\nlog:\n{srv.log()[-3000:]}")
    return doc["version"]


def expect(srv, name, body, timeout=15):
    """One request to NAME.localhost; it must answer 200 with BODY."""
    try:
        r = srv.host_get(f"{name}.localhost", timeout=timeout)
    except Exception as e:  # reported with the log
        raise ChurnError(f"GET {name}.localhost failed: {e!r}\n{srv.status()}\n"
                         f"log:\n{srv.log()[-3000:]}")
    if r.status != 200 or r.text != body:
        raise ChurnError(f"GET {name}.localhost: {r!r}, wanted 200 {body!r}\n"
                         f"{srv.status()}\nlog:\n{srv.log()[-3000:]}")


def delete(srv, name):
    status, doc = srv.api("DELETE", f"/v1/workers/{name}")
    if status != 200:
        raise ChurnError(f"DELETE {name} answered {status}: {doc}\n"
                         f"log:\n{srv.log()[-3000:]}")


def cycle(srv, root, name, body="hi"):
    """Deploy NAME, one request, delete it."""
    deploy(srv, name, hello_bundle(root, name, body))
    expect(srv, name, body)
    delete(srv, name)


# ---------------------------------------------------------------- what thaw holds

Usage = namedtuple("Usage", "fds procs rss_kb")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def live_descendants(pid):
    return sorted(p for p in proc_descendants(pid) if proc_live(p))


def usage(pid):
    """The supervisor's open fds, live descendants and RSS (KiB)."""
    return Usage(len(os.listdir(f"/proc/{pid}/fd")), len(live_descendants(pid)),
                 rss_kb(pid))


def describe(pid):
    """What thaw holds, for a failure message: fd targets and processes."""
    targets = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            t = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kind = t.split(":")[0] if ":" in t else t.split("/")[1] if t.startswith("/") else t
        targets[kind] = targets.get(kind, 0) + 1
    procs = {}
    for p in live_descendants(pid):
        c = proc_comm(p)
        procs[c] = procs.get(c, 0) + 1
    return f"fds by kind {targets}; processes by name {procs}"


def settle(pid, base, rss_slack_kb=2048, timeout=20.0):
    """Waits (at most timeout s: processes exit and fds close asynchronously)
    for thaw's fds and processes to be back at base and its RSS within
    rss_slack_kb of it. Returns (ok, last usage)."""
    deadline = time.monotonic() + timeout
    while True:
        now = usage(pid)
        ok = (now.fds <= base.fds and now.procs <= base.procs
              and now.rss_kb <= base.rss_kb + rss_slack_kb)
        if ok or time.monotonic() > deadline:
            return ok, now
        time.sleep(0.25)


def fmt(u):
    return f"fds {u.fds}, processes {u.procs}, RSS {u.rss_kb / 1024:.1f} MiB"
