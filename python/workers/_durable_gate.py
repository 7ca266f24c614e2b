"""The output gate's hold on an object's outgoing messages, as Cloudflare's
(docs/bindings/durable-objects.md, "Writes not awaited, and the output
gate"): while a storage write of the object is on its way, what the object
sends out (a WebSocket message, an outbound `fetch()`, a call to another
object) waits until every write it issued before is committed; if one of
them fails, what waits is never sent (the socket closes with 1011, the
fetch raises) and every later message is dropped too: the object is made
again from its storage at its next event.

One gate per object (its `ctx.storage` makes it). The storage counts the
writes it issues (`write()`) and tells the gate when a call carrying
them is committed (`sent()`, then `done()`) or failed (`fail()`). A
message checks `shut` alone while nothing is on its way, so the common
case (no write pending) costs one attribute read.

`current` names the gate of the object whose event runs in this task
(set by workers/_durable_host.py), for the messages that are not the
object's own sockets': `workers.fetch` and stub calls.
"""
import contextvars
from collections import deque

from ._bind import JsException

current = contextvars.ContextVar("thaw_do_output_gate", default=None)


class OutputGate:
    __slots__ = ("shut", "issued", "confirmed", "_calls", "_held", "broken")

    def __init__(self):
        self.shut = False     # messages wait: a write pending, or held ones, or broken
        self.issued = 0       # writes issued (queued or sent)
        self.confirmed = 0    # every write up to this one is committed
        self._calls = deque()  # [last write, committed] of each call on its way, in order
        self._held = deque()   # (writes it waits for, release, drop)
        self.broken = None     # the first write's failure: nothing goes out any more

    def write(self):
        """One more write: the messages from now on wait for it."""
        self.issued += 1
        self.shut = True

    def sent(self):
        """The writes issued so far went out (the last call carries the
        last of them): the token for done()."""
        call = [self.issued, False]
        self._calls.append(call)
        return call

    def done(self, call):
        """A call of sent() is committed: what waited only for writes up
        to the last call committed in order goes out, in order."""
        call[1] = True
        calls = self._calls
        while calls and calls[0][1]:
            self.confirmed = calls.popleft()[0]
        if self.broken is not None:
            return
        held = self._held
        while held and held[0][0] <= self.confirmed:
            _, release, _ = held.popleft()
            try:
                release()
            except Exception:  # one message that cannot go (its socket gone) stops no other
                import traceback
                traceback.print_exc()
        if not held and self.confirmed == self.issued:
            self.shut = False

    def fail(self, exc):
        """A write failed: what waits is dropped, as is whatever comes later."""
        if self.broken is None:
            self.broken = exc
        self.shut = True
        held = self._held
        while held:
            _, _, drop = held.popleft()
            drop(exc)

    def hold(self, release, drop):
        """A message that must wait: release() sends it once the writes
        issued before it are committed; drop(exc) if one failed."""
        if self.broken is not None:
            drop(self.broken)
        elif not self._held and self.confirmed == self.issued:
            release()  # nothing it waits for (shut was stale)
        else:
            self._held.append((self.issued, release, drop))


async def writes_before():
    """For an outbound fetch or stub call: returns once the writes the
    object (whose event runs in this task, if any) issued so far are
    committed; raises if one of them failed (the call is never made)."""
    gate = current.get()
    if gate is None or not gate.shut:
        return
    import asyncio
    fut = asyncio.get_running_loop().create_future()

    def release():
        if not fut.done():
            fut.set_result(None)

    def drop(exc):
        if not fut.done():
            fut.set_exception(WriteFailed(exc, "this outgoing call is not made"))

    gate.hold(release, drop)
    await fut


class WriteFailed(JsException):
    """A storage write of the object failed: what waited for it (the
    event's answer, an outgoing call) is not sent."""

    def __init__(self, cause, what="its answer is not sent"):
        super().__init__("Error", "a storage write of this Durable Object failed, so "
                         f"{what} (the output gate): {cause}")
