"""create_proxy, create_once_callable, destroy_proxies and run_sync.

In Pyodide a Python callable handed to JavaScript is wrapped in a PyProxy
whose lifetime JS cannot see; these calls manage it. thaw has no JS heap:
the proxy is a thin wrapper that calls the object, and destroy() only
stops it from being called again, so code that manages its proxies as
Cloudflare's docs say runs unchanged."""
from workers._bind import JsException

from ._values import JsProxy


class JsDoubleProxy(JsProxy):
    """What create_proxy returns: calls (and attributes) reach the object
    until destroy()."""

    __slots__ = ("_obj", "_destroyed", "_once")
    typeof = "function"

    def __init__(self, obj, once=False):
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_destroyed", False)
        object.__setattr__(self, "_once", once)

    def _alive(self):
        if self._destroyed:
            if self._once:
                raise JsException("Error", "This function can only be called once")
            raise JsException("Error", "Object has already been destroyed")
        return self._obj

    def __call__(self, *args, **kwargs):
        obj = self._alive()
        if self._once:
            object.__setattr__(self, "_destroyed", True)
        return obj(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._alive(), name)

    def unwrap(self):
        return self._alive()

    def destroy(self):
        object.__setattr__(self, "_destroyed", True)

    def __repr__(self):
        state = "destroyed" if self._destroyed else repr(self._obj)
        return f"<JsDoubleProxy {state}>"


def create_proxy(obj, /, *, capture_this=False, roundtrip=True):
    """A proxy of obj that lives until its destroy()."""
    if capture_this:
        raise NotImplementedError("create_proxy(capture_this=True) needs a JavaScript "
                                  "`this`, which thaw (native Python) does not have")
    return JsDoubleProxy(obj)


def create_once_callable(obj, /, *, _may_syncify=False):
    """A proxy of the callable obj that can be called once, then is destroyed."""
    if not callable(obj):
        raise TypeError(f"create_once_callable: {type(obj).__name__} is not callable")
    return JsDoubleProxy(obj, once=True)


def destroy_proxies(pyproxies, /):
    """Destroys each proxy of the list (as Pyodide's `pyproxies=` lists)."""
    for p in pyproxies:
        destroy = getattr(p, "destroy", None)
        if destroy is not None:
            destroy()


def run_sync(x, /):
    """The result of the awaitable x, blocking until it is done.

    Pyodide blocks with JavaScript Promise Integration (stack switching).
    thaw runs native CPython on one asyncio loop per instance, which cannot
    be re-entered: inside a handler, await x instead. From a thread of the
    worker's own (asyncio.to_thread: sync code calling async code), x runs
    on the instance's loop, where its binding calls go, and the thread
    waits; with no instance (a script), x runs on a loop of its own."""
    import asyncio
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        if asyncio.iscoroutine(x):
            x.close()  # never awaited: no "was never awaited" warning on top
        raise RuntimeError(
            "run_sync() cannot block inside a running handler in thaw: Pyodide does it "
            "with JavaScript stack switching (JSPI), and thaw runs native Python on "
            "asyncio. Write `await x` instead (the handler is async), or call "
            "run_sync from a thread (asyncio.to_thread).")

    async def wait():
        return await x
    from workers import _bind
    loop = getattr(_bind._transport, "loop", None)  # the instance's, when serving
    if loop is not None and loop.is_running():
        return asyncio.run_coroutine_threadsafe(wait(), loop).result()
    return asyncio.run(wait())
