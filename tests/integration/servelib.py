"""Helpers for the black-box tests of `thaw serve` and its clients
(`thaw deploy/list/delete/rollback/tail`)."""
import http.client
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from thawlib import THAW, Thaw, free_port, write_worker

TOKEN = "test-token-0123456789abcdef"


class ThawServe(Thaw):
    """One running `thaw serve --state DIR`; the token comes from the
    environment unless env_token is False (then DIR/token is used)."""

    def __init__(self, state, logdir, args=(), env_token=True):
        super().__init__(state, logdir, args)
        self.state = Path(state)
        self.env_token = env_token
        self.admin_port = None
        self.preexec = None  # run in the child before exec (e.g. drop to another user)

    def spawn(self):
        self.port = free_port()
        self.admin_port = free_port()
        n = len(list(self.logdir.glob("thaw-stderr*.log")))
        self.stderr_path = self.logdir / f"thaw-stderr{n}.log"
        self.cmd = [str(THAW), "serve", "--state", str(self.state), "--listen",
                    f"127.0.0.1:{self.port}", "--admin", f"127.0.0.1:{self.admin_port}"]
        self.cmd += self.args
        self.ready.clear()
        self.stdout_lines = []
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("THAW_API_TOKEN", None)
        if self.env_token:
            env["THAW_API_TOKEN"] = TOKEN
        errf = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=errf, env=env,
                                     start_new_session=True, preexec_fn=self.preexec)
        errf.close()
        want = f"Ready on http://127.0.0.1:{self.port}"

        def pump(out=self.proc.stdout, lines=self.stdout_lines):
            for raw in iter(out.readline, b""):
                line = raw.decode("utf-8", "replace")
                lines.append(line)
                if want in line:
                    self.ready.set()
            out.close()
        threading.Thread(target=pump, daemon=True).start()

    @property
    def admin(self):
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def token(self):
        return TOKEN if self.env_token else (self.state / "token").read_text().strip()

    def host_get(self, host, path="/", timeout=15):
        return self.request("GET", path, headers={"Host": host}, timeout=timeout)

    def api(self, method, path, body=None, token=None, timeout=60):
        c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout)
        headers = {}
        tok = self.token if token is None else token
        if tok:
            headers["Authorization"] = f"Bearer {tok}"
        try:
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
            try:
                return r.status, json.loads(data)
            except ValueError:
                return r.status, data.decode()
        finally:
            c.close()

    def cli(self, *args, check=True, timeout=120):
        """Runs `thaw ARGS --to ADMIN` with the token; returns the result."""
        env = dict(os.environ, THAW_API_TOKEN=self.token)
        r = subprocess.run([str(THAW), *args, "--to", self.admin], env=env,
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            pytest.fail(f"thaw {' '.join(args)} exited {r.returncode}\nstdout:\n{r.stdout}\n"
                        f"stderr:\n{r.stderr}\nserver log:\n{self.log()[-3000:]}")
        return r


@pytest.fixture
def serve_factory(tmp_path):
    servers = []

    def make(state=None, args=(), env_token=True):
        s = ThawServe(state or tmp_path / "state", tmp_path, args, env_token=env_token)
        servers.append(s)
        s.start()
        return s
    yield make
    for s in servers:
        if s.proc is not None and s.proc.poll() is None:
            s.stop()


def hello(body, extra=""):
    return f'''
from workers import Response, WorkerEntrypoint
{extra}
class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response({body!r})
'''


def project(root, name, body="hi", extra="", **cfg):
    d = Path(root) / name
    if "routes" in cfg:
        cfg.setdefault("fmt", "json")  # a top-level array: simplest in JSON
    write_worker(d, hello(body, extra), name=name, **cfg)
    return d
