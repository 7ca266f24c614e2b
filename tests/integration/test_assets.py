"""Static assets (`[assets]`): files served before the worker with content
types, ETag/304, HEAD and Cloudflare's HTML handling; misses, other methods
and run_worker_first go to the worker, which can call env.ASSETS.fetch();
nothing outside the directory is ever served; big files arrive whole."""
import hashlib
import os
import socket
import time

import pytest

from thawlib import REPO, raw_request, read_response, write_worker

# The worker answers what the assets do not, and exposes env.ASSETS:
#   /via/<path>   -> env.ASSETS.fetch(<same origin>/<path>) (a modified URL)
#   /raw?u=<url>  -> env.ASSETS.fetch(<url>)
#   anything else, with run_worker_first: env.ASSETS.fetch(request)
WORKER = '''
    from urllib.parse import urlsplit, parse_qs
    from workers import Response, WorkerEntrypoint

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            url = urlsplit(request.url)
            if url.path.startswith("/via/"):
                target = f"{url.scheme}://{url.netloc}/{url.path[5:]}"
                resp = await self.env.ASSETS.fetch(target, headers=request.headers)
                resp.headers.set("x-via", "worker")
                return resp
            if url.path == "/raw":
                return await self.env.ASSETS.fetch(parse_qs(url.query)["u"][0])
            if url.path.startswith("/fw/") or url.path in ("/style.css", "/about"):
                resp = await self.env.ASSETS.fetch(request)
                return Response(resp.body, status=resp.status,
                                headers=[*resp.headers.items(), ("x-worker-first", "1")])
            return Response(f"worker {request.method} {url.path}")
'''

FILES = {
    "public/index.html": "<h1>home</h1>\n",
    "public/style.css": "body { color: red }\n",
    "public/app.js": "console.log(1)\n",
    "public/mod.mjs": "export {}\n",
    "public/data.json": '{"a": 1}\n',
    "public/logo.svg": "<svg/>\n",
    "public/notes.txt": "notes\n",
    "public/feed.xml": "<rss/>\n",
    "public/app.js.map": "{}\n",
    "public/blob.xyz": "?\n",
    "public/about.html": "about page\n",
    "public/docs/index.html": "docs index\n",
    "public/docs/intro.html": "intro\n",
}

BINARY = {
    "img.png": ("image/png", b"\x89PNG\r\n\x1a\n" + bytes(range(256))),
    "img.jpg": ("image/jpeg", b"\xff\xd8\xff" + bytes(100)),
    "img.webp": ("image/webp", b"RIFF0000WEBP"),
    "img.gif": ("image/gif", b"GIF89a"),
    "favicon.ico": ("image/vnd.microsoft.icon", b"\x00\x00\x01\x00"),  # Cloudflare's
    "mod.wasm": ("application/wasm", b"\x00asm\x01\x00\x00\x00"),
    "font.woff2": ("font/woff2", b"wOF2"),
    "doc.pdf": ("application/pdf", b"%PDF-1.4"),
}


def start(serve, tmp_path, assets=None, files=None, source=WORKER, **cfg_kw):
    cfg = {"directory": "./public", "binding": "ASSETS"}
    cfg.update(assets or {})
    all_files = dict(FILES)
    all_files.update(files or {})
    s = serve(source, files=all_files, assets=cfg, **cfg_kw)
    for name, (_, data) in BINARY.items():
        (tmp_path / "worker" / "public" / name).write_bytes(data)
    return s


def assert_asset(r, body, ctype=None):
    assert r.status == 200, r
    assert r.body == body
    if ctype:
        assert r.header("content-type") == ctype
    assert r.header("etag", ) and r.header("etag").startswith('"')
    assert r.header("cache-control") == "public, max-age=0, must-revalidate"


# ---------------------------------------------------------------- serving

