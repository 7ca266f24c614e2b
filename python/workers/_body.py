"""Body plumbing shared by Request and Response.

A "payload" is one of:
  None            no body
  bytes           an in-memory body
  a generator     a user stream, already wrapped so it yields bytes only
  a source        the runtime's request body: `await src.read()` gives the
                  whole body, `async for chunk in src` streams it
"""

TEXT_PLAIN = "text/plain;charset=UTF-8"


class BodyUsedError(OSError, TypeError):
    """The body was already read.

    Cloudflare's Python SDK raises OSError("Body already used") and JS raises
    TypeError; subclassing both keeps either kind of `except` working.
    """


def _chunk(c):
    if isinstance(c, bytes):
        return c
    if isinstance(c, str):
        return c.encode("utf-8")
    if isinstance(c, (bytearray, memoryview)):
        return bytes(c)
    raise TypeError(f"body chunks must be bytes or str, not {type(c).__name__}")


def _sync_chunks(it):
    try:
        for c in it:
            c = _chunk(c)
            if c:  # an empty chunk would read as end-of-body to some writers
                yield c
    finally:
        # closing the wrapper closes the user's iterator at once, so its
        # `finally` runs now and not whenever the garbage collector gets it
        close = getattr(it, "close", None)
        if close is not None:
            close()


async def _async_chunks(ait):
    try:
        async for c in ait:
            c = _chunk(c)
            if c:
                yield c
    finally:
        aclose = getattr(ait, "aclose", None)
        if aclose is not None:
            await aclose()


def coerce(body):
    """User body -> (payload, default content-type or None)."""
    if body is None:
        return None, None
    if isinstance(body, str):
        return body.encode("utf-8"), TEXT_PLAIN
    if isinstance(body, bytes):
        return body, None
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body), None  # copy: later caller mutations must not leak
    thaw_body = getattr(type(body), "_thaw_body", None)
    if thaw_body is not None:  # FormData, Blob, File, URLSearchParams
        return thaw_body(body)
    if isinstance(body, dict):
        raise TypeError("dict is not a valid body; use Response.json(data)")
    if hasattr(body, "__aiter__"):
        return _async_chunks(body), None
    if hasattr(body, "__iter__"):
        return _sync_chunks(body), None
    raise TypeError(f"unsupported body type: {type(body).__name__}")


def is_empty(payload):
    return payload is None or payload == b""


async def read_all(payload):
    if payload is None:
        return b""
    if isinstance(payload, bytes):
        return payload
    if hasattr(payload, "read"):  # runtime source
        return bytes(await payload.read())
    if hasattr(payload, "__aiter__"):
        return b"".join([_chunk(c) async for c in payload])
    return b"".join(payload)


async def iterate(payload):
    if isinstance(payload, bytes):
        if payload:
            yield payload
    elif hasattr(payload, "__aiter__"):
        async for c in payload:
            yield _chunk(c)
    elif payload is not None:
        for c in payload:
            yield c


class Buffer(bytes):
    """bytes that also answer the Pyodide JsBuffer calls (`.to_bytes()`),
    so `(await request.buffer()).to_bytes()` from Cloudflare code works."""

    def to_bytes(self):
        return bytes(self)

    def to_py(self):
        return bytes(self)

    def to_memoryview(self):
        return memoryview(self)

    @property
    def byteLength(self):
        return len(self)


class BodyMixin:
    """Read-once body methods. Subclasses set `_payload` and `_used`."""

    __slots__ = ()

    def _take(self):
        if self._used:
            raise BodyUsedError("Body already used")
        self._used = True
        return self._payload

    @property
    def body_used(self):
        return self._used

    bodyUsed = body_used

    @property
    def body(self):
        """Async iterator of bytes chunks, or None when there is no body."""
        if self._payload is None:
            return None
        return self._stream()

    async def _stream(self):
        # Marked used on the first next(), not on attribute access (as JS).
        async for c in iterate(self._take()):
            yield c

    async def bytes(self):
        return await read_all(self._take())

    async def text(self):
        # Invalid UTF-8 becomes U+FFFD, as JS TextDecoder does.
        return (await self.bytes()).decode("utf-8", "replace")

    async def buffer(self):
        return Buffer(await self.bytes())

    arrayBuffer = buffer

    async def form_data(self):
        """The body as a workers.FormData: multipart/form-data (files as
        File) or application/x-www-form-urlencoded, by the Content-Type;
        any other type, or a malformed body, is a TypeError."""
        from ._formdata import FormData, parse
        return parse(await self.bytes(), self.headers.get("content-type"), FormData)

    async def formData(self):
        """form_data() as JavaScript's formData() gives it (js.FormData)."""
        from ._formdata import JsFormData, parse
        return parse(await self.bytes(), self.headers.get("content-type"), JsFormData)

    async def blob(self):
        """The body as a Blob typed by the Content-Type."""
        from ._blob import Blob
        return Blob._of(await self.bytes(), self.headers.get("content-type"))
