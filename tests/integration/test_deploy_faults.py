"""A refused deploy says whose fault it is (issue 15, item 7): the
worker's config (400 naming the file and key; none of its code ran), the
worker's code (422 with its traceback), or thaw itself (500 "internal
error", the details in thaw's log, never blamed on the worker)."""
import os
import shutil
import signal
import sys
import time

import pytest

import servelib
from servelib import serve_factory  # noqa: F401 (fixture)
from thawlib import REPO, THAW, proc_comm, proc_descendants, write_worker

sys.path.insert(0, str(REPO / "python"))
from thaw_tools.remote import bundle  # noqa: E402

HELLO = '''
from workers import Response, WorkerEntrypoint

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("{body}")
'''


def _put(srv, root, name, source, **cfg):
    d = root / name
    if d.exists():
        shutil.rmtree(d)
    write_worker(d, source, name=name, **cfg)
    data, _ = bundle(str(d))
    return srv.api("PUT", f"/v1/workers/{name}", body=data)


def _wait(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def test_a_bad_binding_id_is_a_config_error(serve_factory, tmp_path):
    srv = serve_factory()
    assert _put(srv, tmp_path, "app", HELLO.format(body="v1"))[0] == 200
    status, doc = _put(srv, tmp_path, "app", HELLO.format(body="v2"),
                       kv_namespaces=[{"binding": "KV", "id": 5}], fmt="json")
    assert status == 400, doc
    assert doc["error"].startswith("wrangler.json: kv_namespaces[0]"), doc
    assert "`id`" in doc["error"] and "traceback" not in doc, doc
    assert srv.host_get("app.localhost").text == "v1"


def test_a_main_that_is_no_module_name_is_a_config_error(serve_factory, tmp_path):
    srv = serve_factory()
    status, doc = _put(srv, tmp_path, "app", HELLO.format(body="x"), main="src/my-entry.py")
    assert status == 400, doc
    assert doc["error"].startswith("wrangler.toml: `main` is src/my-entry.py"), doc
    assert "traceback" not in doc, doc


def test_the_worker_s_own_failure_is_422_with_its_traceback(serve_factory, tmp_path):
    srv = serve_factory()
    status, doc = _put(srv, tmp_path, "app", "raise RuntimeError('boom-7781')\n"
                       + HELLO.format(body="x"))
    assert status == 422, doc
    assert doc["error"].startswith("the worker's top level failed"), doc
    assert "boom-7781" in doc["traceback"] and "Traceback" in doc["traceback"], doc


@pytest.fixture
def own_thaw(tmp_path, monkeypatch):
    """A copy of thaw's executables in a directory of the test's own, so
    the test may take its zygote away."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for exe in THAW.parent.iterdir():
        if exe.is_file() and exe.name.startswith("thaw"):
            shutil.copy2(exe, bindir / exe.name)
    monkeypatch.setattr(servelib, "THAW", bindir / "thaw")
    monkeypatch.setenv("THAW_PYTHON_DIR", str(REPO / "python"))
    return bindir


@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_thaw_s_own_failure_is_500_internal_error(serve_factory, tmp_path, own_thaw, fmt):
    srv = serve_factory()
    assert _put(srv, tmp_path, "app", HELLO.format(body="v1"))[0] == 200
    # the zygote goes, and cannot be started again: thaw's trouble, not the worker's
    (own_thaw / "thaw-zygote").unlink()
    zygotes = [p for p in proc_descendants(srv.proc.pid) if proc_comm(p) == "thaw-zygote"]
    assert zygotes
    for pid in zygotes:
        os.kill(pid, signal.SIGKILL)
    assert _wait(lambda: "the zygote could not be started" in srv.log()), srv.log()[-2000:]
    # a TOML config is read by the zygote; a JSON one by thaw, then the build
    # needs the zygote
    status, doc = _put(srv, tmp_path, "app", HELLO.format(body="v2"), fmt=fmt)
    assert status == 500, doc
    assert doc["error"].startswith("internal error"), doc
    assert "traceback" not in doc and "top level" not in doc["error"], doc
    assert "zygote" not in doc["error"], doc  # the details are the log's
    assert "internal error during the deploy of version 2" in srv.log(), srv.log()[-2000:]
    assert "zygote is not running" in srv.log(), srv.log()[-2000:]
    assert srv.host_get("app.localhost").text == "v1"


RAISE_IF_MARKED = '''
import os
if os.path.exists(os.path.join(os.path.dirname(__file__), "..", "broken")):
    raise RuntimeError("the key is sk-5521")
''' + HELLO.format(body="fine")


def test_a_stored_worker_that_fails_at_start_tells_its_clients_only_that(
        serve_factory, tmp_path):
    # deployed fine; at the next start its top level raises (a file it
    # reads is gone, a secret it needs expired). Its clients are the
    # public: they get a 500 saying it could not start, not its traceback
    # (which may hold what the worker knows); its owner reads that in the
    # admin API and the log
    state = tmp_path / "state"
    srv = serve_factory(state=state)
    assert _put(srv, tmp_path, "app", RAISE_IF_MARKED)[0] == 200
    srv.stop()
    (state / "workers" / "app" / "versions" / "1" / "broken").write_text("")
    srv.start()
    assert _wait(lambda: srv.api("GET", "/v1/workers/app")[1]["state"] == "failed")
    r = srv.host_get("app.localhost")
    assert r.status == 500, r
    assert "worker 'app' could not start (its top level failed)" in r.text, r.text
    assert "sk-5521" not in r.text and "Traceback" not in r.text, r.text
    doc = srv.api("GET", "/v1/workers/app")[1]
    assert "sk-5521" in doc["error"] and "Traceback" in doc["error"], doc
    assert "sk-5521" in srv.log()


def test_a_store_thaw_cannot_create_is_thaw_s_fault_not_the_config_s(
        serve_factory, tmp_path):
    # the config is fine; the disk is not (here: a file where the KV
    # directory goes). That is a 500 "internal error" with the details in
    # thaw's log, not a 400 telling the worker's owner to fix their config
    state = tmp_path / "state"
    srv = serve_factory(state=state)
    kv = [{"binding": "KV", "id": "k1"}]
    assert _put(srv, tmp_path, "app", HELLO.format(body="v1"), fmt="json",
                kv_namespaces=kv)[0] == 200
    [store] = list(state.rglob("*.sqlite"))
    kvdir = store.parent
    shutil.rmtree(kvdir)
    kvdir.write_text("not a directory")
    status, doc = _put(srv, tmp_path, "app", HELLO.format(body="v2"), fmt="json",
                       kv_namespaces=[{"binding": "KV", "id": "k2"}])
    assert status == 500, doc
    assert doc["error"].startswith("internal error"), doc
    assert "kv_namespaces" not in doc["error"], doc
    assert "thaw could not build it" in srv.log() and 'KV binding "KV"' in srv.log(), \
        srv.log()[-2000:]
    assert srv.host_get("app.localhost").text == "v1"
