"""Instance lifecycle hooks for SDK parts that need them (the ASGI adapter
runs lifespan startup/shutdown per instance).

`on_exit` coroutines run on the instance's loop when the supervisor closes
the instance (scale-down, a new version, shutdown), before the process
exits; each gets EXIT_TIMEOUT seconds at most."""
import asyncio

EXIT_TIMEOUT = 5.0

_exit_hooks = []


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