def test_content_types_by_extension(serve, tmp_path):
    s = start(serve, tmp_path)
    text = {
        "/style.css": "text/css; charset=utf-8",
        "/app.js": "text/javascript; charset=utf-8",
        "/mod.mjs": "text/javascript; charset=utf-8",
        "/data.json": "application/json; charset=utf-8",
        "/logo.svg": "image/svg+xml",  # as Cloudflare serves it: no charset
        "/notes.txt": "text/plain; charset=utf-8",
        "/feed.xml": "application/xml; charset=utf-8",
        "/app.js.map": "application/json; charset=utf-8",
        "/blob.xyz": "application/octet-stream",
        "/": "text/html; charset=utf-8",
    }
    for path, ctype in text.items():
        r = s.get(path)
        want = FILES["public" + (path if path != "/" else "/index.html")].encode()
        assert_asset(r, want, ctype)
        assert r.header("content-length") == str(len(want))
    for name, (ctype, data) in BINARY.items():
        assert_asset(s.get("/" + name), data, ctype)
    # thaw served these itself: no instance ran for them
    assert '"path":"/style.css","status":200' in s.wait_log('"path":"/style.css"')
    assert '"start":"none","instance":0' in s.log()


def test_etag_if_none_match_and_changes(serve, tmp_path):
    s = start(serve, tmp_path)
    r = s.get("/style.css")
    etag = r.header("etag")
    for inm in (etag, f'W/{etag}', f'"nope", {etag}', f'W/"x",W/{etag}', "*"):
        r304 = s.get("/style.css", headers={"If-None-Match": inm})
        assert r304.status == 304, (inm, r304)
        assert r304.body == b""
        assert r304.header("etag") == etag
    assert s.get("/style.css", headers={"If-None-Match": '"other"'}).status == 200
    # an edited file is served at once (no reload) with a new ETag
    time.sleep(0.01)
    (tmp_path / "worker" / "public" / "style.css").write_text("body { color: blue }\n")
    r2 = s.get("/style.css", headers={"If-None-Match": etag})
    assert r2.status == 200 and r2.body == b"body { color: blue }\n"
    assert r2.header("etag") != etag
    # Cloudflare leaves Cache-Control off for requests with Authorization or Range
    assert s.get("/style.css", headers={"Authorization": "x"}).header("cache-control") is None


def test_head(serve, tmp_path):
    s = start(serve, tmp_path)
    r = s.request("HEAD", "/app.js")
    assert r.status == 200 and r.body == b""
    assert r.header("content-length") == str(len(FILES["public/app.js"]))
    assert r.header("content-type") == "text/javascript; charset=utf-8"
    assert r.header("etag") == s.get("/app.js").header("etag")


def test_pipelined_assets_and_worker_answers_stay_in_order(serve, tmp_path):
    s = start(serve, tmp_path)
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=15)
    try:
        reqs = b"".join(f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                        for p in ("/style.css", "/api/one", "/notes.txt", "/api/two"))
        sock.sendall(reqs)
        f = sock.makefile("rb")
        bodies = [read_response(f).body for _ in range(4)]
    finally:
        sock.close()
    assert bodies == [FILES["public/style.css"].encode(), b"worker GET /api/one",
                      b"notes\n", b"worker GET /api/two"]


# ---------------------------------------------------------------- routing

def test_html_handling_auto_trailing_slash(serve, tmp_path):
    s = start(serve, tmp_path)
    assert s.get("/").body == b"<h1>home</h1>\n"
    assert s.get("/about").body == b"about page\n"
    assert s.get("/docs/").body == b"docs index\n"
    assert s.get("/docs/intro").body == b"intro\n"
    redirects = {
        "/about.html": "/about", "/about/": "/about", "/index.html": "/",
        "/docs": "/docs/", "/docs/index.html": "/docs/", "/docs/index": "/docs/",
        "/docs/intro.html": "/docs/intro", "/about.html?x=1": "/about?x=1",
    }
    for path, loc in redirects.items():
        r = s.get(path)
        assert (r.status, r.header("location")) == (307, loc), path


