"""ASGI lifespan, once per app per instance.

An instance is a fork of the template, which never serves requests, so
module state here starts empty in every instance: startup runs lazily on
the first asgi.fetch of an app in this process, and shutdown is registered
as an instance exit hook. Apps that do not speak lifespan (they raise on the
unknown scope type, or return without answering) are served without it.
"""
import asyncio

from thaw_runtime import hooks
from thaw_runtime.log import log_exception, log_lines

from ._asgi_scope import ASGI_VERSIONS

TAG = "asgi"

# id(app) -> Lifespan; the Lifespan keeps the app alive, so ids stay unique.
_by_app = {}
# id(app) -> the request scopes' lifespan state (None without lifespan),
# once its startup completed: what ready() answers, in one lookup
_ready = {}


class StartupFailed(Exception):
    """The app answered lifespan.startup.failed: it cannot serve requests."""


class Lifespan:
    def __init__(self, app, env):
        loop = asyncio.get_running_loop()
        self.app = app
        self.state = {}
        self.supported = True
        self.startup_sent = False
        self.started = loop.create_future()          # True, or StartupFailed
        self.shutdown_requested = loop.create_future()
        self.shutdown_done = loop.create_future()
        scope = {"type": "lifespan", "asgi": dict(ASGI_VERSIONS),
                 "state": self.state, "env": env}
        self.task = loop.create_task(self._run(scope))
        self.started.add_done_callback(self._started)

    def _started(self, fut):
        if not fut.cancelled() and fut.exception() is None:
            _ready[id(self.app)] = self.state if self.supported else None

    async def _run(self, scope):
        try:
            await self.app(scope, self._receive, self._send)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            if not self.started.done() and not self.startup_sent:
                # apps without lifespan support raise on the scope type
                # before they ever call receive(): serve them without it
                self.supported = False
            elif not self.started.done():
                # it read lifespan.startup, then broke: a failed startup
                log_exception(TAG, exc)
                self.started.set_exception(StartupFailed(f"{type(exc).__name__}: {exc}"))
            elif isinstance(self.started.exception(), StartupFailed):
                pass  # the failure message (with its traceback) is logged
            else:
                log_exception(TAG, exc)
        finally:
            if not self.started.done():
                self.supported = False
                self.started.set_result(False)
            _resolve(self.shutdown_done)

    async def _receive(self):
        if not self.startup_sent:
            self.startup_sent = True
            return {"type": "lifespan.startup"}
        await self.shutdown_requested
        return {"type": "lifespan.shutdown"}

    async def _send(self, message):
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            _resolve(self.started, True)
        elif kind == "lifespan.startup.failed":
            text = message.get("message") or "(no message)"
            log_lines(TAG, f"lifespan startup failed: {text}")
            if not self.started.done():
                self.started.set_exception(StartupFailed(text))
        elif kind == "lifespan.shutdown.complete":
            _resolve(self.shutdown_done)
        elif kind == "lifespan.shutdown.failed":
            log_lines(TAG, f"lifespan shutdown failed: {message.get('message', '')}")
            _resolve(self.shutdown_done)
        else:
            raise ValueError(f"unexpected ASGI lifespan message {kind!r}")

    async def shutdown(self):
        """Instance exit hook: lifespan.shutdown, then wait for the answer
        (run_exit_hooks bounds the wait)."""
        if not self.supported or self.task.done():
            return
        _resolve(self.shutdown_requested)
        await self.shutdown_done
        await asyncio.wait({self.task}, timeout=1.0)


def ready(app):
    """The request scopes' lifespan state (None without lifespan) when the
    app's startup already completed in this process, else NOT_READY:
    then await startup(). Saves a coroutine per request."""
    return _ready.get(id(app), NOT_READY)


NOT_READY = object()


async def startup(app, env):
    """Runs the app's startup once in this process; returns the lifespan
    state dict for request scopes, or None without lifespan. Raises
    StartupFailed (every time) when startup failed."""
    ls = _by_app.get(id(app))
    if ls is None:
        ls = _by_app[id(app)] = Lifespan(app, env)
        hooks.on_exit(ls.shutdown)
    if not ls.started.done():
        # shield: a request cancelled meanwhile must not cancel the startup
        # every other request of this app waits for
        await asyncio.shield(ls.started)
    ls.started.result()  # raises StartupFailed
    return ls.state if ls.supported else None


def _resolve(fut, value=None):
    if not fut.done():
        fut.set_result(value)
