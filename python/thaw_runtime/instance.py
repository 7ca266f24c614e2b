"""An instance: forked from a template, it serves requests over its IPC
channel on an asyncio loop created after the fork (an epoll fd made in the
template would be shared by every instance)."""
import asyncio
import functools
import inspect
import os
import select
import signal
import socket
import sys
import threading
import types
from collections import deque

import _thaw
import _thaw_fast as fast

try:
    import uvloop  # preloaded in the zygote
except ImportError:  # zygote.py said so, once: asyncio's own loop then
    uvloop = None

from . import bindcalls, entropy, hooks, ipc, netpatch, output, sandbox, scheduled
from workers import _bind, _durable_host, _jsmodules
from workers import _asgi_eager as eager
from workers import _asgi_lifespan as lifespan
from .body import RequestBody
from .log import log_exception, log_lines

# Above this many queued output bytes a streaming response waits for the
# supervisor to take them; below LOW_WATER it resumes.
HIGH_WATER = 1 << 20
LOW_WATER = 256 << 10

_NO_BODY_STATUS = frozenset((204, 304))
_ERROR_HEADERS = (("content-type", "text/plain;charset=UTF-8"),)
_CoroutineType = types.CoroutineType
_REQ_HEAD, _REQ_END, _BIND_CALL, _F_FD = ipc.REQ_HEAD, ipc.REQ_END, ipc.BIND_CALL, ipc.F_FD
_DO_WS = ipc.DO_WS
_ws_event = fast.ws_event


class Worker:
    """What a template hands to its instances: the imported module, how to
    call it, and its env."""

    def __init__(self, name, module, handler, env):
        self.name = name
        self.module = module
        self.handler = handler
        self.env = env
        self.flags = frozenset()
        self.scheduled = None  # how to call its scheduled handler (the template sets it)


class ExecutionContext:
    """The `ctx` of Cloudflare handlers. wait_until() work outlives the
    response: the supervisor is told while any runs (BUSY), so it does not
    reap the instance under it."""

    def __init__(self, loop, tasks, busy):
        self._loop = loop
        self._tasks = tasks
        self._busy = busy

    def wait_until(self, awaitable):
        task = asyncio.ensure_future(awaitable, loop=self._loop)
        if not self._tasks:
            self._busy(1)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task):
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            from .log import log_exception
            log_exception(output.worker_name(), task.exception())
        if not self._tasks:
            self._busy(0)

    waitUntil = wait_until

    def pass_through_on_exception(self):
        pass

    passThroughOnException = pass_through_on_exception


class Stream:
    __slots__ = ("sid", "body", "task", "is_head", "head_sent", "ws")

    def __init__(self, sid, body, is_head):
        self.sid = sid
        self.body = body
        self.task = None
        self.is_head = is_head
        self.head_sent = False
        self.ws = None  # after a 101: the worker's end of the WebSocket


# room for a few fds per read (each BIND_REPLY of a connect carries one)
_ANC_SPACE = socket.CMSG_SPACE(16 * 4)
_CMSG_CLOEXEC = getattr(socket, "MSG_CMSG_CLOEXEC", 0)


def _queue_fds(anc, fds):
    import array
    for level, ctype, data in anc:
        if level == socket.SOL_SOCKET and ctype == socket.SCM_RIGHTS:
            a = array.array("i")
            a.frombytes(data[:len(data) - len(data) % a.itemsize])
            fds.extend(a)


def _readable_now(sock):
    import select
    r, _, _ = select.select([sock], [], [], 0)
    return bool(r)


