"""The cluster's control state in PostgreSQL (issue 19 item 2,
docs/scale-out.md "Control state: PostgreSQL"): real `thaw serve` nodes
whose operator config names the same control store; a deploy, rollback,
delete or grant made through any node's admin API is answered once
PostgreSQL has it and reaches every node; a node that starts late catches
up before /readyz says ready; with PostgreSQL down, changes are refused
(503) and serving goes on; after it returns, nodes reconnect and catch up."""
import hashlib
import json
import os
import signal
import threading
import time

import pytest

from pglib import postgres, wait_for  # noqa: F401
from servelib import ThawServe, hello, project
from thawlib import free_port, write_worker

# the bound: a change reaches every node within a second
PROPAGATE_S = 1.0


@pytest.fixture(autouse=True)
def cluster_secret(monkeypatch):
    """A node with an internal address needs the cluster's secret to start
    (its internal port takes forwarded D1 and Durable Object calls)."""
    monkeypatch.setenv("THAW_CLUSTER_SECRET", "control-tests-secret")


class Cluster:
    def __init__(self, tmp_path, pg):
        self.tmp = tmp_path
        self.pg = pg
        self.nodes = {}
        self.url = pg.url  # the unix socket; tcp_url for TCP
        self.internal = {}  # node -> its internal address, kept across restarts

    def config(self, i):
        cfg = self.tmp / f"n{i}.json"
        addr = self.internal.setdefault(i, f"127.0.0.1:{free_port()}")
        cfg.write_text(json.dumps({"cluster": {"node": f"n{i}", "control": self.url,
                                               "internal": addr}}))
        return cfg

    def node(self, i):
        """Starts node i (its own state directory, kept across restarts)."""
        logdir = self.tmp / f"log{i}"
        logdir.mkdir(exist_ok=True)
        s = ThawServe(self.tmp / f"state{i}", logdir, ["--config", str(self.config(i))])
        self.nodes[i] = s
        return s.start()

    def ready(self, i):
        return wait_for(f"node {i} /readyz",
                        lambda: self.readyz(self.nodes[i])[0] == 200 or None)

    @staticmethod
    def readyz(n):
        return n.api("GET", "/readyz", token="")

    def stop_all(self):
        for s in self.nodes.values():
            if s.proc is not None and s.proc.poll() is None:
                s.stop()


@pytest.fixture
def cluster(tmp_path, postgres):  # noqa: F811
    c = Cluster(tmp_path, postgres)
    yield c
    c.stop_all()


def serves(n, name, body):
    r = n.host_get(f"{name}.localhost", timeout=5)
    return r.status == 200 and r.text == body


def gone(n, name):
    return n.host_get(f"{name}.localhost", timeout=5).status == 404


def within(what, fn, deadline=PROPAGATE_S):
    """fn() true within deadline seconds of now (polled, no fixed sleep)."""
    return wait_for(what, fn, timeout=deadline, interval=0.01)


def listing(n):
    status, body = n.api("GET", "/v1/workers")
    assert status == 200, body
    return sorted((w["name"], w["version"]) for w in body["workers"])


def test_deploy_rollback_delete_through_any_node_reach_all(cluster, tmp_path):
    n1, n2, n3 = (cluster.node(i) for i in (1, 2, 3))
    for i in (1, 2, 3):
        cluster.ready(i)
    r = n1.cli("deploy", str(project(tmp_path / "v1", "alpha", "alpha v1")))
    assert "Deployed alpha version 1" in r.stdout, r.stdout
    # answered: it is in PostgreSQL already
    assert cluster.pg.sql("SELECT current FROM thaw_workers WHERE name = 'alpha'") == "1"
    for n in (n2, n3):
        within("alpha v1 on every node", lambda n=n: serves(n, "alpha", "alpha v1"))
    # a deploy through another node
    r = n2.cli("deploy", str(project(tmp_path / "v2", "alpha", "alpha v2")))
    assert "Deployed alpha version 2" in r.stdout, r.stdout
    for n in (n1, n3):
        within("alpha v2 on every node", lambda n=n: serves(n, "alpha", "alpha v2"))
    assert listing(n1) == listing(n2) == listing(n3) == [("alpha", 2)]
    # the versions' records are the store's, the same on every node
    metas = [n.api("GET", "/v1/workers/alpha")[1]["versions"] for n in (n1, n2, n3)]
    assert metas[0] == metas[1] == metas[2] and [m["version"] for m in metas[0]] == [1, 2]
    # rollback through the third
    r = n3.cli("rollback", "alpha")
    assert r.returncode == 0, r.stderr
    for n in (n1, n2):
        within("alpha rolled back everywhere", lambda n=n: serves(n, "alpha", "alpha v1"))
    assert listing(n1) == listing(n2) == listing(n3) == [("alpha", 1)]
    assert cluster.pg.sql("SELECT current FROM thaw_workers WHERE name = 'alpha'") == "1"
    # delete through the first
    r = n1.cli("delete", "alpha")
    assert r.returncode == 0, r.stderr
    for n in (n2, n3):
        within("alpha deleted everywhere", lambda n=n: gone(n, "alpha"))
    assert listing(n1) == listing(n2) == listing(n3) == []
    assert cluster.pg.sql("SELECT count(*) FROM thaw_versions") == "0"
    for i in (2, 3):
        assert not (tmp_path / f"state{i}" / "workers" / "alpha").exists()


