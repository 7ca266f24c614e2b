"""`deleted_classes` (issue 18 point 1): when the migration that deletes
a class first applies (the version that holds it builds ready), the data
of the class's objects is deleted; other classes keep theirs, and a class
created again under the name starts empty. Through the real thaw dev,
restarted with each new config."""

from thawlib import write_worker

WORKER = """
    from urllib.parse import urlparse, parse_qs
    from workers import DurableObject, Response, WorkerEntrypoint


    class Box(DurableObject):
        async def fetch(self, request):
            if request.method == "PUT":
                await self.ctx.storage.put("v", await request.text())
                await self.ctx.storage.setAlarm(9e12)  # far away: never due here
            return Response(str(await self.ctx.storage.get("v")))


    Keep = Old = Box


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            q = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
            ns = getattr(self.env, q["ns"], None)
            if ns is None:
                return Response("no binding " + q["ns"], status=404)
            return await ns.getByName("x").fetch(request)
"""


def config(*migrations, bound=("KEEP", "OLD")):
    classes = {"KEEP": "Keep", "OLD": "Old"}
    return dict(durable_objects={"bindings": [{"name": b, "class_name": classes[b]}
                                              for b in bound]},
                migrations=list(migrations))


V1 = {"tag": "v1", "new_sqlite_classes": ["Keep", "Old"]}
V2 = {"tag": "v2", "deleted_classes": ["Old"]}
V3 = {"tag": "v3", "new_sqlite_classes": ["Old"]}


def test_deleted_classes_delete_their_objects_data(workdir, thaw_factory):
    do_dir = workdir / ".thaw" / "state" / "do"
    write_worker(workdir, WORKER, fmt="json", name="do-deleted", **config(V1))
    srv = thaw_factory(workdir)
    for ns in ("KEEP", "OLD"):
        r = srv.request("PUT", f"/?ns={ns}", body=b"kept-" + ns.encode())
        assert r.status == 200, r.text
    before = {p.parent.name for p in do_dir.glob("*/*.sqlite")}
    assert len(before) == 2, before
    srv.stop()

    write_worker(workdir, WORKER, fmt="json", name="do-deleted", **config(V1, V2, bound=("KEEP",)))
    srv = thaw_factory(workdir)
    assert srv.get("/?ns=KEEP").text == "kept-KEEP"
    srv.wait_log('migration "v2" deleted a Durable Object class: the data of its 1 object '
                 'is deleted')
    after = {p.parent.name for p in do_dir.glob("*/*.sqlite")}
    assert len(after) == 1 and after < before, (before, after)
    srv.stop()

    # created again under the same name: a new class, empty; a restart
    # deletes nothing more (v2 applied already)
    write_worker(workdir, WORKER, fmt="json", name="do-deleted", **config(V1, V2, V3))
    srv = thaw_factory(workdir)
    assert srv.get("/?ns=OLD").text == "None"
    assert srv.get("/?ns=KEEP").text == "kept-KEEP"
    assert "deleted a Durable Object class" not in srv.log()
