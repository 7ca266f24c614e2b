"""Durable Objects' config (issue 18, stage A): `durable_objects.bindings`
and `migrations` are checked at deploy as Cloudflare checks them. A config
error is 400 naming the file, the key and the fix, with none of the
worker's code run; a class the migrations create but the module does not
define is found after its top level ran: 422, the worker's code. One
`thaw serve` takes every deploy of this module."""
import json
import shutil
import sys

import pytest

from servelib import ThawServe
from thawlib import REPO, write_worker

sys.path.insert(0, str(REPO / "python"))
from thaw_tools.remote import bundle  # noqa: E402

WORKER = """
from workers import DurableObject, Response, WorkerEntrypoint

class Counter(DurableObject):
    pass

class Room(DurableObject):
    pass

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("{body} " + str(self.env.COUNTER.idFromName("a"))[:8])
"""

BIND = {"bindings": [{"name": "COUNTER", "class_name": "Counter"}]}
MIGRATE = [{"tag": "v1", "new_sqlite_classes": ["Counter"]}]


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    root = tmp_path_factory.mktemp("do-serve")
    s = ThawServe(root / "state", root)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def deploy(srv, tmp_path):
    def put(name, source=WORKER, body="v1", **cfg):
        d = tmp_path / name
        if d.exists():
            shutil.rmtree(d)
        cfg.setdefault("durable_objects", BIND)
        cfg.setdefault("migrations", MIGRATE)
        write_worker(d, source.replace("{body}", body), name=name, fmt="json", **cfg)
        data, _ = bundle(str(d))
        return srv.api("PUT", f"/v1/workers/{name}", body=data)
    return put


def _ok(res):
    status, doc = res
    assert status == 200, doc
    return doc


def _refused(res, status, *needles):
    got, doc = res
    assert got == status, doc
    text = doc["error"] + doc.get("traceback", "")
    for n in needles:
        assert n in text, f"{n!r} not in: {text}"
    return doc


def test_a_counter_as_cloudflare_documents_it_deploys(srv, deploy):
    _ok(deploy("counter"))
    r = srv.host_get("counter.localhost")
    assert r.status == 200 and r.text.startswith("v1 "), r
    # the binding is run now: no "accepted but not run" line for it
    assert "durable_objects` is accepted but not run" not in srv.log()


