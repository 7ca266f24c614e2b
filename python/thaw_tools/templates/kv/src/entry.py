"""A key-value store over HTTP:

    curl -X PUT --data 'world' http://127.0.0.1:8787/hello
    curl http://127.0.0.1:8787/hello

The values live in the KV namespace bound as KV (wrangler.toml). thaw does
not provide KV bindings yet; until it does, this worker falls back to a
dict in the instance's memory (lost when the instance exits, and not shared
between instances), and says so in the `x-kv` response header."""
from urllib.parse import urlparse

from workers import Response, WorkerEntrypoint


class MemoryKV:
    """The part of the KV API this worker uses, in memory."""

    def __init__(self):
        self.data = {}

    async def get(self, key):
        return self.data.get(key)

    async def put(self, key, value):
        self.data[key] = value

    async def delete(self, key):
        self.data.pop(key, None)


_fallback = MemoryKV()


class Default(WorkerEntrypoint):
    def kv(self):
        try:
            return self.env.KV, "binding"
        except AttributeError:  # no KV binding in this runtime
            return _fallback, "memory"

    async def fetch(self, request):
        kv, kind = self.kv()
        key = urlparse(request.url).path.lstrip("/")
        headers = {"x-kv": kind}
        if not key:
            return Response(f"{self.env.GREETING}! PUT /KEY stores the body, "
                            f"GET /KEY reads it back (KV: {kind}).\n", headers=headers)
        if request.method == "PUT":
            await kv.put(key, await request.text())
            return Response("stored\n", status=201, headers=headers)
        if request.method == "DELETE":
            await kv.delete(key)
            return Response(None, status=204, headers=headers)
        value = await kv.get(key)
        if value is None:
            return Response("not found\n", status=404, headers=headers)
        return Response(value, headers=headers)
