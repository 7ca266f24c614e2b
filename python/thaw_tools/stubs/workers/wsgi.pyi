# Stubs of thaw's `workers.wsgi`, written by `thaw types`.
from typing import Any

from env import Env as _Env

from . import Request, Response

WHOLE_LIMIT: int

async def fetch(app: Any, request: Request, env: _Env | None = ..., ctx: Any = ...) -> Response: ...
