# Stubs of thaw's legacy `js` module, written by `thaw types`.
from typing import Any, Callable

from workers import Headers as Headers, Request as Request, Response as Response, fetch as fetch

class JSON:
    @staticmethod
    def parse(text: str | bytes) -> Any: ...
    @staticmethod
    def stringify(value: Any, replacer: Any = ..., space: int | str | None = ...) -> str: ...

class Object:
    @staticmethod
    def fromEntries(entries: Any) -> dict[Any, Any]: ...

class console:
    @staticmethod
    def log(*args: Any) -> None: ...
    info: Callable[..., None]
    debug: Callable[..., None]
    warn: Callable[..., None]
    error: Callable[..., None]
