"""to_js and to_py: Python values to thaw's JS values and back
(pyodide.ffi, with Pyodide's rules: lists become Arrays, dicts Maps unless
a dict_converter says otherwise, buffers Uint8Arrays, sets Sets; numbers,
strings, booleans and None stay as they are)."""
from ._values import JsArray, JsBuffer, JsMap, JsProxy, JsSet


class ConversionError(TypeError):
    """A value to_js cannot give JavaScript (a TypeError, so `except
    TypeError` catches it too)."""


_SCALARS = (type(None), bool, int, float, str)
_KINDS = "None, bool, int, float, str, bytes-like, list, tuple, dict, set, or a callable"


def to_js(obj, /, *, depth=-1, pyproxies=None, create_pyproxies=True, dict_converter=None,
          default_converter=None, eager_converter=None):
    """The JavaScript value for obj. depth limits how deep containers are
    converted (-1: all the way); below it, values are left as they are."""
    seen = {}

    def convert(value, depth):
        if isinstance(value, _SCALARS) or isinstance(value, JsProxy):
            return value
        if depth == 0:
            return value
        key = id(value)
        if key in seen:
            return seen[key]  # a container that holds itself, as Pyodide keeps it
        if eager_converter is not None:
            out = eager_converter(value, lambda v: convert(v, depth - 1),
                                  lambda a, b: seen.__setitem__(id(a), b))
            if out is not None:
                return out
        if isinstance(value, (list, tuple)):
            out = seen[key] = JsArray()
            out.extend(convert(v, depth - 1) for v in value)
            return out
        if isinstance(value, dict):
            pairs = [JsArray([k, convert(v, depth - 1)]) for k, v in value.items()]
            if dict_converter is not None:
                out = dict_converter(pairs)
            else:
                out = JsMap(pairs)
            seen[key] = out
            return out
        if isinstance(value, (set, frozenset)):
            out = seen[key] = JsSet(convert(v, depth - 1) for v in value)
            return out
        try:
            view = memoryview(value)
        except TypeError:
            pass
        else:
            out = seen[key] = JsBuffer(view.tobytes())  # its bytes, as a Uint8Array
            return out
        if default_converter is not None:
            return default_converter(value, lambda v: convert(v, depth - 1),
                                     lambda a, b: seen.__setitem__(id(a), b))
        if callable(value) and create_pyproxies:
            # a function passed to JS: in thaw the "proxy" is the function itself
            return value
        raise ConversionError(
            f"to_js: cannot convert a {type(value).__module__}.{type(value).__qualname__} "
            f"object to a JavaScript value: thaw runs native Python with no JavaScript "
            f"heap to hold a proxy of it. to_js takes {_KINDS}; convert the object to "
            f"one of those first (e.g. a dict of its fields), or pass "
            f"default_converter=...")

    return convert(obj, depth)


def to_py(obj, /, *, depth=-1, default_converter=None):
    """The plain Python value of a JS value: Arrays become lists, Maps and
    objects dicts, Sets sets, buffers bytes; other values are returned as
    they are."""

    def convert(value, depth):
        if depth == 0:
            return value
        if isinstance(value, JsBuffer):
            return bytes(value)
        if isinstance(value, JsArray):
            return [convert(v, depth - 1) for v in value]
        if isinstance(value, JsSet):
            return {convert(v, depth - 1) for v in value}
        if isinstance(value, dict) and isinstance(value, JsProxy):
            return {k: convert(v, depth - 1) for k, v in value.items()}
        if isinstance(value, JsProxy):
            own = getattr(type(value), "to_py", None)
            if own is not None and own is not JsProxy.to_py:
                return value.to_py()  # a registered thaw value (KV's JsObject, ...)
            if default_converter is not None:
                return default_converter(value, lambda v: convert(v, depth - 1),
                                         lambda a, b: None)
        return value

    return convert(obj, depth)
