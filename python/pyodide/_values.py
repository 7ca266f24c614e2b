"""The JavaScript values of thaw's `pyodide.ffi`, as Python objects.

thaw runs native CPython, with no JavaScript heap: what Pyodide hands
Python as a proxy of a JS value is here a Python object that behaves the
same from Python's side. Each subclasses the Python type it stands for
(JsArray is a list, JsMap and JsObject are dicts, JsBuffer is a
bytearray), so everything in thaw that takes a list, dict or bytes (Response
bodies, KV values, D1 parameters, json.dumps) takes them unchanged.

JsProxy is an ABC: thaw's own JS-style results (KV's list() objects,
`await request.arrayBuffer()`) are registered as its subclasses in
pyodide.ffi, so `isinstance(x, JsProxy)` holds for them too."""
import abc


class JsProxy(abc.ABC):
    """A JavaScript value. `to_py()` gives the plain Python value."""

    __slots__ = ()
    typeof = "object"

    @property
    def js_id(self):
        return id(self)

    def to_py(self, *, depth=-1, default_converter=None):
        from ._convert import to_py
        return to_py(self, depth=depth, default_converter=default_converter)

    def as_object_map(self, **kwargs):
        return self


class JsArray(JsProxy, list):
    """A JS Array (what `to_js(list)` gives): a list with Array's names."""

    __slots__ = ()

    @property
    def length(self):
        return len(self)

    def push(self, *items):
        self.extend(items)
        return len(self)

    def includes(self, value):
        return value in self

    def join(self, sep=","):
        return sep.join(_js_string(v) for v in self)

    def toString(self):
        return self.join(",")

    def __repr__(self):
        return f"JsArray({list.__repr__(self)})"


class JsMap(JsProxy, dict):
    """A JS Map (what `to_js(dict)` gives without a dict_converter)."""

    __slots__ = ()

    @property
    def size(self):
        return len(self)

    def has(self, key):
        return key in self

    def set(self, key, value):
        self[key] = value
        return self

    def delete(self, key):
        return self.pop(key, _MISSING) is not _MISSING

    def entries(self):
        return iter([k, v] for k, v in self.items())

    def __repr__(self):
        return f"JsMap({dict.__repr__(self)})"


class FieldsAsAttributes:
    """For a dict: its keys read and written as attributes too (`o.name`).
    A key named like a dict method (items, keys, get, ...) is read as an
    item only."""

    __slots__ = ()

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None


class JsObject(JsProxy, FieldsAsAttributes, dict):
    """A plain JS object (`to_js(d, dict_converter=Object.fromEntries)`,
    `JSON.parse`): fields read as attributes (`o.name`) and items
    (`o["name"]`)."""

    __slots__ = ()

    def object_keys(self):
        return JsArray(self.keys())

    def object_values(self):
        return JsArray(self.values())

    def object_entries(self):
        return JsArray(JsArray(kv) for kv in self.items())

    def __repr__(self):
        return f"JsObject({dict.__repr__(self)})"


class JsSet(JsProxy, set):
    """A JS Set (what `to_js(set)` gives)."""

    __slots__ = ()

    @property
    def size(self):
        return len(self)

    def has(self, value):
        return value in self

    def delete(self, value):
        had = value in self
        self.discard(value)
        return had


class JsBuffer(JsProxy, bytearray):
    """A Uint8Array / ArrayBuffer (what `to_js(bytes)` gives): a bytearray
    with the JsBuffer calls. `.buffer` is the same memory, as in JS, so
    `to_js(data).buffer` is a Response body or a KV value like bytes."""

    __slots__ = ()

    @property
    def buffer(self):
        return self

    @property
    def byteLength(self):
        return len(self)

    byte_length = byteLength

    @property
    def length(self):
        return len(self)

    def to_bytes(self):
        return bytes(self)

    def to_memoryview(self):
        return memoryview(bytes(self))

    def to_string(self, encoding=None):
        return bytes(self).decode(encoding or "utf-8")

    def assign(self, rhs):
        """Copies a Python buffer of the same length into this one."""
        data = memoryview(rhs).cast("B")
        if len(data) != len(self):
            raise ValueError(f"cannot assign a buffer of {len(data)} bytes to a "
                             f"JsBuffer of {len(self)} bytes")
        self[:] = data

    def assign_to(self, to):
        """Copies this buffer into a writable Python buffer of the same length."""
        dest = memoryview(to).cast("B")
        if len(dest) != len(self):
            raise ValueError(f"cannot copy a JsBuffer of {len(self)} bytes into a "
                             f"buffer of {len(dest)} bytes")
        dest[:] = self

    def subarray(self, start=0, end=None):
        return JsBuffer(self[start:end])

    def slice(self, start=0, end=None):
        return JsBuffer(self[start:end])

    def set(self, array, offset=0):
        data = bytes(array)
        if offset + len(data) > len(self):
            raise IndexError("RangeError: offset is out of bounds")
        self[offset:offset + len(data)] = data

    def __repr__(self):
        return f"JsBuffer({bytes(self)!r})"


_MISSING = object()


def _js_string(v):
    """String(v) as JS writes it, for Array.join."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (list, tuple)):
        return ",".join(_js_string(x) for x in v)
    return str(v)
