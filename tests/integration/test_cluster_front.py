"""A thaw cluster behind HAProxy (docs/scale-out.md), with real HAProxy,
Redis, PostgreSQL and three `thaw serve` processes started by
scripts/cluster-up: KV shared by the nodes through the [cluster] Redis,
tail across nodes, warm routing (each worker's requests go to the node
that holds it), and a node killed under load."""
import json
import subprocess
import threading
import time

import pytest

from clusterlib import make_cluster, worker
from thawlib import THAW, wait_for

KV_WORKER = '''
from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = request.url
        path = url.split("/", 3)[3].split("?")[0] if url.count("/") >= 3 else ""
        if path.startswith("put/"):
            _, k, v = path.split("/")
            await self.env.KV.put(k, v)
            return Response("stored")
        if path.startswith("get/"):
            v = await self.env.KV.get(path.split("/")[1])
            return Response("none" if v is None else v)
        if path.startswith("say/"):
            print("SAID", path.split("/")[1])
            return Response("said")
        return Response("hello TAG")
'''


@pytest.fixture(scope="module")
def cluster():
    c = make_cluster()
    yield c
    c.down()


@pytest.fixture(scope="module")
def kvw(cluster, tmp_path_factory):
    d = worker(tmp_path_factory.mktemp("w"), "kvw", KV_WORKER.replace("TAG", "kvw"),
               kv_namespaces=[{"binding": "KV", "id": "shared"}])
    cluster.deploy_everywhere(d)
    return d


def test_kv_put_on_node1_is_read_on_node2(cluster, kvw):
    # no [kv] table in the nodes' configs: [cluster] redis is KV's default
    assert cluster.get_node(1, "kvw.localhost", "/put/color/teal") == (200, b"stored")
    assert cluster.get_node(2, "kvw.localhost", "/get/color") == (200, b"teal")
    assert cluster.get_node(3, "kvw.localhost", "/get/color") == (200, b"teal")
    # in the cluster's Redis, under the worker's keyspace
    assert cluster.redis().hget("thaw:kv:kvw:shared:v:color", "v") == b"teal"
    # and on no node's disk
    for n in (1, 2, 3):
        assert not list((cluster.dir / f"n{n}" / "state").rglob("shared.sqlite"))


def test_tail_on_node2_shows_a_line_printed_on_node1(cluster, kvw):
    env = dict(__import__("os").environ, THAW_API_TOKEN=cluster.token)
    tail = subprocess.Popen([str(THAW), "tail", "kvw", "--to", cluster.admin(2)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    threading.Thread(target=lambda: lines.extend(iter(tail.stdout.readline, "")),
                     daemon=True).start()
    try:
        # node 1 learns of the tail within a second (PUBSUB NUMSUB): keep
        # printing until the line comes through
        deadline = time.monotonic() + 20
        while not any("SAID from-n1" in ln for ln in lines):
            assert time.monotonic() < deadline, f"no line from node 1 in node 2's tail: {lines}"
            assert cluster.get_node(1, "kvw.localhost", "/say/from-n1") == (200, b"said")
            time.sleep(0.3)
        line = json.loads(next(ln for ln in lines if "SAID from-n1" in ln))
        assert line["node"] == "n1" and line["type"] == "log" and line["worker"] == "kvw"
        # node 2's own lines reach its tail too, without a "node"
        assert cluster.get_node(2, "kvw.localhost", "/say/from-n2") == (200, b"said")
        wait_for(lambda: any("SAID from-n2" in ln for ln in lines), "node 2's own line")
        assert "node" not in json.loads(next(ln for ln in lines if "SAID from-n2" in ln))
    finally:
        tail.terminate()
        tail.wait(5)
    # once nobody tails, node 1 stops publishing (it asks again each second)
    time.sleep(1.5)
    before = cluster.redis().info("stats")["total_commands_processed"]
    for _ in range(20):
        cluster.get_node(1, "kvw.localhost", "/say/unheard")
    r = cluster.redis()
    stats = r.execute_command("INFO", "commandstats")
    assert r.pubsub_numsub("thaw:tail:kvw") == [(b"thaw:tail:kvw", 0)]
    # at most a NUMSUB or two for those 20 lines, not 20 PUBLISHes
    assert r.info("stats")["total_commands_processed"] - before < 10, stats
