"""A binding to another worker's Durable Object class (`script_name`),
black-box through thaw serve: with the operator's grant ([durable_objects]
of --config) worker lobby reaches worker chat's Room objects, the same
objects and storage chat sees; a tenant naming someone else's worker
without a grant is refused at deploy; a target that is not there is a
clear error at call time. thaw dev, which runs one worker, refuses it."""
import asyncio
import json
import shutil
import sys

import pytest
import websockets

from servelib import ThawServe
from thawlib import REPO, write_worker

sys.path.insert(0, str(REPO / "python"))
from thaw_tools.remote import bundle  # noqa: E402

CHAT = """
from urllib.parse import urlparse, parse_qs
from workers import DurableObject, Response, WebSocketPair, WorkerEntrypoint

class Room(DurableObject):
    async def increment(self):
        n = (await self.ctx.storage.get("n") or 0) + 1
        await self.ctx.storage.put("n", n)
        return n

    async def fetch(self, request):
        if request.headers.get("Upgrade") == "websocket":
            client, server = WebSocketPair.new().object_values()
            self.ctx.acceptWebSocket(server)
            return Response(None, status=101, web_socket=client)
        return Response(f"room {self.ctx.id.name} at {await self.ctx.storage.get('n')}")

    async def webSocketMessage(self, ws, message):
        for peer in self.ctx.getWebSockets():
            peer.send(f"{self.ctx.id.name}: {message}")

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        name = parse_qs(urlparse(request.url).query)["name"][0]
        if urlparse(request.url).path == "/ws":
            return await self.env.ROOMS.getByName(name).fetch(request)
        if urlparse(request.url).path == "/id":
            return Response(str(self.env.ROOMS.idFromName(name)))
        return Response(str(await self.env.ROOMS.getByName(name).increment()))
"""

CHAT_CFG = dict(durable_objects={"bindings": [{"name": "ROOMS", "class_name": "Room"}]},
                migrations=[{"tag": "v1", "new_sqlite_classes": ["Room"]}])

# a worker with no class of its own, binding one of another worker
LOBBY = """
from urllib.parse import urlparse, parse_qs
from workers import Response, WorkerEntrypoint

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlparse(request.url)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        ns = getattr(self.env, q.get("ns", "ROOMS"))
        if url.path == "/ws":
            return await ns.getByName(q["name"]).fetch(request)
        if url.path == "/uncaught":
            return Response(str(await ns.getByName(q["name"]).increment()))
        try:
            if url.path == "/id":
                return Response(str(ns.idFromName(q["name"])))
            if url.path == "/fetch":
                return await ns.getByName(q["name"]).fetch("http://room/")
            return Response(str(await ns.getByName(q["name"]).increment()))
        except Exception as e:
            return Response(f"{type(e).__name__}: {e}", status=503)
"""


def _binding(script, cls="Room", name="ROOMS"):
    return {"name": name, "class_name": cls, "script_name": script}


OPERATOR = {"durable_objects": {"lobby": ["chat"], "snoop": ["chat"],
                                "wrongly": ["elsewhere"], "early": ["later"]}}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    root = tmp_path_factory.mktemp("do-script")
    (root / "serve.json").write_text(json.dumps(OPERATOR))
    s = ThawServe(root / "state", root, ["--config", str(root / "serve.json")])
    s.start()
    yield s
    s.stop()


@pytest.fixture
def deploy(srv, tmp_path):
    def put(name, source, **cfg):
        d = tmp_path / name
        if d.exists():
            shutil.rmtree(d)
        write_worker(d, source, name=name, fmt="json", **cfg)
        data, _ = bundle(str(d))
        return srv.api("PUT", f"/v1/workers/{name}", body=data)
    return put


def _ok(res):
    status, doc = res
    assert status == 200, doc
    return doc


def _refused(res, status, *needles):
    got, doc = res
    assert got == status, doc
    for n in needles:
        assert n in doc["error"], f"{n!r} not in: {doc['error']}"
    return doc


def _get(srv, worker, path, status=200):
    r = srv.host_get(f"{worker}.localhost", path)
    assert r.status == status, (r.status, r.text, srv.log()[-3000:])
    return r.text


