"""A thaw that dies without removing its run groups (SIGKILL, a crash, the
OOM killer) left thaw-<pid> in every cgroup hierarchy it used, for ever:
only a new thaw that happened to get the same pid cleared them. Now every
thaw, as it starts, removes the run groups beside its own whose pid is not
a thaw process (src/sandbox/cgroup-sweep.c): those of a killed thaw, and
those whose pid an unrelated program now has. A living thaw's groups and
directories that are not named exactly thaw-<digits> are never touched; a
group the kernel keeps is left with a line in the log, and thaw starts
anyway. Real thaw, real cgroups: root only."""
import os
import random
import signal
import subprocess

import pytest

from test_sandbox_cpu import groups, mount_of
from thawlib import is_alive, proc_descendants, proc_identity, wait_for, write_worker

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root")

HELLO = '''
from workers import Response, WorkerEntrypoint

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("hello")
'''

# never a pid: the kernel's pids stop at 2**22 (PID_MAX_LIMIT)
GONE_PID = 2 ** 22 + random.randint(1, 10 ** 6)


def parents():
    """Where a thaw started by this test can make its run groups, in each
    hierarchy: the root, this process's own cgroup (v1 memory; thaw
    inherits it) and the one above it (v2)."""
    out = set()
    for ctl, path in groups(os.getpid()).items():
        mnt = mount_of(ctl)
        if not mnt:
            continue
        own = mnt + (path if path != "/" else "")
        out.update({mnt, own, os.path.dirname(own)})
    return sorted(p for p in out if os.path.isdir(p))


def run_dirs(pid):
    """The run groups named after pid that exist now."""
    return [f"{p}/thaw-{pid}" for p in parents() if os.path.isdir(f"{p}/thaw-{pid}")]


def versions(dirs):
    return [f"{d}/{v}" for d in dirs for v in os.listdir(d)
            if v.startswith("v") and os.path.isdir(f"{d}/{v}")]


def start(thaw_factory, d):
    write_worker(d, HELLO, name="w")
    t = thaw_factory(d, sandbox=True)
    r = t.get("/")
    assert r.status == 200 and r.text == "hello", (r, t.log()[-2000:])
    return t


def started_with_groups(thaw_factory, d):
    """A sandboxed thaw dev that answered once (so a version group
    exists), and its run groups; skips where it has none."""
    t = start(thaw_factory, d)
    mine = run_dirs(t.proc.pid)
    if not mine:
        pytest.skip("no writable cgroup hierarchy here: " + t.log()[-800:])
    return t, mine


def sweep_line(t):
    return [ln for ln in t.log().splitlines() if "left by" in ln and "removed" in ln]


def swept_pids(t):
    """The pids the sweep's line names ("(pids 1, 2 and 3 more; 4 ms)")."""
    out = set()
    for line in sweep_line(t):
        named = line.rsplit("(pid", 1)[1].lstrip("s").split(";")[0].split(" and ")[0]
        out.update(int(x) for x in named.replace(",", " ").split())
    return out


def kill_hard(t):
    """SIGKILL to the supervisor alone, as the OOM killer would; its
    Python processes follow it (PR_SET_PDEATHSIG), any left are killed."""
    tree = [i for i in map(proc_identity, proc_descendants(t.proc.pid)) if i]
    t.proc.kill()
    t.proc.wait(5)
    try:
        wait_for(lambda: not any(is_alive(i) for i in tree), "thaw's processes to go", 10)
    except AssertionError:
        for i in tree:
            if is_alive(i):
                os.kill(i[0], signal.SIGKILL)


def rmtree_groups(path):
    """Removes a tree of cgroups made by the test, deepest first."""
    if not os.path.isdir(path):
        return
    for e in os.listdir(path):
        if os.path.isdir(f"{path}/{e}"):
            rmtree_groups(f"{path}/{e}")
    os.rmdir(path)


def test_a_killed_thaws_groups_go_when_the_next_thaw_starts(thaw_factory, tmp_path):
    a, mine = started_with_groups(thaw_factory, tmp_path / "a")
    assert versions(mine), ("the request made a version group", mine)
    kill_hard(a)
    try:
        # left behind in every hierarchy: nothing removed them
        assert run_dirs(a.proc.pid) == mine

        b = start(thaw_factory, tmp_path / "b")
        left = [d for d in mine if os.path.exists(d)]
        assert not left, (left, b.log()[-2000:])
        [line] = sweep_line(b)
        if "more" not in line:  # other stale groups may crowd it out of the list
            assert a.proc.pid in swept_pids(b), line
        assert b.get("/").status == 200
    finally:
        for d in mine:
            rmtree_groups(d)


