"""WebSockets in plain workers (docs/websockets.md): the real thaw, and
python3-websockets as the client. The supervisor speaks RFC 6455 (wslay);
the worker sees whole messages through WebSocketPair's server end."""
import asyncio
import json
import socket

import pytest
import websockets
from websockets.frames import Frame, Opcode

from thawlib import read_response

WORKER = '''
    import os
    from workers import WorkerEntrypoint, Response, WebSocketPair
    from pyodide.ffi import create_proxy

    def log_close(event):
        print("close-event", event.code, repr(event.reason), event.wasClean, flush=True)

    def pair():
        client, server = WebSocketPair.new().object_values()
        server.accept()
        server.addEventListener("close", create_proxy(log_close))
        return client, server

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            path = request.url.split("/", 3)[3].split("?")[0]
            if path == "not-upgrade":
                client, server = pair()
                return Response(None, status=101, web_socket=client)
            if request.headers.get("upgrade") != "websocket":
                return Response("plain " + path)
            if path == "refuse":
                return Response("Expected a chat client", status=403)
            client, server = pair()
            if path == "echo":
                def on_message(event):
                    server.send(event.data)
                server.addEventListener("message", create_proxy(on_message))
            elif path == "iter":
                async def run():
                    async for message in server:
                        server.send("iter:" + message if isinstance(message, str)
                                    else b"iter:" + message)
                    print("iteration-ended", flush=True)
                self.ctx.wait_until(run())
            elif path == "boom":
                def on_message(event):
                    if event.data == "boom":
                        raise RuntimeError("the handler broke")
                    server.send(event.data)
                server.addEventListener("message", create_proxy(on_message))
            elif path == "server-close":
                def on_message(event):
                    server.close(4001, "asked")
                server.addEventListener("message", create_proxy(on_message))
            elif path == "welcome":
                server.send("welcome")
                server.addEventListener("message", create_proxy(lambda e: server.send(e.data)))
            elif path == "exit":
                server.addEventListener("message", create_proxy(lambda e: os._exit(3)))
            elif path == "forge":
                # the header by which the supervisor hands a Durable Object's
                # (or a cluster relay's) socket to the connection: a worker
                # naming one it was not given takes nothing
                return Response(None, status=101, web_socket=client,
                                headers={"x-thaw-do-ws": "ab" * 16})
            return Response(None, status=101, web_socket=client)
'''


@pytest.fixture
def ws_thaw(serve):
    return serve(WORKER, thaw={"ws_max_message": 4096, "request_timeout_ms": 500})


def url(t, path):
    return f"ws://127.0.0.1:{t.port}/{path}"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_echo_text_and_binary_then_client_close(ws_thaw):
    async def go():
        async with websockets.connect(url(ws_thaw, "echo")) as ws:
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\x01\xffbin")
            assert await ws.recv() == b"\x00\x01\xffbin"
            await ws.close(4000, "bye")
            return ws.close_code, ws.close_reason
    # the close handshake: thaw answered with the client's code and reason
    assert run(go()) == (4000, "bye")
    assert "close-event 4000 'bye' True" in ws_thaw.wait_log("close-event 4000")


def test_async_for_style(ws_thaw):
    async def go():
        async with websockets.connect(url(ws_thaw, "iter")) as ws:
            await ws.send("a")
            first = await ws.recv()
            await ws.send(b"b")
            return first, await ws.recv()
    assert run(go()) == ("iter:a", b"iter:b")
    # the client's close ends the worker's `async for`
    assert "iteration-ended" in ws_thaw.wait_log("iteration-ended")


def test_fragmented_message_arrives_whole(ws_thaw):
    async def go():
        async with websockets.connect(url(ws_thaw, "echo")) as ws:
            await ws.send(["frag", "men", "ted"])  # three frames: text, continuation x2
            return await ws.recv()
    assert run(go()) == "fragmented"


def test_ping_is_answered(ws_thaw):
    async def go():
        async with websockets.connect(url(ws_thaw, "echo"), ping_interval=None) as ws:
            pong = await ws.ping(b"are you there")
            await asyncio.wait_for(pong, 10)
            await ws.send("after ping")
            return await ws.recv()
    assert run(go()) == "after ping"


def test_worker_closes_with_code_and_reason(ws_thaw):
    async def go():
        async with websockets.connect(url(ws_thaw, "server-close")) as ws:
            await ws.send("close please")
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code, ws.close_reason
    assert run(go()) == (4001, "asked")
    # the worker's close event is the client's answer to its close frame
    assert "close-event 4001 'asked' True" in ws_thaw.wait_log("close-event 4001")


