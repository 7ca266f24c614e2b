"""Object, JSON, Array, Map, Set, Date, Math, Uint8Array, ArrayBuffer and
console: the JS built-ins Python Workers code reaches for, returning
pyodide.ffi's values (JsObject, JsArray, JsBuffer, ...)."""
import datetime
import json
import math
import random
import sys
import time

from pyodide._values import JsArray, JsBuffer, JsMap, JsObject, JsProxy, JsSet

from . import New, entropy_check, number


class Object:
    @staticmethod
    def new(*args):
        return JsObject(*args)

    @staticmethod
    def fromEntries(entries):
        """Used as `to_js(d, dict_converter=Object.fromEntries)`."""
        if isinstance(entries, dict) and not isinstance(entries, JsObject):
            entries = entries.items()  # a Map: its entries, as JS iterates it
        out = JsObject()
        for pair in entries:
            k, v = pair
            out[k] = v
        return out

    @staticmethod
    def keys(obj):
        return JsArray(obj.keys())

    @staticmethod
    def values(obj):
        return JsArray(obj.values())

    @staticmethod
    def entries(obj):
        return JsArray(JsArray(kv) for kv in obj.items())

    @staticmethod
    def assign(target, *sources):
        for s in sources:
            if s is not None:
                target.update(s)
        return target


def _from_json(value):
    if isinstance(value, dict):
        return JsObject((k, _from_json(v)) for k, v in value.items())
    if isinstance(value, list):
        return JsArray(_from_json(v) for v in value)
    return value


def _to_json(value):
    if isinstance(value, (bytes, bytearray)):
        # a typed array: an object of its indices, as JSON.stringify writes it
        return {str(i): b for i, b in enumerate(value)}
    if isinstance(value, JsProxy):
        return value.to_py()
    to_json = getattr(value, "toJSON", None)
    if to_json is not None:
        return to_json()
    raise TypeError(f"JSON.stringify: {type(value).__name__} is not JSON-serialisable")


class JSON:
    @staticmethod
    def parse(text, reviver=None):
        """A JS value: objects are JsObject (o.name and o["name"]), arrays JsArray."""
        if reviver is not None:
            raise NotImplementedError("JSON.parse(text, reviver) is not provided by thaw: "
                                      "parse, then transform the result")
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8")
        return _from_json(json.loads(text))

    @staticmethod
    def stringify(value, replacer=None, space=None):
        # JS output: compact unless `space` is given, non-ASCII kept as is
        if replacer is not None:
            raise NotImplementedError("JSON.stringify(value, replacer) is not provided by "
                                      "thaw: transform the value first")
        if isinstance(space, (int, float)) and space > 0:
            space = min(int(space), 10)
        elif isinstance(space, str) and space:
            space = space[:10]
        else:
            space = None
        if space is not None:
            return json.dumps(value, indent=space, ensure_ascii=False, default=_to_json)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                          default=_to_json)


class Array:
    @staticmethod
    def new(*items):
        if len(items) == 1 and isinstance(items[0], int) and not isinstance(items[0], bool):
            return JsArray([None] * items[0])
        return JsArray(items)

    @staticmethod
    def isArray(value):
        return isinstance(value, (list, tuple))

    @staticmethod
    def of(*items):
        return JsArray(items)


setattr(Array, "from", staticmethod(lambda iterable, fn=None: JsArray(
    iterable if fn is None else (fn(v, i) for i, v in enumerate(iterable)))))


class Map:
    @staticmethod
    def new(entries=None):
        return JsMap() if entries is None else JsMap(
            entries.items() if isinstance(entries, dict) else (tuple(p) for p in entries))


class Set:
    @staticmethod
    def new(values=None):
        return JsSet() if values is None else JsSet(values)


class Uint8Array(JsBuffer):
    """Uint8Array.new(length | bytes-like | iterable of ints). A typed array
    made from an ArrayBuffer copies its bytes (JS would share them)."""

    __slots__ = ()

    @classmethod
    def new(cls, arg=0, byte_offset=0, length=None):
        if isinstance(arg, bool):
            raise TypeError("Uint8Array.new: a length must be a number")
        if isinstance(arg, int):
            return cls(arg)
        try:
            data = memoryview(arg).tobytes()
        except TypeError:
            return cls(int(v) & 0xFF for v in arg)
        end = None if length is None else byte_offset + length
        return cls(data[byte_offset:end])

    BYTES_PER_ELEMENT = 1


setattr(Uint8Array, "from", classmethod(lambda cls, iterable: cls.new(iterable)))


class ArrayBuffer(JsBuffer):
    """ArrayBuffer.new(byte_length): zeroed bytes."""

    __slots__ = ()

    @classmethod
    def new(cls, length=0):
        return cls(int(length))

    @staticmethod
    def isView(value):
        return isinstance(value, (bytearray, memoryview))


