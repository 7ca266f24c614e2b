"""Tenant isolation, D1 (issue 14, escape 2): a worker's SQL runs in the
supervisor, so it must not reach past the worker's own database file. A
hostile worker, deployed through the admin API next to an innocent one
whose D1 database and KV namespace hold secrets, tries what an attacker
would: ATTACH the innocent's files, VACUUM INTO a file of its choosing,
load an extension, write the schema table by hand, and statements past
D1's limits. Each is refused with a D1 error, no file appears, and the
innocent keeps its data and keeps serving. Ordinary D1 work still runs.

Both places of the state directory (tenantlib's PLACES) run every test."""
import json
import os
import threading
import time
import uuid
from pathlib import Path

from tenantlib import tenant  # noqa: F401 (fixture)

INNOCENT = '''
from workers import Response, WorkerEntrypoint

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        path = request.url.split("/", 3)[3] if request.url.count("/") >= 3 else ""
        if path == "seed":
            await self.env.DB.exec("CREATE TABLE IF NOT EXISTS secrets (v TEXT)")
            await self.env.DB.prepare("INSERT INTO secrets VALUES (?)").bind(
                "innocent-d1-secret").run()
            await self.env.KV.put("token", "innocent-kv-secret")
            return Response("seeded")
        if path == "check":
            row = await self.env.DB.prepare("SELECT v FROM secrets").first()
            kv = await self.env.KV.get("token")
            return Response(f"{row['v']} {kv}")
        return Response("innocent")
'''

INNOCENT_DB = {"binding": "DB", "database_name": "innocent-db",
               "database_id": "1a2b3c4d-0000-4000-8000-00000000cafe"}
INNOCENT_KV = {"binding": "KV", "id": "innocent-kv-0001"}

# Runs the SQL it is sent: {"op": "all" | "exec" | "batch", "sql": ...,
# "params": [...]} -> {"ok": result} or {"error", "message", "d1"}.
RUNNER = '''
import json
from workers import D1Error, Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        s = await request.json()
        db = self.env.DB
        try:
            if s["op"] == "exec":
                res = await db.exec(s["sql"])
            elif s["op"] == "batch":
                res = await db.batch([db.prepare(q) for q in s["sql"]])
            else:
                res = await db.prepare(s["sql"]).bind(*s.get("params", [])).all()
            return Response(json.dumps({"ok": res}, default=str))
        except Exception as e:
            return Response(json.dumps({"error": type(e).__name__, "message": str(e),
                                        "d1": isinstance(e, D1Error)}), status=500)
'''

EVIL_DB = {"binding": "DB", "database_name": "evil-db",
           "database_id": "e0e0e0e0-0000-4000-8000-00000000beef"}


def start(tenant):
    """A serve with the innocent (D1 + KV, seeded) and a SQL runner named
    `name`; returns the server."""
    srv = tenant.serve(innocent=False)
    rc, out = tenant.deploy("innocent", INNOCENT, fmt="json",
                            d1_databases=[INNOCENT_DB], kv_namespaces=[INNOCENT_KV])
    assert rc == 0, out
    r = srv.request("POST", "/seed", headers={"Host": "innocent.localhost"})
    assert r.status == 200 and r.text == "seeded", r
    return srv


def deploy_runner(tenant, name):
    rc, out = tenant.deploy(name, RUNNER, fmt="json", d1_databases=[EVIL_DB])
    assert rc == 0, out


def run(srv, name, op, sql, params=None):
    body = json.dumps({"op": op, "sql": sql, "params": params or []})
    r = srv.request("POST", "/", body=body, headers={"Host": f"{name}.localhost"},
                    timeout=60)
    try:
        return json.loads(r.text)
    except ValueError:
        return {"error": "not JSON", "message": f"{r.status} {r.text[:500]}", "d1": False}


def innocent_files(state):
    data = Path(state) / "workers" / "innocent" / "data"
    return (data / "d1" / f"{INNOCENT_DB['database_id']}.sqlite",
            data / "kv" / f"{INNOCENT_KV['id']}.sqlite")


