"""`thaw d1 migrations create|list|apply NAME`: D1 migrations as wrangler
keeps them (docs/bindings/d1.md, Migrations).

The files are MIGRATIONS_DIR/*.sql (`migrations_dir` of the database's
d1_databases entry, default `migrations`), ordered by their leading number;
`create` writes the next one, NNNN_message.sql. The database records what
it applied in the table `migrations_table` (default d1_migrations: id,
name, applied_at), as wrangler's does, so a database migrated by one tool
is known to the other. `apply` runs each unapplied file in a transaction
of its own, with its row in the table: a file that fails leaves nothing,
and stops the run with its file, line and SQLite's message.

Locally the database is the file `thaw dev` uses (d1.py). With --to URL
the migrations are those of the worker deployed on a `thaw serve`, run by
its admin API (docs/api.md), under the D1 policy of every tenant's SQL.
"""
import datetime
import os
import re
import sqlite3
import sys

from . import d1
from .project import ToolError, read_config

DEFAULT_DIR = "migrations"
DEFAULT_TABLE = "d1_migrations"

USAGE = """usage: thaw d1 migrations create NAME MESSAGE [DIR]
       thaw d1 migrations list NAME [DIR] [--state DIR | --persist-to DIR]
       thaw d1 migrations apply NAME [DIR] [--state DIR | --persist-to DIR]
       thaw d1 migrations list|apply NAME [DIR] --to URL [--worker W] [--token T]

NAME is the database's binding or database_name; DIR the worker's directory
(default .). --local, --force and --yes are accepted and change nothing.
With --to, the worker W (default: `name` of DIR's config) deployed on that
thaw serve is migrated from its deployed bundle."""

_NUMBER = re.compile(r"\d+")


def parse_args(argv, sub):
    want = 2 if sub == "create" else 1
    o = {"pos": [], "state": None, "to": None, "token": None, "worker": None}
    it = iter(argv)
    for a in it:
        key, eq, val = a.partition("=")
        if key in ("--state", "--persist-to", "--to", "--token", "--worker"):
            if not eq:
                val = next(it, None)
                if val is None:
                    raise ToolError(f"{key} needs a value\n{USAGE}")
            o["state" if key == "--persist-to" else key[2:]] = val
        elif a in ("--local", "--force", "-y", "--yes"):
            pass  # thaw's databases are local; thaw does not prompt
        elif a == "--remote":
            raise ToolError("thaw has no remote D1 databases: it migrates the local one, "
                            "or the one of a worker on `thaw serve` with --to URL (drop "
                            "--remote)")
        elif a == "--preview":
            raise ToolError("thaw has no preview databases: `thaw dev` uses the database "
                            "of `database_id` (drop --preview)")
        elif a in ("-h", "--help"):
            print(USAGE)
            raise SystemExit(0)
        elif a.startswith("-") and a != "-":
            raise ToolError(f"unknown option {a}\n{USAGE}")
        else:
            o["pos"].append(a)
    if len(o["pos"]) < want:
        what = "the database (its binding or database_name)" if not o["pos"] else \
            "the migration's message"
        raise ToolError(f"name {what}\n{USAGE}")
    if len(o["pos"]) > want + 1:
        raise ToolError(f"unexpected argument {o['pos'][want + 1]!r}\n{USAGE}")
    o["name"] = o["pos"][0]
    o["message"] = o["pos"][1] if sub == "create" else None
    o["dir"] = os.path.abspath(o["pos"][want] if len(o["pos"]) > want else ".")
    if not os.path.isdir(o["dir"]):
        raise ToolError(f"cannot open worker directory {o['dir']!r}")
    return o


def settings(entry, index, cfgpath):
    """(migrations_dir, migrations_table) of a d1_databases entry."""
    cfile = os.path.basename(cfgpath)
    out = []
    for key, default in (("migrations_dir", DEFAULT_DIR), ("migrations_table", DEFAULT_TABLE)):
        v = entry.get(key, default)
        if not isinstance(v, str) or not v or "\0" in v:
            raise ToolError(f"{cfile}: d1_databases[{index}].{key} must be a non-empty "
                            f"string (default \"{default}\")")
        out.append(v)
    if "migrations_pattern" in entry:
        raise ToolError(f"{cfile}: d1_databases[{index}].migrations_pattern is not "
                        f"supported by thaw yet: keep the migrations as "
                        f"{out[0]}/NNNN_name.sql files and remove the key")
    return out[0], out[1]