@pytest.mark.parametrize("mode,served,redirects", [
    ("force-trailing-slash",
     {"/about/": b"about page\n", "/docs/": b"docs index\n", "/": b"<h1>home</h1>\n"},
     {"/about": "/about/", "/about.html": "/about/", "/docs": "/docs/"}),
    ("drop-trailing-slash",
     {"/about": b"about page\n", "/docs": b"docs index\n", "/": b"<h1>home</h1>\n"},
     {"/about/": "/about", "/docs/": "/docs", "/docs/index.html": "/docs"}),
    ("none",
     {"/about.html": b"about page\n", "/docs/index.html": b"docs index\n"},
     {}),
])
def test_html_handling_modes(serve, tmp_path, mode, served, redirects):
    s = start(serve, tmp_path, assets={"html_handling": mode})
    for path, body in served.items():
        r = s.get(path)
        assert (r.status, r.body) == (200, body), (mode, path, r)
    for path, loc in redirects.items():
        r = s.get(path)
        assert (r.status, r.header("location")) == (307, loc), (mode, path, r)
    if mode == "none":
        assert s.get("/docs/intro").body == b"worker GET /docs/intro"
        assert s.get("/docs/").body == b"worker GET /docs/"


def test_misses_and_other_methods_go_to_the_worker(serve, tmp_path):
    s = start(serve, tmp_path)
    assert s.get("/api/items").body == b"worker GET /api/items"
    assert s.get("/nothing.css").body == b"worker GET /nothing.css"
    r = s.request("POST", "/notes.txt", body=b"x=1")
    assert (r.status, r.body) == (200, b"worker POST /notes.txt")
    # this worker hands /style.css to env.ASSETS, which is read-only
    r = s.request("PUT", "/style.css", body=b"x=1")
    assert (r.status, r.header("allow"), r.header("x-worker-first")) == (405, "GET, HEAD", "1")
    r = s.request("DELETE", "/")
    assert r.body == b"worker DELETE /"


def test_run_worker_first_true_and_assets_fetch(serve, tmp_path):
    s = start(serve, tmp_path, assets={"run_worker_first": True})
    r = s.get("/style.css")
    assert r.status == 200 and r.header("x-worker-first") == "1"
    assert r.body == FILES["public/style.css"].encode()
    assert r.header("content-type") == "text/css; charset=utf-8"
    etag = r.header("etag")
    # HTML handling also applies through the binding
    assert s.get("/about").body == b"about page\n"
    # the worker's own routes still work, and it may fetch another URL
    assert s.get("/api/x").body == b"worker GET /api/x"
    r = s.get("/via/style.css")
    assert (r.status, r.header("x-via")) == (200, "worker")
    assert r.body == FILES["public/style.css"].encode()
    # the request's headers travel: If-None-Match gets a 304 through the binding
    r = s.get("/via/style.css", headers={"If-None-Match": etag})
    assert r.status == 304 and r.body == b""
    r = s.request("HEAD", "/via/app.js")
    assert r.status == 200 and r.body == b""
    # a miss through the binding is a 404 (not_found_handling = "none")
    r = s.get("/via/missing.png")
    assert r.status == 404 and r.body == b""
    r = s.get("/via/about.html")
    assert (r.status, r.header("location")) == (307, "/about")


def test_run_worker_first_patterns(serve, tmp_path):
    s = start(serve, tmp_path, assets={"run_worker_first": ["/fw/*", "!/fw/public/*"]},
              files={"public/fw/secret.txt": "gated\n", "public/fw/public/open.txt": "open\n"})
    r = s.get("/fw/secret.txt")
    assert r.header("x-worker-first") == "1" and r.body == b"gated\n"
    r = s.get("/fw/public/open.txt")
    assert r.header("x-worker-first") is None and r.body == b"open\n"
    # an encoded path is matched after decoding, so it cannot dodge the rule
    r = s.get("/%66w/secret.txt")
    assert r.body == b"worker GET /%66w/secret.txt"
    assert s.get("/style.css").header("x-worker-first") is None


