"""WebSockets of Durable Objects (docs/bindings/durable-objects.md,
"WebSockets"): the hibernation API on `ctx` (acceptWebSocket,
getWebSockets, getTags, setWebSocketAutoResponse,
getWebSocketAutoResponseTimestamp), attachments, and the
delivery of a socket's events to its object.

The supervisor keeps each socket an object returned in its 101, with its
tags and attachment (src/do/ws.c). Every message is an event of its own
for the object's host (`:do-op` = "ws"); what the object sends goes back
on one binding call per host instance (the "pipe"), each frame led by the
socket's id. So a host may go between messages: the next one makes the
object again (its `__init__` runs) and this module gets the object's
sockets back from the supervisor ("list") the first time it needs them.
A socket taken with `server.accept()` (event listeners) lives in the
host's memory only: after its host went, its next message closes it with
1011.
"""
import os
import types
from types import CoroutineType

from . import _bind
from . import _durable_wire as wire
from ._durable_storage import output_gate
from ._websocket import (CLOSED, CLOSING, OPEN, WebSocket, _WS_CLOSE, _field,
                         _parse_fields)

BINDING = ":do-ws"
ID_BYTES = 16
_MAX_SEND = 1024 * 1024 - ID_BYTES  # one frame of the channel, the id included
_MAX_ATTACHMENT = 2048  # Cloudflare's limit for serializeAttachment

_pipe = None  # this instance's pipe (a binding call that stays open)


class WebSocketRequestResponsePair:
    """setWebSocketAutoResponse's argument: a text message and its answer."""

    __slots__ = ("request", "response")

    def __init__(self, request, response):
        if not isinstance(request, str) or not isinstance(response, str):
            raise TypeError("WebSocketRequestResponsePair(request, response) takes two strings")
        self.request = request
        self.response = response

    @classmethod
    def new(cls, request, response):
        return cls(request, response)


def _pipe_call():
    global _pipe
    if _pipe is None or _pipe._done:
        _pipe = _bind._transport.bind_call(BINDING, "pipe", "{}", None)
    return _pipe


def _sender(ws, idb, gate):
    """ws.send's way out for socket id idb: this closure, or in an
    instance _thaw_fast.WsSend (src/zygote/dows-send.c: the frame built and
    queued in C), which hands a message to the closure while the object's
    output gate is shut (a storage write on its way: the message waits
    for it in the gate, workers/_durable_gate.py)."""
    def send(ftype, payload):
        # payload: bytes (WebSocket.send and _close_with make them)
        if len(payload) > _MAX_SEND:
            raise ValueError(f"a Durable Object's WebSocket message of {len(payload)} bytes "
                             f"is over thaw's limit of {_MAX_SEND} bytes")
        if gate.shut:  # a storage write is on its way: the message waits for it
            gate.hold(lambda: _emit(idb, ftype, payload), lambda exc: _lost(ws, idb))
            return
        pipe = _pipe
        if pipe is None or pipe._done:
            pipe = _pipe_call()
        pipe.send_ws(ftype, idb + payload)
    fast = _fast_module()
    if fast is not None:
        return fast.WsSend(idb, gate, send)
    return send


def _emit(idb, ftype, payload):
    pipe = _pipe
    if pipe is None or pipe._done:
        pipe = _pipe_call()
    pipe.send_ws(ftype, idb + payload)


def _lost(ws, idb):
    """A message the output gate held is dropped (a write before it
    failed): its socket closes with 1011, once, the client never getting
    a stream with a hole in it."""
    if ws._do.get("lost"):
        return
    ws._do["lost"] = True
    if ws._state == OPEN:
        ws._state = CLOSING
    _emit(idb, _WS_CLOSE, _field(b"1011") + _field(b"a storage write of the Durable Object "
                                                     b"failed"))


class Sockets:
    """An object's sockets, as `ctx` knows them: id -> WebSocket."""

    __slots__ = ("state", "by_id", "synced")

    def __init__(self, state):
        self.state = state
        self.by_id = {}
        self.synced = False

    def _key(self):
        return {"class": self.state._cls_name, "id": str(self.state.id)}

    def sync(self):
        """The supervisor's list, once per object (after a hibernation the
        object is new and its sockets are not)."""
        if self.synced:
            return
        result, _ = _bind.call_sync(BINDING, "list", self._key())
        self._take(result)

    async def sync_async(self):
        if self.synced:
            return
        result, _ = await _bind.call(BINDING, "list", self._key())
        self._take(result)

    def _take(self, result):
        self.synced = True
        for rec in (result or {}).get("sockets") or []:
            if rec["ws"] in self.by_id or not rec.get("hib"):
                continue  # known here; an accept()ed one is not ours to remake
            ws = WebSocket()
            ws._accepted = True
            ws._do = {"id": rec["ws"], "tags": list(rec.get("tags") or []),
                      "att": rec.get("att"), "hib": True}
            ws._attach(_sender(ws, rec["ws"].encode(), self.state.storage._gate),
                       _logger(self.state))
            self.by_id[rec["ws"]] = ws