@pytest.mark.parametrize("cfg, needles", [
    # bound, never migrated: Cloudflare's code 10061
    (dict(migrations=None), ["wrangler.json: durable_objects.bindings[0] (\"COUNTER\")",
                             "class \"Counter\", which no migration creates",
                             "new_sqlite_classes = [\"Counter\"]"]),
    (dict(migrations=[{"tag": "v1", "new_sqlite_classes": ["Room"]}]),
     ["bindings[0]", "no migration creates", "tag = \"v2\""]),
    # bound after the class was deleted, or renamed away
    (dict(migrations=MIGRATE + [{"tag": "v2", "deleted_classes": ["Counter"]}]),
     ["bindings[0]", "migration \"v2\" deleted or renamed away"]),
    (dict(migrations=MIGRATE + [{"tag": "v2", "renamed_classes": [
        {"from": "Counter", "to": "Room"}]}]),
     ["bindings[0]", "\"Counter\"", "migration \"v2\""]),
    # tags
    (dict(migrations=MIGRATE + [{"tag": "v1", "new_classes": ["Room"]}]),
     ["migrations[1]: tag \"v1\" is the tag of migrations[0] too", "unique"]),
    (dict(migrations=[{"new_sqlite_classes": ["Counter"]}]),
     ["migrations[0]: `tag` must be a non-empty string", "\"v1\""]),
    (dict(migrations=[{"tag": "", "new_sqlite_classes": ["Counter"]}]), ["`tag`"]),
    # steps that cannot apply
    (dict(migrations=MIGRATE + [{"tag": "v2", "new_classes": ["Counter"]}]),
     ["migrations[1] (tag \"v2\"): `new_classes` creates class \"Counter\"",
      "migration \"v1\" already created"]),
    (dict(migrations=MIGRATE + [{"tag": "v2", "renamed_classes": [
        {"from": "Nope", "to": "Room"}]}]),
     ["migrations[1] (tag \"v2\"): `renamed_classes` names class \"Nope\"",
      "no earlier migration created"]),
    (dict(migrations=[{"tag": "v1", "new_sqlite_classes": ["Counter", "Room"]},
                      {"tag": "v2", "renamed_classes": [{"from": "Room", "to": "Counter"}]}]),
     ["`renamed_classes` renames \"Room\" to \"Counter\", which already exists"]),
    (dict(migrations=MIGRATE + [{"tag": "v2", "deleted_classes": ["Room"]}]),
     ["`deleted_classes` names class \"Room\", which no earlier migration created"]),
    (dict(migrations=MIGRATE + [{"tag": "v2", "transferred_classes": [
        {"from": "X", "from_script": "other", "to": "Room"}]}]),
     ["`transferred_classes`", "another worker", "thaw does not run yet"]),
    # shapes
    (dict(migrations={"tag": "v1"}), ["`migrations` must be an array"]),
    (dict(migrations=["v1"]), ["migrations[0] must be a table"]),
    (dict(migrations=[{"tag": "v1", "new_sqlite_classes": "Counter"}]),
     ["`new_sqlite_classes` must be an array of class names"]),
    (dict(migrations=[{"tag": "v1", "renamed_classes": ["Counter"]}]),
     ["`renamed_classes` must be an array of tables", "from = "]),
    (dict(durable_objects={"bindings": {"name": "COUNTER"}}),
     ["`durable_objects.bindings` must be an array"]),
    (dict(durable_objects=[]), ["`durable_objects` must be a table"]),
    (dict(durable_objects={"bindings": [{"class_name": "Counter"}]}),
     ["durable_objects.bindings[0]: `name` must be a string"]),
    (dict(durable_objects={"bindings": [{"name": "COUNTER"}]}),
     ["durable_objects.bindings[0] (\"COUNTER\"): `class_name` must be a string"]),
    (dict(durable_objects={"bindings": [{"name": "C", "class_name": "Counter"},
                                        {"name": "C", "class_name": "Counter"}]}),
     ["durable_objects.bindings[1]: two bindings are named \"C\""]),
    # another worker's class: what it names must be a worker (the grant is
    # test_do_script_name.py's)
    (dict(durable_objects={"bindings": [{"name": "COUNTER", "class_name": "Counter",
                                         "script_name": 5}]}),
     ["durable_objects.bindings[0] (\"COUNTER\"): `script_name` must be a string"]),
    # the same name as a KV binding
    (dict(kv_namespaces=[{"binding": "COUNTER", "id": "abc"}]),
     ["two bindings are named \"COUNTER\""]),
])
def test_config_errors_are_400_and_say_what_to_fix(srv, deploy, cfg, needles):
    if cfg.get("migrations", 0) is None:
        cfg = dict(cfg)
        del cfg["migrations"]
        res = deploy("bad", migrations=[])
    else:
        res = deploy("bad", **cfg)
    doc = _refused(res, 400, *needles)
    assert "traceback" not in doc, doc


def test_script_name_of_the_worker_itself_is_its_own_class(srv, deploy):
    _ok(deploy("self-bound", durable_objects={"bindings": [
        {"name": "COUNTER", "class_name": "Counter", "script_name": "self-bound"}]}))
    assert srv.host_get("self-bound.localhost").text.startswith("v1 ")


@pytest.mark.parametrize("source, needles", [
    (WORKER.replace("class Counter(DurableObject):\n    pass\n", ""),
     ["src/entry.py defines no class Counter", "migration \"v1\" creates it",
      "binding COUNTER uses it", "class Counter(DurableObject)"]),
    (WORKER.replace("class Counter(DurableObject):", "class Counter:"),
     ["Counter is a class but not a Durable Object class", "class Counter(DurableObject)"]),
    (WORKER.replace("class Counter(DurableObject):\n    pass\n", "Counter = 5\n"),
     ["Counter is int but not a Durable Object class"]),
])
def test_a_class_the_module_does_not_define_is_422(srv, deploy, source, needles):
    _ok(deploy("exports", body="good"))
    _refused(deploy("exports", source=source, body="bad"), 422, *needles)
    # a migrated class nobody binds must be defined too
    _refused(deploy("exports", source=source, body="bad", durable_objects={"bindings": []}),
             422, "defines" if "defines" in needles[0] else "Counter")
    assert srv.host_get("exports.localhost").text.startswith("good "), "old version kept"


