"""Durable Object ids and namespaces: `env.COUNTER` for a binding of
`durable_objects.bindings`.

An id is 32 bytes, printed as 64 lower-case hex digits, made as workerd
makes them: 16 bytes (an HMAC of the name under the namespace's key for
idFromName, random for newUniqueId), then the first 16 bytes of an HMAC of
those under the same key. So idFromName gives the same id for the same name
every time (the key is derived from the worker's name and the class's
first name: src/do/config.c), and idFromString can tell an id of another
namespace from one of its own.
"""
import hashlib
import hmac
import os

_BASE = 16  # bytes of an id before its MAC


class DurableObjectId:
    """An object's id: ``str(id)`` / ``id.toString()`` is its 64 hex
    digits; ``id.name`` is the name it came from (idFromName) or None;
    ``id.equals(other)`` and ``==`` compare the digits."""

    __slots__ = ("_hex", "_name", "_ns")

    def __init__(self, hex_, name, ns_key):
        self._hex = hex_
        self._name = name
        self._ns = ns_key

    @property
    def name(self):
        return self._name

    def toString(self):
        return self._hex

    def equals(self, other):
        return isinstance(other, DurableObjectId) and other._hex == self._hex

    def __eq__(self, other):
        if isinstance(other, DurableObjectId):
            return other._hex == self._hex
        return NotImplemented

    def __hash__(self):
        return hash(self._hex)

    def __str__(self):
        return self._hex

    def __repr__(self):
        if self._name is not None:
            return f"DurableObjectId({self._hex}, name={self._name!r})"
        return f"DurableObjectId({self._hex})"


def _mac(key, base):
    return hmac.new(key, base, hashlib.sha256).digest()[:_BASE]


class DurableObjectNamespace:
    """What `env.BINDING` is for a Durable Object binding. The key of a
    class of another worker (`script_name`) is that worker's: asked of
    the supervisor when an id is first made (src/do/bind.c, "info"), so
    ids are the ones that worker makes, and an error (not deployed, no
    such class, not granted) is raised there, at call time."""

    __slots__ = ("_binding", "_class", "_k", "_stub")

    def __init__(self, binding, class_name, key_hex, stub_factory):
        self._binding = binding
        self._class = class_name
        self._k = bytes.fromhex(key_hex) if key_hex is not None else None
        self._stub = stub_factory

    @property
    def _key(self):
        if self._k is None:
            from . import _bind
            info, _ = _bind.call_sync(self._binding, "info")
            self._k = bytes.fromhex(info["key"])
        return self._k

    def _id(self, base, name):
        return DurableObjectId((base + _mac(self._key, base)).hex(), name, self._key)

    def idFromName(self, name):
        if not isinstance(name, str):
            raise TypeError(f"idFromName() takes a string, not {type(name).__name__}")
        base = hmac.new(self._key, name.encode("utf-8"), hashlib.sha256).digest()[:_BASE]
        return self._id(base, name)

    def newUniqueId(self, options=None):
        # jurisdiction ("eu", "fedramp") is where Cloudflare keeps the object;
        # thaw keeps every object on this machine, so it is accepted as is
        _check_options(options, "newUniqueId", ("jurisdiction",))
        return self._id(os.urandom(_BASE), None)

    def idFromString(self, id):
        if not isinstance(id, str):
            raise TypeError(f"idFromString() takes a string, not {type(id).__name__}")
        try:
            raw = bytes.fromhex(id) if len(id) == 64 else b""
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise TypeError("Invalid Durable Object ID: must be 64 hex digits")
        if not hmac.compare_digest(raw[_BASE:], _mac(self._key, raw[:_BASE])):
            raise TypeError("Durable Object ID is not valid for this namespace.")
        return DurableObjectId(raw.hex(), None, self._key)

    def get(self, id, options=None):
        if not isinstance(id, DurableObjectId):
            raise TypeError(f"get() takes a DurableObjectId (from idFromName, newUniqueId "
                            f"or idFromString), not {type(id).__name__}")
        if id._ns != self._key:
            raise TypeError("ID is not for this Durable Object class.")
        # locationHint: where Cloudflare should start the object; one place here
        _check_options(options, "get", ("locationHint",))
        return self._stub(self, id)

    def getByName(self, name, options=None):
        return self.get(self.idFromName(name), options)

    def jurisdiction(self, name):
        """A namespace whose objects Cloudflare keeps in `name`; the same
        objects here (one machine)."""
        if not isinstance(name, str):
            raise TypeError(f"jurisdiction() takes a string, not {type(name).__name__}")
        return self

    def __repr__(self):
        return f"<DurableObjectNamespace {self._binding} (class {self._class})>"


def _check_options(options, what, allowed):
    if options is None:
        return
    if hasattr(options, "to_py"):
        options = options.to_py()
    if not isinstance(options, dict):
        raise TypeError(f"{what}() options must be a dict, like "
                        f"{{{allowed[0]!r}: ...}}, not {type(options).__name__}")
    for k in options:
        if k not in allowed:
            raise TypeError(f"{what}() has no option {k!r} (it takes "
                            f"{', '.join(map(repr, allowed))})")
