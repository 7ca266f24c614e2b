"""FormData: one class for the `workers` SDK and (as JsFormData) `js`.

Cloudflare's SDK makes FormData a mutable mapping: `form["name"]` is the
first value (None when there is none, as JS's get() gives null),
`form["name"] = value` replaces every value, `get_all()`, `append(name,
value, filename=None)`, and keys()/values()/items() go over every entry,
repeated names included. JS's names (get, getAll, set, has, delete,
entries) are there too. A value is a str or a File: a Blob becomes a File
named by `filename` (or, as the Workers runtime does, by the entry's name),
anything else its string, as JS's String() writes it.

`js.FormData` is JsFormData, which differs only where JS and the SDK do:
iterating it gives [name, value] pairs, as iterating a JS FormData from
Pyodide does, where the SDK's gives names.
"""
from collections.abc import Mapping, MutableMapping

from pyodide._values import JsArray, _js_string

from . import _multipart
from ._blob import Blob, File


def set_pair(pairs, name, value):
    """JS's set(name, value) on a list of (name, value) pairs (FormData,
    URLSearchParams): the first pair of that name takes the value, the
    others go; none: appended. Returns the new list."""
    out, done = [], False
    for k, v in pairs:
        if k != name:
            out.append((k, v))
        elif not done:
            out.append((k, value))
            done = True
    if not done:
        out.append((name, value))
    return out


def _entry_value(name, value, filename):
    if isinstance(value, Blob):
        if isinstance(value, File) and filename is None:
            return value
        return File._named(value._data, name if filename is None else str(filename),
                           value.type)
    if isinstance(value, (list, tuple)):
        raise TypeError("Expected single item in arguments to FormData.__setitem__")
    return "null" if value is None else _js_string(value)  # JS's String(value)


class FormData(MutableMapping):
    """Form fields and files; a Request/Response/fetch body (multipart)."""

    def __init__(self, form_data=None):
        self._entries = []
        if not form_data:
            return
        if isinstance(form_data, FormData):
            self._entries = list(form_data._entries)
        elif isinstance(form_data, Mapping):
            for k, v in form_data.items():
                self.append(k, v)
        else:
            raise TypeError("Expected form_data to be a dict or an instance of FormData")

    @classmethod
    def new(cls, form=None):
        """JS's `new FormData()`: Workers take no form element."""
        if form is not None:
            raise TypeError("FormData.new(form) takes no form element in Workers")
        return cls()

    # -- the mapping ------------------------------------------------------
    def __getitem__(self, key):
        for k, v in self._entries:
            if k == key:
                return v
        return None

    def get(self, key, default=None):
        for k, v in self._entries:
            if k == key:
                return v
        return default

    def __setitem__(self, key, value):
        self.set(key, value)

    def __delitem__(self, key):
        self.delete(key)

    def __contains__(self, key):
        return any(k == key for k, _ in self._entries)

    has = __contains__

    def __iter__(self):
        return self.keys()

    def __len__(self):
        return len(self._entries)

    def keys(self):
        return iter([k for k, _ in self._entries])

    def values(self):
        return iter([v for _, v in self._entries])

    def items(self):
        return iter(list(self._entries))

    def entries(self):
        return iter([JsArray(kv) for kv in self._entries])

    # -- FormData's own ---------------------------------------------------
    def append(self, key, value, filename=None):
        key = str(key)
        self._entries.append((key, _entry_value(key, value, filename)))

    def set(self, key, value, filename=None):
        key = str(key)
        self._entries = set_pair(self._entries, key, _entry_value(key, value, filename))

    def delete(self, key):
        self._entries = [(k, v) for k, v in self._entries if k != key]

    def get_all(self, key):
        return [v for k, v in self._entries if k == key]

    def getAll(self, key):
        return JsArray(self.get_all(key))

    def forEach(self, fn):
        for k, v in list(self._entries):
            fn(v, k, self)

    @property
    def js_object(self):
        return self  # thaw's FormData is its own JavaScript object

    def _thaw_body(self):
        """(multipart bytes, Content-Type with the boundary) as a body."""
        return _multipart.encode(self._entries)

    def __eq__(self, other):
        if isinstance(other, FormData):
            return self._entries == other._entries
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        return f"FormData({self._entries!r})"


class JsFormData(FormData):
    """`js.FormData`: iterating gives [name, value] pairs, as in JS."""

    def __iter__(self):
        return self.entries()


def parse(body, content_type, cls=FormData):
    """`await request.form_data()`: a body (bytes) with its Content-Type
    read as a cls; a TypeError for another type or a malformed body."""
    return _multipart.parse(body, content_type, cls(), File)
