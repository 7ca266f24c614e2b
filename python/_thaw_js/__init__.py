"""The JavaScript globals of thaw's `js` module (python/js.py), one small
module per family: url, timers, crypto, text, values (Object, JSON, Date,
Math, typed arrays), abort, blob. Each class is constructed as Pyodide
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