def test_assets_without_binding(serve, tmp_path):
    s = serve('''
        from workers import Response, WorkerEntrypoint
        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response("has ASSETS: " + str("ASSETS" in self.env))
    ''', files={"public/a.txt": "A\n"}, assets={"directory": "public"})
    assert s.get("/a.txt").body == b"A\n"
    assert s.get("/x").body == b"has ASSETS: False"


# ---------------------------------------------------------------- not found

def test_not_found_404_page(serve, tmp_path):
    s = start(serve, tmp_path, assets={"not_found_handling": "404-page"},
              files={"public/404.html": "top 404\n", "public/docs/404.html": "docs 404\n"})
    # from a browser a miss still reaches the worker, which has routes of its own
    assert s.get("/nope").body == b"worker GET /nope"
    r = s.get("/via/nope")
    assert (r.status, r.body) == (404, b"top 404\n")
    assert r.header("content-type") == "text/html; charset=utf-8"
    r = s.get("/via/docs/deeper/nope")
    assert (r.status, r.body) == (404, b"docs 404\n")


def test_not_found_single_page_application(serve, tmp_path):
    s = start(serve, tmp_path, assets={"not_found_handling": "single-page-application"})
    r = s.get("/app/route/1", headers={"Sec-Fetch-Mode": "navigate"})
    assert (r.status, r.body) == (200, b"<h1>home</h1>\n")
    # not a navigation (an API call from the app): the worker answers
    assert s.get("/app/route/1").body == b"worker GET /app/route/1"
    assert s.get("/style.css").body == FILES["public/style.css"].encode()
    r = s.get("/via/app/route/2")
    assert (r.status, r.body) == (200, b"<h1>home</h1>\n")


# ---------------------------------------------------------------- safety

SECRET = "TOP-SECRET-CONFIG"


def test_no_file_outside_the_directory_is_served(serve, tmp_path):
    s = start(serve, tmp_path, vars={"S": SECRET})
    pub = tmp_path / "worker" / "public"
    os.symlink("/etc/passwd", pub / "passwd")
    os.symlink("/etc", pub / "etc")
    os.symlink("../wrangler.toml", pub / "config.toml")
    os.symlink("style.css", pub / "alias.css")  # inside: fine
    (tmp_path / "outside.txt").write_text(SECRET)
    assert SECRET in (tmp_path / "worker" / "wrangler.toml").read_text()
    targets = [
        "/../wrangler.toml", "/..%2fwrangler.toml", "/%2e%2e/wrangler.toml",
        "/%2E%2E%2Fwrangler.toml", "/docs/../../wrangler.toml", "/./../../outside.txt",
        "/%2e%2e/%2e%2e/outside.txt", "/..%5cwrangler.toml", "/passwd", "/etc/passwd",
        "/etc/hostname", "/config.toml", "/style.css%00.txt", "/%00", "//etc/passwd",
        "/src/entry.py", "/../src/entry.py", "/%2e%2e/src/entry.py",
        "http://x/../wrangler.toml",
    ]
    for t in targets:
        r = raw_request(s.port, f"GET {t} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                        .encode())
        assert SECRET.encode() not in r.body and b"root:" not in r.body, (t, r)
        assert b"class Default" not in r.body, (t, r)
        assert r.status in (200, 400, 404) and (r.status != 200 or r.body.startswith(b"worker")), (t, r)
    # and through the binding
    for u in ("http://x/../wrangler.toml", "http://x/%2e%2e/wrangler.toml", "http://x/passwd",
              "http://x/config.toml", "http://x/etc/passwd"):
        r = s.get("/raw?u=" + u.replace("%", "%25"))
        assert r.status == 404 and r.body == b"", (u, r)
    # a symlink that stays inside is a file like any other
    assert s.get("/alias.css").body == FILES["public/style.css"].encode()


# ---------------------------------------------------------------- big files

def test_big_file_arrives_intact(serve, tmp_path):
    s = start(serve, tmp_path, files={})
    data = os.urandom(1 << 20) * 20  # 20 MiB
    (tmp_path / "worker" / "public" / "big.bin").write_bytes(data)
    want = hashlib.sha256(data).hexdigest()
    r = s.get("/big.bin", timeout=60)
    assert r.status == 200 and r.header("content-length") == str(len(data))
    assert hashlib.sha256(r.body).hexdigest() == want
    # through the worker: the binding streams it
    r = s.get("/via/big.bin", timeout=60)
    assert r.status == 200 and len(r.body) == len(data)
    assert hashlib.sha256(r.body).hexdigest() == want
    # a client that reads slowly still gets every byte, and thaw keeps serving others
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=60)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        f = sock.makefile("rb")
        time.sleep(0.5)
        assert s.get("/notes.txt").body == b"notes\n"
        r = read_response(f)
        assert hashlib.sha256(r.body).hexdigest() == want
        # the connection is still usable afterwards (keep-alive)
        sock.sendall(b"GET /notes.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(f).body == b"notes\n"
    finally:
        sock.close()


def test_client_leaving_mid_file(serve, tmp_path):
    s = start(serve, tmp_path)
    (tmp_path / "worker" / "public" / "big.bin").write_bytes(bytes(30 << 20))
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=15)
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(65536)
        sock.close()
    assert s.get("/notes.txt").body == b"notes\n"
    assert s.wait_log('"path":"/big.bin","status":499', timeout=10).count(
        '"path":"/big.bin"') >= 1