def test_a_granted_worker_reaches_the_same_objects_as_their_own_worker(srv, deploy):
    _ok(deploy("chat", CHAT, **CHAT_CFG))
    _ok(deploy("lobby", LOBBY, durable_objects={"bindings": [
        _binding("chat"), _binding("chat", cls="Ghost", name="GHOSTS")]}))
    assert _get(srv, "lobby", "/id?name=general") == _get(srv, "chat", "/id?name=general")
    # one object, one storage, whichever worker calls it
    assert [_get(srv, "lobby", "/?name=general"), _get(srv, "chat", "/?name=general"),
            _get(srv, "lobby", "/?name=general")] == ["1", "2", "3"]
    assert _get(srv, "lobby", "/fetch?name=general") == "room general at 3"
    assert _get(srv, "lobby", "/?name=other") == "1"


def test_a_class_the_target_does_not_have_is_an_error_at_call_time(srv, deploy):
    _ok(deploy("chat", CHAT, **CHAT_CFG))
    _ok(deploy("lobby", LOBBY, durable_objects={"bindings": [
        _binding("chat"), _binding("chat", cls="Ghost", name="GHOSTS")]}))
    text = _get(srv, "lobby", "/?name=x&ns=GHOSTS", status=503)
    assert "GHOSTS (class Ghost of worker chat): worker chat has no Durable Object class " \
           "Ghost (its classes: Room)" in text, text


def test_binding_another_tenants_class_without_a_grant_is_403(srv, deploy):
    _ok(deploy("chat", CHAT, **CHAT_CFG))
    doc = _refused(deploy("stranger", LOBBY, durable_objects={"bindings": [_binding("chat")]}),
                   403, "wrangler.json: durable_objects.bindings[0] (\"ROOMS\"): "
                   "`script_name` = \"chat\" binds class Room of worker chat",
                   "not granted to worker stranger", "stranger = [\"chat\"]",
                   "[durable_objects] of " + str(srv.state.parent / "serve.json"))
    assert "traceback" not in doc
    assert srv.host_get("stranger.localhost").status == 404  # nothing of it runs


def test_a_grant_for_another_worker_does_not_cover_this_one(srv, deploy):
    _ok(deploy("chat", CHAT, **CHAT_CFG))
    _refused(deploy("wrongly", LOBBY, durable_objects={"bindings": [_binding("chat")]}), 403,
             "not granted to worker wrongly", "wrongly = [\"chat\"]")


@pytest.mark.parametrize("script", ["../x", "", "Chat", "chat/../lobby", "a" * 64, "-chat"])
def test_a_script_name_that_is_no_worker_name_is_400(srv, deploy, script):
    _refused(deploy("lobby-bad", LOBBY, durable_objects={"bindings": [_binding(script)]}), 400,
             "durable_objects.bindings[0] (\"ROOMS\"): `script_name`",
             "is not a worker name")


def test_a_target_not_deployed_or_deleted_is_an_error_at_call_time(srv, deploy):
    # granted, but worker later does not exist yet: the deploy is fine
    _ok(deploy("early", LOBBY, durable_objects={"bindings": [_binding("later")]}))
    text = _get(srv, "early", "/?name=a", status=503)
    assert "ROOMS (class Room of worker later): worker later is not deployed" in text, text
    # uncaught, it is the worker's error: a 500
    _get(srv, "early", "/uncaught?name=a", status=500)
    _ok(deploy("later", CHAT, **CHAT_CFG))
    assert _get(srv, "early", "/?name=a") == "1"
    status, _ = srv.api("DELETE", "/v1/workers/later")
    assert status == 200
    text = _get(srv, "early", "/?name=a", status=503)
    assert "worker later is not deployed" in text, text


def test_without_an_operator_config_nothing_is_granted(tmp_path):
    s = ThawServe(tmp_path / "state", tmp_path)
    s.start()
    try:
        d = tmp_path / "lobby"
        write_worker(d, LOBBY, name="lobby", fmt="json",
                     durable_objects={"bindings": [_binding("chat")]})
        data, _ = bundle(str(d))
        _refused(s.api("PUT", "/v1/workers/lobby", body=data), 403,
                 "lobby = [\"chat\"] to [durable_objects] of a --config file "
                 "(thaw serve --config FILE)")
    finally:
        s.stop()


def test_a_malformed_grant_table_stops_serve_naming_it(tmp_path):
    cfg = tmp_path / "serve.json"
    cfg.write_text(json.dumps({"durable_objects": {"lobby": "chat"}}))
    s = ThawServe(tmp_path / "state", tmp_path, ["--config", str(cfg)])
    s.spawn()
    assert not s.wait_ready_or_exit()
    assert s.proc.returncode != 0
    assert f"{cfg}: [durable_objects]: `lobby` must be a list" in s.output(), s.output()


