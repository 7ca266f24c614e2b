# Stubs of thaw's `workers.asgi` (also `import asgi`), written by `thaw types`.
from typing import Any

from env import Env as _Env

from . import Request, Response

class ClientDisconnected(OSError): ...

async def fetch(app: Any, request: Request, env: _Env | None = ..., ctx: Any = ...) -> Response: ...

# FastAPI: `env=asgi.env` gives a path operation the worker's env (a Depends)
env: Any