# ---------------------------------------------------------------- config errors

def test_missing_directory_is_a_config_error(serve, tmp_path):
    s = serve(WORKER, assets={"directory": "./nowhere", "binding": "ASSETS"})
    r = s.get("/")
    assert r.status == 500
    assert "assets.directory" in r.text and "./nowhere" in r.text, r
    assert "create the folder" in r.text
    assert "assets.directory" in s.wait_log("assets.directory")


@pytest.mark.parametrize("assets,needle", [
    ({"html_handling": "sometimes"}, "`assets.html_handling` must be one of"),
    ({"not_found_handling": "404"}, "`assets.not_found_handling` must be one of"),
    ({"run_worker_first": ["api/*"]}, "`assets.run_worker_first` entry 1"),
    ({"run_worker_first": "yes"}, "`assets.run_worker_first` must be true, false or a list"),
    ({"binding": "MY-ASSETS"}, "`assets.binding` must be a name usable in Python"),
])
def test_bad_assets_config(serve, tmp_path, assets, needle):
    cfg = {"directory": "public"}
    cfg.update(assets)
    s = serve(WORKER, files={"public/a.txt": "a"}, assets=cfg)
    r = s.get("/a.txt")
    assert r.status == 500 and needle in r.text, r
    assert "wrangler.toml" in r.text


def test_no_warning_for_assets(serve, tmp_path):
    s = start(serve, tmp_path)
    s.get("/")
    assert "`assets` is not supported" not in s.log()


# ---------------------------------------------------------------- the example

def test_example_assets(thaw_factory):
    s = thaw_factory(REPO / "examples" / "assets")
    r = s.get("/")
    assert r.status == 200 and r.header("content-type") == "text/html; charset=utf-8"
    assert b"style.css" in r.body
    r = s.get("/style.css")
    assert r.status == 200 and r.header("content-type") == "text/css; charset=utf-8"
    r = s.get("/api/hello")
    assert r.status == 200 and r.json()["message"]
    r = s.get("/api/asset-size")
    assert r.status == 200 and r.json()["bytes"] == len(
        (REPO / "examples" / "assets" / "public" / "style.css").read_bytes())
