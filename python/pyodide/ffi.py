"""`pyodide.ffi` for Python Workers code on thaw: the names Cloudflare's
FFI documentation uses (to_js with dict_converter, create_proxy, JsProxy,
JsException, ...), over thaw's Python-side JS values (_values.py).

What differs from Pyodide, and why, is in docs/compat.md."""
from workers._bind import JsException
from workers._body import Buffer as _Buffer
from workers._kv import JsObject as _KVObject

from ._convert import ConversionError, to_js, to_py
from ._proxies import (JsDoubleProxy, create_once_callable, create_proxy, destroy_proxies,
                       run_sync)
from ._values import JsArray, JsBuffer, JsMap, JsObject, JsProxy, JsSet

# thaw's own JS-style results are JS values too
JsBuffer.register(_Buffer)        # await request.arrayBuffer()
JsProxy.register(_KVObject)       # KV list() / getWithMetadata() results

JsTypedArray = JsBuffer
JsMutableMap = JsMap
JsCallable = JsDoubleProxy
JsOnceCallable = JsDoubleProxy

__all__ = [
    "ConversionError", "JsArray", "JsBuffer", "JsCallable", "JsDoubleProxy", "JsException",
    "JsMap", "JsMutableMap", "JsObject", "JsOnceCallable", "JsProxy", "JsSet",
    "JsTypedArray", "create_once_callable", "create_proxy", "destroy_proxies", "run_sync",
    "to_js", "to_py",
]
