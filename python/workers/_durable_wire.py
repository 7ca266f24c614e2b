"""How RPC arguments and results of Durable Object calls travel between
instances: structured clone's Python side, as JSON with tags.

What may travel is what Cloudflare's RPC carries for Python: None, bool,
int, float, str, bytes, list, dict (string keys), set, datetime, and
JavaScript values (to_js results: converted back with python_from_rpc).
A tuple, a bytearray or an awaitable is the TypeError Cloudflare raises
("... cannot be sent over RPC."), as is anything else. On arrival, dicts
read as attributes too (JsDict) and datetimes are naive UTC, as
python_from_rpc returns them.

Tags: {"$b": base64} bytes, {"$d": ms} a datetime, {"$s": [...]} a set,
{"$o": [[key, value], ...]} a dict, {"$f": "nan"|"inf"|"-inf"} a float
JSON cannot hold.
"""
import base64
import datetime
import json
import math

_EPOCH = datetime.datetime(1970, 1, 1)
_EPOCH_UTC = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def _cannot(value):
    import inspect
    if inspect.isawaitable(value):
        return TypeError(f"Awaitable {type(value)} cannot be sent over RPC.")
    return TypeError(f"{type(value)} cannot be sent over RPC.")


def _enc(v, depth):
    if depth > 100:
        raise TypeError("a value nested over 100 levels cannot be sent over RPC.")
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if math.isfinite(v):
            return v
        return {"$f": "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")}
    if type(v) is bytes:
        return {"$b": base64.b64encode(v).decode()}
    if isinstance(v, list):
        return [_enc(x, depth + 1) for x in v]
    if isinstance(v, dict):
        out = []
        for k, x in v.items():
            if not isinstance(k, str):
                raise TypeError(f"a dict key {k!r} cannot be sent over RPC: keys are strings "
                                f"(JavaScript object keys)")
            out.append([k, _enc(x, depth + 1)])
        return {"$o": out}
    if isinstance(v, (set, frozenset)):
        return {"$s": [_enc(x, depth + 1) for x in v]}
    if isinstance(v, datetime.datetime):
        since = (v - _EPOCH_UTC) if v.tzinfo else (v - _EPOCH)
        return {"$d": since // datetime.timedelta(milliseconds=1)}
    if type(v).__module__.startswith(("pyodide", "_thaw_js")):
        # a to_js value: Python's view of it, as the other side would see it
        from ._rpc import python_from_rpc
        back = python_from_rpc(v)
        if back is not v:
            return _enc(back, depth + 1)
    raise _cannot(v)


def encode(value):
    """JSON bytes of value, or TypeError."""
    return json.dumps(_enc(value, 0), separators=(",", ":"), allow_nan=False).encode()


def _dec(v):
    if isinstance(v, list):
        return [_dec(x) for x in v]
    if isinstance(v, dict):
        if "$o" in v:
            from ._rpc import JsDict
            return JsDict((k, _dec(x)) for k, x in v["$o"])
        if "$b" in v:
            return base64.b64decode(v["$b"])
        if "$d" in v:
            return _EPOCH + datetime.timedelta(milliseconds=v["$d"])
        if "$s" in v:
            return {_dec(x) for x in v["$s"]}
        if "$f" in v:
            return float(v["$f"])
        raise ValueError(f"an RPC value thaw does not know: {v!r}")
    return v


def decode(data):
    return _dec(json.loads(data))
