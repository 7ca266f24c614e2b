"""`ctx.storage.transaction(closure)` (issue 18 point 4), black-box
through the real thaw dev: the closure's writes commit together when it
returns and not at all when it raises or rolls back; its reads see its
own writes."""
import json

import pytest

from thawlib import write_worker

WORKER = """
    import json
    from urllib.parse import urlparse, parse_qs
    from workers import DurableObject, Response, WorkerEntrypoint


    class Bank(DurableObject):
        async def seed(self):
            await self.ctx.storage.put({"a": 100, "b": 0, "c": 5})

        async def balances(self):
            return await self.ctx.storage.list()

        async def transfer(self, amount, fail=False):
            async def move(txn):
                a = await txn.get("a")
                await txn.put("a", a - amount)
                # its own write, read back before the commit
                seen = await txn.get("a")
                await txn.put("b", (await txn.get("b")) + amount)
                deleted = await txn.delete("c")
                listed = await txn.list({"limit": 5})
                if fail:
                    raise ValueError("insufficient funds")
                return {"seen": seen, "deleted": deleted, "listed": listed}
            return await self.ctx.storage.transaction(move)

        async def rolled_back(self):
            async def undo(txn):
                await txn.put("a", -1)
                txn.rollback()
                return "undone"
            return await self.ctx.storage.transaction(undo)

        async def not_a_function(self):
            return await self.ctx.storage.transaction("nope")

        def sql_count(self):
            sql = self.ctx.storage.sql
            sql.exec("CREATE TABLE IF NOT EXISTS t (x)")
            return sql.exec("SELECT count(*) AS n FROM t").one().n

        def sync(self, rows, fail=False):
            sql = self.ctx.storage.sql
            sql.exec("CREATE TABLE IF NOT EXISTS t (x)")

            def work():
                for i in range(rows):
                    sql.exec("INSERT INTO t VALUES (?)", i)
                seen = sql.exec("SELECT count(*) AS n FROM t").one().n
                if fail == "exit":
                    import os
                    os._exit(3)  # the instance dies inside the transaction
                if fail:
                    raise ValueError("changed my mind")
                return seen
            return self.ctx.storage.transactionSync(work)

        def sync_async(self):
            async def work():
                self.ctx.storage.sql.exec("INSERT INTO t VALUES (1)")
            self.ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS t (x)")
            return self.ctx.storage.transactionSync(work)

        async def bad_value(self):
            async def bad(txn):
                await txn.put("a", object())
            return await self.ctx.storage.transaction(bad)


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            q = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
            stub = self.env.BANK.getByName(q.get("name", "default"))
            call = json.loads(await request.text())
            try:
                result = await getattr(stub, call["method"])(*call.get("args", []))
            except Exception as e:
                return Response(json.dumps({"error": type(e).__name__, "message": str(e)}),
                                status=500)
            return Response(json.dumps({"result": result}))
"""

CONFIG = dict(durable_objects={"bindings": [{"name": "BANK", "class_name": "Bank"}]},
              migrations=[{"tag": "v1", "new_sqlite_classes": ["Bank"]}])


@pytest.fixture
def srv(workdir, thaw_factory):
    write_worker(workdir, WORKER, fmt="json", name="do-txn", **CONFIG)
    return thaw_factory(workdir)


def rpc(srv, method, *args, status=200):
    r = srv.request("POST", "/", body=json.dumps({"method": method, "args": list(args)}).encode())
    assert r.status == status, f"{r.status}: {r.text}\n{srv.log()[-3000:]}"
    return r.json()


def test_a_transaction_commits_its_writes_together(srv):
    rpc(srv, "seed")
    out = rpc(srv, "transfer", 30)["result"]
    assert out == {"seen": 70, "deleted": True, "listed": {"a": 70, "b": 30}}
    assert rpc(srv, "balances")["result"] == {"a": 70, "b": 30}


def test_a_closure_that_raises_writes_nothing(srv):
    rpc(srv, "seed")
    r = rpc(srv, "transfer", 30, True, status=500)
    assert r == {"error": "ValueError", "message": "insufficient funds"}
    assert rpc(srv, "balances")["result"] == {"a": 100, "b": 0, "c": 5}


def test_rollback_discards_the_writes(srv):
    rpc(srv, "seed")
    assert rpc(srv, "rolled_back")["result"] == "undone"
    assert rpc(srv, "balances")["result"] == {"a": 100, "b": 0, "c": 5}


def test_bad_input(srv):
    rpc(srv, "seed")
    r = rpc(srv, "not_a_function", status=500)
    assert r["error"] == "TypeError" and "transaction() takes a function" in r["message"], r
    r = rpc(srv, "bad_value", status=500)
    assert r["error"] == "TypeError" and "cannot be sent over RPC" in r["message"], r
    assert rpc(srv, "balances")["result"] == {"a": 100, "b": 0, "c": 5}


def test_transaction_sync_commits_its_sql_together(srv):
    assert rpc(srv, "sql_count")["result"] == 0
    assert rpc(srv, "sync", 3)["result"] == 3  # its own rows, seen inside
    assert rpc(srv, "sql_count")["result"] == 3


def test_transaction_sync_that_raises_writes_nothing(srv):
    assert rpc(srv, "sync", 2)["result"] == 2
    r = rpc(srv, "sync", 5, True, status=500)
    assert r == {"error": "ValueError", "message": "changed my mind"}
    assert rpc(srv, "sql_count")["result"] == 2


def test_transaction_sync_takes_a_synchronous_function(srv):
    r = rpc(srv, "sync_async", status=500)
    assert r["error"] == "TypeError" and "synchronous function" in r["message"], r
    assert rpc(srv, "sql_count")["result"] == 0


def test_a_transaction_sync_whose_instance_dies_is_rolled_back(srv):
    assert rpc(srv, "sync", 1)["result"] == 1
    r = srv.request("POST", "/", body=json.dumps({"method": "sync", "args": [4, "exit"]}).encode())
    assert r.status in (500, 502), r.text
    assert rpc(srv, "sql_count")["result"] == 1
    srv.wait_log("transactionSync was left open")
