"""Durable Objects' calls and storage (issue 18, stage B), black-box: a
counter written as Cloudflare's Python docs write it, served by the real
thaw dev, called over HTTP. Calls travel caller instance -> supervisor ->
the instance hosting the worker's objects; storage is SQLite per object
under the state directory."""
import json
import signal
import sqlite3
import threading

import pytest

from thawlib import write_worker

WORKER = """
    import datetime
    import json
    from urllib.parse import urlparse, parse_qs
    from workers import DurableObject, Response, WorkerEntrypoint


    class Counter(DurableObject):
        def __init__(self, ctx, env):
            super().__init__(ctx, env)
            self.calls = 0  # in memory: one object per id, or it would split

        async def increment(self, amount=1):
            self.calls += 1
            value = (await self.ctx.storage.get("value")) or 0
            value += amount
            await self.ctx.storage.put("value", value)
            return value

        def calls_seen(self):
            return self.calls

        def echo(self, *args):
            return list(args)

        def boom(self, message):
            raise ValueError(message)

        def _private(self):
            return "secret"

        def crash(self):
            import os
            os._exit(3)

        async def kv(self, steps):
            st, out = self.ctx.storage, []
            for op, *a in steps:
                out.append(await getattr(st, op)(*a))
            return out

        def sql(self, query, *bindings):
            cur = self.ctx.storage.sql.exec(query, *bindings)
            return {"columns": cur.columnNames, "rows": [dict(r) for r in cur],
                    "read": cur.rowsRead, "written": cur.rowsWritten}

        def sql_raw(self, query):
            return [list(r) for r in self.ctx.storage.sql.exec(query).raw()]

        def sql_one(self, query):
            return dict(self.ctx.storage.sql.exec(query).one())

        def who(self):
            return [str(self.ctx.id), self.ctx.id.name]

        async def fetch(self, request):
            if request.method == "DELETE":
                raise KeyError("not here")
            body = await request.text()
            return Response(json.dumps({"method": request.method, "url": request.url,
                                        "body": body, "x": request.headers.get("x-test"),
                                        "name": self.ctx.id.name}),
                            status=201, headers={"x-from": "object"})


    class Loaded(DurableObject):
        def __init__(self, ctx, env):
            super().__init__(ctx, env)
            self.items = None
            ctx.blockConcurrencyWhile(self.load)  # no await: Cloudflare's docs do so

        async def load(self):
            self.items = (await self.ctx.storage.get("items")) or []

        async def add(self, item):
            self.items.append(item)
            await self.ctx.storage.put("items", self.items)
            return self.items


    class Plain(DurableObject):
        def sql(self):
            return self.ctx.storage.sql.exec("SELECT 1").toArray()

        async def put(self, k, v):
            await self.ctx.storage.put(k, v)
            return await self.ctx.storage.get(k)


    def error(e):
        return {"error": type(e).__name__, "message": str(e)}


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            url = urlparse(request.url)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            ns = {"plain": self.env.PLAIN, "loaded": self.env.LOADED}.get(q.get("ns"),
                                                                         self.env.COUNTER)
            stub = ns.getByName(q.get("name", "default"))
            if url.path == "/fetch":
                r = await stub.fetch("http://object.test/path?q=1", method="POST",
                                     body="hello", headers={"x-test": "yes"})
                return Response(await r.text(), status=r.status,
                                headers={"x-from": r.headers.get("x-from") or ""})
            if url.path == "/fetch-request":
                return await stub.fetch(request)
            if url.path == "/fetch-raises":
                try:
                    await stub.fetch("http://object.test/", method="DELETE")
                except KeyError as e:
                    return Response(f"caught {e!r}")
            if url.path == "/raw":  # the binding protocol spoken by hand
                from workers import _bind
                call = json.loads(await request.text())
                try:
                    res, _ = await _bind.call(call["binding"], call["op"], call["args"],
                                              call.get("body", "").encode() or None)
                except Exception as e:
                    return Response(json.dumps(error(e)), status=500)
                return Response(json.dumps(res))
            if url.path == "/clone":  # what JSON cannot carry from the test
                from pyodide.ffi import to_js
                when = datetime.datetime(2024, 3, 18, 12, 30, 5, 250000)
                out = await stub.echo(b"\\x00\\xff", when, {1, 2}, float("inf"),
                                      to_js({"a": [1, 2]}), to_js(b"js"), {"k": "v"})
                checks = [out[0] == b"\\x00\\xff", out[1] == when, out[2] == {1, 2},
                          out[3] == float("inf"), out[4] == {"a": [1, 2]},
                          out[5] == b"js", out[6].k == "v"]
                refused = []
                for bad in [(1, 2), bytearray(b"x"), object(), {1: "int key"}]:
                    try:
                        await stub.echo(bad)
                    except TypeError as e:
                        refused.append(str(e))
                return Response(json.dumps({"checks": checks, "refused": refused}))
            if url.path == "/rpc":
                call = json.loads(await request.text())
                try:
                    result = await getattr(stub, call["method"])(*call.get("args", []))
                except Exception as e:
                    return Response(json.dumps(error(e)), status=500)
                return Response(json.dumps({"result": result}, default=repr))
            return Response(str(await stub.increment()))
"""

