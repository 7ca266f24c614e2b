"""`thaw serve` (issue 9): many workers in one state directory, deployed,
listed, rolled back and deleted over the authenticated admin API with the
`thaw deploy/list/delete/rollback/tail` clients; routing by Host and by
`routes`; refused deploys leave the old version serving; deploys under
load are atomic; a SIGKILLed server comes back with every worker."""
import json
import os
import signal
import stat
import subprocess
import threading
import time

import pytest

from servelib import TOKEN, ThawServe, hello, project, serve_factory  # noqa: F401
from thawlib import THAW, write_main, write_worker


def test_deploy_then_serve_by_host(serve_factory, tmp_path):
    srv = serve_factory()
    d = project(tmp_path, "alpha", "alpha v1")
    r = srv.cli("deploy", str(d))
    assert "Bundled alpha: 2 files" in r.stdout, r.stdout
    assert "Template built in" in r.stdout, r.stdout
    assert "Deployed alpha version 1 in" in r.stdout, r.stdout
    resp = srv.host_get("alpha.localhost")
    assert resp.status == 200 and resp.text == "alpha v1", resp
    # port and case in Host are ignored
    assert srv.host_get("ALPHA.localhost:8787").text == "alpha v1"


def test_unknown_host_is_404_naming_no_worker(serve_factory, tmp_path):
    srv = serve_factory()
    srv.cli("deploy", str(project(tmp_path, "secret-name", "x")))
    for host in ("nope.localhost", "example.org", "localhost", "secret-name.other"):
        r = srv.host_get(host)
        assert r.status == 404, (host, r)
        assert "secret-name" not in r.text, r.text


def test_granted_routes_and_name_hosts(serve_factory, tmp_path):
    srv = serve_factory()
    # routes need a grant (docs/api.md "Routing"); one host and path per worker
    for name, pats in (("site", ["example.com/*"]), ("api", ["*.example.com/*"]),
                       ("v1", ["api.example.org/v1/*", "example.com/api/*"])):
        status, body = srv.api("PUT", f"/v1/workers/{name}/grants",
                               body=json.dumps({"patterns": pats}))
        assert status == 200, body
    srv.cli("deploy", str(project(tmp_path, "site", "site", routes=["example.com/*"])))
    srv.cli("deploy", str(project(tmp_path, "api", "api", routes=["*.example.com/*"])))
    srv.cli("deploy", str(project(tmp_path, "v1", "v1", routes=["api.example.org/v1/*"])))
    cases = [("example.com", "/", "site"), ("example.com", "/api/x", "site"),
             ("Example.COM:8787", "/about?q=1", "site"), ("api.example.com", "/v2", "api"),
             ("a.b.example.com", "/", "api"), ("api.example.org", "/v1/users", "v1"),
             ("site.localhost", "/", "site"), ("v1.localhost", "/", "v1")]
    for host, path, want in cases:
        r = srv.host_get(host, path)
        assert r.status == 200 and r.text == want, (host, path, r)
    assert srv.host_get("example.net").status == 404
    assert srv.host_get("api.example.org", "/v2").status == 404
    # granted, but inside a route another worker holds
    r = srv.cli("deploy", str(project(tmp_path, "v1", "v1",
                                      routes=["api.example.org/v1/*", "example.com/api/*"])),
                check=False)
    assert r.returncode == 1 and 'overlaps route "example.com/*" of worker site' in r.stderr, \
        r.stderr
    assert srv.host_get("api.example.org", "/v1/x").text == "v1"


def test_bad_route_pattern_is_refused(serve_factory, tmp_path):
    srv = serve_factory()
    r = srv.cli("deploy", str(project(tmp_path, "bad", routes=["example.com"])),
                check=False)
    assert r.returncode == 1
    assert 'route "example.com" has no path' in r.stderr, r.stderr
    assert srv.host_get("bad.localhost").status == 404


