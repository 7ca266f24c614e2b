"""A Durable Object's WebSocket in a cluster (issue 19 item 4, docs/
scale-out.md "Objects and databases that live in one place"): real
`thaw serve` nodes sharing a real PostgreSQL, python3-websockets as the
client. The chat-room pattern (`return await stub.fetch(request)` with
Upgrade: websocket) on a node that does not own the room: the upgrade is
forwarded to the owner's internal port, the object's socket lives on the
owner (its record, getWebSockets, webSocketClose) and the node the client
reached relays the bytes both ways. The owner killed: the relayed socket
is cut (1006) and a new upgrade answers 503 naming the owner."""
import asyncio
import http.client
import json
import signal
import time

import websockets

from pglib import postgres, wait_for  # noqa: F401
from test_cluster_owner import cluster  # noqa: F401 (the fixture)
from thawlib import write_worker

WORKER = '''
    from urllib.parse import urlparse, parse_qs
    from workers import DurableObject, Response, WebSocketPair, WorkerEntrypoint


    class ChatRoom(DurableObject):
        async def fetch(self, request):
            if request.headers.get("Upgrade") != "websocket":
                return Response("a room", status=202)
            user = parse_qs(urlparse(request.url).query).get("user", ["anon"])[0]
            if user == "boom":
                raise ValueError("no boom in this room")
            client, server = WebSocketPair.new().object_values()
            self.ctx.acceptWebSocket(server, [user])
            server.serializeAttachment({"user": user})
            return Response(None, status=101, web_socket=client)

        async def webSocketMessage(self, ws, message):
            user = ws.deserializeAttachment()["user"]
            if message == "whoami":
                users = sorted(p.deserializeAttachment()["user"]
                               for p in self.ctx.getWebSockets())
                ws.send(f"{user} {self.ctx.getTags(ws)} {users}")
            elif message == "bye":
                ws.close(4000, "asked")
            elif isinstance(message, str) and message.startswith("flood:"):
                n = int(message[6:])
                chunk = "f" * 65536
                for _ in range(n):
                    ws.send(chunk)
                ws.send("flooded")
                print("flood-done", flush=True)
            else:
                for peer in self.ctx.getWebSockets():
                    peer.send(message if isinstance(message, bytes) else f"{user}: {message}")

        async def webSocketClose(self, ws, code, reason, wasClean):
            print("ws-close", ws.deserializeAttachment()["user"], code, reason, wasClean,
                  flush=True)


    class Lobby(DurableObject):
        """Passes the upgrade on to a room (maybe on a third node)."""
        async def fetch(self, request):
            to = parse_qs(urlparse(request.url).query).get("to", ["hall"])[0]
            return await self.env.ROOMS.getByName(to).fetch(request)


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            url = urlparse(request.url)
            room = parse_qs(url.query).get("room", ["lobby"])[0]
            ns = self.env.LOBBY if url.path == "/lobby" else self.env.ROOMS
            try:
                return await ns.getByName(room).fetch(request)
            except Exception as e:
                return Response(f"{type(e).__name__}: {e}", status=503)
'''

CONFIG = dict(durable_objects={"bindings": [{"name": "ROOMS", "class_name": "ChatRoom"},
                                            {"name": "LOBBY", "class_name": "Lobby"}]},
              migrations=[{"tag": "v1", "new_sqlite_classes": ["ChatRoom", "Lobby"]}],
              thaw={"ws_max_message": 1 << 20})

UPGRADE = {"Host": "chat.localhost", "Upgrade": "websocket", "Connection": "Upgrade",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}


def deploy(c, tmp_path):
    d = tmp_path / "chat"
    write_worker(d, WORKER, name="chat", fmt="json", **CONFIG)
    c.nodes[1].cli("deploy", str(d))
    for s in c.nodes.values():
        wait_for("chat on every node",
                 lambda s=s: s.host_get("chat.localhost", "/?room=warmup").status == 202)


def owner_of_room(c, node, room):
    """Makes the room (a plain fetch through node) and names its owner."""
    before = set(c.pg.sql("SELECT id FROM thaw_owners WHERE worker = 'chat' AND kind = 'do'")
                 .splitlines())
    assert node.host_get("chat.localhost", f"/?room={room}").status == 202
    rows = [r.split() for r in c.pg.sql(
        "SELECT id || ' ' || node FROM thaw_owners WHERE worker = 'chat' AND kind = 'do'")
        .splitlines() if r.split()[0] not in before]
    assert len(rows) == 1, rows
    return int(rows[0][1][1:])


