"""D1 databases in a cluster (issue 19 item 4, docs/scale-out.md "Objects
and databases that live in one place"): real `thaw serve` nodes sharing a
real PostgreSQL. Each database has one owner node, recorded in
thaw_owners; a query sent to any other node is forwarded over the
internal port (THAW_CLUSTER_SECRET) and answers with the owner's data;
the other nodes' files are never written. When the owner dies its
databases answer a 503 naming it until it returns, with its data."""
import http.client
import json
import signal
import sqlite3
import threading

import pytest

from pglib import postgres, wait_for  # noqa: F401
from servelib import ThawServe
from thawlib import free_port, write_worker

SECRET = "cluster-secret-for-tests-0123456789"

# Runs the SQL steps POSTed as JSON [{"sql", "params", "db"}]; answers the
# last step's rows, or 500 with the exception's message.
RUNNER = """
    import json
    from workers import Response, WorkerEntrypoint


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            rows = None
            try:
                for s in await request.json():
                    db = getattr(self.env, s.get("db", "DB"))
                    r = await db.prepare(s["sql"]).bind(*s.get("params", [])).all()
                    rows = r.results
            except Exception as e:
                return Response(f"{type(e).__name__}: {e}", status=500)
            return Response(json.dumps(rows), headers={"content-type": "application/json"})
"""

DB_ID = "5b7c0d3e-0000-4000-8000-00000000c1d1"


def databases(n):
    return [{"binding": "DB" if i == 0 else f"DB{i}", "database_name": f"db{i}",
             "database_id": DB_ID if i == 0 else f"race-{i}"} for i in range(n)]


class Cluster:
    def __init__(self, tmp_path, pg):
        self.tmp = tmp_path
        self.pg = pg
        self.nodes = {}
        self.internal = {}

    def node(self, i, internal=True, start=True):
        """Node i; internal=False: a node with no internal address (it
        forwards, and is never picked as an owner)."""
        logdir = self.tmp / f"log{i}"
        logdir.mkdir(exist_ok=True)
        table = {"node": f"n{i}", "control": self.pg.url}
        if internal:
            table["internal"] = self.internal.setdefault(i, f"127.0.0.1:{free_port()}")
        cfg = self.tmp / f"n{i}.json"
        cfg.write_text(json.dumps({"cluster": table}))
        s = ThawServe(self.tmp / f"state{i}", logdir, ["--config", str(cfg)])
        self.nodes[i] = s
        return s.start() if start else s

    def ready(self, i):
        wait_for(f"node {i} /readyz",
                 lambda: self.nodes[i].api("GET", "/readyz", token="")[0] == 200 or None)

    def up(self, count):
        for i in range(1, count + 1):
            self.node(i)
        for i in range(1, count + 1):
            self.ready(i)
        names = [f"n{i}" for i in range(1, count + 1)]
        wait_for("every node live", lambda: [n["name"] for n in
                                             self.nodes[1].api("GET", "/v1/nodes")[1]["nodes"]]
                 == names, timeout=15)

    def stop_all(self):
        for s in self.nodes.values():
            if s.proc is not None and s.proc.poll() is None:
                s.stop()

    def owner(self, db_id=DB_ID):
        return self.pg.sql(f"SELECT string_agg(node || ' ' || epoch, ',') FROM thaw_owners "
                           f"WHERE worker = 'ledger' AND kind = 'd1' AND id = '{db_id}'")

    def file(self, i, db_id=DB_ID):
        return self.tmp / f"state{i}" / "workers" / "ledger" / "data" / "d1" / f"{db_id}.sqlite"


@pytest.fixture
def cluster(tmp_path, postgres, monkeypatch):  # noqa: F811
    monkeypatch.setenv("THAW_CLUSTER_SECRET", SECRET)
    c = Cluster(tmp_path, postgres)
    yield c
    c.stop_all()


def sql(node, *steps, timeout=30):
    """POSTs the steps to the worker `ledger` on node; (status, text)."""
    body = json.dumps([{"sql": s[0], "params": list(s[1:])} if isinstance(s, tuple)
                       else s for s in steps])
    r = node.request("POST", "/", body=body, headers={"Host": "ledger.localhost"},
                     timeout=timeout)
    return r.status, r.text


def rows(node, *steps):
    status, text = sql(node, *steps)
    assert status == 200, text
    return json.loads(text)


def deploy(c, tmp_path, n_dbs=1, files=None):
    d = tmp_path / "ledger"
    write_worker(d, RUNNER, name="ledger", fmt="json", d1_databases=databases(n_dbs),
                 files=files)
    c.nodes[1].cli("deploy", str(d))
    for s in c.nodes.values():
        wait_for("ledger on every node",
                 lambda s=s: s.host_get("ledger.localhost").status in (200, 500))


def tables(path):
    """The tables of a node's own file (read-only: thaw may have it open)."""
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return sorted(r[0] for r in db.execute("SELECT name FROM sqlite_master "
                                               "WHERE type = 'table'"))
    finally:
        db.close()


