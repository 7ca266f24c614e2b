"""Notes in a KV namespace:

    curl -X PUT --data 'buy milk' http://127.0.0.1:8787/notes/todo
    curl -X PUT --data 'temporary' 'http://127.0.0.1:8787/notes/tmp?ttl=120'
    curl http://127.0.0.1:8787/notes/todo
    curl http://127.0.0.1:8787/notes            # names, sizes, expirations
    curl -X DELETE http://127.0.0.1:8787/notes/todo
    curl http://127.0.0.1:8787/stats            # a JSON value
"""
import json
import time
from urllib.parse import parse_qs, urlparse

from workers import Response, WorkerEntrypoint

PREFIX = "note:"


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlparse(request.url)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        notes = self.env.NOTES
        if url.path == "/notes":
            return Response.json(await self.list_notes(notes, query.get("cursor")))
        if url.path == "/stats":
            return Response.json(await notes.get("stats", "json") or {"writes": 0})
        if not url.path.startswith("/notes/") or url.path == "/notes/":
            return Response("PUT, GET or DELETE /notes/NAME; GET /notes lists them\n")
        name = url.path[len("/notes/"):]
        if request.method == "PUT":
            body = await request.text()
            options = {"metadata": {"size": len(body), "updated": int(time.time())}}
            if "ttl" in query:
                options["expirationTtl"] = int(query["ttl"])  # at least 60 seconds
            await notes.put(PREFIX + name, body, options)
            await self.count_write(notes)
            return Response("saved\n", status=201)
        if request.method == "DELETE":
            await notes.delete(PREFIX + name)
            return Response(None, status=204)
        found = await notes.getWithMetadata(PREFIX + name)
        if found.value is None:
            return Response("no such note\n", status=404)
        return Response(found.value, headers={"x-note-size": str(found.metadata["size"])})

    async def list_notes(self, notes, cursor):
        options = {"prefix": PREFIX, "limit": 100}
        if cursor:
            options["cursor"] = cursor
        page = await notes.list(options)
        out = {"notes": [{"name": k.name[len(PREFIX):], **(k.get("metadata") or {}),
                          "expires": k.get("expiration")} for k in page.keys]}
        if not page.list_complete:
            out["next"] = page.cursor
        return out

    async def count_write(self, notes):
        # KV has no atomic increment: concurrent writers may lose counts
        stats = await notes.get("stats", "json") or {"writes": 0}
        stats["writes"] += 1
        await notes.put("stats", json.dumps(stats))
