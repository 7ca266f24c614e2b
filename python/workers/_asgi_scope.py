"""The parts of a workers.Request that ASGI scopes and WSGI environs share,
and the ASGI `http` scope itself."""
from urllib.parse import unquote_to_bytes, urlsplit

ASGI_VERSIONS = {"version": "3.0", "spec_version": "2.3"}

# thaw's supervisor speaks HTTP/1.x and does not pass the client's version
# on; 1.1 is what nearly every client sends.
HTTP_VERSION = "1.1"


class Target:
    """What an app needs from a request URL: scheme, server host/port, the
    raw path and query bytes as the client sent them."""

    __slots__ = ("scheme", "host", "port", "raw_path", "query")

    def __init__(self, url):
        parts = urlsplit(url)
        self.scheme = parts.scheme or "http"
        self.host = parts.hostname or ""
        try:
            port = parts.port
        except ValueError:  # a Host header like "x:abc"; the URL still routes
            port = None
        self.port = port if port is not None else (443 if self.scheme == "https" else 80)
        # The runtime decodes the request target as UTF-8 with surrogateescape;
        # encoding back the same way restores the exact bytes on the wire.
        self.raw_path = parts.path.encode("utf-8", "surrogateescape") or b"/"
        self.query = parts.query.encode("utf-8", "surrogateescape")

    def path_bytes(self):
        """The path with %XX sequences decoded, as bytes."""
        return unquote_to_bytes(self.raw_path)


def header_pairs(request):
    """Lower-case (name, value) str pairs, repeated fields kept in order."""
    return [(name.lower(), value) for name, value in request.headers.items()]


def http_scope(request, env, state=None):
    """The ASGI `http` connection scope of `request`.

    client is None: the runtime does not hand the client address to the
    instance, and inventing one would mislead apps that log or rate-limit
    by it (Starlette's request.client is then None, as on Cloudflare).
    """
    t = Target(request.url)
    scope = {
        "type": "http",
        "asgi": dict(ASGI_VERSIONS),
        "http_version": HTTP_VERSION,
        "method": request.method.upper(),
        "scheme": t.scheme,
        "path": t.path_bytes().decode("utf-8", "replace"),
        "raw_path": t.raw_path,
        "query_string": t.query,
        "root_path": "",
        "headers": [(n.encode("latin-1"), v.encode("latin-1"))
                    for n, v in header_pairs(request)],
        "client": None,
        "server": (t.host, t.port),
        "extensions": {},
        "env": env,
    }
    if state is not None:
        # Each request gets a shallow copy of the lifespan state (ASGI spec).
        scope["state"] = dict(state)
    return scope