def _logger(state):
    def log(exc):
        from thaw_runtime.log import log_exception
        log_exception(state._inst.worker.name, exc)
    return log


def sockets_of(state):
    s = getattr(state, "_ws", None)
    if s is None:
        s = state._ws = Sockets(state)
    return s


def holds_open_sockets(state):
    """Whether the object has open sockets of the standard API
    (server.accept()), which live in its memory only: evicting it would
    close them."""
    s = getattr(state, "_ws", None)
    return s is not None and any(
        not ws._do.get("hib") and ws._state != CLOSED for ws in s.by_id.values())


class StateMixin:
    """The hibernation API on the object's `ctx` (DurableObjectState)."""

    __slots__ = ("_ws", "_cls_name")

    def acceptWebSocket(self, ws, tags=None):
        accept_web_socket(self, ws, tags)

    def getWebSockets(self, tag=None):
        return get_web_sockets(self, tag)

    def getTags(self, ws):
        return get_tags(self, ws)

    def setWebSocketAutoResponse(self, pair=None):
        set_auto_response(self, pair)

    def getWebSocketAutoResponseTimestamp(self, ws):
        return auto_response_timestamp(self, ws)

    accept_websocket = acceptWebSocket
    get_websockets = getWebSockets
    get_tags = getTags
    set_websocket_auto_response = setWebSocketAutoResponse
    get_websocket_auto_response_timestamp = getWebSocketAutoResponseTimestamp


