"""The `js` module: the JavaScript globals Python Workers code imports
(`from js import Response, fetch, URL, Object, JSON, console, ...`), as
Pyodide exposes them on Cloudflare. `X.new(...)` is `new X(...)`.

Response / Headers / Request / fetch are the `workers` SDK's; the others
live in _thaw_js/, one module per family, and return pyodide.ffi's values
(JsObject, JsArray, JsBuffer). docs/compat.md lists each with its status.
"""
import workers as _workers
from _thaw_js import blob as _blob
from _thaw_js.abort import AbortController, AbortSignal
from _thaw_js.crypto import crypto
from _thaw_js.text import TextDecoder, TextEncoder, atob, btoa
from _thaw_js.timers import clearInterval, clearTimeout, setInterval, setTimeout
from _thaw_js.url import URL, URLSearchParams
from _thaw_js.values import (JSON, Array, ArrayBuffer, Date, Map, Math, Object, Set,
                             Uint8Array, console)
from workers import Headers, Request, Response, WebSocket, WebSocketPair, fetch

# the SDK's own classes, once it has them (they can be bodies)
Blob = getattr(_workers, "Blob", _blob.Blob)
File = getattr(_workers, "File", _blob.File)
FormData = getattr(_workers, "FormData", _blob.FormData)

__all__ = [
    "AbortController", "AbortSignal", "Array", "ArrayBuffer", "Blob", "Date", "File",
    "FormData", "Headers", "JSON", "Map", "Math", "Object", "Request", "Response", "Set",
    "TextDecoder", "TextEncoder", "URL", "URLSearchParams", "Uint8Array", "WebSocket",
    "WebSocketPair", "atob", "btoa",
    "clearInterval", "clearTimeout", "console", "crypto", "fetch", "setInterval",
    "setTimeout",
]
