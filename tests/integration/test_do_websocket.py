"""WebSockets of Durable Objects (issue 18 point 6; docs/bindings/
durable-objects.md, "WebSockets"): the real thaw dev, python3-websockets
as the client. A worker forwards the upgrade to an object (`return await
stub.fetch(request)`); the object's 101 makes the client's socket the
object's. A chat room as Cloudflare's docs write one (the hibernation
API: acceptWebSocket with tags, getWebSockets, attachments, an auto-
response), its host killed between messages (hibernation), an object
that raises (1011), the per-object limit, and the standard API
(server.accept() and listeners) in an object."""
import asyncio
import json
import math
import time

import pytest
import websockets
from websockets.frames import Frame, Opcode

import urllib.request

from thawlib import free_port, wait_for, write_main, write_worker

WORKER = '''
    import asyncio
    import json
    import os
    from urllib.parse import urlparse, parse_qs
    from workers import (DurableObject, Response, WebSocketPair, WorkerEntrypoint,
                         WebSocketRequestResponsePair)
    from pyodide.ffi import create_proxy


    class ChatRoom(DurableObject):
        def __init__(self, ctx, env):
            super().__init__(ctx, env)
            self.boot = os.urandom(4).hex()  # new each time the object is made
            self.seen = 0

        async def fetch(self, request):
            user = parse_qs(urlparse(request.url).query).get("user", ["anon"])[0]
            client, server = WebSocketPair.new().object_values()
            self.ctx.acceptWebSocket(server, [user, "room"])
            server.serializeAttachment({"user": user})
            self.ctx.setWebSocketAutoResponse(WebSocketRequestResponsePair("ping", "pong"))
            return Response(None, status=101, web_socket=client)

        async def webSocketMessage(self, ws, message):
            user = ws.deserializeAttachment()["user"]
            self.seen += 1
            if isinstance(message, bytes):  # binary: to everyone as it came
                for peer in self.ctx.getWebSockets():
                    peer.send(message)
            elif message == "whoami":
                ws.send(json.dumps({"user": user, "tags": self.ctx.getTags(ws),
                                    "boot": self.boot, "seen": self.seen,
                                    "sockets": len(self.ctx.getWebSockets())}))
            elif message == "boom":
                raise RuntimeError("the room broke")
            elif message == "stamps":
                # when the supervisor last answered each socket's "ping"
                out = {}
                for peer in self.ctx.getWebSockets():
                    at = self.ctx.getWebSocketAutoResponseTimestamp(peer)
                    out[peer.deserializeAttachment()["user"]] = (
                        None if at is None else at.getTime())
                _, stranger = WebSocketPair.new().object_values()
                out["stranger"] = self.ctx.getWebSocketAutoResponseTimestamp(stranger)
                try:
                    self.ctx.getWebSocketAutoResponseTimestamp("ann")
                except TypeError as exc:
                    out["error"] = str(exc)
                ws.send(json.dumps(out))
            elif message.startswith("to:"):
                _, target, text = message.split(":", 2)
                for peer in self.ctx.getWebSockets(target):
                    peer.send(f"{user} whispers {text}")
            elif message == "die":
                # the host instance goes once this event is over
                asyncio.get_running_loop().call_later(0.2, os._exit, 0)
                ws.send("dying")
            elif message == "bye":
                ws.close(4000, "asked")
            else:
                for peer in self.ctx.getWebSockets():
                    peer.send(f"{user}: {message}")

        async def webSocketError(self, ws, error):
            print("ws-error", ws.deserializeAttachment()["user"], error, flush=True)

        async def webSocketClose(self, ws, code, reason, wasClean):
            print("ws-close", ws.deserializeAttachment()["user"], code, reason, wasClean,
                  flush=True)


    class Plain(DurableObject):
        """The standard API: accept() and listeners, no hibernation."""
        async def fetch(self, request):
            client, server = WebSocketPair.new().object_values()
            server.accept()

            def on_message(event):
                if event.data == "die":
                    asyncio.get_running_loop().call_later(0.2, os._exit, 0)
                server.send("plain:" + event.data)
            server.addEventListener("message", create_proxy(on_message))
            return Response(None, status=101, web_socket=client)


    class Lobby(DurableObject):
        """Passes the upgrade on to a room: the socket is the room's."""
        async def fetch(self, request):
            return await self.env.ROOMS.getByName("hall").fetch(request)


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            url = urlparse(request.url)
            if request.headers.get("Upgrade") != "websocket":
                return Response("Durable Object expected Upgrade: websocket", status=426)
            room = parse_qs(url.query).get("room", ["lobby"])[0]
            ns = {"/plain": self.env.PLAIN, "/lobby": self.env.LOBBY}.get(url.path,
                                                                         self.env.ROOMS)
            stub = ns.getByName(room)
            return await stub.fetch(request)
'''

