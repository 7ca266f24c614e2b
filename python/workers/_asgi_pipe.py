"""BodyPipe: carries response body chunks from an app (ASGI `send`, or a
WSGI thread) to the body iterator of the workers.Response the runtime
streams out, so bytes leave while the app is still producing them.

The writer waits while more than HIGH_WATER bytes are queued, so a fast
app cannot pile up a slow client's download in memory.
"""
import asyncio
from collections import deque

HIGH_WATER = 256 << 10
LOW_WATER = 64 << 10


class ClientDisconnected(OSError):
    """Raised by `put` once the response can no longer be delivered (the
    ASGI spec asks for an OSError when sending on a closed connection)."""


class BodyPipe:
    __slots__ = ("_chunks", "_size", "_done", "_error", "_closed", "_discard",
                 "_reader", "_writer")

    def __init__(self):
        self._chunks = deque()
        self._size = 0
        self._done = False       # the writer finished (normally or not)
        self._error = None       # ... with this exception
        self._closed = False     # the reader went away
        self._discard = False    # bodyless response (HEAD-like statuses)
        self._reader = None
        self._writer = None

    # -- writer side ---------------------------------------------------
    async def put(self, data):
        if self.write(data):
            await self.drain()

    def write(self, data):
        """put without the wait: True when the writer must now await
        drain() before writing more (over HIGH_WATER)."""
        if self._closed:
            raise ClientDisconnected("the client disconnected")
        if self._done:
            raise RuntimeError("response body sent after the response was complete")
        if data and not self._discard:
            self._chunks.append(data)
            self._size += len(data)
            _wake(self._reader)
        return self._size > HIGH_WATER

    async def drain(self):
        """Waits until the queue is back under HIGH_WATER; raises
        ClientDisconnected once nobody reads."""
        while self._size > HIGH_WATER and not self._closed:
            self._writer = asyncio.get_running_loop().create_future()
            await self._writer
        if self._closed:
            raise ClientDisconnected("the client disconnected")

    def finish(self, error=None):
        if self._done:
            return
        self._done = True
        self._error = error
        _wake(self._reader)

    def discard(self):
        """Drop everything written from now on (204/304 responses)."""
        self._discard = True
        self._chunks.clear()
        self._size = 0
        _wake(self._writer)

    # -- state -----------------------------------------------------------
    @property
    def done(self):
        return self._done

    @property
    def error(self):
        return self._error

    def whole(self):
        """The full body when the writer already finished cleanly, else None."""
        if not self._done or self._error is not None:
            return None
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._size = 0
        return data

    def close(self):
        """Reader side: nobody will read any more; wakes a waiting writer,
        whose `put` then raises ClientDisconnected."""
        self._closed = True
        self._chunks.clear()
        self._size = 0
        _wake(self._writer)

    # -- reader side -----------------------------------------------------
    async def stream(self, on_close=None):
        """Async iterator of the chunks; raises the writer's error, if any,
        so the runtime aborts the response. on_close(completed) runs when
        iteration stops, however it stops."""
        completed = False
        try:
            while True:
                if self._chunks:
                    chunk = self._chunks.popleft()
                    self._size -= len(chunk)
                    if self._size <= LOW_WATER:
                        _wake(self._writer)
                    yield chunk
                    continue
                if self._done:
                    if self._error is not None:
                        raise self._error
                    completed = True
                    return
                self._reader = asyncio.get_running_loop().create_future()
                await self._reader
        finally:
            self.close()
            if on_close is not None:
                on_close(completed)


def _wake(fut):
    if fut is not None and not fut.done():
        fut.set_result(None)