def test_thaw_dev_refuses_another_worker_s_class(workdir, thaw_factory):
    write_worker(workdir, LOBBY, fmt="toml", name="lobby",
                 durable_objects={"bindings": [_binding("chat")]})
    srv = thaw_factory(workdir, start=False)
    srv.spawn()
    if srv.wait_ready_or_exit():
        r = srv.get("/?name=a")
        assert r.status == 500, r
        text = r.text + srv.log()
    else:
        assert srv.proc.returncode != 0
        text = srv.output()
    assert "wrangler.toml: durable_objects.bindings[0] (\"ROOMS\"): `script_name` binds a " \
           "class of another worker (\"chat\"), and thaw dev runs one worker" in text, text


# a worker with a class of its own, so it has the objects' storage binding
# too: the key of chat's class (which the binding hands out) opens files
# under its own state only, never chat's objects' storage
SNOOP = LOBBY.replace("class Default(WorkerEntrypoint):", '''
from workers import DurableObject
from workers import _bind

class Mine(DurableObject):
    pass

class Default(WorkerEntrypoint):
    async def snoop(self, name):
        ns = self.env.ROOMS
        args = {"ns": ns._key.hex(), "id": str(ns.idFromName(name)),
                "statements": [{"sql": "SELECT name FROM sqlite_master", "params": []}]}
        res, _ = await _bind.call(":do", "batch", args)
        return Response(repr(res[0]["rows"]))
''').replace('''        if url.path == "/uncaught":''', '''        if url.path == "/snoop":
            return await self.snoop(q["name"])
        if url.path == "/uncaught":''')


def test_the_class_key_opens_none_of_the_other_worker_s_storage(srv, deploy):
    _ok(deploy("chat", CHAT, **CHAT_CFG))
    assert _get(srv, "chat", "/?name=secret").isdigit()
    _ok(deploy("snoop", SNOOP, durable_objects={"bindings": [
        _binding("chat"), {"name": "MINE", "class_name": "Mine"}]},
        migrations=[{"tag": "v1", "new_sqlite_classes": ["Mine"]}]))
    # chat's object has its _cf_KV table; what snoop opened with the same
    # key and id is a file of its own, empty
    assert _get(srv, "snoop", "/snoop?name=secret") == "[]"
    assert list((srv.state).rglob("*.sqlite")), "no objects' files at all?"


def test_a_grant_taken_away_refuses_the_worker_at_the_next_start(tmp_path):
    cfg = tmp_path / "serve.json"
    cfg.write_text(json.dumps({"durable_objects": {"lobby": ["chat"]}}))
    s = ThawServe(tmp_path / "state", tmp_path, ["--config", str(cfg)])
    s.start()
    try:
        for name, source, conf in (("chat", CHAT, CHAT_CFG), ("lobby", LOBBY, dict(
                durable_objects={"bindings": [_binding("chat")]}))):
            d = tmp_path / name
            write_worker(d, source, name=name, fmt="json", **conf)
            _ok(s.api("PUT", f"/v1/workers/{name}", body=bundle(str(d))[0]))
        assert _get(s, "lobby", "/?name=a") == "1"
    finally:
        s.stop()
    cfg.write_text(json.dumps({"durable_objects": {}}))
    s.start()
    try:
        assert s.host_get("lobby.localhost", "/?name=a").status != 200
        assert "worker lobby version 1: wrangler.json: durable_objects.bindings[0] " \
               "(\"ROOMS\"): `script_name` = \"chat\"" in s.log(), s.log()[-3000:]
        assert _get(s, "chat", "/?name=a") == "2"  # chat itself is untouched
    finally:
        s.stop()


def test_a_websocket_through_the_binding_is_the_other_worker_s_object_s(srv, deploy):
    _ok(deploy("chat", CHAT, **CHAT_CFG))
    _ok(deploy("lobby", LOBBY, durable_objects={"bindings": [_binding("chat")]}))

    async def go():
        # one client through lobby, one through chat itself: the same room
        async with websockets.connect("ws://lobby.localhost/ws?name=hall", host="127.0.0.1",
                                      port=srv.port) as a, \
                websockets.connect("ws://chat.localhost/ws?name=hall", host="127.0.0.1",
                                   port=srv.port) as b:
            await a.send("from lobby")
            got = [await asyncio.wait_for(a.recv(), 10), await asyncio.wait_for(b.recv(), 10)]
            await b.send("from chat")
            got += [await asyncio.wait_for(a.recv(), 10), await asyncio.wait_for(b.recv(), 10)]
            return got
    assert asyncio.run(go()) == ["hall: from lobby"] * 2 + ["hall: from chat"] * 2