def internal_post(addr, body, secret):
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
    try:
        c.request("POST", "/v1/d1", body=json.dumps(body), headers=headers)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def test_a_query_on_a_non_owner_returns_the_owners_data(cluster, tmp_path):
    cluster.up(3)
    deploy(cluster, tmp_path)
    n = cluster.nodes
    # the first use, through node 1, picks the owner and records it
    rows(n[1], ("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",),
         ("INSERT INTO notes (body) VALUES (?)", "from n1"))
    owner, epoch = cluster.owner().split()
    assert owner in ("n1", "n2", "n3") and epoch == "1"
    rows(n[2], ("INSERT INTO notes (body) VALUES (?)", "from n2"))
    rows(n[3], ("INSERT INTO notes (body) VALUES (?)", "from n3"))
    want = [{"id": 1, "body": "from n1"}, {"id": 2, "body": "from n2"},
            {"id": 3, "body": "from n3"}]
    for i in (1, 2, 3):
        assert rows(n[i], ("SELECT id, body FROM notes ORDER BY id",)) == want
    # the data is on the owner's disk only: the others forwarded
    k = int(owner[1:])
    assert tables(cluster.file(k)) == ["notes"]
    for i in {1, 2, 3} - {k}:
        assert "notes" not in tables(cluster.file(i))
    # D1's errors come back as they are
    status, text = sql(n[(k % 3) + 1], ("SELECT * FROM missing",))
    assert status == 500 and "no such table: missing" in text, text
    # the owner stays: one row, never recomputed
    assert cluster.owner() == f"{owner} 1"