def files_under(root):
    out = set()
    for dirpath, _, names in os.walk(root):
        for n in names:
            if not n.endswith(("-wal", "-shm", "-journal")):
                out.add(os.path.join(dirpath, n))
    return out


def innocent_intact(srv):
    r = srv.request("GET", "/check", headers={"Host": "innocent.localhost"})
    assert r.status == 200 and r.text == "innocent-d1-secret innocent-kv-secret", r
    r = srv.host_get("innocent.localhost")
    assert r.status == 200 and r.text == "innocent", r


def test_hostile_sql_cannot_reach_other_files(tenant):
    srv = start(tenant)
    d1_file, kv_file = innocent_files(tenant.state)
    assert d1_file.exists() and kv_file.exists(), sorted(files_under(tenant.state))
    deploy_runner(tenant, "evil")
    assert "ok" in run(srv, "evil", "exec", "CREATE TABLE mine (a); INSERT INTO mine VALUES (1)")

    tag = uuid.uuid4().hex[:8]
    var_tmp = f"/var/tmp/thaw-evil-{tag}.db"
    in_state = str(d1_file.parent / f"stolen-{tag}.sqlite")
    before = files_under(tenant.state)
    attacks = [
        # the neighbour's D1 and KV files, every way ATTACH can name them
        ("all", f"ATTACH DATABASE '{d1_file}' AS x", None, "ATTACH"),
        ("exec", f"ATTACH DATABASE '{d1_file}' AS x; SELECT * FROM x.secrets", None,
         "ATTACH"),
        ("all", f"ATTACH '{kv_file}' AS k", None, "ATTACH"),
        ("all", "ATTACH ? AS k", [str(kv_file)], "ATTACH"),
        ("all", f"ATTACH 'file:{kv_file}?mode=ro' AS k", None, "ATTACH"),
        ("batch", [f"ATTACH '{d1_file}' AS x", "SELECT * FROM x.secrets"], None,
         "ATTACH"),
        # root-owned files with chosen content, anywhere
        ("all", f"VACUUM INTO '{var_tmp}'", None, "VACUUM INTO"),
        ("exec", f"VACUUM INTO '{in_state}'", None, "VACUUM INTO"),
        ("all", "VACUUM INTO ?", [var_tmp], "VACUUM INTO"),
        # code into the supervisor
        ("all", "SELECT load_extension('/usr/lib/x86_64-linux-gnu/libsqlite3.so.0')",
         None, "load_extension"),
        ("all", "SELECT hex(fts3_tokenizer('simple'))", None, "fts3_tokenizer"),
        # pragmas that name files or drop the safety nets
        ("all", "PRAGMA writable_schema=1", None, "writable_schema"),
        ("all", "PRAGMA temp_store_directory='/var/tmp'", None, "temp_store_directory"),
        ("all", "PRAGMA journal_mode=OFF", None, "journal_mode"),
        ("all", "SELECT * FROM pragma_database_list", None, "database_list"),
        ("all", "PRAGMA cache_size=-100000000", None, "cache_size"),
    ]
    failures = []
    for op, sql, params, why in attacks:
        res = run(srv, "evil", op, sql, params)
        msg = res.get("message", "")
        if "ok" in res or not res.get("d1") or "not authorized: SQLITE_AUTH" not in msg \
                or why not in msg:
            failures.append(f"{op} {sql!r}: {res}")
    # the schema table stays read-only, and evil's own database sound
    res = run(srv, "evil", "all",
              "UPDATE sqlite_master SET sql = 'CREATE TABLE mine (a, b)' WHERE name = 'mine'")
    if "ok" in res or "may not be modified" not in res.get("message", ""):
        failures.append(f"UPDATE sqlite_master: {res}")
    res = run(srv, "evil", "all", "PRAGMA quick_check")
    if res.get("ok", {}).get("results") != [{"quick_check": "ok"}]:
        failures.append(f"quick_check after the attacks: {res}")
    assert not failures, "\n".join(failures)

    assert not os.path.exists(var_tmp)
    assert files_under(tenant.state) == before
    assert srv.proc.poll() is None
    innocent_intact(srv)


