"""Durable Objects in a cluster (issue 19 item 4, docs/scale-out.md
"Objects and databases that live in one place"): real `thaw serve` nodes
sharing a real PostgreSQL. Each object has one owner node (thaw_owners,
kind "do"); a call (RPC or fetch) made on any other node is forwarded to
the owner's internal port and answers as if it ran there: one object, one
storage, on one disk. When the owner dies its objects answer a 503 naming
it until it returns."""
import json
import signal

from pglib import postgres, wait_for  # noqa: F401
from test_cluster_owner import cluster  # noqa: F401 (the fixture)
from thawlib import write_worker

WORKER = """
    import json
    from urllib.parse import urlparse, parse_qs
    from workers import DurableObject, Response, WorkerEntrypoint


    class Counter(DurableObject):
        def __init__(self, ctx, env):
            super().__init__(ctx, env)
            self.calls = 0  # in memory: a second copy of the object would restart it

        async def increment(self):
            self.calls += 1
            value = ((await self.ctx.storage.get("value")) or 0) + 1
            await self.ctx.storage.put("value", value)
            return [value, self.calls]

        def boom(self, message):
            raise ValueError(message)

        async def fetch(self, request):
            return Response(json.dumps({"method": request.method, "url": request.url,
                                        "body": await request.text(),
                                        "x": request.headers.get("x-test")}),
                            status=201, headers={"x-from": "object"})


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            url = urlparse(request.url)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            stub = self.env.COUNTER.getByName(q.get("name", "default"))
            try:
                if url.path == "/fetch":
                    r = await stub.fetch("http://object.test/p?q=1", method="POST",
                                         body="hello " * 50000, headers={"x-test": "yes"})
                    return Response(await r.text(), status=r.status,
                                    headers={"x-from": r.headers.get("x-from") or ""})
                if url.path == "/ws":
                    r = await stub.fetch(request)
                    return Response(f"status {r.status}")
                if url.path == "/boom":
                    await stub.boom("from the object")
                return Response(json.dumps(await stub.increment()))
            except Exception as e:
                return Response(f"{type(e).__name__}: {e}", status=500)
"""

CONFIG = dict(durable_objects={"bindings": [{"name": "COUNTER", "class_name": "Counter"}]},
              migrations=[{"tag": "v1", "new_sqlite_classes": ["Counter"]}])


def deploy(c, tmp_path):
    d = tmp_path / "counter"
    write_worker(d, WORKER, name="counter", fmt="json", **CONFIG)
    c.nodes[1].cli("deploy", str(d))
    for s in c.nodes.values():
        wait_for("counter on every node",
                 lambda s=s: s.host_get("counter.localhost", "/?name=warmup").status
                 in (200, 500))


def get(node, path):
    r = node.request("GET", path, headers={"Host": "counter.localhost"}, timeout=30)
    return r.status, r.text


def owner_of(c):
    rows = c.pg.sql("SELECT id || ' ' || node || ' ' || epoch FROM thaw_owners WHERE "
                    "worker = 'counter' AND kind = 'do' ORDER BY id").splitlines()
    return [r.split() for r in rows]


def object_files(c, i):
    d = c.tmp / f"state{i}" / "workers" / "counter" / "data" / "do"
    return sorted(p.name for p in d.rglob("*.sqlite")) if d.exists() else []


def test_calls_through_every_node_reach_one_object_on_its_owner(cluster, tmp_path):  # noqa: F811
    cluster.up(3)
    deploy(cluster, tmp_path)
    n = cluster.nodes
    before = {r[0] for r in owner_of(cluster)}
    # one object: its storage and its memory see every call, whichever node
    got = [json.loads(get(n[i], "/?name=shared")[1]) for i in (1, 2, 3, 1, 2, 3)]
    assert got == [[k, k] for k in range(1, 7)], got
    rows = [r for r in owner_of(cluster) if r[0] not in before]
    assert len(rows) == 1 and rows[0][0].startswith("Counter/") and rows[0][2] == "1", rows
    owner = rows[0][1]
    k = int(owner[1:])
    oid = rows[0][0].split("/", 1)[1]
    # its storage is on the owner's disk only
    assert f"{oid}.sqlite" in object_files(cluster, k)
    for i in {1, 2, 3} - {k}:
        assert f"{oid}.sqlite" not in object_files(cluster, i)
    other = n[(k % 3) + 1]
    # fetch through a node that is not the owner: method, URL, body,
    # headers and status as the object answered (a body over 64 KiB)
    status, text = get(other, "/fetch?name=shared")
    assert status == 201, text
    body = json.loads(text)
    assert body == {"method": "POST", "url": "http://object.test/p?q=1",
                    "body": "hello " * 50000, "x": "yes"}
    # the object's exception reaches the caller on the other node
    status, text = get(other, "/boom?name=shared")
    assert status == 500 and text == "ValueError: from the object", text
    # an upgrade the object does not take: its answer, through the relay
    # of WebSockets (test_cluster_owner_ws.py has the sockets)
    r = other.request("GET", "/ws?name=shared", headers={
        "Host": "counter.localhost", "Upgrade": "websocket", "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"})
    assert r.status == 200 and r.text == "status 201", r.text


def test_owner_killed_gives_503_naming_it_until_it_returns(cluster, tmp_path):  # noqa: F811
    cluster.up(2)
    deploy(cluster, tmp_path)
    n = cluster.nodes
    before = {r[0] for r in owner_of(cluster)}
    assert get(n[1], "/?name=k")[1] == "[1, 1]"
    row = [r for r in owner_of(cluster) if r[0] not in before][0]
    k = int(row[1][1:])
    other = n[2 if k == 1 else 1]
    assert get(other, "/?name=k")[1] == "[2, 2]"
    n[k].stop(signal.SIGKILL)
    status, text = get(other, "/?name=k")
    assert status == 500 and "503 Service Unavailable" in text and row[1] in text, text
    wait_for("the owner reported down", lambda: "which is down" in get(other, "/?name=k")[1],
             timeout=20, interval=0.2)
    # not taken over: the object stays the dead node's
    assert [r for r in owner_of(cluster) if r[0] == row[0]] == [row]
    cluster.node(k)
    cluster.ready(k)
    # its storage came back with its node (its memory did not)
    wait_for("the object through the other node",
             lambda: get(other, "/?name=k") == (200, "[3, 1]"), timeout=20, interval=0.2)