def test_a_failed_build_is_not_published(cluster, tmp_path):
    n1, n2 = cluster.node(1), cluster.node(2)
    cluster.ready(1)
    cluster.ready(2)
    n1.cli("deploy", str(project(tmp_path / "ok", "beta", "beta ok")))
    within("beta on node 2", lambda: serves(n2, "beta", "beta ok"))
    bad = tmp_path / "bad" / "beta"
    write_worker(bad, "raise RuntimeError('top level fails')\n", name="beta")
    r = n1.cli("deploy", str(bad), check=False)
    assert r.returncode != 0 and "top level fails" in r.stderr, r.stderr
    assert cluster.pg.sql("SELECT string_agg(version::text, ',') FROM thaw_versions "
                          "WHERE name = 'beta'") == "1"
    assert serves(n1, "beta", "beta ok") and serves(n2, "beta", "beta ok")
    assert listing(n1) == listing(n2) == [("beta", 1)]
    # a worker that never built anywhere is not in the store either
    write_worker(tmp_path / "bad2" / "gamma", "raise RuntimeError('nope')\n", name="gamma")
    assert n2.cli("deploy", str(tmp_path / "bad2" / "gamma"), check=False).returncode != 0
    assert cluster.pg.sql("SELECT count(*) FROM thaw_workers WHERE name = 'gamma'") == "0"
    assert gone(n1, "gamma")


def test_a_late_node_catches_up_before_it_is_ready(cluster, tmp_path):
    n1 = cluster.node(1)
    cluster.ready(1)
    n1.cli("deploy", str(project(tmp_path / "a1", "one", "one v1")))
    n1.cli("deploy", str(project(tmp_path / "a2", "one", "one v2")))
    n1.cli("deploy", str(project(tmp_path / "b1", "two", "two v1")))
    n3 = cluster.node(3)
    saw_503 = False
    end = time.monotonic() + 60
    while time.monotonic() < end:
        status, body = cluster.readyz(n3)
        if status == 200:
            break
        assert status == 503, (status, body)
        saw_503 = True
        time.sleep(0.01)
    else:
        pytest.fail(f"node 3 never became ready:\n{n3.log()[-3000:]}")
    # ready means caught up: both workers at the store's versions, at once
    assert serves(n3, "one", "one v2") and serves(n3, "two", "two v1")
    assert listing(n3) == listing(n1) == [("one", 2), ("two", 1)]
    assert saw_503
    assert "caught up with the control store" in n3.log()


def test_postgres_down_refuses_changes_and_keeps_serving(cluster, tmp_path):
    n1, n2 = cluster.node(1), cluster.node(2)
    cluster.ready(1)
    cluster.ready(2)
    n1.cli("deploy", str(project(tmp_path / "v1", "delta", "delta v1")))
    within("delta on node 2", lambda: serves(n2, "delta", "delta v1"))
    cluster.pg.stop()
    v2 = project(tmp_path / "v2", "delta", "delta v2")
    for n in (n1, n2):
        r = n.cli("deploy", str(v2), check=False)
        assert r.returncode != 0, r.stdout
        assert "control store (PostgreSQL) is unreachable" in r.stderr, r.stderr
        assert "nothing was changed" in r.stderr, r.stderr
        status, body = n.api("DELETE", "/v1/workers/delta")
        assert status == 503 and "control store" in body["error"], body
        status, body = n.api("POST", "/v1/workers/delta/rollback")
        assert status in (404, 503), body  # 404: there is no version before 1
        status, body = n.api("PUT", "/v1/workers/delta/grants",
                             body=json.dumps({"patterns": ["delta.example.com/*"]}))
        assert status == 503, body
    # nothing changed, and serving goes on
    for n in (n1, n2):
        assert serves(n, "delta", "delta v1")
        assert listing(n) == [("delta", 1)]
        status, body = cluster.readyz(n)
        assert status == 200, body
    cluster.pg.start()
    # nodes reconnect (backoff) and a deploy goes through again
    r = wait_for("a deploy accepted after PostgreSQL returned",
                 lambda: n2.cli("deploy", str(v2), check=False).returncode == 0, timeout=30,
                 interval=0.2)
    assert r
    for n in (n1, n2):
        within("delta v2 after the reconnect", lambda n=n: serves(n, "delta", "delta v2"), 10)
    assert cluster.pg.sql("SELECT current FROM thaw_workers WHERE name = 'delta'") == "2"


