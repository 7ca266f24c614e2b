"""CPU is counted for the whole worker version (issue 15): its processes
live in a cpu/cpuacct cgroup of the version (src/sandbox/cgroup.c), which
counts the CPU a forked child burns after the response, and holds the
version to cpu_percent of one CPU (a CFS quota). Checked on the kernel's
own numbers (the cgroup's files), never by timing: the spinner's group is
the version's, its quota is the one asked for, the kernel throttled it,
and the group's usage counts it. Root only (cgroups)."""
import os
import secrets
import time

import pytest

from servelib import serve_factory  # noqa: F401 (fixture)
from test_sandbox_pidns import SPINNER, deploy, marked, spawn, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root")


def groups(pid):
    """{controller: path} from /proc/PID/cgroup ("" for v2)."""
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctl, path = line.rstrip("\n").split(":", 2)
            for c in ctl.split(",") if ctl else [""]:
                out[c] = path
    return out


def mount_of(ctl):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ")
            mnt = left.split()[4]
            fstype, _src, opts = right.split()[:3]
            if ctl == "" and fstype == "cgroup2":
                return mnt
            if ctl and fstype == "cgroup" and ctl in opts.split(","):
                return mnt
    return None


def read(path):
    with open(path) as f:
        return f.read()


def test_a_forked_spinner_is_counted_and_capped_with_its_version(serve_factory, tmp_path):
    srv = serve_factory(args=["--cpu-percent", "20"])
    if "cpu: none" in srv.log():
        pytest.skip("no CPU cgroup on this machine: " + srv.log()[-500:])
    mark = "tw" + secrets.token_hex(4)
    deploy(srv, tmp_path, "spin", mark)
    spawn(srv, "spin", mark, what=("/fork",))
    (pid,) = marked(mark)
    mine = groups(pid)
    v1 = mine.get("cpu", "").find(f"/thaw-{srv.proc.pid}/v") >= 0
    if v1:
        cpu = mount_of("cpu") + mine["cpu"]
        acct = mount_of("cpuacct") + mine["cpuacct"]
        assert read(f"{cpu}/cpu.cfs_quota_us").strip() == "20000"
        assert read(f"{cpu}/cpu.cfs_period_us").strip() == "100000"

        def throttled():
            stat = dict(line.split() for line in read(f"{cpu}/cpu.stat").splitlines())
            return int(stat["nr_throttled"]) > 0

        def usage_ns():
            return int(read(f"{acct}/cpuacct.usage"))
    else:
        cpu = acct = mount_of("") + mine[""]
        assert f"/thaw-{srv.proc.pid}/v" in cpu, mine
        assert read(f"{cpu}/cpu.max").split() == ["20000", "100000"]

        def stat():
            return dict(line.split() for line in read(f"{cpu}/cpu.stat").splitlines())

        def throttled():
            return int(stat()["nr_throttled"]) > 0

        def usage_ns():
            return int(stat()["usage_usec"]) * 1000
    # the version's template is in the same group: the child is the version's
    tpl = [p for p in os.listdir("/proc") if p.isdigit()
           and read_or(f"/proc/{p}/comm") == "thaw-template"
           and groups(p).get("cpuacct" if v1 else "") == mine["cpuacct" if v1 else ""]]
    assert tpl, "the spinner's group holds no template: not the version's group"
    wait_for(throttled, "the kernel to throttle the spinner at 20% of a CPU")
    # the spinner's CPU counts: a quarter second of it, at least
    wait_for(lambda: usage_ns() > 250_000_000, "the group's usage to count the spinner")


def read_or(path):
    try:
        return read(path).strip()
    except OSError:
        return ""


def test_a_worker_may_lower_its_cpu_percent_but_not_raise_it(serve_factory, tmp_path):
    srv = serve_factory(args=["--cpu-percent", "50"])
    r = srv.cli("deploy", str(_project(tmp_path / "greedy", "greedy", 400)), check=False)
    assert r.returncode != 0 and "cpu_percent" in r.stderr and "50" in r.stderr, r.stderr
    if "cpu: none" in srv.log():
        return
    mark = "tw" + secrets.token_hex(4)
    d = _project(tmp_path / "modest", "modest", 10, mark)
    srv.cli("deploy", str(d))
    spawn(srv, "modest", mark, what=("/fork",))
    (pid,) = marked(mark)
    mine = groups(pid)
    if "cpu" in mine and "/thaw-" in mine["cpu"]:
        assert read(mount_of("cpu") + mine["cpu"] + "/cpu.cfs_quota_us").strip() == "10000"
    else:
        assert read(mount_of("") + mine[""] + "/cpu.max").split()[0] == "10000"


