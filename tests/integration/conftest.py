"""Fixtures for the black-box tests of `build/thaw dev` (helpers: thawlib.py).

Run: /usr/bin/python3 -m pytest -q tests/integration
"""
import pytest

from thawlib import Thaw, write_worker


# ---------------------------------------------------------------- fixtures

@pytest.fixture
def thaw_factory(tmp_path, request):
    """thaw_factory(workdir, *args, cwd=None, pass_dir=True, start=True,
    sandbox=None). sandbox: True runs it sandboxed, False with --no-sandbox;
    None: the test module's SANDBOX, else THAW_TEST_DEV_SANDBOX (thawlib)."""
    servers = []
    module_default = getattr(request.module, "SANDBOX", None)

    def make(workdir, *args, cwd=None, pass_dir=True, start=True, sandbox=None):
        s = Thaw(workdir, tmp_path, args, cwd=cwd, pass_dir=pass_dir,
                 sandbox=module_default if sandbox is None else sandbox)
        servers.append(s)
        if start:
            s.start()
        return s
    yield make
    for s in servers:
        if s.proc is not None and s.proc.poll() is None:
            s.stop()
            assert s.proc.poll() is not None, "thaw did not exit after SIGTERM/SIGKILL"


@pytest.fixture
def serve(tmp_path, thaw_factory):
    """serve(source, files=None, args=(), **config) -> running Thaw.
    The worker lives in tmp_path / "worker"."""
    def make(source, files=None, args=(), **cfg):
        d = tmp_path / "worker"
        write_worker(d, source, files=files, **cfg)
        return thaw_factory(d, *args)
    return make


@pytest.fixture
def workdir(tmp_path):
    d = tmp_path / "worker"
    d.mkdir()
    return d
