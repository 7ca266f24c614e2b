"""thaw's `workers` module: the Python Workers SDK surface.

Pure Python and cheap to import, since every worker process preloads it.
Names match Cloudflare's `workers` package so worker code runs unchanged.
"""

from ._bind import JsException
from ._assets import Fetcher
from ._body import BodyUsedError
from ._d1 import D1Database, D1Error, D1PreparedStatement, D1Result
from ._entrypoint import DurableObject, WorkerEntrypoint, WorkflowEntrypoint, handler
from ._fetch import fetch
from ._headers import Headers
from ._kv import KVNamespace
from ._request import Request
from ._response import Response
from .sockets import Socket, SocketError, SocketInfo, connect
from ._websocket import WebSocket, WebSocketPair

__all__ = [
    "BodyUsedError",
    "D1Database",
    "D1Error",
    "D1PreparedStatement",
    "D1Result",
    "DurableObject",
    "Fetcher",
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
    "WorkerEntrypoint",
    "WorkflowEntrypoint",
    "connect",
    "fetch",
    "handler",
]
