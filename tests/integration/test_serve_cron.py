"""Cron triggers under `thaw serve`: one scheduler per deployed worker
that follows deploys, rollbacks and deletes, and comes back after a
restart. The scheduler's clock is started just before a minute boundary
with THAW_CRON_CLOCK_START (docs/bindings/cron.md), so every trigger of
the test fires at that boundary, seconds after the start."""
import calendar
import re
import signal
import time

import pytest

from servelib import project, serve_factory  # noqa: F401
from thawlib import write_main, write_worker

SCHED = '''
from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("fetch TAG")

    async def scheduled(self, controller, env, ctx):
        print(f"RAN TAG cron={controller.cron!r} t={int(controller.scheduledTime)}")
'''


def ms(iso):
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")) * 1000


def cron_worker(root, name, tag, crons):
    d = root / name
    triggers = {"triggers": {"crons": crons}} if crons is not None else {}
    write_worker(d, SCHED.replace("TAG", tag), name=name, **triggers)
    return d


def ran(log):
    return re.findall(r"RAN (\S+) cron='([^']*)' t=(\d+)", log)


def test_crons_follow_deploys_rollbacks_deletes_and_restarts(serve_factory, tmp_path,
                                                             monkeypatch):
    # the boundary 01:00:00 comes 25 s after the start: every change below
    # is made before it, and what fires then is what the last change left
    monkeypatch.setenv("THAW_CRON_CLOCK_START", "2030-01-01T00:59:35Z")
    began = time.monotonic()
    srv = serve_factory()
    # a deploy replaces the crons and the code of the previous version
    srv.cli("deploy", str(cron_worker(tmp_path, "upd", "upd-v1", ["*/5 * * * *"])))
    srv.cli("deploy", str(cron_worker(tmp_path, "upd", "upd-v2", ["0 1 * * *"])))
    # a rollback brings back the old version's crons and code
    srv.cli("deploy", str(cron_worker(tmp_path, "rb", "rb-v1", ["0 * * * *"])))
    srv.cli("deploy", str(cron_worker(tmp_path, "rb", "rb-v2", ["30 * * * *"])))
    srv.cli("rollback", "rb")
    # a version without triggers stops them; a deleted worker has none
    srv.cli("deploy", str(cron_worker(tmp_path, "off", "off-v1", ["* * * * *"])))
    srv.cli("deploy", str(cron_worker(tmp_path, "off", "off-v2", None)))
    srv.cli("deploy", str(cron_worker(tmp_path, "gone", "gone-v1", ["* * * * *"])))
    srv.cli("delete", "gone")
    # /__scheduled is thaw dev's test route: a deployed worker's fetch gets it
    r = srv.host_get("upd.localhost", "/__scheduled?cron=*+*+*+*+*")
    assert (r.status, r.text) == (200, "fetch upd-v2"), r
    if time.monotonic() - began > 22:
        pytest.skip("the machine was too slow to set up before the minute boundary")
    log = srv.wait_log("RAN upd-v2", "RAN rb-v1", timeout=60)
    time.sleep(1.0)  # anything else due at 01:00 has run by now
    log = srv.log()
    t = str(ms("2030-01-01T01:00:00Z"))
    assert sorted(ran(log)) == [("rb-v1", "0 * * * *", t), ("upd-v2", "0 1 * * *", t)], log
    assert '"event":"scheduled"' in log

    # restarted (SIGKILL), the serving versions' crons are armed again
    srv.stop(signal.SIGKILL)
    monkeypatch.setenv("THAW_CRON_CLOCK_START", "2030-01-01T01:59:57Z")
    srv.start()
    log = srv.wait_log("RAN rb-v1", timeout=60)
    t = str(ms("2030-01-01T02:00:00Z"))
    assert ran(log) == [("rb-v1", "0 * * * *", t)], log
