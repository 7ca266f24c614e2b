"""thaw's `pyodide` package: the parts of Pyodide's Python API that Python
Workers code imports (`pyodide.ffi`, `pyodide.http`), for native CPython.
thaw does not run Pyodide; see docs/compat.md for what each name does here."""
from . import ffi  # noqa: F401

__all__ = ["ffi", "http"]


def __getattr__(name):
    # pyodide.http imports workers' fetch; loaded on first use
    if name == "http":
        from . import http
        return http
    raise AttributeError(f"module 'pyodide' has no attribute {name!r}")
