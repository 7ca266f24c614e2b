"""The binding call framework (src/bind/bind.c) under bad input from a
worker: data the supervisor cannot take fails that one call with a Python
exception; the instance lives on and serves the next request."""

WORKER = """
    from workers import Response, WorkerEntrypoint


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            import os
            if request.url.endswith("/surrogate"):
                try:
                    await self.env.DB.prepare("SELECT ? AS v").bind("\\ud800").first()
                except TypeError as e:
                    return Response(f"TypeError: {e}|{os.getpid()}")
                return Response("no error")
            if request.url.endswith("/toplevel"):
                return Response(TOPLEVEL_ERROR)
            row = await self.env.DB.prepare("SELECT ? AS v").bind("ok").first()
            return Response(f"{row['v']}|{os.getpid()}")


    try:
        import asyncio
        asyncio.new_event_loop().run_until_complete(
            Default.__dict__  # keep the import-time work trivial
            and __import__("workers")._bind.call("DB", "exec", {"sql": "SELECT 1"}))
        TOPLEVEL_ERROR = "no error"
    except RuntimeError as e:
        TOPLEVEL_ERROR = str(e)
"""

D1 = [{"binding": "DB", "database_name": "proto", "database_id": "proto"}]


def test_unencodable_arguments_fail_the_call_not_the_instance(serve):
    t = serve(WORKER, fmt="json", d1_databases=D1, thaw={"prefork": 0})
    r = t.get("/surrogate")
    assert r.status == 200, r.text
    assert r.text.startswith("TypeError: "), r.text
    assert "not valid JSON for thaw" in r.text or "surrogate" in r.text, r.text
    pid = r.text.rsplit("|", 1)[1]
    r = t.get("/")
    assert r.status == 200 and r.text == f"ok|{pid}", (r.text, pid)
    assert "broke the binding protocol" not in t.log()


def test_a_binding_at_top_level_says_to_move_it_into_the_handler(serve):
    t = serve(WORKER, fmt="json", d1_databases=D1)
    r = t.get("/toplevel")
    assert "not at the top level of the worker" in r.text, r.text
    assert "Move the call into the handler" in r.text
