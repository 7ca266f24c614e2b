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
