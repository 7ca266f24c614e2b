"""The standard library's socket API inside a worker, brokered by thaw.

An instance has no network of its own (the sandbox gives it an empty
network namespace): thaw's supervisor resolves names and makes TCP
connections under the egress policy (src/bind/connect.c) and passes the
connected socket back over the instance's channel. This module routes the
stdlib there, so unmodified `requests`, `urllib3`, `httpx`, `http.client`,
`smtplib`, `redis` and asyncio's `open_connection` work:

  socket.getaddrinfo            the supervisor resolves ("resolve" op)
  socket.socket(AF_INET[6], SOCK_STREAM)
                                the supervisor makes the (unconnected)
                                socket ("socket" op): the sandbox lets an
                                instance create no inet socket itself
  socket.socket.connect(_ex)    AF_INET/AF_INET6 stream sockets: the
                                supervisor connects; its socket is dup2()'d
                                onto this one's fd, so the object (and
                                every reference to it) stays the same
  loop.getaddrinfo/sock_connect the same, without blocking the event loop
                                (asyncio.open_connection, create_connection)

UDP and raw sockets cannot be made (PermissionError): thaw brokers TCP
only. Sandboxed, no other socket can be made either (unix, netlink: the
seccomp filter refuses socket(), PermissionError with a message saying
so); sockets made from an existing fd (fileno=...) are left alone (thaw's
own channel is one), and socket.socketpair() (AF_UNIX SOCK_STREAM, as
asyncio uses) works.

install() runs once in the template, so every instance inherits it.
"""
import asyncio
import errno
import os
import socket
import weakref

from workers import _bind

_BINDING = "__connect"
_INET = (socket.AF_INET, socket.AF_INET6)

_orig_init = socket.socket.__init__
_orig_connect = socket.socket.connect
_orig_connect_ex = socket.socket.connect_ex
_orig_getaddrinfo = socket.getaddrinfo

# options a caller may have set before connect() that dup2 would lose
_COPIED_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY),
                   (socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                   (socket.SOL_SOCKET, socket.SO_SNDBUF),
                   (socket.SOL_SOCKET, socket.SO_RCVBUF)]
for _name in ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT"):
    if hasattr(socket, _name):
        _COPIED_OPTIONS.append((socket.IPPROTO_TCP, getattr(socket, _name)))

_max_connections = 100
_live = weakref.WeakSet()  # brokered sockets, for the per-instance limit


class _Refused(Exception):
    pass


def _brokered(sock):
    return sock.family in _INET and sock.type == socket.SOCK_STREAM


_connecting = 0  # connects in flight, counted too


def _check_limit(sock=None):
    # sock: the socket about to connect, counted by _connecting instead
    n = sum(1 for s in list(_live) if s is not sock and s.fileno() >= 0) + _connecting
    if n >= _max_connections:
        raise PermissionError(
            f"this instance already has {n} TCP sockets open, the most "
            f"thaw.egress.max_connections ({_max_connections}) allows: close sockets "
            f"you are done with (or raise max_connections in [thaw.egress])")


def _args(sock, address):
    if not isinstance(address, tuple) or len(address) < 2:
        raise TypeError(f"{sock.family.name} address must be a (host, port) tuple, "
                        f"not {address!r}")
    host, port = address[0], address[1]
    if isinstance(host, bytes):
        host = host.decode("idna")
    if not isinstance(host, str) or not isinstance(port, int):
        raise TypeError(f"{sock.family.name} address must be (str, int), not {address!r}")
    if not 0 < port < 65536:
        raise OverflowError("connect(): port must be 1-65535.")
    return {"hostname": host.strip("[]") if host else host, "port": port,
            "family": 6 if sock.family == socket.AF_INET6 else 4}


def _os_error(exc, address):
    """The binding's error as the OSError the stdlib would raise."""
    msg = str(exc)
    if isinstance(exc, _bind.JsException) and exc.name == "DNSError":
        return socket.gaierror(socket.EAI_NONAME, exc.message)
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionRefusedError(errno.ECONNREFUSED, msg)
    if isinstance(exc, PermissionError):
        return PermissionError(errno.EACCES, msg)
    if isinstance(exc, TimeoutError):
        return TimeoutError(errno.ETIMEDOUT, msg)
    if isinstance(exc, OSError):
        return exc
    return ConnectionError(errno.ECONNABORTED, msg)


def _adopt(sock, fd):
    """Puts the connected socket fd in place of sock's own fd."""
    if fd is None:
        raise OSError(errno.EMFILE, "the connected socket thaw made did not arrive: this "
                      "instance has too many open files")
    try:
        old = sock.fileno()
        keep = []
        for level, opt in _COPIED_OPTIONS:
            try:
                keep.append((level, opt, sock.getsockopt(level, opt)))
            except OSError:
                pass
        os.dup2(fd, old, inheritable=False)
    finally:
        os.close(fd)
    for level, opt, value in keep:
        try:
            if sock.getsockopt(level, opt) != value:
                sock.setsockopt(level, opt, value)
        except OSError:
            pass
    sock.settimeout(sock.gettimeout())  # the fd's O_NONBLOCK follows the object
    _live.add(sock)


