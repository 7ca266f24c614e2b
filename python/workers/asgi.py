"""Serve an ASGI 3 app (FastAPI, Starlette, Django's ASGI handler, ...)
from a fetch handler, as Cloudflare's `asgi` module does:

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            return await asgi.fetch(app, request.js_object, self.env)

`import asgi` is this same module. The env is `scope["env"]` (FastAPI:
`request.scope["env"]`, or `Depends(asgi.env)`).
"""
import asyncio
from threading import get_ident

from thaw_runtime import hooks
from thaw_runtime.log import log_exception, log_lines

from . import _asgi_eager as eager
from . import _asgi_lifespan as lifespan
from ._asgi_pipe import BodyPipe, ClientDisconnected
from ._asgi_scope import scope_of
from ._headers import Headers
from ._request import Request
from ._response import Response
from ._asgi_lifespan import NOT_READY as _NOT_READY, _ready

try:
    from _thaw_fast import asgi_headers  # C, in thaw-zygote: src/zygote/asgi-headers.c
except ImportError:
    def asgi_headers(pairs):
        return None  # Headers._thaw_from_bytes does it all


class _PyCallBase:
    """_thaw_fast.AsgiCall in Python (without thaw-zygote's C module): the
    exchange's state, and a send that hands every message to _send."""
    body_iter = None
    request_done = False
    head = None
    pipe = None
    whole = None
    finished = False
    finish_waiters = None
    head_waiter = None
    error = None
    app_done = False
    task = None

    def send(self, message):
        return self._send(message)

    def sized_response(self):
        return None  # response() makes every one


try:
    # the exchange's state as slots, and `send` in C for the messages most
    # responses are made of (src/zygote/asgi-call.c); the rest goes to
    # _HttpCall._send
    from _thaw_fast import AsgiCall as _CallBase, asgi_call_types
except ImportError:
    _CallBase = _PyCallBase
else:
    asgi_call_types(Headers, Response)  # what its sized_response() makes

__all__ = ["fetch", "ClientDisconnected"]

TAG = "asgi"
_NULL_BODY = frozenset((204, 205, 304))

# App tasks that outlive their fetch() (streaming, background tasks): a
# strong reference, or the loop could drop them mid-flight.
_running = set()


def _error_response():
    return Response("Internal Server Error\n", status=500,
                    headers={"content-type": "text/plain;charset=UTF-8"})


def _wake(fut):
    if fut is not None and not fut.done():
        fut.set_result(None)


