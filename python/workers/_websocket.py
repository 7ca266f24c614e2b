"""WebSocketPair and WebSocket, as Cloudflare's Workers runtime has them
(docs/websockets.md).

A worker makes a pair, keeps the server end and returns the client end:

    client, server = WebSocketPair.new().object_values()
    server.accept()
    server.addEventListener("message", create_proxy(lambda e: server.send(e.data)))
    return Response(None, status=101, web_socket=client)

The supervisor holds the client's connection and speaks RFC 6455 there
(src/ws/); this side sees whole messages. The runtime attaches the server
end to the request's stream when the 101 goes out (_attach); what the
worker sends before that waits, and what the client sends before
accept() waits for it. Besides event listeners, `async for message in
server` yields each message (str or bytes) until the socket closes.

The same class is the outbound socket (docs/websockets.md, "Outbound"):
`await fetch(url, headers={"Upgrade": "websocket"})` answers 101 with
`resp.web_socket` (accept() it, then use it as above), and
`WebSocket.new(url)` / `WebSocket(url)` connects by itself (CONNECTING,
then an `open` event, or `error` and `close` 1006 when it cannot). The
supervisor makes the connection under the egress policy
(src/bind/wsclient.c); messages travel on the binding call (`_outbound`).
"""
from collections import deque

from ._bind import JsException

CONNECTING, OPEN, CLOSING, CLOSED = 0, 1, 2, 3

# frame types of src/ipc/ipc-proto.h (thaw_runtime.ipc has them too; the
# SDK does not import the runtime)
_WS_TEXT, _WS_BINARY, _WS_CLOSE = 20, 21, 22
_MAX_MESSAGE = 1024 * 1024  # one frame of the channel (ws_max_message's ceiling)
_END = object()


class _Event:
    """The event handed to listeners: `event.type`, and per kind `data`
    (message), `code`, `reason`, `wasClean` (close), `error`, `message`
    (error)."""

    def __init__(self, type, **fields):
        self.type = type
        self.__dict__.update(fields)

    def __repr__(self):
        return f"<{type(self).__name__} {self.type}>"


class MessageEvent(_Event):
    pass


class CloseEvent(_Event):
    @property
    def was_clean(self):
        return self.wasClean


class ErrorEvent(_Event):
    pass


def _close_code(code):
    if code is None:
        return 0  # a close frame without a code (the client sees 1005)
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"close code must be an int, not {type(code).__name__}")
    if code != 1000 and not 3000 <= code <= 4999:
        raise JsException("InvalidAccessError",
                          f"Invalid WebSocket close code: {code} (use 1000, or 3000-4999)")
    return code


def _field(b):
    return len(b).to_bytes(4, "little") + b


_BINDING = "__websocket"


