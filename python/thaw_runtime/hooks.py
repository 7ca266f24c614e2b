"""Instance lifecycle hooks for SDK parts that need them (the ASGI adapter
runs lifespan startup/shutdown per instance).

`on_exit` coroutines run on the instance's loop when the supervisor closes
the instance (scale-down, a new version, shutdown), before the process
exits; each gets EXIT_TIMEOUT seconds at most."""
import asyncio

from . import ipc

EXIT_TIMEOUT = 5.0

_exit_hooks = []
_app_observer = None  # set by the instance (instance.py)
# the instance's event loop and the thread it runs in (instance.py): what
# asyncio.get_running_loop() returns there, without its getpid() call
loop = None
loop_thread = None


def on_exit(coro_fn):
    """Registers `async def fn()` to run when this instance exits."""
    _exit_hooks.append(coro_fn)
    return coro_fn


async def run_exit_hooks(log):
    hooks, _exit_hooks[:] = list(_exit_hooks), []
    for fn in reversed(hooks):
        try:
            await asyncio.wait_for(fn(), EXIT_TIMEOUT)
        except BaseException as exc:  # a failing hook must not stop the others
            log(exc)


def asgi_app_starting(app):
    """The ASGI adapter is about to run `app`'s lifespan startup for a
    request: the instance tells thaw, so later instances of this version
    start that app before their first request instead of during it."""
    if _app_observer is not None:
        _app_observer(app)


def warm_names(payload, module):
    """The template's reading of a WARM hint (ipc-proto.h): ("asgi", name)
    fields, as an instance sent them. It came from a process running
    worker code, so only names of `module`'s globals are kept."""
    try:
        f = [x.decode() for x in ipc.parse_fields(bytes(payload))]
    except (ipc.ProtocolError, UnicodeDecodeError):
        return []
    return [name for kind, name in zip(f[::2], f[1::2])
            if kind == "asgi" and name.isidentifier() and hasattr(module, name)]
