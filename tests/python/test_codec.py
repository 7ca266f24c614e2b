"""_thaw_fast (src/zygote/fast-py.h), the instances' frame codec in C,
against python/thaw_runtime/ipc.py, the reference: the same frames out,
the same request heads read, malformed input refused with the same
ProtocolError and message."""
import struct

import pytest

try:
    import _thaw_fast as codec
except ImportError as exc:  # not skipped: a missing build is a failure
    raise ImportError("build/py/_thaw_fast.so is missing: run `make`") from exc

from thaw_runtime import ipc


def head_frame(sid, *items):
    return ipc.frame(ipc.REQ_HEAD, sid, ipc.fields(*items))


def reference_head(payload, split_commas):
    """What instance.py made of a REQ_HEAD before the codec (in Python)."""
    f = ipc.parse_fields(payload)
    method = f[0].decode("latin-1")
    url = f[1].decode("utf-8", "surrogateescape")
    pairs = [(f[i].decode("latin-1"), f[i + 1].decode("latin-1"))
             for i in range(2, len(f) - 1, 2)]
    meta = {}
    while pairs and pairs[0][0].startswith(":"):
        name, value = pairs.pop(0)
        meta[name] = value
    if split_commas:
        out = []
        for name, value in pairs:
            if "," in value:
                out.extend((name, p.strip()) for p in value.split(",") if p.strip())
            else:
                out.append((name, value))
        pairs = out
    has_body = False
    for name, value in pairs:
        if name == "transfer-encoding":
            has_body = True
            break
        if name == "content-length":
            has_body = value.strip() not in ("", "0")
            break
    client = None
    if ":client-ip" in meta:
        client = (meta[":client-ip"], int(meta.get(":client-port") or 0))
    return method, url, [(n.lower(), v) for n, v in pairs], client, \
        meta.get(":http-version", "1.1"), meta, has_body


HEADS = [
    ("GET", "http://127.0.0.1:8080/", ":client-ip", "127.0.0.1", ":client-port", "40000",
     ":http-version", "1.1", "host", "127.0.0.1:8080"),
    ("POST", "http://h/p?q=1", ":http-version", "1.0", "content-length", "5",
     "content-type", "text/plain"),
    ("PUT", "http://h/", "transfer-encoding", "chunked", "content-length", "0"),
    ("GET", "http://h/", "content-length", " 0 ", "accept", "a, b,,c ,\xa0d\xa0"),
    ("GET", "http://h/", "content-length", "0, 0", "x-many", ",,,"),
    ("DELETE", "http://h/\udcff\udc80x", "cookie", "a=1; b=2", "x-latin", "caf\xe9"),
    ("PROPFIND", "http://h/", ":event", "scheduled", ":cron", "*/5 * * * *",
     ":scheduled-time", "1700000000000", "host", "h"),
    ("GET", "http://h/", "X-Upper", "V", "host", "h", ":late", "not meta", "odd"),
    ("HEAD", "http://h/", ":client-ip", "::1", ":client-port", ""),
]


@pytest.mark.parametrize("split_commas", [False, True])
@pytest.mark.parametrize("items", HEADS)
def test_request_heads_read_as_the_python_reference(items, split_commas):
    payload = ipc.fields(*items)
    frames, used, error = codec.decode(ipc.frame(ipc.REQ_HEAD, 9, payload), -1, split_commas)
    assert error is None and used == ipc.HEADER_SIZE + len(payload)
    [(ftype, flags, sid, head)] = frames
    assert (ftype, flags, sid) == (ipc.REQ_HEAD, 0, 9)
    method, url, pairs, client, version, meta, has_body = head
    ref = reference_head(payload, split_commas)
    assert (method, url, pairs, client, version, has_body) == ref[:5] + (ref[6],)
    # meta only when a ':' field other than the client's and the version's is there
    others = {k for k in ref[5] if k not in (":client-ip", ":client-port", ":http-version")}
    assert meta == (ref[5] if others else None)


