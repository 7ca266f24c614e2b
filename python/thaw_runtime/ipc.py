"""The IPC frames of src/ipc/ipc-proto.h, and a blocking channel for the
zygote and templates (instances use the asyncio loop in instance.py)."""
import os
import socket
import struct

HEADER = struct.Struct("<IBBHI")
HEADER_SIZE = HEADER.size
MAX_PAYLOAD = 1024 * 1024
CHUNK = 64 * 1024
_U32 = struct.Struct("<I")

REQ_HEAD, REQ_BODY, REQ_END, CANCEL = 1, 2, 3, 4
DO_WS = 5  # a Durable Object's WebSocket event (src/zygote/dows.c)
RESP_HEAD, RESP_BODY, RESP_END, RESP_ABORT = 16, 17, 18, 19
WS_TEXT, WS_BINARY, WS_CLOSE = 20, 21, 22
BIND_CALL, BIND_REPLY, BIND_DATA, BIND_END, BIND_CANCEL, BUSY = 32, 33, 34, 35, 36, 37
# an outbound WebSocket's messages on its binding call: WS_* + 18
BIND_WS_TEXT, BIND_WS_BINARY, BIND_WS_CLOSE = 38, 39, 40
TOML, TOML_OK, TOML_ERR = 48, 49, 50
BUILD, BUILT, BUILD_ERR, SPAWN, SPAWNED, SPAWN_ERR, HELLO, PREFAULT, WARM, STDIO = (
    51, 52, 53, 54, 55, 56, 57, 58, 59, 60)

F_FD = 0x01
F_MORE = 0x02


try:
    # one class for both decoders: the instances' (_thaw_fast, in C:
    # src/zygote/fast-py.h) and this one
    from _thaw_fast import ProtocolError
except ImportError:  # outside thaw-zygote, without build/py
    class ProtocolError(Exception):
        pass


def frame(ftype, stream, payload=b"", flags=0):
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"frame payload of {len(payload)} bytes over the maximum")
    return HEADER.pack(len(payload), ftype, flags, 0, stream) + payload


def fields(*items):
    out = []
    for item in items:
        if isinstance(item, str):
            item = item.encode("utf-8", "surrogateescape")
        out.append(_U32.pack(len(item)))
        out.append(item)
    return b"".join(out)


def parse_fields(payload):
    out = []
    off, n = 0, len(payload)
    while off < n:
        if n - off < 4:
            raise ProtocolError("truncated field length")
        (ln,) = _U32.unpack_from(payload, off)
        off += 4
        if ln > n - off:
            raise ProtocolError("field overruns its frame")
        out.append(bytes(payload[off:off + ln]))
        off += ln
    return out


def decode(buf, off):
    """Returns (ftype, flags, stream, payload bytes, next_off) or None.
    The payload is a copy, so buf may be resized afterwards."""
    if len(buf) - off < HEADER_SIZE:
        return None
    ln, ftype, flags, reserved, stream = HEADER.unpack_from(buf, off)
    if ln > MAX_PAYLOAD or reserved:
        raise ProtocolError("bad frame header")
    end = off + HEADER_SIZE + ln
    if len(buf) < end:
        return None
    return ftype, flags, stream, bytes(buf[off + HEADER_SIZE:end]), end


class BlockingChannel:
    """A channel for processes that do one thing at a time: the zygote and
    templates wait for the next command and answer it."""

    def __init__(self, fd):
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(True)
        self.buf = bytearray()
        self.fds = []

    def close_in_child(self):
        """Closes the fd in a forked child without leaving a socket object
        that would close a reused fd number later."""
        os.close(self.sock.detach())
        for fd in self.fds:
            os.close(fd)
        self.fds = []

    def fileno(self):
        return self.sock.fileno()

    def send(self, ftype, stream, payload=b"", fd=None):
        data = frame(ftype, stream, payload, F_FD if fd is not None else 0)
        if fd is None:
            self.sock.sendall(data)
        else:
            socket.send_fds(self.sock, [data[:1]], [fd])
            self.sock.sendall(data[1:])

    def recv(self):
        """Returns (ftype, stream, [fields...] or payload bytes, fd) or None at EOF."""
        while True:
            got = decode(self.buf, 0)
            if got:
                ftype, flags, stream, payload, end = got
                del self.buf[:end]
                fd = None
                if flags & F_FD:
                    if not self.fds:
                        raise ProtocolError("frame announces an fd that did not arrive")
                    fd = self.fds.pop(0)
                return ftype, stream, payload, fd
            data, fds, _flags, _addr = socket.recv_fds(
                self.sock, 65536, 8, socket.MSG_CMSG_CLOEXEC)
            self.fds.extend(fds)
            if not data:
                return None
            self.buf += data
