"""Serve a WSGI app (Flask, Django, ...) from a fetch handler:

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            return await wsgi.fetch(app, request, self.env)

The request body is read first (wsgi.input is all of it); the app then runs
in a thread of the loop's default executor, so a blocking app does not
stall the instance's other requests. `environ["workers.env"]` is the env.
"""
import asyncio

from thaw_runtime.log import log_exception, log_lines

from ._asgi_pipe import BodyPipe
from ._response import Response
from ._wsgi_environ import build_environ

__all__ = ["fetch"]

TAG = "wsgi"
_NULL_BODY = frozenset((204, 205, 304))
# A response that declares a Content-Length up to this size is collected
# and sent with its length; bigger or unsized ones stream.
WHOLE_LIMIT = 1 << 20


def _resolve(fut, value):
    if not fut.done():
        fut.set_result(value)


def _fail(fut, exc):
    if not fut.done():
        fut.set_exception(exc)


def _error_response():
    return Response("Internal Server Error\n", status=500,
                    headers={"content-type": "text/plain;charset=UTF-8"})


class _WsgiCall:
    """One request through the app. `run` executes in a worker thread and
    talks to the loop only through call_soon_threadsafe and
    run_coroutine_threadsafe."""

    def __init__(self, app, environ, loop):
        self.app = app
        self.environ = environ
        self.loop = loop
        self.head = loop.create_future()  # (status line, headers, whole body or None)
        self.pipe = BodyPipe()
        self.status = None
        self.headers = None
        self.committed = False  # the head went to the loop: no more changes

    # -- called by the app, in the thread ------------------------------------
    def start_response(self, status, headers, exc_info=None):
        if exc_info:
            try:
                if self.committed:  # too late to change the response (PEP 3333)
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise RuntimeError("start_response called a second time without exc_info")
        self.status = status
        self.headers = list(headers)
        return self.write

    def write(self, data):
        """The legacy imperative write(): streams like a yielded chunk."""
        self._emit(bytes(data))

    # -- thread side -----------------------------------------------------------
    def _commit(self, whole):
        if self.status is None:
            raise RuntimeError("the WSGI app did not call start_response")
        self.committed = True
        self.loop.call_soon_threadsafe(_resolve, self.head,
                                       (self.status, self.headers, whole))

    def _emit(self, chunk):
        if not chunk:
            return  # headers wait for the first non-empty chunk (PEP 3333)
        if not self.committed:
            self._commit(None)
        asyncio.run_coroutine_threadsafe(self.pipe.put(chunk), self.loop).result()

    def _declares_small_body(self):
        for name, value in self.headers or ():
            if name.lower() == "content-length":
                try:
                    return int(value) <= WHOLE_LIMIT
                except ValueError:
                    return False
        return False

    def _produce(self, result):
        sized = isinstance(result, (list, tuple))
        collected, whole = [], None
        for chunk in result:
            chunk = bytes(chunk)
            if whole is None:  # decided at the first item, once headers exist
                whole = not self.committed and (sized or self._declares_small_body())
            if whole:
                collected.append(chunk)
            else:
                self._emit(chunk)
        if not self.committed:
            self._commit(b"".join(collected))

    def run(self):
        try:
            result = self.app(self.environ, self.start_response)
            try:
                self._produce(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:
            if self.committed:
                self.loop.call_soon_threadsafe(self.pipe.finish, exc)
            else:
                self.loop.call_soon_threadsafe(_fail, self.head, exc)
            return
        self.loop.call_soon_threadsafe(self.pipe.finish)

    # -- loop side ---------------------------------------------------------------
    async def respond(self, is_head):
        self.loop.run_in_executor(None, self.run)
        try:
            status_line, headers, whole = await self.head
        except asyncio.CancelledError:
            self.pipe.close()  # the client left: the thread's next write fails
            raise
        except BaseException as exc:
            log_exception(TAG, exc)
            return _error_response()
        try:
            code, _, reason = str(status_line).strip().partition(" ")
            status = int(code)
            if whole is not None:
                body = None if status in _NULL_BODY else whole
                return Response(body, status, reason or None, headers)
            if status in _NULL_BODY or is_head:
                self.pipe.discard()  # nobody reads it: let the thread run out
                return Response(None if status in _NULL_BODY else self.pipe.stream(),
                                status, reason or None, headers)
            return Response(self.pipe.stream(), status, reason or None, headers)
        except Exception as exc:  # a status or header the app got wrong
            self.pipe.close()
            log_lines(TAG, f"the WSGI app sent an invalid response head "
                           f"({status_line!r}): {exc}")
            return _error_response()


async def fetch(app, request, env=None, ctx=None):
    """Run the WSGI `app` for `request` (a workers.Request, or its
    `.js_object`) and return a workers.Response. ctx is accepted for
    compatibility and unused."""
    request = getattr(request, "js_object", request)
    body = await request.bytes()
    environ = build_environ(request, body, env)
    call = _WsgiCall(app, environ, asyncio.get_running_loop())
    return await call.respond(environ["REQUEST_METHOD"] == "HEAD")
