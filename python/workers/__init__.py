"""thaw's `workers` module: the Python Workers SDK surface.

Pure Python and cheap to import, since every worker process preloads it.
Names match Cloudflare's `workers` package so worker code runs unchanged.
"""

from ._bind import JsException
from ._assets import Fetcher
from ._blob import Blob, File
from ._body import BodyUsedError
from ._d1 import D1Database, D1Error, D1PreparedStatement, D1Result
from ._entrypoint import DurableObject, WorkerEntrypoint, WorkflowEntrypoint, handler
from ._fetch import fetch
from ._formdata import FormData
from ._headers import Headers
from ._jsmodules import import_from_javascript, patch_env
from ._kv import KVNamespace
from ._request import Request
from ._response import Response
from ._rpc import python_from_rpc, python_to_rpc
from .sockets import Socket, SocketError, SocketInfo, connect
from ._websocket import WebSocket, WebSocketPair
from ._durable_ws import WebSocketRequestResponsePair

__all__ = [
    "Blob",
    "BodyUsedError",
    "D1Database",
    "D1Error",
    "D1PreparedStatement",
    "D1Result",
    "DurableObject",
    "Fetcher",
    "File",
    "FormData",
    "Headers",
    "JsException",
    "KVNamespace",
    "Request",
    "Response",
    "Socket",
    "SocketError",
    "SocketInfo",
    "WebSocket",
    "WebSocketPair",
    "WebSocketRequestResponsePair",
    "WorkerEntrypoint",
    "WorkflowEntrypoint",
    "connect",
    "fetch",
    "handler",
    "import_from_javascript",
    "patch_env",
    "python_from_rpc",
    "python_to_rpc",
]


def __getattr__(key):
    # as Cloudflare's SDK: `from workers import env` is cloudflare:workers' env
    # (not in __all__: outside thaw there is none)
    if key == "env":
        from ._jsmodules import current_env
        return current_env()
    if key in ("wait_until", "waitUntil"):
        from ._jsmodules import wait_until
        return wait_until
    raise AttributeError(f"module {__name__!r} has no attribute {key!r}")