def _new_id():
    return os.urandom(ID_BYTES // 2).hex()


def _register(state, server, tags, hib):
    """The supervisor learns of the socket before its 101 goes (the same
    channel, in order); over the limit this raises here."""
    socks = sockets_of(state)
    sid = _new_id()
    args = dict(socks._key(), ws=sid, name=state.id.name, tags=list(tags), hib=hib)
    _bind.call_sync(BINDING, "open", args)
    server._do = {"id": sid, "tags": list(tags), "att": None, "hib": hib}
    if hib:
        server._accepted = True  # events go to the object's handlers
    server._attach(_sender(server, sid.encode(), state.storage._gate), _logger(state))
    socks.by_id[sid] = server
    return sid


# -- ctx's methods (DurableObjectState) ------------------------------------
def accept_web_socket(state, ws, tags=None):
    if not isinstance(ws, WebSocket) or ws._peer is None:
        raise TypeError("acceptWebSocket() takes the server end of a WebSocketPair")
    if getattr(ws, "_do", None) is not None or ws._send is not None:
        raise TypeError("this WebSocket was accepted already")
    tags = list(tags or [])
    if len(tags) > 10 or any(not isinstance(t, str) or len(t) > 256 for t in tags):
        raise TypeError("a WebSocket's tags are at most 10 strings of at most 256 characters")
    sockets_of(state).sync()
    _register(state, ws, tags, True)


def get_web_sockets(state, tag=None):
    socks = sockets_of(state)
    socks.sync()
    return [ws for ws in socks.by_id.values()
            if ws._do.get("hib") and ws._state != CLOSED and (tag is None or tag in ws._do["tags"])]


def get_tags(state, ws):
    do = getattr(ws, "_do", None)
    if do is None or not do.get("hib"):
        raise TypeError("getTags() takes a WebSocket accepted with ctx.acceptWebSocket()")
    return list(do["tags"])


def set_auto_response(state, pair=None):
    args = dict(sockets_of(state)._key(), request=None, response=None)
    if pair is not None:
        if not isinstance(pair, WebSocketRequestResponsePair):
            raise TypeError("setWebSocketAutoResponse() takes a WebSocketRequestResponsePair")
        args.update(request=pair.request, response=pair.response)
    _bind.call_sync(BINDING, "auto", args)


def auto_response_timestamp(state, ws):
    """When the supervisor last answered ws with the auto-response, as
    the JS Date Cloudflare returns (a Python Worker gets its proxy:
    getTime() is ms since the epoch), or None if it never did. Asked of
    the supervisor each time: the answers go while the object is not in
    memory, and this object may be a new one since (a hibernation).
    Cloudflare's is null for any WebSocket without one (a fresh pair's,
    another object's) and a TypeError for anything else."""
    if not isinstance(ws, WebSocket):
        raise TypeError("Failed to execute 'getWebSocketAutoResponseTimestamp' on "
                        "'DurableObjectState': parameter 1 is not of type 'WebSocket'.")
    do = getattr(ws, "_do", None)
    if do is None:
        return None  # never a Durable Object's socket: no auto-response went on it
    result, _ = _bind.call_sync(BINDING, "autots", dict(sockets_of(state)._key(), ws=do["id"]))
    at = (result or {}).get("at")
    if at is None:
        return None
    from _thaw_js.values import Date
    return Date(at)


# -- the socket's own (WebSocket.serializeAttachment ...) -------------------
def serialize_attachment(ws, value):
    do = getattr(ws, "_do", None)
    if do is None:
        raise TypeError("serializeAttachment() is for a Durable Object's WebSocket")
    text = wire.encode(value)
    text = text.decode() if isinstance(text, bytes) else text
    if len(text.encode()) > _MAX_ATTACHMENT:
        raise ValueError(f"serializeAttachment(): the value takes {len(text.encode())} bytes, "
                         f"over the limit of {_MAX_ATTACHMENT}; keep it in ctx.storage and "
                         f"attach its key")
    do["att"] = text
    _bind._transport.bind_call(BINDING, "attach", _bind._args_text({"ws": do["id"],
                                                                     "value": text}), None)


def deserialize_attachment(ws):
    do = getattr(ws, "_do", None)
    if do is None or do.get("att") is None:
        return None
    return wire.decode(do["att"].encode())


# -- the host's side --------------------------------------------------------
def _fields_close(payload):
    fields = _parse_fields(payload)
    code = int(fields[0]) if fields and fields[0].isdigit() else 1005
    reason = fields[1].decode("utf-8", "replace") if len(fields) > 1 else ""
    clean = len(fields) > 2 and fields[2] == b"1"
    return code, reason, clean


async def respond_101(inst, st, state, resp):
    """The object's fetch answered Response(None, status=101,
    web_socket=client): the 101 goes to the caller with the socket's id
    (its stub.fetch gives the worker a Response to return)."""
    from thaw_runtime import ipc
    server = resp._web_socket._peer
    if resp._web_socket._do_client is not None:
        sid = resp._web_socket._do_client  # another object's socket, passed on
    elif server is None:
        raise TypeError("a Durable Object's fetch returned a WebSocket it did not make: "
                        "return the client end of a WebSocketPair")
    elif server._do is None:
        # the standard API: server.accept() and listeners, in this host only
        await sockets_of(state).sync_async()
        sid = _register(state, server, [], False)
    else:
        sid = server._do["id"]
    if inst.streams.get(st.sid) is not st:
        return
    pairs = []
    for n, v in resp.headers._pairs:
        pairs += [n, v]
    inst._queue(ipc.frame(ipc.RESP_HEAD, st.sid, ipc.fields(
        "101", resp._reason or "", *pairs, "x-thaw-ws", sid)))
    inst._queue(ipc.frame(ipc.RESP_END, st.sid))
    inst.streams.pop(st.sid, None)


_fast = None  # _thaw_fast, once (the SDK imports this module outside an instance too)
_fast_set = None  # the instance ws_setup was given


def _fast_module():
    global _fast
    if _fast is None:
        try:
            import _thaw_fast
        except ImportError:  # the SDK outside thaw
            _fast = False
        else:
            _fast = _thaw_fast if hasattr(_thaw_fast, "WsSend") else False
    return _fast or None


def _answer(inst, st, status):
    if inst.streams.get(st.sid) is not st:
        return
    inst._queue(_fast_module().response(st.sid, status, None, (), None, False, False))
    del inst.streams[st.sid]


# -- the C path (src/zygote/dows.c) ------------------------------------------
def setup_fast(inst):
    """ws_event's instance, at its first Durable Object call: from then on
    a message event whose object is in memory and free takes the C path
    (instance.py asks it first), which does what deliver() does."""
    global _fast_set
    fast = _fast_module()
    if _fast_set is inst or fast is None:
        return
    from thaw_runtime import output
    from . import _durable_host
    from ._durable_storage import DurableObjectStorage
    from ._durable_gate import current
    import sys
    fast.ws_setup(inst, _durable_host._objects, _durable_host.DurableObjectState,
                  DurableObjectStorage, output.request_id, fast_slow, sys.modules[__name__],
                  current)
    _fast_set = inst


def fast_slow(relay, live, sid, state, ws, outcome, value, pending):
    """The C path's event when it does not end in its first step: the
    handler waits for something (outcome 0: value is its coroutine,
    pending what it awaits), or returned with storage writes in flight or
    an awaitable (1), or raised (2: value). Returns the rest, a coroutine
    the C path starts at once and the object's own task (relay.task) runs
    on, in the event's context, as deliver() and _durable_host._run would
    have run it."""
    from thaw_runtime.instance import Stream
    inst = state._inst
    st = Stream(sid, None, False)
    inst.streams[sid] = st
    st.task = relay.task  # a CANCEL (the event's time limit) cancels it
    return fast_rest(inst, st, live, state, ws, outcome, value, pending)


async def fast_rest(inst, st, live, state, ws, outcome, value, pending):
    from . import _durable_host
    try:
        try:
            try:
                if outcome == 0:
                    await _resume(value, pending)
                elif outcome == 2:
                    raise value
                elif value is not None:
                    await _awaited(value)
                await output_gate(state)
            except Exception as exc:
                _raised(inst, ws, exc)
            _answer(inst, st, 200)
        finally:
            try:
                await _durable_host._settle(live)
            finally:
                live.gate.release()
    except BaseException as exc:
        import asyncio
        if isinstance(exc, asyncio.CancelledError):
            raise
        from thaw_runtime.log import log_exception
        log_exception(inst.worker.name, exc)
        _durable_host._reply(inst, st, 500, _durable_host._error(exc))


@types.coroutine
def _resume(coro, pending):
    """Goes on with coro, whose first step (the C path's) yielded pending."""
    while True:
        try:
            arg = yield pending
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            step, arg = coro.throw, exc
        else:
            step = coro.send
        try:
            pending = step(arg)
        except StopIteration as stop:
            return stop.value


def _raised(inst, ws, exc):
    """the object raised: this socket closes with 1011, its others stay"""
    from thaw_runtime.log import log_exception
    log_exception(inst.worker.name, exc)
    if ws._state == OPEN:
        ws._close_with(1011, f"the Durable Object raised {type(exc).__name__}"
                       .encode()[:123])


async def deliver(inst, st, obj, state, meta, request):
    """One event of a socket (`:do-ws-event` text, binary or close) for the
    object, which _durable_host made (again, after a hibernation) and
    holds the lock of. A message (the common case, and the echo's round
    trip issue 18 measures) takes the shortest way: its socket known, its
    handler called, the answer queued."""
    sid = meta.get(":do-ws", "")
    kind = meta.get(":do-ws-event", "")
    data = meta.get(":do-ws-data")  # a DO_WS frame's message (src/zygote/dows.c's meta)
    payload = data.encode("latin-1") if data is not None else await request.bytes()
    socks = sockets_of(state)
    ws = socks.by_id.get(sid)
    if ws is None and meta.get(":do-ws-hib") == "1":
        await socks.sync_async()
        ws = socks.by_id.get(sid)
    if ws is None:
        _answer(inst, st, 410)  # an accept()ed socket whose host went: 1011
        return
    if not ws._do.get("hib"):
        # the standard API: the socket's own events and listeners
        from thaw_runtime import ipc
        ftype = {"text": ipc.WS_TEXT, "binary": ipc.WS_BINARY}.get(kind, ipc.WS_CLOSE)
        ws._on_frame(ftype, payload)
        if kind == "close":
            socks.by_id.pop(sid, None)
        _answer(inst, st, 200)
        return
    try:
        if kind == "text" or kind == "binary":
            handler = getattr(obj, "webSocketMessage", None)
            if handler is None:
                raise TypeError(f"{type(obj).__name__} accepted a WebSocket with "
                                f"ctx.acceptWebSocket() but defines no webSocketMessage(self, "
                                f"ws, message)")
            result = handler(ws, payload.decode("utf-8") if kind == "text" else payload)
            if type(result) is CoroutineType:
                await result
            elif result is not None:
                await _awaited(result)
        else:
            await _closed(obj, ws, socks, sid, payload)
        await output_gate(state)  # the event is done once its writes are
    except Exception as exc:
        _raised(inst, ws, exc)
    _answer(inst, st, 200)


async def _awaited(result):
    import inspect
    if inspect.isawaitable(result):
        await result


async def _closed(obj, ws, socks, sid, payload):
    code, reason, clean = _fields_close(payload)
    ws._state = CLOSED
    socks.by_id.pop(sid, None)
    if code in (1002, 1007, 1009) and hasattr(obj, "webSocketError"):
        await _awaited(obj.webSocketError(ws, ConnectionError(
            f"the WebSocket failed with code {code}: {reason}")))
    handler = getattr(obj, "webSocketClose", None)
    if handler is not None:
        await _awaited(handler(ws, code, reason, clean))