def sort_key(name):
    """wrangler's order: by leading number, numbered before unnumbered,
    then by name."""
    m = _NUMBER.match(name)
    return (0, int(m.group()), name) if m else (1, 0, name)


def migration_files(path):
    """The migrations in folder path, in the order they apply."""
    return sorted((f for f in os.listdir(path) if f.endswith(".sql") and
                   not f.startswith(".") and os.path.isfile(os.path.join(path, f))),
                  key=sort_key)


def ident(name):
    return '"' + name.replace('"', '""') + '"'


def applied(conn, table):
    """Names recorded in the migrations table, in the order applied; []
    when the table does not exist yet."""
    if conn is None or not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ? "
            "COLLATE NOCASE", (table,)).fetchone():
        return []
    return [r[0] for r in conn.execute(f"SELECT name FROM {ident(table)} ORDER BY id")]


def create_table_sql(table):
    return (f"CREATE TABLE IF NOT EXISTS {ident(table)} (\n"
            f"    id         INTEGER PRIMARY KEY AUTOINCREMENT,\n"
            f"    name       TEXT UNIQUE,\n"
            f"    applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n)")


class Local:
    """The worker directory's migrations and its local database."""

    def __init__(self, o):
        entry, index, self.cfgpath = d1.find_entry(o["dir"], o["name"])
        self.mdir, self.table = settings(entry, index, self.cfgpath)
        self.root = o["dir"]
        self.path = os.path.normpath(os.path.join(o["dir"], self.mdir))
        self.o = o

    def rel(self, f):
        return os.path.relpath(os.path.join(self.path, f), self.root)

    def need_folder(self):
        if not os.path.isdir(self.path):
            raise ToolError(f"no migrations folder at {self.path}: `thaw d1 migrations "
                            f"create {self.o['name']} MESSAGE` makes it (or set "
                            f"migrations_dir in {os.path.basename(self.cfgpath)})")

    def db(self, create):
        """A connection to the database; None when it has no file yet and
        create is false (a list must not make one)."""
        _, fid, _ = d1.find_database(self.root, self.o["name"])
        path = d1.db_path(self.root, self.o["state"], fid)
        if not create and not os.path.exists(path):
            return None
        try:
            return d1.open_db(path)
        except (OSError, sqlite3.Error) as e:
            raise ToolError(f"cannot open {path}: {e}") from None

    def unapplied(self, conn):
        done = set(applied(conn, self.table))
        return [f for f in migration_files(self.path) if f not in done]


def create(o):
    if o["to"]:
        raise ToolError("`create` writes a file into your project; it needs no server "
                        "(drop --to)")
    loc = Local(o)
    msg = o["message"].replace(" ", "_")
    if not msg or "/" in msg or "\0" in msg or msg.startswith("."):
        raise ToolError(f"the message {o['message']!r} cannot be part of a file name: "
                        f"use words, without '/'")
    if not os.path.isdir(loc.path):
        os.makedirs(loc.path)
        print(f"Created the migrations folder {loc.path}")
    nums = [sort_key(f)[1] for f in migration_files(loc.path) if sort_key(f)[0] == 0]
    number = f"{max(nums, default=0) + 1:04d}"
    name = f"{number}_{msg}.sql"
    target = os.path.join(loc.path, name)
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    with open(target, "x", encoding="utf-8") as f:
        f.write(f"-- Migration number: {number} \t {stamp.replace('+00:00', 'Z')}\n")
    print(f"Created migration {name}; write its SQL here:")
    print(target)
    return 0


def show(names):
    print(d1.table(["name"], [[n] for n in names]))


def list_local(o):
    loc = Local(o)
    loc.need_folder()
    conn = loc.db(create=False)
    try:
        todo = loc.unapplied(conn)
    except sqlite3.Error as e:
        raise ToolError(f"cannot read the table {loc.table}: {e}") from None
    finally:
        if conn is not None:
            conn.close()
    if not todo:
        print("No migrations to apply!")
        return 0
    print("Migrations to be applied:")
    show(todo)
    return 0