def test_message_over_the_limit_closes_with_1009(ws_thaw):
    async def go():
        async with websockets.connect(url(ws_thaw, "echo")) as ws:
            await ws.send("x" * 5000)  # ws_max_message is 4096 here
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code
    assert run(go()) == 1009
    assert "close-event 1009" in ws_thaw.wait_log("close-event 1009")


async def send_raw_frame(t, frame_bytes):
    """A connection that sends one frame the client library would not."""
    async with websockets.connect(url(t, "echo")) as ws:
        ws.transport.write(frame_bytes)
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        return ws.close_code


def test_invalid_utf8_text_closes_with_1007(ws_thaw):
    raw = Frame(Opcode.TEXT, b"ok \xc3\x28 bad").serialize(mask=True)
    assert run(send_raw_frame(ws_thaw, raw)) == 1007
    assert "close-event 1007" in ws_thaw.wait_log("close-event 1007")


def test_unmasked_client_frame_is_a_protocol_error(ws_thaw):
    raw = Frame(Opcode.TEXT, b"unmasked").serialize(mask=False)
    assert run(send_raw_frame(ws_thaw, raw)) == 1002


def test_handler_that_raises_closes_with_1011_and_others_go_on(ws_thaw):
    async def go():
        async with websockets.connect(url(ws_thaw, "boom")) as other:
            async with websockets.connect(url(ws_thaw, "boom")) as ws:
                await ws.send("fine")
                assert await ws.recv() == "fine"
                await ws.send("boom")
                with pytest.raises(websockets.ConnectionClosed):
                    await ws.recv()
                code = ws.close_code
            # another socket of the same instance still works
            await other.send("still here")
            return code, await other.recv()
    assert run(go()) == (1011, "still here")
    log = ws_thaw.wait_log("the handler broke")
    assert "RuntimeError: the handler broke" in log and "Traceback" in log


def test_message_sent_before_the_response_arrives_first(ws_thaw):
    async def go():
        async with websockets.connect(url(ws_thaw, "welcome")) as ws:
            first = await ws.recv()
            await ws.send("next")
            return first, await ws.recv()
    assert run(go()) == ("welcome", "next")


def test_client_gone_without_close_is_a_1006_close_event(ws_thaw):
    async def go():
        ws = await websockets.connect(url(ws_thaw, "echo"))
        await ws.send("x")
        assert await ws.recv() == "x"
        ws.transport.abort()  # TCP gone, no close frame
    run(go())
    assert "close-event 1006 '' False" in ws_thaw.wait_log("close-event 1006")


def test_socket_outlives_the_request_timeout(ws_thaw):
    # request_timeout_ms is 500 here: a socket is not a request still running
    async def go():
        async with websockets.connect(url(ws_thaw, "echo")) as ws:
            await asyncio.sleep(1.2)
            await ws.send("still open")
            return await ws.recv()
    assert run(go()) == "still open"
    # the request lines are JSON: a 504 would be their status, not a digit
    # run inside a duration (which once matched "1206.504")
    statuses = [json.loads(line)["status"] for line in ws_thaw.log().splitlines()
                if line.startswith("{") and '"status":' in line]
    assert statuses and 504 not in statuses, statuses


def test_a_forged_object_socket_header_takes_nothing(ws_thaw):
    async def go():
        with pytest.raises(websockets.InvalidStatusCode) as e:
            await websockets.connect(url(ws_thaw, "forge"))
        assert e.value.status_code == 500
        async with websockets.connect(url(ws_thaw, "echo")) as ws:  # it serves on
            await ws.send("after")
            return await ws.recv()
    assert run(go()) == "after"


def test_instance_exit_closes_the_socket_with_1011(ws_thaw):
    async def go():
        async with websockets.connect(url(ws_thaw, "exit")) as ws:
            await ws.send("die")
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code
    assert run(go()) == 1011
    # and the next socket gets a new instance
    async def again():
        async with websockets.connect(url(ws_thaw, "echo")) as ws:
            await ws.send("again")
            return await ws.recv()
    assert run(again()) == "again"


def test_many_concurrent_sockets(ws_thaw):
    async def one(i):
        async with websockets.connect(url(ws_thaw, "echo")) as ws:
            got = []
            for k in range(5):
                await ws.send(f"{i}-{k}")
                got.append(await ws.recv())
            return got

    async def go():
        return await asyncio.gather(*(one(i) for i in range(40)))
    results = run(go())
    assert results == [[f"{i}-{k}" for k in range(5)] for i in range(40)]


def test_worker_may_refuse_an_upgrade(ws_thaw):
    async def go():
        with pytest.raises(websockets.InvalidStatusCode) as e:
            await websockets.connect(url(ws_thaw, "refuse"))
        return e.value.status_code
    assert run(go()) == 403


