"""setTimeout / setInterval and their clear functions, on the instance's
asyncio loop. A callback that returns a coroutine (an `async def`) has it
run as a task, as a JS callback's promise would."""
import itertools

_ids = itertools.count(1)
_handles = {}


def _loop(what):
    import asyncio  # not at import: every worker process preloads `js`
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            f"{what}() cannot be used here: timers run while a request (or a scheduled "
            f"event) is handled, not at the top level of the worker, which runs once at "
            f"deploy time and is snapshotted. Move the call into the handler.") from None


def _run(loop, fn, args):
    result = fn(*args)
    if hasattr(result, "__await__"):  # an async def callback
        loop.create_task(_await(result))


async def _await(x):
    return await x


def _delay(ms):
    try:
        ms = float(ms or 0)
    except (TypeError, ValueError):
        ms = 0.0
    return max(ms, 0.0) / 1000.0


def setTimeout(callback, delay=0, *args):
    """Calls callback(*args) after delay ms; returns the timer's id."""
    loop = _loop("setTimeout")
    tid = next(_ids)

    def fire():
        _handles.pop(tid, None)
        _run(loop, callback, args)
    _handles[tid] = loop.call_later(_delay(delay), fire)
    return tid


def setInterval(callback, delay=0, *args):
    """Calls callback(*args) every delay ms until clearInterval(id)."""
    loop = _loop("setInterval")
    tid = next(_ids)
    every = _delay(delay)

    def fire():
        _handles[tid] = loop.call_later(every, fire)
        _run(loop, callback, args)
    _handles[tid] = loop.call_later(every, fire)
    return tid


def clearTimeout(tid=None):
    handle = _handles.pop(tid, None)
    if handle is not None:
        handle.cancel()


clearInterval = clearTimeout
