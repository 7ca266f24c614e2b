"""TCP sockets: `connect()`, the Sockets API of Cloudflare Workers
(`cloudflare:sockets`), for Python.

    from workers import connect          # or: from workers.sockets import connect

    sock = connect("redis.example.com:6379")
    await sock.writable.write(b"PING\\r\\n")
    reply = await sock.readable.read()
    await sock.close()

thaw's supervisor makes the connection under the egress policy
(src/bind/connect.c) and hands the connected socket to the instance; TLS
("on", or "starttls" then start_tls()) is done here with Python's ssl, with
certificate and hostname checks on. The socket is an asyncio transport; its
readable and writable sides are small async stream objects.
"""
# asyncio, ssl and socket are imported when a socket is made: `workers` is
# preloaded by every process and stays light (tests/python/test_sdk.py)
from . import _bind

__all__ = ["connect", "Socket", "SocketError", "SocketInfo"]

_BINDING = "__connect"
_MODES = ("off", "on", "starttls")
_READ_SIZE = 64 * 1024


class SocketError(_bind.JsException):
    """A connection that failed or broke: ``str(e)`` starts with
    "SocketError: " (the policy refused it, the name did not resolve, the
    peer refused or reset it, the TLS handshake failed, the connect timed
    out)."""

    def __init__(self, message):
        super().__init__("SocketError", message)


