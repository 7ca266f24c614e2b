"""thaw's `pyodide` package: the parts of Pyodide's Python API that Python
Workers code imports (`pyodide.ffi`, `pyodide.http`), for native CPython.
thaw does not run Pyodide; see docs/compat.md for what each name does here.
Its submodules load on first use: `js` (which every worker process
preloads) reaches only _values, and must stay light."""
import importlib

__all__ = ["ffi", "http"]


def __getattr__(name):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'pyodide' has no attribute {name!r}")
