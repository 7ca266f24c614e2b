"""How a Durable Object's WebSocket messages run (issue 18's echo path,
src/zygote/dows.c, against python/workers/_durable_ws.py's semantics):
an echo ends in its first step, in the object's own task; a handler that
waits goes on in that task and the messages behind it wait their turn,
in order, one at a time; a write it did not await holds its event until
it commits; a handler that raises after waiting closes its socket with
1011; a plain `def` handler works; a ContextVar set by one message is
not seen by the next; asyncio.timeout inside a handler fires. The real
thaw dev; python3-websockets as the client."""
import asyncio
import json

import websockets

from thawlib import write_worker

WORKER = '''
    import asyncio
    import contextvars
    import json
    from workers import DurableObject, Response, WebSocketPair, WorkerEntrypoint

    seen_var = contextvars.ContextVar("seen_var", default="unset")


    def task_name():
        task = asyncio.current_task()
        return getattr(task.get_coro(), "__qualname__", "?") if task else None


    class Room(DurableObject):
        def __init__(self, ctx, env):
            super().__init__(ctx, env)
            self.running = 0
            self.most = 0

        async def fetch(self, request):
            client, server = WebSocketPair.new().object_values()
            self.ctx.acceptWebSocket(server)
            return Response(None, status=101, web_socket=client)

        async def webSocketMessage(self, ws, message):
            self.running += 1
            self.most = max(self.most, self.running)
            try:
                await self.on(ws, message)
            finally:
                self.running -= 1

        async def on(self, ws, message):
            kind, _, arg = message.partition(":")
            if kind == "echo":
                ws.send(json.dumps({"echo": arg, "task": task_name()}))
            elif kind == "slow":
                before = asyncio.current_task()
                await asyncio.sleep(0.05)
                ws.send(json.dumps({"slow": arg, "same_task": asyncio.current_task() is before,
                                    "most": self.most}))
            elif kind == "put":
                self.ctx.storage.put("n", arg)  # not awaited: the output gate holds it
                ws.send("put " + arg)
            elif kind == "get":
                ws.send("got " + str(await self.ctx.storage.get("n")))
            elif kind == "boom":
                await asyncio.sleep(0.01)
                raise RuntimeError("late boom")
            elif kind == "sleep":
                await asyncio.sleep(3600)  # request_timeout_ms cancels it
            elif kind == "len":
                ws.send(f"len {len(arg)}")
            elif kind == "setvar":
                seen_var.set(arg)
                ws.send("set")
            elif kind == "getvar":
                ws.send("var " + seen_var.get())
            elif kind == "timeout":
                try:
                    async with asyncio.timeout(0.05):
                        await asyncio.sleep(10)
                    ws.send("no timeout")
                except TimeoutError:
                    ws.send("timed out " + str(asyncio.current_task().cancelling()))


    class Plain(DurableObject):
        async def fetch(self, request):
            client, server = WebSocketPair.new().object_values()
            self.ctx.acceptWebSocket(server)
            return Response(None, status=101, web_socket=client)

        def webSocketMessage(self, ws, message):  # not a coroutine function
            ws.send("plain " + message)


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            ns = self.env.PLAIN if request.url.endswith("/plain") else self.env.ROOMS
            return await ns.getByName("r").fetch(request)
'''


def start(workdir, thaw_factory, **cfg):
    write_worker(workdir, WORKER, fmt="json", name="do-events",
                 durable_objects={"bindings": [{"name": "ROOMS", "class_name": "Room"},
                                               {"name": "PLAIN", "class_name": "Plain"}]},
                 migrations=[{"tag": "v1", "new_sqlite_classes": ["Room", "Plain"]}], **cfg)
    return thaw_factory(workdir)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_messages_run_in_order_one_at_a_time_in_the_objects_task(workdir, thaw_factory):
    t = start(workdir, thaw_factory)

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{t.port}/ws") as ws:
            await ws.send("echo:warm")
            warm = json.loads(await ws.recv())
            # a slow one, then echoes sent while it waits: they wait behind it
            await ws.send("slow:1")
            for i in range(5):
                await ws.send(f"echo:{i}")
            await ws.send("slow:2")
            return warm, [json.loads(await ws.recv()) for _ in range(7)]
    warm, got = run(go())
    # the first message made the object (the Python path); the next is C's,
    # in the object's own task (src/zygote/dows.c)
    assert warm["echo"] == "warm"
    assert [m.get("slow", m.get("echo")) for m in got] == ["1", "0", "1", "2", "3", "4", "2"]
    assert all(m["same_task"] for m in got if "slow" in m)
    assert all(m["most"] == 1 for m in got if "slow" in m)  # never two at once
    echoes = [m for m in got if "echo" in m]
    assert {m["task"] for m in echoes} <= {"durable_object_events", "_run"}, echoes


