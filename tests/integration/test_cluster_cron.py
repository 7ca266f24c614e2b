"""Cron triggers in a cluster (docs/scale-out.md): every node runs the
worker's schedulers, and each scheduled time fires on exactly one node,
the one that wins its lease in Redis, including while a node is killed
(kill -9) and restarted. The nodes share one fast clock (the testing aids
THAW_CRON_CLOCK_START, _AT and _RATE): a cron minute passes every few
seconds. `make cluster-soak` runs the same test on the real clock for five
minutes (THAW_CLUSTER_SOAK=1)."""
import calendar
import json
import os
import re
import time

import pytest

from clusterlib import make_cluster, worker
from servelib import serve_factory  # noqa: F401
from thawlib import free_port

SCHED = '''
from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("cron worker")

    async def scheduled(self, controller, env, ctx):
        print(f"RAN t={int(controller.scheduledTime)}")
'''

SOAK = os.environ.get("THAW_CLUSTER_SOAK") == "1"
# a minute of the schedulers' clock lasts MINUTE_S real seconds
RATE = 1 if SOAK else 30
MINUTE_S = 60 / RATE
RUN_MINUTES = 5 if SOAK else 9


def fired(cluster):
    """{scheduled minute (ms): [node, ...]} from the RAN lines of every
    node's log (a log survives its node's restarts)."""
    out = {}
    for n in range(1, cluster.n + 1):
        for t in re.findall(r"RAN t=(\d+)", cluster.log(n)):
            out.setdefault(int(t), []).append(n)
    return out


def test_a_cron_fires_once_per_minute_across_three_nodes(tmp_path):
    start = "2030-01-01T00:59:00Z"
    t0 = calendar.timegm(time.strptime(start, "%Y-%m-%dT%H:%M:%SZ")) * 1000
    at = int(time.time() * 1000)

    def clock():  # the nodes' clock, in ms
        return t0 + (int(time.time() * 1000) - at) * RATE

    cluster = make_cluster({"THAW_CRON_CLOCK_START": start, "THAW_CRON_CLOCK_AT": str(at),
                            "THAW_CRON_CLOCK_RATE": str(RATE)})
    try:
        cluster.deploy_everywhere(worker(tmp_path, "tick", SCHED,
                                         triggers={"crons": ["* * * * *"]}))
        # watch whole minutes from the next one on: every node has it by then
        first = (clock() // 60000 + 1) * 60000
        time.sleep(RUN_MINUTES / 3 * MINUTE_S)
        cluster.kill(2)  # kill -9, in the middle of the run
        killed_at = time.time()
        time.sleep(RUN_MINUTES / 3 * MINUTE_S)
        cluster.restart(2)
        time.sleep(max(0, RUN_MINUTES / 3 * MINUTE_S - (time.time() - killed_at)
                       + RUN_MINUTES / 3 * MINUTE_S))
        last = max(fired(cluster)) - 60000  # the newest may still be running
        got = fired(cluster)
        r = cluster.redis()
        minutes = list(range(first, last + 1, 60000))
        assert len(minutes) >= RUN_MINUTES - 2, (first, last, sorted(got))
        holders = {}
        for m in minutes:
            holder = r.get(f"thaw:cron:tick:{m}:* * * * *")
            holders[m] = holder.decode() if holder else None
            if holders[m] is None:
                continue  # reported below, with the whole table
            # one run, on the node that holds the minute's lease
            if holders[m] == "n2" and m not in got:
                continue  # node 2 won the lease and was killed before it ran
            assert got.get(m, []) == [int(holders[m][1:])], (m, got.get(m), holders[m])
        # every minute had its lease taken, those while node 2 was dead too
        # (which node wins a minute is a race: no node is required to)
        assert None not in holders.values(), holders
        assert '"event":"scheduled"' in cluster.logs() and '"node":"n' in cluster.logs()
    except BaseException:
        cluster.down(keep=True)
        print("cluster kept in", cluster.dir)
        raise
    cluster.down()


def test_unreachable_redis_fires_nothing_and_says_why(serve_factory, tmp_path, monkeypatch):
    """Without its lease no node may fire: the event is skipped, and the
    log names the Redis and the reason (firing anyway would fire it on
    every node)."""
    port = free_port()  # nothing listens there
    cfg = tmp_path / "node.json"
    cfg.write_text(json.dumps({"cluster": {"node": "n1", "redis": f"redis://127.0.0.1:{port}/0"}}))
    monkeypatch.setenv("THAW_CRON_CLOCK_START", "2030-01-01T00:59:52Z")
    srv = serve_factory(args=["--config", str(cfg)])
    srv.cli("deploy", str(worker(tmp_path, "tick", SCHED, triggers={"crons": ["* * * * *"]})))
    log = srv.wait_log("not fired", timeout=60)
    assert (f'cron "* * * * *" of tick at 1893459600000: not fired: the cluster\'s Redis at '
            f'redis://127.0.0.1:{port}/0 is unreachable') in log, log
    assert "RAN t=" not in srv.log()
