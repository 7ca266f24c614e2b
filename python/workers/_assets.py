"""The static assets binding: `await self.env.ASSETS.fetch(request)` answers
from the worker's `assets.directory` the way a request from a browser would
be answered (HTML handling, not-found handling, ETag and 304), without the
worker's own routes. The files live in the supervisor (src/bind/assets.c);
a small file comes back whole, a big one streams."""
from . import _bind
from ._request import Request
from ._response import Response

# Bodies up to this size are read whole (the response then has a
# content-length); bigger ones stream through to the client.
_WHOLE_BODY = 1 << 20


class Fetcher:
    """env.ASSETS: Cloudflare's `Fetcher` for static assets."""

    __slots__ = ("_name",)

    def __init__(self, name):
        self._name = name

    async def fetch(self, request, init=None, **kwargs):
        """fetch(request | url, init=None, **kwargs) -> Response.

        `request` is a workers.Request (its method, URL and headers are
        used: If-None-Match gets a 304, HEAD a bodiless answer) or an
        absolute URL string; `init`/keyword arguments are those of
        Request(). Only the URL's path matters."""
        if init is not None or kwargs or not isinstance(request, Request):
            if not isinstance(request, (str, Request)):
                raise TypeError(f"{self._name}.fetch() takes a Request or a URL string, "
                                f"not {type(request).__name__}")
            opts = dict(init or {})
            opts.update(kwargs)
            request = Request(request, method=opts.get("method"),
                              headers=opts.get("headers"))
        url = request.url
        if not (url.startswith("http://") or url.startswith("https://")):
            raise TypeError(f"Invalid URL {url!r}: {self._name}.fetch() needs an "
                            f"absolute URL, e.g. 'http://assets/style.css' or "
                            f"the incoming request's URL")
        args = {"method": request.method, "url": url,
                "headers": [[k, v] for k, v in request.headers.items()]}
        result, pending = await _bind.call_stream(self._name, "fetch", args)
        status = result["status"]
        headers = [tuple(h) for h in result["headers"]]
        if not pending.has_body:
            body = None
        elif result.get("size", 0) <= _WHOLE_BODY:
            body = await pending.read_all()
        else:
            body = pending.chunks()
        return Response(body, status=status, headers=headers)

    def __repr__(self):
        return f"<Fetcher {self._name} (static assets)>"


def bindings_from_config(config):
    table = config.get("assets")
    if isinstance(table, dict) and isinstance(table.get("binding"), str):
        yield table["binding"], Fetcher(table["binding"])
