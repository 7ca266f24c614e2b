"""Outbound WebSockets (docs/websockets.md, "Outbound"): a worker connects
to a server with `fetch(url, headers={"Upgrade": "websocket"})` or
`WebSocket.new(url)`; thaw's supervisor makes the connection under the
egress policy and speaks RFC 6455 as the client (src/bind/wsclient.c).
The servers are python3-websockets on loopback, started here."""
import asyncio
import http
import json
import socket
import shutil
import ssl
import threading
from urllib.parse import quote

import pytest
import websockets
from websockets.datastructures import Headers

from test_fetch import _make_ca

WORKER = '''
    import asyncio
    import json
    import os
    from urllib.parse import urlparse, parse_qs
    import js
    from workers import WorkerEntrypoint, Request, Response, WebSocketPair, fetch
    from pyodide.ffi import create_proxy

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            u = urlparse(request.url)
            target = parse_qs(u.query).get("to", [""])[0]
            if u.path == "/fetch":
                # Cloudflare's "Using the WebSockets API" client, in Python
                via = parse_qs(u.query).get("via", [""])[0]
                try:
                    if via == "request":
                        resp = await fetch(Request(target, headers={"Upgrade": "websocket"}))
                    elif via == "js":
                        resp = await js.fetch(target, {"headers": {"Upgrade": "websocket"}})
                    else:
                        resp = await fetch(target, headers={"Upgrade": "websocket"})
                except Exception as exc:
                    return Response(f"raised {type(exc).__name__}: {exc}")
                ws = resp.webSocket
                if ws is None:
                    return Response(f"refused {resp.status} {await resp.text()}")
                ws.accept()
                got = asyncio.Queue()
                ws.addEventListener("message", create_proxy(lambda e: got.put_nowait(e.data)))
                ws.addEventListener("close", create_proxy(
                    lambda e: got.put_nowait(f"close {e.code} {e.wasClean}")))
                if ws.readyState == 1:  # not closed by the server already
                    ws.send("hello")
                    ws.send(b"\\x00bin")
                out = [resp.status]
                while not (out[-1:] and str(out[-1]).startswith("close ")):
                    item = await got.get()
                    out.append(item if isinstance(item, str) else repr(item))
                    if len(out) == 3:
                        ws.close(1000, "done")
                return Response(json.dumps(out))
            if u.path == "/new":
                # js.WebSocket.new(url): open / message / close / error events
                events = []
                over = asyncio.get_running_loop().create_future()
                ws = js.WebSocket.new(target)
                events.append(f"state {ws.readyState}")
                def on_open(e):
                    events.append(f"open {ws.readyState}")
                    ws.send(parse_qs(u.query).get("say", ["hi"])[0])
                def on_message(e):
                    events.append(f"message {len(e.data)}")
                    ws.close(1000)
                def on_error(e):
                    events.append("error " + str(e.message))
                def on_close(e):
                    events.append(f"close {e.code}")
                    over.set_result(None)
                ws.addEventListener("open", create_proxy(on_open))
                ws.addEventListener("message", create_proxy(on_message))
                ws.addEventListener("error", create_proxy(on_error))
                ws.addEventListener("close", create_proxy(on_close))
                await over
                return Response(json.dumps(events))
            if u.path == "/proxy":
                # the client's socket joined to the server's, message by message
                upstream = (await fetch(target, headers={"Upgrade": "websocket"})).web_socket
                client, server = WebSocketPair.new().object_values()
                server.accept()
                upstream.accept()
                def on_message(e):
                    if e.data == "exit":
                        os._exit(3)  # the instance dies with both sockets open
                    upstream.send(e.data)
                server.addEventListener("message", create_proxy(on_message))
                upstream.addEventListener("message", create_proxy(lambda e: server.send(e.data)))
                server.addEventListener("close", create_proxy(lambda e: upstream.close(1000)))
                upstream.addEventListener("close", create_proxy(
                    lambda e: server.readyState == 1 and server.close(4000, f"upstream {e.code}")))
                return Response(None, status=101, web_socket=client)
            if u.path == "/pass":
                # a proxy as Cloudflare's docs write one: fetch()'s 101 returned
                return await fetch(target, headers=request.headers)
            return Response("no such path", status=404)
'''

ALLOW = {"egress": {"allow": ["127.0.0.0/8"]}}