class SocketInfo(dict):
    """What `await socket.opened` gives: {"remoteAddress", "localAddress"}
    ("address:port"; IPv6 in brackets). Keys also read as attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _parse_address(address):
    if isinstance(address, str):
        host, sep, port = address.rpartition(":")
        if not sep or not host:
            raise TypeError(f"connect(): the address {address!r} must be \"host:port\" "
                            f"(or {{\"hostname\": ..., \"port\": ...}})")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not port.isdigit():
            raise TypeError(f"connect(): the port in {address!r} must be a number from 1 "
                            f"to 65535")
        port = int(port)
    elif isinstance(address, dict):
        unknown = set(address) - {"hostname", "port"}
        if unknown:
            raise TypeError(f"connect(): unknown address keys {sorted(unknown)}; the keys "
                            f"are hostname and port")
        host, port = address.get("hostname"), address.get("port")
        if not isinstance(host, str):
            raise TypeError("connect(): the address's hostname must be a string")
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if isinstance(port, bool) or not isinstance(port, int):
            raise TypeError(f"connect(): the address's port must be a number from 1 to "
                            f"65535, not {port!r}")
    else:
        raise TypeError(f"connect(): address must be \"host:port\" or a dict with hostname "
                        f"and port, not {type(address).__name__}")
    if not host or any(c.isspace() or c in "/?#@" for c in host):
        raise TypeError(f"connect(): {host!r} is not a valid hostname")
    if not 0 < port < 65536:
        raise TypeError(f"connect(): port {port} is out of range: it must be from 1 to "
                        f"65535")
    return host, port


def _fmt(addr):
    if not addr:
        return ""
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _tls_context():
    # thaw.egress.ca_file (the fetch binding's CA file) when set, else the
    # system's CA store; checks on
    import ssl
    from thaw_runtime import netpatch
    return ssl.create_default_context(cafile=netpatch.ca_file())


def _retrieve(fut):
    if not fut.cancelled():
        fut.exception()  # no "exception was never retrieved" in the log


class _Protocol:
    """The transport's protocol (an asyncio.Protocol by its methods):
    buffers what arrives for `readable`, applies backpressure to the peer,
    and tells the owning Socket about EOF and loss. Survives start_tls()
    (the new Socket takes it over)."""

    def __init__(self, owner):
        self.owner = owner
        self.transport = None
        self.buf = bytearray()
        self.eof = False
        self.error = None
        self.waiter = None
        self.paused = False
        self.write_paused = False
        self.drain_waiters = []

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        self._wake()
        if len(self.buf) > 4 * _READ_SIZE and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def eof_received(self):
        self.eof = True
        self._wake()
        return self.owner._on_eof()

    def connection_lost(self, exc):
        if exc is not None and self.error is None:
            self.error = exc
        self.eof = True
        self._wake()
        for w in self.drain_waiters:
            if not w.done():
                w.set_result(None)
        self.drain_waiters = []
        self.owner._on_lost(exc)

    def pause_writing(self):
        self.write_paused = True

    def resume_writing(self):
        self.write_paused = False
        for w in self.drain_waiters:
            if not w.done():
                w.set_result(None)
        self.drain_waiters = []

    def _wake(self):
        w, self.waiter = self.waiter, None
        if w is not None and not w.done():
            w.set_result(None)

    async def read(self, n, loop):
        while not self.buf:
            if self.error is not None:
                raise SocketError(f"the connection broke: {self.error}")
            if self.eof:
                return b""
            self.waiter = loop.create_future()
            await self.waiter
        data = bytes(self.buf[:n])
        del self.buf[:n]
        if self.paused and len(self.buf) <= _READ_SIZE:
            self.paused = False
            self.transport.resume_reading()
        return data

    async def drain(self, loop):
        while self.write_paused and not self.transport.is_closing():
            w = loop.create_future()
            self.drain_waiters.append(w)
            await w


class _Deferred:
    """What write() returns: awaiting it waits for the bytes to be taken by
    the socket (backpressure). Not awaiting it is fine: the bytes are
    already queued."""

    __slots__ = ("_fn",)

    def __init__(self, fn):
        self._fn = fn

    def __await__(self):
        return self._fn().__await__()


class Readable:
    """`socket.readable`: `await read(n)` (b"" at the end), `async for
    chunk in readable`."""

    def __init__(self, sock):
        self._sock = sock

    async def read(self, n=_READ_SIZE):
        s = self._sock
        s._usable()
        await s._ready()
        return await s._proto.read(max(1, int(n)), s._loop)

    def __aiter__(self):
        return self

    async def __anext__(self):
        chunk = await self.read()
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def cancel(self):
        """Stops reading: the socket closes once the writable side is done
        too (as workerd does for a cancelled readable)."""
        await self._sock.close()


class Writable:
    """`socket.writable`: `await write(data)` (bytes or str), `await close()`
    (ends our side: the peer reads EOF; the readable side stays open)."""

    def __init__(self, sock):
        self._sock = sock
        self._queued = []

    def write(self, data):
        s = self._sock
        s._usable()
        if isinstance(data, str):
            data = data.encode()
        elif not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"write() takes bytes or str, not {type(data).__name__}")
        if s._write_closed:
            raise TypeError("the socket's writable side is closed: cannot write() after "
                            "close() or after the peer ended the connection "
                            "(allow_half_open=False)")
        if s._proto is not None and s._proto.transport is not None:
            s._proto.transport.write(bytes(data))
        else:
            self._queued.append(bytes(data))
        return _Deferred(s._drain)

    def close(self):
        s = self._sock
        s._usable()
        s._write_closed = True
        if s._proto is not None:
            s._end_writing_now()
        return _Deferred(s._drain_end)

    async def abort(self, reason=None):
        await self._sock.close()


class Socket:
    """A TCP connection made by `connect()`. The connection completes in the
    background: `await socket.opened` for its addresses (or its error)."""

    def __init__(self, host, port, secure_transport, allow_half_open, _upgrade_of=None):
        import asyncio
        self._loop = asyncio.get_running_loop()
        self._host = host
        self._port = port
        self._mode = secure_transport
        self._half_open = allow_half_open
        self._proto = None
        self._write_closed = False
        self._upgraded_away = False
        self._close_requested = False
        self._tls_started = False
        self._upgraded = _upgrade_of is not None
        self.opened = self._loop.create_future()
        self.closed = self._loop.create_future()
        self.opened.add_done_callback(_retrieve)
        self.closed.add_done_callback(_retrieve)
        self.readable = Readable(self)
        self.writable = Writable(self)
        if _upgrade_of is None:
            self._task = self._loop.create_task(self._open())
        else:
            self._task = self._loop.create_task(self._open_tls(_upgrade_of))

    # -- what workerd exposes -------------------------------------------
    @property
    def secure_transport(self):
        return self._mode

    secureTransport = secure_transport

    @property
    def upgraded(self):
        """True for the socket start_tls() returned."""
        return self._upgraded

    def start_tls(self, expected_server_hostname=None):
        """The TLS socket over this connection (secure_transport="starttls"
        only, once). This socket is unusable afterwards."""
        if self._mode != "starttls":
            raise TypeError("start_tls() needs a socket made with "
                            "connect(..., secure_transport=\"starttls\"), not "
                            f"secure_transport=\"{self._mode}\"")
        if self._tls_started:
            raise TypeError("start_tls() can be called only once on a socket")
        self._tls_started = True
        self._upgraded_away = True
        return Socket(expected_server_hostname or self._host, self._port, "on",
                      self._half_open, _upgrade_of=self)

    startTls = start_tls

    def close(self):
        """Closes both sides (pending writes are sent first); awaitable:
        resolves once closed."""
        if self._proto is not None and self._proto.transport is not None:
            self._write_closed = True
            self._proto.transport.close()
        else:
            # still connecting: what was written goes out first, then it closes
            self._write_closed = True
            self._close_requested = True
        return _Deferred(self._wait_closed)

    # -- inside -----------------------------------------------------------
    def _usable(self):
        if self._upgraded_away:
            raise TypeError("this socket was upgraded with start_tls(): use the socket "
                            "start_tls() returned")

    async def _ready(self):
        import asyncio
        await asyncio.shield(self.opened)

    async def _wait_closed(self):
        import asyncio
        try:
            await asyncio.shield(self.closed)
        except SocketError:
            pass  # close() itself does not fail; `await socket.closed` says why

    async def _drain(self):
        await self._ready()
        await self._proto.drain(self._loop)
        if self._proto.error is not None:
            raise SocketError(f"the connection broke: {self._proto.error}")

    def _end_writing_now(self):
        t = self._proto.transport
        if t.is_closing():
            return
        if t.can_write_eof():
            t.write_eof()
            if self._proto.eof:
                t.close()  # both sides ended
        else:
            t.close()  # TLS has no half-close

    async def _drain_end(self):
        try:
            await self._ready()
        except SocketError:
            return
        await self._proto.drain(self._loop)

    def _set_closed(self, exc):
        if not self.closed.done():
            if exc is None:
                self.closed.set_result(None)
            else:
                self.closed.set_exception(exc)
        if not self.opened.done():
            self.opened.set_exception(exc or SocketError("the socket was closed before it "
                                                         "opened"))

    def _fail(self, message):
        self._set_closed(SocketError(message))

    def _on_eof(self):
        if self._upgraded_away:
            return True
        if self._mode == "on":
            self._write_closed = True
            return False  # TLS: the peer's close_notify ends the connection
        if self._half_open:
            return True  # our writable side stays open
        self._write_closed = True
        return False  # asyncio closes the transport once its writes are out

    def _on_lost(self, exc):
        if self._upgraded_away:
            return
        self._write_closed = True
        self._set_closed(SocketError(f"the connection broke: {exc}") if exc else None)

    def _opened(self, transport):
        self.opened.set_result(SocketInfo(
            remoteAddress=_fmt(transport.get_extra_info("peername")),
            localAddress=_fmt(transport.get_extra_info("sockname"))))
        for data in self.writable._queued:
            transport.write(data)
        self.writable._queued = []
        if self._close_requested:
            transport.close()
        elif self._write_closed:
            self._end_writing_now()

    async def _open(self):
        import asyncio
        import socket
        from thaw_runtime import netpatch
        try:
            netpatch.reserve()
            try:
                _result, fd = await _bind.call_fd(_BINDING, "connect",
                                                  {"hostname": self._host, "port": self._port})
            finally:
                netpatch.release()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(str(exc.message if isinstance(exc, _bind.JsException) else exc))
            return
        sock = socket.socket(fileno=fd)
        netpatch.track(sock)
        proto = _Protocol(self)
        try:
            if self._mode == "on":
                await self._loop.create_connection(
                    lambda: proto, sock=sock, ssl=_tls_context(),
                    server_hostname=self._host)
            else:
                await self._loop.create_connection(lambda: proto, sock=sock)
        except asyncio.CancelledError:
            sock.close()
            raise
        except Exception as exc:
            sock.close()
            what = "the TLS handshake with" if self._mode == "on" else "setting up"
            self._fail(f"{what} {self._host}:{self._port} failed: {exc}")
            return
        self._proto = proto
        self._opened(proto.transport)

    async def _open_tls(self, old):
        try:
            await old._ready()
        except SocketError as exc:
            self._fail(exc.message)
            return
        proto = old._proto
        old._set_closed(None)
        if proto.transport.is_closing():
            self._fail("the connection closed before start_tls()")
            return
        await proto.drain(self._loop)
        proto.owner = self
        # the bytes already read belong to the plain-text conversation
        proto.buf.clear()
        try:
            transport = await self._loop.start_tls(proto.transport, proto, _tls_context(),
                                                   server_hostname=self._host)
        except Exception as exc:
            proto.transport.close()
            self._fail(f"the TLS handshake with {self._host}:{self._port} failed: {exc}")
            return
        proto.transport = transport
        proto.eof = False
        self._proto = proto
        self._opened(transport)


def connect(address, *, secure_transport="off", allow_half_open=False,
            secureTransport=None, allowHalfOpen=None):
    """Opens a TCP connection to address ("host:port" or {"hostname": ...,
    "port": ...}) and returns its Socket at once; the connection completes
    in the background (`await socket.opened`).

    secure_transport: "off" (plain TCP), "on" (TLS from the start) or
    "starttls" (plain, then `socket.start_tls()`). allow_half_open: when
    False (the default) the writable side closes when the peer ends its
    side."""
    if secureTransport is not None:
        secure_transport = secureTransport
    if allowHalfOpen is not None:
        allow_half_open = allowHalfOpen
    if secure_transport not in _MODES:
        raise TypeError(f"connect(): secure_transport must be \"off\", \"on\" or "
                        f"\"starttls\", not {secure_transport!r}")
    host, port = _parse_address(address)
    import asyncio
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError("connect() works while a request (or a scheduled event) is "
                           "handled, inside the async handler: not at the top level of "
                           "the worker") from None
    return Socket(host, port, secure_transport, bool(allow_half_open))
