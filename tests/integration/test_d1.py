"""D1 (SQLite) bindings, black-box: a worker that uses env.DB is served by
the real build/thaw, and the tests speak HTTP to it; `thaw d1 execute`
is run as a user would. The database is a real SQLite file under the
worker's .thaw/state (or --state)."""
import json
import signal
import sqlite3
import subprocess
import textwrap
import threading

import pytest

from thawlib import REPO, THAW, write_config, write_worker

# A worker that runs what the test asks: POST a JSON list of steps, get the
# list of their results (or the first error: its class, name and message).
# Bytes travel as {"$bytes": hex} both ways.
RUNNER = """
    import json
    from workers import D1Error, Response, WorkerEntrypoint
    from workers._bind import JsException


    def arg(v):
        if isinstance(v, dict) and "$bytes" in v:
            return bytes.fromhex(v["$bytes"])
        if isinstance(v, dict) and "$dict" in v:
            return v["$dict"]
        return v


    def plain(v):
        if isinstance(v, (bytes, bytearray)):
            return {"$bytes": bytes(v).hex()}
        raise TypeError(type(v))


    async def step(env, s):
        db = env[s.get("db", "DB")]
        op = s["op"]
        if op == "exec":
            return await db.exec(s["sql"])
        if op == "batch":
            return await db.batch([db.prepare(q["sql"]).bind(*map(arg, q.get("params", [])))
                                   for q in s["stmts"]])
        stmt = db.prepare(s["sql"])
        if "params" in s:
            stmt = stmt.bind(*map(arg, s["params"]))
        if op == "first":
            return await (stmt.first(s["column"]) if "column" in s else stmt.first())
        if op == "raw":
            return await stmt.raw(**s.get("kw", {}))
        return await getattr(stmt, op)()


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            out = []
            for s in await request.json():
                try:
                    out.append(await step(self.env, s))
                except Exception as e:
                    err = {"error": type(e).__name__, "message": str(e),
                           "js": isinstance(e, JsException),
                           "d1": isinstance(e, D1Error), "name": getattr(e, "name", None)}
                    return Response(json.dumps({"out": out, **err}, default=plain), status=500)
            return Response(json.dumps({"out": out}, default=plain),
                            headers={"content-type": "application/json"})
"""

D1_CONFIG = [{"binding": "DB", "database_name": "test-db",
              "database_id": "8c2a1f5e-0000-4000-8000-000000000001"}]


def d1_worker(d, source=RUNNER, databases=None, **cfg):
    write_worker(d, source, fmt="json", d1_databases=databases or D1_CONFIG, **cfg)


@pytest.fixture
def runner(workdir, thaw_factory):
    d1_worker(workdir)
    return thaw_factory(workdir)


def run(srv, *steps, status=200):
    r = srv.request("POST", "/", body=json.dumps(steps).encode(),
                    headers={"content-type": "application/json"})
    assert r.status == status, f"{r.status}: {r.text}\n{srv.log()[-2000:]}"
    return r.json()


def fail(srv, *steps):
    return run(srv, *steps, status=500)