def test_applied_migrations_must_stay_in_the_list(srv, deploy):
    two = MIGRATE + [{"tag": "v2", "new_classes": ["Room"]}]
    three = two + [{"tag": "v3", "new_classes": ["Gone"]}]
    first = _ok(deploy("tags"))["version"]
    _ok(deploy("tags", migrations=two))
    # a rollback to a version from before a migration is refused the same way
    status, doc = srv.api("POST", "/v1/workers/tags/rollback",
                          body=json.dumps({"version": first}).encode())
    assert status == 400 and "no longer holds tag \"v2\"" in doc["error"], doc
    # a build that fails applies nothing: v3 is not recorded
    _refused(deploy("tags", migrations=three), 422, "defines no class Gone")
    _ok(deploy("tags", migrations=two, body="v2"))
    # dropping an applied migration is refused; the serving version stays
    doc = _refused(deploy("tags", migrations=MIGRATE, body="v3"), 400,
                   "wrangler.json: `migrations` no longer holds tag \"v2\"",
                   "keep the applied ones")
    assert "traceback" not in doc
    assert srv.host_get("tags.localhost").text.startswith("v2 ")
    # Cloudflare keeps only the last applied tag: earlier ones may be squashed
    _ok(deploy("tags", migrations=[{"tag": "v2", "new_sqlite_classes": ["Counter"],
                                    "new_classes": ["Room"]}], body="v4"))


def test_thaw_dev_names_the_error_too(workdir, thaw_factory):
    write_worker(workdir, WORKER.replace("{body}", "dev"), fmt="toml",
                 durable_objects={"bindings": [{"name": "COUNTER", "class_name": "Counter"}]})
    srv = thaw_factory(workdir, start=False)
    srv.spawn()
    if srv.wait_ready_or_exit():
        r = srv.get("/")
        assert r.status == 500, r
        text = r.text + srv.log()
    else:
        assert srv.proc.returncode != 0
        text = srv.output()
    assert "wrangler.toml: durable_objects.bindings[0] (\"COUNTER\")" in text, text
    assert "no migration creates" in text, text


def test_keys_thaw_does_not_know_are_logged_once(workdir, thaw_factory):
    write_worker(workdir, WORKER.replace("{body}", "dev"), fmt="json",
                 durable_objects={"bindings": [{"name": "COUNTER", "class_name": "Counter",
                                                "colour": "red"}], "extra": 1},
                 migrations=[{"tag": "v1", "new_sqlite_classes": ["Counter", "Room"],
                              "when": "now"}])
    srv = thaw_factory(workdir)
    assert srv.get("/").text.startswith("dev "), srv.log()
    log = srv.log()
    for needle in ("durable_objects.bindings[0]: `colour` is not a key thaw knows",
                   "`durable_objects.extra` is not a key thaw knows",
                   "migrations[0] (tag \"v1\"): `when` is not a migration key thaw knows"):
        assert log.count(needle) == 1, (needle, log)


COUNTER = """
from workers import DurableObject, Response, WorkerEntrypoint

class Counter(DurableObject):
    async def increment(self):
        value = (await self.ctx.storage.get("value")) or 0
        await self.ctx.storage.put("value", value + 1)
        return value + 1

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("{body} " + str(await self.env.COUNTER.getByName("x").increment()))
"""


def test_objects_run_under_thaw_serve_and_keep_their_storage_across_deploys(srv, deploy):
    _ok(deploy("served", source=COUNTER, body="a"))
    assert [srv.host_get("served.localhost").text for _ in range(2)] == ["a 1", "a 2"]
    _ok(deploy("served", source=COUNTER, body="b"))
    assert srv.host_get("served.localhost").text == "b 3"
    files = list((srv.state).rglob("do/*/*.sqlite"))
    assert len(files) == 1, files


def test_a_deleted_worker_s_objects_go_with_it(srv, deploy):
    _ok(deploy("gone", source=COUNTER, body="a"))
    assert [srv.host_get("gone.localhost").text for _ in range(2)] == ["a 1", "a 2"]
    status, doc = srv.api("DELETE", "/v1/workers/gone")
    assert status in (200, 204), doc
    # a new worker of that name starts from nothing, and what it writes is
    # in its own file (none of the old one's is held open)
    _ok(deploy("gone", source=COUNTER, body="b"))
    assert srv.host_get("gone.localhost").text == "b 1"
    assert srv.host_get("gone.localhost").text == "b 2"
    db = next(p for p in srv.state.rglob("do/*/*.sqlite") if "gone" in str(p))
    import sqlite3
    rows = sqlite3.connect(db).execute("SELECT key, value FROM _cf_KV").fetchall()
    assert rows == [("value", "2")], rows
