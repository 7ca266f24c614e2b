"""D1 migrations as wrangler keeps them (issue 17, point 5): `thaw d1
migrations create|list|apply NAME` on the local database `thaw dev` serves,
and the admin API of `thaw serve` (GET .../d1/DB/migrations, POST
.../apply) for a deployed worker, with `thaw d1 migrations ... --to URL`
as its client. The real thaw runs; workers read what the migrations made
over HTTP."""
import json
import os
import re
import sqlite3
import subprocess
import textwrap

import pytest

from servelib import TOKEN, serve_factory  # noqa: F401 (fixture)
from thawlib import THAW, write_config, write_worker

# Runs the SQL it is POSTed (one statement), answers its rows as JSON.
SQL_WORKER = """
    import json
    from workers import D1Error, Response, WorkerEntrypoint

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            sql = await request.text()
            try:
                res = await self.env.DB.prepare(sql).all()
            except D1Error as e:
                return Response(json.dumps({"error": e.message}), status=500)
            return Response(json.dumps(res.results))
"""

DB = {"binding": "DB", "database_name": "notes-db",
      "database_id": "0c0ffee0-0000-4000-8000-00000000d1d1"}

FIRST = """\
-- the notes; a ';' in a comment
CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL, n INTEGER DEFAULT 0);
/* a block comment; before a trigger */
CREATE TRIGGER shout AFTER INSERT ON notes BEGIN
    UPDATE notes SET title = upper(title) WHERE id = new.id;
    UPDATE notes SET n = n + 1 WHERE id = new.id;
END;
INSERT INTO notes (title) VALUES ('semi;colon'), ('it''s')
"""

SECOND = """\
CREATE TABLE tags (note INTEGER REFERENCES notes(id), tag TEXT);
INSERT INTO tags VALUES (1, 'first');
"""

# line 5 is the statement that fails; the table of line 2 must not stay
BAD = """\
-- a bad one
CREATE TABLE half (a);
INSERT INTO half VALUES (1);

INSERT INTO nope VALUES (2);
"""