class Upstream:
    """python3-websockets servers in a thread: ws:// on `port`, and wss://
    on `tls_port` when made with a certificate."""

    def __init__(self, cert=None):
        self.loop = asyncio.new_event_loop()
        self.seen = []
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(cert, started), daemon=True)
        self.thread.start()
        assert started.wait(10)

    async def handler(self, ws, path=None):
        path = ws.path
        if path == "/big":
            await ws.send("x" * 5000)  # over ws_max_message (4096 here)
        elif path == "/bad-utf8":
            await ws.write_frame(True, 0x1, b"ok \xff\xfe")  # a text frame, not UTF-8
        try:
            async for message in ws:
                self.seen.append((path, message))
                await ws.send(message)
        except websockets.ConnectionClosed:
            pass
        self.seen.append((path, "closed", ws.close_code))

    @staticmethod
    async def refuse(path, headers):
        if path == "/refuse":
            return (http.HTTPStatus.FORBIDDEN, Headers([("Content-Type", "text/plain")]),
                    b"no sockets here")
        return None

    def _run(self, cert, started):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(websockets.serve(
            self.handler, "127.0.0.1", 0, process_request=self.refuse))
        self.port = self.server.sockets[0].getsockname()[1]
        if cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*cert)
            self.tls = self.loop.run_until_complete(websockets.serve(
                self.handler, "127.0.0.1", 0, ssl=ctx))
            self.tls_port = self.tls.sockets[0].getsockname()[1]
        started.set()
        self.loop.run_forever()

    def url(self, path, scheme="ws"):
        port = self.tls_port if scheme in ("wss", "https") else self.port
        return f"{scheme}://127.0.0.1:{port}{path}"

    def stop(self):
        async def shut():  # the servers and their connections (1001), then the loop
            for server in (self.server, getattr(self, "tls", None)):
                if server is not None:
                    server.close()
                    await server.wait_closed()
        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def upstream():
    made = []

    def make(cert=None):
        made.append(Upstream(cert))
        return made[-1]
    yield make
    for u in made:
        u.stop()


def ask(srv, path, to, **q):
    from urllib.parse import urlencode
    r = srv.get(f"/{path}?" + urlencode(dict(to=to, **q)))
    assert r.status == 200, r.text
    return r.text


def through(srv, path, to):
    """A client of the worker's own port whose socket the worker joins to
    the server at `to`."""
    return websockets.connect(f"ws://127.0.0.1:{srv.port}/{path}?to={quote(to)}")


def wait_seen(up, item):
    """The server saw item (its thread records what happened)."""
    for _ in range(200):
        if item in up.seen:
            return
        threading.Event().wait(0.05)
    assert item in up.seen, up.seen


def test_fetch_upgrade_echo_and_close(serve, upstream):
    up = upstream()
    srv = serve(WORKER, thaw=ALLOW)
    out = json.loads(ask(srv, "fetch", up.url("/echo")))
    assert out == [101, "hello", repr(b"\x00bin"), "close 1000 True"]
    # the server got both messages (masked frames: it refuses unmasked
    # ones) and the worker's close code
    assert ("/echo", "hello") in up.seen and ("/echo", b"\x00bin") in up.seen
    assert ("/echo", "closed", 1000) in up.seen


@pytest.mark.parametrize("scheme", ["http", "ws"])
def test_fetch_upgrade_url_schemes(serve, upstream, scheme):
    up = upstream()
    srv = serve(WORKER, thaw=ALLOW)
    assert json.loads(ask(srv, "fetch", up.url("/echo", scheme)))[:2] == [101, "hello"]


@pytest.mark.parametrize("via", ["request", "js"])
def test_fetch_upgrade_with_a_request_and_js_fetch(serve, upstream, via):
    up = upstream()
    srv = serve(WORKER, thaw=ALLOW)
    assert json.loads(ask(srv, "fetch", up.url("/echo"), via=via))[:2] == [101, "hello"]


def test_refused_upgrade_is_an_ordinary_response(serve, upstream):
    up = upstream()
    srv = serve(WORKER, thaw=ALLOW)
    assert ask(srv, "fetch", up.url("/refuse")) == "refused 403 no sockets here"


def test_websocket_new_events(serve, upstream):
    up = upstream()
    srv = serve(WORKER, thaw=ALLOW)
    events = json.loads(ask(srv, "new", up.url("/echo"), say="ping"))
    assert events == ["state 0", "open 1", "message 4", "close 1000"]
    assert ("/echo", "ping") in up.seen


def test_websocket_new_refused_upgrade_fires_error_then_close(serve, upstream):
    up = upstream()
    srv = serve(WORKER, thaw=ALLOW)
    events = json.loads(ask(srv, "new", up.url("/refuse")))
    assert events[0] == "state 0" and events[-1] == "close 1006"
    assert events[1].startswith("error ") and "403" in events[1], events


def test_connection_refused(serve):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = serve(WORKER, thaw=ALLOW)
    text = ask(srv, "fetch", f"ws://127.0.0.1:{port}/echo")
    assert text.startswith("raised ConnectionError: the WebSocket connection to"), text
    events = json.loads(ask(srv, "new", f"ws://127.0.0.1:{port}/echo"))
    assert events[0] == "state 0" and events[1].startswith("error ") and \
        events[2] == "close 1006", events


def test_egress_policy_denies_as_for_fetch(serve, upstream):
    up = upstream()
    srv = serve(WORKER)  # loopback is not allowed by default
    text = ask(srv, "fetch", up.url("/echo"))
    assert text.startswith("raised PermissionError: thaw egress policy refused the "
                           "connection to 127.0.0.1 port"), text
    assert "[thaw.egress]" in text
    events = json.loads(ask(srv, "new", up.url("/echo")))
    assert events[1].startswith("error thaw egress policy refused"), events
    assert events[2] == "close 1006"
    assert not up.seen