_TYPE_FLAGS = getattr(socket, "SOCK_NONBLOCK", 0) | getattr(socket, "SOCK_CLOEXEC", 0)
# the sandbox's seccomp filter refuses socket() of every family: a unix
# socket of its own could reach the host's pathname sockets
_OWN_REFUSED = ("workers cannot open sockets of their own (unix, netlink, raw...): "
                "thaw makes a worker's TCP connections (socket.socket(), "
                "workers.connect()) while a request is handled")
_UDP_REFUSED = ("thaw brokers TCP connections only: UDP and raw sockets are not "
                "available to workers")


def _init(self, family=-1, type=-1, proto=-1, fileno=None):
    """socket.socket(): an AF_INET/AF_INET6 stream socket made while the
    instance runs comes from the supervisor (the sandbox's seccomp filter
    refuses the instance socket(AF_INET...)); everything else as usual."""
    fam = socket.AF_INET if family == -1 else family
    typ = socket.SOCK_STREAM if type == -1 else type
    if fileno is not None:
        return _orig_init(self, family, type, proto, fileno)
    if fam not in _INET:
        try:
            return _orig_init(self, family, type, proto, fileno)
        except PermissionError:
            raise PermissionError(errno.EPERM, _OWN_REFUSED) from None
    if _bind._transport is None:
        # the template (the worker's top level): no broker to ask
        try:
            return _orig_init(self, family, type, proto, fileno)
        except PermissionError:
            raise PermissionError(
                errno.EACCES, "TCP sockets can be made while a request (or a scheduled "
                "event) is handled, not at the top level of the worker: the sandbox "
                "gives workers no network, thaw makes their connections") from None
    if typ & ~_TYPE_FLAGS != socket.SOCK_STREAM or proto not in (-1, 0, socket.IPPROTO_TCP):
        raise PermissionError(errno.EACCES, _UDP_REFUSED)
    _check_limit()
    try:
        _result, fd = _bind.call_sync(_BINDING, "socket",
                                      {"family": 6 if fam == socket.AF_INET6 else 4})
    except Exception as exc:
        raise _os_error(exc, None) from None
    if fd is None:
        raise OSError(errno.EMFILE, "the socket thaw made did not arrive: this instance "
                      "has too many open files")
    try:
        _orig_init(self, fam, typ, socket.IPPROTO_TCP if proto == -1 else proto, fd)
    except BaseException:
        os.close(fd)
        raise
    # SOCK_NONBLOCK, or socket.setdefaulttimeout(): the fd's O_NONBLOCK
    # follows the object's timeout
    self.settimeout(self.gettimeout())
    _live.add(self)


def _connect(self, address):
    if self.family not in _INET:
        return _orig_connect(self, address)
    if self.type != socket.SOCK_STREAM:
        raise PermissionError(errno.EACCES, _UDP_REFUSED)
    args = _args(self, address)
    reserve(self)
    try:
        _result, fd = _bind.call_sync(_BINDING, "connect", args, self.gettimeout() or None)
    except Exception as exc:
        raise _os_error(exc, address) from None
    finally:
        release()
    _adopt(self, fd)


def _connect_ex(self, address):
    if self.family not in _INET:
        return _orig_connect_ex(self, address)
    try:
        _connect(self, address)
    except OSError as exc:
        if exc.errno:
            return exc.errno
        raise
    return 0


def _is_numeric(host):
    for fam in _INET:
        try:
            socket.inet_pton(fam, host)
            return True
        except (OSError, ValueError):
            pass
    return False


_PROTO = {socket.SOCK_STREAM: socket.IPPROTO_TCP, socket.SOCK_DGRAM: socket.IPPROTO_UDP,
          socket.SOCK_RAW: 0}


def _answers(host, port, family, type, proto, flags, addresses):
    if isinstance(port, (str, bytes)):
        port = port.decode() if isinstance(port, bytes) else port
        port = int(port) if port.isdigit() else socket.getservbyname(port, "tcp")
    port = port or 0
    types = [type] if type else [socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW]
    out = []
    canon = host if flags & socket.AI_CANONNAME else ""
    for fam, addr in addresses:
        af = socket.AF_INET6 if fam == 6 else socket.AF_INET
        if family and family != af:
            continue
        sa = (addr, port, 0, 0) if af == socket.AF_INET6 else (addr, port)
        for t in types:
            out.append((af, socket.SocketKind(t), proto or _PROTO.get(t, 0), canon, sa))
            canon = ""
    if not out:
        raise socket.gaierror(socket.EAI_ADDRFAMILY if family else socket.EAI_NONAME,
                              f"{host} has no address of the requested family")
    return out


def _resolve_args(host, family):
    if isinstance(host, bytes):
        host = host.decode("idna")
    return {"hostname": host}