def test_the_echo_runs_in_the_objects_own_task(workdir, thaw_factory):
    t = start(workdir, thaw_factory)

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{t.port}/ws") as ws:
            out = []
            for i in range(3):
                await ws.send(f"echo:{i}")
                out.append(json.loads(await ws.recv()))
            return out
    got = run(go())
    assert got[-1]["task"] == "durable_object_events", got


def test_a_write_not_awaited_is_committed_before_the_next_message(workdir, thaw_factory):
    t = start(workdir, thaw_factory)

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{t.port}/ws") as ws:
            out = []
            for m in ("echo:x", "put:7", "get", "put:8", "get"):
                await ws.send(m)
                out.append(await ws.recv())
            return out
    got = run(go())
    assert got[1:] == ["put 7", "got 7", "put 8", "got 8"]


def test_a_handler_raising_after_it_waited_closes_its_socket_with_1011(workdir, thaw_factory):
    t = start(workdir, thaw_factory)

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{t.port}/ws") as a, \
                websockets.connect(f"ws://127.0.0.1:{t.port}/ws") as b:
            await a.send("echo:x")
            await a.recv()
            await a.send("boom")
            await a.wait_closed()
            await b.send("echo:still")
            return a.close_code, a.close_reason, json.loads(await b.recv())["echo"]
    code, reason, other = run(go())
    assert code == 1011 and "RuntimeError" in reason
    assert other == "still"
    assert "late boom" in t.log()


def test_a_plain_def_handler_and_context_vars_per_message(workdir, thaw_factory):
    t = start(workdir, thaw_factory)

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{t.port}/plain") as p, \
                websockets.connect(f"ws://127.0.0.1:{t.port}/ws") as ws:
            plain = []
            for m in ("a", "b"):
                await p.send(m)
                plain.append(await p.recv())
            out = []
            for m in ("echo:x", "setvar:one", "getvar", "timeout"):
                await ws.send(m)
                out.append(await ws.recv())
            return plain, out
    plain, out = run(go())
    assert plain == ["plain a", "plain b"]
    assert out[1:] == ["set", "var unset", "timed out 0"]


def test_a_message_over_64_kib_travels_as_a_body_and_binary_as_bytes(workdir, thaw_factory):
    # src/do/ws.c: up to 64 KiB one DO_WS frame, above a request with a body
    t = start(workdir, thaw_factory)

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{t.port}/ws", max_size=None) as ws:
            out = []
            for m in ("len:" + "y" * 100_000, "len:" + "z" * 1000, "len:" + "w" * 200_000):
                await ws.send(m)
                out.append(await ws.recv())
            await ws.send(b"echo:raw")  # binary: webSocketMessage gets bytes
            await ws.wait_closed()
            return out, ws.close_code
    out, code = run(go())
    assert out == ["len 100000", "len 1000", "len 200000"]
    assert code == 1011  # bytes has no .partition(":") of str: the handler raised
    assert "TypeError" in t.log()


def test_after_a_cancelled_event_the_object_takes_its_next_messages(workdir, thaw_factory):
    # request_timeout_ms cancels the event waiting in the object's task:
    # its sockets close with 1011, the task goes on for the next ones
    t = start(workdir, thaw_factory, thaw={"request_timeout_ms": 1000})

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{t.port}/ws") as a:
            await a.send("echo:x")
            first = json.loads(await a.recv())["task"]
            await a.send("sleep")
            await a.wait_closed()
        async with websockets.connect(f"ws://127.0.0.1:{t.port}/ws") as b:
            got = []
            for m in ("echo:1", "slow:2", "echo:3"):
                await b.send(m)
                got.append(json.loads(await b.recv()))
        return first, a.close_code, got
    first, code, got = run(go())
    assert code == 1011
    assert first == "durable_object_events"
    assert [m.get("echo", m.get("slow")) for m in got] == ["1", "2", "3"]
    assert got[0]["task"] == got[2]["task"] == "durable_object_events"
    assert got[1]["same_task"] is True
    log = t.log()
    assert "never retrieved" not in log and "destroyed but it is pending" not in log, log