def test_statements_past_d1_limits_are_refused(tenant):
    srv = start(tenant)
    deploy_runner(tenant, "evil")
    cols = ", ".join(f"c{i}" for i in range(101))
    attacks = [
        # D1: 100,000 bytes of SQL per statement
        ("SELECT '" + "x" * 100_001 + "'", None, "SQLITE_TOOBIG"),
        # D1: 100 columns per table
        (f"CREATE TABLE wide ({cols})", None, "too many columns on wide"),
        # deep expressions: a recursion in the supervisor's compiler
        ("SELECT 1" + "+1" * 300, None, "Expression tree is too large"),
        ("SELECT 1 WHERE 0" + " OR 0" * 300, None, "Expression tree is too large"),
        # D1: 100 bound parameters
        ("SELECT " + ", ".join("?" for _ in range(101)), list(range(101)),
         "too many SQL variables"),
        # D1: 2,000,000 bytes per value, made in the supervisor's memory
        ("SELECT zeroblob(100000000)", None, "string or blob too big"),
        # D1: 32 arguments per function, 50-byte LIKE patterns
        ("SELECT max(" + ", ".join(["1"] * 33) + ")", None, "too many arguments"),
        ("SELECT 'a' LIKE '" + "%" * 51 + "'", None, "pattern too complex"),
    ]
    failures = []
    for sql, params, why in attacks:
        res = run(srv, "evil", "all", sql, params)
        if "ok" in res or not res.get("d1") or why not in res.get("message", ""):
            failures.append(f"{sql[:60]!r}...: {str(res)[:300]}")
    assert not failures, "\n".join(failures)
    assert srv.proc.poll() is None
    assert "ok" in run(srv, "evil", "all", "SELECT 1 AS one")
    innocent_intact(srv)


def test_ordinary_d1_work_still_runs(tenant):
    srv = start(tenant)
    deploy_runner(tenant, "app")
    schema = """
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
        CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL
            REFERENCES users(id) ON DELETE CASCADE, title TEXT, body TEXT);
        CREATE INDEX posts_by_user ON posts(user_id);
        CREATE TABLE audit (msg TEXT);
        CREATE TRIGGER posts_audit AFTER INSERT ON posts
            BEGIN INSERT INTO audit VALUES ('new post: ' || new.title); END;
        CREATE VIEW feed AS SELECT u.name, p.title FROM posts p JOIN users u
            ON u.id = p.user_id;
        CREATE VIRTUAL TABLE posts_fts USING fts5(title, body, content='posts',
            content_rowid='id');
        CREATE TRIGGER posts_fts_ai AFTER INSERT ON posts BEGIN
            INSERT INTO posts_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
        END;
    """
    steps = [
        ("exec", " ".join(schema.split()), None),
        ("batch", ["INSERT INTO users (name) VALUES ('ada')",
                   "INSERT INTO users (name) VALUES ('bob')",
                   "INSERT INTO posts (user_id, title, body) VALUES (1, 'hello', 'first post')",
                   "INSERT INTO posts (user_id, title, body) VALUES (2, 'bye', 'last post')"],
         None),
        ("all", "SELECT name, title FROM feed ORDER BY title", None),
        ("all", "SELECT msg FROM audit ORDER BY rowid", None),
        ("all", "SELECT rowid FROM posts_fts WHERE posts_fts MATCH ?", ["first"]),
        ("all", "SELECT u.name, count(p.id) AS n FROM users u LEFT JOIN posts p "
                "ON p.user_id = u.id GROUP BY u.id ORDER BY u.name", None),
        ("all", "PRAGMA table_info(posts)", None),
        ("all", "SELECT name FROM pragma_table_list WHERE name = 'users'", None),
        ("all", "PRAGMA index_list(posts)", None),
        ("all", "PRAGMA foreign_key_check", None),
        ("all", "PRAGMA defer_foreign_keys = on", None),
        ("all", "PRAGMA optimize", None),
        ("all", "DELETE FROM users WHERE name = 'bob'", None),
        ("all", "VACUUM", None),
        ("all", "SELECT count(*) AS n FROM posts", None),
        ("all", "SELECT json_group_array(name) AS names FROM users", None),
    ]
    results = []
    for op, sql, params in steps:
        res = run(srv, "app", op, sql, params)
        assert "ok" in res, (sql, res)
        results.append(res["ok"])
    assert results[2]["results"] == [{"name": "bob", "title": "bye"},
                                     {"name": "ada", "title": "hello"}]
    assert [r["msg"] for r in results[3]["results"]] == ["new post: hello", "new post: bye"]
    assert results[4]["results"] == [{"rowid": 1}]
    assert results[5]["results"] == [{"name": "ada", "n": 1}, {"name": "bob", "n": 1}]
    assert [c["name"] for c in results[6]["results"]] == ["id", "user_id", "title", "body"]
    assert results[7]["results"] == [{"name": "users"}]
    assert results[14]["results"] == [{"n": 1}]  # the cascade ran
    assert results[15]["results"] == [{"names": '["ada"]'}]
    innocent_intact(srv)