def thaw_d1(*args, cwd=None):
    return subprocess.run([str(THAW), "d1", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=60)


SCHEMA = ("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
          "email TEXT UNIQUE, score REAL, avatar BLOB)")

META_KEYS = {"duration", "changes", "last_row_id", "changed_db", "size_after",
             "rows_read", "rows_written"}


# ---------------------------------------------------------------- the API

def test_run_all_first_raw_return_d1_shapes(runner):
    out = run(runner,
              {"op": "exec", "sql": SCHEMA},
              {"op": "run", "sql": "INSERT INTO users (name, email) VALUES (?, ?)",
               "params": ["ada", "ada@x"]},
              {"op": "run", "sql": "INSERT INTO users (name, email) VALUES (?, ?)",
               "params": ["bob", "bob@x"]},
              {"op": "all", "sql": "SELECT id, name FROM users ORDER BY id"},
              {"op": "first", "sql": "SELECT id, name FROM users ORDER BY id"},
              {"op": "first", "sql": "SELECT id, name FROM users ORDER BY id",
               "column": "name"},
              {"op": "first", "sql": "SELECT * FROM users WHERE id = 99"},
              {"op": "first", "sql": "SELECT * FROM users WHERE id = 99", "column": "x"},
              {"op": "raw", "sql": "SELECT id, name FROM users ORDER BY id"},
              {"op": "raw", "sql": "SELECT id, name FROM users ORDER BY id",
               "kw": {"columnNames": True}},
              {"op": "run", "sql": "UPDATE users SET score = 1.5"})["out"]
    ex, ins1, ins2, allr, first, name, none1, none2, raw, rawc, upd = out
    assert set(ex) == {"count", "duration"} and ex["count"] == 1
    assert ins1["success"] is True and set(ins1["meta"]) >= META_KEYS
    assert ins1["results"] == []
    assert ins1["meta"]["changes"] == 1 and ins1["meta"]["changed_db"] is True
    assert (ins1["meta"]["last_row_id"], ins2["meta"]["last_row_id"]) == (1, 2)
    assert ins1["meta"]["rows_written"] == 1 and ins1["meta"]["size_after"] > 0
    assert allr["results"] == [{"id": 1, "name": "ada"}, {"id": 2, "name": "bob"}]
    assert allr["meta"]["changes"] == 0 and allr["meta"]["changed_db"] is False
    assert allr["meta"]["rows_read"] >= 2
    assert first == {"id": 1, "name": "ada"} and name == "ada"
    assert none1 is None and none2 is None
    assert raw == [[1, "ada"], [2, "bob"]]
    assert rawc == [["id", "name"], [1, "ada"], [2, "bob"]]
    assert upd["meta"]["changes"] == 2


def test_results_allow_attribute_access_and_response_json(workdir, thaw_factory):
    d1_worker(workdir, """
        from workers import Response, WorkerEntrypoint

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                db = self.env.DB
                await db.exec("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, name TEXT)")
                ins = await db.prepare("INSERT INTO t (name) VALUES (?)").bind("zoe").run()
                res = await db.prepare("SELECT * FROM t").all()
                row = res.results[0]
                assert row["name"] == row.name == "zoe"
                assert res.meta.changes == 0 and ins.meta.changes == 1 and res.success
                assert type(res.results.to_py()) is list and type(row.to_py()) is dict
                session = db.withSession("first-primary")
                again = await session.prepare("SELECT name FROM t").first("name")
                return Response.json({"all": res, "again": again,
                                      "bookmark": session.getBookmark()})
    """)
    srv = thaw_factory(workdir)
    r = srv.get("/")
    assert r.status == 200, r.text + srv.log()[-2000:]
    body = r.json()
    assert body["all"]["results"] == [{"id": 1, "name": "zoe"}]
    assert body["all"]["success"] is True and body["again"] == "zoe"
    assert body["bookmark"] is None


def test_bind_types_round_trip(runner):
    big = 2**62 + 1  # beyond a double's 2^53: thaw keeps it exact
    out = run(runner,
              {"op": "first", "sql": "SELECT ? AS s, typeof(?1) AS t", "params": ["héllo \"q\" \n\t\\"]},
              {"op": "first", "sql": "SELECT ? AS v, typeof(?1) AS t", "params": [big]},
              {"op": "first", "sql": "SELECT ? AS v, typeof(?1) AS t", "params": [-2**63]},
              {"op": "first", "sql": "SELECT ? AS v, typeof(?1) AS t", "params": [2.5]},
              {"op": "first", "sql": "SELECT ? AS v, typeof(?1) AS t", "params": [1.0]},
              {"op": "first", "sql": "SELECT ? AS v, typeof(?1) AS t", "params": [None]},
              {"op": "first", "sql": "SELECT ? AS a, ? AS b, typeof(?1) AS t",
               "params": [True, False]},
              {"op": "first", "sql": "SELECT ? AS v, typeof(?1) AS t, length(?1) AS n",
               "params": [{"$bytes": "00ff10"}]},
              {"op": "first", "sql": "SELECT ? AS v, typeof(?1) AS t", "params": [{"$bytes": ""}]},
              {"op": "first", "sql": "SELECT ?2 AS a, ?1 AS b", "params": [1, "x"]},
              {"op": "first", "sql": "SELECT 1e308 * 10 AS inf, 0.1 + 0.2 AS f"})["out"]
    assert out[0] == {"s": "héllo \"q\" \n\t\\", "t": "text"}
    assert out[1] == {"v": big, "t": "integer"}
    assert out[2] == {"v": -2**63, "t": "integer"}
    assert out[3] == {"v": 2.5, "t": "real"}
    assert out[4] == {"v": 1.0, "t": "real"} and isinstance(out[4]["v"], float)
    assert out[5] == {"v": None, "t": "null"}
    assert out[6] == {"a": 1, "b": 0, "t": "integer"}
    assert out[7] == {"v": [0, 255, 16], "t": "blob", "n": 3}  # BLOBs: byte values
    assert out[8] == {"v": [], "t": "blob"}
    assert out[9] == {"a": "x", "b": 1}
    assert out[10] == {"inf": None, "f": 0.30000000000000004}


def test_blob_and_text_columns_round_trip_through_a_table(runner):
    data = bytes(range(256)) * 4
    out = run(runner,
              {"op": "exec", "sql": SCHEMA},
              {"op": "run", "sql": "INSERT INTO users (name, avatar) VALUES (?, ?)",
               "params": ["a\x00b", {"$bytes": data.hex()}]},
              {"op": "first", "sql": "SELECT name, avatar, length(name) AS n FROM users"})
    row = out["out"][2]
    assert bytes(row["avatar"]) == data
    assert row["name"] == "a\x00b" and row["n"] == 1  # SQLite's length() stops at NUL


@pytest.mark.parametrize("value, kind", [
    ({"$dict": {"a": 1}}, "dict"),
    (2**64, "int"),
    ([1, 2, 300], "list"),
])
def test_unsupported_bind_values_are_d1_type_errors(runner, value, kind):
    r = fail(runner, {"op": "all", "sql": "SELECT ?", "params": [value]})
    assert r["d1"] and r["js"] and r["name"] == "Error", r
    assert r["message"].startswith("Error: D1_TYPE_ERROR: "), r
    assert ("64-bit" in r["message"]) if kind == "int" else (f"'{kind}'" in r["message"])


def test_sql_errors_carry_sqlites_message(runner):
    run(runner, {"op": "exec", "sql": SCHEMA},
        {"op": "run", "sql": "INSERT INTO users (name, email) VALUES ('a', 'a@x')"})
    cases = [
        ({"op": "all", "sql": "SELEC * FROM users"},
         'D1_ERROR: near "SELEC": syntax error: SQLITE_ERROR'),
        ({"op": "all", "sql": "SELECT * FROM nope"},
         "D1_ERROR: no such table: nope: SQLITE_ERROR"),
        ({"op": "run", "sql": "INSERT INTO users (name, email) VALUES ('b', 'a@x')"},
         "D1_ERROR: UNIQUE constraint failed: users.email: SQLITE_CONSTRAINT"),
        ({"op": "run", "sql": "INSERT INTO users (email) VALUES ('c@x')"},
         "D1_ERROR: NOT NULL constraint failed: users.name: SQLITE_CONSTRAINT"),
        ({"op": "all", "sql": "SELECT * FROM users WHERE id = ? AND name = ?", "params": [1]},
         "D1_ERROR: Wrong number of parameter bindings for SQL query: it takes 2, 1 given"),
        ({"op": "all", "sql": "SELECT * FROM users", "params": [1]},
         "D1_ERROR: Wrong number of parameter bindings for SQL query: it takes 0, 1 given"),
        ({"op": "first", "sql": "SELECT name FROM users", "column": "missing"},
         "D1_COLUMN_NOTFOUND: Column not found (missing)"),
        ({"op": "all", "sql": "  -- nothing\n"}, "D1_ERROR: No SQL statements detected."),
        ({"op": "exec", "sql": "SELECT 1;\nINSERT INTO nope VALUES (1);\nSELECT 2;"},
         "D1_EXEC_ERROR: Error in line 2: INSERT INTO nope VALUES (1);: "
         "no such table: nope: SQLITE_ERROR"),
        ({"op": "all", "sql": "SELECT ?; SELECT 2", "params": [1]},
         "must be a single SQL statement"),
    ]
    for step, want in cases:
        r = fail(runner, step)
        assert r["d1"] and r["js"] and r["name"] == "Error", (step, r)
        assert want in r["message"], (step, r["message"])
        assert r["message"].startswith("Error: D1_"), r["message"]
    # nothing above broke the connection
    assert run(runner, {"op": "first", "sql": "SELECT count(*) AS n FROM users",
                        "column": "n"})["out"] == [1]


def test_prepare_of_several_statements_returns_the_last(runner):
    out = run(runner, {"op": "all", "sql": "CREATE TABLE t (a); INSERT INTO t VALUES (7); "
                       "SELECT a FROM t; -- done"})["out"][0]
    assert out["results"] == [{"a": 7}]


def test_exec_counts_statements_and_commits_each(runner):
    out = run(runner, {"op": "exec", "sql": "CREATE TABLE t (a);\nINSERT INTO t VALUES (1);\n"
                       "INSERT INTO t VALUES (2)"})["out"][0]
    assert out["count"] == 3 and out["duration"] >= 0
    fail(runner, {"op": "exec", "sql": "INSERT INTO t VALUES (3);\nINSERT INTO x VALUES (1)"})
    # the first statement committed before the second failed, as on D1
    assert run(runner, {"op": "first", "sql": "SELECT count(*) AS n FROM t",
                        "column": "n"})["out"] == [3]


def test_a_transaction_left_open_is_rolled_back(runner):
    run(runner, {"op": "exec", "sql": "CREATE TABLE t (a)"})
    r = fail(runner, {"op": "exec", "sql": "BEGIN; INSERT INTO t VALUES (1)"})
    assert "left a transaction open" in r["message"] and "batch()" in r["message"]
    out = run(runner, {"op": "first", "sql": "SELECT count(*) AS n FROM t", "column": "n"},
              {"op": "exec", "sql": "BEGIN; INSERT INTO t VALUES (2); COMMIT"},
              {"op": "first", "sql": "SELECT count(*) AS n FROM t", "column": "n"})["out"]
    assert out[0] == 0 and out[2] == 1


# ---------------------------------------------------------------- batch

def test_batch_returns_results_in_order(runner):
    run(runner, {"op": "exec", "sql": SCHEMA})
    out = run(runner, {"op": "batch", "stmts": [
        {"sql": "INSERT INTO users (name) VALUES (?)", "params": ["a"]},
        {"sql": "INSERT INTO users (name) VALUES (?)", "params": ["b"]},
        {"sql": "SELECT name FROM users ORDER BY id"},
        {"sql": "SELECT count(*) AS n FROM users WHERE name = ?", "params": ["b"]},
    ]})["out"][0]
    assert len(out) == 4 and all(r["success"] for r in out)
    assert [r["meta"]["last_row_id"] for r in out[:2]] == [1, 2]
    assert out[2]["results"] == [{"name": "a"}, {"name": "b"}]
    assert out[3]["results"] == [{"n": 1}]


def test_batch_is_atomic(runner):
    run(runner, {"op": "exec", "sql": SCHEMA},
        {"op": "run", "sql": "INSERT INTO users (name, email) VALUES ('keep', 'k@x')"})
    r = fail(runner, {"op": "batch", "stmts": [
        {"sql": "INSERT INTO users (name, email) VALUES (?, ?)", "params": ["a", "a@x"]},
        {"sql": "UPDATE users SET name = 'changed' WHERE email = 'k@x'"},
        {"sql": "INSERT INTO users (name, email) VALUES (?, ?)", "params": ["dup", "a@x"]},
        {"sql": "INSERT INTO users (name, email) VALUES (?, ?)", "params": ["c", "c@x"]},
    ]})
    assert "UNIQUE constraint failed: users.email" in r["message"], r
    out = run(runner, {"op": "raw", "sql": "SELECT name, email FROM users"})["out"][0]
    assert out == [["keep", "k@x"]]  # the first two statements were rolled back
    r = fail(runner, {"op": "batch", "stmts": [
        {"sql": "INSERT INTO users (name) VALUES ('x')"}, {"sql": "COMMIT"}]})
    assert "statement 2 of the batch is a BEGIN, COMMIT or ROLLBACK" in r["message"], r
    assert run(runner, {"op": "raw", "sql": "SELECT name FROM users"})["out"][0] == [["keep"]]


def test_batch_rejects_what_is_not_a_statement(workdir, thaw_factory):
    d1_worker(workdir, """
        from workers import Response, WorkerEntrypoint

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                try:
                    await self.env.DB.batch(["SELECT 1"])
                except TypeError as e:
                    return Response(str(e))
                return Response("no error", status=500)
    """)
    srv = thaw_factory(workdir)
    r = srv.get("/")
    assert r.status == 200 and "batch() takes a list of prepared statements" in r.text, r


# ---------------------------------------------------------------- storage

def test_database_file_layout_and_name_fallback(workdir, thaw_factory):
    dbs = [{"binding": "A", "database_name": "alpha", "database_id": "id-a"},
           {"binding": "B", "database_name": "beta"},  # no id: the name names the file
           {"binding": "A2", "database_name": "alpha-again", "database_id": "id-a"}]
    d1_worker(workdir, databases=dbs)
    srv = thaw_factory(workdir)
    run(srv, {"db": "A", "op": "exec", "sql": "CREATE TABLE t (v); INSERT INTO t VALUES ('a')"},
        {"db": "B", "op": "exec", "sql": "CREATE TABLE t (v); INSERT INTO t VALUES ('b')"})
    out = run(srv, {"db": "A2", "op": "raw", "sql": "SELECT v FROM t"},
              {"db": "B", "op": "raw", "sql": "SELECT v FROM t"})["out"]
    assert out == [[["a"]], [["b"]]]  # A and A2 are one database, B its own
    d1dir = workdir / ".thaw/state/d1"
    assert sorted(p.name for p in d1dir.glob("*.sqlite")) == ["beta.sqlite", "id-a.sqlite"]
    with sqlite3.connect(d1dir / "beta.sqlite") as c:
        assert c.execute("SELECT v FROM t").fetchall() == [("b",)]


def test_data_survives_a_restart_and_a_sigkill(workdir, thaw_factory):
    d1_worker(workdir)
    srv = thaw_factory(workdir)
    run(srv, {"op": "exec", "sql": SCHEMA},
        {"op": "run", "sql": "INSERT INTO users (name) VALUES ('before restart')"})
    assert srv.stop() == 0
    srv = thaw_factory(workdir)
    run(srv, {"op": "run", "sql": "INSERT INTO users (name) VALUES ('before kill')"})
    srv.stop(signal.SIGKILL)  # a committed write is on disk (synchronous=FULL)
    srv = thaw_factory(workdir)
    out = run(srv, {"op": "raw", "sql": "SELECT name FROM users ORDER BY id"})["out"][0]
    assert out == [["before restart"], ["before kill"]]


def test_state_option_moves_the_database(workdir, tmp_path, thaw_factory):
    d1_worker(workdir)
    state = tmp_path / "elsewhere"
    srv = thaw_factory(workdir, "--persist-to", str(state))
    run(srv, {"op": "exec", "sql": "CREATE TABLE t (a)"})
    assert (state / "d1" / f"{D1_CONFIG[0]['database_id']}.sqlite").is_file()
    assert not (workdir / ".thaw").exists()


def test_concurrent_requests_all_write(workdir, thaw_factory):
    d1_worker(workdir, """
        from workers import Response, WorkerEntrypoint

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                db = self.env.DB
                if request.url.endswith("/count"):
                    n = await db.prepare("SELECT n FROM c").first("n")
                    rows = await db.prepare("SELECT count(*) AS k FROM hits").first("k")
                    return Response(f"{n} {rows}")
                await db.prepare("INSERT INTO hits DEFAULT VALUES").run()
                await db.prepare("UPDATE c SET n = n + 1").run()
                return Response("ok")
    """, thaw={"max_instances": 4, "concurrency": 8})
    srv = thaw_factory(workdir)
    r = thaw_d1("execute", "DB", workdir, "--command",
                "CREATE TABLE hits (id INTEGER PRIMARY KEY); CREATE TABLE c (n INTEGER);"
                "INSERT INTO c VALUES (0)")
    assert r.returncode == 0, r.stderr
    n = 0
    for _ in range(3):
        rs = srv.concurrent_get("/bump", 16)
        assert all(x.status == 200 for x in rs), [x.text for x in rs]
        n += 16
    assert srv.get("/count").text == f"{n} {n}"


def test_a_result_over_one_frame_arrives_and_a_huge_one_fails_clearly(runner):
    out = run(runner, {"op": "all", "sql":
                       "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                       "WHERE i < 3000) SELECT i, printf('%.*c', 1000, 'x') AS pad FROM n"})
    rows = out["out"][0]["results"]
    assert len(rows) == 3000 and rows[-1]["i"] == 3000 and len(rows[0]["pad"]) == 1000
    # values are at most 2 MB (D1's limit), so 18 rows of 1.9 MB
    r = fail(runner, {"op": "all", "sql":
                      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                      "WHERE i < 18) SELECT printf('%.*c', 1900000, 'x') AS big FROM n"})
    assert "the result is over 32 MiB of JSON" in r["message"], r["message"][:300]
    assert run(runner, {"op": "first", "sql": "SELECT 1 AS one"})["out"] == [{"one": 1}]


def test_the_database_outlives_a_reload(workdir, thaw_factory):
    d1_worker(workdir)
    srv = thaw_factory(workdir)
    run(srv, {"op": "exec", "sql": "CREATE TABLE t (a); INSERT INTO t VALUES (1)"})
    (workdir / "src/entry.py").write_text(textwrap.dedent(RUNNER) + "\n# v2\n")
    srv.wait_log("version 2", timeout=15)
    out = run(srv, {"op": "run", "sql": "INSERT INTO t VALUES (2)"},
              {"op": "raw", "sql": "SELECT a FROM t"})["out"]
    assert out[1] == [[1], [2]]


# ---------------------------------------------------------------- config

@pytest.mark.parametrize("entry, needles", [
    ({"database_name": "x"}, ["d1_databases[0]", "binding"]),
    ({"binding": "DB"}, ["d1_databases[0]", "database_name", "database_id"]),
    ({"binding": "DB", "database_id": 5}, ["d1_databases[0]", "string"]),
    ({"binding": "DB", "database_name": 7}, ["d1_databases[0]", "string"]),
])
def test_bad_d1_config_is_a_clear_error(workdir, thaw_factory, entry, needles):
    d1_worker(workdir, databases=[entry])
    srv = thaw_factory(workdir, start=False)
    srv.spawn()
    if srv.wait_ready_or_exit():
        r = srv.get("/")
        assert r.status == 500, r
        text = r.text + srv.wait_log(*needles)
    else:
        text = srv.output()
    for n in needles:
        assert n in text, f"{n!r} not in:\n{text}"


def test_d1_databases_is_no_longer_a_not_supported_key(runner):
    run(runner, {"op": "first", "sql": "SELECT 1 AS x"})
    assert "d1_databases` is not supported" not in runner.log()


# ---------------------------------------------------------------- thaw d1 execute

def test_cli_schema_then_worker_reads_then_cli_sees_worker_writes(workdir, thaw_factory):
    d1_worker(workdir)
    (workdir / "schema.sql").write_text(textwrap.dedent("""\
        -- users; a ';' in a comment
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        INSERT INTO users (name) VALUES ('semi;colon'), ('it''s');
        CREATE TRIGGER up AFTER INSERT ON users BEGIN
            UPDATE users SET name = upper(name) WHERE id = new.id;
        END;
    """))
    r = thaw_d1("execute", "DB", workdir, "--local", "--file", workdir / "schema.sql")
    assert r.returncode == 0, r.stderr
    assert "3 commands executed successfully" in r.stdout, r.stdout
    srv = thaw_factory(workdir)
    out = run(srv, {"op": "raw", "sql": "SELECT name FROM users ORDER BY id"},
              {"op": "run", "sql": "INSERT INTO users (name) VALUES ('from worker')"})["out"]
    assert out[0] == [["semi;colon"], ["it's"]]
    # while thaw runs, by database_name, with JSON output
    r = thaw_d1("execute", "test-db", "--json", "--command",
                "SELECT name FROM users WHERE id = 3", cwd=workdir)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res[0]["results"] == [{"name": "FROM WORKER"}] and res[0]["success"] is True
    # a table when not --json
    r = thaw_d1("execute", "DB", workdir, "--command", "SELECT id, name FROM users WHERE id < 3")
    assert r.returncode == 0 and "│ id │ name" in r.stdout and "semi;colon" in r.stdout, r.stdout


def test_cli_uses_the_same_state_dir_option(workdir, tmp_path, thaw_factory):
    d1_worker(workdir)
    state = tmp_path / "st"
    r = thaw_d1("execute", "DB", workdir, "--persist-to", state, "--command",
                "CREATE TABLE t (a); INSERT INTO t VALUES (42)")
    assert r.returncode == 0, r.stderr
    srv = thaw_factory(workdir, "--state", str(state))
    assert run(srv, {"op": "first", "sql": "SELECT a FROM t", "column": "a"})["out"] == [42]


def test_cli_sql_error_names_the_line_and_applies_nothing(workdir):
    d1_worker(workdir)
    (workdir / "bad.sql").write_text("CREATE TABLE t (a);\nINSERT INTO t VALUES (1);\n\n"
                                     "INSERT INTO nope VALUES (2);\n")
    r = thaw_d1("execute", "DB", workdir, "--file", workdir / "bad.sql")
    assert r.returncode == 1
    assert f"{workdir / 'bad.sql'}:4: no such table: nope" in r.stderr, r.stderr
    assert "nothing was applied" in r.stderr
    r = thaw_d1("execute", "DB", workdir, "--json", "--command", "SELECT name FROM sqlite_master")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["results"] == []  # rolled back


def test_cli_bad_usage(workdir):
    d1_worker(workdir, databases=D1_CONFIG + [{"binding": "OTHER", "database_name": "o"}])
    r = thaw_d1("execute", "NOPE", workdir, "--command", "SELECT 1")
    assert r.returncode == 1
    assert "no D1 database 'NOPE'" in r.stderr and "DB (test-db)" in r.stderr \
        and "OTHER (o)" in r.stderr, r.stderr
    r = thaw_d1("execute", "DB", workdir)
    assert r.returncode == 1 and "--file" in r.stderr and "--command" in r.stderr
    r = thaw_d1("execute", "DB", workdir, "--remote", "--command", "SELECT 1")
    assert r.returncode == 1 and "no remote" in r.stderr
    r = thaw_d1("execute", "DB", workdir, "--file", workdir / "missing.sql")
    assert r.returncode == 1 and "missing.sql" in r.stderr
    r = thaw_d1("execute", "DB", workdir, "--command", "-- only a comment")
    assert r.returncode == 1 and "no SQL statements" in r.stderr
    write_config(workdir, fmt="json")  # no d1_databases at all
    r = thaw_d1("execute", "DB", workdir, "--command", "SELECT 1")
    assert r.returncode == 1 and "declares no D1 databases" in r.stderr, r.stderr


def test_help_lists_d1():
    r = subprocess.run([str(THAW), "help"], capture_output=True, text=True, timeout=30)
    assert "thaw d1 execute NAME" in r.stdout


# ---------------------------------------------------------------- the example

def test_example_d1_notes(tmp_path, thaw_factory):
    import shutil
    d = tmp_path / "notes"
    shutil.copytree(REPO / "examples/d1", d, ignore=shutil.ignore_patterns(".thaw"))
    r = thaw_d1("execute", "DB", d, "--file", d / "schema.sql")
    assert r.returncode == 0, r.stderr
    srv = thaw_factory(d)
    notes = srv.get("/notes").json()
    assert [n["title"] for n in notes] == ["Welcome"]
    r = srv.request("POST", "/notes", body=json.dumps({"title": "Two", "body": "b"}).encode(),
                    headers={"content-type": "application/json"})
    assert r.status == 201, r.text
    new = r.json()
    assert new["title"] == "Two" and isinstance(new["id"], int)
    assert srv.get(f"/notes/{new['id']}").json()["body"] == "b"
    r = srv.request("POST", "/notes", body=b'{"body": "no title"}',
                    headers={"content-type": "application/json"})
    assert r.status == 400 and "title" in r.text
    assert srv.get("/notes/999").status == 404
    assert srv.request("DELETE", f"/notes/{new['id']}").status == 204
    assert [n["title"] for n in srv.get("/notes").json()] == ["Welcome"]


def test_a_runaway_query_stops_when_its_request_times_out(workdir, thaw_factory):
    """The request's time limit cancels it in the instance, the instance
    cancels the binding call, and the supervisor interrupts SQLite: the
    database is free again long before D1's 30 s query limit."""
    d1_worker(workdir)
    srv = thaw_factory(workdir, "--request-timeout", "1000")
    endless = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
               "SELECT count(*) FROM n")
    r = srv.request("POST", "/", body=json.dumps([{"op": "all", "sql": endless}]).encode())
    assert r.status == 504, r
    # HTTP_TIMEOUT (15 s) is well under the 30 s the query would otherwise hold the queue
    assert run(srv, {"op": "first", "sql": "SELECT 2 AS two", "column": "two"})["out"] == [2]