def _ms(dt):
    return int(dt.timestamp() * 1000)


class Date(New):
    """A JS Date, in UTC (Workers' time zone). Date.now() is milliseconds
    since the epoch; thaw's clock advances during a request (Cloudflare's
    is frozen until the next I/O, a Spectre mitigation)."""

    def __init__(self, *args):
        if not args:
            self._t = time.time_ns() // 1_000_000
        elif len(args) == 1 and isinstance(args[0], Date):
            self._t = args[0]._t
        elif len(args) == 1 and isinstance(args[0], str):
            t = Date.parse(args[0])
            if t is None:
                raise ValueError(f"RangeError: Invalid time value: {args[0]!r}")
            self._t = t
        elif len(args) == 1:
            self._t = int(args[0])
        else:
            self._t = Date.UTC(*args)

    @staticmethod
    def now():
        return time.time_ns() // 1_000_000

    @staticmethod
    def parse(text):
        s = str(text).strip()
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        try:
            dt = datetime.datetime.fromisoformat(s)
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=datetime.timezone.utc)
        return _ms(dt)

    @staticmethod
    def UTC(year, month=0, day=1, hours=0, minutes=0, seconds=0, ms=0):
        base = datetime.datetime(int(year), 1, 1, tzinfo=datetime.timezone.utc)
        years, month = divmod(int(month), 12)
        base = base.replace(year=base.year + years, month=month + 1)
        delta = datetime.timedelta(days=int(day) - 1, hours=hours, minutes=minutes,
                                   seconds=seconds, milliseconds=ms)
        return _ms(base + delta)

    def _dt(self):
        return datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + \
            datetime.timedelta(milliseconds=self._t)

    def getTime(self):
        return self._t

    valueOf = getTime

    def toISOString(self):
        return self._dt().strftime("%Y-%m-%dT%H:%M:%S.") + f"{self._t % 1000:03d}Z"

    toJSON = toISOString

    def toUTCString(self):
        return self._dt().strftime("%a, %d %b %Y %H:%M:%S GMT")

    toString = toUTCString

    def getUTCFullYear(self):
        return self._dt().year

    def getUTCMonth(self):
        return self._dt().month - 1

    def getUTCDate(self):
        return self._dt().day

    def getUTCDay(self):
        return (self._dt().weekday() + 1) % 7

    def getUTCHours(self):
        return self._dt().hour

    def getUTCMinutes(self):
        return self._dt().minute

    def getUTCSeconds(self):
        return self._dt().second

    def getUTCMilliseconds(self):
        return self._t % 1000

    # Workers run in UTC: the local getters are the UTC ones
    getFullYear, getMonth, getDate, getDay = (getUTCFullYear, getUTCMonth, getUTCDate,
                                              getUTCDay)
    getHours, getMinutes, getSeconds, getMilliseconds = (getUTCHours, getUTCMinutes,
                                                         getUTCSeconds, getUTCMilliseconds)

    def getTimezoneOffset(self):
        return 0

    def __repr__(self):
        return f"Date({self.toISOString()!r})"


def _math(fn):
    return staticmethod(lambda *a: number(float(fn(*a))))


class Math:
    PI, E, LN2, LN10 = math.pi, math.e, math.log(2), math.log(10)
    LOG2E, LOG10E, SQRT2, SQRT1_2 = 1 / math.log(2), 1 / math.log(10), math.sqrt(2), \
        math.sqrt(0.5)

    @staticmethod
    def random():
        entropy_check("Math.random()")
        return random.random()

    floor = _math(math.floor)
    ceil = _math(math.ceil)
    trunc = _math(math.trunc)
    abs = _math(abs)
    sqrt = _math(math.sqrt)
    cbrt = _math(lambda x: math.copysign(abs(x) ** (1 / 3), x))
    pow = _math(lambda x, y: float(x) ** float(y))
    exp = _math(math.exp)
    log = _math(math.log)
    log2 = _math(math.log2)
    log10 = _math(math.log10)
    sin = _math(math.sin)
    cos = _math(math.cos)
    tan = _math(math.tan)
    atan = _math(math.atan)
    atan2 = _math(math.atan2)
    hypot = _math(math.hypot)
    sign = _math(lambda x: 0.0 if x == 0 else math.copysign(1.0, x))
    round = _math(lambda x: math.floor(x + 0.5))
    max = _math(lambda *a: max(a, default=-math.inf))
    min = _math(lambda *a: min(a, default=math.inf))


class console:
    """console.log & co. go to the worker's log (stderr), tagged with the
    worker and request as print() is."""

    @staticmethod
    def log(*args):
        print(*args, file=sys.stderr)

    info = debug = warn = error = trace = log
