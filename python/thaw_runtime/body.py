"""A request body arriving from the supervisor in chunks; the handler reads
it whole or iterates it while it streams in."""
import asyncio
from collections import deque


class BodyAborted(ConnectionError):
    pass


class RequestBody:
    __slots__ = ("_loop", "_chunks", "_ended", "_aborted", "_waiter")

    def __init__(self, loop):
        self._loop = loop
        self._chunks = deque()
        self._ended = False
        self._aborted = False
        self._waiter = None

    def _wake(self):
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)
        self._waiter = None

    def feed(self, data):
        self._chunks.append(data)
        self._wake()

    def end(self):
        self._ended = True
        self._wake()

    def abort(self):
        self._aborted = True
        self._ended = True
        self._wake()

    async def _next(self):
        while not self._chunks:
            if self._aborted:
                raise BodyAborted("the client disconnected before sending the whole body")
            if self._ended:
                return None
            self._waiter = self._loop.create_future()
            await self._waiter
        return self._chunks.popleft()

    def __aiter__(self):
        return self

    async def __anext__(self):
        chunk = await self._next()
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def read(self):
        parts = []
        while True:
            chunk = await self._next()
            if chunk is None:
                return b"".join(parts)
            parts.append(chunk)
