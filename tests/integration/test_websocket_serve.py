"""WebSockets under `thaw serve`: the upgrade is routed by Host like any
request, and each worker's sockets are its own."""
import asyncio
import json
from urllib.parse import quote

import pytest
import websockets

from servelib import serve_factory  # noqa: F401
from thawlib import write_worker

ECHO = '''
from workers import Response, WorkerEntrypoint, WebSocketPair

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        client, server = WebSocketPair.new().object_values()
        server.accept()
        server.addEventListener("message", lambda e: server.send({tag!r} + e.data))
        return Response(None, status=101, web_socket=client)
'''


def test_sockets_are_routed_by_host(serve_factory, tmp_path):
    srv = serve_factory()
    for name in ("alpha", "beta"):
        d = tmp_path / name
        write_worker(d, ECHO.format(tag=name + ":"), name=name)
        srv.cli("deploy", str(d))

    async def talk(host):
        # the URI names the worker (Host); the connection goes to thaw
        async with websockets.connect(f"ws://{host}/", host="127.0.0.1",
                                      port=srv.port) as ws:
            await ws.send("hi")
            return await ws.recv()

    async def go():
        return await asyncio.gather(talk("alpha.localhost"), talk("beta.localhost"))
    assert asyncio.run(asyncio.wait_for(go(), 30)) == ["alpha:hi", "beta:hi"]


RELAY = '''
from urllib.parse import parse_qs, urlparse
from workers import Response, WorkerEntrypoint, WebSocketPair, fetch

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        to = parse_qs(urlparse(request.url).query)["to"][0]
        upstream = (await fetch(to, headers={"Upgrade": "websocket"})).web_socket
        client, server = WebSocketPair.new().object_values()
        server.accept()
        upstream.accept()
        server.addEventListener("message", lambda e: upstream.send(e.data))
        upstream.addEventListener("message", lambda e: server.send(e.data))
        return Response(None, status=101, web_socket=client)
'''


def test_deleting_the_worker_closes_its_outbound_sockets(serve_factory, tmp_path):
    """Under the operator's [egress] and the worker's; `thaw delete` ends the
    worker's instances, and its sockets to servers close with 1001."""
    from test_websocket_outbound import Upstream, wait_seen
    up = Upstream()
    try:
        op = tmp_path / "serve.json"
        op.write_text(json.dumps({"egress": {"allow": ["127.0.0.0/8"]}}))
        srv = serve_factory(args=("--config", str(op)))
        d = tmp_path / "relay"
        write_worker(d, RELAY, name="relay", thaw={"egress": {"allow": ["127.0.0.0/8"]}})
        srv.cli("deploy", str(d))

        async def go():
            to = quote(up.url("/echo"))
            async with websockets.connect(f"ws://relay.localhost/?to={to}", host="127.0.0.1",
                                          port=srv.port) as ws:
                await ws.send("one")
                assert await ws.recv() == "one"
                await asyncio.get_running_loop().run_in_executor(
                    None, lambda: srv.cli("delete", "relay"))
                with pytest.raises(websockets.ConnectionClosed):
                    await ws.recv()
        asyncio.run(asyncio.wait_for(go(), 60))
        wait_seen(up, ("/echo", "closed", 1001))
    finally:
        up.stop()


ROOM = '''
from workers import DurableObject, Response, WorkerEntrypoint, WebSocketPair

class Room(DurableObject):
    async def fetch(self, request):
        client, server = WebSocketPair.new().object_values()
        self.ctx.acceptWebSocket(server)
        return Response(None, status=101, web_socket=client)

    async def webSocketMessage(self, ws, message):
        ws.send("room:" + message)

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await self.env.ROOMS.getByName("r").fetch(request)
'''


def test_deleting_the_worker_ends_its_objects_sockets(serve_factory, tmp_path):
    """A Durable Object's socket belongs to no request once the object has
    it (src/do/ws.c): `thaw delete` must still end it, with 1011."""
    srv = serve_factory()
    d = tmp_path / "rooms"
    write_worker(d, ROOM, name="rooms", fmt="json",
                 durable_objects={"bindings": [{"name": "ROOMS", "class_name": "Room"}]},
                 migrations=[{"tag": "v1", "new_sqlite_classes": ["Room"]}])
    srv.cli("deploy", str(d))

    async def go():
        async with websockets.connect("ws://rooms.localhost/", host="127.0.0.1",
                                      port=srv.port) as ws:
            await ws.send("one")
            assert await ws.recv() == "room:one"
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: srv.cli("delete", "rooms"))
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code
    assert asyncio.run(asyncio.wait_for(go(), 60)) == 1011