class Instance:
    def __init__(self, fd, worker, iid, warm=()):
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(False)
        self.worker = worker
        self.iid = iid
        self.inbuf = bytearray()  # the start of a frame not complete yet
        self.frames = deque()     # decoded, not yet dispatched (fast.decode)
        self.rbuf = bytearray(262144)
        self.rview = memoryview(self.rbuf)
        self.rbufs = [self.rbuf]
        self.out = []
        self.out_size = 0
        self.flush_pending = False
        self.write_blocked = False
        self.drain_waiters = []
        self.streams = {}
        self.fds = deque()      # received with SCM_RIGHTS, oldest first
        self.deferred = []      # request frames read during call_sync
        self.bg_tasks = set()
        self.loop = None
        self.stopping = False
        self.ctx = None
        # imported lazily: the SDK is preloaded in the zygote anyway
        from workers import Request, Response
        self.Request = Request
        self.Response = Response
        # Request._thaw_decoded in C (src/zygote/sdk-new.c; workers/_request.py
        # registers its classes with it on import)
        self.new_request = fast.new_request
        # compatibility: before python_request_headers_preserve_commas,
        # Cloudflare split request header values at commas
        self.split_commas = "python_request_headers_preserve_commas" not in worker.flags
        # the ASGI apps this version serves (names of worker module
        # globals, learnt from an earlier instance): started ahead
        self.warm = warm
        self.hinted = bool(warm)

    # -- channel -------------------------------------------------------
    def run(self):
        # uvloop: the loop's own work per request (its callbacks, epoll,
        # the handles) in C rather than bytecode (docs/performance.md)
        self.loop = uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
        # each request's task registers in asyncio's WeakSet of tasks: its
        # add and removal in C rather than two Python calls per task
        fast.lighten_task_set(asyncio.tasks._all_tasks)
        asyncio.set_event_loop(self.loop)
        self.ctx = ExecutionContext(self.loop, self.bg_tasks, self._send_busy)
        _jsmodules._thaw_set_ctx(self.ctx)  # cloudflare:workers' waitUntil
        self.binds = bindcalls.BindClient(self.loop, self._queue, self.call_sync)
        _bind._set_transport(self.binds)
        netpatch.patch_loop(self.loop)
        self.loop.add_reader(self.sock.fileno(), self._on_readable)
        # thaw stopping: finish through the exit hooks (ASGI lifespan
        # shutdown) rather than die in the middle of them
        self.loop.add_signal_handler(signal.SIGTERM, self._stop)
        hooks._app_observer = self._note_app
        hooks.loop, hooks.loop_thread = self.loop, threading.get_ident()
        for name in self.warm:
            app = getattr(self.worker.module, name, None)
            if app is not None:
                self.loop.create_task(self._start_app(app))
        if not _readable_now(self.sock):
            self._warm_up()
        try:
            self.loop.run_forever()
            self.binds.lost()
            self.loop.remove_reader(self.sock.fileno())
            self.loop.run_until_complete(hooks.run_exit_hooks(
                lambda exc: log_exception(self.worker.name, exc)))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()

    def _stop(self):
        """Ends run_forever, once: uvloop's stop() queues a callback per
        call, and a second one would cut the exit hooks' run short."""
        if not self.stopping:
            self.stopping = True
            self.loop.stop()

    def _warm_up(self):
        """Runs thaw's own request machinery once, with no worker code, while
        no request waits: the pages it touches (copy-on-write after the
        fork) are copied now rather than during the first real request.
        A pre-forked spare pays this before anyone asks it for anything."""
        try:
            head = ipc.fields("GET", "http://warm.invalid/", ":client-ip", "127.0.0.1",
                              ":client-port", "1", "host", "warm.invalid", "accept", "*/*")
            frames, _used, _error = fast.decode(ipc.frame(ipc.REQ_HEAD, 0, head), -1,
                                                 self.split_commas)
            method, url, pairs, client, version, _meta, _body = frames[0][3]
            req = self.Request._thaw_decoded(method, url, pairs, None, client, version)
            req.headers.get("accept")
            status, reason, rpairs, body = self.Response("warm")._thaw_parts()
            fast.response(0, status, reason, rpairs, body, True, True)

            async def step():
                await asyncio.sleep(0)
            self.loop.run_until_complete(self.loop.create_task(step()))
        except Exception:
            pass  # an optimisation only

    async def _start_app(self, app):
        """ASGI lifespan startup before the first request (as uvicorn runs
        it when a worker process starts), so that request does not wait
        for it. A request that comes meanwhile waits for the same startup."""
        try:
            await lifespan.startup(app, self.worker.env)
        except lifespan.StartupFailed:
            pass  # logged; each request of the app answers 500, as before

    def _note_app(self, app):
        """asgi.fetch starts `app` during a request: tell thaw the app's
        name in the worker module, so later instances start it early."""
        if self.hinted:
            return
        names = [k for k, v in vars(self.worker.module).items() if v is app]
        if names:
            self.hinted = True
            self._queue(ipc.frame(ipc.WARM, 0, ipc.fields("asgi", names[0])))

    def _recv(self):
        """One read: its complete frames, decoded in one call, onto the
        frame queue; fds (SCM_RIGHTS, from the connect binding) onto the
        fd queue. Returns False at EOF; raises ProtocolError after queueing
        the good frames before a malformed one. One syscall per read, into
        a buffer made once: a fresh 256 KiB bytes object per read (what
        recv() makes) costs an mmap and page faults each time."""
        n, anc, _flags, _addr = self.sock.recvmsg_into(self.rbufs, _ANC_SPACE, _CMSG_CLOEXEC)
        if anc:
            _queue_fds(anc, self.fds)
        if not n:
            return False
        inbuf = self.inbuf
        if inbuf:
            inbuf += self.rview[:n]
            frames, used, error = fast.decode(inbuf, -1, self.split_commas)
            del inbuf[:used]
        else:  # most reads end on a frame boundary: nothing is copied
            frames, used, error = fast.decode(self.rbuf, n, self.split_commas)
            if used < n:
                inbuf += self.rview[used:n]
        if frames:
            self.frames.extend(frames)
        if error is not None:
            raise error
        return True

    def _on_readable(self):
        try:
            alive = self._recv()
        except (BlockingIOError, InterruptedError):
            return
        except fast.ProtocolError as exc:
            self._process()
            self._bad_channel(exc)
            return
        except OSError:
            alive = False
        if not alive:
            self._stop()  # the supervisor closed this instance
            return
        self._process()

    def _bad_channel(self, exc):
        """A frame this side cannot read: the channel is out of step with
        the supervisor, so no later frame can be trusted either."""
        log_lines(self.worker.name, f"thaw: malformed frame from the supervisor ({exc}); "
                                    f"this instance stops")
        self._stop()

    def _process(self):
        # what the batch's handlers answer leaves in one send, at its end
        self.flush_pending = True
        try:
            self._dispatch()
        finally:
            self._flush()

    def _dispatch(self):
        if self.deferred:
            frames, self.deferred = self.deferred, []
            for ftype, sid, payload in frames:
                self._on_frame(ftype, sid, payload)
        # each frame leaves the queue before it is dispatched: a handler
        # started here may read the channel itself (call_sync), which takes
        # the rest of the queue over
        frames = self.frames
        fds = self.fds
        streams = self.streams
        while frames:
            ftype, flags, sid, payload = frames.popleft()
            if ftype == _DO_WS:
                # a Durable Object's WebSocket event: C, when its object is
                # in memory and free (src/zygote/dows.c); else its meta
                meta = _ws_event(sid, payload)
                if meta is not None:
                    self._on_do_ws(sid, meta)
            elif ftype == _REQ_HEAD:
                self._on_head(sid, payload)
            elif ftype == _REQ_END:
                st = streams.get(sid)
                if st is not None and st.body is not None:
                    st.body.end()
            else:
                fd = fds.popleft() if flags & _F_FD and fds else None
                if ftype >= _BIND_CALL:
                    self.binds.on_frame(ftype, flags, sid, payload, fd)
                else:
                    if fd is not None:
                        os.close(fd)
                    self._on_frame(ftype, sid, payload)

    def _take_frames(self):
        """call_sync's share of the frame queue: binding replies now,
        request frames later (deferred), in order."""
        frames = self.frames
        while frames:
            ftype, flags, sid, payload = frames.popleft()
            fd = self.fds.popleft() if flags & _F_FD and self.fds else None
            if ftype >= _BIND_CALL:
                self.binds.on_frame(ftype, flags, sid, payload, fd)
            else:
                if fd is not None:
                    os.close(fd)
                self.deferred.append((ftype, sid, payload))

    def call_sync(self, pending, timeout):
        """Waits, blocking the loop, for the reply of one binding call (a
        blocking socket's connect or getaddrinfo in worker code). Replies to
        other binding calls are delivered as they come (they only set
        futures); request frames wait in `deferred` for the loop, so no
        handler starts inside another one's socket call."""
        import select
        import time
        self._flush_blocking()
        deadline = None if timeout is None else time.monotonic() + timeout
        fd = self.sock.fileno()
        self._take_frames()
        while not pending._head.done():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                pending.cancel()
                self._flush_blocking()
                raise TimeoutError("timed out")
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            try:
                alive = self._recv()
            except (BlockingIOError, InterruptedError):
                continue
            except fast.ProtocolError as exc:
                self._take_frames()
                self.loop.call_soon(self._bad_channel, exc)
                raise ConnectionError("thaw's supervisor sent a malformed frame during a "
                                      "socket call") from None
            except OSError:
                alive = False
            if not alive:
                self.loop.call_soon(self._stop)
                raise ConnectionError("thaw's supervisor closed the instance during a "
                                      "socket call")
            self._take_frames()
        if self.deferred:
            self.loop.call_soon(self._process)
        return pending._head.result()

    def _flush_blocking(self):
        import select
        while self.out:
            data = b"".join(self.out)
            self.out.clear()
            try:
                n = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                n = 0
            if n < len(data):
                self.out.append(data[n:])
                select.select([], [self.sock.fileno()], [])
        self.out_size = 0
        if self.write_blocked:
            self.write_blocked = False
            self.loop.remove_writer(self.sock.fileno())
        self._wake_drainers()

    def _on_frame(self, ftype, sid, payload):
        if ftype == ipc.REQ_HEAD:
            self._on_head(sid, payload)
        elif ftype == _DO_WS:
            meta = _ws_event(sid, payload)
            if meta is not None:
                self._on_do_ws(sid, meta)
        elif ftype == ipc.REQ_BODY:
            st = self.streams.get(sid)
            if st is not None and st.body is not None:
                st.body.feed(payload)
        elif ftype == ipc.REQ_END:
            st = self.streams.get(sid)
            if st is not None and st.body is not None:
                st.body.end()
        elif ftype == ipc.WS_TEXT or ftype == ipc.WS_BINARY or ftype == ipc.WS_CLOSE:
            st = self.streams.get(sid)
            if st is not None and st.ws is not None:
                token = output.request_id.set(sid)
                try:
                    st.ws._on_frame(ftype, payload)
                finally:
                    output.request_id.reset(token)
        elif ftype == ipc.CANCEL:
            # the answer (also for a stream already done): it shows thaw this
            # loop runs; one held by a handler that never yields reads no
            # CANCEL, and thaw replaces its instance (src/pool/tick.c)
            self._queue(fast.frame(ipc.RESP_ABORT, sid))
            st = self.streams.pop(sid, None)
            if st:
                if st.body:
                    st.body.abort()
                if st.task:
                    st.task.cancel()
                if st.ws is not None:  # the WebSocket's end (ws.py)
                    token = output.request_id.set(sid)
                    try:
                        st.ws._gone()
                    finally:
                        output.request_id.reset(token)

    def _send_busy(self, n):
        self._queue(ipc.frame(ipc.BUSY, 0, ipc.fields(str(n))))

    def _queue(self, data):
        self.out.append(data)
        self.out_size += len(data)
        if not self.flush_pending:
            self.flush_pending = True
            self.loop.call_soon(self._flush)

    def _flush(self):
        self.flush_pending = False
        if self.write_blocked or not self.out:
            return
        data = self.out[0] if len(self.out) == 1 else b"".join(self.out)
        self.out.clear()
        try:
            n = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            self._stop()
            return
        if n < len(data):
            self.out.append(data[n:])
            self.out_size = len(data) - n
            self.write_blocked = True
            self.loop.add_writer(self.sock.fileno(), self._on_writable)
        else:
            self.out_size = 0
        if self.drain_waiters:
            self._wake_drainers()

    def _on_writable(self):
        self.loop.remove_writer(self.sock.fileno())
        self.write_blocked = False
        self._flush()

    def _wake_drainers(self):
        if self.out_size <= LOW_WATER and self.drain_waiters:
            waiters, self.drain_waiters = self.drain_waiters, []
            for w in waiters:
                if not w.done():
                    w.set_result(None)

    async def _drain(self):
        if self.out_size > HIGH_WATER:
            w = self.loop.create_future()
            self.drain_waiters.append(w)
            await w

    # -- requests ------------------------------------------------------
    def _on_head(self, sid, head):
        # taken apart by fast.decode: the header names in lower case, the
        # values split at commas when self.split_commas, the ':' fields out
        method, url, pairs, client, version, meta, has_body = head
        if meta is not None and meta.get(":event") == "durable-object":
            # a call to one of the worker's objects (workers/_durable_host.py)
            body = RequestBody(self.loop) if has_body else None
            st = Stream(sid, body, False)
            self.streams[sid] = st
            _durable_host.start(self, st, meta, self.Request._thaw_decoded(
                method, url, pairs, body, client, version))
            return
        if meta is not None and meta.get(":event") == "scheduled":
            # a cron trigger, or /__scheduled
            st = Stream(sid, None, method == "HEAD")
            self.streams[sid] = st
            scheduled.start(self, st, meta)
            return
        body = RequestBody(self.loop) if has_body else None
        st = Stream(sid, body, method == "HEAD")
        self.streams[sid] = st
        request = self.new_request(method, url, pairs, body, client, version)
        # output of the handler, and of every task it starts, is tagged
        # with the request (a task copies the context it is created in)
        token = output.request_id.set(sid)
        try:
            try:
                result = self.worker.handler.call(request, self.worker.env, self.ctx)
            except BaseException as exc:
                self._handler_failed(st, exc)
                return
            if type(result) is _CoroutineType:
                # eager: the handler's first step runs now, inside its task,
                # so one that answers without waiting is answered in this
                # loop iteration (no extra turn per request); what comes
                # next runs in the task's context, as if in the task
                task, state, value, context = eager.step(result, self.loop)
                if state == 1:
                    context.run(self._respond, st, value)
                elif state == 2:
                    if not isinstance(value, asyncio.CancelledError):
                        context.run(self._handler_failed, st, value)
                else:
                    st.task = task
                    task.add_done_callback(functools.partial(self._handler_done, st),
                                           context=context)
            elif inspect.isawaitable(result):  # not a coroutine: a Future, say
                task, finished = eager.start(self._await_handler(st, result), self.loop)
                if not finished:
                    st.task = task  # else _respond may have set the body's pump task
            else:
                self._respond(st, result)
        finally:
            output.request_id.reset(token)

    def _on_do_ws(self, sid, meta):
        """A Durable Object's WebSocket event the C path left (its object
        not in memory, or busy; a close): workers/_durable_ws.py."""
        st = Stream(sid, None, False)
        self.streams[sid] = st
        _durable_host.start(self, st, meta, None)

    def _handler_done(self, st, task):
        """The handler's task ended (it waited for something first)."""
        if task.cancelled():
            return  # the client went away
        exc = task.exception()
        if exc is None:
            self._respond(st, task.result())
        elif not isinstance(exc, asyncio.CancelledError):
            self._handler_failed(st, exc)

    async def _await_handler(self, st, awaitable):
        try:
            result = await awaitable
        except asyncio.CancelledError:
            return  # the client went away
        except BaseException as exc:
            self._handler_failed(st, exc)
            return
        self._respond(st, result)

    def _handler_failed(self, st, exc):
        name = self.worker.name
        if isinstance(exc, LookupError) and exc.args and \
                exc.args[0] == getattr(self.worker.handler, "message", None):
            log_lines(name, exc.args[0])
            self._send_error(st, 500, f"Internal Server Error: {exc.args[0]}\n")
            return
        log_exception(name, exc)
        self._send_error(st, 500, f"Internal Server Error: worker '{name}' raised "
                                  f"{type(exc).__name__}; the traceback is in thaw's log.\n")

    def _send_error(self, st, status, text):
        if self.streams.get(st.sid) is not st:
            return
        self._queue(fast.response(st.sid, status, None, _ERROR_HEADERS, text.encode(),
                                   True, not st.is_head))
        self.streams.pop(st.sid, None)

    def _respond(self, st, resp):
        sid = st.sid
        if self.streams.get(sid) is not st:
            return  # cancelled meanwhile
        if not isinstance(resp, self.Response):
            what = "None" if resp is None else type(resp).__name__
            msg = (f"the fetch handler of worker '{self.worker.name}' returned {what}, "
                   f"not a Response: return workers.Response(...)")
            log_lines(self.worker.name, msg)
            self._send_error(st, 500, f"Internal Server Error: {msg}\n")
            return
        if resp._web_socket is not None:
            self._respond_ws(st, resp)
            return
        try:
            status, reason, pairs, body = resp._thaw_parts()
            no_body = status in _NO_BODY_STATUS or status < 200
            # the head leaves without content-length: thaw frames the body itself
            if body is None or type(body) is bytes or isinstance(body, (bytearray, memoryview)):
                data = fast.response(sid, status, reason, pairs, body, not no_body,
                                     not (no_body or st.is_head))
                del self.streams[sid]
                # _queue(data), inline: once per request
                self.out.append(data)
                self.out_size += len(data)
                if not self.flush_pending:
                    self.flush_pending = True
                    self.loop.call_soon(self._flush)
                return
            self._queue(fast.head(sid, status, reason, pairs))
        except Exception as exc:
            # e.g. headers too large for one frame: still answer the client
            self._handler_failed(st, exc)
            return
        self._respond_stream(st, body, no_body)

    def _respond_ws(self, st, resp):
        """Response(None, status=101, web_socket=client): the 101 goes out
        and the stream stays open for the socket's messages (WS_* frames)
        until the supervisor ends it with CANCEL (docs/websockets.md)."""
        server = resp._web_socket._peer
        if resp._web_socket._do_client is not None:
            # a Durable Object's socket (stub.fetch's 101): the supervisor
            # gives the client's connection to the object and ends this
            # request (workers/_durable_ws.py)
            try:
                self._queue(fast.head(st.sid, 101, resp._reason, resp.headers._pairs +
                                      [("x-thaw-do-ws", resp._web_socket._do_client)]))
            except Exception as exc:
                self._handler_failed(st, exc)
                return
            st.head_sent = True
            return
        if server is None:
            # fetch()'s own 101 returned as is: the client's socket is
            # joined to the server's (workers/_websocket.py)
            from workers._websocket import WebSocket, _join
            server = WebSocket()
            _join(server, resp._web_socket)
        sid = st.sid
        name = self.worker.name
        try:
            self._queue(fast.head(sid, 101, resp._reason, resp.headers._pairs))
        except Exception as exc:
            self._handler_failed(st, exc)
            return
        st.head_sent = True
        st.ws = server
        queue, frame = self._queue, fast.frame

        def send(ftype, payload):
            queue(frame(ftype, sid, payload))

        server._attach(send, lambda exc: log_exception(name, exc))

    def _respond_stream(self, st, body, no_body):
        st.head_sent = True
        if st.is_head or no_body:
            self.loop.create_task(_aclose_iter(body))
            self._queue(fast.frame(ipc.RESP_END, st.sid))
            self.streams.pop(st.sid, None)
            return
        st.task = self.loop.create_task(self._pump(st, body))

    async def _pump(self, st, body):
        """Streams an (async) iterator body; a cancel (client gone) closes
        the iterator so its `finally` blocks run."""
        sid = st.sid
        try:
            if hasattr(body, "__aiter__"):
                async for chunk in body:
                    self._send_chunk(sid, chunk)
                    await self._drain()
            else:
                for chunk in body:
                    self._send_chunk(sid, chunk)
                    await self._drain()
        except BaseException as exc:
            if self.streams.get(sid) is not st:
                return  # our own cancel: the client went away
            # the body failed (a CancelledError raised by the iterator itself
            # included): cut the response so the client sees it is incomplete
            log_exception(self.worker.name, exc)
            self._queue(fast.frame(ipc.RESP_ABORT, sid))
            return
        finally:
            self.streams.pop(sid, None)
            await _aclose_iter(body)
        self._queue(fast.frame(ipc.RESP_END, sid))

    def _send_chunk(self, sid, chunk):
        if isinstance(chunk, str):
            chunk = chunk.encode()
        elif not isinstance(chunk, (bytes, bytearray)):
            chunk = bytes(chunk)
        if chunk:
            self._queue(fast.body(sid, chunk))


async def _aclose_iter(body):
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except BaseException:
            pass
    else:
        _close_iter(body)


def _close_iter(body):
    close = getattr(body, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            pass


def serve(fd, worker, iid, prefault=b"", warm=()):
    """Entry point of a freshly forked instance. prefault: the pages its
    siblings wrote early, copied now in a few system calls rather than one
    fault each during the first request (src/pool/prefault.h)."""
    # ahead of demand only: with a request already waiting (forked on
    # request) copying the whole list first would delay it more than the
    # faults it saves
    if prefault and not select.select([fd], [], [], 0)[0]:
        _thaw.prefault(prefault)
    _thaw.set_name("thaw-instance")
    sandbox.instance(iid)
    output.reset_budget()
    entropy.reseed_after_fork()
    Instance(fd, worker, iid, warm).run()