def test_nodes_racing_for_a_new_database_agree(cluster, tmp_path):
    cluster.up(3)
    deploy(cluster, tmp_path, n_dbs=6)
    n = cluster.nodes
    results = {}

    def first_use(i, b):
        results[(i, b)] = sql(n[i], {"db": f"DB{b}", "sql": "CREATE TABLE IF NOT EXISTS t "
                                     "(node TEXT)"},
                              {"db": f"DB{b}", "sql": "INSERT INTO t VALUES (?)",
                               "params": [f"n{i}"]})
    threads = [threading.Thread(target=first_use, args=(i, b))
               for b in range(1, 6) for i in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for key, (status, text) in results.items():
        assert status == 200, (key, text)
    owners = set()
    for b in range(1, 6):
        row = cluster.pg.sql(f"SELECT count(*) || ' ' || min(node) FROM thaw_owners "
                             f"WHERE worker = 'ledger' AND kind = 'd1' AND id = 'race-{b}'")
        count, owner = row.split()
        assert count == "1", row
        owners.add(owner)
        # every node's insert is in the one file, seen the same from each node
        for i in (1, 2, 3):
            got = rows(n[i], {"db": f"DB{b}", "sql": "SELECT node FROM t ORDER BY node"})
            assert got == [{"node": "n1"}, {"node": "n2"}, {"node": "n3"}], (b, i, got)
        k = int(owner[1:])
        for i in {1, 2, 3} - {k}:
            assert "t" not in tables(cluster.file(i, f"race-{b}"))
    # rendezvous hashing spreads five databases over more than one node
    assert len(owners) > 1, owners


def test_owner_killed_gives_503_naming_it_until_it_returns(cluster, tmp_path):
    cluster.up(3)
    deploy(cluster, tmp_path)
    n = cluster.nodes
    rows(n[1], ("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)",),
         ("INSERT INTO kv VALUES ('a', 'kept')",))
    owner = cluster.owner().split()[0]
    k = int(owner[1:])
    other = n[(k % 3) + 1]
    n[k].stop(signal.SIGKILL)
    # at once: the forward finds nobody; after 5 s without a heartbeat the
    # store says it is down. Either way a 503 that names the owner
    status, text = sql(other, ("SELECT v FROM kv",))
    assert status == 500 and "503 Service Unavailable" in text and owner in text, text
    wait_for("the owner reported down", lambda: "which is down" in sql(
        other, ("SELECT v FROM kv",))[1], timeout=20, interval=0.2)
    status, text = sql(other, ("SELECT v FROM kv",))
    assert f"it lives on node {owner}, which is down" in text, text
    assert "served again once" in text, text
    # nothing moved: no other node took it over with an empty file
    assert cluster.owner() == f"{owner} 1"
    for i in {1, 2, 3} - {k}:
        assert "kv" not in tables(cluster.file(i))
    # the owner returns with its disk: the data is back, through any node
    cluster.node(k)
    cluster.ready(k)
    wait_for("the data through another node", lambda: sql(other, ("SELECT v FROM kv",))
             == (200, json.dumps([{"v": "kept"}])), timeout=20, interval=0.2)


def test_the_internal_port_wants_the_secret_and_the_owner(cluster, tmp_path):
    cluster.up(2)
    deploy(cluster, tmp_path)
    rows(cluster.nodes[1], ("CREATE TABLE x (v)",), ("INSERT INTO x VALUES (1)",))
    owner = cluster.owner().split()[0]
    k = int(owner[1:])
    not_owner = 2 if k == 1 else 1
    call = {"worker": "ledger", "id": DB_ID, "op": "query",
            "args": {"sql": "SELECT v FROM x", "params": []}}
    for secret in (None, "wrong", SECRET + "x", ""):
        status, text = internal_post(cluster.internal[k], call, secret)
        assert status == 401 and "THAW_CLUSTER_SECRET" in text, (secret, status, text)
    status, text = internal_post(cluster.internal[k], call, SECRET)
    assert status == 200 and json.loads(text)["rows"] == [[1]], text
    # a node asked to serve what the store says another owns refuses
    status, text = internal_post(cluster.internal[not_owner], call, SECRET)
    assert status == 409, text
    assert f"the control store says {owner} (epoch 1)" in json.loads(text)["error"], text
    assert "x" not in tables(cluster.file(not_owner))
    # the public port does not take internal calls
    r = cluster.nodes[k].request("POST", "/v1/d1", body=json.dumps(call),
                                 headers={"Host": "nobody.localhost",
                                          "Authorization": f"Bearer {SECRET}"})
    assert r.status == 404, r.text


def test_a_node_whose_ownership_moved_stops_serving_it(cluster, tmp_path):
    cluster.up(2)
    deploy(cluster, tmp_path)
    n = cluster.nodes
    rows(n[1], ("CREATE TABLE m (v TEXT)",), ("INSERT INTO m VALUES ('old owner')",))
    old = cluster.owner().split()[0]
    k = int(old[1:])
    new = 2 if k == 1 else 1
    # the operator moves it (docs/scale-out.md): a new epoch, moved now
    cluster.pg.sql(f"UPDATE thaw_owners SET node = 'n{new}', epoch = epoch + 1, "
                   f"moved_at = now() WHERE worker = 'ledger' AND id = '{DB_ID}'")
    # the old owner's lease runs out: it forwards to the new owner, whose
    # file has no table m yet; nothing answers from the old file again
    for i in (k, new):
        wait_for(f"node {i} serving from the new owner",
                 lambda i=i: "no such table: m" in sql(n[i], ("SELECT v FROM m",))[1],
                 timeout=20, interval=0.1)
    rows(n[k], ("CREATE TABLE m (v TEXT)",), ("INSERT INTO m VALUES ('new owner')",))
    for i in (k, new):
        assert rows(n[i], ("SELECT v FROM m",)) == [{"v": "new owner"}]
    # the write went to the new owner's file; the old one kept its own
    db = sqlite3.connect(f"file:{cluster.file(k)}?mode=ro", uri=True)
    assert db.execute("SELECT v FROM m").fetchall() == [("old owner",)]
    db.close()
    assert cluster.owner() == f"n{new} 2"


def test_a_node_with_an_internal_address_and_no_secret_does_not_start(cluster, monkeypatch):
    # it would be listed as a possible owner and never be reachable
    monkeypatch.delenv("THAW_CLUSTER_SECRET")
    s = cluster.node(1, start=False)
    s.spawn()
    assert s.proc.wait(timeout=60) == 2
    err = s.stderr_path.read_text()
    assert "internal = " in err and "set THAW_CLUSTER_SECRET" in err, err


def test_a_node_without_the_secret_says_so_when_it_must_forward(cluster, tmp_path,
                                                                 monkeypatch):
    cluster.node(1)
    monkeypatch.delenv("THAW_CLUSTER_SECRET")
    cluster.node(2, internal=False)  # may run, but cannot forward
    cluster.ready(1)
    cluster.ready(2)
    deploy(cluster, tmp_path)
    # the database is node 1's (as the first use through node 1 might have made it)
    wait_for("the owners table", lambda: cluster.pg.sql(
        "SELECT count(*) FROM pg_tables WHERE tablename = 'thaw_owners'") == "1")
    cluster.pg.sql(f"INSERT INTO thaw_owners VALUES ('ledger', 'd1', '{DB_ID}', 'n1', 1)")
    rows(cluster.nodes[1], ("CREATE TABLE s (v)",))
    status, text = sql(cluster.nodes[2], ("SELECT v FROM s",))
    assert status == 500 and "THAW_CLUSTER_SECRET is not set on this node" in text, text
    assert "owner node n1" in text, text


def test_migrations_apply_on_the_owner_only(cluster, tmp_path):
    cluster.up(2)
    deploy(cluster, tmp_path, files={"migrations/0001_init.sql":
                                     "CREATE TABLE t (v TEXT);\nINSERT INTO t VALUES ('m');\n"})
    rows(cluster.nodes[1], ("SELECT 1 AS one",))  # the first use picks the owner
    owner = cluster.owner().split()[0]
    k = int(owner[1:])
    other = cluster.nodes[2 if k == 1 else 1]
    path = "/v1/workers/ledger/d1/DB/migrations"
    # not on a file nobody reads: the other node refuses, naming the owner
    status, body = other.api("POST", path + "/apply")
    assert status == 409 and f"lives on node {owner}" in body["error"], body
    status, body = other.api("GET", path)
    assert status == 409, body
    status, body = cluster.nodes[k].api("POST", path + "/apply")
    assert status == 200 and body["applied"] == ["0001_init.sql"], body
    assert rows(other, ("SELECT v FROM t",)) == [{"v": "m"}]