CONFIG = dict(
    durable_objects={"bindings": [{"name": "COUNTER", "class_name": "Counter"},
                                  {"name": "PLAIN", "class_name": "Plain"},
                                  {"name": "LOADED", "class_name": "Loaded"}]},
    migrations=[{"tag": "v1", "new_sqlite_classes": ["Counter", "Loaded"]},
                {"tag": "v2", "new_classes": ["Plain"]}])


@pytest.fixture
def srv(workdir, thaw_factory):
    write_worker(workdir, WORKER, fmt="json", name="do-calls", **CONFIG)
    return thaw_factory(workdir)


def rpc(srv, method, *args, name="default", ns="counter", status=200):
    r = srv.request("POST", f"/rpc?name={name}&ns={ns}",
                    body=json.dumps({"method": method, "args": list(args)}).encode())
    assert r.status == status, f"{r.status}: {r.text}\n{srv.log()[-3000:]}"
    return r.json()


def test_the_counter_counts_per_name(srv):
    assert [srv.get("/?name=a").text for _ in range(3)] == ["1", "2", "3"]
    assert srv.get("/?name=b").text == "1"
    assert rpc(srv, "calls_seen", name="a")["result"] == 3


def test_concurrent_calls_reach_one_object_one_at_a_time(srv):
    n = 40
    codes = []

    def one():
        codes.append(srv.get("/?name=busy").status)
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * n
    # no increment lost: each read-modify-write ran alone, in one object
    assert srv.get("/?name=busy").text == str(n + 1)
    assert rpc(srv, "calls_seen", name="busy")["result"] == n + 1


def test_rpc_arguments_and_results_travel_by_structured_clone(srv):
    out = rpc(srv, "echo", 1, 2.5, "é", None, True, [1, [2]], {"k": {"n": None}})
    assert out["result"] == [1, 2.5, "é", None, True, [1, [2]], {"k": {"n": None}}]


def test_an_exception_in_the_object_arrives_with_its_message(srv):
    assert rpc(srv, "boom", "it broke", status=500) == {"error": "ValueError",
                                                        "message": "it broke"}
    assert "ValueError: it broke" in srv.log()  # the traceback is in the log


@pytest.mark.parametrize("method", ["nope", "_private", "alarm"])
def test_a_method_the_object_does_not_offer_is_a_clear_error(srv, method):
    out = rpc(srv, method, status=500)
    assert out == {"error": "TypeError",
                   "message": f'The RPC receiver does not implement the method "{method}".'}


def test_stub_fetch_reaches_the_object_s_fetch(srv):
    r = srv.get("/fetch?name=web")
    assert r.status == 201 and r.header("x-from") == "object", r
    assert r.json() == {"method": "POST", "url": "http://object.test/path?q=1",
                        "body": "hello", "x": "yes", "name": "web"}
    r = srv.request("PUT", "/fetch-request?name=web", body=b"raw body",
                    headers={"x-test": "from client"})
    assert r.status == 201 and r.json()["body"] == "raw body" and r.json()["x"] == "from client"


