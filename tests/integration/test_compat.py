"""Compatibility dates and flags (issue 5.6) through the table in
src/config/compat.c: handler styles and request header commas."""
import datetime

from thawlib import write_worker

LEGACY = '''
from js import Response

async def on_fetch(request, env):
    return Response.new("legacy")
'''

HEADERS = '''
import json
from workers import WorkerEntrypoint, Response

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response(json.dumps([v for k, v in request.headers.items() if k == "x-list"]))
'''


def _serve_dated(tmp_path, thaw_factory, source, date, flags=()):
    d = tmp_path / "w"
    write_worker(d, source)
    cfg = d / "wrangler.toml"
    text = cfg.read_text().replace('compatibility_date = "2024-03-18"',
                                   f'compatibility_date = "{date}"')
    text = text.replace('compatibility_flags = ["python_workers"]',
                        "compatibility_flags = [" + ", ".join(f'"{f}"' for f in flags) + "]")
    cfg.write_text(text)
    return thaw_factory(d)


def test_old_date_calls_module_level_on_fetch(tmp_path, thaw_factory):
    srv = _serve_dated(tmp_path, thaw_factory, LEGACY, "2024-03-18")
    assert srv.get("/").text == "legacy"


def test_new_date_does_not_call_global_handlers(tmp_path, thaw_factory):
    srv = _serve_dated(tmp_path, thaw_factory, LEGACY, "2025-09-01")
    r = srv.get("/")
    assert r.status == 500, r
    assert "disable_python_no_global_handlers" in r.text and "class Default" in r.text


def test_disable_flag_brings_global_handlers_back(tmp_path, thaw_factory):
    srv = _serve_dated(tmp_path, thaw_factory, LEGACY, "2025-09-01",
                       flags=["disable_python_no_global_handlers"])
    assert srv.get("/").text == "legacy"


def test_header_commas_preserved_from_their_date(tmp_path, thaw_factory):
    srv = _serve_dated(tmp_path, thaw_factory, HEADERS, "2026-03-01")
    assert srv.get("/", headers={"X-List": "a, b"}).json() == ["a, b"]


def test_header_commas_split_before_their_date(tmp_path, thaw_factory):
    srv = _serve_dated(tmp_path, thaw_factory, HEADERS, "2024-03-18")
    assert srv.get("/", headers={"X-List": "a, b"}).json() == ["a", "b"]
    # and the flag turns it on for an old date
    srv.stop()
    srv2 = _serve_dated(tmp_path, thaw_factory, HEADERS, "2024-03-18",
                        flags=["python_request_headers_preserve_commas"])
    assert srv2.get("/", headers={"X-List": "a, b"}).json() == ["a, b"]


def _fails_to_start(tmp_path, thaw_factory, date, flags=()):
    d = tmp_path / "bad"
    write_worker(d, HEADERS)
    cfg = d / "wrangler.toml"
    cfg.write_text(cfg.read_text()
                   .replace('"2024-03-18"', f'"{date}"')
                   .replace('["python_workers"]', "[" + ", ".join(f'"{f}"' for f in flags) + "]"))
    srv = thaw_factory(d, start=False)
    srv.spawn()
    assert srv.proc.wait(timeout=15) != 0
    return srv.log()


def test_unknown_flag_is_a_config_error(tmp_path, thaw_factory):
    log = _fails_to_start(tmp_path, thaw_factory, "2024-03-18", ["python_workerz"])
    assert 'unknown compatibility flag "python_workerz"' in log and "wrangler.toml" in log


def test_future_date_is_a_config_error(tmp_path, thaw_factory):
    future = (datetime.datetime.now(datetime.timezone.utc).date()
              + datetime.timedelta(days=30)).isoformat()
    log = _fails_to_start(tmp_path, thaw_factory, future)
    assert "in the future" in log and future in log
