"""thaw dev watches DIR: a changed .py (main or a module it imports) or config
file gives a new template; requests in flight finish on the old version."""
import os
import textwrap
import threading
import time

from thawlib import write_config, write_main, write_worker

WORKER = '''
    import asyncio, os
    from workers import WorkerEntrypoint, Response
    from urllib.parse import urlparse

    VERSION = {version!r}
    MARKS = {marks!r}
    with open(os.path.join(MARKS, "toplevel"), "a") as f:
        f.write("%s %d\\n" % (VERSION, os.getpid()))

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            path = urlparse(request.url).path
            if path == "/slow":
                open(os.path.join(MARKS, "slow-started"), "w").close()
                for _ in range(300):     # until the test releases it (<= 15 s)
                    if os.path.exists(os.path.join(MARKS, "release")):
                        break
                    await asyncio.sleep(0.05)
            if path == "/env":
                return Response(str(self.env.COLOR))
            if path == "/ppid":
                return Response(str(os.getppid()))
            return Response(VERSION)
'''


def _src(marks, version):
    return WORKER.format(version=version, marks=str(marks))


def _setup(tmp_path, workdir, thaw_factory, version="v1", **cfg):
    marks = tmp_path / "marks"
    marks.mkdir(exist_ok=True)
    write_worker(workdir, _src(marks, version), **cfg)
    return thaw_factory(workdir), marks


def test_edit_main_switches_without_errors(tmp_path, workdir, thaw_factory):
    srv, marks = _setup(tmp_path, workdir, thaw_factory)
    assert srv.get("/").body == b"v1"
    write_main(workdir, _src(marks, "version-two"))
    seen = srv.poll_until(lambda r: r.body == b"version-two")
    bad = [r for r in seen if not (getattr(r, "status", 0) == 200
                                   and r.body in (b"v1", b"version-two"))]
    assert not bad, f"errors while switching versions: {bad}"


def test_in_flight_request_finishes_on_old_version(tmp_path, workdir, thaw_factory):
    srv, marks = _setup(tmp_path, workdir, thaw_factory)
    result = {}

    def slow():
        try:
            result["r"] = srv.get("/slow", timeout=30)
        except Exception as e:
            result["r"] = e
    t = threading.Thread(target=slow)
    t.start()
    deadline = time.monotonic() + 10
    while not (marks / "slow-started").exists():
        assert time.monotonic() < deadline, "slow request never started"
        time.sleep(0.02)
    write_main(workdir, _src(marks, "v2-new"))
    try:
        srv.poll_until(lambda r: r.body == b"v2-new")
    finally:
        (marks / "release").touch()
        t.join(30)
    r = result.get("r")
    assert getattr(r, "status", None) == 200, f"in-flight request failed: {r!r}"
    assert r.body == b"v1", "in-flight request was not finished by the old version"


def test_new_template_per_version(tmp_path, workdir, thaw_factory):
    srv, marks = _setup(tmp_path, workdir, thaw_factory)
    old_ppid = srv.get("/ppid").body
    write_main(workdir, _src(marks, "v2"))
    srv.poll_until(lambda r: r.body == b"v2")
    new_ppid = srv.get("/ppid").body
    assert new_ppid != old_ppid, "new version's instance has the old template as parent"
    runs = (marks / "toplevel").read_text().split()
    versions = runs[0::2]
    assert versions == ["v1", "v2"], f"top level runs: {runs}"


def test_edit_imported_module_reloads(workdir, thaw_factory):
    src = '''
        import helper
        from workers import WorkerEntrypoint, Response

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response(helper.VALUE)
    '''
    write_worker(workdir, src, files={"src/helper.py": 'VALUE = "helper-1"\n'})
    srv = thaw_factory(workdir)
    assert srv.get("/").body == b"helper-1"
    (workdir / "src" / "helper.py").write_text('VALUE = "helper-number-2"\n')
    srv.poll_until(lambda r: r.body == b"helper-number-2")


def test_config_change_reloads(tmp_path, workdir, thaw_factory):
    srv, marks = _setup(tmp_path, workdir, thaw_factory, vars={"COLOR": "red"})
    assert srv.get("/env").body == b"red"
    write_config(workdir, vars={"COLOR": "ultramarine"})
    srv.poll_until(lambda r: r.body == b"ultramarine", path="/env")


def test_editor_style_atomic_replace_reloads(tmp_path, workdir, thaw_factory):
    srv, marks = _setup(tmp_path, workdir, thaw_factory)
    assert srv.get("/").body == b"v1"
    main = workdir / "src" / "entry.py"
    tmp = workdir / "src" / ".entry.py.swp-tmp"
    tmp.write_text(textwrap.dedent(_src(marks, "renamed-in")))
    os.replace(tmp, main)
    srv.poll_until(lambda r: r.body == b"renamed-in")