class WebSocket:
    """One end of a WebSocketPair (only the server end, the one the worker
    keeps, talks: the client end goes back in the 101 response), or a
    socket to a server: WebSocket(url, protocols=None), WebSocket.new(url)."""

    CONNECTING, OPEN, CLOSING, CLOSED = CONNECTING, OPEN, CLOSING, CLOSED

    def __init__(self, url=None, protocols=None):
        self._peer = None
        self._pending = None       # an outbound socket's binding call
        self.url = None
        self.protocol = ""
        self._listeners = {}
        self._accepted = False
        self._state = OPEN
        self._send = None          # the runtime's: (frame type, payload) -> None
        self._on_failure = None    # the runtime's: a listener raised
        self._out = []             # frames sent before the socket was attached
        self._early = []           # events that came before accept()
        self._queue = deque()      # messages for `async for`
        self._waiter = None
        self._iterating = False
        self.onmessage = self.onclose = self.onerror = self.onopen = None
        if url is not None:
            self._connect(url, protocols)

    @classmethod
    def new(cls, url, protocols=None):
        """`js.WebSocket.new(url)`: the JavaScript constructor's spelling."""
        return cls(url, protocols)

    # -- the worker's API --------------------------------------------------
    @property
    def readyState(self):
        return self._state

    ready_state = readyState

    def accept(self, options=None):
        """Starts delivering this socket's events (Cloudflare's accept())."""
        if self._accepted:
            return
        self._accepted = True
        if not self._early:
            return
        # what came before is delivered from the loop, as Cloudflare's
        # runtime delivers events: after the code that called accept() has
        # added its listeners
        import asyncio
        try:
            asyncio.get_running_loop().call_soon(self._drain_early)
        except RuntimeError:  # no loop (the SDK's own tests): now
            self._drain_early()

    def _drain_early(self):
        while self._early:
            self._dispatch(self._early.pop(0))

    def addEventListener(self, type, listener, options=None):
        lst = self._listeners.setdefault(str(type), [])
        if listener not in lst:
            lst.append(listener)

    def removeEventListener(self, type, listener, options=None):
        lst = self._listeners.get(str(type), [])
        if listener in lst:
            lst.remove(listener)

    add_event_listener = addEventListener
    remove_event_listener = removeEventListener

    def send(self, message):
        """A str goes as a text message, bytes-like as binary."""
        if not self._accepted:
            raise JsException("TypeError", "You must call accept() on this WebSocket before "
                                           "sending messages.")
        if self._state == CONNECTING:
            raise JsException("InvalidStateError", "Can't call WebSocket send() before "
                                                   "the open event (readyState CONNECTING).")
        if self._state != OPEN:
            raise JsException("TypeError", "Can't call WebSocket send() after close().")
        if isinstance(message, str):
            ftype, data = _WS_TEXT, message.encode("utf-8")
        else:
            try:
                data = bytes(message)
            except TypeError:
                raise TypeError(f"WebSocket.send() takes str or bytes, not "
                                f"{type(message).__name__}") from None
            ftype = _WS_BINARY
        if len(data) > _MAX_MESSAGE:
            raise ValueError(f"a WebSocket message of {len(data)} bytes is over thaw's "
                             f"limit of {_MAX_MESSAGE} bytes")
        self._emit(ftype, data)

    def close(self, code=None, reason=None):
        """Sends a close frame (code 1000 or 3000-4999, a reason of at most
        123 bytes); the `close` event comes when the client answers."""
        code = _close_code(code)
        raw = (reason or "").encode("utf-8")
        if len(raw) > 123:
            raise JsException("SyntaxError", "The WebSocket close reason is over 123 bytes.")
        self._close_with(code, raw)

    # -- async iteration -----------------------------------------------------
    def __aiter__(self):
        self._iterating = True
        return self

    async def __anext__(self):
        while not self._queue:
            if self._state == CLOSED:
                raise StopAsyncIteration
            import asyncio  # not at import time: the SDK stays light (test_sdk.py)
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._queue.popleft()
        if item is _END:
            self._queue.appendleft(_END)
            raise StopAsyncIteration
        return item

    async def receive(self):
        """The next message, or None once the socket is closed."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            return None

    # -- the runtime's side ----------------------------------------------------
    def _emit(self, ftype, payload):
        if self._send is not None:
            self._send(ftype, payload)
        else:
            self._out.append((ftype, payload))

    def _close_with(self, code, raw_reason):
        if self._state in (CLOSING, CLOSED):
            return
        if self._state == CONNECTING:
            # close() before the open event: the connection is given up
            # (its task sees CLOSED), as a browser's WebSocket does
            self._closed(1006, "", False)
            return
        self._state = CLOSING
        self._emit(_WS_CLOSE, _field(str(code).encode()) + _field(raw_reason))

    def _attach(self, send, on_failure):
        """The 101 went out on a stream: frames go there from now on."""
        self._send = send
        self._on_failure = on_failure
        out, self._out = self._out, []
        for ftype, payload in out:
            send(ftype, payload)

    def _on_frame(self, ftype, payload):
        """A WS_* frame from the supervisor."""
        if ftype == _WS_TEXT:
            self._arrive(MessageEvent("message", data=bytes(payload).decode("utf-8")))
        elif ftype == _WS_BINARY:
            self._arrive(MessageEvent("message", data=bytes(payload)))
        elif ftype == _WS_CLOSE:
            fields = _parse_fields(payload)
            code = int(fields[0]) if fields and fields[0].isdigit() else 1005
            reason = fields[1].decode("utf-8", "replace") if len(fields) > 1 else ""
            clean = len(fields) > 2 and fields[2] == b"1"
            self._closed(code, reason, clean)

    def _gone(self):
        """The stream ended (the client's connection is gone, or the close
        handshake is over): a close event if none came."""
        self._closed(1006, "", False)
        self._send = None

    def _closed(self, code, reason, clean):
        if self._state == CLOSED:
            return
        self._state = CLOSED
        self._arrive(CloseEvent("close", code=code, reason=reason, wasClean=clean))

    def _arrive(self, event):
        if not self._accepted or self._early:  # (behind those still waiting)
            self._early.append(event)
            return
        self._dispatch(event)

    def _dispatch(self, event):
        if event.type == "message" and (self._iterating or not self._has_listener("message")):
            self._queue.append(event.data)
        elif event.type == "close":
            self._queue.append(_END)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        handlers = list(self._listeners.get(event.type, ()))
        attr = getattr(self, "on" + event.type, None)
        if attr is not None:
            handlers.append(attr)
        for fn in handlers:
            try:
                result = fn(event)
            except Exception as exc:
                self._listener_failed(exc)
                continue
            if hasattr(result, "__await__"):  # an async listener: a task of its own
                import asyncio
                task = asyncio.ensure_future(result)
                task.add_done_callback(self._listener_done)

    def _has_listener(self, type):
        return bool(self._listeners.get(type)) or getattr(self, "on" + type, None) is not None

    def _listener_done(self, task):
        if not task.cancelled() and task.exception() is not None:
            self._listener_failed(task.exception())

    def _listener_failed(self, exc):
        """A listener raised: logged with its traceback, and the socket
        closes with 1011 (internal error), as Cloudflare's does."""
        if self._on_failure is not None:
            self._on_failure(exc)
        self._close_with(1011, f"the worker raised {type(exc).__name__}".encode()[:123])


    # -- outbound ------------------------------------------------------------
    def _connect(self, url, protocols):
        """WebSocket(url): connects in a task; `open`, or `error` then
        `close` (1006) when the connection or its handshake fails."""
        import asyncio
        from . import _bind
        if _bind._transport is None:
            raise RuntimeError(
                "WebSocket(url) cannot be used here: outbound connections are made while a "
                "request (or a scheduled event) is handled, not at the top level of the "
                "worker. Move it into the handler.")
        if hasattr(url, "href"):
            url = url.href
        if not isinstance(url, str):
            raise TypeError(f"WebSocket() takes a URL string, not {type(url).__name__}")
        if isinstance(protocols, str):
            protocols = [protocols]
        headers = [["Upgrade", "websocket"]]
        if protocols:
            headers.append(["Sec-WebSocket-Protocol", ", ".join(str(p) for p in protocols)])
        self.url = url
        self._state = CONNECTING
        self._accepted = True  # the constructor's socket needs no accept()
        asyncio.get_running_loop().create_task(self._connecting(url, headers))

    async def _connecting(self, url, headers):
        try:
            head, pending = await _open(url, headers)
        except Exception as exc:
            self._connect_failed(exc)
            return
        if head["status"] != 101:
            pending.cancel()
            self._connect_failed(ConnectionError(
                f"the server at {url} refused the WebSocket upgrade: it answered "
                f"{head['status']} {head.get('statusText') or ''}".rstrip()))
            return
        if self._state == CLOSED:  # close() while connecting
            pending.cancel()
            return
        self._outbound(pending, head)
        self._state = OPEN
        self._arrive(_Event("open"))

    def _connect_failed(self, exc):
        if self._state == CLOSED:
            return
        self._arrive(ErrorEvent("error", error=exc, message=str(exc)))
        self._closed(1006, "", False)

    def _outbound(self, pending, head):
        """The 101 came: messages travel on the binding call from now on."""
        self._pending = pending
        self.protocol = dict(map(tuple, head["headers"])).get("sec-websocket-protocol", "")
        self._attach(pending.send_ws, _log_failure)
        pending.attach_ws(self._on_frame, self._gone)

    # -- a Durable Object's socket (workers/_durable_ws.py) -----------------
    _do = None       # its record there: id, tags, attachment, hibernatable
    _do_client = None  # the client end a stub.fetch() returned: the object's socket id

    def serializeAttachment(self, value):
        """Keeps value (structured clone, at most 2048 bytes) with the
        socket, in the supervisor: it survives the object's hibernation."""
        from ._durable_ws import serialize_attachment
        serialize_attachment(self, value)

    def deserializeAttachment(self):
        from ._durable_ws import deserialize_attachment
        return deserialize_attachment(self)

    serialize_attachment = serializeAttachment
    deserialize_attachment = deserializeAttachment


