"""FastAPI + Jinja2: a page rendered from a template with a value of the
worker's env, reached through the ASGI scope (`req.scope["env"]`)."""
import os

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from workers import WorkerEntrypoint
import asgi

# Relative to this file, not to the current directory, so the worker runs
# from wherever it is started.
templates = Jinja2Templates(directory=os.path.join(os.path.dirname(__file__), "templates"))

app = FastAPI()


@app.get("/", response_class=HTMLResponse)
async def index(req: Request, name: str = "world"):
    message = req.scope["env"].MESSAGE
    return templates.TemplateResponse(
        "index.html", {"request": req, "message": message, "name": name})


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await asgi.fetch(app, request.js_object, self.env)