def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    """socket.getaddrinfo: names are resolved by thaw's supervisor."""
    if host is None or family not in (0, socket.AF_INET, socket.AF_INET6) or \
            (isinstance(host, str) and _is_numeric(host)) or flags & socket.AI_NUMERICHOST:
        return _orig_getaddrinfo(host, port, family, type, proto, flags)
    try:
        result, _fd = _bind.call_sync(_BINDING, "resolve", _resolve_args(host, family))
    except _bind.JsException as exc:
        raise socket.gaierror(socket.EAI_NONAME, exc.message) from None
    except TypeError as exc:
        raise socket.gaierror(socket.EAI_NONAME, str(exc)) from None
    return _answers(host, port, family, type, proto, flags, result["addresses"])


def patch_loop(loop):
    """The instance's event loop: asyncio resolves and connects through the
    supervisor without blocking (create_connection -> getaddrinfo and
    sock_connect)."""
    orig_sock_connect = loop.sock_connect
    orig_getaddrinfo = loop.getaddrinfo

    async def sock_connect(sock, address):
        if not _brokered(sock):
            if sock.family in _INET:
                _connect(sock, address)  # raises PermissionError
            return await orig_sock_connect(sock, address)
        args = _args(sock, address)
        reserve(sock)
        try:
            _result, fd = await _bind.call_fd(_BINDING, "connect", args)
        except Exception as exc:
            raise _os_error(exc, address) from None
        finally:
            release()
        _adopt(sock, fd)

    async def getaddrinfo_async(host, port, *, family=0, type=0, proto=0, flags=0):
        if host is None or family not in (0, socket.AF_INET, socket.AF_INET6) or \
                (isinstance(host, str) and _is_numeric(host)) or flags & socket.AI_NUMERICHOST:
            return await orig_getaddrinfo(host, port, family=family, type=type, proto=proto,
                                          flags=flags)
        try:
            result, _ = await _bind.call(_BINDING, "resolve", _resolve_args(host, family))
        except _bind.JsException as exc:
            raise socket.gaierror(socket.EAI_NONAME, exc.message) from None
        return _answers(host, port, family, type, proto, flags, result["addresses"])

    loop.sock_connect = sock_connect
    loop.getaddrinfo = getaddrinfo_async
    if not isinstance(loop, asyncio.BaseEventLoop):
        # uvloop's create_connection resolves and connects in libuv, past
        # the two above: connect here, then hand it the connected socket
        loop.create_connection = _brokered_create_connection(loop, loop.create_connection)


def _brokered_create_connection(loop, orig_create_connection):
    async def create_connection(protocol_factory, host=None, port=None, *, ssl=None,
                                family=0, proto=0, flags=0, sock=None, local_addr=None,
                                server_hostname=None, **kwargs):
        if sock is not None or local_addr is not None or (host is None and port is None):
            return await orig_create_connection(
                protocol_factory, host, port, ssl=ssl, family=family, proto=proto,
                flags=flags, sock=sock, local_addr=local_addr,
                server_hostname=server_hostname, **kwargs)
        if ssl and server_hostname is None:
            server_hostname = host  # what create_connection(host=...) would check
        infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM,
                                       proto=proto, flags=flags)
        errors = []
        for fam, _type, fproto, _canon, addr in infos:
            sock = socket.socket(fam, socket.SOCK_STREAM, fproto)
            try:
                sock.setblocking(False)
                await loop.sock_connect(sock, addr)
            except OSError as exc:
                sock.close()
                errors.append(exc)
                continue
            except BaseException:
                sock.close()
                raise
            return await orig_create_connection(protocol_factory, ssl=ssl, sock=sock,
                                                server_hostname=server_hostname, **kwargs)
        if len(errors) == 1:
            raise errors[0]
        raise OSError(f"Multiple exceptions: {', '.join(str(e) for e in errors)}")
    return create_connection


_ca_file = None


def ca_file():
    """thaw.egress.ca_file (absolute), or None for the system's CA store."""
    return _ca_file


def _egress(config):
    egress = ((config.get("thaw") or {}).get("egress") or {})
    return egress if isinstance(egress, dict) else {}


def configured_ca_file(config, wdir):
    """thaw.egress.ca_file, absolute (relative to the worker's directory),
    or None. The supervisor checked the key (src/bind/egress-config.c)."""
    ca = _egress(config).get("ca_file")
    return os.path.join(wdir, ca) if isinstance(ca, str) and ca else None


def install(config, wdir):
    """Patches the socket module; once, in the template."""
    global _max_connections, _ca_file
    egress = _egress(config)
    _max_connections = int(egress.get("max_connections") or 100)
    _ca_file = configured_ca_file(config, wdir)
    socket.socket.__init__ = _init
    socket.socket.connect = _connect
    socket.socket.connect_ex = _connect_ex
    socket.getaddrinfo = getaddrinfo


def track(sock):
    """A socket workers.connect() made: counted against max_connections."""
    _live.add(sock)


def reserve(sock=None):
    """Counts a connect in flight (of sock, when it is one of the counted
    sockets) against the limit (PermissionError when over it); release()
    when it ended, either way."""
    global _connecting
    _check_limit(sock)
    _connecting += 1


def release():
    global _connecting
    _connecting -= 1
