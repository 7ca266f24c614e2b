"""`ctx.storage.kv`, the synchronous key-value API of SQLite-backed
Durable Objects (Cloudflare's SyncKvStorage: get, put, delete, list),
black-box under the real thaw dev. Its pairs are the async API's, each
call is done when it returns, it joins transactionSync(), and a bad key
or value gets the error the async API gives for it."""
import json

import pytest

from thawlib import write_worker

WORKER = """
    import json
    from urllib.parse import urlparse, parse_qs
    from workers import DurableObject, Response, WorkerEntrypoint


    def _plain(v):
        if hasattr(v, "__next__"):  # list()'s iterator of (key, value)
            return [[k, val] for k, val in v]
        return v


    class Store(DurableObject):
        def sync(self, steps):
            kv, out = self.ctx.storage.kv, []
            for op, *a in steps:
                kw = a.pop() if op == "list_kw" else {}
                out.append(_plain(getattr(kv, "list" if op == "list_kw" else op)(*a, **kw)))
            return out

        async def aio(self, steps):
            st, out = self.ctx.storage, []
            for op, *a in steps:
                out.append(await getattr(st, op)(*a))
            return out

        async def raises(self, op, key, size=None):
            # [the sync API's error, the async API's] for the same call;
            # size: a string value of that size (the async put is then
            # left out: its failed write would fail this answer, the
            # output gate), else a value RPC cannot carry
            value = "x" * size if size else object()
            args = [key, value] if op == "put" else [key]
            errors = []
            for api in (self.ctx.storage.kv, self.ctx.storage):
                if api is self.ctx.storage and size:
                    break
                try:
                    r = getattr(api, op)(*args)
                    if hasattr(r, "__await__"):
                        await r
                    errors.append(None)
                except Exception as e:
                    errors.append([type(e).__name__, str(e)])
            return errors

        def after_unawaited(self):
            self.ctx.storage.put("m", "sent, not awaited")
            return self.ctx.storage.kv.get("m")

        def in_txn(self, fail):
            def work():
                self.ctx.storage.kv.put("t", "in the transaction")
                self.ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS side (x)")
                if fail:
                    raise ValueError("undo")
                return self.ctx.storage.kv.get("t")
            try:
                return self.ctx.storage.transactionSync(work)
            except ValueError:
                return "raised"


    class Old(DurableObject):
        def sync(self):
            return self.ctx.storage.kv.get("k")


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            q = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
            ns = self.env.OLD if q.get("ns") == "old" else self.env.STORE
            stub = ns.getByName(q.get("name", "default"))
            call = json.loads(await request.text())
            try:
                result = await getattr(stub, call["method"])(*call.get("args", []))
            except Exception as e:
                return Response(json.dumps({"error": type(e).__name__, "message": str(e)}),
                                status=500)
            return Response(json.dumps({"result": result}))
"""

CONFIG = dict(
    durable_objects={"bindings": [{"name": "STORE", "class_name": "Store"},
                                  {"name": "OLD", "class_name": "Old"}]},
    migrations=[{"tag": "v1", "new_sqlite_classes": ["Store"]},
                {"tag": "v2", "new_classes": ["Old"]}])


@pytest.fixture
def srv(workdir, thaw_factory):
    write_worker(workdir, WORKER, fmt="json", name="do-kv", **CONFIG)
    return thaw_factory(workdir)


def rpc(srv, method, *args, name="default", ns="store", status=200):
    r = srv.request("POST", f"/?name={name}&ns={ns}",
                    body=json.dumps({"method": method, "args": list(args)}).encode())
    assert r.status == status, f"{r.status}: {r.text}\n{srv.log()[-3000:]}"
    return r.json()


def test_get_put_delete(srv):
    out = rpc(srv, "sync", [["get", "a"], ["put", "a", {"n": [1, 2]}], ["get", "a"],
                            ["put", "a", 7], ["get", "a"], ["delete", "a"], ["delete", "a"],
                            ["get", "a"]])["result"]
    assert out == [None, None, {"n": [1, 2]}, None, 7, True, False, None]


