"""Process tree: supervisor -> zygote -> template (top level ran once) ->
instances forked from it; PRNG reseeded per instance; SIGTERM/SIGINT stop
the whole tree within 2 s."""
import signal
import subprocess
import time

import pytest

from thawlib import is_alive, proc_descendants, proc_identity, proc_stat

WORKER = '''
    import os, random, time
    from workers import WorkerEntrypoint, Response
    from urllib.parse import urlparse

    with open({toplog!r}, "a") as f:
        f.write("%d\\n" % os.getpid())
    STAMP = time.time_ns()
    SEEDED = random.Random(1234).random()   # seeded: allowed at import time
    FIRST_RANDOM = None

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            global FIRST_RANDOM
            if FIRST_RANDOM is None:
                FIRST_RANDOM = random.random()
            path = urlparse(request.url).path
            if path == "/block":
                time.sleep(1.0)  # blocks this instance's loop: thaw must fork more
            return Response.json({{"pid": os.getpid(), "ppid": os.getppid(),
                                  "stamp": STAMP, "import_random": SEEDED,
                                  "first_random": FIRST_RANDOM}})
'''


@pytest.fixture
def toplog(tmp_path):
    return tmp_path / "toplevel-runs.txt"


@pytest.fixture
def srv(serve, toplog):
    return serve(WORKER.format(toplog=str(toplog)))


def _instances(srv, n=6):
    """Fire n overlapping blocking requests; returns {pid: json} with >= 2
    pids. They start 50 ms apart: thaw sees that an instance is blocked (in
    time.sleep) once it is, and forks another instead of queueing behind it;
    a burst that arrives before the first one blocks cannot be told apart."""
    rs = srv.concurrent_get("/block", n, stagger=0.05)
    for r in rs:
        assert r.status == 200, r
    by_pid = {}
    for r in rs:
        d = r.json()
        by_pid.setdefault(d["pid"], d)
    assert len(by_pid) >= 2, \
        f"{n} concurrent blocking requests were all served by one instance"
    return by_pid


def test_import_time_values_shared_and_top_level_ran_once(srv, toplog):
    by_pid = _instances(srv)
    assert len({d["stamp"] for d in by_pid.values()}) == 1, by_pid
    assert len({d["import_random"] for d in by_pid.values()}) == 1, by_pid
    lines = toplog.read_text().splitlines()
    assert len(lines) == 1, f"top level ran {len(lines)} times: {lines}"
    assert int(lines[0]) not in by_pid, "top level ran in an instance"


def test_tree_supervisor_zygote_template_instances(srv, toplog):
    by_pid = _instances(srv)
    template = int(toplog.read_text().split()[0])
    for pid, d in by_pid.items():
        assert d["ppid"] == template, "instance not forked from the template"
    st = proc_stat(template)
    assert st is not None, "template process is gone"
    zygote = st[1]
    assert zygote != srv.proc.pid, "template is a direct child of the supervisor"
    assert proc_stat(zygote)[1] == srv.proc.pid, "zygote is not the supervisor's child"
    assert set(by_pid) | {template, zygote} <= proc_descendants(srv.proc.pid)


def test_supervisor_has_no_python(srv):
    assert srv.get("/").status == 200
    with open(f"/proc/{srv.proc.pid}/maps") as f:
        maps = f.read()
    assert "libpython" not in maps, "the supervisor process has libpython mapped"


def test_prng_reseeded_in_each_instance(srv):
    by_pid = _instances(srv)
    firsts = [d["first_random"] for d in by_pid.values()]
    assert len(set(firsts)) == len(firsts), \
        f"instances share PRNG state: {firsts}"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_signal_stops_whole_tree(srv, sig):
    _instances(srv, n=4)
    assert srv.get("/").status == 200
    tree = [i for i in map(proc_identity, proc_descendants(srv.proc.pid)) if i]
    assert len(tree) >= 3, f"expected zygote, template and instances, got {tree}"
    t0 = time.monotonic()
    srv.proc.send_signal(sig)
    try:
        srv.proc.wait(timeout=2.0)
    except subprocess.TimeoutExpired:
        pytest.fail(f"thaw still running 2 s after {sig.name}")
    # the supervisor is gone; give its descendants the rest of a short grace
    while any(is_alive(i) for i in tree) and time.monotonic() < t0 + 2.5:
        time.sleep(0.05)
    left = [i[0] for i in tree if is_alive(i)]
    assert not left, f"processes left behind after {sig.name}: {left}"
