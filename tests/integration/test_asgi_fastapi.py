"""FastAPI (Debian's python3-fastapi) through asgi.fetch and the real
binary: docs, path parameters, JSON bodies, Depends, BackgroundTasks,
StreamingResponse, Jinja2 templates; and the examples/ FastAPI workers."""
import socket
import time
from pathlib import Path

import pytest

from thawlib import REPO

WORKER = '''
    import asyncio, os
    from fastapi import BackgroundTasks, Depends, FastAPI, Header, Request
    from fastapi.responses import HTMLResponse, StreamingResponse
    from fastapi.templating import Jinja2Templates
    from pydantic import BaseModel
    from workers import WorkerEntrypoint
    import asgi

    MARKS = @MARKS@
    templates = Jinja2Templates(directory=os.path.join(os.path.dirname(__file__), "templates"))
    app = FastAPI(title="thaw-fastapi-test")


    class Item(BaseModel):
        name: str
        price: float
        tags: list[str] = []


    def env_of(request: Request):
        return request.scope["env"]


    def current_user(x_user: str = Header("anonymous"), env=Depends(env_of)):
        return {"user": x_user, "team": env.TEAM}


    @app.get("/items/{item_id}")
    async def read_item(item_id: int, q: str | None = None):
        return {"item_id": item_id, "q": q}


    @app.post("/items", status_code=201)
    async def create_item(item: Item):
        return {"name": item.name, "total": item.price * 2, "tags": item.tags}


    @app.get("/me")
    def me(user=Depends(current_user)):  # a sync endpoint runs in a thread
        return user


    def write_mark(name, text):
        with open(os.path.join(MARKS, name), "w") as f:
            f.write(text)


    @app.post("/jobs/{name}")
    async def job(name: str, background: BackgroundTasks):
        background.add_task(write_mark, "job-" + name, "done-" + name)
        return {"queued": name}


    @app.get("/stream")
    async def stream():
        async def numbers():
            for i in range(5):
                yield "n=%d\\n" % i
                await asyncio.sleep(0.01)
            path = os.path.join(MARKS, "client-got-first")
            for _ in range(500):
                if os.path.exists(path):
                    break
                await asyncio.sleep(0.02)
            yield "end\\n"
        return StreamingResponse(numbers(), media_type="text/plain")


    @app.get("/page/{name}", response_class=HTMLResponse)
    async def page(request: Request, name: str):
        return templates.TemplateResponse(
            "page.html", {"request": request, "name": name, "team": request.scope["env"].TEAM})


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            return await asgi.fetch(app, request.js_object, self.env)
'''

TEMPLATE = """<html><body><h1>Hello {{ name }}</h1><p>team {{ team }}</p></body></html>
"""

SEED_SAMPLE = '''from fastapi import FastAPI
from workers import WorkerEntrypoint
import asgi

app = FastAPI()

@app.get("/")
async def root():
   return {"message": "This is FastAPI on Workers"}

class Default(WorkerEntrypoint):
   async def fetch(self, request):
       return await asgi.fetch(app, request.js_object, self.env)
'''


@pytest.fixture
def marks(tmp_path):
    d = tmp_path / "marks"
    d.mkdir()
    return d


@pytest.fixture
def srv(serve, marks):
    return serve(WORKER.replace("@MARKS@", repr(str(marks))),
                 files={"src/templates/page.html": TEMPLATE}, vars={"TEAM": "blue"})


def test_docs_page_and_openapi(srv):
    r = srv.get("/docs")
    assert r.status == 200, r
    assert r.header("content-type").startswith("text/html")
    assert "swagger-ui" in r.text.lower()
    spec = srv.get("/openapi.json").json()
    assert spec["info"]["title"] == "thaw-fastapi-test"
    assert "/items/{item_id}" in spec["paths"]
    assert "post" in spec["paths"]["/items"]


def test_path_and_query_parameters(srv):
    assert srv.get("/items/42?q=blue").json() == {"item_id": 42, "q": "blue"}
    assert srv.get("/items/7").json() == {"item_id": 7, "q": None}
    r = srv.get("/items/not-a-number")
    assert r.status == 422, r
    assert srv.get("/nowhere").status == 404


def test_json_body(srv):
    r = srv.request("POST", "/items", body=b'{"name": "pen", "price": 1.5, "tags": ["a"]}',
                    headers={"content-type": "application/json"})
    assert r.status == 201, r
    assert r.json() == {"name": "pen", "total": 3.0, "tags": ["a"]}
    r = srv.request("POST", "/items", body=b'{"name": "pen"}',
                    headers={"content-type": "application/json"})
    assert r.status == 422, r
    assert r.json()["detail"][0]["loc"] == ["body", "price"]


def test_dependency_injection_with_env(srv):
    assert srv.get("/me", headers={"x-user": "ada"}).json() == {"user": "ada", "team": "blue"}
    assert srv.get("/me").json() == {"user": "anonymous", "team": "blue"}


def test_background_task_runs_after_response(srv, marks):
    r = srv.request("POST", "/jobs/report")
    assert r.status == 200, r
    assert r.json() == {"queued": "report"}
    done = marks / "job-report"
    deadline = time.monotonic() + 10
    while not done.exists():
        assert time.monotonic() < deadline, f"background task never ran\n{srv.log()[-2000:]}"
        time.sleep(0.05)
    assert done.read_text() == "done-report"


def test_streaming_response_flows_while_generating(srv, marks):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
    try:
        s.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        assert b" 200 " in f.readline()
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += f.readline()
        assert b"chunked" in head.lower()
        got = b""
        while b"n=0\n" not in got:
            size = f.readline()
            assert size, "closed before the first chunk"
            got += f.read(int(size.split(b";")[0], 16))
            f.readline()
        (marks / "client-got-first").touch()
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                break
            got += f.read(size)
            f.readline()
    finally:
        s.close()
    assert got == b"n=0\nn=1\nn=2\nn=3\nn=4\nend\n"


def test_jinja2_template(srv):
    r = srv.get("/page/world")
    assert r.status == 200, r
    assert r.header("content-type").startswith("text/html")
    assert "<h1>Hello world</h1>" in r.text
    assert "team blue" in r.text


def test_example_fastapi_is_the_seed_sample(thaw_factory):
    d = REPO / "examples" / "fastapi"
    assert (d / "src" / "entry.py").read_text() == SEED_SAMPLE
    srv = thaw_factory(d)
    r = srv.get("/")
    assert r.status == 200, r
    assert r.json() == {"message": "This is FastAPI on Workers"}
    assert srv.get("/docs").status == 200


def test_example_fastapi_jinja_reads_env_message(thaw_factory):
    d = REPO / "examples" / "fastapi-jinja"
    srv = thaw_factory(d)
    r = srv.get("/?name=thaw")
    assert r.status == 200, r
    assert r.header("content-type").startswith("text/html")
    assert "Hello from FastAPI and Jinja2 on thaw" in r.text  # env.MESSAGE
    assert "Hello, thaw!" in r.text
