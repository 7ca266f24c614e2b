"""Issue 14, escapes 1 and 3: under `thaw serve` a path in a worker's config
is tenant input. A hostile worker deployed through the admin API names
/etc, the state directory, the admin token or a neighbour's files as its
assets folder, entry point, CA file or migrations folder: each deploy is
refused with 400 naming the key, nothing secret is ever served from its
host, and the innocent worker keeps serving. Symlinks cannot travel in a
bundle, and one planted in an accepted assets folder leads nowhere."""
import json
import os
import struct

from tenantlib import tenant  # noqa: F401 (fixture)
from thawlib import raw_request

SECRET = "INNOCENT-SECRET-7f3a"
HOSTILE = '''
from workers import Response, WorkerEntrypoint

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("hostile")
'''
LEAKS = (SECRET.encode(), b"root:", b"INNOCENT", b"class Default", b"innocent")
# what an attacker asks for once its folder is /etc, / or the state dir
PROBES = ("/shadow", "/passwd", "/hostname", "/etc/shadow", "/etc/passwd", "/token",
          "/wrangler.toml", "/workers/innocent/versions/1/wrangler.toml",
          "/innocent/versions/1/wrangler.toml", "/versions/1/wrangler.toml",
          "/var/lib", "/tmp")


def pack(entries):
    """A bundle (format: docs/api.md) of (path, mode, bytes), as an
    attacker writes it, without `thaw deploy`."""
    out = [b"THAWBND1"]
    for path, mode, data in entries:
        name = path.encode()
        out.append(struct.pack("<I", len(name)) + name + struct.pack("<BI", mode, len(data)))
        out.append(data)
    return b"".join(out)


def config(name="evil", main="src/entry.py", **tables):
    cfg = {"name": name, "main": main, "compatibility_date": "2024-03-18",
           "compatibility_flags": ["python_workers"]}
    cfg.update(tables)
    return json.dumps(cfg).encode()


def hostile_bundle(extra=(), **cfg):
    return pack([("wrangler.json", 0, config(**cfg)), ("src/entry.py", 0, HOSTILE.encode()),
                 ("public/index.html", 0, b"<h1>hostile</h1>"), *extra])


def start(tenant):
    srv = tenant.serve(innocent_config={"vars": {"SECRET": SECRET}})
    innocent = tenant.state / "workers" / "innocent" / "versions" / "1"
    assert SECRET in (innocent / "wrangler.toml").read_text()
    (tenant.state / "token").write_text("ADMIN-TOKEN-SECRET\n")  # a token file to aim at
    return srv, innocent


def leaks_from(srv, host):
    """(path, what leaked) for every probe answered with a secret."""
    found = []
    for path in PROBES:
        r = raw_request(srv.port, f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: "
                        f"close\r\n\r\n".encode())
        found += [(path, leak) for leak in LEAKS + (b"ADMIN-TOKEN-SECRET",) if leak in r.body]
    return found


def nothing_secret_from(srv, host):
    assert not leaks_from(srv, host)


def test_paths_out_of_the_bundle_are_refused(tenant):
    srv, innocent = start(tenant)
    state = str(tenant.state)
    cases = [
        ("assets.directory", {"assets": {"directory": "/etc"}}),
        ("assets.directory", {"assets": {"directory": "../../../.."}}),
        ("assets.directory", {"assets": {"directory": state}}),
        ("assets.directory", {"assets": {"directory": "public/../../../innocent"}}),
        ("assets.directory", {"assets": {"directory": "/"}}),
        ("main", {"main": "../../innocent/versions/1/src/entry.py"}),
        ("main", {"main": str(innocent / "src" / "entry.py")}),
        ("thaw.egress.ca_file", {"thaw": {"egress": {"ca_file": "/etc/shadow"}}}),
        ("thaw.egress.ca_file", {"thaw": {"egress": {"ca_file": state + "/token"}}}),
        ("thaw.egress.ca_file", {"thaw": {"egress": {
            "ca_file": "certs/../../../../innocent/versions/1/wrangler.toml"}}}),
        ("thaw.egress.ca_file", {"thaw": {"egress": {"ca_file": "../../../token"}}}),
        ("d1_databases[0].migrations_dir", {"d1_databases": [{
            "binding": "DB", "database_name": "evil", "migrations_dir": "../../innocent"}]}),
        ("site.bucket", {"site": {"bucket": "/etc"}}),
    ]
    problems = []  # every case is tried, so a run shows each one that gets through
    for key, cfg in cases:
        status, body = srv.api("PUT", "/v1/workers/evil", body=hostile_bundle(**cfg))
        err = body.get("error", "") if isinstance(body, dict) else body
        if status != 400 or key not in err or "wrangler.json" not in err or \
                (key != "main" and "outside the worker's bundle" not in err):
            # (config.c words the `main` refusal its own way)
            problems.append((key, cfg, status, err))
        problems += [(key, cfg, "served", leak) for leak in leaks_from(srv, "evil.localhost")]
        tenant.innocent_serves()
    assert not problems, "\n".join(map(repr, problems))
    # the same worker, its paths inside its bundle, deploys and serves
    status, body = srv.api("PUT", "/v1/workers/evil", body=hostile_bundle(
        extra=[("certs/ca.pem", 0, b"not a real CA\n")],
        assets={"directory": "public"}, thaw={"egress": {"ca_file": "certs/ca.pem"}}))
    assert status == 200, body
    assert srv.host_get("evil.localhost").text == "<h1>hostile</h1>"
    nothing_secret_from(srv, "evil.localhost")
    tenant.innocent_serves()


