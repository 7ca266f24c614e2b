"""KV namespaces (`kv_namespaces`): every operation through real HTTP
requests to a worker that uses env.KV, against both backends: SQLite under
thaw's state directory, and a real redis-server started here on a free
loopback port. Also the limits, expiration, list pagination, concurrent
puts, durability across a SIGKILL of the supervisor, and config errors."""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from thawlib import Thaw, free_port, write_worker

# A worker that exposes KVNamespace over HTTP:
#   POST /op {"op", "args", "kwargs"} -> {"ok": result} or {"error", "message"}
#   (bytes travel as {"$bytes": base64}); PUT/GET /raw/KEY for large values;
#   POST /fill?prefix=P&n=N puts N keys at once.
WORKER = r'''
import asyncio
import base64
import json
from urllib.parse import parse_qs, urlparse

from workers import KVNamespace, Response, WorkerEntrypoint
from workers import _bind


def enc(v):
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(v).decode()}
    if hasattr(v, "to_py"):
        return {"$obj": enc(v.to_py()), "attrs": sorted(v)}
    if isinstance(v, dict):
        return {k: enc(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [enc(x) for x in v]
    return v


def dec(v):
    if isinstance(v, dict):
        if "$bytes" in v:
            return base64.b64decode(v["$bytes"])
        return {k: dec(x) for k, x in v.items()}
    if isinstance(v, list):
        return [dec(x) for x in v]
    return v


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlparse(request.url)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        kv = self.env[q.get("ns", "KV")]
        if url.path == "/op":
            spec = await request.json()
            try:
                res = await getattr(kv, spec["op"])(*dec(spec.get("args", [])),
                                                    **dec(spec.get("kwargs", {})))
                if hasattr(res, "__aiter__"):
                    chunks = [c async for c in res]
                    res = {"$stream": [len(c) for c in chunks],
                           "data": {"$bytes": base64.b64encode(b"".join(chunks)).decode()}}
                return Response.json({"ok": enc(res), "type": type(res).__name__})
            except Exception as e:
                return Response.json({"error": type(e).__name__, "message": str(e)})
        if url.path.startswith("/raw/"):
            key = url.path[5:]
            if request.method == "PUT":
                await kv.put(key, await request.bytes())
                return Response("stored")
            value = await kv.get(key, "bytes")
            return Response(value, status=200 if value is not None else 404)
        if url.path == "/fill":
            n, prefix = int(q["n"]), q["prefix"]
            for start in range(0, n, 200):
                await asyncio.gather(*(kv.put(f"{prefix}{i:05d}", str(i))
                                       for i in range(start, min(n, start + 200))))
            return Response("filled")
        if url.path == "/rawcall":
            # the supervisor's own checks, without the SDK's
            spec = await request.json()
            body = b"x" * spec.pop("body_len", 0)
            try:
                await _bind.call(q.get("ns", "KV"), spec["op"], spec["args"], body or None)
                return Response.json({"ok": None})
            except Exception as e:
                return Response.json({"error": type(e).__name__, "message": str(e)})
        return Response("kv test worker")
'''


# ---------------------------------------------------------------- redis

class RedisServer:
    def __init__(self, tmp):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.command("PING"):
                    break
            except Exception:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/3"

    def client(self, db=3):
        import redis  # Debian's python3-redis
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=5)

    def command(self, *words):
        return self.client().execute_command(*words)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is missing: run scripts/install-deps")
    r = RedisServer(tmp_path_factory.mktemp("redis"))
    yield r
    r.stop()


