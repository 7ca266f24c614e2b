"""Calls from a worker to its bindings, which live in the supervisor
(src/bind/bind.h). Every binding object in `env` (KV, D1, assets) and
`workers.fetch` goes through `call()` or `call_stream()`; the instance plugs
in the transport that turns them into BIND_CALL frames.

Arguments and results travel as JSON; bytes (a KV value, a fetch body) as a
separate body so they are neither base64'd nor limited to one frame.
"""
import builtins
import json

_transport = None

# Error classes the supervisor may name that Python has as builtins; any
# other name becomes a JsException carrying that name (as Pyodide does for
# JavaScript errors).
_BUILTIN_ERRORS = frozenset((
    "TypeError", "ValueError", "KeyError", "PermissionError", "TimeoutError",
    "ConnectionError", "ConnectionRefusedError", "OSError", "RuntimeError",
))


class JsException(Exception):
    """An error from a binding that has no Python builtin equivalent, named
    as the Cloudflare runtime would name it (``e.name``: "Error",
    "RangeError", "D1_ERROR", ...). ``str(e)`` is "Name: message"."""

    def __init__(self, name, message):
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


def error_for(outcome, message):
    if outcome in _BUILTIN_ERRORS:
        return getattr(builtins, outcome)(message)
    return JsException(outcome, message)


def _set_transport(transport):
    global _transport
    _transport = transport


def _no_transport(binding):
    return RuntimeError(
        f"{binding} cannot be used here: bindings work while a request (or a "
        f"scheduled event) is handled, not at the top level of the worker, which "
        f"runs once at deploy time and is snapshotted. Move the call into the handler.")


def _args_text(args):
    if args is None:
        return b""
    try:
        return json.dumps(args, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"binding arguments must be JSON-serialisable: {exc}") from None


async def call(binding, op, args=None, body=None):
    """Performs one call; returns (result, body bytes or None)."""
    return await finish(start(binding, op, args, body))


def start(binding, op, args=None, body=None):
    """Sends one call now and returns it pending, for `finish()`: a call
    started at once keeps its place before the calls made after it, awaited
    or not (a Durable Object's storage write that is not awaited)."""
    if _transport is None:
        raise _no_transport(binding)
    return _transport.bind_call(binding, op, _args_text(args), body)


async def finish(pending):
    """The answer of a call start() sent: (result, body bytes or None)."""
    result = await pending.result()
    data = await pending.read_all() if pending.has_body else None
    return result, data


async def call_stream(binding, op, args=None, body=None):
    """Like call(), but the answer's body is an async iterator of chunks
    (``pending.chunks()``) that the caller must consume or ``cancel()``."""
    if _transport is None:
        raise _no_transport(binding)
    pending = _transport.bind_call(binding, op, _args_text(args), body)
    result = await pending.result()
    return result, pending


async def call_fd(binding, op, args=None):
    """A call whose reply carries a file descriptor (the connect binding's
    connected socket): returns (result, fd); the caller owns fd."""
    if _transport is None:
        raise _no_transport(binding)
    pending = _transport.bind_call(binding, op, _args_text(args), None)
    result = await pending.result()
    return result, pending.take_fd()


def call_sync(binding, op, args=None, timeout=None):
    """call_fd() for code that cannot await (a blocking socket's connect):
    blocks until the reply. From the main thread the instance reads its
    channel itself (instance.Instance.call_sync); from another thread the
    call goes through the event loop, which runs in the main thread."""
    if _transport is None:
        raise _no_transport(binding)
    import threading
    if threading.current_thread() is not threading.main_thread():
        import asyncio
        import concurrent.futures
        fut = asyncio.run_coroutine_threadsafe(call_fd(binding, op, args), _transport.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError("timed out") from None
    pending = _transport.bind_call(binding, op, _args_text(args), None)
    result = _transport.wait_sync(pending, timeout)
    return result, pending.take_fd()
