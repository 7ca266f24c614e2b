"""Blob and FormData, as far as a worker's own code uses them (build one,
read it back). Sending one as a Response or fetch body is the `workers`
SDK's part (issue 17, point 4): js.FormData and js.Blob become the SDK's
classes when it has them (python/js.py)."""
from workers._body import Buffer
from pyodide._values import JsArray

from . import New


def _part(p):
    if isinstance(p, Blob):
        return p._data
    if isinstance(p, str):
        return p.encode("utf-8")
    return memoryview(p).tobytes()


class Blob(New):
    def __init__(self, parts=None, options=None):
        self._data = b"".join(_part(p) for p in parts or ())
        self.type = str((options or {}).get("type", "")).lower()

    @property
    def size(self):
        return len(self._data)

    async def text(self):
        return self._data.decode("utf-8", "replace")

    async def arrayBuffer(self):
        return Buffer(self._data)

    async def bytes(self):
        return self._data

    def slice(self, start=0, end=None, content_type=""):
        return Blob([self._data[start:end]], {"type": content_type})


class File(Blob):
    def __init__(self, parts, name, options=None):
        super().__init__(parts, options)
        self.name = str(name)
        self.lastModified = int((options or {}).get("lastModified", 0))


class FormData(New):
    def __init__(self, form=None):
        if form is not None:
            raise TypeError("FormData.new(form) takes no form element in Workers")
        self._entries = []

    @staticmethod
    def _value(value, filename):
        if isinstance(value, Blob):
            if filename is not None or not isinstance(value, File):
                return File([value], filename or "blob", {"type": value.type})
            return value
        return str(value)

    def append(self, name, value, filename=None):
        self._entries.append((str(name), self._value(value, filename)))

    def set(self, name, value, filename=None):
        name, value = str(name), self._value(value, filename)
        out, done = [], False
        for k, v in self._entries:
            if k == name:
                if not done:
                    out.append((k, value))
                    done = True
            else:
                out.append((k, v))
        if not done:
            out.append((name, value))
        self._entries = out

    def get(self, name):
        for k, v in self._entries:
            if k == name:
                return v
        return None

    def getAll(self, name):
        return JsArray(v for k, v in self._entries if k == name)

    def has(self, name):
        return any(k == name for k, _ in self._entries)

    def delete(self, name):
        self._entries = [(k, v) for k, v in self._entries if k != name]

    def keys(self):
        return iter([k for k, _ in self._entries])

    def values(self):
        return iter([v for _, v in self._entries])

    def entries(self):
        return iter([JsArray(kv) for kv in self._entries])

    __iter__ = entries
