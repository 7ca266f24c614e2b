"""Response, shaped like Cloudflare's `workers.Response` (and JS Response).

The runtime reads a returned Response through `_thaw_parts()`.
"""

import json

from pyodide._values import JsProxy

from ._body import TEXT_PLAIN, BodyMixin, coerce, is_empty
from ._headers import Headers

# Statuses that must not carry a body (Fetch "null body status").
_NULL_BODY = frozenset((204, 205, 304))
_REDIRECTS = frozenset((301, 302, 303, 307, 308))
_TEXT_PLAIN = ("content-type", TEXT_PLAIN)
_JSON = ("content-type", "application/json")


def _check_status(status):
    if isinstance(status, bool) or not isinstance(status, int):
        raise TypeError(f"status must be an int, not {type(status).__name__}")
    if not 200 <= status <= 599:
        # JS throws RangeError, which Cloudflare's SDK maps to ValueError.
        raise ValueError(f"status {status} is outside the range 200-599")
    return int(status)  # HTTPStatus -> plain int


def _check_web_socket(ws, status):
    """Response(None, status=101, web_socket=client): both, or neither."""
    from ._websocket import WebSocket
    if ws is None:
        raise ValueError("status 101 needs web_socket=: the client end of a WebSocketPair "
                         "(Response(None, status=101, web_socket=client))")
    if not isinstance(ws, WebSocket):
        raise TypeError(f"web_socket must be a WebSocket of a WebSocketPair, not "
                        f"{type(ws).__name__}")
    if status != 101:
        raise ValueError(f"a Response with web_socket= must have status 101, not {status!r}")
    return ws


def _check_reason(text):
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise TypeError("status_text must be a str")
    if "\r" in text or "\n" in text or "\0" in text:
        raise ValueError("status_text contains CR, LF or NUL")
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("status_text has characters above U+00FF") from None
    return text


class _ClassOrInstance:
    """`Response.json(data)` builds a response (JS static Response.json),
    `await resp.json()` parses one: Cloudflare's SDK supports both."""

    def __get__(self, obj, cls):
        if obj is None:
            return cls.from_json
        return obj._read_json