def thaw(*args, cwd=None, env=None):
    return subprocess.run([str(THAW), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120, env=env)


def mig(*args, cwd=None):
    return thaw("d1", "migrations", *args, cwd=cwd)


def project(d, name="notes", databases=None, files=None):
    write_worker(d, SQL_WORKER, fmt="json", name=name, d1_databases=databases or [DB],
                 files=files)
    return d


def sql(srv, text, host=None):
    headers = {"Host": host} if host else {}
    r = srv.request("POST", "/", body=text.encode(), headers=headers)
    return r.status, json.loads(r.text)


def local_db(d):
    return sqlite3.connect(d / ".thaw" / "state" / "d1" / f"{DB['database_id']}.sqlite")


def write_migration(d, name, text, folder="migrations"):
    p = d / folder / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


# ---------------------------------------------------------------- create

def test_create_names_files_as_wrangler_does(workdir):
    project(workdir)
    r = mig("create", "DB", "create notes table", workdir)
    assert r.returncode == 0, r.stderr
    first = workdir / "migrations" / "0001_create_notes_table.sql"
    assert first.is_file() and str(first) in r.stdout, r.stdout
    header = first.read_text()
    assert re.fullmatch(r"-- Migration number: 0001 \t \d{4}-\d\d-\d\dT[\d:.]+Z\n", header), \
        repr(header)
    # by database_name, from inside the worker's directory
    r = mig("create", "notes-db", "add tags", cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert (workdir / "migrations" / "0002_add_tags.sql").is_file()
    # the next number follows the highest, whatever came between
    write_migration(workdir, "0041_by_hand.sql", "")
    write_migration(workdir, "notes.txt", "")
    assert mig("create", "DB", "later", workdir).returncode == 0
    assert (workdir / "migrations" / "0042_later.sql").is_file()
    # a message that is not a file name
    r = mig("create", "DB", "../../escape", workdir)
    assert r.returncode == 1 and "cannot be part of a file name" in r.stderr, r.stderr
    assert not list(workdir.parent.glob("*escape*"))
    r = mig("create", "DB", cwd=workdir)
    assert r.returncode == 1 and "message" in r.stderr, r.stderr


def test_create_uses_migrations_dir(workdir):
    project(workdir, databases=[dict(DB, migrations_dir="db/changes")])
    r = mig("create", "DB", "init", workdir)
    assert r.returncode == 0, r.stderr
    assert (workdir / "db" / "changes" / "0001_init.sql").is_file()
    assert not (workdir / "migrations").exists()


# ---------------------------------------------------------------- list and apply

def test_list_apply_and_a_worker_sees_the_tables(workdir, thaw_factory):
    project(workdir)
    write_migration(workdir, "0001_notes.sql", FIRST)
    write_migration(workdir, "0002_tags.sql", SECOND)
    write_migration(workdir, "0010_empty.sql", "-- Migration number: 0010\n")
    r = mig("list", "DB", workdir)
    assert r.returncode == 0, r.stderr
    assert "Migrations to be applied" in r.stdout
    assert r.stdout.index("0001_notes.sql") < r.stdout.index("0002_tags.sql") < \
        r.stdout.index("0010_empty.sql"), r.stdout
    assert not (workdir / ".thaw").exists()  # a list makes no database
    r = mig("apply", "DB", workdir, "--local")
    assert r.returncode == 0, r.stderr
    assert "3 migrations applied" in r.stdout, r.stdout
    # the worker served by thaw dev sees what they made, trigger included
    srv = thaw_factory(workdir)
    status, rows = sql(srv, "SELECT title, n FROM notes ORDER BY id")
    assert status == 200 and rows == [{"title": "SEMI;COLON", "n": 1},
                                      {"title": "IT'S", "n": 1}], rows
    assert sql(srv, "SELECT tag FROM tags")[1] == [{"tag": "first"}]
    # wrangler's table: id, name, applied_at
    status, rows = sql(srv, "SELECT id, name, applied_at FROM d1_migrations ORDER BY id")
    assert [(x["id"], x["name"]) for x in rows] == [
        (1, "0001_notes.sql"), (2, "0002_tags.sql"), (3, "0010_empty.sql")], rows
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", x["applied_at"]) for x in rows)
    # nothing left, while thaw dev serves the same file
    r = mig("list", "DB", workdir)
    assert r.returncode == 0 and "No migrations to apply!" in r.stdout, r.stdout
    r = mig("apply", "DB", workdir)
    assert r.returncode == 0 and "No migrations to apply!" in r.stdout, r.stdout
    # a new one: only it runs
    write_migration(workdir, "0011_more.sql", "INSERT INTO notes (title) VALUES ('three');")
    r = mig("list", "DB", workdir)
    assert "0011_more.sql" in r.stdout and "0001_notes" not in r.stdout, r.stdout
    r = mig("apply", "DB", workdir, "--force")
    assert r.returncode == 0 and "1 migration applied" in r.stdout, r.stdout
    assert sql(srv, "SELECT count(*) AS c FROM notes")[1] == [{"c": 3}]


def test_a_bad_migration_names_file_and_line_and_leaves_nothing(workdir):
    project(workdir)
    write_migration(workdir, "0001_notes.sql", FIRST)
    write_migration(workdir, "0002_bad.sql", BAD)
    write_migration(workdir, "0003_after.sql", "CREATE TABLE after_bad (a);")
    r = mig("apply", "DB", workdir)
    assert r.returncode == 1, r.stdout
    assert "migrations/0002_bad.sql:5: no such table: nope" in r.stderr, r.stderr
    assert "INSERT INTO nope" in r.stderr and "rolled back" in r.stderr
    db = local_db(workdir)
    tables = {x for (x,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "notes" in tables and "half" not in tables and "after_bad" not in tables, tables
    assert [n for (n,) in db.execute("SELECT name FROM d1_migrations")] == ["0001_notes.sql"]
    db.close()
    r = mig("list", "DB", workdir)
    assert "0002_bad.sql" in r.stdout and "0003_after.sql" in r.stdout \
        and "0001_notes.sql" not in r.stdout, r.stdout
    # fixed, it applies, and the one after it too
    write_migration(workdir, "0002_bad.sql", BAD.replace("nope", "half"))
    r = mig("apply", "DB", workdir)
    assert r.returncode == 0 and "2 migrations applied" in r.stdout, r.stdout + r.stderr
    db = local_db(workdir)
    assert db.execute("SELECT count(*) FROM half").fetchone() == (2,)
    db.close()


def test_a_migration_with_its_own_transaction_is_refused_with_the_reason(workdir):
    project(workdir)
    write_migration(workdir, "0001_tx.sql", "BEGIN TRANSACTION;\nCREATE TABLE t (a);\n"
                    "COMMIT;\n")
    r = mig("apply", "DB", workdir)
    assert r.returncode == 1
    assert "migrations/0001_tx.sql:1:" in r.stderr and "leave out BEGIN and COMMIT" in \
        r.stderr, r.stderr


def test_options_and_bad_input(workdir):
    project(workdir, databases=[dict(DB, migrations_table="schema_log")])
    r = mig("list", "DB", workdir)
    assert r.returncode == 1 and "no migrations folder" in r.stderr and "create DB" in \
        r.stderr, r.stderr
    write_migration(workdir, "0001_a.sql", "CREATE TABLE a (x);")
    r = mig("apply", "DB", workdir, "--remote")
    assert r.returncode == 1 and "no remote" in r.stderr, r.stderr
    r = mig("apply", "DB", workdir, "--preview")
    assert r.returncode == 1 and "no preview databases" in r.stderr, r.stderr
    r = mig("apply", "NOPE", workdir)
    assert r.returncode == 1 and "no D1 database 'NOPE'" in r.stderr and "DB (notes-db)" in \
        r.stderr, r.stderr
    r = mig("apply", "DB", workdir, "--bogus")
    assert r.returncode == 1 and "unknown option --bogus" in r.stderr
    r = mig("frobnicate", "DB")
    assert r.returncode == 1 and "create, list and apply" in r.stderr
    # migrations_table names the table; --persist-to the state directory
    state = workdir.parent / "elsewhere"
    r = mig("apply", "DB", workdir, "--local", "--persist-to", state)
    assert r.returncode == 0, r.stderr
    db = sqlite3.connect(state / "d1" / f"{DB['database_id']}.sqlite")
    assert db.execute("SELECT name FROM schema_log").fetchall() == [("0001_a.sql",)]
    db.close()
    assert not (workdir / ".thaw").exists()
    # a key thaw does not follow yet is said, not ignored
    project(workdir, databases=[dict(DB, migrations_pattern="migrations/*/migration.sql")])
    r = mig("list", "DB", workdir)
    assert r.returncode == 1 and "migrations_pattern is not supported" in r.stderr, r.stderr
    project(workdir, databases=[dict(DB, migrations_dir=7)])
    r = mig("list", "DB", workdir)
    assert r.returncode == 1 and "d1_databases[0].migrations_dir must be a non-empty string" \
        in r.stderr, r.stderr


def test_a_worker_whose_migrations_dir_is_not_a_string_does_not_build(workdir, thaw_factory):
    project(workdir, databases=[dict(DB, migrations_dir=["migrations"])])
    srv = thaw_factory(workdir)
    r = srv.request("GET", "/")
    assert r.status == 500, r.text
    assert "d1_databases[0] (binding \"DB\"): `migrations_dir`" in srv.log(), srv.log()[-2000:]


def test_help_lists_migrations():
    r = thaw("help")
    assert "thaw d1 migrations" in r.stdout, r.stdout
    r = mig("--help")
    assert r.returncode == 0 and "thaw d1 migrations apply NAME" in r.stdout


# ---------------------------------------------------------------- thaw serve

def deployed(srv, d):
    r = srv.cli("deploy", d)
    assert "Deployed" in r.stdout, r.stdout + r.stderr


def api_migrations(srv, worker, db="DB", apply=False, **kw):
    path = f"/v1/workers/{worker}/d1/{db}/migrations" + ("/apply" if apply else "")
    return srv.api("POST" if apply else "GET", path, **kw)


def test_serve_lists_and_applies_a_deployed_workers_migrations(tmp_path, serve_factory):
    srv = serve_factory()
    d = project(tmp_path / "notes")
    write_migration(d, "0001_notes.sql", FIRST)
    write_migration(d, "0002_tags.sql", SECOND)
    deployed(srv, d)
    host = "notes.localhost"
    status, body = api_migrations(srv, "notes")
    assert status == 200, body
    assert body["unapplied"] == ["0001_notes.sql", "0002_tags.sql"] and body["applied"] == []
    assert body["database"] == "DB" and body["migrations_table"] == "d1_migrations"
    # the CLI, from the project's directory (the worker's name is its config's)
    r = srv.cli("d1", "migrations", "list", "notes-db", d)
    assert "0001_notes.sql" in r.stdout and "0002_tags.sql" in r.stdout, r.stdout
    status, body = api_migrations(srv, "notes", apply=True)
    assert status == 200, body
    assert body["applied"] == ["0001_notes.sql", "0002_tags.sql"] and body["unapplied"] == []
    status, rows = sql(srv, "SELECT title, n FROM notes ORDER BY id", host)
    assert status == 200 and rows == [{"title": "SEMI;COLON", "n": 1},
                                      {"title": "IT'S", "n": 1}], rows
    assert sql(srv, "SELECT name FROM d1_migrations ORDER BY id", host)[1] == [
        {"name": "0001_notes.sql"}, {"name": "0002_tags.sql"}]
    # again: nothing to do
    status, body = api_migrations(srv, "notes", apply=True)
    assert status == 200 and body["applied"] == [], body
    r = srv.cli("d1", "migrations", "apply", "DB", "--worker", "notes")
    assert "No migrations to apply!" in r.stdout, r.stdout
    # a new version brings a new migration: the CLI applies it
    write_migration(d, "0003_more.sql", "INSERT INTO notes (title) VALUES ('three');")
    deployed(srv, d)
    r = srv.cli("d1", "migrations", "apply", "DB", d)
    assert "Applied 0003_more.sql" in r.stdout and "1 migration applied" in r.stdout, r.stdout
    assert sql(srv, "SELECT count(*) AS c FROM notes", host)[1] == [{"c": 3}]
    status, body = api_migrations(srv, "notes")
    assert body["applied"] == ["0001_notes.sql", "0002_tags.sql", "0003_more.sql"], body


def test_serve_a_bad_migration_is_422_naming_file_and_line(tmp_path, serve_factory):
    srv = serve_factory()
    d = project(tmp_path / "notes", databases=[dict(DB, migrations_dir="sql")])
    write_migration(d, "0001_notes.sql", FIRST, folder="sql")
    write_migration(d, "0002_bad.sql", BAD, folder="sql")
    write_migration(d, "0003_after.sql", "CREATE TABLE after_bad (a);", folder="sql")
    deployed(srv, d)
    status, body = api_migrations(srv, "notes", db="notes-db", apply=True)
    assert status == 422, body
    assert body["file"] == "sql/0002_bad.sql" and body["line"] == 5, body
    assert body["error"].startswith("sql/0002_bad.sql:5: ") and "no such table: nope" in \
        body["error"], body
    assert body["applied"] == ["0001_notes.sql"]
    assert body["unapplied"] == ["0002_bad.sql", "0003_after.sql"]
    host = "notes.localhost"
    status, rows = sql(srv, "SELECT name FROM sqlite_master WHERE type = 'table' "
                       "ORDER BY name", host)
    names = [x["name"] for x in rows]
    assert "notes" in names and "half" not in names and "after_bad" not in names, names
    assert sql(srv, "SELECT name FROM d1_migrations", host)[1] == [{"name": "0001_notes.sql"}]
    # the CLI says the same, and fails
    r = srv.cli("d1", "migrations", "apply", "DB", d, check=False)
    assert r.returncode == 1 and "sql/0002_bad.sql:5:" in r.stderr and "(HTTP 422)" in \
        r.stderr, r.stderr


# (SQL, what the error says): VACUUM cannot run in a migration's
# transaction at all, so SQLite refuses it before the policy has to
HOSTILE = [
    ("ATTACH DATABASE '/etc/passwd' AS x;", "not authorized"),
    ("CREATE TABLE t (a);\nVACUUM INTO '{tmp}/stolen.sqlite';", "cannot VACUUM"),
    ("SELECT load_extension('/tmp/evil.so');", "not authorized"),
    ("PRAGMA writable_schema = ON;", "not authorized"),
    ("CREATE TABLE t (a);\nATTACH '{state}/token' AS tok;", "not authorized"),
    ("CREATE TABLE t (a);\nPRAGMA journal_mode = OFF;", "not authorized"),
]


@pytest.mark.parametrize("text,what", HOSTILE, ids=["attach-etc", "vacuum-into", "load-extension",
                                                "writable-schema", "attach-token",
                                                "journal-off"])
def test_serve_a_hostile_migration_is_refused_by_the_d1_policy(tmp_path, serve_factory,
                                                               text, what):
    srv = serve_factory()
    text = text.format(tmp=tmp_path, state=srv.state)
    d = project(tmp_path / "evil", name="evil")
    write_migration(d, "0001_evil.sql", text)
    deployed(srv, d)
    status, body = api_migrations(srv, "evil", apply=True)
    assert status == 422, body
    assert body["file"] == "migrations/0001_evil.sql" and what in body["error"], body
    assert body["line"] == text.count("\n") + 1, body
    assert not (tmp_path / "stolen.sqlite").exists()
    status, rows = sql(srv, "SELECT name FROM sqlite_master WHERE type = 'table'",
                       "evil.localhost")
    assert status == 200 and [x["name"] for x in rows if x["name"] == "t"] == [], rows
    assert api_migrations(srv, "evil")[1]["unapplied"] == ["0001_evil.sql"]


def test_serve_migrations_dir_out_of_the_bundle_is_400_naming_the_key(tmp_path,
                                                                      serve_factory):
    srv = serve_factory()
    # at deploy: the config's path leads out
    d = project(tmp_path / "evil", name="evil",
                databases=[dict(DB, migrations_dir="../../../../workers")])
    status, body = srv.api("PUT", "/v1/workers/evil", body=_bundle(d))
    assert status == 400 and "d1_databases[0].migrations_dir" in body["error"] and \
        "outside the worker's bundle" in body["error"], body
    # after deploy: the default folder of the deployed version turned into a
    # link out (bundles carry no links; the check does not rely on that)
    d = project(tmp_path / "notes")
    write_migration(d, "0001_notes.sql", FIRST)
    deployed(srv, d)
    version = srv.state / "workers" / "notes" / "versions" / "1"
    os.rename(version / "migrations", version / "moved")
    os.symlink(srv.state / "workers", version / "migrations")
    for apply in (False, True):
        status, body = api_migrations(srv, "notes", apply=apply)
        assert status == 400, body
        assert 'd1_databases[0].migrations_dir (default "migrations")' in body["error"] and \
            "outside the worker's bundle" in body["error"], body
    # a link out in place of one file
    os.unlink(version / "migrations")
    os.rename(version / "moved", version / "migrations")
    os.unlink(version / "migrations" / "0001_notes.sql")
    os.symlink("/etc/passwd", version / "migrations" / "0001_notes.sql")
    status, body = api_migrations(srv, "notes", apply=True)
    assert status == 400 and "migrations/0001_notes.sql" in body["error"] and \
        "out of the worker's bundle" in body["error"], body


def test_serve_bad_requests(tmp_path, serve_factory):
    srv = serve_factory()
    d = project(tmp_path / "notes")
    deployed(srv, d)
    status, body = api_migrations(srv, "notes")
    assert status == 404 and "no migrations folder" in body["error"] and \
        "migrations" in body["error"], body
    status, body = api_migrations(srv, "notes", db="NOPE")
    assert status == 404 and 'no D1 database "NOPE"' in body["error"] and \
        "DB (notes-db)" in body["error"], body
    status, body = api_migrations(srv, "ghost")
    assert status == 404 and "no worker named ghost" in body["error"], body
    status, body = srv.api("DELETE", "/v1/workers/notes/d1/DB/migrations")
    assert status == 405, body
    status, body = srv.api("GET", "/v1/workers/notes/d1/DB/migrations/apply")
    assert status == 405, body
    status, body = srv.api("GET", "/v1/workers/notes/d1/DB/migrations/other")
    assert status == 404, body
    status, body = api_migrations(srv, "notes", apply=True, token="wrong")
    assert status == 401, body
    r = srv.cli("d1", "migrations", "create", "DB", "x", d, check=False)
    assert r.returncode == 1 and "needs no server" in r.stderr, r.stderr


def _bundle(d):
    """The project as `thaw deploy` packs it."""
    import sys
    sys.path.insert(0, str(THAW.parent.parent / "python"))
    from thaw_tools import remote
    return remote.bundle(str(d))[0]
