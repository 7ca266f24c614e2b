"""`pyodide.http` for Python Workers code on thaw: `pyfetch` and its
`FetchResponse`, over thaw's outbound fetch (workers.fetch: the supervisor
makes the request, under the egress policy of docs/bindings/fetch.md).
`open_url` (a synchronous XMLHttpRequest in browsers) has no Workers
counterpart and is not provided."""
import json

from workers import fetch as _fetch

from ._values import JsBuffer

__all__ = ["FetchResponse", "HttpStatusError", "pyfetch"]


class HttpStatusError(OSError):
    """raise_for_status() of a 4xx or 5xx response."""

    def __init__(self, status, status_text, url):
        self.status = status
        self.status_text = status_text
        self.url = url
        kind = "Client" if status < 500 else "Server"
        super().__init__(f"{status} {kind} Error: {status_text} for url: {url}")


class BodyUsedError(OSError):
    """The body of a FetchResponse was read already (Pyodide's name)."""


class _SharedBody:
    """The body of a response and its clones: read from thaw once."""

    __slots__ = ("_resp", "_data")

    def __init__(self, resp):
        self._resp = resp
        self._data = None

    async def read(self):
        if self._data is None:
            self._data = await self._resp.bytes()
        return self._data


class FetchResponse:
    """What `await pyfetch(url)` gives: Pyodide's FetchResponse. The body
    can be read once per response (clone() first to read it twice)."""

    def __init__(self, url, js_response, _body=None):
        self._url = url
        self.js_response = js_response
        self._body = _body or _SharedBody(js_response)
        self._used = False

    @property
    def body_used(self):
        return self._used

    @property
    def headers(self):
        return dict(self.js_response.headers.items())

    @property
    def ok(self):
        return 200 <= self.status <= 299

    @property
    def redirected(self):
        return bool(getattr(self.js_response, "redirected", False))

    @property
    def status(self):
        return self.js_response.status

    @property
    def status_text(self):
        return self.js_response.status_text or ""

    @property
    def type(self):
        return "default"

    @property
    def url(self):
        return getattr(self.js_response, "url", None) or self._url

    def clone(self):
        if self._used:
            raise BodyUsedError("Body already used")
        return FetchResponse(self._url, self.js_response, self._body)

    def raise_for_status(self):
        if 400 <= self.status < 600:
            raise HttpStatusError(self.status, self.status_text, self.url)

    async def _read(self):
        if self._used:
            raise BodyUsedError("Body already used")
        self._used = True
        return await self._body.read()

    async def bytes(self):
        return await self._read()

    async def buffer(self):
        return JsBuffer(await self._read())

    async def memoryview(self):
        return memoryview(await self._read())

    async def string(self):
        return (await self._read()).decode("utf-8", "replace")

    text = string

    async def json(self, **kwargs):
        return json.loads(await self.string(), **kwargs)

    async def unpack_archive(self, *, extract_dir=None, format=None):
        raise NotImplementedError("FetchResponse.unpack_archive() writes into Pyodide's "
                                  "in-memory file system; in thaw, read bytes() and "
                                  "unpack them with shutil / zipfile / tarfile")

    def abort(self, reason=None):
        self._used = True

    def __repr__(self):
        return f"<FetchResponse {self.status} {self.url}>"


async def pyfetch(url, /, **kwargs):
    """fetch(url, **kwargs) as Pyodide has it: the keyword arguments are the
    fetch options (method, headers, body, redirect)."""
    return FetchResponse(url, await _fetch(url, kwargs or None))