def connect(node, room, user, path="/", to="", **kw):
    # the URL's host routes to the worker; the socket goes to the node
    return websockets.connect(f"ws://chat.localhost:{node.port}{path}?room={room}&user={user}"
                              f"&to={to}", host="127.0.0.1", port=node.port, **kw)


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_a_socket_through_other_nodes_is_the_owners_objects(cluster, tmp_path):  # noqa: F811
    cluster.up(3)
    deploy(cluster, tmp_path)
    n = cluster.nodes
    k = owner_of_room(cluster, n[1], "r1")
    a, b = [n[i] for i in (1, 2, 3) if i != k]

    async def go():
        async with connect(a, "r1", "ann") as ann, connect(b, "r1", "bob") as bob:
            await ann.send("hello")
            heard = (await ann.recv(), await bob.recv())
            await bob.send("whoami")
            me = await bob.recv()
            big = "y" * 300_000  # frames over one read, relayed unchanged
            await ann.send(big)
            got_big = (await ann.recv(), await bob.recv())
            await bob.send(b"\x00\xffbin")
            got_bin = (await ann.recv(), await bob.recv())
            await ann.close(4001, "ann leaves")
            await bob.send("bye")  # the object closes bob's socket
            await bob.wait_closed()
            return heard, me, got_big, got_bin, ann.close_code, bob.close_code
    heard, me, got_big, got_bin, ann_code, bob_code = run(go())
    # one object, on the owner: both sockets are its own
    assert heard == ("ann: hello", "ann: hello")
    assert me == "bob ['bob'] ['ann', 'bob']"
    assert got_big == ("ann: " + "y" * 300_000,) * 2
    assert got_bin == (b"\x00\xffbin", b"\x00\xffbin")
    assert ann_code == 4001  # the owner's close answer, through the relay
    assert bob_code == 4000  # the object's close code, through the relay
    # webSocketClose ran on the owner, and only there
    log = n[k].wait_log("ws-close ann", "ws-close bob", timeout=10)
    assert "ws-close ann 4001 ann leaves True" in log, log[-3000:]
    assert "ws-close bob 4000 asked True" in log, log[-3000:]
    assert "ws-close" not in a.log() + b.log()


def test_a_socket_to_the_owner_itself_meets_a_relayed_one(cluster, tmp_path):  # noqa: F811
    cluster.up(2)
    deploy(cluster, tmp_path)
    n = cluster.nodes
    k = owner_of_room(cluster, n[1], "r2")
    other = n[2 if k == 1 else 1]

    async def go():
        async with connect(other, "r2", "ann") as ann, connect(n[k], "r2", "cy") as cy:
            await cy.send("hi")
            heard = (await ann.recv(), await cy.recv())
            # ann's connection drops without a close frame: the relay's
            # end closes the object's socket on the owner
            ann.transport.abort()
            await cy.send("whoami")
            return heard, await cy.recv()
    heard, _ = run(go())
    assert heard == ("cy: hi", "cy: hi")
    log = n[k].wait_log("ws-close ann", timeout=10)
    assert "ws-close ann 1006" in log and "False" in log.split("ws-close ann")[1], log[-3000:]
    # the object's exception answers the upgrade through the other node
    c = http.client.HTTPConnection("127.0.0.1", other.port, timeout=30)
    c.request("GET", "/?room=r2&user=boom", headers=UPGRADE)
    r = c.getresponse()
    text = r.read().decode()
    assert r.status == 503 and "no boom in this room" in text, text


def test_the_owner_killed_cuts_the_socket_and_new_ones_get_503(cluster, tmp_path):  # noqa: F811
    cluster.up(2)
    deploy(cluster, tmp_path)
    n = cluster.nodes
    k = owner_of_room(cluster, n[1], "r3")
    other = n[2 if k == 1 else 1]

    async def go():
        async with connect(other, "r3", "ann") as ann:
            await ann.send("hello")
            assert await ann.recv() == "ann: hello"
            n[k].stop(signal.SIGKILL)
            try:
                while True:
                    await ann.recv()
            except websockets.ConnectionClosed:
                pass
            return ann.close_code
    # no close frame could come from a dead node: the connection just ends
    assert run(go()) == 1006
    c = http.client.HTTPConnection("127.0.0.1", other.port, timeout=30)
    c.request("GET", "/?room=r3&user=bob", headers=UPGRADE)
    r = c.getresponse()
    text = r.read().decode()
    assert r.status == 503, text
    assert "503 Service Unavailable" in text and f"node n{k}" in text, text