def test_acknowledged_deploy_survives_postgres_restart(cluster, tmp_path):
    n1 = cluster.node(1)
    cluster.ready(1)
    n1.cli("deploy", str(project(tmp_path / "v1", "eps", "eps v1")))
    cluster.pg.stop("immediate")  # a crash: no clean shutdown
    cluster.pg.start()
    assert cluster.pg.sql("SELECT current FROM thaw_workers WHERE name = 'eps'") == "1"
    # node 1 reconnects; a node that never saw the deploy gets it from the store
    n2 = cluster.node(2)
    cluster.ready(2)
    assert serves(n2, "eps", "eps v1")
    r = wait_for("node 1 takes deploys again",
                 lambda: n1.cli("deploy", str(project(tmp_path / "v2", "eps", "eps v2")),
                                check=False).returncode == 0, timeout=30, interval=0.2)
    assert r
    within("eps v2 on node 2", lambda: serves(n2, "eps", "eps v2"))


def test_a_node_killed_and_restarted_catches_up(cluster, tmp_path):
    n1, n2 = cluster.node(1), cluster.node(2)
    cluster.ready(1)
    cluster.ready(2)
    n1.cli("deploy", str(project(tmp_path / "z1", "zeta", "zeta v1")))
    n1.cli("deploy", str(project(tmp_path / "k1", "kappa", "kappa v1")))
    within("zeta on node 2", lambda: serves(n2, "zeta", "zeta v1"))
    within("kappa on node 2", lambda: serves(n2, "kappa", "kappa v1"))
    n2.stop(signal.SIGKILL)
    # while it is gone: a new version, a delete, a new worker
    n1.cli("deploy", str(project(tmp_path / "z2", "zeta", "zeta v2")))
    assert n1.cli("delete", "kappa").returncode == 0
    n1.cli("deploy", str(project(tmp_path / "m1", "mu", "mu v1")))
    n2 = cluster.node(2)  # the same state directory
    cluster.ready(2)
    assert serves(n2, "zeta", "zeta v2") and serves(n2, "mu", "mu v1")
    assert gone(n2, "kappa")
    assert listing(n2) == listing(n1) == [("mu", 1), ("zeta", 2)]


def test_deleted_and_deployed_again_while_away_is_replaced(cluster, tmp_path):
    n1, n2 = cluster.node(1), cluster.node(2)
    cluster.ready(1)
    cluster.ready(2)
    n1.cli("deploy", str(project(tmp_path / "o1", "omega", "omega old")))
    within("omega on node 2", lambda: serves(n2, "omega", "omega old"))
    n2.stop()
    assert n1.cli("delete", "omega").returncode == 0
    n1.cli("deploy", str(project(tmp_path / "o2", "omega", "omega new")))  # version 1 again
    n2 = cluster.node(2)
    cluster.ready(2)
    assert serves(n2, "omega", "omega new")


def test_grants_through_any_node_reach_all(cluster, tmp_path):
    n1, n2 = cluster.node(1), cluster.node(2)
    cluster.ready(1)
    cluster.ready(2)
    status, body = n1.api("PUT", "/v1/workers/shop/grants",
                          body=json.dumps({"patterns": ["shop.example.com/*"]}))
    assert status == 200, body
    within("the grant on node 2",
           lambda: n2.api("GET", "/v1/workers/shop/grants")[1]["grants"] ==
           ["shop.example.com/*"])
    # the grant lets a deploy through the other node take the route
    d = tmp_path / "shop"
    write_worker(d, hello("shop"), name="shop", fmt="json", routes=["shop.example.com/*"])
    n2.cli("deploy", str(d))
    within("the route on node 1", lambda: n1.host_get("shop.example.com").text == "shop")
    status, body = n2.api("DELETE", "/v1/workers/shop/grants")
    assert status == 200, body
    within("the revoked grant on node 1",
           lambda: n1.api("GET", "/v1/workers/shop/grants")[1]["grants"] == [])
    within("the route dropped on node 1",
           lambda: n1.host_get("shop.example.com").status == 404)


