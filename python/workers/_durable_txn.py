"""`ctx.storage.transaction(closure)`: `await closure(txn)`, where `txn`
has the key-value API (get, put, delete, list) and `rollback()`. The
writes wait in memory, read back by the closure's own reads, and go to
the object's file as one SQLite transaction when the closure returns, so
they are committed together or not at all: a closure that raises (or
calls rollback()) writes nothing, and what it raised reaches the caller.

Alarm calls and `ctx.storage.sql` inside the closure are not part of it:
they take effect at once (docs/bindings/durable-objects.md).
"""
import inspect

from . import _durable_storage as ds
from . import _durable_wire as wire

_GONE = object()  # a key the transaction deleted


class DurableObjectTransaction:
    __slots__ = ("_st", "_writes", "_rolled_back")

    def __init__(self, storage):
        self._st = storage
        self._writes = {}  # key -> value, or _GONE
        self._rolled_back = False

    def _open(self):
        if self._rolled_back:
            raise ds._bind.JsException("Error", "the transaction was rolled back")

    async def get(self, keys, options=None):
        self._open()
        single = not isinstance(keys, (list, tuple))
        ks = [ds._key(keys)] if single else ds._keys(keys)
        unknown = [k for k in ks if k not in self._writes]
        found = (await self._st.get(unknown, options)) if unknown else {}
        for k in ks:
            if k in self._writes and self._writes[k] is not _GONE:
                found[k] = self._writes[k]
        if single:
            return found.get(ks[0])
        return {k: found[k] for k in sorted(found)}

    async def put(self, key, value=None, options=None):
        self._open()
        if isinstance(key, dict):
            ds._options(value, ("allowUnconfirmed", "noCache"), "put")
            pairs = list(key.items())
            ds._keys([k for k, _ in pairs])
        else:
            ds._options(options, ("allowUnconfirmed", "noCache"), "put")
            pairs = [(ds._key(key), value)]
        for k, v in pairs:
            wire.encode(v)  # refused now, as put() refuses it, not at commit
            self._writes[k] = v

    async def delete(self, keys, options=None):
        self._open()
        single = not isinstance(keys, (list, tuple))
        ks = [ds._key(keys)] if single else ds._keys(keys)
        there = await self.get(ks, options)
        for k in ks:
            self._writes[k] = _GONE
        return bool(there) if single else len(there)

    async def list(self, options=None):
        self._open()
        o = dict(ds._options(options, ("prefix", "start", "startAfter", "end", "limit",
                                       "reverse", "allowConcurrency", "noCache"), "list"))
        limit = o.pop("limit", None)
        if limit is not None and (not isinstance(limit, int) or limit <= 0):
            raise TypeError("list(): limit must be a positive integer")
        merged = await self._st.list(o)  # all of the range, then our writes over it
        for k, v in self._writes.items():
            if _in_range(k, o):
                if v is _GONE:
                    merged.pop(k, None)
                else:
                    merged[k] = v
        keys = sorted(merged, reverse=bool(o.get("reverse")))[:limit]
        return {k: merged[k] for k in keys}

    def rollback(self):
        """Nothing the closure wrote is kept."""
        self._rolled_back = True
        self._writes.clear()

    async def getAlarm(self, options=None):
        return await self._st.getAlarm(options)

    async def setAlarm(self, scheduled, options=None):
        await self._st.setAlarm(scheduled, options)

    async def deleteAlarm(self, options=None):
        await self._st.deleteAlarm(options)

    get_alarm, set_alarm, delete_alarm = getAlarm, setAlarm, deleteAlarm

    def _statements(self):
        out = []
        for k, v in self._writes.items():
            if v is _GONE:
                out.append({"sql": f"DELETE FROM {ds._KV} WHERE key = ?", "params": [k]})
            else:
                out.append({"sql": f"INSERT INTO {ds._KV} (key, value) VALUES (?, ?) "
                                   f"ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                            "params": [k, wire.encode(v).decode()]})
        return out


def _in_range(k, o):
    if o.get("prefix") and not k.startswith(o["prefix"]):
        return False
    if o.get("start") is not None and k < o["start"]:
        return False
    if o.get("startAfter") is not None and k <= o["startAfter"]:
        return False
    return o.get("end") is None or k < o["end"]


async def run(storage, closure):
    if not callable(closure):
        raise TypeError("transaction() takes a function of the transaction: "
                        "async def work(txn): ...")
    if storage._txn is not None:
        raise ds._bind.JsException("Error", "transaction(): a transaction is already open "
                                   "on this object; use its txn")
    txn = DurableObjectTransaction(storage)
    storage._txn = txn
    try:
        result = closure(txn)
        if inspect.isawaitable(result):
            result = await result
    finally:
        storage._txn = None
    statements = txn._statements()
    if statements and not txn._rolled_back:
        await storage._batch(statements)  # one SQLite transaction (src/do/storage.c)
    return result
