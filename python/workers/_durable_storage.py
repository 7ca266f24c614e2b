"""An object's storage, `ctx.storage`: the key-value API and, for classes
created with `new_sqlite_classes`, `ctx.storage.sql`. Both are SQL on the
object's own SQLite file, which the supervisor holds (src/do/storage.c):
the key-value pairs live in a table `_cf_KV`, as on Cloudflare. Every
write is committed before its call returns.

A write (put, delete, setAlarm, deleteAlarm), awaited or not, is on its
way when its call returns: the puts and deletes of one turn of the loop
(those made with no `await` that yields between them) wait in memory
until the turn ends and then go as one batch, one SQLite transaction
(Cloudflare's write coalescing); any other storage call (a read,
sql.exec, an alarm call, deleteAll) sends the batch first, so the calls
after a write find it done (the supervisor runs one object's calls in
order). The object's answer to its event waits until each write it
started is committed, and becomes an error if one failed (the output
gate: `settle()`, called by workers/_durable_host.py); so do the
object's other outgoing messages (workers/_durable_gate.py). A failed
write also breaks the object, which is made again from its storage at
its next event, as on Cloudflare.

Values are what RPC carries (workers/_durable_wire.py), stored as their
JSON text. `sql.exec()` is synchronous, as Cloudflare's: it blocks the
instance's loop until the supervisor answers (a local SQLite call).
"""
from . import _bind
from . import _durable_wire as wire
from ._durable_gate import OutputGate, WriteFailed

_STORE = ":do"  # the storage binding (src/do/bind.c): no env name can be it
_KV = "_cf_KV"
_CREATE = (f"CREATE TABLE IF NOT EXISTS {_KV} (key TEXT PRIMARY KEY, value TEXT NOT NULL) "
           f"WITHOUT ROWID")
# the object's alarm (src/do/alarms.h writes it; the same text)
_ALARM_TABLE = ("CREATE TABLE IF NOT EXISTS _cf_ALARM (k INTEGER PRIMARY KEY CHECK (k = 0), "
                "at INTEGER NOT NULL)")
_PUT = (f"INSERT INTO {_KV} (key, value) VALUES (?, ?) "
        f"ON CONFLICT(key) DO UPDATE SET value = excluded.value")
MAX_KEYS = 128  # keys per get/put/delete call, as Cloudflare
# bytes of one value's JSON text: what one get() can answer (its reply is
# one frame, src/bind/bind.c); Cloudflare's SQLite objects take 2 MB
MAX_VALUE = 1024 * 1024
# A batch whose values take more characters than this may not fit the
# call's head (one frame, 1 MiB, once JSON escapes them): it goes as the
# call's body instead (at most 32 MiB: bind.h)
_IN_HEAD = 150000
# The writes of one turn are one transaction up to this many characters of
# keys and values (the body's 32 MiB, escaping included); past it the
# batch so far goes first, as a transaction of its own
_COALESCE_MAX = 6 * 1024 * 1024


def _key(k):
    if not isinstance(k, str):
        raise TypeError(f"a storage key must be a string, not {type(k).__name__}")
    return k


def _keys(keys):
    keys = [_key(k) for k in keys]
    if len(keys) > MAX_KEYS:
        raise ValueError(f"at most {MAX_KEYS} keys per call, not {len(keys)}")
    return keys


def _how_many(results):
    return sum(r["meta"]["changes"] for r in results)


def _existed(results):
    return _how_many(results) > 0


def alarm_time(scheduled):
    """setAlarm's argument as whole ms since the epoch: a number (a time
    in the past fires at once) or a datetime; anything else a TypeError."""
    import datetime
    if isinstance(scheduled, datetime.datetime):
        if scheduled.tzinfo is None:
            scheduled = scheduled.replace(tzinfo=datetime.timezone.utc)
        return max(0, int(scheduled.timestamp() * 1000))
    if hasattr(scheduled, "getTime"):  # a JS Date
        scheduled = scheduled.getTime()
    if isinstance(scheduled, bool) or not isinstance(scheduled, (int, float)):
        raise TypeError("setAlarm() takes the time as milliseconds since the epoch (a number) "
                        f"or a datetime, not {type(scheduled).__name__}")
    if scheduled != scheduled or scheduled in (float("inf"), float("-inf")):
        raise TypeError("setAlarm(): the time must be a finite number of milliseconds")
    return max(0, int(scheduled))


