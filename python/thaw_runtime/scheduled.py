"""Scheduled events (cron triggers) in an instance: a REQ_HEAD whose
pseudo-headers carry `:event` = "scheduled", `:cron` and `:scheduled-time`
(ms) calls the worker's scheduled handler instead of fetch. The answer is
a response as for a request: 200 "Ran scheduled event" (the text of
`wrangler dev`'s /__scheduled), or 500 with the traceback in thaw's log.
The supervisor logs the outcome; /__scheduled passes it to the client."""
import asyncio
import inspect

from . import ipc, output
from .log import log_exception, log_lines


class ScheduledController:
    """The `controller` of scheduled(): which cron fired, and when."""

    __slots__ = ("cron", "scheduledTime", "type", "_no_retry")

    def __init__(self, cron, scheduled_time):
        self.cron = cron
        self.scheduledTime = scheduled_time  # ms since the epoch, a float like JS's
        self.type = "scheduled"
        self._no_retry = False

    @property
    def scheduled_time(self):
        return self.scheduledTime

    def noRetry(self):
        """Cloudflare retries a failed event for some accounts; thaw never
        retries, so this only records the wish."""
        self._no_retry = True

    no_retry = noRetry

    def __repr__(self):
        return f"ScheduledController(cron={self.cron!r}, scheduledTime={self.scheduledTime!r})"


def start(inst, st, meta):
    """Runs the scheduled handler for stream st (registered by the caller)."""
    # header values travel as latin-1; the cron is whatever UTF-8 the
    # config or the /__scheduled query held
    cron = meta.get(":cron", "").encode("latin-1").decode("utf-8", "replace")
    try:
        when = float(meta.get(":scheduled-time") or 0)
    except ValueError:
        when = 0.0
    controller = ScheduledController(cron, when)
    handler = inst.worker.scheduled
    token = output.request_id.set(st.sid)
    try:
        try:
            result = handler.call(controller, inst.worker.env, inst.ctx)
        except BaseException as exc:
            _failed(inst, st, exc)
            return
        if inspect.isawaitable(result):
            st.task = inst.loop.create_task(_await(inst, st, result))
        else:
            _reply(inst, st, 200, "Ran scheduled event")
    finally:
        output.request_id.reset(token)


async def _await(inst, st, awaitable):
    try:
        await awaitable
    except asyncio.CancelledError:
        return  # the client of /__scheduled left, or the time limit struck
    except BaseException as exc:
        _failed(inst, st, exc)
        return
    _reply(inst, st, 200, "Ran scheduled event")


def _failed(inst, st, exc):
    name = inst.worker.name
    if isinstance(exc, LookupError) and exc.args and \
            exc.args[0] == getattr(inst.worker.scheduled, "message", None):
        log_lines(name, exc.args[0])
        _reply(inst, st, 500, f"Internal Server Error: {exc.args[0]}\n")
        return
    log_exception(name, exc)
    _reply(inst, st, 500, f"Internal Server Error: the scheduled handler of worker "
                          f"'{name}' raised {type(exc).__name__}; the traceback is in "
                          f"thaw's log.\n")


def _reply(inst, st, status, text):
    if inst.streams.get(st.sid) is not st:
        return  # cancelled meanwhile
    body = text.encode()
    inst._queue(ipc.frame(ipc.RESP_HEAD, st.sid, ipc.fields(
        str(status), "", "content-type", "text/plain;charset=UTF-8",
        "content-length", str(len(body)))))
    if not st.is_head:
        inst._queue(ipc.frame(ipc.RESP_BODY, st.sid, body))
    inst._queue(ipc.frame(ipc.RESP_END, st.sid))
    inst.streams.pop(st.sid, None)
