"""The seeds' hello-world samples, unchanged, served by `thaw dev`."""
from pathlib import Path

SEED_TOML = '''name = "hello-world-python-worker"
main = "src/entry.py"
compatibility_date = "2024-03-18"
compatibility_flags = ["python_workers"]
'''

SEED_LEGACY = '''from js import Response

async def on_fetch(request, env):
    return Response.new("Hello world!")
'''

SEED_ENTRYPOINT = '''from workers import WorkerEntrypoint, Response

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("Hello world!")
'''


def _seed(d, source):
    d = Path(d)
    (d / "src").mkdir(parents=True)
    (d / "wrangler.toml").write_text(SEED_TOML)
    (d / "src" / "entry.py").write_text(source)


def test_seed_legacy_on_fetch_js_response(workdir, thaw_factory):
    _seed(workdir, SEED_LEGACY)
    srv = thaw_factory(workdir)
    r = srv.get("/")
    assert r.status == 200, r
    assert r.body == b"Hello world!"


def test_seed_worker_entrypoint(workdir, thaw_factory):
    _seed(workdir, SEED_ENTRYPOINT)
    srv = thaw_factory(workdir)
    r = srv.get("/")
    assert r.status == 200, r
    assert r.body == b"Hello world!"
    assert r.header("content-type") == "text/plain;charset=UTF-8"
    # any path is served by the same handler
    assert srv.get("/some/path?x=1").body == b"Hello world!"


SEED_KV = '''from js import Response

async def on_fetch(request, env):
    await env.FOO.put("bar", "baz")
    bar = await env.FOO.get("bar")
    return Response.new(bar) # returns "baz"
'''

SEED_JSON = '''from js import JSON

js_array = JSON.parse("[1,2,3]")

for entry in js_array:
   print(entry)
'''


def test_seed_kv_sample(workdir, thaw_factory):
    """Seed post 2's KV sample, unchanged, on a real KV namespace."""
    _seed(workdir, SEED_KV)
    with open(workdir / "wrangler.toml", "a") as f:
        f.write('\n[[kv_namespaces]]\nbinding = "FOO"\nid = "seed-foo"\n')
    srv = thaw_factory(workdir)
    r = srv.get("/")
    assert r.status == 200, r
    assert r.body == b"baz"
    # it is really stored: in the namespace's SQLite file under the state dir
    assert list((workdir / ".thaw" / "state" / "kv").glob("seed-foo*"))


def test_seed_js_json_sample(workdir, thaw_factory):
    """Seed post 1's FFI sample runs at a worker's top level."""
    _seed(workdir, SEED_JSON + "\n" + SEED_ENTRYPOINT)
    srv = thaw_factory(workdir)
    assert srv.get("/").body == b"Hello world!"
    log = srv.wait_log("[hello-world-python-worker] 3")
    for n in ("1", "2", "3"):
        assert f"[hello-world-python-worker] {n}" in log, log


# Seed post 1's httpx patch, as printed except for its indentation (the post
# mixes 2 and 4 spaces in do_request, which Python refuses) and the body of
# js_response_to_py_response, which the post omits.
SEED_HTTPX_PATCH = '''from js import Headers, Request, fetch

import httpx
from workers import Response, WorkerEntrypoint

def py_request_to_js_request(py_request):
    js_headers = Headers.new(py_request.headers)
    return Request.new(py_request.url, method=py_request.method, headers=js_headers)

async def js_response_to_py_response(js_response):
    return httpx.Response(js_response.status, headers=list(js_response.headers.items()),
                          content=await js_response.bytes())

async def do_request(py_request):
    js_request = py_request_to_js_request(py_request)
    js_response = await fetch(js_request)
    py_response = await js_response_to_py_response(js_response)
    return py_response

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        py_request = httpx.Request("GET", self.env.UPSTREAM, headers={"x-seed": "yes"})
        r = await do_request(py_request)
        return Response(f"{r.status_code} {r.text}")
'''


def test_seed_httpx_patch_sample_fetches_through_js_fetch(workdir, thaw_factory):
    from test_fetch import Upstream
    up = Upstream()
    try:
        _seed(workdir, SEED_HTTPX_PATCH)
        with open(workdir / "wrangler.toml", "a") as f:
            f.write(f'\n[vars]\nUPSTREAM = "{up.url("/echo")}"\n'
                    '\n[thaw.egress]\nallow = ["127.0.0.0/8"]\n')
        srv = thaw_factory(workdir)
        r = srv.get("/")
        assert r.status == 200, srv.log()[-3000:]
        assert r.text.startswith("200 "), r.text
        assert '"x-seed": ["yes"]' in r.text, r.text
    finally:
        up.close()
