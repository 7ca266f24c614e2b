"""Observability (issue 4.4): a JSON line per request, worker output tagged
with the worker and the request, and /metrics on the admin address."""
import json
import re
import urllib.request

from thawlib import free_port

WORKER = '''
import logging, os
from urllib.parse import urlparse
from workers import WorkerEntrypoint, Response

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
log = logging.getLogger("app")
print("top-level print")

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        path = urlparse(request.url).path
        if path == "/talk":
            print("hello-from-print")
            log.warning("from-logging")
        if path == "/boom":
            raise ValueError("boom")
        return Response(str(os.getpid()))
'''


def _json_lines(srv):
    out = []
    for line in srv.log().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_one_json_line_per_request(serve):
    srv = serve(WORKER)
    srv.get("/a?secret=1")
    srv.get("/a")
    srv.get("/boom")
    srv.wait_log('"path":"/boom"')
    lines = _json_lines(srv)
    assert len(lines) == 3, lines
    first, second, third = lines
    for rec in lines:
        assert set(rec) >= {"time", "worker", "method", "path", "status", "duration_ms",
                            "start", "instance", "request"}, rec
        assert rec["worker"] == "test-worker" and rec["method"] == "GET"
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", rec["time"]), rec
    assert first["path"] == "/a", "the query string must not be logged"
    assert (first["status"], second["status"], third["status"]) == (200, 200, 500)
    assert first["start"] == "cold" and second["start"] == "warm", lines
    assert second["instance"] == first["instance"]


def test_print_and_logging_are_tagged_with_worker_and_request(serve):
    srv = serve(WORKER)
    srv.get("/talk")
    srv.wait_log("from-logging")
    log = srv.log()
    assert "[test-worker] top-level print" in log
    m = re.search(r"\[test-worker req=(\d+)\] hello-from-print", log)
    assert m, log
    assert re.search(rf"\[test-worker req={m.group(1)}\] WARNING from-logging", log), log
    rec = [r for r in _json_lines(srv) if r["path"] == "/talk"][0]
    assert rec["request"] == int(m.group(1)), "the log line and the output disagree"


def _metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.status == 200
        assert r.headers["content-type"].startswith("text/plain")
        return r.read().decode()


def test_metrics_on_the_admin_address(serve):
    admin = free_port()
    srv = serve(WORKER, args=("--admin", f"127.0.0.1:{admin}"))
    for _ in range(3):
        srv.get("/")
    srv.get("/boom")
    text = _metrics(admin)
    assert 'thaw_requests_total{worker="test-worker",status="200"} 3' in text, text
    assert 'thaw_requests_total{worker="test-worker",status="500"} 1' in text, text
    assert 'thaw_request_duration_seconds_count{worker="test-worker"} 4' in text
    assert 'thaw_request_duration_seconds_bucket{worker="test-worker",le="+Inf"} 4' in text
    assert 'thaw_starts_total{worker="test-worker",kind="fork"} 1' in text, text
    assert 'thaw_starts_total{worker="test-worker",kind="warm"} 3' in text, text
    assert 'thaw_starts_total{worker="test-worker",kind="template_build"} 1' in text
    assert re.search(r'thaw_instances\{worker="test-worker"\} [1-9]', text), text
    assert re.search(r'thaw_memory_bytes\{process="supervisor"\} [1-9]\d+', text), text
    # every sample line parses as Prometheus text: name{labels} value
    for line in text.splitlines():
        if line and not line.startswith("#"):
            assert re.match(r'^[a-z_]+\{[^}]*\} [0-9.e+-]+$', line), line
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/healthz", timeout=5) as r:
        assert r.read() == b"ok\n"
    assert srv.get("/").status == 200   # the admin port is not the worker's
