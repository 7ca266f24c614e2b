"""The seeds' hello-world samples, unchanged, served by `thaw dev`."""
from pathlib import Path

SEED_TOML = '''name = "hello-world-python-worker"
main = "src/entry.py"
compatibility_date = "2024-03-18"
compatibility_flags = ["python_workers"]
'''

SEED_LEGACY = '''from js import Response

async def on_fetch(request, env):
    return Response.new("Hello world!")
'''

SEED_ENTRYPOINT = '''from workers import WorkerEntrypoint, Response

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("Hello world!")
'''


def _seed(d, source):
    d = Path(d)
    (d / "src").mkdir(parents=True)
    (d / "wrangler.toml").write_text(SEED_TOML)
    (d / "src" / "entry.py").write_text(source)


def test_seed_legacy_on_fetch_js_response(workdir, thaw_factory):
    _seed(workdir, SEED_LEGACY)
    srv = thaw_factory(workdir)
    r = srv.get("/")
    assert r.status == 200, r
    assert r.body == b"Hello world!"


def test_seed_worker_entrypoint(workdir, thaw_factory):
    _seed(workdir, SEED_ENTRYPOINT)
    srv = thaw_factory(workdir)
    r = srv.get("/")
    assert r.status == 200, r
    assert r.body == b"Hello world!"
    assert r.header("content-type") == "text/plain;charset=UTF-8"
    # any path is served by the same handler
    assert srv.get("/some/path?x=1").body == b"Hello world!"
