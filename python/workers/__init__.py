"""thaw's `workers` module: the Python Workers SDK surface.

Pure Python and cheap to import, since every worker process preloads it.
Names match Cloudflare's `workers` package so worker code runs unchanged.
"""

from ._body import BodyUsedError
from ._entrypoint import DurableObject, WorkerEntrypoint, WorkflowEntrypoint, handler
from ._fetch import fetch
from ._headers import Headers
from ._request import Request
from ._response import Response

__all__ = [
    "BodyUsedError",
    "DurableObject",
    "Headers",
    "Request",
    "Response",
    "WorkerEntrypoint",
    "WorkflowEntrypoint",
    "fetch",
    "handler",
]