def test_thaw_deploy_of_symlinked_folders_serves_nothing_outside(tenant):
    """A project whose assets folder, or files in it, are symlinks to /etc
    and to the innocent's data: `thaw deploy` sends no symlink, and
    nothing of their targets is served."""
    srv, innocent = start(tenant)
    d = tenant.project("evil", HOSTILE, assets={"directory": "public"})
    os.symlink("/etc", d / "public")
    rc, out = _deploy(srv, d)
    assert rc != 0, out
    nothing_secret_from(srv, "evil.localhost")
    os.unlink(d / "public")
    (d / "public").mkdir()
    (d / "public" / "index.html").write_text("<h1>hostile</h1>")
    os.symlink("/etc/shadow", d / "public" / "shadow")
    os.symlink(innocent / "wrangler.toml", d / "public" / "wrangler.toml")
    os.symlink(tenant.state, d / "public" / "state")
    rc, out = _deploy(srv, d)
    assert rc == 0, out
    nothing_secret_from(srv, "evil.localhost")
    for path in ("/shadow", "/state/token", "/state/workers/innocent/versions/1/wrangler.toml"):
        assert srv.host_get("evil.localhost", path).text == "hostile"  # the worker, no file
    tenant.innocent_serves()


def _deploy(srv, d):
    r = srv.cli("deploy", str(d), check=False)
    return r.returncode, r.stdout + r.stderr


def test_symlink_planted_in_an_accepted_assets_folder_leads_nowhere(tenant):
    """Defense in depth at use time: should a symlink ever appear in a
    deployed version's assets folder (the bundle cannot carry one), the
    supervisor still opens nothing outside the folder."""
    srv, innocent = start(tenant)
    status, body = srv.api("PUT", "/v1/workers/evil", body=hostile_bundle(
        assets={"directory": "public"}))
    assert status == 200, body
    pub = tenant.state / "workers" / "evil" / "versions" / "1" / "public"
    os.symlink("/etc/shadow", pub / "shadow")
    os.symlink("/etc/passwd", pub / "passwd")
    os.symlink("/", pub / "root")
    os.symlink(innocent / "wrangler.toml", pub / "wrangler.toml")
    os.symlink("../../../../innocent/versions/1", pub / "neighbour")
    os.symlink(tenant.state / "token", pub / "token")
    for path in ("/shadow", "/passwd", "/root/etc/passwd", "/root/etc/shadow",
                 "/wrangler.toml", "/neighbour/wrangler.toml", "/neighbour/src/entry.py",
                 "/token", "/root" + str(tenant.state) + "/token"):
        r = srv.host_get("evil.localhost", path)
        assert r.status != 200 or r.body.startswith(b"hostile"), (path, r)
        for leak in LEAKS + (b"ADMIN-TOKEN-SECRET",):
            assert leak not in r.body, (path, r)
    assert srv.host_get("evil.localhost").text == "<h1>hostile</h1>"
    tenant.innocent_serves()


def test_crafted_bundles_land_nowhere_outside_the_version(tenant):
    """Bundle bytes written by hand: absolute names, `..`, a would-be
    symlink entry, a file that is then used as a folder. Each is refused
    with 400 and writes nothing outside the new version's folder."""
    srv, innocent = start(tenant)
    evil = str(tenant.state / "workers" / "evil")

    def files():  # all but the hostile worker's own (refused) version folders
        return sorted(str(p) for p in tenant.state.parent.rglob("*")
                      if not str(p).startswith(evil))
    before = files()
    marker = tenant.state / "workers" / "pwned"
    crafted = [
        [("/etc/thaw-pwned", 0, b"x")],
        [("../../pwned", 0, b"x")],
        [("src/../../../../pwned", 0, b"x")],
        [(str(marker), 0, b"x")],
        [("./wrangler.json", 0, b"x")],
        [("public//x", 0, b"x")],
        [("public\\..\\..\\pwned", 0, b"x")],
        [("public/link", 2, b"/etc/shadow")],   # a mode thaw does not know
        [("public/link", 0xA1, b"/etc/shadow")],
        [("public", 0, b"x"), ("public/index.html", 0, b"x")],
        [("src/entry.py", 0, b"x")],             # named twice with the one below
    ]
    for extra in crafted:
        status, body = srv.api("PUT", "/v1/workers/evil", body=hostile_bundle(extra=extra))
        assert status == 400, (extra, status, body)
        assert not marker.exists() and not os.path.exists("/etc/thaw-pwned")
    assert not (tenant.state.parent / "pwned").exists()
    after = files()
    assert after == before, set(after) ^ set(before)
    tenant.innocent_serves()