@pytest.fixture(params=["sqlite", "redis"])
def backend(request):
    """The kv_namespaces entry's backend: None (SQLite) or a Redis URL."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("redis_server").url


def ns_entry(backend, binding="KV", ns_id=None):
    e = {"binding": binding, "id": ns_id or "t-" + uuid.uuid4().hex[:12]}
    if backend:
        e["backend"] = backend
    return e


@pytest.fixture
def kv(tmp_path, thaw_factory, backend):
    """A running KV test worker on the backend under test."""
    d = tmp_path / "worker"
    write_worker(d, WORKER, fmt="json", kv_namespaces=[ns_entry(backend)])
    return KV(thaw_factory(d))


class KV:
    """Calls env.KV through the test worker."""

    def __init__(self, thaw):
        self.t = thaw

    def op(self, op, *args, ns="KV", **kwargs):
        body = json.dumps({"op": op, "args": enc(list(args)), "kwargs": enc(kwargs)})
        r = self.t.request("POST", f"/op?ns={ns}", body=body.encode(), timeout=60)
        assert r.status == 200, (r, self.t.log()[-3000:])
        return r.json()

    def ok(self, op, *args, **kwargs):
        res = self.op(op, *args, **kwargs)
        assert "ok" in res, res
        return dec(res["ok"])

    def err(self, op, *args, **kwargs):
        res = self.op(op, *args, **kwargs)
        assert "error" in res, res
        return res["error"], res["message"]


def enc(v):
    if isinstance(v, bytes):
        return {"$bytes": base64.b64encode(v).decode()}
    if isinstance(v, dict):
        return {k: enc(x) for k, x in v.items()}
    if isinstance(v, list):
        return [enc(x) for x in v]
    return v


def dec(v):
    if isinstance(v, dict):
        if "$bytes" in v:
            return base64.b64decode(v["$bytes"])
        if "$obj" in v:
            return dec(v["$obj"])
        return {k: dec(x) for k, x in v.items()}
    if isinstance(v, list):
        return [dec(x) for x in v]
    return v


# ---------------------------------------------------------------- get / put / delete

def test_put_get_every_type(kv):
    assert kv.ok("put", "greeting", "héllo wörld") is None
    assert kv.ok("get", "greeting") == "héllo wörld"
    assert kv.ok("get", "greeting", "text") == "héllo wörld"
    assert kv.ok("get", "greeting", {"type": "text"}) == "héllo wörld"
    assert kv.ok("get", "greeting", "arrayBuffer") == "héllo wörld".encode()
    assert kv.ok("get", "greeting", "bytes") == "héllo wörld".encode()
    assert kv.ok("get", "greeting", type="bytes") == "héllo wörld".encode()

    kv.ok("put", "doc", json.dumps({"a": [1, 2], "b": None}))
    assert kv.ok("get", "doc", "json") == {"a": [1, 2], "b": None}
    assert kv.ok("get", "doc", {"type": "json", "cacheTtl": 60}) == {"a": [1, 2], "b": None}

    every_byte = bytes(range(256)) * 3
    kv.ok("put", "bin", every_byte)
    assert kv.ok("get", "bin", "arrayBuffer") == every_byte
    assert kv.ok("get", "bin") == every_byte.decode("utf-8", "replace")

    big = os.urandom(200_000)
    kv.ok("put", "streamed", big)
    res = kv.op("get", "streamed", "stream")
    got = dec(res["ok"])
    assert res["type"] == "dict" and got["data"] == big and len(got["$stream"]) > 1

    kv.ok("put", "empty", "")
    assert kv.ok("get", "empty") == ""
    assert kv.ok("get", "empty", "bytes") == b""

    for t in ("text", "json", "arrayBuffer", "stream"):
        assert kv.ok("get", "no-such-key", t) is None

    kv.ok("put", "greeting", b"replaced")
    assert kv.ok("get", "greeting") == "replaced"


def test_wrong_types_are_clear_errors(kv):
    cls, msg = kv.err("get", "k", "xml")
    assert cls == "TypeError" and "unknown type 'xml'" in msg and '"json"' in msg
    cls, msg = kv.err("put", "k", {"a": 1})
    assert cls == "TypeError" and "json.dumps(value)" in msg, msg
    cls, msg = kv.err("put", "k", 42)
    assert cls == "TypeError" and "not int" in msg
    cls, msg = kv.err("get", 7)
    assert cls == "TypeError" and "must be a str" in msg
    cls, msg = kv.err("put", "k", "v", {"expiration_time": 5})
    assert cls == "TypeError" and "unknown option 'expiration_time'" in msg
    cls, msg = kv.err("get", "k\x00nul")
    assert cls == "ValueError" and "NUL" in msg
    for bad in ("", ".", ".."):
        cls, msg = kv.err("put", bad, "v")
        assert cls == "ValueError" and "cannot be empty" in msg, msg
    assert kv.ok("get", "k") is None  # the instance survived all of it


def test_bulk_get(kv):
    kv.ok("put", "a", "1", {"metadata": {"n": 1}})
    kv.ok("put", "b", json.dumps([2]))
    assert kv.ok("get", ["a", "b", "nope"]) == {"a": "1", "b": "[2]", "nope": None}
    assert kv.ok("get", ["a", "b"], "json") == {"a": 1, "b": [2]}
    got = kv.ok("getWithMetadata", ["a", "nope"])
    assert got == {"a": {"value": "1", "metadata": {"n": 1}, "cacheStatus": None},
                   "nope": {"value": None, "metadata": None, "cacheStatus": None}}
    cls, msg = kv.err("get", ["a", "b"], "arrayBuffer")
    assert cls == "TypeError" and '"text" or "json" only' in msg
    cls, msg = kv.err("get", [f"k{i}" for i in range(101)])
    assert cls == "ValueError" and "101 keys at once" in msg and "at most 100" in msg
    assert kv.ok("get", [f"k{i}" for i in range(100)]) == {f"k{i}": None for i in range(100)}


def test_metadata(kv):
    meta = {"owner": "ada", "tags": ["x", "ü"], "n": 1.5, "ok": True}
    kv.ok("put", "m", b"\x01\x02", {"metadata": meta})
    res = kv.op("getWithMetadata", "m", "bytes")
    assert res["type"] == "JsObject"
    assert res["ok"]["attrs"] == ["cacheStatus", "metadata", "value"]
    assert dec(res["ok"]) == {"value": b"\x01\x02", "metadata": meta, "cacheStatus": None}
    assert kv.ok("get_with_metadata", "m", type="bytes")["metadata"] == meta
    kv.ok("put", "plain", "v")
    assert kv.ok("getWithMetadata", "plain")["metadata"] is None
    assert kv.ok("getWithMetadata", "missing") == {"value": None, "metadata": None,
                                                   "cacheStatus": None}
    # a put without metadata drops the old metadata, as on Cloudflare
    kv.ok("put", "m", "again")
    assert kv.ok("getWithMetadata", "m")["metadata"] is None
    cls, msg = kv.err("put", "m", "v", {"metadata": {"f": float("nan")}})
    assert cls == "TypeError" and "JSON-serialisable" in msg


def test_delete(kv):
    kv.ok("put", "gone", "soon", {"metadata": {"a": 1}})
    assert kv.ok("delete", "gone") is None
    assert kv.ok("get", "gone") is None
    assert kv.ok("getWithMetadata", "gone")["metadata"] is None
    assert kv.ok("delete", "never-existed") is None
    assert kv.ok("list")["keys"] == []


# ---------------------------------------------------------------- expiration

def test_expiration(kv):
    now = int(time.time())
    kv.ok("put", "past", "x", {"expiration": now - 10})
    kv.ok("put", "soon", "x", expiration=now + 2)
    kv.ok("put", "ttl", "x", {"expirationTtl": 3600, "metadata": {"m": 1}})
    kv.ok("put", "both", "x", {"expirationTtl": 600, "expiration": now + 5})
    kv.ok("put", "forever", "x")
    assert kv.ok("get", "past") is None
    assert kv.ok("get", "soon") == "x"
    keys = {k["name"]: k for k in kv.ok("list")["keys"]}
    assert sorted(keys) == ["both", "forever", "soon", "ttl"]
    assert keys["soon"]["expiration"] == now + 2
    assert now + 3600 <= keys["ttl"]["expiration"] <= now + 3600 + 60
    assert keys["ttl"]["metadata"] == {"m": 1}
    assert now + 600 <= keys["both"]["expiration"] <= now + 660  # the TTL wins
    assert "expiration" not in keys["forever"]
    deadline = time.monotonic() + 15
    while kv.ok("get", "soon") is not None:
        assert time.monotonic() < deadline, "an expired key is still returned"
        time.sleep(0.2)
    assert "soon" not in [k["name"] for k in kv.ok("list")["keys"]]
    assert kv.ok("getWithMetadata", "soon")["value"] is None
    # a put after expiry makes it live again, without the old expiration
    kv.ok("put", "soon", "back")
    assert kv.ok("get", "soon") == "back"

    cls, msg = kv.err("put", "k", "v", {"expirationTtl": 30})
    assert cls == "ValueError" and "expirationTtl of 30 seconds" in msg and "at least 60" in msg
    cls, msg = kv.err("put", "k", "v", {"expiration": "tomorrow"})
    assert cls == "TypeError" and "number of seconds" in msg
    cls, msg = kv.err("put", "k", "v", {"expiration": -5})
    assert cls == "ValueError" and "not a positive number" in msg


# ---------------------------------------------------------------- list

def test_list_order_prefix_limit_cursor(kv):
    names = ["b", "B", "a", "é", "😀", "a/1", "a/2", "a/10", "z"]
    for n in names:
        kv.ok("put", n, n.upper(), {"metadata": {"name": n}} if n.startswith("a") else {})
    res = kv.ok("list")
    assert res["list_complete"] is True and "cursor" not in res
    got = [k["name"] for k in res["keys"]]
    assert got == sorted(names, key=lambda s: s.encode())  # UTF-8 byte order
    assert res["keys"][got.index("a/1")] == {"name": "a/1", "metadata": {"name": "a/1"}}
    assert [k["name"] for k in kv.ok("list", prefix="a/")["keys"]] == ["a/1", "a/10", "a/2"]
    assert kv.ok("list", {"prefix": "nothing"})["keys"] == []

    page = kv.ok("list", {"prefix": "a", "limit": 2})
    assert [k["name"] for k in page["keys"]] == ["a", "a/1"]
    assert page["list_complete"] is False and isinstance(page["cursor"], str)
    page = kv.ok("list", {"prefix": "a", "limit": 2, "cursor": page["cursor"]})
    assert [k["name"] for k in page["keys"]] == ["a/10", "a/2"]
    # the page ended exactly at the last match: complete, no cursor
    assert page["list_complete"] is True and "cursor" not in page

    res = kv.op("list")
    assert res["type"] == "JsObject" and res["ok"]["attrs"] == ["cacheStatus", "keys",
                                                                 "list_complete"]
    cls, msg = kv.err("list", {"limit": 1001})
    assert cls == "ValueError" and "from 1 to 1000" in msg
    cls, msg = kv.err("list", {"limit": 0})
    assert cls == "ValueError"
    cls, msg = kv.err("list", {"cursor": "not-a-cursor"})
    assert cls == "ValueError" and "cursor" in msg
    cls, msg = kv.err("list", {"prefx": "a"})
    assert cls == "TypeError" and "unknown option 'prefx'" in msg


def test_list_pages_through_more_than_1000_keys(kv):
    r = kv.t.request("POST", "/fill?prefix=p/&n=2345", timeout=120)
    assert r.status == 200, r
    kv.t.request("POST", "/fill?prefix=q/&n=30", timeout=60)
    kv.t.request("POST", "/fill?prefix=o/&n=30", timeout=60)
    first = kv.ok("list", prefix="p/")
    assert len(first["keys"]) == 1000 and first["list_complete"] is False
    seen, cursor, pages = [k["name"] for k in first["keys"]], first["cursor"], 1
    while cursor:
        page = kv.ok("list", {"prefix": "p/", "cursor": cursor})
        seen += [k["name"] for k in page["keys"]]
        pages += 1
        cursor = None if page["list_complete"] else page["cursor"]
    assert pages == 3
    assert seen == [f"p/{i:05d}" for i in range(2345)]
    # a smaller limit, without a prefix: every key once, in order
    allnames, cursor = [], None
    while True:
        page = kv.ok("list", {"limit": 700, **({"cursor": cursor} if cursor else {})})
        allnames += [k["name"] for k in page["keys"]]
        if page["list_complete"]:
            break
        cursor = page["cursor"]
    assert allnames == sorted(allnames) and len(allnames) == 2345 + 60
    assert kv.ok("get", "p/02344") == "2344"


# ---------------------------------------------------------------- limits

def test_limits(kv):
    k512 = "k" * 512
    assert kv.ok("put", k512, "v") is None and kv.ok("get", k512) == "v"
    cls, msg = kv.err("put", "k" * 513, "v")
    assert cls == "ValueError" and "513 bytes" in msg and "at most 512" in msg, msg
    cls, msg = kv.err("get", "é" * 257)  # 514 bytes of UTF-8
    assert cls == "ValueError" and "514 bytes" in msg

    m = {"p": "x" * (1024 - len('{"p":""}'))}
    assert len(json.dumps(m, separators=(",", ":"))) == 1024
    assert kv.ok("put", "meta", "v", {"metadata": m}) is None
    m["p"] += "x"
    cls, msg = kv.err("put", "meta", "v", {"metadata": m})
    assert cls == "ValueError" and "1025 bytes" in msg and "at most 1024" in msg, msg

    cap = 25 * 1024 * 1024
    r = kv.t.request("PUT", "/raw/big", body=b"\xab" * cap, timeout=120)
    assert r.status == 200, r
    r = kv.t.get("/raw/big", timeout=120)
    assert r.status == 200 and r.body == b"\xab" * cap
    cls, msg = kv.err("put", "big", b"x" * (cap + 1))
    assert cls == "ValueError" and f"{cap + 1} bytes" in msg and "at most 25 MiB" in msg
    # the supervisor enforces it too, whatever the SDK does
    r = kv.t.request("POST", "/rawcall", timeout=120, body=json.dumps(
        {"op": "put", "args": {"key": "big"}, "body_len": cap + 1}).encode()).json()
    assert r["error"] == "ValueError" and "at most 25 MiB" in r["message"], r
    r = kv.t.request("POST", "/rawcall", body=json.dumps(
        {"op": "put", "args": {"key": "x" * 600}}).encode()).json()
    assert r["error"] == "ValueError" and "600 bytes" in r["message"], r
    r = kv.t.request("POST", "/rawcall", body=json.dumps(
        {"op": "put", "args": {"key": "x", "metadata": "{not json"}}).encode()).json()
    assert r["error"] == "TypeError" and "not valid JSON" in r["message"], r
    r = kv.t.request("POST", "/rawcall", body=json.dumps(
        {"op": "frobnicate", "args": {}}).encode()).json()
    assert r["error"] == "TypeError" and "no operation" in r["message"], r
    r = kv.t.get("/raw/big", timeout=120)  # untouched by the failures
    assert r.status == 200 and r.body == b"\xab" * cap


# ---------------------------------------------------------------- concurrency

def test_concurrent_puts_from_concurrent_requests(kv):
    def one(i):
        return kv.op("put", f"c{i:03d}", f"value-{i}", {"metadata": {"i": i}})
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(one, range(200)))
    assert all(r == {"ok": None, "type": "NoneType"} for r in results), results[:3]
    keys = kv.ok("list", prefix="c")["keys"]
    assert [k["name"] for k in keys] == [f"c{i:03d}" for i in range(200)]
    assert all(k["metadata"] == {"i": int(k["name"][1:])} for k in keys)
    got = kv.ok("get", [f"c{i:03d}" for i in range(0, 200, 2)])
    assert got == {f"c{i:03d}": f"value-{i}" for i in range(0, 200, 2)}


# ---------------------------------------------------------------- several bindings

def test_two_namespaces_are_separate_and_one_id_is_shared(tmp_path, thaw_factory, backend):
    d = tmp_path / "worker"
    shared = "shared-" + uuid.uuid4().hex[:8]
    write_worker(d, WORKER, fmt="json", kv_namespaces=[
        ns_entry(backend, "KV"), ns_entry(backend, "OTHER"),
        ns_entry(backend, "SAME1", shared), ns_entry(backend, "SAME2", shared)])
    kv = KV(thaw_factory(d))
    kv.ok("put", "k", "in KV")
    assert kv.ok("get", "k", ns="OTHER") is None
    kv.ok("put", "k", "in SAME1", ns="SAME1")
    assert kv.ok("get", "k", ns="SAME2") == "in SAME1"
    assert kv.ok("get", "k") == "in KV"


def test_data_survives_a_reload_and_a_restart(tmp_path, thaw_factory, backend):
    d = tmp_path / "worker"
    entry = ns_entry(backend)
    write_worker(d, WORKER, fmt="json", kv_namespaces=[entry])
    t = thaw_factory(d)
    kv = KV(t)
    kv.ok("put", "k", "v1")
    # a new version of the worker (an edit) sees the same data
    write_worker(d, WORKER.replace("kv test worker", "kv test worker 2"), fmt="json",
                 kv_namespaces=[entry])
    t.poll_until(lambda r: r.text == "kv test worker 2")
    assert kv.ok("get", "k") == "v1"
    kv.ok("put", "k", "v2")
    t.stop()
    kv = KV(thaw_factory(d))
    assert kv.ok("get", "k") == "v2"
    if backend is None:
        assert (d / ".thaw" / "state" / "kv" / f"{entry['id']}.sqlite").is_file()


def test_state_option_moves_the_data(tmp_path, thaw_factory):
    d = tmp_path / "worker"
    write_worker(d, WORKER, fmt="json", kv_namespaces=[{"binding": "KV", "id": "mine"}])
    state = tmp_path / "elsewhere"
    kv = KV(thaw_factory(d, "--state", str(state)))
    kv.ok("put", "k", "v")
    assert (state / "kv" / "mine.sqlite").is_file()
    assert not (d / ".thaw").exists()


def test_default_backend_from_thaw_kv_table(tmp_path, thaw_factory, redis_server):
    d = tmp_path / "worker"
    write_worker(d, WORKER, fmt="json", kv_namespaces=[{"binding": "KV", "id": "dflt-x"}],
                 thaw={"kv": {"backend": redis_server.url}})
    kv = KV(thaw_factory(d))
    kv.ok("put", "via-default", "yes")
    assert b"thaw:kv:dflt-x:v:via-default" in redis_server.client().keys("*")
    assert not (d / ".thaw" / "state" / "kv").exists()


# ---------------------------------------------------------------- durability

def test_acknowledged_puts_survive_sigkill_of_the_supervisor(tmp_path):
    d = tmp_path / "worker"
    write_worker(d, WORKER, fmt="json", kv_namespaces=[{"binding": "KV", "id": "durable"}])
    t = Thaw(d, tmp_path, ()).start()
    acked = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w):
        i = 0
        while not stop.is_set():
            key, value = f"w{w}-{i}", f"value {w} {i} ".encode() * (1 + i % 50)
            try:
                r = t.request("PUT", f"/raw/{key}", body=value, timeout=10)
            except OSError:
                return  # thaw is gone
            if r.status == 200:
                with lock:
                    acked[key] = value
            i += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for th in threads:
        th.start()
    deadline = time.monotonic() + 30
    while len(acked) < 400 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(t.pgid, signal.SIGKILL)  # the supervisor and its process group
    t.proc.wait(10)
    stop.set()
    for th in threads:
        th.join(20)
    with lock:
        acked = dict(acked)
    assert len(acked) >= 400, len(acked)
    # the Python tree dies with its supervisor (PDEATHSIG, EOF)
    t2 = Thaw(d, tmp_path, ()).start()
    try:
        kv = KV(t2)
        missing = []
        names = list(acked)
        for i in range(0, len(names), 100):
            got = kv.ok("get", names[i:i + 100], "text")
            missing += [k for k in names[i:i + 100] if got[k] != acked[k].decode()]
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged puts lost: {missing[:5]}"
    finally:
        t2.stop()


# ---------------------------------------------------------------- Redis trouble

def test_unreachable_redis_is_a_clear_error(tmp_path, thaw_factory):
    d = tmp_path / "worker"
    url = f"redis://127.0.0.1:{free_port()}/0"
    write_worker(d, WORKER, fmt="json",
                 kv_namespaces=[{"binding": "KV", "id": "x", "backend": url}])
    kv = KV(thaw_factory(d))
    for op, args in (("get", ["k"]), ("put", ["k", "v"]), ("list", []), ("delete", ["k"])):
        t0 = time.monotonic()
        cls, msg = kv.err(op, *args)
        assert cls == "ConnectionError" and url in msg and "unreachable" in msg, msg
        assert time.monotonic() - t0 < 10


def test_redis_that_never_answers_fails_the_call(tmp_path, thaw_factory):
    # a server that accepts and reads but never replies
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    conns = []

    def accept():
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            conns.append(c)
    threading.Thread(target=accept, daemon=True).start()
    url = f"redis://127.0.0.1:{lsock.getsockname()[1]}/0"
    d = tmp_path / "worker"
    write_worker(d, WORKER, fmt="json",
                 kv_namespaces=[{"binding": "KV", "id": "x", "backend": url}])
    try:
        kv = KV(thaw_factory(d))
        t0 = time.monotonic()
        cls, msg = kv.err("get", "k")
        assert cls == "ConnectionError" and url in msg and "no answer within 10 s" in msg, msg
        assert 9 <= time.monotonic() - t0 < 30
    finally:
        lsock.close()
        for c in conns:
            c.close()


def test_redis_restart_reconnects(tmp_path, thaw_factory, tmp_path_factory):
    r = RedisServer(tmp_path_factory.mktemp("redis2"))
    try:
        d = tmp_path / "worker"
        write_worker(d, WORKER, fmt="json", kv_namespaces=[ns_entry(r.url)])
        kv = KV(thaw_factory(d))
        kv.ok("put", "k", "v")
        port = r.port
        r.stop()
        cls, msg = kv.err("get", "k")
        assert cls == "ConnectionError", msg
        r.proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while "ok" not in kv.op("put", "k2", "v2"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert kv.ok("get", "k2") == "v2"
    finally:
        r.stop()


# ---------------------------------------------------------------- config and misuse

BAD_CONFIGS = {
    "scheme": ({"binding": "KV", "id": "x", "backend": "memcached://h"},
               'KV backend of binding "KV" (`backend`)', 'use "sqlite"'),
    "port": ({"binding": "KV", "id": "x", "backend": "redis://127.0.0.1:99999"},
             "not a usable Redis URL", "port"),
    "id": ({"binding": "KV", "id": 5}, "kv_namespaces[0]", "`id` must be a string"),
    "binding": ({"id": "x"}, "kv_namespaces[0] needs `binding`", "MY_KV"),
    "entry": ("KV", "kv_namespaces[0] must be a table", "binding ="),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_an_error_naming_file_and_key(case, tmp_path, thaw_factory):
    entry, *needles = BAD_CONFIGS[case]
    d = tmp_path / "worker"
    write_worker(d, WORKER, fmt="json", kv_namespaces=[entry])
    t = thaw_factory(d)
    r = t.get("/")
    assert r.status == 500, r
    log = t.wait_log(*needles)
    assert "wrangler.json" in log and all(n in log for n in needles), log


def test_bad_thaw_kv_table(tmp_path, thaw_factory):
    d = tmp_path / "worker"
    write_worker(d, WORKER, fmt="json", kv_namespaces=[{"binding": "KV", "id": "x"}],
                 thaw={"kv": {"backnd": "redis://h"}})
    t = thaw_factory(d)
    assert t.get("/").status == 500
    assert "[thaw.kv] takes one key" in t.wait_log("[thaw.kv]")


def test_binding_at_top_level_is_a_clear_error(tmp_path, thaw_factory):
    d = tmp_path / "worker"
    write_worker(d, '''
        import asyncio
        from workers import KVNamespace, Response

        asyncio.run(KVNamespace("KV").get("warm-cache"))

        async def on_fetch(request, env):
            return Response("never")
    ''', fmt="json", kv_namespaces=[{"binding": "KV", "id": "x"}])
    t = thaw_factory(d)
    assert t.get("/").status == 500
    log = t.wait_log("not at the top level")
    assert "KV cannot be used here" in log and "Move the call into the handler" in log, log


def test_no_warning_for_kv_namespaces(kv):
    assert kv.ok("get", "x") is None
    assert "kv_namespaces" not in kv.t.log()


# ---------------------------------------------------------------- the example

def test_example_kv_notes(tmp_path, thaw_factory):
    from thawlib import REPO
    state = tmp_path / "state"
    t = thaw_factory(REPO / "examples" / "kv", "--state", str(state))
    assert t.request("PUT", "/notes/todo", body=b"buy milk").status == 201
    assert t.request("PUT", "/notes/tmp?ttl=120", body=b"temporary").status == 201
    r = t.get("/notes/todo")
    assert r.status == 200 and r.text == "buy milk" and r.header("x-note-size") == "8"
    listed = t.get("/notes").json()["notes"]
    assert [n["name"] for n in listed] == ["tmp", "todo"]
    assert listed[1]["size"] == 8 and listed[1]["expires"] is None
    assert listed[0]["expires"] >= int(time.time()) + 100
    assert t.get("/stats").json() == {"writes": 2}
    assert t.request("DELETE", "/notes/todo").status == 204
    assert t.get("/notes/todo").status == 404
    assert (state / "kv" / "notes.sqlite").is_file()
