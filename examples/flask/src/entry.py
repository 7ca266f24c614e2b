"""A Flask app served through WSGI: one GET page and one POST form."""
from flask import Flask, request
from markupsafe import escape
from workers import WorkerEntrypoint, wsgi

app = Flask(__name__)


@app.get("/")
def index():
    # the worker's env, as wsgi.fetch put it in the environ
    env = request.environ["workers.env"]
    return f"{env.MESSAGE}\n", {"content-type": "text/plain"}


@app.get("/greet")
def greet_form():
    return ('<form method="post" action="/greet">'
            '<input name="name"> <button>Greet</button></form>\n')


@app.post("/greet")
def greet():
    return f"<p>Hello, {escape(request.form.get('name', ''))}!</p>\n"


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await wsgi.fetch(app, request, self.env)
