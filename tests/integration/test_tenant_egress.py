"""Issue 14, escapes 4 and 7: under `thaw serve` a worker's network targets
are tenant input. What a worker may reach is the operator's [egress] (the
`--config` file of serve); a worker's [thaw.egress] may only narrow it. KV
backends are the operator's [kv]; Redis keys carry the worker, so naming
another worker's namespace id reaches nothing of it.

Each test deploys a hostile worker through the admin API, as an attacker's
own client would, next to an innocent one."""
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tenantlib import tenant  # noqa: F401 (fixture)
from test_kv import RedisServer
from thawlib import REPO, THAW

sys.path.insert(0, str(REPO / "python"))
from thaw_tools.remote import bundle  # noqa: E402

# GET /fetch?url=U -> {"status", "text"} | {"error", "message"}
# GET /tcp?host=H&port=P -> {"echo"} | {"error", "message"}
# GET /kv?op=put|get&key=K[&value=V] -> {"value"}
PROBE = '''
from urllib.parse import parse_qsl, urlsplit
from workers import Response, WorkerEntrypoint, connect, fetch

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        u = urlsplit(request.url)
        q = dict(parse_qsl(u.query))
        try:
            if u.path == "/fetch":
                r = await fetch(q["url"])
                return Response.json({"status": r.status, "text": await r.text()})
            if u.path == "/tcp":
                s = connect(f"{q['host']}:{q['port']}")
                await s.opened
                await s.writable.write(b"ping")
                got = await s.readable.read(100)
                await s.close()
                return Response.json({"echo": bytes(got).decode()})
            if u.path == "/kv":
                if q["op"] == "put":
                    await self.env.KV.put(q["key"], q["value"])
                return Response.json({"value": await self.env.KV.get(q["key"])})
        except Exception as e:
            return Response.json({"error": type(e).__name__, "message": str(e)})
        return Response("probe")
'''


def _put(tenant, name, source=PROBE, **cfg):
    """Deploys through the admin API: (HTTP status, the answer's error)."""
    cfg.setdefault("fmt", "json")
    data, _ = bundle(str(tenant.project(name, source, **cfg)))
    status, doc = tenant.srv.api("PUT", f"/v1/workers/{name}", body=data)
    return status, doc.get("error", "") if isinstance(doc, dict) else doc


def _probe(srv, name, path):
    r = srv.host_get(f"{name}.localhost", path)
    assert r.status == 200, (r, srv.log()[-3000:])
    return json.loads(r.text)


def _operator(tenant, **tables):
    path = tenant.root / "serve.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tables))
    return ["--config", str(path)]


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"loopback service"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def loopback_http():
    """An HTTP server on 127.0.0.1: a service only the operator may open."""
    s = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    yield s.server_address[1]
    s.shutdown()
    s.server_close()


