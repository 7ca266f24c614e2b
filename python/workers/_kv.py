"""KV namespaces: config `kv_namespaces = [{binding = "MY_KV", id = "..."}]`
makes `env.MY_KV` a KVNamespace with Cloudflare's methods (get,
getWithMetadata, put, delete, list). The data lives in the supervisor
(src/bind/kv.c: SQLite under thaw's state directory, or Redis); this
module shapes arguments and answers the way Python Workers see them.

Results that are JavaScript objects on Cloudflare (list(), getWithMetadata())
are JsObject here: attribute and item access, `.to_py()` for a plain dict.
"""
import json

from . import _bind
from ._body import Buffer as _Buffer

MAX_VALUE = 25 * 1024 * 1024
_TYPES = ("text", "json", "arrayBuffer", "bytes", "stream")
_CHUNK = 64 * 1024


class JsObject:
    """A JavaScript-style result object: ``r.name`` and ``r["name"]``, ``in``,
    iteration over its names, and ``to_py()`` for a plain dict (as Pyodide's
    JsProxy has). Missing names raise AttributeError / KeyError."""

    __slots__ = ("_d",)

    def __init__(self, d):
        object.__setattr__(self, "_d", d)

    def __getattr__(self, name):
        try:
            return self._d[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self._d[name] = value

    def __getitem__(self, name):
        return self._d[name]

    def __contains__(self, name):
        return name in self._d

    def __iter__(self):
        return iter(self._d)

    def __len__(self):
        return len(self._d)

    def get(self, name, default=None):
        return self._d.get(name, default)

    def to_py(self):
        return {k: _to_py(v) for k, v in self._d.items()}

    def __eq__(self, other):
        if isinstance(other, JsObject):
            other = other.to_py()
        return self.to_py() == other

    __hash__ = None

    def __repr__(self):
        return f"JsObject({self.to_py()!r})"


def _to_py(v):
    if isinstance(v, JsObject):
        return v.to_py()
    if isinstance(v, list):
        return [_to_py(x) for x in v]
    return v


class KVStream:
    """What get(key, "stream") returns: an async iterator of bytes chunks."""

    __slots__ = ("_data",)

    def __init__(self, data):
        self._data = data

    async def __aiter__(self):
        view = memoryview(self._data)
        for i in range(0, len(view), _CHUNK):
            yield bytes(view[i:i + _CHUNK])


def _text(value, what, op):
    """A string argument that can travel as JSON: str, valid UTF-8, no NUL."""
    if not isinstance(value, str):
        raise TypeError(f"KV {op}: {what} must be a str, not {type(value).__name__}")
    if "\x00" in value:
        raise ValueError(f"KV {op}: {what} contains a NUL character (U+0000), "
                         f"which keys cannot hold")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"KV {op}: {what} is not valid Unicode (a lone surrogate)") \
            from None
    return value


def _options(op, options, kwargs, allowed):
    """Cloudflare's options object, as a dict or keyword arguments."""
    if options is None:
        opts = {}
    elif isinstance(options, dict):
        opts = dict(options)
    elif hasattr(options, "to_py"):
        opts = dict(options.to_py())
    else:
        raise TypeError(f"KV {op}: options must be a dict, not {type(options).__name__}")
    opts.update(kwargs)
    for name in opts:
        if name not in allowed:
            raise TypeError(f"KV {op}: unknown option {name!r}; "
                            f"options are {', '.join(allowed)}")
    return opts


def _get_type(op, type_or_options, kwargs):
    if isinstance(type_or_options, str):
        if kwargs.keys() - {"cacheTtl", "cache_ttl"}:
            raise TypeError(f"KV {op}: give the type once")
        kind = type_or_options
    else:
        opts = _options(op, type_or_options, kwargs, ("type", "cacheTtl", "cache_ttl"))
        kind = opts.get("type") or "text"
    if kind not in _TYPES:
        raise TypeError(f"KV {op}: unknown type {kind!r}; possible types are \"text\", "
                        f"\"json\", \"arrayBuffer\" (or \"bytes\") and \"stream\"")
    return kind


def _decode(kind, data):
    if kind == "text":
        return data.decode("utf-8", "replace")
    if kind == "json":
        return json.loads(data.decode("utf-8", "replace"))
    if kind == "stream":
        return KVStream(data)
    return _Buffer(data) if kind == "arrayBuffer" else data  # .to_bytes(), as a JsBuffer


