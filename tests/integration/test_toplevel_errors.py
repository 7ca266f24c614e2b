"""Errors at a worker's top level: thaw dev prints the traceback, keeps
watching, serves the error as 500 until the code is fixed. Also the
Cloudflare import rule: main's directory is on sys.path (`import x`, not
`import src.x`), and the error for the wrong form says so."""
import pytest

from thawlib import write_main, write_worker

GOOD = '''
    from workers import WorkerEntrypoint, Response

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            return Response("fixed and working")
'''

BROKEN = {
    "syntax": ('''
        from workers import WorkerEntrypoint, Response

        class Default(WorkerEntrypoint):
            async def fetch(self, request)
                return Response("missing colon")
    ''', "SyntaxError"),
    "import": ('''
        import thaw_no_such_module_xyz
        from workers import Response

        async def on_fetch(request, env):
            return Response("never")
    ''', "thaw_no_such_module_xyz"),
    "raise": ('''
        from workers import Response

        raise RuntimeError("toplevel-boom-5512")

        async def on_fetch(request, env):
            return Response("never")
    ''', "toplevel-boom-5512"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_top_level_served_as_500_until_fixed(workdir, thaw_factory, kind):
    source, needle = BROKEN[kind]
    write_worker(workdir, source)
    srv = thaw_factory(workdir)
    r = srv.get("/")
    assert r.status == 500, r
    log = srv.wait_log("Traceback", needle)
    assert needle in log, f"traceback not printed:\n{log}"
    assert "Traceback" in log or kind == "syntax", log
    assert srv.proc.poll() is None, "thaw exited instead of watching"
    assert srv.get("/").status == 500   # still the error, still serving
    write_main(workdir, GOOD)
    srv.poll_until(lambda r: r.status == 200 and r.body == b"fixed and working")


def test_good_code_broken_by_edit_then_fixed(workdir, thaw_factory):
    write_worker(workdir, GOOD.replace("fixed and working", "v1"))
    srv = thaw_factory(workdir)
    assert srv.get("/").body == b"v1"
    write_main(workdir, BROKEN["syntax"][0])
    srv.poll_until(lambda r: r.status == 500)
    assert "SyntaxError" in srv.wait_log("SyntaxError")
    write_main(workdir, GOOD)
    srv.poll_until(lambda r: r.status == 200 and r.body == b"fixed and working")


def test_sibling_module_imported_plainly(serve):
    srv = serve('''
        import helper
        from workers import WorkerEntrypoint, Response

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response(helper.greet())
    ''', files={"src/helper.py": '''
        def greet():
            return "hello from helper"
    '''})
    r = srv.get("/")
    assert (r.status, r.body) == (200, b"hello from helper"), r


def test_import_with_src_prefix_gets_hint(serve):
    srv = serve('''
        import src.helper
        from workers import WorkerEntrypoint, Response

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response(src.helper.greet())
    ''', files={"src/helper.py": '''
        def greet():
            return "hello from helper"
    '''})
    r = srv.get("/")
    assert r.status == 500, r
    hints = ("sys.path", "import helper")
    text = r.text + srv.wait_log(*hints, any_=True)
    assert "sys.path" in text or "import helper" in text, \
        f"no hint about the import form:\nbody: {r.text}\nlog: {srv.log()}"
