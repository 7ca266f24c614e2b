"""`thaw d1 execute NAME [DIR] --file F | --command SQL`: run SQL against a
worker's local D1 database, as `wrangler d1 execute --local` does.

The database is the file `thaw dev` uses (src/bind/d1.c):
STATE/d1/<database_id, else database_name, escaped (idname.py)>.sqlite, where STATE is --state /
--persist-to, default DIR/.thaw/state. NAME is the binding (DB) or the
database_name. The SQL runs in one transaction: all of it applies, or
(when a statement fails) none. It may run while `thaw dev` serves the
worker (SQLite's WAL mode lets both use the file).
"""
import json
import os
import re
import sqlite3
import sys
import time

from .idname import id_filename
from .project import ToolError, read_config

USAGE = ("usage: thaw d1 execute NAME [DIR] (--file FILE | --command SQL) [--json]\n"
         "                       [--state DIR | --persist-to DIR] [--local]\n"
         "       thaw d1 migrations create|list|apply NAME ... (thaw d1 migrations --help)")

# a comment: to its end, or (unclosed) to the end of the text; never a
# closed comment taken as unclosed (the text after it would count as blank)
_COMMENT = r"--[^\n]*(\n|\Z)|/\*.*?\*/|/\*((?!\*/).)*\Z"
_BLANK = re.compile(rf"^(\s|;|{_COMMENT})*\Z", re.S)
# blanks and comments before a statement's first word
_LEAD = re.compile(rf"(\s|{_COMMENT})*", re.S)


def parse_args(argv):
    opts = {"name": None, "dir": None, "file": None, "command": None, "json": False,
            "state": None}
    it = iter(argv)
    for a in it:
        if a in ("--file", "--command", "--state", "--persist-to"):
            v = next(it, None)
            if v is None:
                raise ToolError(f"{a} needs a value\n{USAGE}")
            opts["state" if a == "--persist-to" else a[2:]] = v
        elif a.startswith(("--file=", "--command=", "--state=", "--persist-to=")):
            k, v = a[2:].split("=", 1)
            opts["state" if k == "persist-to" else k] = v
        elif a == "--json":
            opts["json"] = True
        elif a in ("--local", "-y", "--yes"):
            pass  # thaw's databases are all local
        elif a == "--remote":
            raise ToolError("thaw has no remote D1 databases: it runs the local one "
                            "(drop --remote)")
        elif a in ("-h", "--help"):
            print(USAGE)
            raise SystemExit(0)
        elif a.startswith("-"):
            raise ToolError(f"unknown option {a}\n{USAGE}")
        elif opts["name"] is None:
            opts["name"] = a
        elif opts["dir"] is None:
            opts["dir"] = a
        else:
            raise ToolError(f"unexpected argument {a!r}\n{USAGE}")
    if not opts["name"]:
        raise ToolError(f"name the database (its binding or database_name)\n{USAGE}")
    if (opts["file"] is None) == (opts["command"] is None):
        raise ToolError(f"give exactly one of --file and --command\n{USAGE}")
    return opts


def find_entry(d, name):
    """(entry, its index in d1_databases, config path) of the D1 database
    NAME (binding or database_name) in d's config."""
    path, cfg = read_config(d)
    cfile = os.path.basename(path)
    dbs = cfg.get("d1_databases") or []
    if not isinstance(dbs, list):
        raise ToolError(f"{cfile}: `d1_databases` must be an array")
    entries = [e for e in dbs if isinstance(e, dict)]
    if not entries:
        raise ToolError(f"{cfile} declares no D1 databases: add d1_databases = "
                        f"[{{ binding = \"DB\", database_name = \"{name}\" }}]")
    for i, e in enumerate(dbs):
        if isinstance(e, dict) and name in (e.get("binding"), e.get("database_name")):
            return e, i, path
    known = ", ".join(f"{e.get('binding')} ({e.get('database_name') or e.get('database_id')})"
                      for e in entries)
    raise ToolError(f"no D1 database {name!r} in {cfile}: it has {known}")


def find_database(d, name):
    """(binding, file id, config path) of the D1 database NAME in d's config."""
    e, _, path = find_entry(d, name)
    key = "database_id" if e.get("database_id") else "database_name"
    fid = e.get(key)
    if not isinstance(fid, str) or not fid:
        raise ToolError(f"{os.path.basename(path)}: the D1 database {name!r} needs a "
                        f"`database_name` or `database_id` string")
    return e.get("binding"), id_filename(fid), path


def db_path(d, state, fid):
    """Where thaw dev keeps the database file id fid of worker directory d."""
    state = os.path.abspath(state) if state else os.path.join(d, ".thaw", "state")
    return os.path.join(state, "d1", fid + ".sqlite")