def test_missing_or_bad_token_is_401_and_logged(serve_factory):
    srv = serve_factory()
    for tok in ("", "wrong-token-wrong-token"):
        status, body = srv.api("GET", "/v1/workers", token=tok)
        assert status == 401, body
        assert "token" in body["error"]
    log = srv.wait_log("no Authorization header", "bad token")
    assert "admin API: 401 for GET /v1/workers" in log, log
    r = subprocess.run([str(THAW), "list", "--to", srv.admin, "--token", "nope" * 5],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "HTTP 401" in r.stderr, r.stderr


def test_token_file_created_0600(serve_factory, tmp_path):
    srv = serve_factory(env_token=False)
    tok = tmp_path / "state" / "token"
    assert stat.S_IMODE(tok.stat().st_mode) == 0o600
    assert len(tok.read_text().strip()) == 64
    status, body = srv.api("GET", "/v1/workers")
    assert status == 200 and body == {"workers": []}, body
    # the same token after a restart
    before = tok.read_text()
    srv.stop()
    srv.start()
    assert tok.read_text() == before
    assert srv.api("GET", "/v1/workers")[0] == 200


def test_list_get_rollback_delete(serve_factory, tmp_path):
    srv = serve_factory()
    d = project(tmp_path, "multi", "one")
    srv.cli("deploy", str(d))
    write_main(d, hello("two"))
    r = srv.cli("deploy", str(d))
    assert "Deployed multi version 2" in r.stdout
    assert srv.host_get("multi.localhost").text == "two"

    out = srv.cli("list").stdout
    assert "multi" in out and " 2 " in out, out
    status, doc = srv.api("GET", "/v1/workers/multi")
    assert status == 200 and doc["version"] == 2
    assert [v["version"] for v in doc["versions"]] == [1, 2]
    assert [v["current"] for v in doc["versions"]] == [False, True]

    r = srv.cli("rollback", "multi")
    assert "Rolled multi back to version 1" in r.stdout, r.stdout
    assert srv.host_get("multi.localhost").text == "one"
    r = srv.cli("rollback", "multi", "--version", "2")
    assert srv.host_get("multi.localhost").text == "two"
    r = srv.cli("rollback", "multi", "--version", "9", check=False)
    assert r.returncode == 1 and "no deployed version 9" in r.stderr, r.stderr

    srv.cli("delete", "multi")
    assert srv.host_get("multi.localhost").status == 404
    assert srv.api("GET", "/v1/workers/multi")[0] == 404
    assert not (tmp_path / "state" / "workers" / "multi").exists()
    assert srv.cli("list").stdout.strip() == "no workers deployed"


def test_failed_deploy_is_refused_and_old_version_serves(serve_factory, tmp_path):
    srv = serve_factory()
    d = project(tmp_path, "stable", "good")
    srv.cli("deploy", str(d))
    write_main(d, hello("bad", extra="raise RuntimeError('boom at import')"))
    r = srv.cli("deploy", str(d), check=False)
    assert r.returncode == 1
    assert "stable was not deployed" in r.stderr, r.stderr
    assert "Traceback" in r.stderr and "RuntimeError: boom at import" in r.stderr, r.stderr
    assert "src/entry.py" in r.stderr
    resp = srv.host_get("stable.localhost")
    assert resp.status == 200 and resp.text == "good", resp
    status, doc = srv.api("GET", "/v1/workers/stable")
    assert doc["version"] == 1 and [v["version"] for v in doc["versions"]] == [1]
    # the refused version left nothing behind
    assert sorted(os.listdir(tmp_path / "state/workers/stable/versions")) == ["1", "1.json"]
    # entropy at top level is refused the same way
    write_main(d, hello("rand", extra="import random\nX = random.random()"))
    r = srv.cli("deploy", str(d), check=False)
    assert r.returncode == 1 and "random.random()" in r.stderr, r.stderr
    assert srv.host_get("stable.localhost").text == "good"
    # and a good one goes through after that
    write_main(d, hello("better"))
    assert "version 2" in srv.cli("deploy", str(d)).stdout
    assert srv.host_get("stable.localhost").text == "better"


def test_failed_first_deploy_leaves_no_worker(serve_factory, tmp_path):
    srv = serve_factory()
    d = project(tmp_path, "never", extra="1/0")
    r = srv.cli("deploy", str(d), check=False)
    assert r.returncode == 1 and "ZeroDivisionError" in r.stderr, r.stderr
    assert srv.host_get("never.localhost").status == 404
    assert srv.api("GET", "/v1/workers")[1] == {"workers": []}


def test_name_mismatch_and_bad_bundle(serve_factory, tmp_path):
    srv = serve_factory()
    status, body = srv.api("PUT", "/v1/workers/x", body=b"not a bundle")
    assert status == 400 and "not a thaw bundle" in body["error"], body
    evil = b"THAWBND1" + (7).to_bytes(4, "little") + b"../evil" + b"\x00" + \
        (1).to_bytes(4, "little") + b"x"
    status, body = srv.api("PUT", "/v1/workers/x", body=evil)
    assert status == 400 and "unsafe path" in body["error"], body
    assert not (tmp_path / "state" / "workers" / "evil").exists()
    status, body = srv.api("PUT", "/v1/workers/Bad_Name", body=b"")
    assert status == 400 and "not a valid worker name" in body["error"], body


def test_deploys_are_atomic_under_load(serve_factory, tmp_path):
    srv = serve_factory()
    d = project(tmp_path, "busy", "v0")
    srv.cli("deploy", str(d))
    allowed = {"v0"}
    seen, errors = [], []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                r = srv.host_get("busy.localhost", timeout=30)
                if r.status != 200 or r.text not in allowed:
                    errors.append((r.status, r.text))
                seen.append(r.text)
            except Exception as e:  # noqa: BLE001 - any failure is the bug
                errors.append(repr(e))
    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(1, 21):
            write_main(d, hello(f"v{i}"))
            allowed.add(f"v{i}")
            srv.cli("deploy", str(d))
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, errors[:5]
    assert len(seen) > 20
    assert srv.host_get("busy.localhost").text == "v20"


def test_sigkill_restart_keeps_every_worker(serve_factory, tmp_path):
    srv = serve_factory()
    for n in ("one", "two", "three"):
        srv.cli("deploy", str(project(tmp_path, n, f"{n} v1")))
    d = tmp_path / "two"
    write_main(d, hello("two v2"))
    srv.cli("deploy", str(d))
    d3 = tmp_path / "three"
    write_main(d3, hello("three v2"))
    srv.cli("deploy", str(d3))
    srv.cli("rollback", "three")
    srv.stop(signal.SIGKILL)
    srv.start()
    assert srv.host_get("one.localhost").text == "one v1"
    assert srv.host_get("two.localhost").text == "two v2"
    assert srv.host_get("three.localhost").text == "three v1"
    status, doc = srv.api("GET", "/v1/workers/two")
    assert doc["version"] == 2 and len(doc["versions"]) == 2


def test_healthz_and_readyz(serve_factory, tmp_path):
    srv = serve_factory()
    st, body = srv.api("GET", "/healthz", token="")
    assert st == 200 and body.strip() == "ok"
    srv.cli("deploy", str(project(tmp_path, "slow", "ok", extra="import time\ntime.sleep(1.5)")))
    srv.stop(signal.SIGKILL)
    srv.start()
    st, body = srv.api("GET", "/readyz", token="")
    assert st == 503 and "still building" in body, body
    deadline = time.monotonic() + 30
    while srv.api("GET", "/readyz", token="")[0] != 200:
        assert time.monotonic() < deadline, srv.log()
        time.sleep(0.1)
    assert srv.api("GET", "/readyz", token="")[1].startswith("ready: 1 worker")


def test_tail_streams_a_request_made_after_it_started(serve_factory, tmp_path):
    srv = serve_factory()
    srv.cli("deploy", str(project(tmp_path, "chatty", "hey")))
    env = dict(os.environ, THAW_API_TOKEN=TOKEN)
    p = subprocess.Popen([str(THAW), "tail", "chatty", "--to", srv.admin], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # let tail connect
        assert srv.host_get("chatty.localhost", "/after-tail").status == 200
        line = p.stdout.readline()
        event = json.loads(line)
        assert event["worker"] == "chatty" and event["path"] == "/after-tail", line
        assert event["status"] == 200
    finally:
        p.terminate()
        p.wait(10)


def test_tail_pretty(serve_factory, tmp_path):
    srv = serve_factory()
    srv.cli("deploy", str(project(tmp_path, "pretty", "hey")))
    env = dict(os.environ, THAW_API_TOKEN=TOKEN)
    p = subprocess.Popen([str(THAW), "tail", "pretty", "--to", srv.admin, "--format",
                          "pretty"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        srv.host_get("pretty.localhost", "/p")
        line = p.stdout.readline()
        assert "GET /p -> 200 in" in line, line
    finally:
        p.terminate()
        p.wait(10)


def test_thaw_dev_ignores_routes_without_warning(tmp_path, serve):
    srv = serve(hello("dev"), routes=["example.com/*"], fmt="json")
    assert srv.get("/").text == "dev"
    assert "`routes` is not supported" not in srv.log()


STORE = """
from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = request.url
        key = url.split("/")[-1]
        db = self.env.DB
        await db.exec("CREATE TABLE IF NOT EXISTS notes (k TEXT PRIMARY KEY, v TEXT)")
        if request.method == "PUT":
            value = await request.text()
            await self.env.NOTES.put(key, value)
            await db.prepare("INSERT OR REPLACE INTO notes VALUES (?, ?)").bind(key, value).run()
            return Response("stored")
        kv = await self.env.NOTES.get(key)
        row = await db.prepare("SELECT v FROM notes WHERE k = ?").bind(key).first("v")
        return Response(f"VERSION kv={kv} d1={row}")
"""


def store_project(root, version):
    d = root / "store"
    write_worker(d, STORE.replace("VERSION", version), name="store", fmt="json",
                 kv_namespaces=[{"binding": "NOTES", "id": "notes"}],
                 d1_databases=[{"binding": "DB", "database_name": "notes",
                                "database_id": "notes-db"}])
    return d


def test_sigkill_restart_keeps_kv_and_d1_data(serve_factory, tmp_path):
    """Item 5 of issue 9: data written through HTTP survives a SIGKILL of
    thaw serve and its whole process group; the worker comes back at its
    latest version."""
    srv = serve_factory()
    srv.cli("deploy", str(store_project(tmp_path, "v1")))
    srv.cli("deploy", str(store_project(tmp_path, "v2")))
    for i in range(5):
        r = srv.request("PUT", f"/k{i}", body=f"value {i}".encode(),
                        headers={"Host": "store.localhost"}, timeout=30)
        assert r.status == 200 and r.text == "stored", r
    assert srv.host_get("store.localhost", "/k3").text == "v2 kv=value 3 d1=value 3"
    pgid = os.getpgid(srv.proc.pid)
    os.killpg(pgid, signal.SIGKILL)
    srv.proc.wait(10)
    srv.start()
    for i in range(5):
        r = srv.host_get("store.localhost", f"/k{i}", timeout=30)
        assert r.status == 200 and r.text == f"v2 kv=value {i} d1=value {i}", (r, srv.log())
    status, doc = srv.api("GET", "/v1/workers/store")
    assert status == 200 and doc["version"] == 2, doc
    # the data lives under the worker's data/ in the state dir
    data = tmp_path / "state" / "workers" / "store" / "data"
    assert (data / "kv" / "notes.sqlite").exists(), sorted(data.rglob("*"))
    assert (data / "d1" / "notes-db.sqlite").exists(), sorted(data.rglob("*"))


LOUD = """
import logging
from workers import Response, WorkerEntrypoint

print("top level of loud")
log = logging.getLogger("loud")
logging.basicConfig(level=logging.INFO)


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        if request.url.endswith("/flood"):
            line = "x" * 999
            for _ in range(30000):   # 30 MB
                print(line)
            return Response("flooded")
        print("hello from the handler")
        log.warning("a warning from logging")
        return Response("loud")
"""


def tail_proc(srv, name, *extra):
    env = dict(os.environ, THAW_API_TOKEN=TOKEN)
    return subprocess.Popen([str(THAW), "tail", name, "--to", srv.admin, *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_tail_streams_the_workers_own_output(serve_factory, tmp_path):
    srv = serve_factory()
    d = tmp_path / "loud"
    write_worker(d, LOUD, name="loud")
    srv.cli("deploy", str(d))
    p = tail_proc(srv, "loud")
    try:
        time.sleep(1.0)  # let tail connect
        assert srv.host_get("loud.localhost", "/x").text == "loud"
        events = [json.loads(p.stdout.readline()) for _ in range(3)]
    finally:
        p.terminate()
        p.wait(10)
    logs = [e for e in events if e.get("type") == "log"]
    reqs = [e for e in events if "method" in e]
    assert len(reqs) == 1 and len(logs) == 2, events
    assert [e["message"] for e in logs] == ["hello from the handler",
                                            "WARNING:loud:a warning from logging"], logs
    for e in logs:
        assert e["worker"] == "loud" and e["request"] == reqs[0]["request"], events
        assert e["time"].endswith("Z")
    # thaw's own log has the same lines, tagged as in thaw dev
    log = srv.wait_log("hello from the handler")
    assert f"[loud req={reqs[0]['request']}] hello from the handler" in log
    assert "[loud] top level of loud" in log


def test_tail_pretty_shows_log_lines(serve_factory, tmp_path):
    srv = serve_factory()
    d = tmp_path / "loud"
    write_worker(d, LOUD, name="loud")
    srv.cli("deploy", str(d))
    p = tail_proc(srv, "loud", "--format", "pretty")
    try:
        time.sleep(1.0)
        srv.host_get("loud.localhost", "/p")
        lines = [p.stdout.readline() for _ in range(3)]
    finally:
        p.terminate()
        p.wait(10)
    assert any("(log req=" in l and l.rstrip().endswith("hello from the handler")
               for l in lines), lines
    assert any("GET /p -> 200 in" in l for l in lines), lines


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def test_flooding_output_with_a_stalled_tail_keeps_memory_bounded(serve_factory, tmp_path):
    """A worker writes 30 MB while a tail client reads nothing: the
    supervisor drops that client's lines past 1 MiB instead of queueing
    them; thaw's log gets what the worker's output budget lets through and
    a note of what it dropped."""
    import socket
    srv = serve_factory()
    d = tmp_path / "loud"
    write_worker(d, LOUD, name="loud")
    srv.cli("deploy", str(d))
    assert srv.host_get("loud.localhost", "/warm").status == 200
    # a small receive window, so what the kernel buffers for the stalled
    # client is small and the supervisor's own bound is what is tested
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", srv.admin_port))
    stalled.sendall(f"GET /v1/workers/loud/tail HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: Bearer {TOKEN}\r\n\r\n".encode())
    try:
        time.sleep(0.5)
        before = rss_kb(srv.proc.pid)
        r = srv.host_get("loud.localhost", "/flood", timeout=120)
        assert (r.status, r.text) == (200, "flooded"), r
        # the instance's output budget (1 MB/s, 4 MB bursts: docs/security.md)
        # lets a burst through and drops the rest, which a later line says
        deadline = time.monotonic() + 60
        last = -1
        while time.monotonic() < deadline:
            n = srv.log().count("x" * 999)
            if n == last and n >= 3000:
                break
            last = n
            time.sleep(0.5)
        assert 3000 <= srv.log().count("x" * 999) < 30000
        time.sleep(1.1)  # budget for the note
        srv.host_get("loud.localhost", "/nudge")
        assert "bytes of output dropped: over 1 MB/s" in srv.wait_log(
            "bytes of output dropped"), srv.log()[-2000:]
        grown = rss_kb(srv.proc.pid) - before
        assert grown < 15 * 1024, f"the supervisor grew by {grown} kB"
        # the stalled client is still connected; it gets what fitted, then
        # a note of how many lines were dropped once it reads again
        stalled.setblocking(False)
        got = b""
        deadline = time.monotonic() + 30
        while b'"type":"dropped"' not in got and time.monotonic() < deadline:
            try:
                chunk = stalled.recv(1 << 20)
                got += chunk
            except BlockingIOError:
                srv.host_get("loud.localhost", "/nudge")  # a line after the catch-up
                time.sleep(0.1)
        assert b'"type":"dropped"' in got
    finally:
        stalled.close()


SLEEPER = """
import asyncio
from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        await asyncio.sleep(1.5)
        return Response("slept")
"""


def test_a_workers_limits_apply_to_it_alone(serve_factory, tmp_path):
    srv = serve_factory()
    write_worker(tmp_path / "hasty", SLEEPER, name="hasty",
                 thaw={"request_timeout_ms": 300})
    write_worker(tmp_path / "patient", SLEEPER, name="patient")
    srv.cli("deploy", str(tmp_path / "hasty"))
    srv.cli("deploy", str(tmp_path / "patient"))
    r = srv.host_get("hasty.localhost", timeout=30)
    assert r.status == 504 and "request_timeout_ms" in r.text, r
    r = srv.host_get("patient.localhost", timeout=30)
    assert (r.status, r.text) == (200, "slept"), r


def test_metrics_per_worker_behind_the_token(serve_factory, tmp_path):
    srv = serve_factory()
    srv.cli("deploy", str(project(tmp_path, "m-one", "1")))
    srv.cli("deploy", str(project(tmp_path, "m-two", "2")))
    for _ in range(3):
        assert srv.host_get("m-one.localhost").status == 200
    assert srv.host_get("m-two.localhost").status == 200
    st, _ = srv.api("GET", "/metrics", token="")
    assert st == 401
    st, text = srv.api("GET", "/metrics")
    assert st == 200, text
    assert 'thaw_requests_total{worker="m-one",status="200"} 3' in text, text
    assert 'thaw_requests_total{worker="m-two",status="200"} 1' in text, text
    assert 'thaw_templates{worker="m-one"} 1' in text, text
    # one HELP/TYPE per family, its series together (Prometheus' rule)
    assert text.count("# TYPE thaw_requests_total counter") == 1
    families = [l.split()[2] for l in text.splitlines() if l.startswith("# TYPE")]
    assert len(families) == len(set(families)), families
