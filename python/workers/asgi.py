"""Serve an ASGI 3 app (FastAPI, Starlette, Django's ASGI handler, ...)
from a fetch handler, as Cloudflare's `asgi` module does:

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            return await asgi.fetch(app, request.js_object, self.env)

`import asgi` is this same module. The env is `scope["env"]` (FastAPI:
`request.scope["env"]`, or `Depends(asgi.env)`).
"""
import asyncio

from thaw_runtime.log import log_exception, log_lines

from . import _asgi_lifespan as lifespan
from ._asgi_pipe import BodyPipe, ClientDisconnected
from ._asgi_scope import http_scope
from ._response import Response

__all__ = ["fetch", "ClientDisconnected"]

TAG = "asgi"
_NULL_BODY = frozenset((204, 205, 304))

# App tasks that outlive their fetch() (streaming, background tasks): a
# strong reference, or the loop could drop them mid-flight.
_running = set()


def _error_response():
    return Response("Internal Server Error\n", status=500,
                    headers={"content-type": "text/plain;charset=UTF-8"})


class _HttpCall:
    """One request through the app: feeds `receive`, collects `send`."""

    def __init__(self, request):
        loop = asyncio.get_running_loop()
        body = request.body  # an async iterator of bytes, or None
        self.body_iter = body.__aiter__() if body is not None else None
        self.request_done = False
        self.start = loop.create_future()   # (status, headers) of http.response.start
        self.pipe = BodyPipe()
        self.finished = asyncio.Event()    # response complete or client gone
        self.task = None

    # -- the app's receive/send -----------------------------------------
    async def receive(self):
        if not self.request_done:
            if self.body_iter is None:
                self.request_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            try:
                chunk = await self.body_iter.__anext__()
            except StopAsyncIteration:
                self.request_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            except ConnectionError:  # the client left mid-upload
                self.request_done = True
                self.finished.set()
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": bytes(chunk), "more_body": True}
        # After the body, receive() blocks until the exchange is over: apps
        # (Starlette's StreamingResponse) treat an early disconnect as "stop".
        await self.finished.wait()
        return {"type": "http.disconnect"}

    async def send(self, message):
        kind = message["type"]
        if kind == "http.response.start":
            if self.start.done():
                raise RuntimeError("http.response.start sent twice")
            status = message["status"]
            headers = [(bytes(n), bytes(v)) for n, v in message.get("headers", ())]
            self.start.set_result((status, headers))
        elif kind == "http.response.body":
            if not self.start.done():
                raise RuntimeError("http.response.body sent before http.response.start")
            await self.pipe.put(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                self.pipe.finish()
                self.finished.set()
        else:
            raise ValueError(f"unexpected ASGI message {kind!r}")

    # -- running the app --------------------------------------------------
    async def run_app(self, app, scope):
        """Never raises once the response started: errors then end the
        body stream (the runtime aborts the response) or, after the body
        is complete (a failed background task), go to the log."""
        try:
            await app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            # CancelledError must not come out of the body iterator: the
            # runtime would take it for its own cancel and never end the stream
            self.pipe.finish(ConnectionAbortedError("the ASGI app was cancelled"))
            raise
        except BaseException as exc:
            if not self.start.done():
                raise  # fetch() answers 500
            if self.pipe.done:
                log_exception(TAG, exc)
            else:
                self.pipe.finish(exc)
            return
        finally:
            self.finished.set()
        if not self.start.done():
            raise RuntimeError("the ASGI app returned without sending http.response.start")
        self.pipe.finish()  # returning ends the body even without more_body=False

    def body_closed(self, completed):
        """The runtime stopped reading the body: at its end, or because the
        client left (then stop the app, whose sends could go nowhere)."""
        self.finished.set()
        if not completed and self.task is not None and not self.task.done():
            self.task.cancel()

    async def respond(self, app, scope):
        self.task = task = asyncio.get_running_loop().create_task(self.run_app(app, scope))
        _running.add(task)
        task.add_done_callback(_forget)
        try:
            await asyncio.wait({task, self.start}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()  # the client left before the response started
            raise
        if not self.start.done():
            exc = task.exception() if not task.cancelled() else asyncio.CancelledError()
            log_exception(TAG, exc)
            return _error_response()
        if self.pipe.error is not None:
            # it failed before anything reached the client: still a clean 500
            log_exception(TAG, self.pipe.error)
            return _error_response()
        status, headers = self.start.result()
        try:
            if status in _NULL_BODY:
                self.pipe.discard()
                return Response(None, status=status, headers=headers)
            whole = self.pipe.whole()
            if whole is not None:  # the app already finished: a sized body
                return Response(whole, status=status, headers=headers)
            if scope["method"] == "HEAD":
                # the runtime sends no body and never reads this stream:
                # tell the app the exchange is over so it stops producing
                self.pipe.discard()
                self.finished.set()
            return Response(self.pipe.stream(self.body_closed), status=status,
                            headers=headers)
        except Exception as exc:  # a status or header the app got wrong
            task.cancel()
            log_lines(TAG, f"the ASGI app sent an invalid response head: {exc}")
            return _error_response()


def _forget(task):
    _running.discard(task)
    if not task.cancelled():
        task.exception()  # fetch() reports it; keep asyncio from warning again


async def fetch(app, request, env=None, ctx=None):
    """Run `app` for `request` (a workers.Request, or its `.js_object`);
    returns a workers.Response that streams while the app sends.

    ctx is accepted for compatibility with Cloudflare's signature; app work
    after the response (background tasks) continues on this instance."""
    request = getattr(request, "js_object", request)
    try:
        state = await lifespan.startup(app, env)
    except lifespan.StartupFailed:
        return _error_response()  # logged once, when it failed
    call = _HttpCall(request)
    return await call.respond(app, http_scope(request, env, state))


def __getattr__(name):
    # `Depends(asgi.env)`-style helper of Cloudflare's module: FastAPI is
    # imported only by apps that ask for it.
    if name == "env":
        from fastapi import Depends, Request

        async def env(request: Request):
            return request.scope["env"]
        return Depends(env)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