def _project(d, name, percent, mark="twunused"):
    from thawlib import write_worker
    write_worker(d, SPINNER.format(mark=mark), name=name, thaw={"cpu_percent": percent})
    return d


def _dev_quota(srv):
    """The CFS quota (µs per 100 ms period) of the dev server's version and
    its weight as a count of processes (cpu.shares / 1024 on v1, cpu.weight
    / 100 on v2), from the kernel's files of its cpu group."""
    import glob
    for mnt, name, weight, unit in ((mount_of("cpu"), "cpu.cfs_quota_us", "cpu.shares", 1024),
                                    (mount_of(""), "cpu.max", "cpu.weight", 100)):
        if not mnt:
            continue
        found = glob.glob(f"{mnt}/**/thaw-{srv.proc.pid}/v*/{name}", recursive=True)
        if found:
            w = os.path.join(os.path.dirname(found[0]), weight)
            return int(read(found[0]).split()[0]), int(read(w)) / unit
    return None, None


HELLO = '''
from workers import WorkerEntrypoint, Response

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("hi")
'''


def test_thaw_dev_gives_a_version_one_cpu_per_instance_unless_told(thaw_factory, tmp_path):
    """thaw dev without cpu_percent: one CPU per instance the version may run,
    up to the machine's (the built-in 100 held `--max-instances 2` on two
    cores to one core: docs/performance.md), and the group's weight to
    match (at the default weight the version's instances together counted
    as one process on a busy machine). A flag or the config still win."""
    from thawlib import write_worker
    d = tmp_path / "w"
    write_worker(d, HELLO)
    srv = thaw_factory(d, "--max-instances", "2", sandbox=True)
    if "cpu: none" in srv.log():
        pytest.skip("no CPU cgroup on this machine")
    assert srv.get("/").status == 200
    # and it weighs as that many processes against the rest of the machine
    cpus = min(2, os.cpu_count())
    assert _dev_quota(srv) == (100_000 * cpus, cpus)
    srv.stop()
    srv = thaw_factory(d, "--max-instances", "2", "--cpu-percent", "30", sandbox=True)
    assert srv.get("/").status == 200
    assert _dev_quota(srv)[0] == 30_000
    srv.stop()
    write_worker(d, HELLO, thaw={"cpu_percent": 40})
    srv = thaw_factory(d, "--max-instances", "2", sandbox=True)
    assert srv.get("/").status == 200
    assert _dev_quota(srv)[0] == 40_000


def test_a_stale_group_of_a_dead_thaw_with_our_pid_does_not_fail_the_build(tmp_path):
    """A thaw killed with SIGKILL leaves its cgroups (thaw-PID/v1, ...); a
    later thaw that gets the same pid found v1 there and every build failed
    with "cannot make the worker's CPU cgroup ...: File exists" (seen in the
    suite on a machine where many thaws were killed). Made here on purpose:
    the shell creates the groups for its own pid, then becomes thaw."""
    import subprocess
    import urllib.request
    from thawlib import THAW, free_port, write_worker
    mounts = [m for m in (mount_of("cpu"), mount_of("memory")) if m]
    if not mounts:
        pytest.skip("no cgroup v1 cpu or memory hierarchy")
    d = tmp_path / "w"
    write_worker(d, HELLO)
    port = free_port()
    own = groups(os.getpid())
    dirs = " ".join(f"{m}{'' if own.get(c, '/') == '/' else own[c]}/thaw-$$/v1"
                    for m, c in ((mount_of("cpu"), "cpu"), (mount_of("memory"), "memory")) if m)
    p = subprocess.Popen(["sh", "-c", f"mkdir -p {dirs} && exec {THAW} dev {d} --port {port}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("Ready on"), p.stderr.read() if p.poll() is not None else line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            assert r.status == 200 and r.read() == b"hi"
    finally:
        p.terminate()
        p.wait(10)