def test_membership_lists_live_nodes(cluster):
    cluster.url = cluster.pg.tcp_url  # over TCP this time
    n1, n2 = cluster.node(1), cluster.node(2)
    cluster.ready(1)
    cluster.ready(2)
    want = [{"name": "n1", "internal": cluster.internal[1]},
            {"name": "n2", "internal": cluster.internal[2]}]
    wait_for("both nodes listed", lambda: n1.api("GET", "/v1/nodes")[1]["nodes"] == want,
             timeout=10)
    n2.stop(signal.SIGKILL)
    # its heartbeat stops: after 5 s it is no longer live
    wait_for("node 2 gone from the list",
             lambda: n1.api("GET", "/v1/nodes")[1]["nodes"] == want[:1], timeout=15)


def test_a_deploy_whose_commit_fails_is_refused_and_undone(cluster, tmp_path):
    n1, n2 = cluster.node(1), cluster.node(2)
    cluster.ready(1)
    cluster.ready(2)
    n1.cli("deploy", str(project(tmp_path / "v1", "eta", "eta v1")))
    within("eta on node 2", lambda: serves(n2, "eta", "eta v1"))
    # version 2 builds slowly: PostgreSQL goes away before its commit
    slow = tmp_path / "v2" / "eta"
    write_worker(slow, "import time\ntime.sleep(3)\n" + hello("eta v2"), name="eta")
    result = {}

    def deploy():
        result["r"] = n1.cli("deploy", str(slow), check=False)
    t = threading.Thread(target=deploy)
    t.start()
    wait_for("version 2 building", lambda: "deploying eta version 2" in n1.log())
    cluster.pg.stop()
    t.join(60)
    r = result["r"]
    assert r.returncode != 0, r.stdout
    assert "did not record the deploy of eta version 2" in r.stderr, r.stderr
    # node 1 serves what the store has again; node 2 never saw version 2
    wait_for("eta v1 back on node 1", lambda: serves(n1, "eta", "eta v1"))
    assert serves(n2, "eta", "eta v1")
    assert listing(n1) == listing(n2) == [("eta", 1)]
    assert not (tmp_path / "state1" / "workers" / "eta" / "versions" / "2.json").exists()


def test_a_worker_from_before_the_cluster_is_left_alone(tmp_path, postgres):  # noqa: F811
    c = Cluster(tmp_path, postgres)
    try:
        solo = ThawServe(tmp_path / "state1", tmp_path, [])  # no [cluster] yet
        solo.start()
        solo.cli("deploy", str(project(tmp_path / "s", "solo", "solo here")))
        solo.stop()
        n1 = c.node(1)  # the same state directory, now in a cluster
        c.ready(1)
        assert serves(n1, "solo", "solo here")
        assert "before this node joined the cluster" in n1.log()
        assert postgres.sql("SELECT count(*) FROM thaw_workers") == "0"
        # deployed again, it is published like any other
        n1.cli("deploy", str(project(tmp_path / "s2", "solo", "solo published")))
        n2 = c.node(2)
        c.ready(2)
        assert serves(n2, "solo", "solo published")
    finally:
        c.stop_all()


def test_a_large_bundle_reaches_every_node_intact(cluster, tmp_path):
    n1, n2 = cluster.node(1), cluster.node(2)
    cluster.ready(1)
    cluster.ready(2)
    blob = os.urandom(8 << 20)  # binary, every byte value: bytea both ways
    d = tmp_path / "big"
    write_worker(d, '''
        import hashlib, pathlib
        from workers import Response, WorkerEntrypoint
        DIGEST = hashlib.sha256((pathlib.Path(__file__).parent / "blob.bin").read_bytes()).hexdigest()
        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response(DIGEST)
        ''', name="big")
    (d / "src" / "blob.bin").write_bytes(blob)
    n1.cli("deploy", str(d))
    want = hashlib.sha256(blob).hexdigest()
    within("the large bundle on node 2", lambda: serves(n2, "big", want), 10)
    assert (tmp_path / "state2" / "workers" / "big" / "versions" / "1" / "src" /
            "blob.bin").read_bytes() == blob


def test_a_node_that_starts_without_postgres_waits_for_it(cluster, tmp_path):
    cluster.pg.stop()
    n1 = cluster.node(1)  # it starts (and would serve what its state has)
    status, body = cluster.readyz(n1)
    assert status == 503 and "control store (PostgreSQL) has not been read yet" in body, body
    r = n1.cli("deploy", str(project(tmp_path / "t", "theta", "theta")), check=False)
    assert r.returncode != 0 and "unreachable" in r.stderr, r.stderr
    cluster.pg.start()
    cluster.ready(1)
    n1.cli("deploy", str(project(tmp_path / "t", "theta", "theta")))
    assert serves(n1, "theta", "theta")