@pytest.fixture
def loopback_echo():
    """A TCP echo server on 127.0.0.1."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    stop = threading.Event()

    def run():
        while not stop.is_set():
            try:
                c, _ = ls.accept()
            except OSError:
                return
            with c:
                data = c.recv(100)
                if data:
                    c.sendall(data)
    threading.Thread(target=run, daemon=True).start()
    yield ls.getsockname()[1]
    stop.set()
    ls.close()


# ---------------------------------------------------------------- egress

HOSTILE_EGRESS = [
    ({"allow": ["127.0.0.0/8"]}, 'thaw.egress.allow "127.0.0.0/8" is outside this '
                                 "server's egress policy"),
    ({"allow": ["169.254.0.0/16"]}, 'thaw.egress.allow "169.254.0.0/16" is outside this '
                                    "server's egress policy"),
    ({"allow_ports": [25]}, "thaw.egress.allow_ports 25 is outside this server's egress "
                            "policy"),
    ({"max_connections": 100000}, "thaw.egress.max_connections = 100000 is over this "
                                  "server's ceiling of 100"),
]


@pytest.mark.parametrize("egress,needle", HOSTILE_EGRESS,
                         ids=["loopback", "metadata", "smtp", "max_connections"])
def test_a_worker_cannot_open_egress_for_itself(tenant, egress, needle):
    srv = tenant.serve()
    status, out = _put(tenant, "evil", thaw={"egress": egress})
    assert status == 403, out
    assert f"wrangler.json: {needle}" in out, out
    assert "operator" in out and "[egress]" in out, out
    assert srv.host_get("evil.localhost").status == 404
    tenant.innocent_serves()


def test_a_worker_without_egress_reaches_no_loopback_nor_the_admin_api(tenant,
                                                                       loopback_http):
    # even where the operator opened a loopback service, a worker that
    # did not ask for it does not get it; the admin API is open to none
    srv = tenant.serve(_operator(tenant, egress={"allow": [f"127.0.0.1:{loopback_http}"]}))
    status, out = _put(tenant, "plain")
    assert status == 200, out
    for url in (f"{srv.admin}/v1/workers", f"http://127.0.0.1:{loopback_http}/",
                "http://169.254.169.254/latest/meta-data/"):
        res = _probe(srv, "plain", f"/fetch?url={url}")
        assert res.get("error") == "PermissionError", (url, res)
        assert res["message"].startswith("thaw egress policy refused"), res
        if str(loopback_http) in url:  # the operator allows it: the worker may ask
            assert f'add "127.0.0.1:{loopback_http}" to `allow`' in res["message"], res
        else:
            assert "only the operator of this server can open it" in res["message"], res
    tenant.innocent_serves()


def test_a_worker_narrows_the_operators_policy(tenant, loopback_http, loopback_echo):
    ports = [loopback_http, loopback_echo]
    srv = tenant.serve(_operator(tenant, egress={
        "allow": [f"127.0.0.1:{p}" for p in ports], "max_connections": 50}))

    # asking for more than the operator opened: refused, naming what
    for ask, needle in ((["127.0.0.1"], "127.0.0.1/32 (loopback) is not allowed"),
                        (["127.0.0.0/8"], "127.0.0.0/8 (loopback) is not allowed"),
                        ([f"127.0.0.1:{loopback_http + 1}"], f"on port {loopback_http + 1}")):
        status, out = _put(tenant, "greedy", thaw={"egress": {"allow": ask}})
        assert status == 403, out
        assert f'thaw.egress.allow "{ask[0]}" is outside this server\'s egress policy' in out
        assert needle in out and str(tenant.root / "serve.json") in out, out
    status, out = _put(tenant, "greedy", thaw={"egress": {"max_connections": 51}})
    assert status == 403 and "ceiling of 50" in out, out

    # inside it: deployed, and it reaches exactly what it asked for
    status, out = _put(tenant, "narrow", thaw={"egress": {
        "allow": [f"127.0.0.1:{p}" for p in ports], "max_connections": 10}})
    assert status == 200, out
    res = _probe(srv, "narrow", f"/fetch?url=http://127.0.0.1:{loopback_http}/")
    assert res == {"status": 200, "text": "loopback service"}, res
    res = _probe(srv, "narrow", f"/tcp?host=127.0.0.1&port={loopback_echo}")
    assert res == {"echo": "ping"}, res
    res = _probe(srv, "narrow", f"/fetch?url={srv.admin}/v1/workers")
    assert res.get("error") == "PermissionError", res
    assert "only the operator of this server can open it" in res["message"], res
    res = _probe(srv, "narrow", f"/tcp?host=127.0.0.1&port={srv.admin_port}")
    assert res.get("error") and "egress policy refused" in res["message"], res
    tenant.innocent_serves()


def test_a_narrower_operator_policy_holds_for_workers_deployed_before(tenant,
                                                                      loopback_http):
    allow = [f"127.0.0.1:{loopback_http}"]
    srv = tenant.serve(_operator(tenant, egress={"allow": allow}))
    status, out = _put(tenant, "narrow", thaw={"egress": {"allow": allow}})
    assert status == 200, out
    assert _probe(srv, "narrow", f"/fetch?url=http://127.0.0.1:{loopback_http}/")["status"] \
        == 200
    srv.stop()
    # the operator closes it: the stored worker is not served with it
    srv = tenant.serve(_operator(tenant, egress={}), innocent=False)
    assert srv.host_get("narrow.localhost").status != 200
    assert 'thaw.egress.allow "127.0.0.1:%d" is outside' % loopback_http in srv.log()
    tenant.innocent_serves()


def _run_serve(tmp_path, *args):
    return subprocess.run([str(THAW), "serve", "--state", str(tmp_path / "state"),
                           "--listen", "127.0.0.1:1", "--admin", "127.0.0.1:1", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("tables,needle", [
    ({"egress": {"allow": ["localhost"]}}, "`egress.allow`: \"localhost\""),
    ({"egress": {"alow": []}}, "unknown key `egress.alow`"),
    ({"egress": {"ca_file": "/etc/ssl/ca.pem"}}, "`egress.ca_file` is not an operator setting"),
    ({"kv": {"backend": "memcached://x"}}, "`kv.backend` must be \"sqlite\" or"),
    ({"kv": {"prefix": "a:b"}}, "`kv.prefix` must be"),
    ({"kv": {"backends": {}}}, "unknown key `kv.backends`"),
    ({"cluster": {"control": "mysql://db/thaw"}}, "`cluster.control` must be a PostgreSQL URL"),
    ({"cluster": {"node": "a/b"}}, "`cluster.node` must be"),
    ({"cluster": {"peers": []}}, "unknown key `cluster.peers`"),
], ids=["range", "key", "ca_file", "backend", "prefix", "kv-key", "control", "node",
        "cluster-key"])
def test_a_mistake_in_the_operators_network_tables_stops_the_start(tmp_path, tables, needle):
    cfg = tmp_path / "serve.json"
    cfg.write_text(json.dumps(tables))
    r = _run_serve(tmp_path, "--config", str(cfg))
    assert r.returncode == 2, r
    assert f"{cfg}: {needle}" in r.stderr, r.stderr
    assert "Ready on" not in r.stdout


# ---------------------------------------------------------------- KV


@pytest.fixture
def redis_server(tmp_path):
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is missing: run scripts/install-deps")
    r = RedisServer(tmp_path)
    yield r
    r.stop()


def test_a_worker_cannot_choose_its_kv_backend(tenant, redis_server):
    srv = tenant.serve()
    kv = [{"binding": "KV", "id": "loot"}]
    for tables, key in (({"thaw": {"kv": {"backend": redis_server.url}}}, "thaw.kv.backend"),
                        ({"kv_namespaces": [dict(kv[0], backend=redis_server.url)]},
                         "kv_namespaces[0].backend")):
        tables.setdefault("kv_namespaces", kv)
        status, out = _put(tenant, "evil", **tables)
        assert status == 403, out
        assert f'wrangler.json: {key} "{redis_server.url}" is not a KV backend this ' \
               f"server offers" in out, out
        assert srv.host_get("evil.localhost").status == 404
    assert redis_server.client().keys("*") == []
    tenant.innocent_serves()


def test_redis_keys_carry_the_worker(tenant, redis_server):
    # data an older thaw serve kept without the worker in its keys
    old = redis_server.client()
    old.hset("thaw:kv:shared:v:old", "v", "before")
    old.zadd("thaw:kv:shared:index", {"old": 0})
    srv = tenant.serve(_operator(tenant, kv={"backend": redis_server.url, "prefix": "tn"}))
    kv = [{"binding": "KV", "id": "shared"}]
    for name in ("alice", "mallory"):
        status, out = _put(tenant, name, kv_namespaces=kv)
        assert status == 200, out
    assert _probe(srv, "alice", "/kv?op=put&key=secret&value=alice-only") == \
        {"value": "alice-only"}
    # mallory names the same namespace id: nothing of alice's
    assert _probe(srv, "mallory", "/kv?op=get&key=secret") == {"value": None}
    assert _probe(srv, "mallory", "/kv?op=put&key=secret&value=forged") == \
        {"value": "forged"}
    assert _probe(srv, "alice", "/kv?op=get&key=secret") == {"value": "alice-only"}
    keys = {k.decode() for k in redis_server.client().keys("*")}
    assert "tn:kv:alice:shared:v:secret" in keys, keys
    assert "tn:kv:mallory:shared:v:secret" in keys, keys
    assert {k for k in keys if k.startswith("thaw:kv:")} == \
        {"thaw:kv:shared:v:old", "thaw:kv:shared:index"}, keys
    # not read by anyone now, and not silently: the log says where it is
    assert _probe(srv, "alice", "/kv?op=get&key=old") == {"value": None}
    deadline = time.monotonic() + 10
    while "old key layout" not in srv.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert 'KV namespace "shared": Redis at' in srv.log() and \
        "old key layout (thaw:kv:shared:...)" in srv.log(), srv.log()[-3000:]
    # repeating the operator's own backend is allowed, as is "sqlite"
    status, out = _put(tenant, "explicit", kv_namespaces=[dict(kv[0], backend=redis_server.url)])
    assert status == 200, out
    status, out = _put(tenant, "local", kv_namespaces=[dict(kv[0], backend="sqlite")])
    assert status == 200, out
    assert _probe(srv, "local", "/kv?op=get&key=secret") == {"value": None}
    tenant.innocent_serves()
