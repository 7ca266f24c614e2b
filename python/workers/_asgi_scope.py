"""The parts of a workers.Request that ASGI scopes and WSGI environs share,
and the ASGI `http` scope itself.

Both are built per request, so the URL is taken apart with plain string
operations when it has the shape the runtime gives it (ASCII,
"http[s]://authority/path?query"); anything else goes through urlsplit.
The authority's (host, port) is computed by urlsplit once per distinct
authority and cached: the Host header of one deployment rarely changes.
"""
from urllib.parse import unquote_to_bytes, urlsplit

from ._headers import Headers

try:
    from _thaw_fast import latin1_pairs  # C, in thaw-zygote: src/zygote/asgi-headers.c
except ImportError:
    def latin1_pairs(pairs):
        return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in pairs]

ASGI_VERSIONS = {"version": "3.0", "spec_version": "2.3"}

# thaw's supervisor speaks HTTP/1.x and does not pass the client's version
# on; 1.1 is what nearly every client sends.
HTTP_VERSION = "1.1"

# (scheme, authority) -> (host, port); bounded so that a client sending a
# new Host header per request cannot grow it without limit
_servers = {}
_SERVERS_MAX = 256
_SCHEME_LEN = {"http": 7, "https": 8}  # len("http://"), len("https://")


def _server(scheme, netloc):
    key = (scheme, netloc)
    server = _servers.get(key)
    if server is None:
        parts = urlsplit(scheme + "://" + netloc)
        server = (parts.hostname or "", _port(parts, scheme))
        if len(_servers) >= _SERVERS_MAX:
            _servers.clear()
        _servers[key] = server
    return server


def _port(parts, scheme):
    try:
        port = parts.port
    except ValueError:  # a Host header like "x:abc"; the URL still routes
        port = None
    return port if port is not None else (443 if scheme == "https" else 80)


def split_url(url):
    """(scheme, (host, port), path str, query str) of a request URL, as
    urlsplit would give them; path and query still %-encoded."""
    if url.startswith("http"):
        scheme = "https" if url.startswith("https://") else \
            "http" if url.startswith("http://") else None
        if scheme is not None and url.isascii() and \
                "\t" not in url and "\n" not in url and "\r" not in url:
            start = _SCHEME_LEN[scheme]
            end = len(url)
            for delim in "/?#":
                i = url.find(delim, start, end)
                if i >= 0:
                    end = i
            rest = url[end:]
            i = rest.find("#")
            if i >= 0:
                rest = rest[:i]
            path, _, query = rest.partition("?")
            return scheme, _server(scheme, url[start:end]), path, query
    parts = urlsplit(url)
    scheme = parts.scheme or "http"
    return scheme, (parts.hostname or "", _port(parts, scheme)), parts.path, parts.query


class Target:
    """What an app needs from a request URL: scheme, server host/port, the
    raw path and query bytes as the client sent them."""

    __slots__ = ("scheme", "host", "port", "raw_path", "query")

    def __init__(self, url):
        self.scheme, (self.host, self.port), path, query = split_url(url)
        # The runtime decodes the request target as UTF-8 with surrogateescape;
        # encoding back the same way restores the exact bytes on the wire.
        self.raw_path = path.encode("utf-8", "surrogateescape") or b"/"
        self.query = query.encode("utf-8", "surrogateescape")

    def path_bytes(self):
        """The path with %XX sequences decoded, as bytes."""
        return unquote_to_bytes(self.raw_path)


def header_pairs(request):
    """Lower-case (name, value) str pairs, repeated fields kept in order."""
    headers = request.headers
    if type(headers) is Headers:
        return headers._pairs  # stored lower-case already
    return [(name.lower(), value) for name, value in headers.items()]


# request URL -> its _target(): most requests of a deployment go to a few
# URLs. Bounded in entries and in URL length.
_targets = {}
_TARGETS_MAX = 512
_TARGET_URL_MAX = 256


def _target(url):
    """(scheme, (host, port), path, raw_path, query bytes) for a scope."""
    scheme, server, path, query = split_url(url)
    if not path:
        path = "/"
    if path.isascii() and "%" not in path:
        raw_path = path.encode("ascii")
    else:
        # the runtime decodes the request target as UTF-8 with
        # surrogateescape: encoding back the same way restores the bytes
        raw_path = path.encode("utf-8", "surrogateescape")
        path = unquote_to_bytes(raw_path).decode("utf-8", "replace")
    return scheme, server, path, raw_path, query.encode("utf-8", "surrogateescape")


def py_http_scope(request, env, state=None):
    """The ASGI `http` connection scope of `request`.

    client is the TCP peer of the connection as thaw saw it ((ip, port)),
    or None for a Request that did not come from a client (one a worker
    built itself).
    """
    url = request.url
    target = _targets.get(url)
    if target is None:
        target = _target(url)
        if len(url) <= _TARGET_URL_MAX:
            if len(_targets) >= _TARGETS_MAX:
                _targets.clear()
            _targets[url] = target
    scheme, server, path, raw_path, query = target
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},  # ASGI_VERSIONS
        "http_version": getattr(request, "_thaw_http_version", HTTP_VERSION),
        "method": request.method.upper(),
        "scheme": scheme,
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": latin1_pairs(header_pairs(request)),
        "client": getattr(request, "_thaw_client", None),
        "server": server,
        "extensions": {},
        "env": env,
    }
    if state is not None:
        # Each request gets a shallow copy of the lifespan state (ASGI spec).
        scope["state"] = dict(state)
    return scope


try:
    # the same in C (src/zygote/asgi-scope.c), built into thaw-zygote: one
    # call per request instead of this function's bytecode
    from _thaw_fast import asgi_scope as _c_scope, asgi_scope_init as _c_scope_init
except ImportError:
    http_scope = scope_of = py_http_scope
else:
    _c_scope_init(_targets, _target, header_pairs, Headers, _TARGETS_MAX, _TARGET_URL_MAX)

    def http_scope(request, env, state=None):
        """The ASGI `http` connection scope of `request` (py_http_scope says
        more; asgi.fetch calls _c_scope itself)."""
        return _c_scope(request, env, state)

    # asgi.fetch's, always called with all three
    scope_of = _c_scope