def test_oversized_message_closes_with_1009(serve, upstream):
    up = upstream()
    srv = serve(WORKER, thaw=dict(ALLOW, ws_max_message=4096))
    out = json.loads(ask(srv, "fetch", up.url("/big")))
    # the first message the worker sees is the close (the 5000 bytes never came)
    assert out[1] == "close 1009 False", out
    assert ("/big", "closed", 1009) in up.seen


def test_bad_utf8_closes_with_1007(serve, upstream):
    up = upstream()
    srv = serve(WORKER, thaw=ALLOW)
    out = json.loads(ask(srv, "fetch", up.url("/bad-utf8")))
    assert out[1] == "close 1007 False", out
    assert ("/bad-utf8", "closed", 1007) in up.seen


def test_wss_with_a_test_made_certificate(serve, upstream, tmp_path):
    ca, crt, key = _make_ca(tmp_path)
    up = upstream(cert=(crt, key))
    srv = serve(WORKER, thaw=ALLOW)
    text = ask(srv, "fetch", up.url("/echo", "wss"))
    assert text.startswith("raised ConnectionError") and "certificate" in text, text
    srv.stop()
    shutil.copy(ca, tmp_path / "worker" / "ca.pem")
    srv = serve(WORKER, thaw={"egress": {"allow": ["127.0.0.0/8"], "ca_file": "ca.pem"}})
    out = json.loads(ask(srv, "fetch", up.url("/echo", "wss")))
    assert out == [101, "hello", repr(b"\x00bin"), "close 1000 True"]
    assert json.loads(ask(srv, "new", up.url("/echo", "https")))[-1] == "close 1000"


def test_proxy_through_an_outbound_socket(serve, upstream):
    up = upstream()
    srv = serve(WORKER, thaw=ALLOW)
    to = up.url("/echo")

    async def go():
        async with through(srv, "proxy", to) as ws:
            await ws.send("through")
            first = await ws.recv()
            await ws.send(b"\x01\x02")
            return first, await ws.recv()
    assert asyncio.run(asyncio.wait_for(go(), 20)) == ("through", b"\x01\x02")


def test_instance_death_closes_outbound_sockets_with_1001(serve, upstream):
    up = upstream()
    srv = serve(WORKER, thaw=ALLOW)
    to = up.url("/echo")

    async def go():
        async with through(srv, "proxy", to) as ws:
            await ws.send("first")
            assert await ws.recv() == "first"
            await ws.send("exit")
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code
    # the client's socket: the instance ended (1011); the server's: thaw
    # went away for the worker (1001), with a close frame, not a cut
    assert asyncio.run(asyncio.wait_for(go(), 20)) == 1011
    wait_seen(up, ("/echo", "closed", 1001))


def test_returning_fetchs_101_proxies_the_socket(serve, upstream):
    up = upstream()
    srv = serve(WORKER, thaw=ALLOW)
    to = up.url("/echo")

    async def go():
        async with through(srv, "pass", to) as ws:
            await ws.send("straight")
            first = await ws.recv()
            await ws.send(b"\xff")
            second = await ws.recv()
            await ws.close(4002, "client done")
            return first, second
    assert asyncio.run(asyncio.wait_for(go(), 20)) == ("straight", b"\xff")
    # the client's close went on to the server, code and reason
    wait_seen(up, ("/echo", "closed", 4002))


def test_sockets_count_against_max_connections(serve, upstream):
    up = upstream()
    srv = serve(WORKER, thaw={"egress": {"allow": ["127.0.0.0/8"], "max_connections": 1},
                              "max_instances": 1})
    to = up.url("/echo")

    async def go():
        async with through(srv, "proxy", to) as ws:
            await ws.send("one")
            assert await ws.recv() == "one"
            # the first socket is open in the only instance: a second is refused
            return srv.get("/fetch?to=" + quote(to)).text
    text = asyncio.run(asyncio.wait_for(go(), 20))
    assert text.startswith("raised PermissionError: this instance already has 1 "
                           "WebSockets open"), text


def test_a_101_that_does_not_answer_the_key_is_refused(serve):
    """A server that says 101 without the right Sec-WebSocket-Accept (a
    proxy that does not speak WebSocket, say): fetch raises."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer():
        conn, _ = listener.accept()
        with conn:
            while b"\r\n\r\n" not in conn.recv(65536):
                pass
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: bm90IGl0\r\n\r\n")
            conn.recv(1)
    t = threading.Thread(target=answer, daemon=True)
    t.start()
    srv = serve(WORKER, thaw=ALLOW)
    text = ask(srv, "fetch", f"ws://127.0.0.1:{listener.getsockname()[1]}/")
    assert text.startswith("raised ConnectionError: the WebSocket handshake with ws://"), text
    assert "Sec-WebSocket-Accept does not answer" in text, text
    listener.close()