CONFIG = dict(
    durable_objects={"bindings": [{"name": "ROOMS", "class_name": "ChatRoom"},
                                  {"name": "PLAIN", "class_name": "Plain"},
                                  {"name": "LOBBY", "class_name": "Lobby"}]},
    migrations=[{"tag": "v1", "new_sqlite_classes": ["ChatRoom", "Plain", "Lobby"]}],
    thaw={"do_max_websockets": 3})


@pytest.fixture
def chat(workdir, thaw_factory):
    write_worker(workdir, WORKER, fmt="json", name="do-chat", **CONFIG)
    return thaw_factory(workdir)


def url(t, user, room="lobby", path="chat"):
    return f"ws://127.0.0.1:{t.port}/{path}?room={room}&user={user}"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def host_went(t):
    log = t.wait_log(") exited", ") closed its channel", any_=True, timeout=10)
    return ") exited" in log or ") closed its channel" in log


async def recv_json(ws):
    return json.loads(await ws.recv())


def test_a_chat_room_broadcasts_to_every_socket_and_whispers_by_tag(chat):
    async def go():
        async with websockets.connect(url(chat, "ann")) as ann, \
                websockets.connect(url(chat, "bob")) as bob, \
                websockets.connect(url(chat, "cy", room="other")) as cy:
            await ann.send("hello")
            got = (await ann.recv(), await bob.recv())
            big = "y" * 100_000  # over 64 KiB: the event's body, not its head
            await bob.send(big)
            assert (await ann.recv(), await bob.recv()) == ("bob: " + big, "bob: " + big)
            await bob.send(b"\x00\xffbin")  # bytes: a binary message
            assert (await ann.recv(), await bob.recv()) == (b"\x00\xffbin", b"\x00\xffbin")
            await bob.send("to:ann:psst")
            whisper = await ann.recv()
            await ann.send("whoami")
            me = await recv_json(ann)
            await cy.send("whoami")
            other = await recv_json(cy)
            await bob.send("bye")
            await bob.wait_closed()
            return got, whisper, me, other, bob.close_code
    got, whisper, me, other, code = run(go())
    assert got == ("ann: hello", "ann: hello")  # each socket of the room, none of another
    assert whisper == "bob whispers psst"       # getWebSockets("ann"): by tag
    assert me["user"] == "ann" and me["tags"] == ["ann", "room"] and me["sockets"] == 2
    assert other["sockets"] == 1
    assert code == 4000
    # webSocketClose(ws, code, reason, wasClean) once the client answered
    assert "ws-close bob 4000 asked True" in chat.wait_log("ws-close bob")


def test_the_auto_response_is_answered_without_the_object(chat):
    async def go():
        async with websockets.connect(url(chat, "ann", room="auto")) as ann:
            await ann.send("ping")
            pong = await ann.recv()
            await ann.send("whoami")
            return pong, await recv_json(ann)
    pong, me = run(go())
    assert pong == "pong"
    assert me["seen"] == 1  # the ping never reached webSocketMessage


