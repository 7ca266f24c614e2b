"""The objects an instance hosts. The supervisor sends every call to one
of a worker's Durable Objects to the same instance of the current version
(src/pool/pool.c, the version's object host), as a request whose
pseudo-headers name the object (`:event` = "durable-object", `:do-class`,
`:do-id`, `:do-op` = "fetch" or "rpc", `:do-method`, `:do-name`); see
src/do/call.c. So at most one live object per id exists in a thaw.

An object is made on its first call, `Class(ctx, env)`, and lives as long
as its instance (an instance that exits, idle or replaced, takes the
objects' memory with it; their storage stays). Calls to one object run one
at a time, in arrival order: a gate per object (_Gate, a lock), held
while the call runs. That is the input gate's first approximation: Cloudflare lets
another call in while an object awaits something other than its storage,
thaw does not, so an object that calls itself (directly or round a cycle)
waits for the call's time limit.

A fetch answers with the object's Response. An RPC call's arguments come
as the body (workers/_durable_wire.py) and its answer is the result, or
the exception's class name and message, as JSON with status 200 or 500.
No answer leaves before the storage writes the object started are
committed (the output gate, workers/_durable_storage.py): a write that
failed is the answer instead, and the object is made again at its next
event.
"""
import asyncio
import collections
import inspect
import json

from . import _asgi_eager as eager
from . import _durable_alarm
from . import _durable_wire as wire
from ._durable_id import DurableObjectId
from ._durable_storage import DurableObjectStorage, output_gate
from ._durable_gate import current as _gate_of
from . import _durable_ws

# (class name, id hex) -> _Live
_objects = {}
# what src/do/config.c wrote as `_thaw_do` (set by _durable.bindings_from_config)
config = {}

RPC_CONTENT_TYPE = "application/x-thaw-rpc"
# on an answer of thaw's own (an RPC result, or an exception for the caller
# to raise): a Response the object made never has it
MARK = "x-thaw-durable-object"


class DurableObjectState(_durable_ws.StateMixin):
    """The object's `ctx`: `id`, `storage`, `waitUntil`, `blockConcurrencyWhile`,
    and the WebSocket hibernation API (workers/_durable_ws.py)."""

    __slots__ = ("id", "storage", "_inst", "_gates")

    def __init__(self, id, storage, inst):
        self.id = id
        self.storage = storage
        self._inst = inst
        self._gates = []

    def waitUntil(self, awaitable):
        self._inst.ctx.wait_until(awaitable)

    wait_until = waitUntil

    def blockConcurrencyWhile(self, callback):
        """Runs callback(); no other call reaches the object until what it
        returned is done. Called in __init__ without `await`, as Cloudflare's
        docs do, it still runs first: the next call waits for it. Returns an
        awaitable of its result."""
        result = callback()
        if not inspect.isawaitable(result):
            fut = asyncio.get_running_loop().create_future()
            fut.set_result(result)
            return fut
        task = asyncio.ensure_future(result)
        self._gates.append(task)
        return task

    block_concurrency_while = blockConcurrencyWhile

    async def _pass_gates(self):
        while self._gates:
            gate = self._gates.pop(0)
            await asyncio.shield(gate) if not gate.done() else None
            gate.result()  # a callback that raised fails this call too


class _Gate:
    """One call at a time per object, in arrival order: asyncio.Lock's
    job, without the coroutines to enter and leave it when it is free
    (nearly always: a WebSocket message takes it and gives it back in one
    step). release() hands it to the first waiter still waiting."""

    __slots__ = ("busy", "waiters")

    def __init__(self):
        self.busy = False
        self.waiters = None  # a deque once one waits: most objects never need one

    async def wait(self):
        """Waits until the gate is this caller's (it was busy)."""
        fut = asyncio.get_running_loop().create_future()
        if self.waiters is None:
            self.waiters = collections.deque()
        self.waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # handed over just as its caller was cancelled
            raise

    def release(self):
        waiters = self.waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # busy still: it is the waiter's now
                return
        self.busy = False


