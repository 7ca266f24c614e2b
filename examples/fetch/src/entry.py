"""Outbound fetch: a proxy and an aggregator in front of env.UPSTREAM.

  GET /proxy/<path>        the upstream's answer to <path>, streamed through
  GET /aggregate?path=/a&path=/b
                           fetches every path at once, answers with a summary
"""
import asyncio
from urllib.parse import parse_qs, urlsplit

from workers import Response, WorkerEntrypoint, fetch


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlsplit(request.url)
        upstream = self.env.UPSTREAM.rstrip("/")
        if url.path.startswith("/proxy/"):
            target = upstream + url.path[len("/proxy"):]
            if url.query:
                target += "?" + url.query
            body = None
            if request.method not in ("GET", "HEAD"):
                body = await request.bytes()
            # the body of the answer streams to the client as it arrives
            return await fetch(target, method=request.method, headers=request.headers,
                               body=body)
        if url.path == "/aggregate":
            paths = parse_qs(url.query).get("path", ["/"])
            results = await asyncio.gather(*(self.summary(upstream, p) for p in paths))
            return Response.json({"upstream": upstream, "results": results})
        return Response("try /proxy/<path> or /aggregate?path=/a&path=/b\n")

    async def summary(self, upstream, path):
        try:
            resp = await fetch(upstream + path)
            data = await resp.bytes()
        except Exception as exc:  # refused, timed out, unreachable
            return {"path": path, "error": f"{type(exc).__name__}: {exc}"}
        return {"path": path, "status": resp.status, "bytes": len(data),
                "content_type": resp.headers.get("content-type")}
