"""Legacy `js` module: the parts of Pyodide's JS globals that old Python
Workers use (`from js import Response, Headers, JSON`).

Response / Headers / Request are the same classes as in `workers`; their
`.new(...)` classmethods mimic `new X(...)` through Pyodide's FFI.
"""

import json as _json
import sys as _sys

from workers import Headers, Request, Response, fetch

__all__ = ["Headers", "JSON", "Object", "Request", "Response", "console", "fetch"]


class JSON:
    @staticmethod
    def parse(text):
        return _json.loads(text)

    @staticmethod
    def stringify(value, replacer=None, space=None):
        # JS output: compact unless `space` is given, non-ASCII kept as is.
        if space:
            return _json.dumps(value, indent=space, ensure_ascii=False)
        return _json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Object:
    @staticmethod
    def fromEntries(entries):
        # Used as `to_js(x, dict_converter=Object.fromEntries)`.
        return dict(entries)


class console:
    # stderr, so logs never mix with anything the runtime does on stdout.
    @staticmethod
    def log(*args):
        print(*args, file=_sys.stderr)

    info = debug = warn = error = log