class KVNamespace:
    """A KV namespace binding (env.NAME): every method is a coroutine."""

    __slots__ = ("_binding",)

    def __init__(self, binding):
        self._binding = binding

    def __repr__(self):
        return f"<KVNamespace {self._binding}>"

    async def _get(self, op, key, type_or_options, kwargs, with_metadata):
        kind = _get_type(op, type_or_options, kwargs)
        bulk = isinstance(key, (list, tuple))
        if bulk:
            keys = [_text(k, "each key", op) for k in key]
            if kind not in ("text", "json"):
                raise TypeError(f"KV {op}: a list of keys can be read as \"text\" or "
                                f"\"json\" only, not {kind!r}")
        else:
            keys = [_text(key, "the key", op)]
        result, body = await _bind.call(self._binding, "get", {"keys": keys})
        body = body or b""
        out, pos = [], 0
        for item in result["values"]:
            if item is None:
                value, meta = None, None
            else:
                n = item["len"]
                value = _decode(kind, body[pos:pos + n])
                meta = item.get("metadata")
                pos += n
            if with_metadata:
                out.append(JsObject({"value": value, "metadata": meta,
                                     "cacheStatus": None}))
            else:
                out.append(value)
        if bulk:
            return dict(zip(keys, out))
        return out[0]

    async def get(self, key, type_or_options=None, /, **kwargs):
        """get(key) -> str or None; get(key, "json" | "arrayBuffer" | "bytes" |
        "stream") or get(key, {"type": ...}) or get(key, type=...); get([k1,
        k2]) -> {k1: value or None, ...} (at most 100 keys, "text" or "json")."""
        return await self._get("get", key, type_or_options, kwargs, False)

    async def getWithMetadata(self, key, type_or_options=None, /, **kwargs):
        """Like get(), but returns an object with .value and .metadata (both
        None when the key does not exist); for a list of keys, a dict of them."""
        return await self._get("getWithMetadata", key, type_or_options, kwargs, True)

    get_with_metadata = getWithMetadata

    async def put(self, key, value, options=None, /, **kwargs):
        """put(key, value, {"expirationTtl": s, "expiration": t, "metadata": {...}}):
        value is a str, bytes (bytearray, memoryview) or an async iterator of
        bytes; store other objects as json.dumps(obj)."""
        key = _text(key, "the key", "put")
        opts = _options("put", options, kwargs, ("expiration", "expirationTtl",
                                                 "expiration_ttl", "metadata"))
        if isinstance(value, str):
            try:
                data = value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("KV put: the value is not valid Unicode (a lone "
                                 "surrogate); pass bytes instead") from None
        elif isinstance(value, (bytes, bytearray, memoryview)):
            data = bytes(value)
        elif hasattr(value, "__aiter__"):
            parts, size = [], 0
            async for chunk in value:
                if not isinstance(chunk, (bytes, bytearray, memoryview)):
                    raise TypeError("KV put: a streamed value must yield bytes, not "
                                    f"{type(chunk).__name__}")
                parts.append(bytes(chunk))
                size += len(parts[-1])
                if size > MAX_VALUE:
                    break
            data = b"".join(parts)
        else:
            raise TypeError(
                f"KV put: the value must be a str, bytes or a stream of bytes, not "
                f"{type(value).__name__}; to store it as JSON, put json.dumps(value) "
                f"and read it back with get(key, \"json\")")
        if len(data) > MAX_VALUE:
            more = " or more" if hasattr(value, "__aiter__") else ""
            raise ValueError(f"KV put: the value of \"{key}\" is {len(data)} bytes{more}; "
                             f"values can be at most 25 MiB ({MAX_VALUE} bytes)")
        args = {"key": key}
        ttl = opts.get("expirationTtl", opts.get("expiration_ttl"))
        for name, v in (("expirationTtl", ttl), ("expiration", opts.get("expiration"))):
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"KV put: {name} must be a number of seconds, not "
                                f"{type(v).__name__}")
            args[name] = v
        if opts.get("metadata") is not None:
            try:
                meta = json.dumps(_to_py(opts["metadata"]), separators=(",", ":"),
                                  ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"KV put: metadata must be JSON-serialisable: {exc}") \
                    from None
            args["metadata"] = _text(meta, "the metadata", "put")
        await _bind.call(self._binding, "put", args, data)

    async def delete(self, key):
        """Removes key (nothing happens when it does not exist)."""
        await _bind.call(self._binding, "delete", {"key": _text(key, "the key", "delete")})

    async def list(self, options=None, /, **kwargs):
        """list({"prefix": p, "limit": n, "cursor": c}) or list(prefix=...) ->
        {"keys": [{"name", "expiration"?, "metadata"?}], "list_complete": bool,
        "cursor": str (when list_complete is false)}, names in byte order,
        at most 1000 (the default) a page."""
        opts = _options("list", options, kwargs, ("prefix", "limit", "cursor"))
        args = {}
        for name in ("prefix", "cursor"):
            if opts.get(name) is not None:
                args[name] = _text(opts[name], name, "list")
        limit = opts.get("limit")
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int):
                raise TypeError(f"KV list: limit must be an int, not {type(limit).__name__}")
            args["limit"] = limit
        _, body = await _bind.call(self._binding, "list", args)
        result = json.loads(body)
        result["keys"] = [JsObject(k) for k in result["keys"]]
        return JsObject(result)


def bindings_from_config(config):
    for entry in config.get("kv_namespaces") or ():
        if isinstance(entry, dict) and isinstance(entry.get("binding"), str):
            yield entry["binding"], KVNamespace(entry["binding"])