HOG = '''
import asyncio, json
from workers import Response, WorkerEntrypoint

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        forever = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
                   "SELECT count(*) FROM n")
        dbs = [getattr(self.env, f"DB{i}") for i in range(4)]
        print("hog: four queries, forever", flush=True)
        res = await asyncio.gather(*[db.prepare(forever).all() for db in dbs],
                                   return_exceptions=True)
        return Response(json.dumps([str(r) for r in res]))
'''


def test_long_queries_on_many_databases_leave_the_pool_to_others(tenant):
    """Four 30-second queries, one per database, would hold every thread of
    the supervisor's pool (4), and the innocent's D1 and KV would wait for
    them. A worker's D1 jobs take turns: the innocent is answered while the
    hog's first query still runs."""
    srv = start(tenant)
    rc, out = tenant.deploy("hog", HOG, fmt="json", d1_databases=[
        {"binding": f"DB{i}", "database_name": f"hog-{i}"} for i in range(4)])
    assert rc == 0, out
    done = threading.Event()

    def hog():
        try:
            srv.request("GET", "/", headers={"Host": "hog.localhost"}, timeout=300)
        except OSError:
            pass  # the server stopped under it
        done.set()

    t = threading.Thread(target=hog, daemon=True)
    t.start()
    assert "hog: four queries" in srv.wait_log("hog: four queries, forever", timeout=30)
    time.sleep(1)  # for the calls to reach the supervisor; not a measurement
    innocent_intact(srv)
    assert not done.is_set(), "the hog's queries ended before the innocent was served"
    srv.stop()
    t.join(timeout=60)


def test_deleting_a_worker_while_its_queries_run_and_wait(tenant):
    """The hog's queries are running and waiting for their turn when it is
    deleted: they are stopped, the last one closes the databases, and the
    supervisor and the innocent go on."""
    srv = start(tenant)
    rc, out = tenant.deploy("hog", HOG, fmt="json", d1_databases=[
        {"binding": f"DB{i}", "database_name": f"hog-{i}"} for i in range(4)])
    assert rc == 0, out
    answer = []

    def hog():
        try:
            answer.append(srv.request("GET", "/", headers={"Host": "hog.localhost"},
                                      timeout=120).status)
        except OSError as e:
            answer.append(e)

    t = threading.Thread(target=hog, daemon=True)
    t.start()
    assert "hog: four queries" in srv.wait_log("hog: four queries, forever", timeout=30)
    time.sleep(1)  # for the calls to reach the supervisor; not a measurement
    srv.cli("delete", "hog")
    t.join(timeout=60)
    assert answer and answer[0] != 200, answer
    assert srv.proc.poll() is None
    innocent_intact(srv)
    assert srv.host_get("hog.localhost").status == 404
