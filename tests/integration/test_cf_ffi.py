"""Issue 17, points 2 and 3: Python Workers code that uses `pyodide.ffi`,
`pyodide.http` and the `js` globals as Cloudflare's docs write it runs on
thaw, over HTTP, sandboxed (thaw dev's default); what these return is
accepted as a Response body, a KV value, a D1 parameter and JSON; bad
input fails clearly."""
import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from thawlib import write_worker

SANDBOX = True

# The FFI page's helper, then the uses the issue names: to_js(list) stored,
# to_js(image_bytes).buffer as a Response body, create_proxy for listeners.
FFI_WORKER = '''
import json

from workers import WorkerEntrypoint, Response
import asyncio

from pyodide.ffi import (to_js as _to_js, create_proxy, create_once_callable,
                         destroy_proxies, run_sync, JsProxy, JsArray, JsBuffer, JsException)
from js import Object, JSON, URL, AbortController

PNG = bytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + bytes(range(24))


def to_js(obj):
    return _to_js(obj, dict_converter=Object.fromEntries)


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        path = URL.new(request.url).pathname
        if path == "/image":
            return Response(to_js(PNG).buffer, headers={"content-type": "image/png"})
        if path == "/kv":
            await self.env.KV.put("list", JSON.stringify(to_js([1, "two", {"three": 3}])))
            await self.env.KV.put("bytes", _to_js(b"\\x00\\x01raw"))
            await self.env.KV.put("view", _to_js(memoryview(b"view")).buffer)
            listed = JSON.parse(await self.env.KV.get("list"))
            raw = await self.env.KV.get("bytes", "arrayBuffer")
            return Response.json({
                "list": listed.to_py(), "third": listed[2].three,
                "bytes": list(raw.to_bytes()), "is_js": isinstance(raw, JsProxy),
                "view": await self.env.KV.get("view")})
        if path == "/d1":
            db = self.env.DB
            await db.exec("CREATE TABLE IF NOT EXISTS t (n INTEGER, s TEXT, b BLOB)")
            params = to_js([7, "seven", b"\\x07"])
            await db.prepare("INSERT INTO t VALUES (?, ?, ?)").bind(*params).run()
            row = await db.prepare("SELECT n, s, length(b) AS lb FROM t").first()
            return Response.json(row)
        if path == "/json":
            obj = to_js({"name": "thaw", "tags": ["a", "b"], "nested": {"x": 1}})
            return Response(json.dumps({"obj": obj, "attr": obj.name,
                                        "js": JSON.stringify(obj)}),
                            headers={"content-type": "application/json"})
        if path == "/map":
            m = _to_js({"k": "v"})  # no dict_converter: a JS Map
            return Response.json({"get": m.get("k"), "size": m.size, "has": m.has("k"),
                                  "py": m.to_py()})
        if path == "/proxies":
            seen = []
            controller = AbortController.new()
            listener = create_proxy(lambda event: seen.append(event.type))
            controller.signal.addEventListener("abort", listener)
            controller.abort()
            once = create_once_callable(lambda: "once")
            first = once()
            try:
                once()
                second = "called twice"
            except JsException as e:
                second = str(e)
            destroy_proxies([listener])
            try:
                listener(None)
                after = "called"
            except JsException as e:
                after = str(e)
            return Response.json({"seen": seen, "first": first, "second": second,
                                  "after_destroy": after})
        if path == "/run_sync":
            await self.env.KV.put("k", "from KV")

            def sync_library_code():  # sync code that needs an async binding
                return run_sync(self.env.KV.get("k"))
            got = await asyncio.to_thread(sync_library_code)
            try:
                run_sync(self.env.KV.get("k"))
                inline = "blocked the loop"
            except RuntimeError as e:
                inline = str(e)
            return Response.json({"thread": got, "inline": inline})
        if path == "/bad":
            class Point:
                pass
            try:
                _to_js(Point())
            except TypeError as e:
                return Response(f"{type(e).__name__}: {e}", status=400)
            return Response("converted", status=500)
        return Response("no route", status=404)
'''


