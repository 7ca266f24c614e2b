"""The access log (issue 16): one JSON line per request, built into a
buffer and written in batches, every line arriving; `--access-log off` (or
`thaw.access_log = false` in the config) turns it off."""
import http.client
import json
import threading

from thawlib import write_worker

WORKER = '''
from workers import WorkerEntrypoint, Response

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("ok")
'''

CONNS, PER_CONN = 16, 150  # 2,400 requests, 16 at a time


def _load(srv, path):
    """CONNS keep-alive connections, PER_CONN requests each, all at once;
    returns the statuses seen."""
    statuses = []
    lock = threading.Lock()

    def one():
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        got = []
        for _ in range(PER_CONN):
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            got.append(r.status)
        c.close()
        with lock:
            statuses.extend(got)
    threads = [threading.Thread(target=one) for _ in range(CONNS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def _lines(srv, path):
    out = []
    for line in srv.log().splitlines():
        if line.startswith("{"):
            rec = json.loads(line)  # every line whole: none cut by a batch
            if rec.get("path") == path:
                out.append(rec)
    return out


def test_every_line_arrives_under_load_and_before_exit(thaw_factory, tmp_path):
    d = tmp_path / "w"
    write_worker(d, WORKER)
    srv = thaw_factory(d, "--max-instances", "2")
    statuses = _load(srv, "/load")
    assert statuses == [200] * (CONNS * PER_CONN)
    # written while thaw runs (once per loop iteration), not only at exit
    srv.wait_log('"path":"/load"')
    n = CONNS * PER_CONN
    for _ in range(100):
        if len(_lines(srv, "/load")) >= n:
            break
        srv.wait_log("never-in-the-log", timeout=0.05)
    running = _lines(srv, "/load")
    assert len(running) == n, f"{len(running)} lines for {n} requests while running"
    assert len({r["request"] for r in running}) == n, "a line twice, or one lost"
    assert all(r["status"] == 200 for r in running)
    srv.stop()
    assert len(_lines(srv, "/load")) == n, "lines lost or repeated at exit"


def test_access_log_off_writes_no_line(thaw_factory, tmp_path):
    d = tmp_path / "w"
    write_worker(d, WORKER)
    srv = thaw_factory(d, "--max-instances", "2", "--access-log", "off")
    assert _load(srv, "/quiet") == [200] * (CONNS * PER_CONN)
    srv.get("/marker-for-the-end")
    srv.stop()
    log = srv.log()
    assert not [l for l in log.splitlines() if l.startswith("{")], log[-2000:]
    assert "Traceback" not in log


def test_access_log_from_the_config_and_the_flag_wins(thaw_factory, tmp_path):
    d = tmp_path / "w"
    write_worker(d, WORKER, thaw={"access_log": False})
    srv = thaw_factory(d)
    for _ in range(5):
        assert srv.get("/cfg").status == 200
    srv.stop()
    assert _lines(srv, "/cfg") == []
    srv = thaw_factory(d, "--access-log", "on")
    for _ in range(5):
        assert srv.get("/cfg").status == 200
    srv.stop()
    assert len(_lines(srv, "/cfg")) == 5


def test_a_bad_access_log_value_is_refused(thaw_factory, tmp_path):
    d = tmp_path / "w"
    write_worker(d, WORKER, thaw={"access_log": "sometimes"})
    srv = thaw_factory(d, start=False)
    srv.spawn()
    assert not srv.wait_ready_or_exit()
    assert "access_log" in srv.log() and '"off" or "on"' in srv.log(), srv.log()


def test_thaw_serve_takes_access_log_off_from_its_command_line_only(tmp_path):
    """A server setting: under thaw serve the operator's flag decides, and
    a tenant's `thaw.access_log` is not used (it cannot hide its requests
    from the operator's log, nor turn on a log the operator turned off)."""
    from servelib import ThawServe, project
    srv = ThawServe(tmp_path / "state", tmp_path, ("--access-log", "off")).start()
    try:
        srv.cli("deploy", str(project(tmp_path, "quiet", "q", thaw={"access_log": True})))
        for _ in range(3):
            assert srv.host_get("quiet.localhost", "/serve-off").status == 200
    finally:
        srv.stop()
    assert not _lines(srv, "/serve-off"), srv.log()[-2000:]
    srv = ThawServe(tmp_path / "state2", tmp_path).start()
    try:
        srv.cli("deploy", str(project(tmp_path, "loud", "l", thaw={"access_log": False})))
        for _ in range(3):
            assert srv.host_get("loud.localhost", "/serve-on").status == 200
    finally:
        srv.stop()
    assert len(_lines(srv, "/serve-on")) == 3, srv.log()[-2000:]
