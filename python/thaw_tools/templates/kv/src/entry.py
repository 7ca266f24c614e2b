"""A key-value store over HTTP:

    curl -X PUT --data 'world' http://127.0.0.1:8787/hello
    curl http://127.0.0.1:8787/hello
    curl 'http://127.0.0.1:8787/?prefix=he'     # list the keys
    curl -X DELETE http://127.0.0.1:8787/hello

The values live in the KV namespace bound as KV (wrangler.toml)."""
import json
from urllib.parse import parse_qs, urlparse

from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlparse(request.url)
        key = url.path.lstrip("/")
        kv = self.env.KV
        if not key:
            prefix = parse_qs(url.query).get("prefix", [""])[0]
            listed = await kv.list(prefix=prefix)
            names = [k.name for k in listed.keys]
            return Response(f"{self.env.GREETING}! PUT /KEY stores the body, GET /KEY "
                            f"reads it back. Keys: {json.dumps(names)}\n")
        if request.method == "PUT":
            ttl = request.headers.get("x-ttl")  # seconds, at least 60
            options = {"expirationTtl": int(ttl)} if ttl else {}
            await kv.put(key, await request.bytes(), options)
            return Response("stored\n", status=201)
        if request.method == "DELETE":
            await kv.delete(key)
            return Response(None, status=204)
        value = await kv.get(key, "bytes")
        if value is None:
            return Response("not found\n", status=404)
        return Response(value)
