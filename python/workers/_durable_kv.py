"""`ctx.storage.kv`: the synchronous key-value API of SQLite-backed
objects (Cloudflare's SyncKvStorage). The same pairs as the async API
(the `_cf_KV` table of the object's file, workers/_durable_storage.py),
reached the way `sql.exec()` is: a call that blocks the instance's loop
until the supervisor answered (a local SQLite call), so each one is
committed, or has raised, when it returns. Inside `transactionSync()`
they join its transaction, as its `sql.exec()` calls do.

Keys and values are checked as the async API checks them (a key that is
not a string, a value RPC cannot carry: TypeError; a value over 1 MiB of
JSON: RangeError), so the same mistake gets the same error
either way.
"""
from . import _bind
from . import _durable_wire as wire
from ._durable_storage import (_CREATE, _KV, _STORE, LIST_OPTIONS, _key, _options, list_query,
                               value_text)


class SyncKvStorage:
    """get(key), put(key, value), delete(key), list(prefix=..., ...)."""

    __slots__ = ("_st",)

    def __init__(self, storage):
        self._st = storage

    def _run(self, sql, params):
        """One statement, committed before this returns (or part of the
        open transactionSync)."""
        st = self._st
        if not st._in_sync:
            return st._now([{"sql": sql, "params": params}])[0]
        # only the transaction's own statements may come now (any other
        # call rolls it back: src/do/storage.c), the table's too
        if not st._ready:
            self._inside(_CREATE, [])
        return self._inside(sql, params)

    def _inside(self, sql, params):
        args = self._st._args(sql=sql, params=params, txn=True)
        res, _ = _bind.call_sync(_STORE, "sql", args)
        return res

    def get(self, key):
        """The value, or None when the key is not there."""
        rows = self._run(f"SELECT value FROM {_KV} WHERE key = ?", [_key(key)])["rows"]
        return wire.decode(rows[0][0]) if rows else None

    def put(self, key, value):
        """Stores value (what RPC carries) under key; returns None."""
        k = _key(key)
        text = value_text(k, value)
        self._run(f"INSERT INTO {_KV} (key, value) VALUES (?, ?) "
                  f"ON CONFLICT(key) DO UPDATE SET value = excluded.value", [k, text])

    def delete(self, key):
        """Whether the key was there."""
        res = self._run(f"DELETE FROM {_KV} WHERE key = ?", [_key(key)])
        return res["meta"]["changes"] > 0

    def list(self, options=None, **kw):
        """The (key, value) pairs in key order, as an iterator: prefix,
        start (inclusive), startAfter, end (exclusive), limit, reverse;
        given as keywords (`list(prefix="user:")`, Pyodide's way of
        passing a JavaScript options object) or as one dict."""
        o = dict(_options(options, LIST_OPTIONS, "list"))
        o.update(_options(kw, LIST_OPTIONS, "list"))
        q = list_query(o)
        rows = self._run(q["sql"], q["params"])["rows"]
        return iter([(k, wire.decode(v)) for k, v in rows])
