"""WebSockets under `thaw serve`: the upgrade is routed by Host like any
request, and each worker's sockets are its own."""
import asyncio

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
