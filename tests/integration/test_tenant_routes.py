"""Issue 14, escape 6: a worker's `routes` took over another worker's
traffic (`routes = ["victim.localhost/*"]` or `["*localhost/*"]`). Under
`thaw serve` a worker answers at NAME.DOMAIN, which nothing else may take,
and routes only where the operator granted it (admin API or [routes] of
--config); a route another worker holds is refused with 409 naming it."""
import json
import sys

from tenantlib import tenant  # noqa: F401 (fixture)
from thawlib import REPO

sys.path.insert(0, str(REPO / "python"))
from thaw_tools.remote import bundle  # noqa: E402

HELLO = '''
from workers import Response, WorkerEntrypoint

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("{name}")
'''


def put(t, name, routes):
    """Deploys name (answering its own name) with routes through the admin
    API, as an attacker with a deploy token would. (status, body)."""
    d = t.project(name, HELLO.format(name=name), routes=routes)
    data, _ = bundle(str(d))
    return t.srv.api("PUT", f"/v1/workers/{name}", body=data)


def grant(t, name, *patterns, method="POST"):
    status, body = t.srv.api(method, f"/v1/workers/{name}/grants",
                             body=json.dumps({"patterns": list(patterns)}))
    assert status == 200, body
    return body


def serves(t, host, path, want):
    r = t.srv.host_get(host, path)
    assert r.status == 200 and r.text == want, (host, path, r)