class _Live:
    # relay: the object's own task for its WebSocket messages, made by the
    # C path (_durable_ws.setup_fast, src/zygote/dows.c) on its first one
    __slots__ = ("obj", "gate", "relay")

    def __init__(self):
        self.obj = None
        self.gate = _Gate()
        self.relay = None


class RpcError(Exception):
    """An RPC call the object cannot take (no such method)."""


def _reply(inst, st, status, payload):
    from thaw_runtime import ipc
    if inst.streams.get(st.sid) is not st:
        return  # cancelled meanwhile
    body = json.dumps(payload, separators=(",", ":")).encode()
    inst._queue(ipc.frame(ipc.RESP_HEAD, st.sid, ipc.fields(
        str(status), "", "content-type", RPC_CONTENT_TYPE, "content-length", str(len(body)),
        MARK, "error" if status != 200 else "result")))
    inst._queue(ipc.frame(ipc.RESP_BODY, st.sid, body))
    inst._queue(ipc.frame(ipc.RESP_END, st.sid))
    inst.streams.pop(st.sid, None)


def _error(exc):
    return {"error": {"name": type(exc).__name__, "message": str(exc)}}


def start(inst, st, meta, request):
    """Runs one call for stream st (registered by the caller); request is
    the Request the call carried (fetch) or whose body holds the RPC
    arguments (None for a WebSocket event whose message is in the head).

    Eager (workers/_asgi_eager.py): the call's first step runs now, so
    calls take the object's lock in arrival order, and one that finishes
    without waiting (a WebSocket echo, most of all) is answered in this
    turn of the loop, no task step later."""
    if _durable_ws._fast_set is not inst:
        _durable_ws.setup_fast(inst)
    task, finished = eager.start(_run(inst, st, meta, request), inst.loop)
    if not finished:
        st.task = task


def _evict(cls_name, id_hex):
    """Drops the object unless a call holds or awaits it. Whether it went."""
    live = _objects.get((cls_name, id_hex))
    if live is not None:
        if live.gate.busy:
            return False
        # a socket taken with server.accept() lives in this object only
        # (acceptWebSocket's hibernate: the supervisor keeps those)
        state = getattr(live.obj, "ctx", None)
        if state is not None and _durable_ws.holds_open_sockets(state):
            return False
        del _objects[(cls_name, id_hex)]
        if live.relay is not None:
            live.relay.stop()  # its task ends rather than wait forever
    return True


async def _hand_off(cls_name, id_hex):
    """A new version of the worker took over (src/do/live.c): once the
    events before this one have run (it takes the object's lock in its
    turn), the object leaves this host, which the supervisor runs none of
    its events in again; they go to the new version's host. Its sockets
    of the standard API (server.accept()) live in its memory only: they
    close with 1012 (service restart), as Cloudflare disconnects an
    object's sockets at a deploy."""
    live = _objects.get((cls_name, id_hex))
    if live is None:
        return
    gate = live.gate
    if gate.busy:
        await gate.wait()
    else:
        gate.busy = True
    try:
        state = getattr(live.obj, "ctx", None)
        if state is not None and _durable_ws.holds_open_sockets(state):
            for ws in list(_durable_ws.sockets_of(state).by_id.values()):
                if not ws._do.get("hib") and ws._state != _durable_ws.CLOSED:
                    ws._close_with(1012, b"a new version of the worker took over")
        if _objects.get((cls_name, id_hex)) is live:
            del _objects[(cls_name, id_hex)]
            if live.relay is not None:
                live.relay.stop()  # its task (src/zygote/dows-relay.c) ends with it
    finally:
        gate.release()


_rt = None  # thaw_runtime's output and log, once (the SDK imports this module too)


def _runtime():
    global _rt
    if _rt is None:
        from thaw_runtime import output
        from thaw_runtime.log import log_exception
        _rt = (output.request_id, log_exception)
    return _rt


async def _settle(live):
    """After an event, answered or not: its writes are done, and an object
    whose write failed is dropped (its memory may hold what its storage
    does not), to be made again from its storage."""
    storage = getattr(getattr(live.obj, "ctx", None), "storage", None)
    if isinstance(storage, DurableObjectStorage) and not storage.idle():
        try:
            await storage.settle()
        finally:
            if storage.broken is not None:
                live.obj = None