def test_a_living_thaws_groups_are_left_alone(thaw_factory, tmp_path):
    a, mine = started_with_groups(thaw_factory, tmp_path / "a")
    held = versions(mine)
    b = start(thaw_factory, tmp_path / "b")
    assert run_dirs(a.proc.pid) == mine
    assert versions(mine) == held
    assert a.proc.pid not in swept_pids(b), sweep_line(b)
    r = a.get("/")
    assert r.status == 200 and r.text == "hello", (r, a.log()[-2000:])


def test_a_group_whose_pid_another_program_has_goes_and_others_stay(thaw_factory,
                                                                     tmp_path):
    # where thaw's run groups go: learnt from a thaw that then exits cleanly
    a, mine = started_with_groups(thaw_factory, tmp_path / "a")
    a.stop()
    where = [os.path.dirname(d) for d in mine]
    sleeper = subprocess.Popen(["sleep", "600"])  # has the pid now, is not thaw
    inside = subprocess.Popen(["sleep", "600"])   # still in the stale group
    stale = [f"{p}/thaw-{sleeper.pid}" for p in where]
    kept = [f"{p}/{n}" for p in where for n in ("thaw-foo", "thawx-123", "thaw-12x")]
    try:
        for d in stale + kept:
            os.makedirs(f"{d}/v1")
        pids_v1 = [d for d in stale if "/pids/" in d]
        if pids_v1:
            with open(f"{pids_v1[0]}/v1/cgroup.procs", "w") as f:
                f.write(str(inside.pid))

        b = start(thaw_factory, tmp_path / "b")
        left = [d for d in stale if os.path.exists(d)]
        assert not left, (left, b.log()[-2000:])
        assert all(os.path.isdir(f"{d}/v1") for d in kept), kept
        if pids_v1:  # what was still in it was killed
            assert inside.wait(5) == -signal.SIGKILL
        assert sleeper.poll() is None, "the program that has the pid is not thaw's"
        assert len(sweep_line(b)) == 1, b.log()
    finally:
        for p in (sleeper, inside):
            p.kill()
            p.wait()
        for d in stale + kept:
            rmtree_groups(d)


def test_a_group_the_kernel_keeps_is_named_and_thaw_starts(thaw_factory, tmp_path):
    # a process frozen by the v1 freezer does not die of SIGKILL until it
    # is thawed: its group cannot go
    freezer = mount_of("freezer")
    if not freezer:
        pytest.skip("no cgroup v1 freezer here")
    a, mine = started_with_groups(thaw_factory, tmp_path / "a")
    a.stop()
    pids_parent = [os.path.dirname(d) for d in mine if "/pids/" in d]
    if not pids_parent:
        pytest.skip("no pids cgroup here")
    stale = f"{pids_parent[0]}/thaw-{GONE_PID}"
    ice = f"{freezer}/thaw-test-{os.getpid()}"
    frozen = subprocess.Popen(["sleep", "600"])
    try:
        os.makedirs(f"{stale}/v1")
        os.makedirs(f"{stale}/v2")  # empty: goes
        os.mkdir(ice)
        for g in (ice, f"{stale}/v1"):
            with open(f"{g}/cgroup.procs", "w") as f:
                f.write(str(frozen.pid))
        with open(f"{ice}/freezer.state", "w") as f:
            f.write("FROZEN")

        b = start(thaw_factory, tmp_path / "b")
        lines = [ln for ln in b.log().splitlines() if "cannot remove the cgroup" in ln]
        assert len(lines) == 1, b.log()
        assert f"{stale}/v1 left by thaw process {GONE_PID}" in lines[0], lines
        assert f"it holds: {frozen.pid}" in lines[0], lines
        assert os.path.isdir(f"{stale}/v1") and not os.path.exists(f"{stale}/v2")
        assert b.get("/").status == 200
    finally:
        if os.path.isdir(ice):
            with open(f"{ice}/freezer.state", "w") as f:
                f.write("THAWED")
        frozen.kill()
        frozen.wait()
        if os.path.isdir(ice):
            wait_for(lambda: not open(f"{ice}/cgroup.procs").read().strip(),
                     "the sleeper to go")
            os.rmdir(ice)
        rmtree_groups(stale)