class _HttpCall(_CallBase):
    """One request through the app: feeds `receive`, collects `send`.

    The app starts as an eager task (_asgi_eager): its first step runs
    inside fetch(), and an app that answers without waiting for anything
    (most requests of most apps) has finished when that step returns: its
    response goes back at once, with no loop turn and nothing to wait on.
    An app still running after its first step keeps going in its task;
    fetch() then waits for http.response.start (or the app's end) and, if
    the body is not complete by then, returns a response that streams it.

    The state (_CallBase, made by fetch() per request):
      body_iter       the request body's iterator, or None (no body)
      request_done    receive() gave the last of the body
      head            http.response.start's (status, str pairs or None, raw)
      whole, pipe     the body: most apps send it whole in one message
                      before fetch() returns; it is kept as it is (whole).
                      Otherwise, or after, it goes through a pipe (made by
                      _pipe()), which fetch()'s response streams.
      finished        response complete or client gone
      finish_waiters  receive() calls waiting for `finished`
      head_waiter     fetch() waiting for the head or the app's end
      error           what the app raised before the head
      app_done, task  the app's task, and whether it ended
    """

    def finish(self):
        """The exchange is over: pending and later receive() calls get
        http.disconnect."""
        if not self.finished:
            self.finished = True
            waiters, self.finish_waiters = self.finish_waiters, None
            if waiters:
                for w in waiters:
                    _wake(w)

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
                self.finish()
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": bytes(chunk), "more_body": True}
        # After the body, receive() blocks until the exchange is over: apps
        # (Starlette's StreamingResponse) treat an early disconnect as "stop".
        if not self.finished:
            w = asyncio.get_running_loop().create_future()
            if self.finish_waiters is None:
                self.finish_waiters = [w]
            else:
                self.finish_waiters.append(w)
            await w
        return {"type": "http.disconnect"}

    def _pipe(self):
        pipe = self.pipe
        if pipe is None:
            pipe = self.pipe = BodyPipe()
            if self.whole is not None:  # complete already
                pipe.write(self.whole)
                pipe.finish()
                self.whole = None
        return pipe

    # send (the app's): _CallBase's, which takes the common messages at
    # once in C and hands the others to this coroutine
    async def _send(self, message):
        kind = message["type"]
        if kind == "http.response.body":
            if self.head is None:
                raise RuntimeError("http.response.body sent before http.response.start")
            more = message.get("more_body", False)
            if self.pipe is None and self.whole is None and not more:
                # the whole body in one message, before fetch() returned
                body = message.get("body", b"")
                self.whole = body if type(body) is bytes else bytes(body)
                if not self.finished:
                    self.finish()
                return
            pipe = self._pipe()
            if pipe.write(bytes(message.get("body", b""))):
                await pipe.drain()  # a slow reader: wait for it
            if not more:
                pipe.finish()
                self.finish()
        elif kind == "http.response.start":
            if self.head is not None:
                raise RuntimeError("http.response.start sent twice")
            status = message["status"]
            headers = message.get("headers", ())
            if type(headers) is not list and type(headers) is not tuple:
                headers = list(headers)
            # checked and made str pairs in one pass, or None: then
            # Headers._thaw_from_bytes says what is wrong (in respond())
            pairs = asgi_headers(headers)
            self.head = (status, pairs,
                         None if pairs is not None else
                         [(bytes(n), bytes(v)) for n, v in headers])
            if self.head_waiter is not None:
                _wake(self.head_waiter)
        else:
            raise ValueError(f"unexpected ASGI message {kind!r}")

    # -- running the app --------------------------------------------------
    async def run_app(self, app, scope):
        """Raises only CancelledError. An error before the response
        started goes to self.error (fetch() answers 500); once it
        started, errors end the body stream (the runtime aborts the
        response) or, after the body is complete (a failed background
        task), go to the log."""
        try:
            await app(scope, self.receive, self.send)
        except asyncio.CancelledError as exc:
            if self.head is None:
                self.error = exc
            # CancelledError must not come out of the body iterator: the
            # runtime would take it for its own cancel and never end the stream
            self._pipe().finish(ConnectionAbortedError("the ASGI app was cancelled"))
            raise
        except BaseException as exc:
            if self.head is None:
                self.error = exc
            elif self.whole is not None or self._pipe().done:
                log_exception(TAG, exc)
            else:
                self.pipe.finish(exc)
        else:
            if self.head is None:
                self.error = RuntimeError(
                    "the ASGI app returned without sending http.response.start")
            elif self.whole is None:
                self._pipe().finish()  # returning ends the body even without more_body=False
        finally:
            self.app_done = True
            # most apps finished the exchange with their last send, and
            # fetch() is not waiting: no call at all then
            if not self.finished:
                self.finish()
            if self.head_waiter is not None:
                _wake(self.head_waiter)

    def body_closed(self, completed):
        """The runtime stopped reading the body: at its end, or because the
        client left (then stop the app, whose sends could go nowhere)."""
        self.finish()
        if not completed and not self.app_done:
            self.task.cancel()

    def response(self, method):
        """The workers.Response of what the app sent so far (a head)."""
        if self.head is None:
            log_exception(TAG, self.error)
            return _error_response()
        pipe = self.pipe
        if pipe is not None and pipe.error is not None:
            # it failed before anything reached the client: still a clean 500
            log_exception(TAG, pipe.error)
            return _error_response()
        status, pairs, raw = self.head
        try:
            headers = Headers._thaw_owned(pairs) if pairs is not None else \
                Headers._thaw_from_bytes(raw)
            if status in _NULL_BODY:
                self._pipe().discard()
                return Response(None, status=status, headers=headers)
            whole = self.whole if pipe is None else pipe.whole()
            if whole is not None:  # the body is complete: a sized response
                return Response._thaw_sized(status, headers, whole)
            pipe = self._pipe()
            if method == "HEAD":
                # the runtime sends no body and never reads this stream:
                # tell the app the exchange is over so it stops producing
                pipe.discard()
                self.finish()
            return Response(pipe.stream(self.body_closed), status=status, headers=headers)
        except Exception as exc:  # a status or header the app got wrong
            if not self.app_done:
                self.task.cancel()
            log_lines(TAG, f"the ASGI app sent an invalid response head: {exc}")
            return _error_response()


async def fetch(app, request, env=None, ctx=None):
    """Run `app` for `request` (a workers.Request, or its `.js_object`);
    returns a workers.Response that streams while the app sends.

    ctx is accepted for compatibility with Cloudflare's signature; app work
    after the response (background tasks) continues on this instance."""
    if type(request) is not Request:
        request = getattr(request, "js_object", request)
    state = _ready.get(id(app), _NOT_READY)  # lifespan.ready(app)
    if state is _NOT_READY:
        hooks.asgi_app_starting(app)
        try:
            state = await lifespan.startup(app, env)
        except lifespan.StartupFailed:
            return _error_response()  # logged once, when it failed
    call = _HttpCall()
    if request._payload is not None:  # as request.body: None, or the runtime's body
        call.body_iter = request.body.__aiter__()
    scope = scope_of(request, env, state)
    # asyncio.get_running_loop() costs a getpid() system call on Python
    # 3.11: in the instance's thread, its loop is known
    loop = hooks.loop
    if loop is None or get_ident() != hooks.loop_thread:
        loop = asyncio.get_running_loop()
    task, done = eager.start(call.run_app(app, scope), loop)
    call.task = task
    if not done:
        _running.add(task)
        task.add_done_callback(_running.discard)
        if call.head is None and not call.app_done:
            # it waits for something (the request body, I/O) before
            # answering
            call.head_waiter = waiter = loop.create_future()
            try:
                await waiter
            except asyncio.CancelledError:
                task.cancel()  # the client left before the response started
                raise
    # the usual end (a head, the whole body) in C; anything else in response()
    resp = call.sized_response()
    return resp if resp is not None else call.response(scope["method"])


def __getattr__(name):
    # `Depends(asgi.env)`-style helper of Cloudflare's module: FastAPI is
    # imported only by apps that ask for it.
    if name == "env":
        from fastapi import Depends, Request

        async def env(request: Request):
            return request.scope["env"]
        return Depends(env)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
