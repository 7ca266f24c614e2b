"""Each worker version counts its processes in a pids cgroup of its own
(src/sandbox/template.c): a worker that forks up to its max_processes takes
nothing from its neighbours. Templates live in pid namespaces of their own,
where every template is pid 2; a group named by the template's pid was one
group for every worker, so one worker's fork bomb (or simply many workers:
the restart churn failed at the 78th with `fork: Resource temporarily
unavailable`) left others unable to fork an instance. The group goes with
its version. Root only (cgroups)."""
import os
import secrets

import pytest

from servelib import serve_factory  # noqa: F401 (fixture)
from thawlib import wait_for, write_worker

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root")

# forks children that sleep (named by a marker) until the kernel refuses
# one; they hold their slots until the version goes
BOMB = r'''
import ctypes, os, time
from workers import Response, WorkerEntrypoint

MARK = {mark!r}

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        n = 0
        while n < 1000:
            try:
                pid = os.fork()
            except BlockingIOError:
                return Response(f"refused after {{n}}")
            if pid == 0:
                ctypes.CDLL(None).prctl(15, MARK.encode(), 0, 0, 0)
                time.sleep(600)
                os._exit(0)
            n += 1
        return Response(f"never refused: {{n}}")
'''

INNOCENT = '''
from workers import Response, WorkerEntrypoint

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("innocent")
'''


def pids_groups(srv):
    """The version groups in this thaw's pids cgroup."""
    run = f"/sys/fs/cgroup/pids/thaw-{srv.proc.pid}"
    if not os.path.isdir(run):
        return None
    return sorted(e for e in os.listdir(run) if os.path.isdir(os.path.join(run, e)))


def group_state(srv):
    """What each pids group of this thaw still holds, and the memory groups
    beside them: what a failure needs to say."""
    out = {}
    run = f"/sys/fs/cgroup/pids/thaw-{srv.proc.pid}"
    for g in pids_groups(srv) or []:
        try:
            with open(f"{run}/{g}/cgroup.procs") as f:
                procs = f.read().split()
        except OSError as e:
            procs = str(e)
        out[g] = [(pid, open(f"/proc/{pid}/stat").read()[:60]) for pid in procs
                  if os.path.exists(f"/proc/{pid}/stat")] if isinstance(procs, list) else procs
    for root in ("/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"):
        mem = f"{root}/thaw-{srv.proc.pid}"
        if os.path.isdir(mem):
            out[mem] = sorted(os.listdir(mem))
    return out


def marked(mark):
    out = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == mark:
                    out.append(pid)
        except OSError:
            pass
    return out


def test_a_fork_bomb_takes_nothing_from_other_workers(serve_factory, tmp_path):
    srv = serve_factory()
    if pids_groups(srv) is None:
        pytest.skip("no pids cgroup here: " + srv.log()[-500:])
    mark = "tp" + secrets.token_hex(4)
    write_worker(tmp_path / "bomb", BOMB.format(mark=mark), name="bomb",
                 thaw={"max_processes": 24, "prefork": 0})
    srv.cli("deploy", str(tmp_path / "bomb"))
    # no spare: the innocent's next instance is forked after the bomb went off
    write_worker(tmp_path / "innocent", INNOCENT, name="innocent",
                 thaw={"max_processes": 24, "prefork": 0})
    srv.cli("deploy", str(tmp_path / "innocent"))

    r = srv.host_get("bomb.localhost")
    assert r.status == 200 and r.text.startswith("refused after"), (r, srv.log()[-2000:])
    assert len(marked(mark)) >= 10, "the bomb's children hold their slots"
    # the innocent's first request forks its first instance, from its own
    # budget
    for _ in range(3):
        r = srv.host_get("innocent.localhost")
        assert r.status == 200 and r.text == "innocent", (r, srv.log()[-2000:])
    assert len(pids_groups(srv)) == 2, pids_groups(srv)  # a group each

    # the bomb's group goes with it, its children too
    status, doc = srv.api("DELETE", "/v1/workers/bomb")
    assert status == 200, doc
    wait_for(lambda: not marked(mark), "the bomb's children to go")
    try:
        wait_for(lambda: len(pids_groups(srv)) == 1, "the bomb's pids group to go")
    except AssertionError:
        raise AssertionError(f"the bomb's pids group stayed: {group_state(srv)}\n"
                             + srv.log()[-3000:]) from None


def one_warm_worker(serve_factory, tmp_path):
    """thaw serve with one worker "w" that answered once."""
    srv = serve_factory()
    if pids_groups(srv) is None:
        pytest.skip("no pids cgroup here: " + srv.log()[-500:])
    write_worker(tmp_path / "w", INNOCENT, name="w", thaw={"prefork": 0})
    srv.cli("deploy", str(tmp_path / "w"))
    assert srv.host_get("w.localhost").text == "innocent"
    return srv


def test_an_idle_thaw_frees_a_deleted_worker_at_once(serve_factory, tmp_path):
    # nothing happens after the DELETE: no request, no other worker. The
    # version used to be freed (and its groups removed) by a uv_check that
    # ran only at thaw's next event, so an idle thaw kept it for ever
    srv = one_warm_worker(serve_factory, tmp_path)
    assert len(pids_groups(srv)) == 1
    status, doc = srv.api("DELETE", "/v1/workers/w")
    assert status == 200, doc
    wait_for(lambda: pids_groups(srv) == [], "the deleted worker's group to go")


def test_a_group_the_kernel_keeps_is_retried_and_logged(serve_factory, tmp_path):
    # a group the kernel will not remove (here: a sub-group someone made in
    # it; in life, a process no one reaped) is retried until it goes, and
    # after 5 s thaw's log says which one and what it holds, once
    srv = one_warm_worker(serve_factory, tmp_path)
    [group] = pids_groups(srv)
    held = f"/sys/fs/cgroup/pids/thaw-{srv.proc.pid}/{group}/held"
    os.mkdir(held)
    try:
        status, doc = srv.api("DELETE", "/v1/workers/w")
        assert status == 200, doc
        wait_for(lambda: "is still there after" in srv.log(),
                 "thaw to name the group: " + srv.log()[-2000:])
        line = [ln for ln in srv.log().splitlines() if "is still there after" in ln]
        assert len(line) == 1 and f"/{group}" in line[0], line
        assert pids_groups(srv) == [group]
    finally:
        os.rmdir(held)
    wait_for(lambda: pids_groups(srv) == [], "the group to go once the kernel let it")
    assert srv.log().count("is still there after") == 1
