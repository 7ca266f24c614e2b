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