def test_ctx_id_is_the_stub_s(srv):
    assert rpc(srv, "who", name="ada")["result"][1] == "ada"
    assert len(rpc(srv, "who", name="ada")["result"][0]) == 64


def test_kv_storage_api(srv):
    steps = [
        ["put", "b", 2], ["put", {"a": 1, "c": [3], "d": {"x": None}, "e": "five"}],
        ["get", "a"], ["get", "missing"], ["get", ["c", "a", "zz"]],
        ["list"], ["list", {"prefix": "c"}], ["list", {"start": "b", "end": "d"}],
        ["list", {"limit": 2, "reverse": True}], ["list", {"startAfter": "c"}],
        ["delete", "a"], ["delete", "a"], ["delete", ["b", "c", "nope"]], ["list"],
        ["deleteAll"], ["list"],
    ]
    out = rpc(srv, "kv", steps, name="kv")["result"]
    assert out == [
        None, None, 1, None, {"a": 1, "c": [3]},
        {"a": 1, "b": 2, "c": [3], "d": {"x": None}, "e": "five"}, {"c": [3]},
        {"b": 2, "c": [3]}, {"e": "five", "d": {"x": None}}, {"d": {"x": None}, "e": "five"},
        True, False, 2, {"d": {"x": None}, "e": "five"},
        None, {},
    ]


def test_kv_bad_input(srv):
    out = rpc(srv, "kv", [["get", 5]], name="kv", status=500)
    assert out["error"] == "TypeError" and "key must be a string" in out["message"]
    out = rpc(srv, "kv", [["list", {"bogus": 1}]], name="kv", status=500)
    assert out["error"] == "TypeError" and "'bogus'" in out["message"]


def test_sql_api(srv):
    rpc(srv, "sql", "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, data BLOB)", name="s")
    w = rpc(srv, "sql", "INSERT INTO t (name) VALUES (?), (?)", "ada", "bob", name="s")["result"]
    assert w["written"] == 2
    r = rpc(srv, "sql", "SELECT id, name FROM t ORDER BY id", name="s")["result"]
    assert r["columns"] == ["id", "name"]
    assert r["rows"] == [{"id": 1, "name": "ada"}, {"id": 2, "name": "bob"}]
    assert r["read"] >= 2
    assert rpc(srv, "sql_raw", "SELECT name, id FROM t ORDER BY id", name="s")["result"] == \
        [["ada", 1], ["bob", 2]]
    assert rpc(srv, "sql_one", "SELECT count(*) AS n FROM t", name="s")["result"] == {"n": 2}
    err = rpc(srv, "sql_one", "SELECT * FROM t", name="s", status=500)
    assert "Expected exactly one result from SQL query, but got 2 results." in err["message"]
    err = rpc(srv, "sql", "SELECT * FROM nowhere", name="s", status=500)
    assert "no such table: nowhere" in err["message"]
    err = rpc(srv, "sql", "ATTACH DATABASE '/tmp/x.db' AS x", name="s", status=500)
    assert "not authorized" in err["message"]


def test_a_key_value_class_has_no_sql_but_stores(srv):
    err = rpc(srv, "sql", ns="plain", status=500)
    assert "SQL is not enabled for this Durable Object class" in err["message"]
    assert rpc(srv, "put", "k", {"v": [1]}, ns="plain")["result"] == {"v": [1]}


def test_each_object_has_its_own_file_under_the_state_directory(srv, workdir):
    rpc(srv, "sql", "CREATE TABLE mine (x)", name="own")
    files = sorted((workdir / ".thaw" / "state" / "do").glob("*/*.sqlite"))
    assert files, list((workdir / ".thaw" / "state").rglob("*"))
    names = [rpc(srv, "who", name="own")["result"][0] + ".sqlite"]
    assert names[0] in [f.name for f in files]
    db = sqlite3.connect(next(f for f in files if f.name == names[0]))
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ("mine",) in db.execute("SELECT name FROM sqlite_master").fetchall()


def test_acknowledged_writes_survive_a_sigkill(workdir, thaw_factory):
    write_worker(workdir, WORKER, fmt="json", name="do-calls", **CONFIG)
    srv = thaw_factory(workdir)
    for i in range(1, 21):
        assert srv.get("/?name=durable").text == str(i)
    srv.stop(signal.SIGKILL)
    again = thaw_factory(workdir)
    assert again.get("/?name=durable").text == "21"