@pytest.fixture
def ffi(tmp_path, thaw_factory):
    d = tmp_path / "w"
    write_worker(d, FFI_WORKER, fmt="json",
                 kv_namespaces=[{"binding": "KV", "id": "<YOUR_KV_NAMESPACE_ID>"}],
                 d1_databases=[{"binding": "DB", "database_name": "db",
                                "database_id": "<YOUR_DATABASE_ID>"}])
    return thaw_factory(d)


def test_to_js_buffer_is_a_response_body(ffi):
    r = ffi.get("/image")
    assert r.status == 200, r
    assert r.header("content-type") == "image/png"
    assert r.body == bytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + bytes(range(24))


def test_to_js_values_are_kv_values(ffi):
    r = ffi.get("/kv")
    assert r.status == 200, r.text
    assert r.json() == {"list": [1, "two", {"three": 3}], "third": 3,
                        "bytes": [0, 1, 114, 97, 119], "is_js": True, "view": "view"}


def test_to_js_list_binds_d1_parameters(ffi):
    r = ffi.get("/d1")
    assert r.status == 200, r.text
    assert r.json() == {"n": 7, "s": "seven", "lb": 1}


def test_to_js_objects_are_json(ffi):
    r = ffi.get("/json")
    assert r.status == 200, r.text
    out = r.json()
    assert out["obj"] == {"name": "thaw", "tags": ["a", "b"], "nested": {"x": 1}}
    assert out["attr"] == "thaw"
    assert json.loads(out["js"]) == out["obj"]


def test_to_js_dict_without_converter_is_a_map(ffi):
    assert ffi.get("/map").json() == {"get": "v", "size": 1, "has": True, "py": {"k": "v"}}


def test_proxies_live_until_destroyed(ffi):
    out = ffi.get("/proxies").json()
    assert out["seen"] == ["abort"]
    assert out["first"] == "once"
    assert "can only be called once" in out["second"]
    assert "destroyed" in out["after_destroy"]


def test_run_sync_from_a_thread_and_in_a_handler(ffi):
    out = ffi.get("/run_sync").json()
    assert out["thread"] == "from KV"
    assert "cannot block inside a running handler" in out["inline"]
    assert "await" in out["inline"]


def test_to_js_of_an_unsupported_type_is_a_clear_type_error(ffi):
    r = ffi.get("/bad")
    assert r.status == 400, r
    assert r.text.startswith("ConversionError: to_js: cannot convert a ")
    assert "Point" in r.text and "default_converter" in r.text


# ---------------------------------------------------------------- pyodide.http

PYFETCH_WORKER = '''
from workers import WorkerEntrypoint, Response
from pyodide.http import pyfetch, HttpStatusError


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        upstream = self.env.UPSTREAM
        resp = await pyfetch(upstream + "/data.json",
                             method="POST", headers={"x-from": "pyfetch"}, body="ping")
        copy = resp.clone()
        data = await resp.json()
        text = await copy.string()
        try:
            (await pyfetch(upstream + "/missing")).raise_for_status()
            err = None
        except HttpStatusError as e:
            err = [e.status, str(e)]
        return Response.json({"ok": resp.ok, "status": resp.status, "data": data,
                              "text": text, "ctype": resp.headers.get("content-type"),
                              "err": err})
'''


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _send(self, status, body, ctype="application/json"):
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send(404, b"not here", "text/plain")

    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        got = self.rfile.read(n).decode()
        self._send(200, json.dumps({"got": got, "from": self.headers.get("x-from")}).encode())


@pytest.fixture
def upstream():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_pyfetch_and_fetch_response(tmp_path, thaw_factory, upstream):
    d = tmp_path / "w"
    write_worker(d, PYFETCH_WORKER, vars={"UPSTREAM": upstream},
                 thaw={"egress": {"allow": ["127.0.0.0/8"]}})
    r = thaw_factory(d).get("/")
    assert r.status == 200, r.text
    out = r.json()
    assert out["ok"] is True and out["status"] == 200
    assert out["data"] == {"got": "ping", "from": "pyfetch"}
    assert json.loads(out["text"]) == out["data"]
    assert out["ctype"] == "application/json"
    assert out["err"][0] == 404 and "404 Client Error" in out["err"][1]