def split_sql(text):
    """[(line, statement)]: the statements of a script, each with the line
    its first word is on (comments before it do not count).
    sqlite3.complete_statement knows strings, comments and triggers' inner
    semicolons."""
    out = []
    start = i = 0
    while True:
        j = text.find(";", i)
        end = len(text) if j < 0 else j + 1
        chunk = text[start:end]
        if j < 0 or sqlite3.complete_statement(chunk):
            if not _BLANK.match(chunk):
                lead = _LEAD.match(chunk).end()
                out.append((text.count("\n", 0, start + lead) + 1, chunk))
            start = end
        if j < 0:
            return out
        i = j + 1


def open_db(path):
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    # the operator runs this against a file a worker wrote: its schema
    # (views, triggers, defaults) must not call functions with side effects
    conn.execute("PRAGMA trusted_schema=OFF")
    # as src/bind/sqlq.c opens it
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _cell(v):
    return list(v) if isinstance(v, bytes) else v


def run(conn, stmts):
    """Runs the statements in one transaction; their results as D1 gives
    them. ToolError names the failing statement's line."""
    results = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for line, sql in stmts:
            t0 = time.monotonic()
            before = conn.total_changes
            try:
                cur = conn.execute(sql)
                rows = cur.fetchall()
            except sqlite3.Error as e:
                hint = ""
                if "within a transaction" in str(e) or "no transaction" in str(e):
                    hint = (" (thaw d1 execute already runs the SQL in one "
                            "transaction: leave out BEGIN and COMMIT)")
                raise _Failed(line, sql, f"{e}{hint}") from None
            cols = [c[0] for c in cur.description or ()]
            changes = conn.total_changes - before
            results.append({
                "results": [dict(zip(cols, map(_cell, r))) for r in rows],
                "success": True,
                "meta": {"duration": round((time.monotonic() - t0) * 1000, 3),
                         "changes": changes, "last_row_id": cur.lastrowid or 0,
                         "changed_db": changes > 0, "rows_read": len(rows),
                         "rows_written": changes},
                "_columns": cols, "_rows": rows,
            })
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return results


class _Failed(Exception):
    def __init__(self, line, sql, msg):
        super().__init__(msg)
        self.line, self.sql, self.msg = line, sql, msg


def _text(v):
    if v is None:
        return "null"
    if isinstance(v, bytes):
        return "x'" + v.hex() + "'"
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def table(cols, rows):
    """A box table, as wrangler prints query results."""
    cells = [[_text(v) for v in r] for r in rows]
    w = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]

    def line(l, m, r):
        return l + m.join("─" * (n + 2) for n in w) + r

    def row(vals):
        return "│" + "│".join(f" {v:<{w[i]}} " for i, v in enumerate(vals)) + "│"
    out = [line("┌", "┬", "┐"), row(cols), line("├", "┼", "┤")]
    out += [row(r) for r in cells]
    out.append(line("└", "┴", "┘"))
    return "\n".join(out)


def execute(argv):
    o = parse_args(argv)
    d = os.path.abspath(o["dir"] or ".")
    if not os.path.isdir(d):
        raise ToolError(f"cannot open worker directory {o['dir']!r}")
    binding, fid, cfgpath = find_database(d, o["name"])
    path = db_path(d, o["state"], fid)
    if o["file"] is not None:
        src = o["file"]
        try:
            with open(src, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ToolError(f"cannot read {src}: {e}") from None
    else:
        src, text = "--command", o["command"]
    stmts = split_sql(text)
    if not stmts:
        raise ToolError(f"{src}: no SQL statements found")
    if not o["json"]:
        print(f"Executing on local database {binding} ({fid}) in {path}:")
    try:
        conn = open_db(path)
    except (OSError, sqlite3.Error) as e:
        raise ToolError(f"cannot open {path}: {e}") from None
    try:
        results = run(conn, stmts)
    except _Failed as e:
        first = e.sql.strip().splitlines()[0] if e.sql.strip() else ""
        where = f"{src}:{e.line}" if o["file"] is not None else f"--command, line {e.line}"
        raise ToolError(f"{where}: {e.msg}\n  in: {first[:200]}\n"
                        f"nothing was applied (the SQL runs in one transaction)") from None
    except sqlite3.Error as e:
        raise ToolError(f"{path}: {e}") from None
    finally:
        conn.close()
    if o["json"]:
        for r in results:
            r.pop("_columns")
            r.pop("_rows")
        print(json.dumps(results, indent=2))
        return 0
    print(f"{len(stmts)} command{'s' if len(stmts) != 1 else ''} executed successfully.")
    for r in results:
        if r["_columns"]:
            print(table(r["_columns"], r["_rows"]))
    return 0


def main(argv):
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] == "migrations":
        from . import d1_migrations
        return d1_migrations.main(argv[1:])
    if argv[0] != "execute":
        raise ToolError(f"unknown subcommand {argv[0]!r}: thaw d1 has `execute` and "
                        f"`migrations`\n{USAGE}")
    return execute(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
