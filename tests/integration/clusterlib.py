"""A thaw cluster on this machine for the black-box tests: scripts/cluster-up
(Redis, PostgreSQL, three `thaw serve` nodes, HAProxy in front), read back
from DIR/cluster.env, and scripts/cluster-down at the end."""
import http.client
import json
import os
import re
import shutil
import signal
import sys
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from thawlib import THAW, write_worker

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
from thaw_tools.remote import bundle  # noqa: E402  (what `thaw deploy` uploads)


def read_env(path):
    env = {}
    for line in Path(path).read_text().splitlines():
        k, _, v = line.partition("=")
        if len(v) >= 2 and v[0] == v[-1] == "'":
            v = v[1:-1]
        env[k] = v
    return env


def hostport(s):
    h, _, p = s.rpartition(":")
    return h, int(p)


class Cluster:
    def __init__(self, env=None):
        # not under pytest's 0700 tmp: PostgreSQL runs as `postgres`
        self.dir = Path(tempfile.mkdtemp(prefix="thaw-cluster-"))
        os.chmod(self.dir, 0o755)
        self.extra_env = dict(env or {})
        self.env = {}

    def up(self):
        env = dict(os.environ, THAW=str(THAW), **self.extra_env)
        env.pop("THAW_API_TOKEN", None)
        r = subprocess.run([str(ROOT / "scripts/cluster-up"), str(self.dir)], env=env,
                           capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            pytest.fail(f"cluster-up failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n"
                        + "".join(self.log(n)[-2000:] for n in (1, 2, 3)))
        self.reload()
        return self

    def reload(self):
        self.env = read_env(self.dir / "cluster.env")

    def down(self, keep=False):
        subprocess.run([str(ROOT / "scripts/cluster-down"), str(self.dir)],
                       capture_output=True, timeout=120)
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def n(self):
        return int(self.env["NODES"])

    @property
    def token(self):
        return self.env["THAW_API_TOKEN"]

    def admin(self, n):
        return self.env[f"ADMIN{n}"]

    def pid(self, n):
        return int(self.env[f"NODE{n}_PID"])

    def log(self, n):
        try:
            return (self.dir / f"n{n}" / "log").read_text(errors="replace")
        except OSError:
            return ""

    def logs(self):
        return "".join(self.log(n) for n in range(1, self.n + 1))

    # ---- HTTP

    def request(self, hp, method, path, headers=None, body=None, timeout=30):
        h, p = hostport(hp)
        c = http.client.HTTPConnection(h, p, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def get(self, host, path="/", **kw):
        """GET through HAProxy (FRONT) for the worker at Host host."""
        return self.request(self.env["FRONT"], "GET", path, {"Host": host}, **kw)

    def get_node(self, n, host, path="/"):
        """GET straight to node n, past HAProxy."""
        return self.request(self.env[f"NODE{n}"], "GET", path, {"Host": host})

    def api(self, n, method, path, body=None):
        status, data = self.request(self.admin(n).replace("http://", ""), method, path,
                                    {"Authorization": f"Bearer {self.token}"}, body, 60)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, data.decode(errors="replace")

    def metrics(self, n):
        return self.api(n, "GET", "/metrics")[1]

    def requests_by_worker(self, n):
        """{worker: requests answered} from node n's /metrics."""
        out = {}
        for w, _, count in re.findall(r'thaw_requests_total\{worker="([^"]+)",status="(\d+)"\}'
                                      r' (\d+)', self.metrics(n)):
            out[w] = out.get(w, 0) + int(count)
        return out

    # ---- deploys and nodes

    def cli(self, n, *args, timeout=120):
        env = dict(os.environ, THAW_API_TOKEN=self.token)
        r = subprocess.run([str(THAW), *args, "--to", self.admin(n)], env=env,
                           capture_output=True, text=True, timeout=timeout)
        assert r.returncode == 0, f"thaw {' '.join(args)} on node {n}: {r.stdout}{r.stderr}"
        return r

    def serving(self, n, name):
        """The version node n serves of worker name (0: none yet)."""
        status, doc = self.api(n, "GET", f"/v1/workers/{name}")
        return doc.get("version", 0) if status == 200 and isinstance(doc, dict) else 0

    def wait_everywhere(self, versions, deadline_s=30):
        """Until every node serves {name: version}: the control store
        (PostgreSQL, src/cluster/control*) carries a deploy to each node."""
        end = time.monotonic() + deadline_s
        left = {(n, name) for n in range(1, self.n + 1) for name in versions}
        while left:
            left = {(n, name) for n, name in left if self.serving(n, name) != versions[name]}
            if left and time.monotonic() > end:
                raise AssertionError(f"not served within {deadline_s} s: {sorted(left)}")
            if left:
                time.sleep(0.02)

    def deploy_everywhere(self, project):
        """Deploys the worker in project through node 1, then waits until
        every node serves that version."""
        self.cli(1, "deploy", str(project))
        status, doc = self.api(1, "GET", "/v1/workers")
        assert status == 200, doc
        self.wait_everywhere({w["name"]: w["version"] for w in doc["workers"]})

    def deploy_many_everywhere(self, projects):
        """Many workers at once through node 1's admin API (PUT
        /v1/workers/NAME with the bundle `thaw deploy` makes), then waits
        until every node serves each."""
        versions, errors = {}, []
        for name, d in projects:
            status, doc = self.api(1, "PUT", f"/v1/workers/{name}", bundle(str(d))[0])
            if status != 200:
                errors.append((name, status, doc))
            else:
                versions[name] = doc["version"]
        assert not errors, errors
        self.wait_everywhere(versions)

    def kill(self, n, sig=signal.SIGKILL):
        os.kill(self.pid(n), sig)

    def restart(self, n):
        env = dict(os.environ, THAW=str(THAW))
        r = subprocess.run([str(ROOT / "scripts/cluster-restart-node"), str(self.dir), str(n)],
                           env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"cluster-restart-node {n}: {r.stdout}{r.stderr}"
        self.reload()

    def redis(self):
        import redis  # Debian's python3-redis
        m = re.match(r"redis://([^:/]+):(\d+)/(\d+)", self.env["REDIS"])
        return redis.Redis(host=m.group(1), port=int(m.group(2)), db=int(m.group(3)),
                           socket_timeout=5)


def make_cluster(env=None):
    for tool in ("haproxy", "redis-server", "/usr/lib/postgresql/15/bin/initdb"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing: run scripts/install-deps")
    return Cluster(env).up()


def worker(root, name, source, **cfg):
    d = Path(root) / name
    write_worker(d, source, name=name, fmt="json", **cfg)
    return d