def _make(inst, live, cls_name, id_hex, meta):
    """The object, made on its first call (again after its host went)."""
    info = (config.get("classes") or {}).get(cls_name)
    cls = inst.worker.module.__dict__.get(cls_name)
    if info is None or cls is None:
        raise RpcError(f"no Durable Object class {cls_name!r} in this worker")
    ns_key = bytes.fromhex(info["key"])
    oid = DurableObjectId(id_hex, meta.get(":do-name"), ns_key)
    storage = DurableObjectStorage(info["key"], id_hex, bool(info.get("sqlite")))
    state = DurableObjectState(oid, storage, inst)
    state._cls_name = cls_name  # its sockets are the class's and id's
    live.obj = cls(state, inst.worker.env)


async def _run(inst, st, meta, request):
    request_id, log_exception = _rt or _runtime()
    token = request_id.set(st.sid)
    op = meta.get(":do-op")
    try:
        cls_name, id_hex = meta.get(":do-class", ""), meta.get(":do-id", "")
        if op == "evict":  # idle (src/do/live.h): its memory goes, its storage stays
            _reply(inst, st, 200 if _evict(cls_name, id_hex) else 409, {"result": None})
            return
        if op == "handoff":
            await _hand_off(cls_name, id_hex)
            _reply(inst, st, 200, {"result": None})
            return
        live = _objects.get((cls_name, id_hex))
        if live is None:
            if (config.get("classes") or {}).get(cls_name) is None or \
                    inst.worker.module.__dict__.get(cls_name) is None:
                raise RpcError(f"no Durable Object class {cls_name!r} in this worker")
            live = _objects[(cls_name, id_hex)] = _Live()
        gate = live.gate
        if gate.busy:
            await gate.wait()
        else:
            gate.busy = True
        try:
            if live.obj is None:
                _make(inst, live, cls_name, id_hex, meta)
            state = getattr(live.obj, "ctx", None)
            if type(state) is DurableObjectState or isinstance(state, DurableObjectState):
                # its outbound fetch and stub calls wait for its writes
                # (workers/_durable_gate.py); this task's context only
                _gate_of.set(state.storage._gate)
                if state._gates:
                    await state._pass_gates()
            if op == "ws":
                await _durable_ws.deliver(inst, st, live.obj, state, meta, request)
                return
            if op == "alarm":  # src/do/alarms.h
                await _durable_alarm.run(live.obj, state, meta)  # its output gate inside
                _reply(inst, st, 200, {"result": None})
                return
            if op == "fetch":
                result = live.obj.fetch(request)
                if inspect.isawaitable(result):
                    result = await result
                headers = getattr(result, "headers", None)
                if headers is not None and MARK in headers:
                    try:
                        headers.delete(MARK)  # copied from another object's answer
                    except TypeError:
                        pass  # immutable headers: the caller sees an error then
                await output_gate(state)
                if getattr(result, "_web_socket", None) is not None:
                    await _durable_ws.respond_101(inst, st, state, result)
                    return
                inst._respond(st, result)
                return
            method = meta.get(":do-method", "")
            fn = None if method.startswith("_") else getattr(live.obj, method, None)
            if not callable(fn) or method in ("fetch", "alarm") or \
                    method.startswith("webSocket"):
                raise RpcError(f'The RPC receiver does not implement the method "{method}".')
            args = wire.decode(await request.bytes() or b"[]")
            result = fn(*args)
            if inspect.isawaitable(result):
                result = await result
            answer = json.loads(wire.encode(result))
            await output_gate(state)
            _reply(inst, st, 200, {"result": answer})
        finally:
            try:
                await _settle(live)
            finally:
                gate.release()
    except asyncio.CancelledError:
        raise
    except RpcError as exc:
        _reply(inst, st, 500, {"error": {"name": "TypeError", "message": str(exc)}})
    except BaseException as exc:
        # the caller raises it; the log keeps the traceback
        log_exception(inst.worker.name, exc)
        _reply(inst, st, 500, _error(exc))
    finally:
        request_id.reset(token)