def _options(options, allowed, what):
    if options is None:
        return {}
    if hasattr(options, "to_py"):
        options = options.to_py()
    if not isinstance(options, dict):
        raise TypeError(f"{what}() options must be a dict")
    bad = set(options) - set(allowed)
    if bad:
        raise TypeError(f"{what}() has no option {sorted(bad)[0]!r}")
    return options


def value_text(key, value):
    """value as the JSON text stored under key (both key-value APIs): a
    value RPC cannot carry is a TypeError, one over MAX_VALUE a RangeError."""
    text = wire.encode(value)
    if len(text) > MAX_VALUE:
        raise _bind.JsException("RangeError", f"a storage value is at most {MAX_VALUE} "
                                f"bytes of JSON in thaw (what one get() can return); "
                                f"the one for key {key[:64]!r} takes {len(text)}")
    return text.decode()


LIST_OPTIONS = ("prefix", "start", "startAfter", "end", "limit", "reverse")


def list_query(o):
    """The statement of list() with options o (checked names): the pairs
    in key order, `start` inclusive, `end` exclusive."""
    where, params = [], []
    for name, op in (("start", ">="), ("startAfter", ">"), ("end", "<")):
        if o.get(name) is not None:
            where.append(f"key {op} ?")
            params.append(_key(o[name]))
    prefix = o.get("prefix")
    if prefix:
        where.append("substr(key, 1, ?) = ?")
        params += [len(_key(prefix)), prefix]
    limit = o.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit <= 0):
        raise TypeError("list(): limit must be a positive integer")
    sql = (f"SELECT key, value FROM {_KV}" + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY key" + (" DESC" if o.get("reverse") else "")
           + (f" LIMIT {int(limit)}" if limit else ""))
    return {"sql": sql, "params": params}