def _join(a, b):
    """Each message of one socket is sent on the other, and a close closes
    the other: a worker that returns fetch()'s 101 (`return await
    fetch(url, headers=request.headers)`) proxies its client's socket to
    the server's, as Cloudflare's runtime does."""
    def forward(to):
        def on_message(event):
            if to._state == OPEN:
                to.send(event.data)

        def on_close(event):
            # 1005 (no code), 1006 and 1015 never go on the wire
            code = 0 if event.code in (1005, 1006, 1015) else event.code
            to._close_with(code, event.reason.encode("utf-8")[:123])
        return on_message, on_close
    for x, y in ((a, b), (b, a)):
        on_message, on_close = forward(y)
        x.addEventListener("message", on_message)
        x.addEventListener("close", on_close)
    a.accept()
    b.accept()


def _log_failure(exc):
    import traceback
    traceback.print_exception(exc)


async def _open(url, headers):
    """The upgrade, made by the supervisor: (head, pending call)."""
    from . import _bind
    return await _bind.call_stream(_BINDING, "connect", {"url": url, "headers": headers})


async def _fetch_upgrade(url, headers):
    """fetch() with "Upgrade: websocket": a Response, status 101 with its
    `web_socket` (accept() it), or the server's ordinary answer."""
    from ._fetch import _FetchBody
    from ._headers import Headers
    from ._response import Response
    head, pending = await _open(url, headers)
    resp = Response.__new__(Response)
    resp.status = head["status"]
    resp._reason = head.get("statusText") or None
    resp.headers = Headers._thaw_trusted([tuple(p) for p in head["headers"]])
    resp.url = head["url"]
    resp.redirected = False
    resp._used = False
    resp._payload = None
    if resp.status == 101:
        ws = WebSocket()
        ws._outbound(pending, head)
        resp._web_socket = ws
    elif resp.status in (204, 205, 304):
        pending.cancel()
    else:
        resp._payload = _FetchBody(pending)
    return resp