def test_the_same_pairs_as_the_async_api(srv):
    rpc(srv, "sync", [["put", "from-sync", "s"]], name="both")
    rpc(srv, "aio", [["put", "from-async", "a"]], name="both")
    assert rpc(srv, "aio", [["get", "from-sync"]], name="both")["result"] == ["s"]
    assert rpc(srv, "sync", [["get", "from-async"]], name="both")["result"] == ["a"]
    # another object's pairs are its own
    assert rpc(srv, "sync", [["get", "from-sync"]], name="other")["result"] == [None]


def test_it_sees_a_write_sent_before_it_not_awaited(srv):
    assert rpc(srv, "after_unawaited", name="m")["result"] == "sent, not awaited"


def test_list_and_its_options(srv):
    keys = ["a", "b", "user:1", "user:2", "user:3", "z"]
    rpc(srv, "sync", [["put", k, k.upper()] for k in keys], name="l")

    def keys_of(*step):
        return [k for k, _ in rpc(srv, "sync", [list(step)], name="l")["result"][0]]
    assert rpc(srv, "sync", [["list"]], name="l")["result"][0] == [[k, k.upper()] for k in keys]
    assert keys_of("list_kw", {"prefix": "user:"}) == ["user:1", "user:2", "user:3"]
    assert keys_of("list", {"prefix": "user:"}) == ["user:1", "user:2", "user:3"]
    assert keys_of("list_kw", {"start": "b", "end": "user:3"}) == ["b", "user:1", "user:2"]
    assert keys_of("list_kw", {"startAfter": "b", "limit": 2}) == ["user:1", "user:2"]
    assert keys_of("list_kw", {"prefix": "user:", "reverse": True, "limit": 2}) == \
        ["user:3", "user:2"]


def test_bad_input_gets_the_async_api_s_errors(srv):
    for op in ("get", "put", "delete"):
        sync, aio = rpc(srv, "raises", op, 5)["result"]
        assert sync == aio and sync[0] == "TypeError" and "key must be a string" in sync[1], \
            (op, sync, aio)
    sync, aio = rpc(srv, "raises", "put", "k")["result"]  # object(): no RPC value
    assert sync == aio and sync[0] == "TypeError" and "RPC" in sync[1], (sync, aio)
    # a value over what one storage call carries: the async put's error
    # (through the output gate), raised by the sync one at its call
    [big] = rpc(srv, "raises", "put", "big", 2_100_000)["result"]
    aio = rpc(srv, "aio", [["put", "big", "x" * 2_100_000]], name="big", status=500)
    assert big is not None and f"{big[0]}: {big[1]}" in aio["message"], (big, aio)
    assert rpc(srv, "sync", [["get", "big"]])["result"] == [None]
    err = rpc(srv, "sync", [["list", {"bogus": 1}]], status=500)
    assert err["error"] == "TypeError" and "'bogus'" in err["message"]
    err = rpc(srv, "sync", [["list_kw", {"limit": 0}]], status=500)
    assert err["error"] == "TypeError" and "limit" in err["message"]


def test_inside_transaction_sync_it_commits_or_rolls_back_with_it(srv):
    assert rpc(srv, "in_txn", True, name="t")["result"] == "raised"
    assert rpc(srv, "sync", [["get", "t"]], name="t")["result"] == [None]
    assert rpc(srv, "in_txn", False, name="t")["result"] == "in the transaction"
    assert rpc(srv, "sync", [["get", "t"]], name="t")["result"] == ["in the transaction"]


def test_a_key_value_class_has_no_sync_api(srv):
    err = rpc(srv, "sync", ns="old", status=500)
    assert "Error: ctx.storage.kv" in err["message"] and "new_sqlite_classes" in err["message"] \
        and "ctx.storage.kv" in err["message"], err