# ---- bad upgrade requests (raw HTTP) -------------------------------------

def raw_request(t, head):
    with socket.create_connection(("127.0.0.1", t.port), timeout=10) as s:
        s.sendall(head.encode())
        return read_response(s.makefile("rb"))


UPGRADE = ("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")


def test_upgrade_without_key_is_400(ws_thaw):
    r = raw_request(ws_thaw, UPGRADE + "Sec-WebSocket-Version: 13\r\n\r\n")
    assert r.status == 400
    assert "Sec-WebSocket-Key" in r.text


def test_upgrade_with_a_bad_key_is_400(ws_thaw):
    r = raw_request(ws_thaw, UPGRADE + "Sec-WebSocket-Key: short\r\n"
                                       "Sec-WebSocket-Version: 13\r\n\r\n")
    assert r.status == 400
    assert "16 bytes" in r.text


def test_upgrade_of_another_version_is_426(ws_thaw):
    r = raw_request(ws_thaw, UPGRADE + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                       "Sec-WebSocket-Version: 8\r\n\r\n")
    assert r.status == 426
    assert r.header("sec-websocket-version") == "13"
    assert r.reason == "Upgrade Required"
    assert "version 13" in r.text


def test_upgrade_without_connection_upgrade_is_400(ws_thaw):
    r = raw_request(ws_thaw, "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n")
    assert r.status == 400
    assert "Connection: Upgrade" in r.text


def test_handshake_answer(ws_thaw):
    # RFC 6455 section 1.3's own example key and accept value
    r = raw_request(ws_thaw, UPGRADE + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                       "Sec-WebSocket-Version: 13\r\n\r\n")
    assert r.status == 101
    assert r.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert r.header("upgrade") == "websocket"


def test_101_to_a_plain_request_is_an_error(ws_thaw):
    r = ws_thaw.get("/not-upgrade")
    assert r.status == 500
    assert "not a WebSocket upgrade" in r.text
    assert "not a WebSocket upgrade request" in ws_thaw.wait_log("not a WebSocket upgrade")
    # its socket was dropped: the worker saw it close
    assert "close-event 1006" in ws_thaw.wait_log("close-event 1006")
    assert ws_thaw.get("/plain").text == "plain plain"


SPIN_WORKER = '''
    from js import Object, Response, WebSocketPair
    from pyodide.ffi import create_proxy

    async def on_fetch(request, env):
        client, server = Object.values(WebSocketPair.new())   # the JS spelling
        server.accept()
        def on_message(event):
            if event.data == "spin":
                while True:
                    pass
            server.send(event.data)
        server.addEventListener("message", create_proxy(on_message))
        return Response.new(None, status=101, webSocket=client)
'''


def test_handler_that_never_yields_is_stopped_at_cpu_ms(serve):
    # the socket has no wall clock, but a loop held by a message handler
    # still meets cpu_ms: its instance is replaced, the client gets 1011
    t = serve(SPIN_WORKER, limits={"cpu_ms": 300})

    async def go():
        async with websockets.connect(url(t, "")) as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
            await ws.send("spin")
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code
    assert run(go()) == 1011
    assert "CPU time limit" in t.wait_log("CPU time limit")


def test_frames_right_behind_the_handshake(ws_thaw):
    # a client that does not wait for the 101: its first frame came in the
    # same read as the request head, and still reaches the worker
    head = (UPGRADE + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode()
    frame = Frame(Opcode.TEXT, b"hello").serialize(mask=True)
    with socket.create_connection(("127.0.0.1", ws_thaw.port), timeout=10) as s:
        s.sendall(head + frame)
        got = b""
        while b"\r\n\r\n" not in got or len(got.split(b"\r\n\r\n", 1)[1]) < 7:
            chunk = s.recv(4096)
            assert chunk, got
            got += chunk
    status, rest = got.split(b"\r\n\r\n", 1)
    assert status.startswith(b"HTTP/1.1 101 ")
    assert rest[:7] == b"\x81\x05hello"  # the echo: a final text frame, unmasked


def test_idle_socket_is_cut_at_ws_idle_timeout(serve):
    t = serve(WORKER, thaw={"ws_idle_timeout_ms": 300})

    async def go():
        async with websockets.connect(url(t, "echo"), ping_interval=None) as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            # nothing moves: thaw ends the connection (no wait is asserted;
            # run()'s 20 s bound is only a guard)
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code
    assert run(go()) == 1006
    assert "close-event 1006" in t.wait_log("close-event 1006")