def test_an_exception_in_the_object_s_fetch_arrives_in_the_caller(srv):
    assert srv.get("/fetch-raises?name=web").text == "caught KeyError(\"'not here'\")"


def test_an_object_whose_instance_dies_comes_back_with_its_storage(srv):
    assert srv.get("/?name=phoenix").text == "1"
    r = srv.request("POST", "/rpc?name=phoenix", body=b'{"method": "crash"}')
    # the caller in another instance gets an error; a caller that is the
    # host itself goes down with it (its client gets the 502)
    if r.status == 500:
        assert r.json()["error"] == "JsException", r.text
        assert "Durable Object call failed" in r.json()["message"], r.text
    else:
        assert r.status == 502, r
    assert srv.get("/?name=phoenix").text == "2"
    # a new object: its memory started over
    assert rpc(srv, "calls_seen", name="phoenix")["result"] == 1


def test_block_concurrency_while_in_the_constructor_runs_before_any_call(workdir, thaw_factory):
    write_worker(workdir, WORKER, fmt="json", name="do-calls", **CONFIG)
    srv = thaw_factory(workdir)
    assert rpc(srv, "add", "a", ns="loaded")["result"] == ["a"]
    assert rpc(srv, "add", "b", ns="loaded")["result"] == ["a", "b"]
    srv.stop()
    # a new object loads what the old one stored before its first call
    srv = thaw_factory(workdir)
    assert rpc(srv, "add", "c", ns="loaded")["result"] == ["a", "b", "c"]


@pytest.mark.parametrize("binding, op, args, needle", [
    ("COUNTER", "rpc", {"id": "zz", "method": "increment"}, "an id of 64 hex digits"),
    ("COUNTER", "rpc", {"id": "a" * 64}, "an id of 64 hex digits and a method"),
    ("COUNTER", "fetch", {"id": "a" * 64, "method": "GET"}, "an id of 64 hex digits"),
    ("COUNTER", "drop", {}, 'no operation "drop"'),
    (":do", "sql", {"ns": "../../../etc", "id": "a" * 64, "sql": "SELECT 1"}, "bad arguments"),
    (":do", "sql", {"ns": "a" * 64, "id": "../x", "sql": "SELECT 1"}, "bad arguments"),
    (":do", "sql", {"ns": "a" * 64, "id": "a" * 64, "sql": 5}, "bad arguments"),
    (":do", "vacuum", {"ns": "a" * 64, "id": "a" * 64}, 'no operation "vacuum"'),
])
def test_the_supervisor_refuses_calls_the_sdk_would_not_make(srv, workdir, binding, op, args,
                                                             needle):
    r = srv.request("POST", "/raw", body=json.dumps(
        {"binding": binding, "op": op, "args": args}).encode())
    assert r.status == 500 and r.json()["error"] == "TypeError", r.text
    assert needle in r.json()["message"], r.text
    assert not list(workdir.rglob("etc")) and not list(workdir.rglob("x.sqlite"))


def test_rpc_carries_bytes_datetimes_sets_and_to_js_values_and_refuses_the_rest(srv):
    out = srv.get("/clone").json()
    assert out["checks"] == [True] * 7, out
    assert out["refused"][0] == "<class 'tuple'> cannot be sent over RPC."
    assert out["refused"][1] == "<class 'bytearray'> cannot be sent over RPC."
    assert out["refused"][2] == "<class 'object'> cannot be sent over RPC."
    assert "keys are strings" in out["refused"][3]


def test_example_runs(tmp_path, thaw_factory):
    import shutil
    from thawlib import REPO
    d = tmp_path / "example"
    shutil.copytree(REPO / "examples/durable-objects", d, ignore=shutil.ignore_patterns(".thaw"))
    srv = thaw_factory(d)
    assert [srv.get("/alice").text for _ in range(2)] == ["1\n", "2\n"]
    assert srv.get("/bob").text == "1\n"
    assert srv.get("/alice/hello").text == "Hello from alice: 2 visits\n"
