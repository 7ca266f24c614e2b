# Stubs of thaw's `pyodide` package, written by `thaw types`.
from . import ffi as ffi, http as http
