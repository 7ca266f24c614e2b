"""D1, Cloudflare's SQLite database binding: `env.DB` for each entry of the
config's `d1_databases`. The database is a SQLite file the supervisor
holds (src/bind/d1.c); statements travel as binding calls and results come
back as JSON (docs/bindings/d1.md).

    row = await env.DB.prepare("SELECT * FROM notes WHERE id = ?").bind(7).first()
    res = await env.DB.prepare("SELECT * FROM notes").all()
    for note in res.results: ...

Results are dicts that also allow attribute access (`res.results`,
`res.meta.changes`, `row["title"]` or `row.title`), so code written for
Cloudflare's JavaScript proxies runs, and `Response.json(res)` works.
"""
import json
import math

from . import _bind
from ._bind import JsException

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


class D1Error(JsException):
    """A D1 failure, worded as Cloudflare's D1 words it: ``e.message`` is
    "D1_ERROR: no such table: notes: SQLITE_ERROR", "D1_TYPE_ERROR: ...",
    "D1_COLUMN_NOTFOUND: ...", "D1_EXEC_ERROR: ...". It is a
    JsException named "Error", which is what a Python Worker on Cloudflare
    catches."""

    def __init__(self, message):
        super().__init__("Error", message)


class D1Result(dict):
    """A dict whose keys are also attributes (D1's result objects)."""

    __slots__ = ()

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to_py(self):
        """A plain copy (Pyodide's JsProxy.to_py(), for ported code)."""
        return _plain(self)


class D1Rows(list):
    """A list of rows, with `to_py()` as Pyodide's proxies have."""

    __slots__ = ()

    def to_py(self):
        return _plain(self)


def _plain(v):
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _param(i, v):
    """A bind() value as it travels to the supervisor (JSON); BLOBs as a
    list of byte values, as D1's JavaScript API sends them."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        if _INT64_MIN <= v <= _INT64_MAX:
            return v
        raise D1Error(f"D1_TYPE_ERROR: parameter {i} is {v}, which does not fit "
                      f"SQLite's 64-bit INTEGER")
    if isinstance(v, float):
        if math.isfinite(v):
            return v
        raise D1Error(f"D1_TYPE_ERROR: parameter {i} is {v}: SQLite stores no "
                      f"infinite or NaN REAL")
    if isinstance(v, (bytes, bytearray, memoryview)):
        return list(bytes(v))
    if isinstance(v, (list, tuple)) and all(
            type(b) is int and 0 <= b < 256 for b in v):
        return list(v)  # D1's JS API takes an array of byte values as a BLOB
    raise D1Error(f"D1_TYPE_ERROR: Type '{type(v).__name__}' not supported for "
                  f"value {v!r} (parameter {i}): bind str, int, float, bool, None "
                  f"or bytes")


def _rows(res):
    cols = res["columns"]
    return D1Rows(D1Result(zip(cols, row)) for row in res["rows"])


def _result(res):
    return D1Result(success=True, meta=D1Result(res["meta"]), results=_rows(res))


class D1PreparedStatement:
    """A statement and its bound values; bind() returns a new one, so one
    prepared statement can be bound many times (for batch())."""

    __slots__ = ("_db", "_sql", "_params")

    def __init__(self, db, sql, params=()):
        self._db = db
        self._sql = sql
        self._params = list(params)

    def bind(self, *values):
        return D1PreparedStatement(
            self._db, self._sql, [_param(i + 1, v) for i, v in enumerate(values)])

    def _wire(self):
        return {"sql": self._sql, "params": self._params}

    async def _query(self, first=False):
        args = self._wire()
        if first:
            args["first"] = True
        return await self._db._call("query", args)

    async def all(self):
        """{success, meta, results}: results is a list of row dicts."""
        return _result(await self._query())

    async def run(self):
        """The same as all() (D1 treats them as aliases)."""
        return _result(await self._query())

    async def first(self, column=None):
        """The first row as a dict, that row's `column`, or None without
        rows. D1_COLUMN_NOTFOUND when the row has no such column."""
        res = await self._query(first=True)
        if not res["rows"]:
            return None
        row = D1Result(zip(res["columns"], res["rows"][0]))
        if column is None:
            return row
        if column not in row:
            raise D1Error(f"D1_COLUMN_NOTFOUND: Column not found ({column})")
        return row[column]

    async def raw(self, options=None, *, columnNames=False):
        """Rows as lists; with columnNames=True (or {"columnNames": True},
        as JavaScript passes it) the first list is the column names."""
        if isinstance(options, dict):
            columnNames = bool(options.get("columnNames"))
        elif options is not None:
            columnNames = bool(getattr(options, "columnNames", False))
        res = await self._query()
        rows = D1Rows(res["rows"])
        if columnNames:
            rows.insert(0, list(res["columns"]))
        return rows

    def __repr__(self):
        return f"<D1PreparedStatement {self._sql!r} params={self._params!r}>"


class D1Database:
    """One D1 binding: prepare(), batch(), exec()."""

    __slots__ = ("_binding",)

    def __init__(self, binding):
        self._binding = binding

    def prepare(self, query):
        if not isinstance(query, str):
            raise TypeError(f"prepare() takes the SQL as a str, got "
                            f"{type(query).__name__}")
        return D1PreparedStatement(self, query)

    async def batch(self, statements):
        """Runs the statements in order in one transaction: all of them
        commit, or (when one fails) none. A list of results, as all()."""
        stmts = list(statements)
        for s in stmts:
            if not isinstance(s, D1PreparedStatement):
                raise TypeError(f"batch() takes a list of prepared statements "
                                f"(DB.prepare(...)), got {type(s).__name__}")
        if not stmts:
            return []
        res = await self._call("batch", {"statements": [s._wire() for s in stmts]})
        return [_result(r) for r in res]

    async def exec(self, query):
        """Runs one or more statements (no parameters), each committed on its
        own; stops at the first error. {count, duration}."""
        if not isinstance(query, str):
            raise TypeError(f"exec() takes the SQL as a str, got {type(query).__name__}")
        return D1Result(await self._call("exec", {"sql": query}))

    async def dump(self):
        raise D1Error("D1_DUMP_ERROR: dump() is not supported (Cloudflare only "
                      "supports it for alpha databases): copy the .sqlite file "
                      "under thaw's state directory instead")

    def withSession(self, constraint=None):
        """Sessions matter for read replicas; a local database has none, so
        the session is the database itself."""
        return _Session(self)

    async def _call(self, op, args):
        try:
            _, body = await _bind.call(self._binding, op, args)
        except JsException as e:
            if e.name == "Error":
                raise D1Error(e.message) from None
            raise
        return json.loads(body.decode("utf-8", "replace")) if body else None

    def __repr__(self):
        return f"<D1Database {self._binding}>"


class _Session:
    __slots__ = ("_db",)

    def __init__(self, db):
        self._db = db

    def prepare(self, query):
        return self._db.prepare(query)

    async def batch(self, statements):
        return await self._db.batch(statements)

    def getBookmark(self):
        return None


def bindings_from_config(config):
    for item in config.get("d1_databases") or ():
        if isinstance(item, dict) and isinstance(item.get("binding"), str):
            yield item["binding"], D1Database(item["binding"])