# ---------------------------------------------------------------- js globals

# a legacy handler, `from js import ...` and `.new(...)` as Pyodide spells them
JS_WORKER = '''
import asyncio

from js import (Response, Headers, URL, URLSearchParams, Object, JSON, console, Date,
                Math, crypto, setTimeout, clearTimeout, Uint8Array, ArrayBuffer,
                TextEncoder, TextDecoder, FormData, Blob, AbortController, btoa, atob)


async def on_fetch(request, env):
    url = URL.new(request.url)
    params = URLSearchParams.new(url.search)
    name = params.get("name") or "world"
    body = await request.text()
    digest = await crypto.subtle.digest("SHA-256", TextEncoder.new().encode(body))

    fired = asyncio.get_running_loop().create_future()
    setTimeout(lambda: fired.set_result("timer"), 5)
    cancelled = setTimeout(lambda: console.log("never"), 10)
    clearTimeout(cancelled)
    await fired
    await asyncio.sleep(0.03)

    random = Uint8Array.new(16)
    crypto.getRandomValues(random)
    form = FormData.new()
    form.append("a", "1")
    blob = Blob.new(["ab", b"cd"], {"type": "text/plain"})
    controller = AbortController.new()
    controller.abort()
    start = Date.now()
    console.log("handled", name)
    out = Object.fromEntries([
        ["hello", name],
        ["digest", bytes(digest).hex()],
        ["timer", fired.result()],
        ["uuid_len", len(crypto.randomUUID())],
        ["random_len", random.length],
        ["b64", btoa("thaw")],
        ["unb64", atob(btoa("thaw"))],
        ["decoded", TextDecoder.new().decode(Uint8Array.new([104, 105]))],
        ["floor", Math.floor(7.9)],
        ["iso", Date.new(0).toISOString()],
        ["now_ok", isinstance(start, int) and start > 1700000000000],
        ["form", form.get("a")],
        ["blob", await blob.text()],
        ["aborted", controller.signal.aborted],
        ["buffer_len", ArrayBuffer.new(8).byteLength],
        ["query", str(URLSearchParams.new(Object.fromEntries([["q", "a b"]])))],
    ])
    headers = Headers.new(Object.fromEntries([["content-type", "application/json"]]).items())
    return Response.new(JSON.stringify(out), headers=headers)
'''


def test_js_globals_in_a_legacy_handler(tmp_path, thaw_factory):
    d = tmp_path / "w"
    write_worker(d, JS_WORKER)
    srv = thaw_factory(d)
    r = srv.request("POST", "/?name=thaw", body=b"payload")
    assert r.status == 200, r.text
    out = r.json()
    assert out == {
        "hello": "thaw", "digest": hashlib.sha256(b"payload").hexdigest(), "timer": "timer",
        "uuid_len": 36, "random_len": 16, "b64": base64.b64encode(b"thaw").decode(),
        "unb64": "thaw", "decoded": "hi", "floor": 7, "iso": "1970-01-01T00:00:00.000Z",
        "now_ok": True, "form": "1", "blob": "abcd", "aborted": True, "buffer_len": 8,
        "query": "q=a+b"}
    srv.wait_log("handled thaw")
    assert "never" not in srv.log()


def test_js_randomness_at_top_level_fails_the_deploy(tmp_path, thaw_factory):
    d = tmp_path / "w"
    write_worker(d, '''
        from js import Response, crypto
        TOKEN = crypto.randomUUID()  # in the snapshot, every instance would share it

        async def on_fetch(request, env):
            return Response.new(TOKEN)
        ''')
    srv = thaw_factory(d)
    r = srv.get("/")
    assert r.status == 500, r
    srv.wait_log("src/entry.py:3: crypto.randomUUID() at top level")


def test_timers_at_top_level_say_where_they_belong(tmp_path, thaw_factory):
    d = tmp_path / "w"
    write_worker(d, '''
        from js import Response, setTimeout
        setTimeout(lambda: None, 10)

        async def on_fetch(request, env):
            return Response.new("never")
        ''')
    srv = thaw_factory(d)
    assert srv.get("/").status == 500
    srv.wait_log("setTimeout() cannot be used here")
