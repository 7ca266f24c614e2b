"""AbortController and AbortSignal. thaw's fetch() takes no signal (cancel
the task instead: docs/bindings/fetch.md); a signal still tells the
worker's own code that something was aborted, with listeners as in JS."""
from pyodide._values import JsObject
from workers._bind import JsException

from . import New


class AbortSignal:
    def __init__(self):
        self.aborted = False
        self.reason = None
        self.onabort = None
        self._listeners = []

    def addEventListener(self, type, listener, options=None):
        if type == "abort" and listener not in self._listeners:
            self._listeners.append(listener)

    def removeEventListener(self, type, listener, options=None):
        if type == "abort" and listener in self._listeners:
            self._listeners.remove(listener)

    def throwIfAborted(self):
        if self.aborted:
            raise self.reason if isinstance(self.reason, BaseException) else \
                JsException("AbortError", str(self.reason))

    def _abort(self, reason):
        if self.aborted:
            return
        self.aborted = True
        self.reason = JsException("AbortError", "This operation was aborted") \
            if reason is None else reason
        event = JsObject(type="abort", target=self)
        for fn in ([self.onabort] if self.onabort else []) + list(self._listeners):
            fn(event)

    @staticmethod
    def abort(reason=None):
        s = AbortSignal()
        s._abort(reason)
        return s

    @staticmethod
    def timeout(ms):
        from .timers import setTimeout
        s = AbortSignal()
        setTimeout(lambda: s._abort(JsException("TimeoutError",
                                                "The operation timed out")), ms)
        return s

    @staticmethod
    def any(signals):
        s = AbortSignal()
        for each in signals:
            if each.aborted:
                s._abort(each.reason)
                break
            each.addEventListener("abort", lambda ev, each=each: s._abort(each.reason))
        return s


class AbortController(New):
    def __init__(self):
        self.signal = AbortSignal()

    def abort(self, reason=None):
        self.signal._abort(reason)