def test_every_complete_frame_of_a_buffer_in_one_call():
    buf = (head_frame(1, "GET", "http://h/") + ipc.frame(ipc.REQ_END, 1)
           + ipc.frame(ipc.REQ_BODY, 2, b"x" * 1000)
           + ipc.frame(ipc.BIND_REPLY, 7, ipc.fields("ok", "{}"), ipc.F_FD | ipc.F_MORE))
    partial = ipc.frame(ipc.REQ_BODY, 3, b"yyyy")[:-1]
    frames, used, error = codec.decode(bytearray(buf + partial), -1, False)
    assert error is None and used == len(buf)
    assert [f[:3] for f in frames] == [(1, 0, 1), (3, 0, 1), (2, 0, 2),
                                       (33, ipc.F_FD | ipc.F_MORE, 7)]
    assert frames[1][3] == b"" and frames[2][3] == b"x" * 1000
    assert frames[3][3] == ipc.fields("ok", "{}")
    # end: only buf[:end] counts (the instance's read buffer is bigger)
    last = len(ipc.frame(ipc.BIND_REPLY, 7, ipc.fields("ok", "{}")))
    frames, used, _ = codec.decode(buf + b"\0" * 64, len(buf) - 1, False)
    assert len(frames) == 3 and used == len(buf) - last
    assert codec.decode(b"", -1, False) == ([], 0, None)
    assert codec.decode(buf[:11], -1, False) == ([], 0, None)


def reference_error(buf):
    """The ProtocolError ipc.py raises for the first bad frame, decoding
    as instance.py did (frames, then the fields of a REQ_HEAD)."""
    off = 0
    try:
        while True:
            got = ipc.decode(buf, off)
            if got is None:
                return None
            if got[0] == ipc.REQ_HEAD:
                ipc.parse_fields(got[3])
            off = got[4]
    except ipc.ProtocolError as exc:
        return str(exc)