def test_auto_response_timestamps_are_kept_per_socket_while_the_object_is_away(chat):
    # the main use: a ping answered while the object is not in memory, and
    # the object, made again by another socket's message, asks when it went
    def ms_floor():
        return int(time.time() * 1000)

    def ms_ceil():
        return math.ceil(time.time() * 1000)

    async def ping(ws):
        before = ms_floor()
        await ws.send("ping")
        assert await ws.recv() == "pong"
        return before, ms_ceil()

    async def go():
        async with websockets.connect(url(chat, "ann", room="stamps")) as ann, \
                websockets.connect(url(chat, "bob", room="stamps")) as bob:
            await ann.send("stamps")
            first = await recv_json(ann)
            await ann.send("die")
            assert await ann.recv() == "dying"
            assert host_went(chat)
            ann_window = await ping(ann)  # the object's host is gone
            await bob.send("stamps")      # makes the object again
            woken = await recv_json(bob)
            bob_window = await ping(bob)
            await ann.send("stamps")
            both = await recv_json(ann)
            return first, ann_window, woken, bob_window, both
    first, ann_window, woken, bob_window, both = run(go())
    assert first["ann"] is None and first["bob"] is None  # before any auto-response
    assert ann_window[0] <= woken["ann"] <= ann_window[1], (ann_window, woken)
    assert woken["bob"] is None                            # each socket its own
    assert both["ann"] == woken["ann"]
    assert bob_window[0] <= both["bob"] <= bob_window[1], (bob_window, both)
    # Cloudflare's: null for a WebSocket without one, a TypeError for a non-WebSocket
    assert both["stranger"] is None
    assert "getWebSocketAutoResponseTimestamp" in both["error"]
    assert "not of type 'WebSocket'" in both["error"]


def test_a_hibernated_object_is_made_again_for_the_next_message(chat):
    async def go():
        async with websockets.connect(url(chat, "ann", room="sleepy")) as ann, \
                websockets.connect(url(chat, "bob", room="sleepy")) as bob:
            await ann.send("whoami")
            before = await recv_json(ann)
            await ann.send("die")
            assert await ann.recv() == "dying"
            assert host_went(chat)
            # the object's host is gone; the sockets are still open
            await ann.send("whoami")
            after = await recv_json(ann)
            await bob.send("still here")
            heard = (await ann.recv(), await bob.recv())
            await bob.send("to:ann:hi")
            whisper = await ann.recv()
            return before, after, heard, whisper
    before, after, heard, whisper = run(go())
    assert after["boot"] != before["boot"]      # __init__ ran again
    assert after["seen"] == 1                   # in-memory state went
    assert after["user"] == "ann"               # the attachment stayed
    assert after["tags"] == ["ann", "room"]     # and the tags
    assert after["sockets"] == 2                # both sockets are the new object's
    assert heard == ("bob: still here", "bob: still here")
    assert whisper == "bob whispers hi"


def test_an_object_that_raises_closes_that_socket_with_1011_and_keeps_the_others(chat):
    async def go():
        async with websockets.connect(url(chat, "ann", room="fragile")) as ann, \
                websockets.connect(url(chat, "bob", room="fragile")) as bob:
            await ann.send("boom")
            await ann.wait_closed()
            await bob.send("whoami")
            return ann.close_code, await recv_json(bob)
    code, bob = run(go())
    assert code == 1011
    assert bob["user"] == "bob" and bob["sockets"] == 1
    assert "RuntimeError: the room broke" in chat.wait_log("the room broke")


def test_more_sockets_than_the_limit_is_a_clear_error(chat):
    async def go():
        socks = [await websockets.connect(url(chat, f"u{i}", room="full")) for i in range(3)]
        try:
            with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
                await websockets.connect(url(chat, "late", room="full"))
            return e.value.status_code
        finally:
            for s in socks:
                await s.close()
    assert run(go()) == 500
    assert "do_max_websockets" in chat.wait_log("do_max_websockets")


def test_the_standard_api_in_an_object_and_its_host_going(chat):
    async def go():
        async with websockets.connect(url(chat, "x", path="plain")) as ws:
            await ws.send("one")
            first = await ws.recv()
            await ws.send("die")
            assert await ws.recv() == "plain:die"
            assert host_went(chat)
            # not hibernatable: the socket lived in the host, which is gone
            await ws.send("two")
            await ws.wait_closed()
            return first, ws.close_code
    assert run(go()) == ("plain:one", 1011)