def apply_one(conn, table, name, stmts):
    """Runs one migration and records it, all in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for line, sql in stmts:
            try:
                conn.execute(sql).fetchall()
            except sqlite3.Error as e:
                hint = ""
                if "within a transaction" in str(e) or "no transaction" in str(e):
                    hint = (" (each migration already runs in a transaction of its own: "
                            "leave out BEGIN and COMMIT)")
                raise d1._Failed(line, sql, f"{e}{hint}") from None
        conn.execute(f"INSERT INTO {ident(table)} (name) VALUES (?)", (name,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def failed(where, msg, stmt, done):
    first = stmt.strip().splitlines()[0] if stmt and stmt.strip() else ""
    stays = (f"the {len(done)} migration(s) before it stay applied" if done
             else "no migration was applied")
    return ToolError(f"{where}: {msg}\n" + (f"  in: {first[:200]}\n" if first else "") +
                     f"this migration was rolled back and is not recorded; {stays}")


def apply_local(o):
    loc = Local(o)
    loc.need_folder()
    conn = loc.db(create=True)
    done = []
    try:
        conn.execute(create_table_sql(loc.table))
        todo = loc.unapplied(conn)
        if not todo:
            print("No migrations to apply!")
            return 0
        print("Migrations to be applied:")
        show(todo)
        for name in todo:
            try:
                with open(os.path.join(loc.path, name), encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError) as e:
                raise failed(loc.rel(name), f"cannot read: {e}", "", done) from None
            stmts = d1.split_sql(text)
            try:
                apply_one(conn, loc.table, name, stmts)
            except d1._Failed as e:
                raise failed(f"{loc.rel(name)}:{e.line}", e.msg, e.sql, done) from None
            except sqlite3.Error as e:  # BEGIN, COMMIT or the table's row
                raise failed(loc.rel(name), str(e), "", done) from None
            done.append(name)
            print(f"Applied {name} ({len(stmts)} statement{'s' if len(stmts) != 1 else ''})",
                  flush=True)
    except sqlite3.Error as e:
        raise ToolError(f"{loc.table}: {e}") from None
    finally:
        conn.close()
    print(f"{len(done)} migration{'s' if len(done) != 1 else ''} applied.")
    return 0


# ---- thaw serve (--to URL) ---------------------------------------------------

def remote_call(o, method, suffix):
    from . import remote
    if not o["token"]:
        o["token"] = os.environ.get("THAW_API_TOKEN")
    if not o["token"]:
        raise ToolError("no API token: pass --token or set THAW_API_TOKEN (thaw serve "
                        "writes one into STATE/token on its first start)")
    worker = o["worker"]
    if not worker:
        path, cfg = read_config(o["dir"])
        worker = cfg.get("name")
        if not isinstance(worker, str) or not worker:
            raise ToolError(f"{path} has no `name`: say which worker with --worker NAME")
    from urllib.parse import quote
    api = remote.Api(o["to"], o["token"])
    try:
        return api.request(method, f"/v1/workers/{worker}/d1/{quote(o['name'], safe='')}"
                           f"/migrations{suffix}", body=b"" if method == "POST" else None,
                           timeout=600), worker
    except remote.ApiError as e:
        doc = e.doc
        if doc.get("applied"):
            print(f"Applied before the failure: {', '.join(doc['applied'])}", file=sys.stderr)
        raise


def list_remote(o):
    doc, worker = remote_call(o, "GET", "")
    if not doc["unapplied"]:
        print(f"No migrations to apply! ({worker}, database {doc['database']})")
        return 0
    print(f"Migrations to be applied ({worker}, database {doc['database']}):")
    show(doc["unapplied"])
    return 0


def apply_remote(o):
    doc, worker = remote_call(o, "POST", "/apply")
    for name in doc["applied"]:
        print(f"Applied {name}")
    n = len(doc["applied"])
    print(f"No migrations to apply! ({worker})" if not n else
          f"{n} migration{'s' if n != 1 else ''} applied to {worker}, database "
          f"{doc['database']}.")
    return 0


def main(argv):
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    sub = argv[0]
    if sub not in ("create", "list", "apply"):
        raise ToolError(f"unknown subcommand {sub!r}: thaw d1 migrations has create, list "
                        f"and apply\n{USAGE}")
    o = parse_args(argv[1:], sub)
    if sub == "create":
        return create(o)
    if o["to"]:
        return list_remote(o) if sub == "list" else apply_remote(o)
    return list_local(o) if sub == "list" else apply_local(o)
