"""Issue 18's bad-input rule for Durable Object WebSockets: an object that
loops forever in webSocketMessage is stopped by the CPU limit (cpu_ms
kills its host instance), every hibernatable socket of that object closes
with 1011, and another object, hosted in the same instance, goes on: its
socket stays open, and its message that waited behind the loop reaches
the object made again in the next host (docs/bindings/
durable-objects.md, "Failures"). The real thaw dev; python3-websockets
as the client."""
import asyncio


import websockets

from thawlib import write_worker

WORKER = '''
    import asyncio
    import os
    from urllib.parse import urlparse, parse_qs
    from workers import DurableObject, Response, WebSocketPair, WorkerEntrypoint


    class Room(DurableObject):
        def __init__(self, ctx, env):
            super().__init__(ctx, env)
            self.boot = os.urandom(4).hex()  # new each time the object is made

        async def fetch(self, request):
            client, server = WebSocketPair.new().object_values()
            self.ctx.acceptWebSocket(server)
            return Response(None, status=101, web_socket=client)

        async def webSocketMessage(self, ws, message):
            if message == "spin":
                print("spinning", flush=True)
                while True:  # never yields: only cpu_ms stops it
                    pass
            if message == "wait":
                print("waiting", flush=True)
                await asyncio.sleep(3600)  # yields: request_timeout_ms ends it
            ws.send(f"{message} {self.boot} {os.getpid()}")


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            room = parse_qs(urlparse(request.url).query)["room"][0]
            return await self.env.ROOMS.getByName(room).fetch(request)
'''


def start(workdir, thaw_factory, **cfg):
    write_worker(workdir, WORKER, fmt="json", name="do-spin",
                 durable_objects={"bindings": [{"name": "ROOMS", "class_name": "Room"}]},
                 migrations=[{"tag": "v1", "new_sqlite_classes": ["Room"]}], **cfg)
    return thaw_factory(workdir)


def test_an_object_looping_forever_closes_its_sockets_with_1011_and_spares_others(
        workdir, thaw_factory):
    t = start(workdir, thaw_factory, limits={"cpu_ms": 300})

    def url(room):
        return f"ws://127.0.0.1:{t.port}/ws?room={room}"

    async def go():
        async with websockets.connect(url("loop")) as a1, \
                websockets.connect(url("loop")) as a2, \
                websockets.connect(url("calm")) as b:
            await b.send("hi")
            _, boot, pid = (await b.recv()).split()
            await a1.send("spin")
            assert "spinning" in await asyncio.to_thread(t.wait_log, "spinning")
            # b's object shares the looping host: this message waits behind
            # the loop, and outlives the host's kill
            await b.send("still")
            heard = await b.recv()
            await a1.wait_closed()
            await a2.wait_closed()
            await b.send("again")
            return boot, pid, heard, await b.recv(), a1.close_code, a2.close_code
    boot, pid, heard, again, c1, c2 = asyncio.run(asyncio.wait_for(go(), 60))
    assert (c1, c2) == (1011, 1011)
    word, boot2, pid2 = heard.split()
    assert word == "still" and pid2 != pid and boot2 != boot  # made again, new host
    assert again.split()[:2] == ["again", boot2]
    log = t.log()
    assert "CPU time limit of 300 ms" in log, log
    assert "its 2 hibernatable WebSockets close with 1011" in log, log


def test_an_event_over_its_wall_clock_closes_its_objects_sockets_and_the_host_stays(
        workdir, thaw_factory):
    # request_timeout_ms cancels the event; the host lives on, and so does
    # the other object in it (same process, same object)
    t = start(workdir, thaw_factory, thaw={"request_timeout_ms": 1000})

    def url(room):
        return f"ws://127.0.0.1:{t.port}/ws?room={room}"

    async def go():
        async with websockets.connect(url("slow")) as a1, \
                websockets.connect(url("slow")) as a2, \
                websockets.connect(url("calm")) as b:
            await b.send("hi")
            before = await b.recv()
            await a1.send("wait")
            await a1.wait_closed()
            await a2.wait_closed()
            await b.send("hi")
            return before, await b.recv(), a1.close_code, a2.close_code
    before, after, c1, c2 = asyncio.run(asyncio.wait_for(go(), 60))
    assert (c1, c2) == (1011, 1011)
    assert after == before  # the same object in the same host
    assert "its 2 hibernatable WebSockets close with 1011" in t.log()