class Response(BodyMixin):
    """An HTTP response.

    Response(body=None, status=200, status_text=None, headers=None)

    body: str (sent as UTF-8, default content-type text/plain;charset=UTF-8),
    bytes-like, None, or a sync/async iterable of bytes or str chunks which is
    streamed.  The body can be read back once (text/bytes/json/buffer); a
    second read raises BodyUsedError (an OSError and a TypeError).
    """

    json = _ClassOrInstance()
    _web_socket = None  # the client end of a WebSocketPair (status 101)

    def __init__(self, body=None, status=200, status_text=None, headers=None,
                 web_socket=None):
        if headers is None and status_text is None and web_socket is None and \
                type(status) is int and 200 <= status <= 599 and status not in _NULL_BODY:
            # the common case, `Response("text")`, without the general checks
            # (nothing here for them to find): the same object in the end
            kind = type(body)
            if kind is str:
                self.status = status
                self._reason = None
                self.headers = Headers._thaw_owned([_TEXT_PLAIN])
                self._payload = body.encode("utf-8")
                self._used = False
                return
            if kind is bytes or body is None:
                self.status = status
                self._reason = None
                self.headers = Headers._thaw_owned([])
                self._payload = body
                self._used = False
                return
        if web_socket is not None or status == 101:
            self._web_socket = _check_web_socket(web_socket, status)
            self.status = 101
            self._reason = _check_reason(status_text)
            self.headers = Headers(headers)
            if not is_empty(coerce(body)[0]):
                raise TypeError("a WebSocket response (status 101) cannot have a body")
            self._payload = None
            self._used = False
            return
        self.status = _check_status(200 if status is None else status)
        self._reason = _check_reason(status_text)
        self.headers = Headers(headers)
        payload, ctype = coerce(body)
        if self.status in _NULL_BODY:
            if not is_empty(payload):
                raise TypeError(
                    f"Response with null body status {self.status} cannot have body")
            payload, ctype = None, None  # tolerate "" / b"" (JS would not)
        if ctype and not self.headers.has("content-type"):
            self.headers.set("content-type", ctype)
        self._payload = payload
        self._used = False

    # -- runtime interface ------------------------------------------------
    def _thaw_parts(self):
        """(status, reason or None, [(name, value)], body) for the runtime.

        body is bytes, None (no body) or an iterator / async iterator yielding
        non-empty bytes.  content-length is left to the runtime.
        """
        # the Headers' own list: the runtime only reads it
        return self.status, self._reason, self.headers._pairs, self._payload

    @classmethod
    def _thaw_sized(cls, status, headers, body):
        """asgi.fetch's constructor: headers a Headers it made (taken over,
        not copied), body bytes. A status the fast path cannot vouch for
        goes through the checks of __init__ (which raise)."""
        if type(status) is not int or not 200 <= status <= 599 or status in _NULL_BODY:
            return cls(body, status, None, headers)
        self = cls.__new__(cls)
        self.status = status
        self._reason = None
        self.headers = headers
        self._payload = body
        self._used = False
        return self

    # -- attributes ---------------------------------------------------------
    @property
    def status_text(self):
        return self._reason or ""

    statusText = status_text

    @property
    def ok(self):
        return 200 <= self.status <= 299

    url = ""
    redirected = False
    type = "default"

    @property
    def js_object(self):
        return self  # thaw's Response is its own JavaScript object

    # -- constructors -------------------------------------------------------
    @classmethod
    def from_json(cls, data, status=200, status_text=None, headers=None, *,
                  statusText=None):
        """Body = `json.dumps(data)`, as Cloudflare's SDK writes it (a JS
        value, such as to_js's, is written as JSON.stringify does: compact);
        content-type application/json unless `headers` already has one."""
        if isinstance(data, JsProxy):
            text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        else:
            text = json.dumps(data)
        if headers is None and status_text is None and statusText is None and cls is Response:
            return cls._thaw_sized(status, Headers._thaw_owned([_JSON]), text.encode("utf-8"))
        h = Headers(headers)
        if not h.has("content-type"):
            h.set("content-type", "application/json")
        return cls(text.encode("utf-8"), status, status_text or statusText, h)

    @classmethod
    def redirect(cls, url, status=302):
        """A redirect to url; status 301, 302, 303, 307 or 308, else a
        ValueError (JS's RangeError, as Cloudflare's SDK raises it)."""
        if isinstance(status, int) and not isinstance(status, bool):
            status = int(status)  # HTTPStatus.FOUND -> 302
        if status not in _REDIRECTS:
            raise ValueError(f"invalid redirect status {status!r}; "
                             "use 301, 302, 303, 307 or 308")
        return cls(None, status, headers=[("location", str(url))])

    @property
    def web_socket(self):
        return self._web_socket

    webSocket = web_socket

    @classmethod
    def new(cls, body=None, init=None, *, status=None, statusText=None,
            status_text=None, headers=None, webSocket=None, web_socket=None):
        """JS-style `Response.new(body, init)`; init is a dict with status /
        statusText / headers, or another Response to copy them from.  Keyword
        arguments win over init."""
        if isinstance(init, Response):
            init = {"status": init.status, "statusText": init._reason,
                    "headers": init.headers}
        init = dict(init or {})
        if status is None:
            status = init.get("status", 200)
        if status_text is None:
            status_text = statusText
        if status_text is None:
            status_text = init.get("statusText", init.get("status_text"))
        if headers is None:
            headers = init.get("headers")
        ws = web_socket or webSocket or init.get("webSocket") or init.get("web_socket")
        return cls(body, status, status_text, headers, web_socket=ws)

    def replace_body(self, body):
        """Same status and headers, new body (as Cloudflare's SDK)."""
        return type(self)(body, self.status, self._reason, self.headers)

    async def _read_json(self, **kwargs):
        return json.loads(await self.text(), **kwargs)

    def __repr__(self):
        parts = [f"status={self.status}"]
        if self._reason:
            parts.append(f"status_text={self._reason!r}")
        ctype = self.headers.get("content-type")
        if ctype:
            parts.append(f"content_type={ctype!r}")
        return f"Response({', '.join(parts)})"