class DurableObjectStorage:
    __slots__ = ("_ns", "_id", "_sqlite", "_ready", "_sql", "_firing", "_txn", "_in_sync",
                 "_unconfirmed", "broken", "_gate", "_buf", "_buf_writes", "_buf_size")

    def __init__(self, ns_key, id_hex, sqlite):
        self._ns = ns_key
        self._id = id_hex
        self._sqlite = sqlite
        self._ready = False
        self._sql = None
        self._firing = None  # the alarm whose alarm() runs, until setAlarm
        self._txn = None     # the open transaction() (workers/_durable_txn.py)
        self._in_sync = False  # inside transactionSync(): sql.exec joins it
        self._unconfirmed = []  # writes sent, their answers not yet seen by settle()
        self.broken = None  # the first write that failed (WriteFailed)
        self._gate = OutputGate()  # the object's messages wait for its writes
        self._buf = None  # this turn's writes: their statements, until _flush()
        self._buf_writes = None  # (future, first statement, end, result of its slice)
        self._buf_size = 0  # characters of their keys and values

    # -- transport ------------------------------------------------------
    def _args(self, **kw):
        return {"ns": self._ns, "id": self._id, **kw}

    def _send(self, statements, size=0):
        """Sends a batch now (size: the characters of its values); what
        _answer() takes."""
        fresh = not self._ready
        if fresh:  # the first call makes the tables; the later ones follow it
            statements = [{"sql": _CREATE, "params": []},
                          {"sql": _ALARM_TABLE, "params": []}] + statements
        if size > _IN_HEAD:  # src/do/storage.c reads it from the body then
            import json
            body = json.dumps(statements, ensure_ascii=False, separators=(",", ":"))
            pending = _bind.start(_STORE, "batch", self._args(), body.encode())
        else:
            pending = _bind.start(_STORE, "batch", self._args(statements=statements))
        self._ready = True
        return pending, fresh

    async def _answer(self, sent):
        pending, fresh = sent
        try:
            res, _ = await _bind.finish(pending)
        except BaseException:
            if fresh:
                self._ready = False  # the tables may not be there: ask again
            raise
        return res[2:] if fresh else res

    async def _batch(self, statements):
        self._flush()
        size = sum(len(p) for st in statements for p in st["params"] if isinstance(p, str))
        return await self._answer(self._send(statements, size))

    # -- this turn's writes, one transaction ---------------------------
    def _queue(self, statements, size, result=None):
        """A put or delete: waits in this turn's batch. Returns a future of
        its outcome (result(its statements' answers), or None)."""
        if size > _COALESCE_MAX:
            raise _bind.JsException("RangeError", f"one storage call of {size} characters of "
                                    f"keys and values is over thaw's limit of {_COALESCE_MAX}: "
                                    f"split it")
        import asyncio  # not at the top: `import workers` stays light
        loop = asyncio.get_running_loop()
        if self._buf is not None and self._buf_size + size > _COALESCE_MAX:
            self._flush()
        if self._buf is None:
            self._buf, self._buf_writes, self._buf_size = [], [], 0
            loop.call_soon(self._flush)  # the turn's end
        fut = loop.create_future()
        first = len(self._buf)
        self._buf += statements
        self._buf_writes.append((fut, first, len(self._buf), result))
        self._buf_size += size
        self._gate.write()
        return fut

    def _flush(self):
        """Sends this turn's writes, if any, as one batch (one transaction)."""
        statements = self._buf
        if statements is None:
            return
        writes, size = self._buf_writes, self._buf_size
        self._buf = self._buf_writes = None
        try:
            sent = self._send(statements, size)
        except BaseException as exc:  # nothing went (thaw is stopping)
            self._lost(writes, exc)
            return
        import asyncio
        self._unconfirmed.append(asyncio.ensure_future(
            self._commit(sent, writes, self._gate.sent())))

    async def _commit(self, sent, writes, call):
        try:
            res = await self._answer(sent)
        except BaseException as exc:
            self._lost(writes, exc)
            return
        self._gate.done(call)
        for fut, first, end, result in writes:
            if not fut.done():
                fut.set_result(None if result is None else result(res[first:end]))

    def _lost(self, writes, exc):
        """A batch failed: its writes raise, if awaited (the object's answer
        says so anyway: the failure's traceback is not logged twice)."""
        import asyncio
        self._failed(exc)
        for fut, _, _, _ in writes:
            if fut.done():
                continue
            if isinstance(exc, asyncio.CancelledError):
                fut.cancel()
            else:
                fut.set_exception(exc)
                fut.exception()  # retrieved

    def _write(self, answer):
        """An alarm write, sent: the object's answer waits for it (settle());
        the caller may await what this returns, or not."""
        import asyncio
        gate = self._gate
        gate.write()
        task = asyncio.ensure_future(self._committed(answer, gate.sent()))
        self._unconfirmed.append(task)
        return task

    async def _committed(self, answer, call):
        try:
            result = await answer
        except BaseException as exc:
            self._failed(exc)
            raise
        self._gate.done(call)
        return result

    def _failed(self, exc):
        if self.broken is None:
            self.broken = WriteFailed(exc)
        self._gate.fail(exc)

    def idle(self):
        """No write waits to be sent or answered, and none failed."""
        return self._buf is None and not self._unconfirmed and self.broken is None

    async def settle(self):
        """The output gate: waits for every write sent so far and returns
        the first failure (a WriteFailed, also kept in `broken`) or None."""
        import asyncio
        self._flush()
        while self._unconfirmed:
            writes, self._unconfirmed = self._unconfirmed, []
            # asyncio.wait cancels none of them if this event is cancelled
            await asyncio.wait(writes)
            for w in writes:
                exc = (asyncio.CancelledError("the write was cancelled") if w.cancelled()
                       else w.exception())
                if exc is not None:
                    self._failed(exc)
        return self.broken

    # -- key-value ------------------------------------------------------
    async def get(self, keys, options=None):
        """get(key) -> the value or None; get([keys]) -> a dict of the
        keys that exist, in key order."""
        _options(options, ("allowConcurrency", "noCache"), "get")
        single = not isinstance(keys, (list, tuple))
        ks = [_key(keys)] if single else _keys(keys)
        res = await self._batch([{"sql": f"SELECT key, value FROM {_KV} WHERE key = ?",
                                  "params": [k]} for k in ks])
        found = {}
        for r in res:
            for key, value in r["rows"]:
                found[key] = wire.decode(value)
        if single:
            return found.get(ks[0])
        return {k: found[k] for k in sorted(found)}

    def put(self, key, value=None, options=None):
        """put(key, value) or put({key: value, ...}): sent now, awaited or
        not (a key or value it cannot take raises here)."""
        if isinstance(key, dict):
            _options(value, ("allowUnconfirmed", "noCache"), "put")
            pairs = list(key.items())
            _keys([k for k, _ in pairs])
        else:
            _options(options, ("allowUnconfirmed", "noCache"), "put")
            pairs = [(_key(key), value)]
        statements, size = [], 0
        for k, v in pairs:
            text = value_text(k, v)
            size += len(k) + len(text)
            statements.append({"sql": _PUT, "params": [k, text]})
        return self._queue(statements, size)

    def delete(self, keys, options=None):
        """delete(key) -> whether it existed; delete([keys]) -> how many did.
        Sent now, awaited or not."""
        _options(options, ("allowUnconfirmed", "noCache"), "delete")
        single = not isinstance(keys, (list, tuple))
        ks = [_key(keys)] if single else _keys(keys)
        return self._queue([{"sql": f"DELETE FROM {_KV} WHERE key = ?", "params": [k]}
                            for k in ks], sum(map(len, ks)),
                           _existed if single else _how_many)

    def _now(self, statements):
        """A batch run before this returns (blocking the loop, as sql.exec
        does): for the writes whose second step depends on the first."""
        self._flush()
        fresh = not self._ready
        if fresh:
            statements = [{"sql": _CREATE, "params": []},
                          {"sql": _ALARM_TABLE, "params": []}] + statements
        res, _ = _bind.call_sync(_STORE, "batch", self._args(statements=statements))
        self._ready = True
        return res[2:] if fresh else res

    def deleteAll(self, options=None):
        """Deletes every key (and, for a SQLite class, every table: the
        object's storage is empty afterwards, as on Cloudflare). Done
        before it returns (its steps depend on each other, and a write
        called after it must not slip in between); returns an awaitable."""
        _options(options, ("allowUnconfirmed", "noCache"), "deleteAll")
        res = self._now([{"sql": "SELECT name FROM sqlite_master WHERE type = 'table' "
                                 "AND name NOT LIKE 'sqlite%'", "params": []}])
        drops = [{"sql": f'DROP TABLE IF EXISTS "{name}"', "params": []}
                 for (name,) in res[0]["rows"]]
        if drops:
            self._now(drops)
        self._ready = False
        # the alarm went with its table (delete_all_deletes_alarm, as
        # Cloudflare's default): the supervisor forgets it too
        _bind.call_sync(_STORE, "alarm", self._args(at=None))
        import asyncio
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    delete_all = deleteAll

    async def transaction(self, closure):
        """await closure(txn); its writes commit together when it returns,
        none of them when it raises (workers/_durable_txn.py)."""
        from . import _durable_txn
        return await _durable_txn.run(self, closure)

    def transactionSync(self, closure):
        """closure() with no argument, synchronously: the SQL it runs
        (ctx.storage.sql) commits together when it returns, none of it
        when it raises. SQLite-backed classes only, as on Cloudflare."""
        self.sql  # the Error a key-value class gets
        if not callable(closure):
            raise TypeError("transactionSync() takes a function: def work(): ...")
        if self._in_sync:
            raise _bind.JsException("Error", "transactionSync(): already inside one")
        self._flush()
        _bind.call_sync(_STORE, "txn", self._args(action="begin"))
        self._in_sync = True
        try:
            result = closure()
            if hasattr(result, "__await__"):
                if hasattr(result, "close"):
                    result.close()
                raise TypeError("transactionSync() takes a synchronous function: its SQL "
                                "runs while it runs; use transaction() for an async one")
        except BaseException:
            self._in_sync = False
            _bind.call_sync(_STORE, "txn", self._args(action="rollback"))
            raise
        self._in_sync = False
        _bind.call_sync(_STORE, "txn", self._args(action="commit"))
        return result

    transaction_sync = transactionSync

    # -- alarms -----------------------------------------------------------
    async def getAlarm(self, options=None):
        """The alarm's time in ms since the epoch, or None. While alarm()
        runs, None until setAlarm is called again (as Cloudflare)."""
        _options(options, ("allowConcurrency",), "getAlarm")
        res = await self._batch([{"sql": "SELECT at FROM _cf_ALARM", "params": []}])
        rows = res[0]["rows"]
        at = rows[0][0] if rows else None
        return None if at is not None and at == self._firing else at

    def setAlarm(self, scheduled, options=None):
        """Arms the object's one alarm (replacing any) for scheduled: ms
        since the epoch (int or float) or a datetime (naive = UTC). Sent
        now, awaited or not."""
        _options(options, ("allowConcurrency", "allowUnconfirmed"), "setAlarm")
        at = alarm_time(scheduled)
        self._firing = None
        self._flush()
        return self._write(self._alarm(_bind.start(_STORE, "alarm", self._args(at=at))))

    def deleteAlarm(self, options=None):
        _options(options, ("allowConcurrency", "allowUnconfirmed"), "deleteAlarm")
        self._firing = None
        self._flush()
        return self._write(self._alarm(_bind.start(_STORE, "alarm", self._args(at=None))))

    async def _alarm(self, pending):
        await _bind.finish(pending)

    async def _alarm_done(self, at):
        """The alarm at `at` ran (or gave up): gone, unless it was set again."""
        self._flush()
        await _bind.call(_STORE, "alarm", self._args(at=None, if_at=at))

    get_alarm, set_alarm, delete_alarm = getAlarm, setAlarm, deleteAlarm

    async def list(self, options=None):
        """The pairs in key order as a dict: prefix, start (inclusive),
        startAfter, end (exclusive), limit, reverse."""
        o = _options(options, LIST_OPTIONS + ("allowConcurrency", "noCache"), "list")
        res = await self._batch([list_query(o)])
        return {k: wire.decode(v) for k, v in res[0]["rows"]}

    @property
    def kv(self):
        """The synchronous key-value API (workers/_durable_kv.py), of
        SQLite-backed classes as on Cloudflare."""
        from ._durable_kv import SyncKvStorage
        if not self._sqlite:
            raise _bind.JsException(
                "Error", "ctx.storage.kv (the synchronous key-value API) is not enabled for "
                "this Durable Object class: it was created with `new_classes`; create it with "
                "`new_sqlite_classes` in a migration, or use the async ctx.storage.get/put")
        return SyncKvStorage(self)

    # -- SQL --------------------------------------------------------------
    @property
    def sql(self):
        if not self._sqlite:
            raise _bind.JsException(
                "Error", "SQL is not enabled for this Durable Object class: it was created "
                "with `new_classes`; create it with `new_sqlite_classes` in a migration")
        if self._sql is None:
            self._sql = SqlStorage(self)
        return self._sql


