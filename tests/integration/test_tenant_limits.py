"""Issue 14, escape 10: under `thaw serve` a worker's limits are tenant
input. The operator sets ceilings (serve's command line, the [limits] table
of `--config`, else thaw's built-in ones: Cloudflare's 128 MB and 5 min of
CPU, thaw's defaults for the rest); a worker's config may lower its
limits, never raise them. And memory is counted by the kernel for the
whole worker version (a memory cgroup): memfds, /tmp and children too."""
import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

from tenantlib import tenant  # noqa: F401 (fixture)
from thawlib import REPO

sys.path.insert(0, str(REPO / "python"))
from thaw_tools.remote import bundle  # noqa: E402

HELLO = '''
from workers import Response, WorkerEntrypoint

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("ok")
'''

# What an attacker asks for, and what this server allows it by default:
# (table, key, value asked, how the ask reads, the built-in ceiling)
HOSTILE = [
    ("thaw", "memory_mb", 1048576, "1048576", "128"),
    ("thaw", "tmp_size", "64G", "64G", "64M"),
    ("limits", "cpu_ms", 3600000, "3600000 ms", "300000 ms"),
    ("thaw", "max_processes", 1000000, "1000000", "256"),
    ("thaw", "max_open_files", 1048576, "1048576", "1024"),
    ("thaw", "request_timeout_ms", 86400000, "86400000 ms", "300000 ms"),
    ("thaw", "max_instances", 10000, "10000", "8"),
]


def _tables(table, key, value):
    return {table: {key: value}}


def _put(tenant, name, source, **cfg):
    """Deploys through the admin API as an attacker's own client would:
    (HTTP status, the answer's error text)."""
    data, _ = bundle(str(tenant.project(name, source, **cfg)))
    status, doc = tenant.srv.api("PUT", f"/v1/workers/{name}", body=data)
    if not isinstance(doc, dict):
        return status, doc
    return status, doc.get("error", "") + "\n" + (doc.get("traceback") or "")


def _operator_config(tenant, limits):
    path = tenant.root / "serve.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"limits": limits}))
    return str(path)


@pytest.mark.parametrize("table,key,value,asked,ceiling", HOSTILE,
                         ids=[h[1] for h in HOSTILE])
def test_a_limit_over_the_ceiling_is_refused_with_both_numbers(tenant, table, key, value,
                                                               asked, ceiling):
    srv = tenant.serve()
    status, out = _put(tenant, "greedy", HELLO, **_tables(table, key, value))
    assert status == 400, out
    assert f"wrangler.toml: {table}.{key} = {asked} is over this server's ceiling " \
           f"of {ceiling}" in out, out
    assert srv.host_get("greedy.localhost").status == 404
    tenant.innocent_serves()


def test_every_hostile_limit_at_once_is_refused(tenant):
    tenant.serve()
    tables = {}
    for table, key, value, _, _ in HOSTILE:
        tables.setdefault(table, {})[key] = value
    status, out = _put(tenant, "greedy", HELLO, **tables)
    assert status == 400 and "over this server's ceiling" in out, out
    tenant.innocent_serves()


def test_the_operator_config_raises_the_ceilings(tenant):
    ops = {key: value for _, key, value, _, _ in HOSTILE}
    tenant.serve(["--config", _operator_config(tenant, ops)])
    tables = {}
    for table, key, value, _, _ in HOSTILE:
        tables.setdefault(table, {})[key] = value
    rc, out = tenant.deploy("big", HELLO, **tables)
    assert rc == 0, out
    r = tenant.srv.host_get("big.localhost")
    assert r.status == 200 and r.text == "ok", r
    tenant.innocent_serves()


def test_a_command_line_limit_is_the_default_and_the_ceiling(tenant):
    srv = tenant.serve(["--cpu-ms", "1000"])
    status, out = _put(tenant, "greedy", HELLO, limits={"cpu_ms": 2000})
    assert status == 400, out
    assert "limits.cpu_ms = 2000 ms is over this server's ceiling of 1000 ms" in out, out
    assert "--cpu-ms" in out, out
    rc, out = tenant.deploy("modest", HELLO, limits={"cpu_ms": 500})
    assert rc == 0, out
    assert srv.host_get("modest.localhost").text == "ok"


