"""Escape 5 of issue 14: a worker's environment is a clean, documented one,
never thaw's own. thaw serve is started with the admin token and cloud
credentials in its environment, as docs/api.md suggests and as hosts
have them; a hostile worker reads os.environ (at its top level, in the
template, and in a handler, in an instance) and /proc/self/environ, and
must find none of them. The same under `thaw dev`: a developer's shell
is no worker's business either (values come from [vars] and .dev.vars)."""
import json
import os

import pytest

from servelib import TOKEN
from tenantlib import tenant  # noqa: F401 (fixture)
from thawlib import write_worker

SECRETS = {
    "THAW_API_TOKEN": TOKEN,
    "AWS_SECRET_ACCESS_KEY": "aws-secret-wJalrXUtnFEMI-K7MDENG",
    "AWS_ACCESS_KEY_ID": "AKIA-host-key-id-4471",
    "HOST_SECRET": "host-secret-value-93817",
}
# docs/security.md, "A worker's environment"
DOCUMENTED = {"LANG", "HOME", "TZ", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR"}

HOSTILE = '''
import json, os
from workers import Response, WorkerEntrypoint

AT_TOP = dict(os.environ)   # in the template, before any request


def proc_environ():
    try:
        with open("/proc/self/environ", "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"unreadable: {e.strerror}"


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        try:
            greeting = self.env.GREETING
        except Exception:
            greeting = None
        return Response(json.dumps({"vars": greeting, "top": AT_TOP, "handler": dict(os.environ),
                                    "bytes": {k.decode(): v.decode()
                                              for k, v in os.environb.items()},
                                    "proc": proc_environ()}))
'''


def check(out, sandboxed):
    text = json.dumps(out)
    for name, value in SECRETS.items():
        assert value not in text, f"{name}'s value reached the worker ({sorted(out['handler'])})"
    for where in ("top", "handler", "bytes"):
        env = out[where]
        assert set(env) <= DOCUMENTED, f"{where}: undocumented variables {set(env) - DOCUMENTED}"
        assert env.get("LANG") == "C.UTF-8", (where, env)
        assert env.get("HOME") == "/tmp", (where, env)
        assert env.get("TZ") == "Etc/UTC", (where, env)  # thaw's, passed on: documented
        for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
            assert env.get(name) == os.environ.get(name), (where, name, env)
    if sandboxed:
        assert out["handler"]["TMPDIR"].startswith("/tmp/i"), out["handler"]
    proc = out["proc"]
    if not proc.startswith("unreadable"):
        names = {kv.partition("=")[0] for kv in proc.split("\0") if kv}
        assert names <= DOCUMENTED, f"/proc/self/environ: {names - DOCUMENTED}"


def test_serve_workers_see_a_clean_environment(tenant):
    # servelib puts THAW_API_TOKEN in thaw's environment; the rest here
    env = {k: v for k, v in SECRETS.items() if k != "THAW_API_TOKEN"}
    srv = tenant.serve(env=dict(env, TZ="Etc/UTC", THAW_SB_TIMING="1"))
    tenant.deploy("hostile", HOSTILE, check=True)
    r = srv.host_get("hostile.localhost")
    assert r.status == 200, r
    out = r.json()
    check(out, sandboxed=True)
    # thaw's own knob for the zygote is not the worker's
    assert "THAW_SB_TIMING" not in out["handler"] and "THAW_SB_TIMING" not in out["top"]
    tenant.innocent_serves()


@pytest.mark.parametrize("sandbox", [False, True], ids=["dev", "dev-sandboxed"])
def test_dev_workers_see_a_clean_environment(thaw_factory, tmp_path, monkeypatch, sandbox):
    for k, v in dict(SECRETS, TZ="Etc/UTC").items():
        monkeypatch.setenv(k, v)
    d = tmp_path / "hostile"
    write_worker(d, HOSTILE, name="hostile", vars={"GREETING": "from [vars]"})
    srv = thaw_factory(d, sandbox=sandbox)
    r = srv.get("/")
    assert r.status == 200, (r, srv.log()[-2000:])
    out = r.json()
    check(out, sandboxed=sandbox)
    assert out["vars"] == "from [vars]", "values reach a worker through [vars]"
