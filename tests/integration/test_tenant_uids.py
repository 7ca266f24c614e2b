"""Least privilege as a second wall (issue 14, item 3): as root, `thaw
serve` runs each worker version's processes under a host uid of its own,
never 0, so the host's file modes protect root's files and sockets even if
another wall failed, and no two workers share a uid. The state directory
lives under a directory only root may enter (pytest's 0700 tmp dir, a
0700 dir under /var/lib): the workers must still read their bundles."""
import os

import pytest

from tenantlib import tenant  # noqa: F401 (fixture)
from thawlib import proc_children

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="thaw as root only")

BASE, COUNT = 0x70000000, 65536   # src/sandbox/uids.h

PROBE = r'''
import json, os
from workers import Response, WorkerEntrypoint

# who owns root's files, as this worker sees them: 0 would be itself
TOP = os.stat("/usr").st_uid

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response(json.dumps({"top": TOP, "handler": os.stat("/etc/passwd").st_uid,
                                    "me": os.getuid()}))
'''


def host_ids(pid):
    """Real, effective, saved and fs uids and gids, and the supplementary
    groups (none of root's may stay)."""
    ids = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                ids[key] = [int(x) for x in rest.split()]
    return ids


def tree(pid):
    out = []
    for c in proc_children(pid):
        out.append(c)
        out += tree(c)
    return out


def worker_uids(srv):
    """{worker name: host uids of its templates and instances}"""
    seen = {}
    for pid in tree(srv.proc.pid):
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if comm in ("thaw-template", "thaw-instance") and "/workers/" in cwd:
            name = cwd.split("/workers/")[1].split("/")[0]
            ids = host_ids(pid)
            assert ids["Groups"] == [], (name, comm, ids)
            assert set(ids["Gid"]) == set(ids["Uid"]), (name, comm, ids)
            seen.setdefault(name, set()).update(ids["Uid"])
    return seen


def test_each_worker_has_a_host_uid_of_its_own(tenant):  # noqa: F811
    srv = tenant.serve()
    # probe-b in a zygote of its own: its slot still differs from the others'
    for name, cfg in (("probe-a", {}), ("probe-b", {"thaw": {"isolation": "per-worker"}})):
        rc, out = tenant.deploy(name, PROBE, **cfg)
        assert rc == 0, out
        r = srv.host_get(f"{name}.localhost")
        assert r.status == 200, r
        got = r.json()
        # uid 0 of its own namespace, but root's files are not its own
        assert got["me"] == 0, got
        assert got["top"] != 0 and got["handler"] != 0, got
    uids = worker_uids(srv)
    assert {"innocent", "probe-a", "probe-b"} <= set(uids), uids
    for name, ids in uids.items():
        assert len(ids) == 1, (name, ids)
        (uid,) = ids
        assert BASE < uid < BASE + COUNT, (name, uid)
    assert len({min(ids) for ids in uids.values()}) == len(uids), uids
    tenant.innocent_serves()


def test_an_operator_umask_of_077_does_not_stop_builds(tenant):  # noqa: F811
    """Bundles are unpacked with explicit modes: the worker's own uid reads
    them even when thaw serve runs under a umask that would hide them."""
    old = os.umask(0o077)
    try:
        srv = tenant.serve()   # the innocent is deployed and answers
    finally:
        os.umask(old)
    rc, out = tenant.deploy("probe", PROBE)
    assert rc == 0, out + srv.log()[-2000:]
    r = srv.host_get("probe.localhost")
    assert r.status == 200, r
