"""Fixtures for the tenant-isolation tests (issue 14): a `thaw serve` whose
state directory lives under /tmp (pytest's tmp_path) or outside it (a
directory under /var/lib, where the sandbox hides nothing by default), an
innocent worker with something worth stealing, and hostile deploys through
the admin API as an attacker would send them.

Use it as:

    from tenantlib import tenant, deploy   # noqa: F401 (fixtures)

    def test_x(tenant):
        srv = tenant.serve()                # started, innocent deployed
        rc, out = tenant.deploy("evil", SOURCE, config={...})
        assert rc != 0 and "..." in out
"""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from servelib import ThawServe
from thawlib import write_worker

INNOCENT = '''
from workers import Response, WorkerEntrypoint

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("innocent")
'''

# where the state directory lives: both must hold every wall
PLACES = ["state-in-tmp", "state-in-var-lib"]


class Tenant:
    def __init__(self, root, state, logdir):
        self.root = Path(root)       # where worker projects are written
        self.state = Path(state)
        self.logdir = Path(logdir)
        self.srv = None

    def serve(self, args=(), innocent=True, innocent_config=None, env=None):
        """Starts `thaw serve` (sandbox on, token from the environment);
        deploys the innocent worker unless told not to. `env` adds variables
        to thaw's own environment."""
        self.srv = ThawServe(self.state, self.logdir, tuple(args))
        if env:
            old = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                self.srv.start()
            finally:
                for k, v in old.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
        else:
            self.srv.start()
        if innocent:
            self.deploy("innocent", INNOCENT, check=True, **(innocent_config or {}))
            r = self.srv.host_get("innocent.localhost")
            assert r.status == 200 and r.text == "innocent", r
        return self.srv

    def project(self, name, source, files=None, **cfg):
        d = self.root / name
        if d.exists():
            shutil.rmtree(d)
        if "routes" in cfg:
            cfg.setdefault("fmt", "json")
        write_worker(d, source, files=files, name=name, **cfg)
        return d

    def deploy(self, name, source, files=None, check=False, **cfg):
        """Writes the project and deploys it with `thaw deploy` (the admin
        API). Returns (exit code, stdout + stderr)."""
        d = self.project(name, source, files=files, **cfg)
        r = self.srv.cli("deploy", str(d), check=check)
        return r.returncode, r.stdout + r.stderr

    def innocent_serves(self):
        r = self.srv.host_get("innocent.localhost")
        assert r.status == 200 and r.text == "innocent", r


@pytest.fixture(params=PLACES)
def tenant(request, tmp_path):
    if request.param == "state-in-tmp":
        base = tmp_path
        made = None
    else:
        made = Path(tempfile.mkdtemp(prefix="thaw-test-", dir="/var/lib"))
        base = made
    t = Tenant(tmp_path / "projects", base / "state", tmp_path)
    yield t
    if t.srv is not None and t.srv.proc is not None and t.srv.proc.poll() is None:
        t.srv.stop()
    if made:
        shutil.rmtree(made, ignore_errors=True)