BAD = {
    "payload over the maximum": struct.pack("<IBBHI", ipc.MAX_PAYLOAD + 1, 2, 0, 0, 1),
    "reserved bits set": struct.pack("<IBBHI", 0, 3, 0, 1, 1),
    "truncated field length": ipc.frame(ipc.REQ_HEAD, 1, ipc.fields("GET", "http://h/") + b"\1\0"),
    "field overruns its frame": ipc.frame(ipc.REQ_HEAD, 1, ipc.fields("GET") + b"\xff\0\0\0ab"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_frames_are_refused_as_ipc_py_refuses_them(case):
    good = head_frame(4, "GET", "http://h/") + ipc.frame(ipc.REQ_END, 4)
    bad = BAD[case]
    expected = reference_error(bad)
    assert expected  # the reference refuses it too
    # alone: no frame, the error
    frames, used, error = codec.decode(bad, -1, False)
    assert (frames, used) == ([], 0)
    assert isinstance(error, ipc.ProtocolError) and str(error) == expected
    # after good frames: those first, decoding stops at the bad one
    frames, used, error = codec.decode(good + bad, -1, False)
    assert [f[:3] for f in frames] == [(1, 0, 4), (3, 0, 4)] and used == len(good)
    assert str(error) == expected


def test_a_head_without_method_and_url_is_refused():
    frames, used, error = codec.decode(head_frame(1, "GET"), -1, False)
    assert frames == [] and isinstance(error, ipc.ProtocolError)


def test_protocol_error_is_one_class():
    assert ipc.ProtocolError is codec.ProtocolError


def reference_response(sid, status, reason, pairs, body, send_length, send_body):
    items = [str(status), reason or ""]
    for name, value in pairs:
        if name != "content-length":
            items += [name, value]
    data = bytes(body or b"")
    if send_length:
        items += ["content-length", str(len(data))]
    out = ipc.frame(ipc.RESP_HEAD, sid, ipc.fields(*items))
    if data and send_body:
        for i in range(0, len(data), ipc.CHUNK):
            out += ipc.frame(ipc.RESP_BODY, sid, data[i:i + ipc.CHUNK])
    return out + ipc.frame(ipc.RESP_END, sid)


RESPONSES = [
    (1, 200, None, [("content-type", "text/plain;charset=UTF-8")], b"Hello world!", True, True),
    (2, 404, "Not Here", [("x-a", "1"), ("content-length", "999"), ("x-a", "2")], b"", True, True),
    (3, 200, None, [], bytearray(b"z" * (ipc.CHUNK * 2 + 5)), True, True),
    (4, 200, None, [("x", "caf\xe9"), ("y", "\u20ac")], b"abc", True, False),   # HEAD
    (5, 204, None, [("set-cookie", "a=1")], None, False, False),
    (2 ** 32 - 1, 599, "Odd\xe9", [(b"raw", b"bytes")], memoryview(b"mv"), True, True),
]


@pytest.mark.parametrize("args", RESPONSES, ids=lambda a: str(a[1]))
def test_response_frames_match_the_python_reference(args):
    assert codec.response(*args) == reference_response(*args)


def test_head_body_and_frame_match_the_python_reference():
    pairs = [("content-type", "text/event-stream"), ("content-length", "5")]
    assert codec.head(6, 200, None, pairs) == ipc.frame(
        ipc.RESP_HEAD, 6, ipc.fields("200", "", "content-type", "text/event-stream"))
    data = bytes(range(256)) * 300
    assert codec.body(6, data) == b"".join(
        ipc.frame(ipc.RESP_BODY, 6, data[i:i + ipc.CHUNK]) for i in range(0, len(data), ipc.CHUNK))
    assert codec.body(6, b"") == b""
    assert codec.frame(ipc.RESP_ABORT, 6) == ipc.frame(ipc.RESP_ABORT, 6)
    assert codec.frame(ipc.BUSY, 0, b"12", ipc.F_MORE) == ipc.frame(ipc.BUSY, 0, b"12", ipc.F_MORE)


def test_too_large_a_head_is_refused_with_ipc_py_message():
    pairs = [("x-big", "v" * (ipc.MAX_PAYLOAD + 1))]
    with pytest.raises(ipc.ProtocolError) as want:
        ipc.frame(ipc.RESP_HEAD, 1, ipc.fields("200", "", "x-big", pairs[0][1]))
    with pytest.raises(ipc.ProtocolError) as got:
        codec.head(1, 200, None, pairs)
    assert str(got.value) == str(want.value)
    with pytest.raises(ipc.ProtocolError):
        codec.response(1, 200, None, pairs, b"", True, True)
    with pytest.raises(ipc.ProtocolError):
        codec.frame(ipc.RESP_BODY, 1, b"x" * (ipc.MAX_PAYLOAD + 1))


def test_bad_header_objects_raise_type_errors():
    with pytest.raises(TypeError):
        codec.response(1, 200, None, [("x", 1)], b"", True, True)
    with pytest.raises(TypeError):
        codec.response(1, 200, None, [("x",)], b"", True, True)
    with pytest.raises(TypeError):
        codec.response(1, 200, None, None, b"", True, True)


# -- asgi.fetch's header conversions (src/zygote/asgi-headers.c) -------------

from workers._headers import Headers  # noqa: E402

GOOD_ASGI = [
    [(b"Content-Type", b"text/html"), (b"x-A", b" \tpadded\t "), (b"set-cookie", b"a=1")],
    [(b"x-latin", b"caf\xe9"), (b"x-empty", b"")],
    ((b"t!#$%&'*+-.^_`|~0", b"v"),),
    [],
]
BAD_ASGI = [
    [(b"ok", b"v"), (b"bad name", b"v")],
    [(b"", b"v")],
    [(b"x", b"a\r\nb")],
    [(b"x", b"a\0b")],
    [(b"x\xe9", b"v")],
    [("str-name", b"v")],
    [(bytearray(b"x"), b"v")],
    [(b"x", b"v", b"extra")],
]


@pytest.mark.parametrize("pairs", GOOD_ASGI)
def test_asgi_headers_as_headers_from_bytes(pairs):
    assert codec.asgi_headers(pairs) == Headers._thaw_from_bytes(pairs)._pairs


@pytest.mark.parametrize("pairs", BAD_ASGI)
def test_asgi_headers_leave_what_is_wrong_to_headers(pairs):
    assert codec.asgi_headers(pairs) is None


def test_latin1_pairs():
    pairs = [("host", "h"), ("x-latin", "caf\xe9")]
    assert codec.latin1_pairs(pairs) == [(b"host", b"h"), (b"x-latin", b"caf\xe9")]
    with pytest.raises(UnicodeEncodeError):
        codec.latin1_pairs([("x", "\u20ac")])
    with pytest.raises(TypeError):
        codec.latin1_pairs([("x", 1)])