def test_concurrent_deploys_through_two_nodes_end_the_same_everywhere(cluster, tmp_path):
    n1, n2, n3 = (cluster.node(i) for i in (1, 2, 3))
    for i in (1, 2, 3):
        cluster.ready(i)
    answers = []

    def deploy(n, tag, k):
        d = project(tmp_path / f"{tag}{k}", "iota", f"iota {tag}{k}")
        r = n.cli("deploy", str(d), check=False)
        answers.append((f"{tag}{k}", r.returncode, r.stderr))
    for k in range(4):
        ts = [threading.Thread(target=deploy, args=(n, tag, k))
              for n, tag in ((n1, "a"), (n2, "b"))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
    # each was committed, or refused as a conflict (nothing half-done)
    for tag, rc, err in answers:
        assert rc == 0 or "conflicts with a change another node made" in err or \
            "being built, deployed or rolled back" in err, (tag, err)
    assert any(rc == 0 for _, rc, _ in answers)
    current = int(cluster.pg.sql("SELECT current FROM thaw_workers WHERE name = 'iota'"))
    meta = json.loads(cluster.pg.sql(
        f"SELECT meta FROM thaw_versions WHERE name = 'iota' AND version = {current}"))
    # every node ends at the store's current version, with the same list
    for n in (n1, n2, n3):
        wait_for("every node at the store's version",
                 lambda n=n: listing(n) == [("iota", current)], timeout=10)
    bodies = {n.host_get("iota.localhost").text for n in (n1, n2, n3)}
    assert len(bodies) == 1, bodies
    versions = [[(m["version"], m.get("deploy_id")) for m in
                 n.api("GET", "/v1/workers/iota")[1]["versions"]] for n in (n1, n2, n3)]
    assert versions[0] == versions[1] == versions[2], versions
    assert (current, meta["deploy_id"]) in versions[0]


def test_delete_waits_for_a_deploy_in_flight_on_its_node(cluster, tmp_path):
    n1 = cluster.node(1)
    cluster.ready(1)
    n1.cli("deploy", str(project(tmp_path / "v1", "rho", "rho v1")))
    slow = tmp_path / "v2" / "rho"
    write_worker(slow, "import time\ntime.sleep(2)\n" + hello("rho v2"), name="rho")
    result = {}
    t = threading.Thread(target=lambda: result.setdefault(
        "r", n1.cli("deploy", str(slow), check=False)))
    t.start()
    wait_for("version 2 building", lambda: "deploying rho version 2" in n1.log())
    status, body = n1.api("DELETE", "/v1/workers/rho")
    assert status == 409 and "delete it when that finished" in body["error"], body
    t.join(60)
    assert result["r"].returncode == 0, result["r"].stderr
    assert serves(n1, "rho", "rho v2")
    status, body = n1.api("DELETE", "/v1/workers/rho")
    assert status == 200, body
    assert cluster.pg.sql("SELECT count(*) FROM thaw_workers WHERE name = 'rho'") == "0"


def test_a_deploy_does_not_bring_back_a_worker_deleted_through_another_node(cluster,
                                                                            tmp_path):
    n1, n2 = cluster.node(1), cluster.node(2)
    cluster.ready(1)
    cluster.ready(2)
    n1.cli("deploy", str(project(tmp_path / "v1", "sigma", "sigma v1")))
    within("sigma on node 2", lambda: serves(n2, "sigma", "sigma v1"))
    slow = tmp_path / "v2" / "sigma"
    write_worker(slow, "import time\ntime.sleep(2)\n" + hello("sigma v2"), name="sigma")
    result = {}
    t = threading.Thread(target=lambda: result.setdefault(
        "r", n2.cli("deploy", str(slow), check=False)))
    t.start()
    wait_for("version 2 building on node 2", lambda: "deploying sigma version 2" in n2.log())
    assert n1.cli("delete", "sigma").returncode == 0  # committed while node 2 builds
    t.join(60)
    r = result["r"]
    assert r.returncode != 0 and "the worker was deleted, or deployed, there" in r.stderr, \
        r.stderr
    assert cluster.pg.sql("SELECT count(*) FROM thaw_versions WHERE name = 'sigma'") == "0"
    for n in (n1, n2):
        wait_for("sigma gone everywhere", lambda n=n: gone(n, "sigma"), timeout=10)
        assert listing(n) == []
