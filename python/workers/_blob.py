"""Blob and File: one class each for the `workers` SDK and the `js` module.

Cloudflare's SDK spells them `Blob(parts, content_type=None, endings=None)`
and `File(parts, filename, content_type=None, endings=None,
last_modified=None)`; JavaScript (`js.Blob.new(parts, {"type": ...})`) puts
an options object where the SDK has `content_type`, so a mapping there is
read as those options. Both spellings give the same object, which answers
the SDK's names (content_type, last_modified, js_object) and JS's (type,
lastModified, arrayBuffer).

The bytes live in memory (a Workers Blob does too).
"""
import time
from collections.abc import Mapping

from ._body import Buffer

_ENDINGS = ("transparent", "native")


def _options(content_type, endings, last_modified, kwargs):
    """(type, endings, lastModified) from the SDK's arguments or a JS
    options object in content_type's place (plus Pyodide-style keywords)."""
    if isinstance(content_type, Mapping) or kwargs:
        opts = dict(content_type) if isinstance(content_type, Mapping) else {}
        opts.update(kwargs)
        content_type = opts.get("type")
        endings = opts.get("endings", endings)
        last_modified = opts.get("lastModified", last_modified)
    if endings is not None and str(endings) not in _ENDINGS:
        raise TypeError(f"Blob endings must be 'transparent' or 'native', not {endings!r}")
    return content_type, endings, last_modified


def _mime(content_type):
    """The File API's rule: a type of printable ASCII is lower-cased, any
    other is the empty string."""
    if not content_type:
        return ""
    t = str(content_type)
    if all(" " <= c <= "~" for c in t):
        return t.lower()
    return ""


def _single(parts):
    """Cloudflare's SDK takes one part (a str, bytes, a Blob) as well as a
    list of them."""
    return isinstance(parts, (str, bytes, bytearray, memoryview, Blob)) or \
        not hasattr(parts, "__iter__")


def _part_bytes(p, native):
    if isinstance(p, Blob):
        return p._data
    if isinstance(p, str):
        if native:  # "native" line endings: LF on Linux
            p = p.replace("\r\n", "\n").replace("\r", "\n")
        return p.encode("utf-8")
    try:
        return memoryview(p).tobytes()
    except TypeError:
        raise TypeError(f"a Blob part must be str, bytes-like or a Blob, not "
                        f"{type(p).__name__}") from None


class Blob:
    """Bytes with a MIME type: `size`, `type` / `content_type`,
    `await text()`, `await bytes()`, `await arrayBuffer()`, `slice()`."""

    def __init__(self, blob_parts=None, content_type=None, endings=None, **options):
        content_type, endings, _ = _options(content_type, endings, None, options)
        self._init(blob_parts, content_type, endings)

    def _init(self, parts, content_type, endings):
        if parts is None:
            parts = ()
        elif _single(parts):
            if not content_type and isinstance(parts, Blob):
                content_type = parts.type  # one Blob given: its type is kept
            parts = (parts,)
        native = endings is not None and str(endings) == "native"
        self._data = b"".join(_part_bytes(p, native) for p in parts)
        self._type = _mime(content_type)

    @classmethod
    def new(cls, blob_parts=None, options=None, **kwargs):
        """JS's `new Blob(parts, options)`."""
        return cls(blob_parts, options, **kwargs)

    @classmethod
    def _of(cls, data, content_type):
        """A Blob of bytes thaw already holds (a body), not copied."""
        self = cls.__new__(cls)
        self._data = data
        self._type = _mime(content_type)
        return self

    @property
    def size(self):
        return len(self._data)

    @property
    def type(self):
        return self._type

    content_type = type

    @property
    def js_object(self):
        return self  # thaw's Blob is its own JavaScript object

    async def text(self):
        return self._data.decode("utf-8", "replace")

    async def bytes(self):
        return self._data

    async def arrayBuffer(self):
        return Buffer(self._data)

    def stream(self):
        """The bytes as an async iterator (JS's ReadableStream of them)."""
        async def chunks(data=self._data):
            if data:
                yield data
        return chunks()

    def slice(self, start=None, end=None, content_type=None):
        # JS's slice: negative positions count from the end, both clamp
        n = len(self._data)
        lo = 0 if start is None else int(start)
        hi = n if end is None else int(end)
        lo = max(n + lo, 0) if lo < 0 else min(lo, n)
        hi = max(n + hi, 0) if hi < 0 else min(hi, n)
        return Blob._of(self._data[lo:max(lo, hi)], content_type)

    def _thaw_body(self):
        """(bytes, Content-Type or None) as a Request or Response body."""
        return self._data, self._type or None

    def __repr__(self):
        return f"{type(self).__name__}(size={self.size}, type={self._type!r})"


class File(Blob):
    """A Blob with a `name` and `last_modified` / `lastModified` (ms)."""

    def __init__(self, blob_parts, filename, content_type=None, endings=None,
                 last_modified=None, **options):
        content_type, endings, last_modified = _options(content_type, endings,
                                                        last_modified, options)
        if last_modified is None and isinstance(blob_parts, File) and _single(blob_parts):
            last_modified = blob_parts.last_modified
        self._init(blob_parts, content_type, endings)
        self.name = str(filename)
        self._modified = time.time_ns() // 1_000_000 if last_modified is None \
            else int(last_modified)

    @classmethod
    def new(cls, blob_parts, filename, options=None, **kwargs):
        """JS's `new File(parts, name, options)`."""
        return cls(blob_parts, filename, options, **kwargs)

    @classmethod
    def _named(cls, data, filename, content_type):
        """A File of bytes thaw already holds (a form's upload), not copied."""
        self = cls._of(data, content_type)
        self.name = filename
        self._modified = time.time_ns() // 1_000_000
        return self

    @property
    def last_modified(self):
        return self._modified

    lastModified = last_modified

    def __repr__(self):
        return f"File(name={self.name!r}, size={self.size}, type={self._type!r})"
