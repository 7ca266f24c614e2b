from urllib.parse import urlsplit

from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    """Runs for every path that public/ has no file for."""

    async def fetch(self, request):
        path = urlsplit(request.url).path
        if path == "/api/hello":
            return Response.json({"message": "Hello from the Python worker"})
        if path == "/api/asset-size":
            # the worker can read its own assets through the binding
            url = request.url.replace("/api/asset-size", "/style.css")
            css = await self.env.ASSETS.fetch(url)
            return Response.json({"bytes": len(await css.bytes())})
        return Response("Not found\n", status=404)