class SqlStorage:
    """`ctx.storage.sql`: exec(query, *bindings) -> a cursor."""

    __slots__ = ("_st",)

    def __init__(self, storage):
        self._st = storage

    def exec(self, query, *bindings):
        if not isinstance(query, str):
            raise TypeError("sql.exec() takes the SQL as a string")
        params = [_param(b) for b in bindings]
        self._st._flush()  # this turn's writes go first
        args = self._st._args(sql=query, params=params)
        if self._st._in_sync:
            args["txn"] = True  # part of the open transactionSync (storage.c)
        res, _ = _bind.call_sync(_STORE, "sql", args)
        return SqlCursor(res)

    @property
    def databaseSize(self):
        self._st._flush()
        res, _ = _bind.call_sync(_STORE, "sql", self._st._args(
            sql="SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            params=[]))
        return res["rows"][0][0]


def _param(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return list(bytes(v))  # a BLOB (d1-exec.h)
    raise TypeError(f"sql.exec(): a binding cannot be {type(v).__name__}")


def _cell(v):
    return bytes(v) if isinstance(v, list) else v  # BLOBs come as byte values


class SqlCursor:
    """The result of sql.exec(): iterate rows as dicts, or toArray(), one(),
    raw() (rows as lists); columnNames, rowsRead, rowsWritten."""

    __slots__ = ("columnNames", "_rows", "_pos", "rowsRead", "rowsWritten")

    def __init__(self, res):
        self.columnNames = list(res.get("columns") or [])
        self._rows = [[_cell(c) for c in row] for row in res.get("rows") or []]
        self._pos = 0
        meta = res.get("meta") or {}
        self.rowsRead = meta.get("rows_read", 0)
        self.rowsWritten = meta.get("rows_written", 0)

    def _dict(self, row):
        from ._rpc import JsDict
        return JsDict(zip(self.columnNames, row))

    def __iter__(self):
        return self

    def __next__(self):
        if self._pos >= len(self._rows):
            raise StopIteration
        row = self._rows[self._pos]
        self._pos += 1
        return self._dict(row)

    def next(self):
        """JS iterator protocol: {done, value}."""
        from ._rpc import JsDict
        try:
            return JsDict(done=False, value=next(self))
        except StopIteration:
            return JsDict(done=True)

    def toArray(self):
        return list(self)

    def one(self):
        left = self._rows[self._pos:]
        if len(left) != 1:
            raise _bind.JsException(
                "Error", "Expected exactly one result from SQL query, but got "
                + ("no results." if not left else f"{len(left)} results."))
        return next(self)

    def raw(self):
        rows, self._pos = self._rows[self._pos:], len(self._rows)
        return iter([list(r) for r in rows])

    @property
    def column_names(self):
        return self.columnNames


async def output_gate(state):
    """Before an object's event answers (a fetch's Response, an RPC
    result, an alarm or a WebSocket event done): every write the object
    started is committed, or what failed is raised instead of the answer."""
    storage = getattr(state, "storage", None)
    if isinstance(storage, DurableObjectStorage):
        if storage.idle():
            return  # nothing written (a WebSocket echo): no coroutine to run
        failed = await storage.settle()
        if failed is not None:
            raise failed
