"""Headers: a case-insensitive, order-preserving multi-map of HTTP headers.

It mixes the JS `Headers` API (get/has/set/append/delete, `.new`) with the
read API of `http.client.HTTPMessage`, which is what Cloudflare's Python
`Request.headers` returns (get_all, items with repeats, len counts every
field).  Names are stored lower-case, as JS Headers reports them.
"""

# RFC 9110 "tchar": the only characters allowed in a header name.
_TCHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789"
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
# Characters that would let a value end the header line (header injection).
_FORBIDDEN_IN_VALUE = ("\r", "\n", "\0")


def _check_name(name):
    if isinstance(name, (bytes, bytearray)):
        name = bytes(name).decode("latin-1")
    elif not isinstance(name, str):
        raise TypeError(f"header name must be str, not {type(name).__name__}")
    if not name or not _TCHARS.issuperset(name):
        if any(c in name for c in _FORBIDDEN_IN_VALUE):
            raise ValueError(f"header name {name!r} contains CR, LF or NUL")
        raise ValueError(f"invalid header name {name!r}")
    return name.lower()


def _check_value(lname, value):
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1")
    elif not isinstance(value, str):
        # JS stringifies numbers etc.; Cloudflare code passes ints for lengths.
        value = str(value)
    # Fetch "normalize": strip surrounding spaces/tabs.  CR/LF are rejected
    # rather than stripped so a smuggled line break is always an error.
    value = value.strip(" \t")
    for c in _FORBIDDEN_IN_VALUE:
        if c in value:
            raise ValueError(f"value of header {lname!r} contains CR, LF or NUL")
    if not value.isascii():
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            # Headers are byte strings on the wire (JS ByteString).
            raise ValueError(
                f"value of header {lname!r} has characters above U+00FF"
            ) from None
    return value


class Headers:
    """Case-insensitive HTTP headers keeping repeated fields in order.

    Iteration, items(), keys(), values() and len() all work on the raw
    (name, value) fields, repeats included; get() joins repeats with ", "
    like JS.  `h[name]` raises KeyError when absent.
    """

    __slots__ = ("_pairs",)

    def __init__(self, init=None):
        self._pairs = []
        if init is None:
            return
        if isinstance(init, Headers):
            self._pairs = list(init._pairs)
            return
        if hasattr(init, "items"):
            init = init.items()
        elif isinstance(init, (str, bytes)):
            raise TypeError("headers init must be a dict, pairs or Headers")
        for pair in init:
            try:
                name, value = pair
            except (TypeError, ValueError):
                raise TypeError(
                    f"header init entries must be (name, value) pairs, got {pair!r}"
                ) from None
            if isinstance(value, (list, tuple)):
                # {"set-cookie": ["a=1", "b=2"]}: one field per item.
                for v in value:
                    self.append(name, v)
            else:
                self.append(name, value)

    @classmethod
    def new(cls, init=None):
        """JS-style constructor (`js.Headers.new(...)`)."""
        return cls(init)

    @classmethod
    def _thaw_owned(cls, pairs):
        # Runtime fast path: a list of (lower-case name, value) str tuples
        # that nobody else holds (the instance's decoder made it).
        h = cls.__new__(cls)
        h._pairs = pairs
        return h

    @classmethod
    def _thaw_trusted(cls, pairs):
        # Runtime fast path: the C parser already validated these fields.
        h = cls.__new__(cls)
        h._pairs = [(n.lower(), v) for n, v in pairs]
        return h

    @classmethod
    def _thaw_from_bytes(cls, pairs):
        """ASGI response headers, (bytes, bytes) pairs: the checks of
        append() in one pass (latin-1 text cannot go above U+00FF); on a
        bad field, append() raises its precise error."""
        h = cls.__new__(cls)
        out = h._pairs = []
        for n, v in pairs:
            name = n.decode("latin-1")
            value = v.decode("latin-1").strip(" \t")
            if (not name or not _TCHARS.issuperset(name) or "\r" in value
                    or "\n" in value or "\0" in value):
                h._pairs = []
                for n2, v2 in pairs:
                    h.append(n2, v2)
                return h
            out.append((name.lower(), value))
        return h

    def _thaw_pairs(self):
        """(lower-case name, value) fields in insertion order, for the runtime."""
        return list(self._pairs)

    # -- JS Headers API -------------------------------------------------
    def get(self, name, default=None):
        lname = name.lower()
        found = [v for n, v in self._pairs if n == lname]
        return ", ".join(found) if found else default

    def has(self, name):
        lname = name.lower()
        return any(n == lname for n, _ in self._pairs)

    def set(self, name, value):
        """Replace every field `name` by one, kept at the first one's place."""
        lname = _check_name(name)
        value = _check_value(lname, value)
        out, done = [], False
        for pair in self._pairs:
            if pair[0] != lname:
                out.append(pair)
            elif not done:
                out.append((lname, value))
                done = True
        if not done:
            out.append((lname, value))
        self._pairs = out

    def append(self, name, value):
        lname = _check_name(name)
        self._pairs.append((lname, _check_value(lname, value)))

    def delete(self, name):
        lname = name.lower()
        self._pairs = [p for p in self._pairs if p[0] != lname]

    def getSetCookie(self):
        return self.get_all("set-cookie", [])

    def entries(self):
        return iter(list(self._pairs))

    # -- HTTPMessage / dict-style API -----------------------------------
    def get_all(self, name, default=None):
        """Every value of `name` as a list, or `default` (HTTPMessage style)."""
        lname = name.lower()
        found = [v for n, v in self._pairs if n == lname]
        return found if found else default

    getAll = get_all

    def items(self):
        return list(self._pairs)

    def keys(self):
        return [n for n, _ in self._pairs]

    def values(self):
        return [v for _, v in self._pairs]

    def copy(self):
        return Headers(self)

    def __iter__(self):
        return iter(list(self._pairs))

    def __contains__(self, name):
        return isinstance(name, str) and self.has(name)

    def __getitem__(self, name):
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name, value):
        self.set(name, value)

    def __delitem__(self, name):
        # Silent when absent, like JS delete and HTTPMessage.
        self.delete(name)

    def __len__(self):
        return len(self._pairs)

    def __eq__(self, other):
        if isinstance(other, Headers):
            return self._pairs == other._pairs
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        # Names only: request headers carry cookies and credentials.
        return f"Headers({[n for n, _ in self._pairs]!r})"
