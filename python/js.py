"""The `js` module: the JavaScript globals Python Workers code imports
(`from js import Response, fetch, URL, Object, JSON, console, ...`), as
Pyodide exposes them on Cloudflare. `X.new(...)` is `new X(...)`.

Response / Headers / Request / fetch / Blob / File / FormData /
WebSocket / WebSocketPair are the
`workers` SDK's (one class each, so either can be a body); the others
live in _thaw_js/, one module per family, and return pyodide.ffi's values
(JsObject, JsArray, JsBuffer). docs/compat.md lists each with its status.
"""
from _thaw_js.abort import AbortController, AbortSignal
from _thaw_js.crypto import crypto
from _thaw_js.text import TextDecoder, TextEncoder, atob, btoa
from _thaw_js.timers import clearInterval, clearTimeout, setInterval, setTimeout
from _thaw_js.url import URL, URLSearchParams
from _thaw_js.values import (JSON, Array, ArrayBuffer, Date, Map, Math, Object, Set,
                             Uint8Array, console)
from workers import Blob, File, Headers, Request, Response, WebSocket, WebSocketPair, fetch
# the SDK's own class; iterating it gives [name, value] pairs, as in JS
from workers._formdata import JsFormData as FormData

__all__ = [
    "AbortController", "AbortSignal", "Array", "ArrayBuffer", "Blob", "Date", "File",
    "FormData", "Headers", "JSON", "Map", "Math", "Object", "Request", "Response", "Set",
    "TextDecoder", "TextEncoder", "URL", "URLSearchParams", "Uint8Array", "WebSocket",
    "WebSocketPair", "atob", "btoa",
    "clearInterval", "clearTimeout", "console", "crypto", "fetch", "setInterval",
    "setTimeout",
]
