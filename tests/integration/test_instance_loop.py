"""The instance's machinery, seen from a worker, sandboxed as deployed:
uvloop runs it, asyncio keeps its C tasks (thaw's C module must not make
asyncio fall back to its Python ones), handlers run as eager tasks, and
FastAPI's thread-pool endpoints (anyio, sniffio) find their loop."""
import json

SANDBOX = True


def test_loop_tasks_and_eager_handlers(serve):
    srv = serve('''
        import asyncio, sys
        from workers import WorkerEntrypoint, Response

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                task = asyncio.current_task()
                first = type(task).__module__
                await asyncio.sleep(0)
                return Response.json({
                    "loop": type(asyncio.get_running_loop()).__module__,
                    "task": first,
                    "same_task": asyncio.current_task() is task,
                    "c_tasks": asyncio.Task is __import__("_asyncio").Task,
                    "eager": type(task.get_coro()).__name__,
                })
    ''')
    r = srv.get("/")
    assert r.status == 200, (r, srv.log()[-2000:])
    assert json.loads(r.body) == {"loop": "uvloop", "task": "_asyncio", "same_task": True,
                                  "c_tasks": True, "eager": "Eager"}


def test_fastapi_sync_endpoint_and_dependency_in_a_thread(serve):
    srv = serve('''
        import threading
        from fastapi import Depends, FastAPI, Header
        from workers import WorkerEntrypoint
        import asgi

        app = FastAPI()

        def user(x_user: str = Header("anonymous")):
            return x_user

        @app.get("/me")
        def me(name=Depends(user)):
            return {"user": name, "thread": threading.current_thread() is not
                    threading.main_thread()}

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return await asgi.fetch(app, request.js_object, self.env)
    ''')
    for _ in range(3):
        r = srv.get("/me", headers={"x-user": "ada"})
        assert r.status == 200, (r, srv.log()[-3000:])
        assert json.loads(r.body) == {"user": "ada", "thread": True}
