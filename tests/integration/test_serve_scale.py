"""`thaw serve` with many workers stays cheap: a worker nobody called has
no instance (not even a spare, at start or after a deploy), and with
`template_idle_timeout_ms` a worker without traffic loses its template
too; its next request builds it again and is answered (it waits, it does
not fail). Process counts are read from /proc, as test_process_tree.py
does."""
import signal
import time

from servelib import hello, project, serve_factory  # noqa: F401
from thawlib import thaw_processes, write_main


def wait_for(cond, timeout=30, what=""):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def templates(srv):
    return thaw_processes(srv.proc.pid, "thaw-template")


def instances(srv):
    return thaw_processes(srv.proc.pid, "thaw-instance")


def test_idle_template_is_evicted_and_rebuilt_by_the_next_request(serve_factory, tmp_path):
    srv = serve_factory(args=["--template-idle-timeout", "1s", "--idle-timeout", "300"])
    d = project(tmp_path, "sleepy", "zzz v1")
    srv.cli("deploy", str(d))
    assert srv.host_get("sleepy.localhost").text == "zzz v1"
    wait_for(lambda: not templates(srv) and not instances(srv), what="the eviction")
    assert "its template is evicted" in srv.log()
    st, doc = srv.api("GET", "/v1/workers/sleepy")
    assert st == 200 and doc["state"] == "cold" and doc["version"] == 1, doc
    # the next request waits for the build and is served
    r = srv.host_get("sleepy.localhost", "/again", timeout=60)
    assert (r.status, r.text) == (200, "zzz v1"), (r, srv.log()[-2000:])
    assert "building its evicted template again" in srv.log()

    # a refused deploy to a cold worker leaves the old version serving
    wait_for(lambda: not templates(srv), what="the second eviction")
    write_main(d, "raise RuntimeError('broken top level')\n")
    r = srv.cli("deploy", str(d), check=False)
    assert r.returncode == 1 and "broken top level" in r.stderr, r.stderr
    assert srv.host_get("sleepy.localhost", timeout=60).text == "zzz v1"
    # a good deploy to a cold worker serves the new version
    wait_for(lambda: not templates(srv), what="the third eviction")
    write_main(d, hello("zzz v3"))
    srv.cli("deploy", str(d))
    assert srv.host_get("sleepy.localhost", timeout=60).text == "zzz v3"
    st, doc = srv.api("GET", "/v1/workers/sleepy")
    assert doc["version"] == 2, doc  # the refused version left no number behind
    # the serving version rebuilt beside each deploy kept its own config
    assert "failed to build" not in srv.log(), srv.log()[-3000:]


def test_many_workers_fork_no_spares_and_cold_ones_hold_nothing(serve_factory, tmp_path):
    n = 30
    srv = serve_factory()
    for i in range(n):
        srv.cli("deploy", str(project(tmp_path, f"w{i}", f"worker {i}")))
    time.sleep(0.5)  # a spare would be forked right after its build
    assert len(templates(srv)) == n
    assert instances(srv) == [], "deploys without traffic forked spares"
    # a worker with traffic gets its instance (and a spare) as before
    assert srv.host_get("w7.localhost").text == "worker 7"
    assert 1 <= len(instances(srv)) <= 3

    # restarted: every template is built, still no instance for anyone
    srv.stop(signal.SIGKILL)
    srv.args = ["--template-idle-timeout", "3s"]
    srv.start()
    wait_for(lambda: srv.api("GET", "/readyz", token="")[0] == 200, what="readyz")
    time.sleep(0.5)
    assert instances(srv) == [], "the builds at start forked spares"
    assert len(templates(srv)) <= n
    # then the templates of workers nobody calls go too
    wait_for(lambda: not templates(srv), what="every template evicted")
    st, doc = srv.api("GET", "/v1/workers")
    assert {w["state"] for w in doc["workers"]} == {"cold"}, doc
    for i in (0, 29):
        r = srv.host_get(f"w{i}.localhost", timeout=60)
        assert (r.status, r.text) == (200, f"worker {i}"), r