def test_the_relaying_node_killed_closes_the_objects_socket(cluster, tmp_path):  # noqa: F811
    cluster.up(2)
    deploy(cluster, tmp_path)
    n = cluster.nodes
    k = owner_of_room(cluster, n[1], "r5")
    other = n[2 if k == 1 else 1]

    async def go():
        ws = await connect(other, "r5", "ann")
        await ws.send("hello")
        assert await ws.recv() == "ann: hello"
        other.stop(signal.SIGKILL)
        ws.transport.abort()
    run(go())
    # the owner's internal connection ended with the node: the object's
    # socket closed, not clean
    log = n[k].wait_log("ws-close ann", timeout=10)
    assert "ws-close ann 1006" in log and "False" in log.split("ws-close ann")[1], log[-3000:]

def rss_kib(node):
    with open(f"/proc/{node.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_slow_reader_does_not_make_the_relay_buffer_the_flood(cluster, tmp_path):  # noqa: F811
    cluster.up(2)
    deploy(cluster, tmp_path)
    n = cluster.nodes
    k = owner_of_room(cluster, n[1], "r4")
    other = n[2 if k == 1 else 1]
    count = 512  # 32 MiB from the object

    async def go():
        # max_queue=1: the client stops reading its socket at once
        async with connect(other, "r4", "ann", max_queue=1, max_size=None) as ann:
            base = rss_kib(other)
            await ann.send(f"flood:{count}")
            await asyncio.to_thread(n[k].wait_log, "flood-done", timeout=60)
            peak = base
            for _ in range(10):  # a few looks while nothing is read
                peak = max(peak, rss_kib(other))
                await asyncio.sleep(0.1)
            got = 0
            while await ann.recv() != "flooded":
                got += 1
            return base, peak, got
    base, peak, got = run(go(), timeout=120)
    assert got == count
    # the relay holds about one hold's worth (4 MiB) each way, not 32 MiB
    assert peak - base < 12 * 1024, (base, peak)


def test_an_object_passing_on_a_third_nodes_socket_is_relayed_twice(cluster,  # noqa: F811
                                                                     tmp_path):
    """The Lobby pattern: the client's node (A) forwards to the lobby's
    owner (B), whose object returns the 101 of a room owned by C: B
    relays on to C, and the socket is C's room's."""
    cluster.up(3)
    deploy(cluster, tmp_path)
    n = cluster.nodes

    def owners():
        return dict(r.split() for r in cluster.pg.sql(
            "SELECT id || ' ' || node FROM thaw_owners WHERE worker = 'chat' AND kind = 'do'")
            .splitlines())
    for i in range(30):
        before = owners()
        r = n[1].host_get("chat.localhost", f"/lobby?room=l{i}&to=t{i}")
        assert r.status == 202, r.text
        new = {k: v for k, v in owners().items() if k not in before}
        lobby = [int(v[1:]) for k, v in new.items() if k.startswith("Lobby/")]
        room = [int(v[1:]) for k, v in new.items() if k.startswith("ChatRoom/")]
        assert len(lobby) == 1 and len(room) == 1, new
        if lobby[0] != room[0]:
            break
    else:
        raise AssertionError("no lobby and room on two different nodes in 30 tries")
    b, c = lobby[0], room[0]
    a = ({1, 2, 3} - {b, c}).pop()

    async def go():
        async with connect(n[a], f"l{i}", "ann", path="/lobby", to=f"t{i}") as ann, \
                connect(n[c], f"t{i}", "bob") as bob:
            await ann.send("hello")
            heard = (await ann.recv(), await bob.recv())
            await ann.close(4002, "ann leaves")
            return heard, ann.close_code
    heard, code = run(go())
    assert heard == ("ann: hello", "ann: hello")
    assert code == 4002
    log = n[c].wait_log("ws-close ann", timeout=10)
    assert "ws-close ann 4002 ann leaves True" in log, log[-3000:]
