"""The instance's side of binding calls (workers/_bind.py): BIND_CALL frames
out, BIND_REPLY/BIND_DATA/BIND_END frames back, matched by call id. A reply
may carry a file descriptor (a socket from the connect binding): it is
`pending.fd`, owned by whoever awaited the call.

An outbound WebSocket (src/bind/wsclient.c) is a call that stays open
after its head: its messages come as BIND_WS_* frames to the handler `pending.attach_ws`
set (the WebSocket's `_on_frame`, with the WS_* frame type), go out with
`pending.send_ws`, and its BIND_END is the socket's end."""
import json
import os
from collections import deque

from . import ipc
from workers._bind import error_for

_WS_TO_BIND = ipc.BIND_WS_TEXT - ipc.WS_TEXT


class PendingCall:
    """One call in flight: its result (a future), then, when the reply had a
    body, the body's chunks as they arrive."""

    __slots__ = ("_client", "id", "_head", "has_body", "_chunks", "_ended",
                 "_error", "_waiter", "_done", "fd", "_on_ws", "_on_ws_end", "_ws_early")

    def __init__(self, client, cid):
        self._client = client
        self.id = cid
        self._head = client.loop.create_future()
        self.has_body = False
        self._chunks = deque()
        self._ended = False
        self._error = None
        self._waiter = None
        self._done = False
        self.fd = None
        self._on_ws = None      # (WS_* type, payload) of an open WebSocket
        self._on_ws_end = None  # the socket is over (BIND_END, or thaw going)
        self._ws_early = None   # what came before attach_ws

    def take_fd(self):
        fd, self.fd = self.fd, None
        return fd

    async def result(self):
        try:
            return await self._head
        except BaseException:
            # the caller was cancelled: stop the work. (Cancelling the task
            # cancels the future it awaits, so _head is "done" here too.)
            if not self._head.done() or self._head.cancelled():
                self.cancel()
            raise

    # -- frames ---------------------------------------------------------
    def _on_reply(self, outcome, text, more):
        if self._head.done():
            return
        if outcome == "ok":
            try:
                value = json.loads(text) if text else None
            except ValueError:
                self._head.set_exception(RuntimeError("thaw: malformed binding reply"))
                self._finish()
                return
            self.has_body = more
            self._head.set_result(value)
            if not more:
                self._finish()
        else:
            self._head.set_exception(error_for(outcome, text))
            self._finish()

    def _on_data(self, data):
        self._chunks.append(data)
        self._wake()

    def _on_end(self, error):
        self._ended = True
        self._error = error
        self._finish()
        self._wake()
        self._ws_over()

    def _ws_over(self):
        end, self._on_ws_end, self._on_ws = self._on_ws_end, None, None
        if end is not None:
            end()

    def _ws_frame(self, ftype, payload):
        if self._on_ws is not None:
            self._on_ws(ftype, payload)
        elif self.has_body:
            # the head's awaiter has not run yet: the frames (a close
            # right behind the 101, say) wait for it
            if self._ws_early is None:
                self._ws_early = []
            self._ws_early.append((ftype, payload))

    def attach_ws(self, on_ws, on_end):
        """An open WebSocket's handlers: on_ws(WS_* type, payload) for each
        message and close, on_end() once the socket is over. What came
        before is delivered now."""
        early, self._ws_early = self._ws_early or [], None
        for ftype, payload in early:
            on_ws(ftype, payload)
        if self._ended:
            on_end()
            return
        self._on_ws, self._on_ws_end = on_ws, on_end

    def send_ws(self, ftype, payload):
        """A message (WS_TEXT / WS_BINARY) or close (WS_CLOSE) of an open
        WebSocket, to the supervisor."""
        if not self._done:
            self._client.send(ipc.frame(ftype + _WS_TO_BIND, self.id, payload))

    def _on_lost(self):
        """The supervisor went away (thaw is stopping)."""
        exc = ConnectionError("thaw's supervisor closed the instance during a binding call")
        if not self._head.done():
            self._head.set_exception(exc)
        self._ended = True
        self._error = self._error or str(exc)
        self._wake()
        self._ws_over()

    def _finish(self):
        if not self._done:
            self._done = True
            self._client.calls.pop(self.id, None)

    def _wake(self):
        w = self._waiter
        self._waiter = None
        if w is not None and not w.done():
            w.set_result(None)

    # -- body -----------------------------------------------------------
    async def next_chunk(self):
        """The next chunk of the reply's body, or None at its end."""
        while not self._chunks:
            if self._ended:
                if self._error:
                    raise error_for("Error", self._error)
                return None
            self._waiter = self._client.loop.create_future()
            try:
                await self._waiter
            except BaseException:
                self.cancel()
                raise
        return self._chunks.popleft()

    async def chunks(self):
        while True:
            chunk = await self.next_chunk()
            if chunk is None:
                return
            yield chunk

    async def read_all(self):
        parts = []
        async for chunk in self.chunks():
            parts.append(chunk)
        return b"".join(parts)

    def cancel(self):
        """Nobody wants the rest: the supervisor stops the work."""
        if not self._done:
            self._finish()
            self._ended = True
            self._client.send(ipc.frame(ipc.BIND_CANCEL, self.id))


class BindClient:
    def __init__(self, loop, send, wait_sync=None):
        self.loop = loop
        self.send = send
        self.calls = {}
        self.next_id = 1
        # wait_sync(pending, timeout) -> result: blocks until the reply
        # (instance.Instance.call_sync); for blocking sockets in worker code
        self.wait_sync = wait_sync

    def bind_call(self, binding, op, args, body):
        cid = self.next_id
        self.next_id = (self.next_id % 0xFFFFFFFF) + 1
        pending = PendingCall(self, cid)
        self.calls[cid] = pending
        if body is not None and not isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError("a binding body must be bytes")
        head = ipc.fields(binding, op, args)
        if not body:
            self.send(ipc.frame(ipc.BIND_CALL, cid, head))
            return pending
        self.send(ipc.frame(ipc.BIND_CALL, cid, head, ipc.F_MORE))
        view = memoryview(body)
        for i in range(0, len(view), ipc.CHUNK):
            self.send(ipc.frame(ipc.BIND_DATA, cid, bytes(view[i:i + ipc.CHUNK])))
        self.send(ipc.frame(ipc.BIND_END, cid))
        return pending

    def on_frame(self, ftype, flags, cid, payload, fd=None):
        pending = self.calls.get(cid)
        if pending is None or (fd is not None and ftype != ipc.BIND_REPLY):
            if fd is not None:
                os.close(fd)  # a connect we gave up on (timeout, cancel)
            return  # a call we cancelled
        if ftype == ipc.BIND_REPLY:
            if fd is not None:
                if pending._head.done():
                    os.close(fd)
                else:
                    pending.fd = fd
            f = ipc.parse_fields(payload)
            outcome = f[0].decode() if f else "Error"
            text = f[1].decode("utf-8", "replace") if len(f) > 1 else ""
            pending._on_reply(outcome, text, bool(flags & ipc.F_MORE))
        elif ftype == ipc.BIND_DATA:
            pending._on_data(payload)
        elif ftype == ipc.BIND_END:
            f = ipc.parse_fields(payload)
            pending._on_end(f[0].decode("utf-8", "replace") if f else None)
        elif ipc.BIND_WS_TEXT <= ftype <= ipc.BIND_WS_CLOSE:
            pending._ws_frame(ftype - _WS_TO_BIND, payload)

    def lost(self):
        for pending in list(self.calls.values()):
            pending._on_lost()
        self.calls.clear()
