"""WebSocketPair and WebSocket of the SDK (python/workers/_websocket.py),
without a supervisor: the frames the server end would send are collected,
and frames are fed to it as the instance feeds them."""
import asyncio

import pytest

import js
from pyodide.ffi import create_proxy
from workers import JsException, Response, WebSocket, WebSocketPair
from workers._websocket import _WS_BINARY, _WS_CLOSE, _WS_TEXT, _field


def attached(server):
    sent, failures = [], []
    server._attach(lambda t, p: sent.append((t, p)), failures.append)
    return sent, failures


def close_frame(code, reason=b"", clean=True):
    return _field(str(code).encode()) + _field(reason) + _field(b"1" if clean else b"0")


def test_the_spellings_of_a_pair():
    pair = WebSocketPair.new()
    client, server = pair                       # iteration
    assert isinstance(client, WebSocket) and client._peer is server
    assert list(pair.object_values()) == [client, server]
    assert list(js.Object.values(pair)) == [client, server]
    assert pair[0] is client and pair["1"] is server
    c2, s2 = js.WebSocketPair.new().object_values()
    assert c2._peer is s2


def test_response_101_needs_a_web_socket_and_the_reverse():
    client, _server = WebSocketPair()
    r = Response(None, status=101, web_socket=client)
    assert r.status == 101 and r.web_socket is client
    assert Response.new(None, status=101, webSocket=client).webSocket is client
    with pytest.raises(ValueError, match="needs web_socket"):
        Response(None, status=101)
    with pytest.raises(ValueError, match="status 101"):
        Response(None, status=200, web_socket=client)
    with pytest.raises(TypeError, match="WebSocket"):
        Response(None, status=101, web_socket="nope")
    with pytest.raises(TypeError, match="body"):
        Response("text", status=101, web_socket=client)


def test_send_needs_accept_and_an_open_socket():
    _client, server = WebSocketPair()
    with pytest.raises(JsException, match="accept"):
        server.send("x")
    server.accept()
    server.send("before attach")            # waits for the 101
    sent, _ = attached(server)
    server.send(b"\x00bin")
    assert sent == [(_WS_TEXT, b"before attach"), (_WS_BINARY, b"\x00bin")]
    server.close(1000, "done")
    assert sent[-1] == (_WS_CLOSE, _field(b"1000") + _field(b"done"))
    assert server.readyState == WebSocket.CLOSING
    with pytest.raises(JsException, match="after close"):
        server.send("late")


def test_close_codes_and_reasons_are_checked():
    _client, server = WebSocketPair()
    server.accept()
    with pytest.raises(JsException, match="close code"):
        server.close(1011)
    with pytest.raises(JsException, match="123 bytes"):
        server.close(1000, "x" * 124)
    with pytest.raises(TypeError):
        server.close("1000")
    server.close(4999, "ok")


def test_events_reach_listeners_after_accept_only():
    _client, server = WebSocketPair()
    sent, _ = attached(server)
    seen = []
    server.addEventListener("message", create_proxy(lambda e: seen.append(e.data)))
    server.addEventListener("close", create_proxy(lambda e: seen.append(
        (e.code, e.reason, e.wasClean))))
    server._on_frame(_WS_TEXT, b"early")
    assert seen == []
    server.accept()
    server._on_frame(_WS_BINARY, b"\x01")
    server._on_frame(_WS_CLOSE, close_frame(4000, b"bye"))
    assert seen == ["early", b"\x01", (4000, "bye", True)]
    assert server.readyState == WebSocket.CLOSED
    server._gone()                           # the stream's end: no second close
    assert len(seen) == 3


def test_gone_without_close_is_1006():
    _client, server = WebSocketPair()
    server.accept()
    attached(server)
    codes = []
    server.onclose = lambda e: codes.append((e.code, e.wasClean))
    server._gone()
    assert codes == [(1006, False)]


def test_a_listener_that_raises_closes_with_1011():
    _client, server = WebSocketPair()
    server.accept()
    sent, failures = attached(server)

    def bad(event):
        raise KeyError("nope")
    server.addEventListener("message", bad)
    server._on_frame(_WS_TEXT, b"x")
    assert isinstance(failures[0], KeyError)
    assert sent[-1][0] == _WS_CLOSE and sent[-1][1].startswith(_field(b"1011"))


def test_async_iteration_until_close():
    async def go():
        _client, server = WebSocketPair()
        server.accept()
        attached(server)
        got = []

        async def reader():
            async for message in server:
                got.append(message)
            return got
        task = asyncio.ensure_future(reader())
        await asyncio.sleep(0)
        server._on_frame(_WS_TEXT, b"a")
        server._on_frame(_WS_BINARY, b"b")
        await asyncio.sleep(0)
        server._on_frame(_WS_CLOSE, close_frame(1000))
        return await asyncio.wait_for(task, 5)
    assert asyncio.run(go()) == ["a", b"b"]