def test_sockets_stay_open_across_a_reload_and_reach_the_new_version(chat, workdir):
    async def go():
        async with websockets.connect(url(chat, "ann", room="reload")) as ann:
            await ann.send("whoami")
            before = await recv_json(ann)
            write_main(workdir, WORKER.replace('"user": user,', '"user": user, "v": 2,'))
            assert "(version 2)" in chat.wait_log("(version 2)", timeout=20)
            await ann.send("whoami")
            return before, await recv_json(ann)
    before, after = run(go())
    assert "v" not in before
    assert after["v"] == 2 and after["boot"] != before["boot"]  # the new version's object
    assert after["tags"] == ["ann", "room"] and after["sockets"] == 1


def test_bad_utf8_from_the_client_is_an_error_then_a_close_for_the_object(chat):
    async def go():
        async with websockets.connect(url(chat, "eve", room="strict")) as ws:
            ws.transport.write(Frame(Opcode.TEXT, b"ok \xc3\x28 bad").serialize(mask=True))
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code
    assert run(go()) == 1007
    log = chat.wait_log("ws-close eve")
    assert "ws-error eve the WebSocket failed with code 1007" in log
    assert "ws-close eve 1007" in log and log.index("ws-error eve") < log.index("ws-close eve")


def test_an_object_may_pass_the_upgrade_on_to_another(chat):
    async def go():
        async with websockets.connect(url(chat, "zed", path="lobby")) as zed, \
                websockets.connect(url(chat, "amy", room="hall")) as amy:
            await zed.send("hi all")
            return await zed.recv(), await amy.recv()
    assert run(go()) == ("zed: hi all", "zed: hi all")  # one room: the hall



@pytest.fixture
def chat_evicting(workdir, thaw_factory):
    # objects idle for 300 ms leave memory (durable_object_idle_timeout_ms)
    cfg = dict(CONFIG, thaw=dict(CONFIG["thaw"], durable_object_idle_timeout_ms=300))
    write_worker(workdir, WORKER, fmt="json", name="do-chat", **cfg)
    return thaw_factory(workdir)


def test_idle_eviction_hibernates_an_object_and_spares_accepted_sockets(chat_evicting):
    # a hibernatable object may leave memory while its sockets stay open:
    # its next message makes it again. One that took a socket with
    # server.accept() holds it in memory: evicting it would cut the socket
    async def go():
        async with websockets.connect(url(chat_evicting, "ann", room="idle")) as ann, \
                websockets.connect(url(chat_evicting, "x", path="plain", room="idle")) as p:
            await ann.send("whoami")
            before = await recv_json(ann)
            await p.send("one")
            first = await p.recv()
            await asyncio.sleep(2)  # several idle timeouts
            await ann.send("whoami")
            after = await recv_json(ann)
            await p.send("two")
            return before, after, first, await p.recv()
    before, after, first, second = run(go())
    assert after["boot"] != before["boot"], (before, after)  # evicted, made again
    assert after["tags"] == ["ann", "room"] and after["sockets"] == 1
    assert (first, second) == ("plain:one", "plain:two")


def test_metrics_count_open_hibernatable_sockets(workdir, thaw_factory):
    # thaw_do_websockets: the acceptWebSocket sockets the supervisor holds,
    # the object in memory or not; a server.accept() one is not counted
    admin = free_port()
    write_worker(workdir, WORKER, fmt="json", name="do-chat", **CONFIG)
    t = thaw_factory(workdir, "--admin", f"127.0.0.1:{admin}")

    def held():
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5) as r:
            text = r.read().decode()
        line = [x for x in text.splitlines() if x.startswith("thaw_do_websockets{")]
        assert line == [line[0]] and 'worker="do-chat"' in line[0], text
        return int(line[0].split()[-1])

    async def go():
        assert held() == 0
        async with websockets.connect(url(t, "ann", room="m")) as ann, \
                websockets.connect(url(t, "x", path="plain", room="m")) as p:
            async with websockets.connect(url(t, "bob", room="m2")):
                assert held() == 2
                await ann.send("die")
                assert await ann.recv() == "dying"
                assert host_went(t)
                assert held() == 2  # hibernated: no object, the sockets held
            await asyncio.to_thread(wait_for, lambda: held() == 1, "bob's record to go")
    run(go())
    wait_for(lambda: held() == 0, "ann's record to go")