def test_hostile_routes_are_refused(tenant):
    t = tenant
    t.serve()
    hostile = [
        # another worker's NAME.DOMAIN, however it is spelt: 409 naming it
        (["innocent.localhost/*"], 409, "worker innocent"),
        (["*localhost/*"], 409, "worker innocent"),
        (["*.localhost/*"], 409, "worker innocent"),
        (["http://innocent.localhost/*"], 409, "worker innocent"),
        (["HTTPS://INNOCENT.LocalHost./*"], 409, "worker innocent"),
        (["innocent.localhost/api/*"], 409, "worker innocent"),
        (["*.innocent.localhost/*"], 409, "worker innocent"),
        (["evil.localhost/*", "innocent.localhost/"], 409, "worker innocent"),
        # [{pattern = ...}] as wrangler writes them
        ([{"pattern": "innocent.localhost/*", "zone_name": "localhost"}], 409,
         "worker innocent"),
        # hosts outside DOMAIN, never granted: 403 naming the missing grant
        (["localhost/*"], 403, "not granted to worker evil"),
        (["example.com/*"], 403, "not granted to worker evil"),
        (["*nnocent.localhost/*"], 403, "reserved"),
        # not a pattern that means one thing: 400
        (["INNOCENT.localhost:8787/*"], 400, "has a port"),
        (["innocent.localhost/%2a"], 400, "may not hold '%'"),
        (["innocent.localhost/x/../*"], 400, "not allowed as path segments"),
        (["**.localhost/*"], 400, "the host may hold only"),
    ]
    for routes, want, words in hostile:
        status, body = put(t, "evil", routes)
        assert status == want, (routes, status, body)
        assert words in body["error"], (routes, body)
        t.innocent_serves()
        # the refused first deploy left no worker, and took no host
        assert t.srv.host_get("evil.localhost").status == 404
        assert t.srv.host_get("x.localhost").status == 404
    # the CLI shows the refusal
    rc, out = t.deploy("evil", HELLO.format(name="evil"), routes=["*localhost/*"])
    assert rc == 1 and "would take innocent.localhost" in out, out
    # a worker deployed without routes cannot add them by a new version
    status, body = put(t, "evil", [])
    assert status == 200, body
    status, body = put(t, "evil", ["innocent.localhost/*"])
    assert status == 409, body
    serves(t, "evil.localhost", "/", "evil")
    t.innocent_serves()
    _, w = t.srv.api("GET", "/v1/workers/evil")
    assert w["routes"] == [], w
    # an absolute-form target names the host, whatever the Host header says
    r = t.srv.request("GET", "http://innocent.localhost/", headers={"Host": "evil.localhost"})
    assert r.status == 200 and r.text == "innocent", r

    # a state directory written by an older thaw, where evil held those
    # routes: at start they are dropped (logged), evil keeps its own name
    t.srv.stop()
    cfg_path = t.state / "workers" / "evil" / "versions" / str(w["version"]) / "wrangler.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["routes"] = ["*localhost/*", "example.com/*"]
    cfg_path.write_text(json.dumps(cfg))
    t.srv.start()
    log = t.srv.wait_log('route "*localhost/*" dropped', 'route "example.com/*" dropped')
    assert 'worker evil: route "*localhost/*" dropped (held): route "*localhost/*" would ' \
        'take innocent.localhost' in log, log
    assert 'worker evil: route "example.com/*" dropped (not granted)' in log, log
    t.innocent_serves()
    serves(t, "evil.localhost", "/", "evil")
    assert t.srv.host_get("localhost").status == 404
    assert t.srv.host_get("example.com").status == 404


def test_grants_from_the_admin_api(tenant):
    t = tenant
    t.serve()
    # granted routes are held by the first to deploy; hosts stay their own
    grant(t, "shop", "shop.example.com/*", "example.com/shop/*")
    status, body = put(t, "shop", ["shop.example.com/*", "example.com/shop/*"])
    assert status == 200, body
    serves(t, "shop.example.com", "/", "shop")
    serves(t, "example.com", "/shop/cart", "shop")
    assert t.srv.host_get("example.com", "/blog").status == 404
    # outside its grants: 403 naming the route and the worker
    status, body = put(t, "other", ["example.com/shop/cart"])
    assert status == 403 and "not granted to worker other" in body["error"], body
    # granted too, but held: 409 naming the holder (CLI grant)
    r = t.srv.cli("routes", "grant", "other", "example.com/*")
    assert "example.com/*" in r.stdout, r.stdout
    for routes in (["example.com/*"], ["example.com/shop/*"], ["example.com/shop/x"]):
        status, body = put(t, "other", routes)
        assert status == 409 and "of worker shop" in body["error"], (routes, body)
    status, body = put(t, "other", ["example.com/blog/*"])
    assert status == 200, body
    serves(t, "example.com", "/blog/1", "other")
    serves(t, "example.com", "/shop/cart", "shop")
    t.innocent_serves()
    r = t.srv.cli("routes", "list", "shop")
    assert "shop.example.com/*" in r.stdout and "held now" in r.stdout, r.stdout

    # grants and routes survive a restart
    t.srv.stop()
    t.srv.start()
    serves(t, "shop.example.com", "/", "shop")
    serves(t, "example.com", "/shop/cart", "shop")
    serves(t, "example.com", "/blog/1", "other")
    status, body = t.srv.api("GET", "/v1/grants")
    assert body["grants"]["shop"] == ["shop.example.com/*", "example.com/shop/*"], body

    # a revoked grant takes the route away at once, and after a restart
    r = t.srv.cli("routes", "revoke", "shop", "example.com/shop/*")
    assert r.returncode == 0, r.stderr
    assert t.srv.host_get("example.com", "/shop/cart").status == 404
    serves(t, "shop.localhost", "/", "shop")
    t.srv.stop()
    t.srv.start()
    log = t.srv.wait_log('route "example.com/shop/*" dropped (not granted)')
    assert 'route "example.com/shop/*" dropped (not granted)' in log, log
    assert t.srv.host_get("example.com", "/shop/cart").status == 404
    serves(t, "shop.example.com", "/", "shop")
    serves(t, "shop.localhost", "/", "shop")

    # deleting a worker frees its routes
    grant(t, "other", "shop.example.com/*")
    status, body = put(t, "other", ["example.com/blog/*", "shop.example.com/*"])
    assert status == 409 and "of worker shop" in body["error"], body
    t.srv.cli("delete", "shop")
    status, body = put(t, "other", ["example.com/blog/*", "shop.example.com/*"])
    assert status == 200, body
    serves(t, "shop.example.com", "/", "other")
    t.innocent_serves()


def test_grants_from_the_operator_config(tenant, tmp_path):
    t = tenant
    conf = tmp_path / "serve.json"
    conf.write_text(json.dumps({"routes": {
        "shop": ["shop.example.com/*"],
        "*": ["*.apps.example.com/*"],      # any worker, first come
        "evil": ["*.example.com/*"],
    }}))
    t.serve(args=["--config", str(conf)])
    status, body = put(t, "shop", ["shop.example.com/*"])
    assert status == 200, body
    serves(t, "shop.example.com", "/", "shop")
    status, body = put(t, "a", ["a.apps.example.com/*"])
    assert status == 200, body
    serves(t, "a.apps.example.com", "/", "a")
    # the second to claim an overlapping pattern gets 409 naming the first
    for routes in (["a.apps.example.com/*"], ["*.apps.example.com/*"],
                   ["*a.apps.example.com/x"]):
        status, body = put(t, "b", routes)
        assert status == 409 and "of worker a" in body["error"], (routes, body)
    status, body = put(t, "b", ["b.apps.example.com/*"])
    assert status == 200, body
    serves(t, "b.apps.example.com", "/", "b")
    # a grant wide enough to cover a held route still cannot take it
    status, body = put(t, "evil", ["*.example.com/*"])
    assert status == 409 and "of worker" in body["error"], body
    # an ungranted worker gets nothing of the shared zone's neighbours
    status, body = put(t, "evil", ["example.com/*"])
    assert status == 403, body
    serves(t, "shop.example.com", "/", "shop")
    t.innocent_serves()

    # the operator takes a grant away: after a restart the worker keeps
    # its NAME.DOMAIN, the log says which route went and why
    t.srv.stop()
    conf.write_text(json.dumps({"routes": {"*": ["*.apps.example.com/*"]}}))
    t.srv.start()
    log = t.srv.wait_log('route "shop.example.com/*" dropped (not granted)')
    assert 'worker shop: route "shop.example.com/*" dropped (not granted)' in log, log
    assert t.srv.host_get("shop.example.com").status == 404
    serves(t, "shop.localhost", "/", "shop")
    serves(t, "a.apps.example.com", "/", "a")
    t.innocent_serves()


def test_operator_grants_under_the_domain_are_refused_at_start(tenant, tmp_path):
    t = tenant
    conf = tmp_path / "serve.json"
    conf.write_text(json.dumps({"routes": {"evil": ["*.localhost/*"]}}))
    from servelib import ThawServe
    srv = ThawServe(t.state, t.logdir, ("--config", str(conf)))
    srv.spawn()
    assert not srv.wait_ready_or_exit()
    assert srv.proc.wait(10) == 2
    assert "[routes]: `evil`: grant \"*.localhost/*\" lies under .localhost" in srv.log(), \
        srv.log()
