"""Request, shaped like Cloudflare's `workers.Request`.

The runtime builds incoming requests with `Request._thaw_new(...)`; user code
may also build one (tests, sub-requests, ASGI).
"""

import json

from ._body import BodyMixin, coerce
from ._cf import incoming_cf
from ._headers import _TCHARS, Headers

try:
    from _thaw_fast import same as _same  # C, in thaw-zygote: src/zygote/asgi-call.c
except ImportError:
    def _same(obj):
        return obj

_INCOMING = object()  # request.cf of a request thaw received: made when asked for

# Fetch normalises these method names to upper case; others stay as given.
_NORMALISED = frozenset(("DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"))


class Request(BodyMixin):
    """An HTTP request.

    Request(url, method="GET", headers=None, body=None)

    `url` may also be another Request, whose method, headers and body are
    taken over (the original's body then counts as used).  The body can be
    read once, via text()/bytes()/json()/buffer() or by iterating `body`; a
    second read raises BodyUsedError (both OSError, as Cloudflare's Python SDK
    raises, and TypeError, as JS raises).  Nothing is cached, so large uploads
    are never held twice.
    """

    def __init__(self, url, method=None, headers=None, body=None, *,
                 redirect="follow", cf=None):
        if isinstance(url, Request):
            src = url
            url = src.url
            method = src.method if method is None else method
            cf = src.cf if cf is None else cf
            headers = src.headers if headers is None else headers
            if body is None and src._payload is not None:
                body = src._take()  # transfer, as `new Request(req)` does
                payload, ctype = body, None
            else:
                payload, ctype = coerce(body)
        else:
            if isinstance(url, (bytes, bytearray)) or url is None:
                raise TypeError(f"url must be a str, not {type(url).__name__}")
            if not isinstance(url, str):
                # as `new Request(x)` does: any URL-like object by its string
                # form (httpx.URL, yarl.URL, urllib's parse results' geturl())
                url = str(url)
            payload, ctype = coerce(body)
        method = "GET" if method is None else str(method)
        if not method or not _TCHARS.issuperset(method):
            raise ValueError(f"invalid method {method!r}")
        if method.upper() in _NORMALISED:
            method = method.upper()
        if payload is not None and method in ("GET", "HEAD"):
            raise TypeError("Request with a GET or HEAD method cannot have a body.")
        self.method = method
        self.url = url
        self.headers = Headers(headers)
        if ctype and not self.headers.has("content-type"):
            self.headers.set("content-type", ctype)
        self.redirect = redirect
        self._cf = cf
        self._payload = payload
        self._used = False

    @classmethod
    def _thaw_new(cls, method, url, header_pairs, body):
        """Runtime constructor: trusted, already-parsed input, no validation.

        body is None or an object with `async read() -> bytes` and async
        iteration over bytes chunks.
        """
        return cls._thaw_decoded(method, url, Headers._thaw_trusted(header_pairs)._pairs,
                                 body, None, None)

    @classmethod
    def _thaw_decoded(cls, method, url, pairs, body, client, http_version):
        """The instance's constructor, for what its decoder made (one dict
        update, no checks): pairs, (lower-case name, value) str tuples in a
        list nobody else holds, become the Headers' own. client: the TCP
        peer (ip, port) or None; http_version: the client's, or None."""
        self = cls.__new__(cls)
        self.method = method
        self.url = url
        self.headers = Headers._thaw_owned(pairs)
        self.redirect = "follow"
        self._cf = _INCOMING
        self._payload = body
        self._used = False
        if client is not None:
            self._thaw_client = client
        if http_version is not None:
            self._thaw_http_version = http_version
        return self

    @classmethod
    def new(cls, input, init=None, **kwargs):
        """JS-style `Request.new(url, init)`; init holds method/headers/body."""
        opts = dict(init or {})
        opts.update(kwargs)
        return cls(input, **opts)

    @property
    def cf(self):
        """Cloudflare's IncomingRequestCfProperties, with what a server of
        its own knows (workers/_cf.py); None for a Request built in code
        without `cf=`, as on Cloudflare."""
        cf = self._cf
        if cf is _INCOMING:
            cf = self._cf = incoming_cf(self)
        return cf

    @cf.setter
    def cf(self, value):
        self._cf = value

    # The ASGI adapter asks for this (`asgi.fetch(app, request.js_object)`,
    # once per request); our Request is its own "JS" object. The getter is
    # C's identity function where thaw-zygote has it: no Python frame.
    js_object = property(_same, doc="This Request (it is its own JS object).")

    async def json(self, **kwargs):
        return json.loads(await self.text(), **kwargs)

    def __repr__(self):
        return f"Request(method={self.method!r}, url={self.url!r})"


try:
    # Request._thaw_decoded in C (src/zygote/sdk-new.c): the instance's
    # constructor, once per request
    from _thaw_fast import request_types as _request_types
except ImportError:
    pass
else:
    _request_types(Request, Headers, _INCOMING)