def test_the_operator_config_beats_the_command_line(tenant):
    srv = tenant.serve(["--cpu-ms", "1000",
                        "--config", _operator_config(tenant, {"cpu_ms": "5s"})])
    rc, out = tenant.deploy("mid", HELLO, limits={"cpu_ms": 4000})
    assert rc == 0, out
    assert srv.host_get("mid.localhost").text == "ok"
    rc, out = tenant.deploy("greedy", HELLO, limits={"cpu_ms": 6000})
    assert rc != 0 and "ceiling of 5000 ms" in out and "operator's config" in out, out


def test_lowering_every_limit_is_accepted(tenant):
    srv = tenant.serve()
    rc, out = tenant.deploy("small", HELLO,
                            thaw={"memory_mb": 64, "tmp_size": "8M", "max_processes": 32,
                                  "max_open_files": 128, "request_timeout_ms": 5000,
                                  "max_instances": 2},
                            limits={"cpu_ms": 50})
    assert rc == 0, out
    assert srv.host_get("small.localhost").text == "ok"
    tenant.innocent_serves()


def test_a_refused_raise_keeps_the_old_version_serving(tenant):
    srv = tenant.serve()
    rc, out = tenant.deploy("app", HELLO, thaw={"memory_mb": 64})
    assert rc == 0, out
    status, out = _put(tenant, "app", HELLO.replace('"ok"', '"v2"'),
                       thaw={"memory_mb": 4096})
    assert status == 400, out
    assert srv.host_get("app.localhost").text == "ok"


def test_the_operator_may_keep_workers_in_the_shared_zygote(tenant):
    tenant.serve(["--config", _operator_config(tenant, {"isolation": "shared"})])
    status, out = _put(tenant, "loner", HELLO, thaw={"isolation": "per-worker"})
    assert status == 400, out
    assert 'thaw.isolation = "per-worker" is over this server\'s ceiling of "shared"' in out, out


@pytest.mark.parametrize("ops,needle", [
    ({"memory_mbs": 256}, "unknown key `limits.memory_mbs`"),
    ({"cpu_ms": 0}, "`limits.cpu_ms` must be a whole number from 1 to 3600000 ms"),
    ({"max_header_size": "1M"}, "is the server's own"),
])
def test_a_bad_operator_limits_table_stops_serve(tenant, ops, needle):
    from servelib import ThawServe
    srv = ThawServe(tenant.state, tenant.logdir,
                    ("--config", _operator_config(tenant, ops)))
    srv.spawn()
    assert srv.proc.wait(timeout=30) == 2
    assert needle in srv.log(), srv.log()


# ---- memory counted by the kernel for the whole worker version ----------

# memfds of 32 MB (each under the file size limit) up to 1 GB: memory no
# process maps, which the per-instance count from /proc never saw
MEMFD_HOG = '''
import os
from workers import Response, WorkerEntrypoint

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        fds, chunk = [], b"x" * (1 << 20)
        try:
            for _ in range(32):
                fd = os.memfd_create("hog")
                os.ftruncate(fd, 32 << 20)
                for _ in range(32):
                    os.write(fd, chunk)
                fds.append(fd)
        except (OSError, MemoryError) as e:
            return Response(f"refused: {e!r}")
        return Response(f"held {len(fds) * 32} MB in memfds")
'''

# a child process the instance forks: its memory is not the instance's
CHILD_HOG = '''
import os
from workers import Response, WorkerEntrypoint

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                hog = b"x" * (300 << 20)
                os.write(w, b"allocated %d MB" % (len(hog) >> 20))
            finally:
                os._exit(0)
        os.close(w)
        _, status = os.waitpid(pid, 0)
        said = os.read(r, 100).decode()
        return Response(said or f"child died: {status}")
'''

# /tmp is a tmpfs: its pages are memory, charged to the writer
TMP_HOG = '''
import os
from workers import Response, WorkerEntrypoint

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        chunk, n = b"x" * (1 << 20), 0
        tmp = os.environ.get("TMPDIR", "/tmp")   # the instance's own, under /tmp
        try:
            for i in range(32):
                with open(f"{tmp}/fill{i}", "wb") as f:
                    for _ in range(32):
                        f.write(chunk)
                        n += 1
        except (OSError, MemoryError) as e:
            return Response(f"refused after {n} MB: {e!r}")
        return Response(f"wrote {n} MB to /tmp")
'''