def _parse_fields(payload):
    out, off, n = [], 0, len(payload)
    while off + 4 <= n:
        ln = int.from_bytes(payload[off:off + 4], "little")
        off += 4
        out.append(bytes(payload[off:off + ln]))
        off += ln
    return out


class WebSocketPair:
    """Two connected WebSockets, (client, server): `WebSocketPair.new()`
    or `WebSocketPair()`, taken apart by iteration, `object_values()`,
    `Object.values(pair)` or `pair[0]`, `pair[1]`."""

    def __init__(self):
        client, server = WebSocket(), WebSocket()
        client._peer, server._peer = server, client
        self._ends = (client, server)

    @classmethod
    def new(cls):
        return cls()

    def __iter__(self):
        return iter(self._ends)

    def __len__(self):
        return 2

    def __getitem__(self, key):
        if key in (0, "0"):
            return self._ends[0]
        if key in (1, "1"):
            return self._ends[1]
        raise KeyError(key)

    def object_values(self):
        return list(self._ends)

    def object_keys(self):
        return ["0", "1"]

    def object_entries(self):
        return [["0", self._ends[0]], ["1", self._ends[1]]]

    # Object.values(pair) and friends (js.Object) call these
    def values(self):
        return list(self._ends)

    def keys(self):
        return ["0", "1"]

    def items(self):
        return [("0", self._ends[0]), ("1", self._ends[1])]

    def __repr__(self):
        return "<WebSocketPair>"
