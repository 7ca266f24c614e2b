"""An object's `alarm()`, when the supervisor's timer says its alarm is
due (src/do/alarms.h): `async def alarm(self, alarm_info=None)` gets
`alarm_info.retryCount` / `isRetry`, or no argument if it takes none.

The alarm is deleted from the object's storage when alarm() returns, and
on the last try when it raised (the supervisor retries the others with
backoff): in both cases only if the handler did not set a new one. What
it raised goes to the log with its traceback (workers/_durable_host.py).
"""
import inspect

from ._durable_storage import output_gate
from ._rpc import JsDict


def _info(retry):
    info = JsDict(retryCount=retry, isRetry=retry > 0)
    info["retry_count"], info["is_retry"] = info["retryCount"], info["isRetry"]
    return info


async def run(obj, state, meta):
    at = int(meta.get(":do-alarm-at") or 0)
    retry = int(meta.get(":do-retry") or 0)
    last = meta.get(":do-last") == "1"
    storage = getattr(state, "storage", None)
    if storage is not None:
        storage._firing = at  # getAlarm() says None while it runs
    try:
        fn = getattr(obj, "alarm", None)
        if not callable(fn):
            last = True  # nothing will ever run it: not retried
            raise TypeError(f"{type(obj).__name__} set an alarm but has no alarm() handler")
        try:
            inspect.signature(fn).bind(None)
            args = (_info(retry),)
        except (TypeError, ValueError):
            args = ()
        result = fn(*args)
        if inspect.isawaitable(result):
            await result
        await output_gate(state)  # a write that failed fails the alarm: retried
        last = True  # done: deleted below
    finally:
        if storage is not None:
            storage._firing = None
            if last:
                await storage._alarm_done(at)