# one instance per version: the version's memory limit is
# memory_mb x (max_instances + 1) = 256 MB
MEMORY_ARGS = ["--max-instances", "1"]


def _memory_cgroup_or_skip(srv):
    # thaw's start line names what counts memory; without a cgroup (not
    # root, no controller) it says so, and these walls are not there
    if "memory: memory counted per instance only" in srv.log():
        pytest.skip("no memory cgroup here (thaw's start line says why)")


def _stopped(srv, host, path="/"):
    r = srv.host_get(host, path, timeout=60)
    if r.status == 503:
        assert "memory limit" in r.text, r
    else:
        assert r.status == 200 and r.text.startswith(("refused", "child died")), r
    needle = "the worker's memory limit was reached"
    assert needle in srv.wait_log(needle, timeout=10), r
    return r


def test_memory_in_memfds_counts_against_the_worker(tenant):
    srv = tenant.serve(MEMORY_ARGS)
    _memory_cgroup_or_skip(srv)
    rc, out = tenant.deploy("memfd", MEMFD_HOG)
    assert rc == 0, out
    r = _stopped(srv, "memfd.localhost")
    assert r.status == 503, r   # the kernel killed the instance holding them
    tenant.innocent_serves()


def test_memory_of_a_forked_child_counts_against_the_worker(tenant):
    srv = tenant.serve(MEMORY_ARGS)
    _memory_cgroup_or_skip(srv)
    rc, out = tenant.deploy("forker", CHILD_HOG)
    assert rc == 0, out
    _stopped(srv, "forker.localhost")
    tenant.innocent_serves()


def test_a_big_tmp_counts_against_the_worker(tenant):
    # the operator lets /tmp be big; it is still memory, and counted
    srv = tenant.serve(MEMORY_ARGS + ["--config", _operator_config(tenant,
                                                                   {"tmp_size": "4G"})])
    _memory_cgroup_or_skip(srv)
    rc, out = tenant.deploy("tmpfill", TMP_HOG, thaw={"tmp_size": "2G"})
    assert rc == 0, out
    _stopped(srv, "tmpfill.localhost")
    tenant.innocent_serves()


def _memory_run_dir(srv):
    m = re.search(r"memory: memory cgroup v\d per worker version \(([^)]+)\)", srv.log())
    return Path(m.group(1)) if m else None


def _groups(run):
    return sorted(p.name for p in run.iterdir() if p.is_dir() and p.name.startswith("v"))


def test_a_versions_memory_cgroup_goes_with_it(tenant):
    srv = tenant.serve()
    _memory_cgroup_or_skip(srv)
    run = _memory_run_dir(srv)
    assert run is not None and run.is_dir(), srv.log()
    rc, out = tenant.deploy("app", HELLO)
    assert rc == 0, out
    assert srv.host_get("app.localhost").text == "ok"
    before = _groups(run)
    assert len(before) == 2, before       # the innocent's and app's
    rc, out = tenant.deploy("app", HELLO.replace('"ok"', '"v2"'))
    assert rc == 0, out
    assert srv.host_get("app.localhost").text == "v2"
    deadline = time.monotonic() + 30
    while len(_groups(run)) != 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    after = _groups(run)
    assert len(after) == 2 and set(after) != set(before), (before, after)
    srv.stop()
    assert not run.exists()


def _doctor(preexec=None):
    import subprocess
    from thawlib import THAW
    return subprocess.run([str(THAW), "doctor"], capture_output=True, text=True,
                          timeout=60, preexec_fn=preexec).stdout


def test_doctor_says_what_counts_memory():
    line = [ln for ln in _doctor().splitlines() if ln.strip().startswith("memory ")]
    assert len(line) == 1, line
    assert re.search(r"memory +(cgroup v2|cgroup v1|none): ", line[0]), line
    if os.geteuid() == 0:
        # an ordinary user has no cgroup to write to, and is told so
        def drop():
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        out = _doctor(drop)
        assert re.search(r"memory +none: not root", out), out


def test_a_top_level_over_the_memory_limit_fails_the_deploy(tenant):
    srv = tenant.serve(MEMORY_ARGS)
    _memory_cgroup_or_skip(srv)
    status, out = _put(tenant, "fat", "hog = b'x' * (400 << 20)\n" + HELLO)
    assert status == 422, out
    assert "memory limit of 256 MB was reached" in out, out
    tenant.innocent_serves()
