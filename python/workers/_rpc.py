"""`python_to_rpc` and `python_from_rpc`: Cloudflare's helpers that turn
Python values into the JavaScript values Workers RPC carries, and back.

thaw runs no Workers RPC (no service bindings or Durable Objects, which
carry it), but code that calls these helpers runs, with the same rules:
to JS, dicts become plain objects, lists arrays, datetimes Dates, the
SDK's Request/Response/FormData/Blob/File stay themselves (thaw's are their
own JS objects), and a tuple, a bytearray or an awaitable is a TypeError
("... cannot be sent over RPC."); from JS, objects become dicts whose keys
are attributes too, arrays lists, Dates datetimes.
"""
import datetime

from pyodide._convert import to_js
from pyodide._values import FieldsAsAttributes, JsArray, JsBuffer, JsMap, JsProxy, JsSet

from ._bind import JsException


class JsDict(FieldsAsAttributes, dict):
    """A dict whose keys read as attributes too (`value.name`), as
    Cloudflare's python_from_rpc returns a JS object."""

    __slots__ = ()


def _refuse(value):
    import inspect  # here: `import workers` stays light (test_import_is_light)
    if isinstance(value, (tuple, bytearray)):
        raise TypeError(f"{type(value)} cannot be sent over RPC.")
    if inspect.isawaitable(value):
        raise TypeError(f"Awaitable {type(value)} cannot be sent over RPC.")
    if isinstance(value, dict):
        for v in value.values():
            _refuse(v)
    elif isinstance(value, (list, set, frozenset)):
        for v in value:
            _refuse(v)


def _to_rpc_default(obj, convert, cache):
    if hasattr(obj, "js_object"):
        return obj.js_object  # Request, Response, FormData, Blob, File
    if isinstance(obj, datetime.datetime):
        from _thaw_js.values import Date
        return Date(int(obj.timestamp() * 1000))
    if isinstance(obj, Exception):
        return JsException("Error", str(obj))
    raise TypeError(f"{type(obj)} cannot be sent over RPC.")


def python_to_rpc(value):
    """The JavaScript value of `value`, as Workers RPC would send it."""
    if value is None:
        return None
    _refuse(value)
    from _thaw_js.values import Object
    return to_js(value, default_converter=_to_rpc_default,
                 dict_converter=Object.fromEntries)


def python_from_rpc(obj):
    """The Python value of a JavaScript value Workers RPC delivered."""
    from _thaw_js.values import Date
    if isinstance(obj, JsBuffer):
        return bytes(obj)
    if isinstance(obj, JsSet):
        return {python_from_rpc(v) for v in obj}
    if isinstance(obj, JsArray):
        return [python_from_rpc(v) for v in obj]
    if isinstance(obj, dict) and (isinstance(obj, (JsProxy, JsMap)) or type(obj) is dict):
        return JsDict((k, python_from_rpc(v)) for k, v in obj.items())
    if isinstance(obj, Date):
        return datetime.datetime.fromtimestamp(obj.getTime() / 1000)
    if isinstance(obj, JsException):
        return Exception(str(obj))
    return obj
