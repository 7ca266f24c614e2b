"""The JavaScript globals of thaw's `js` module (python/js.py), one small
module per family: url, timers, crypto, text, values (Object, JSON, Date,
Math, typed arrays), abort. (Blob, File and FormData are the `workers`
SDK's, python/workers/_blob.py and _formdata.py.) Each class is constructed as Pyodide
spells it, `X.new(...)`, and also as a Python class, `X(...)`."""


class New:
    """`X.new(*args)`: Pyodide's spelling of JavaScript's `new X(...)`."""

    __slots__ = ()

    @classmethod
    def new(cls, *args, **kwargs):
        return cls(*args, **kwargs)


def number(x):
    """A JS number as Pyodide hands it to Python: an integral value within
    2**53 is an int, others are floats."""
    if isinstance(x, float) and x.is_integer() and abs(x) <= 2 ** 53:
        return int(x)
    return x


def entropy_check(call):
    """At deploy, a JS call that draws randomness (crypto.randomUUID,
    getRandomValues, Math.random) made by the worker's own top level fails
    the deploy as Python's own draws do (thaw_runtime/entropy.py): the
    guard judges the caller of the JS function, not this module."""
    import sys
    guard = getattr(sys.modules.get("thaw_runtime.entropy"), "_guard", None)
    if guard is not None and guard.active:
        site = guard.direct_user_site(depth=3)  # 0 it, 1 here, 2 the JS call, 3 its caller
        if site:
            guard.fail(site, call)
