"""Eager tasks: run a coroutine's first step at once, inside a task of its
own, so a coroutine that finishes without ever suspending costs no loop
turn before its caller sees the outcome, and one that does suspend goes on
as an ordinary task.

asgi.fetch starts the app this way: most apps answer a request without
waiting for anything, and then the response is ready when `start` returns;
a streaming app (or one awaiting I/O) keeps running in its task.

Python 3.12+ has this built in (asyncio.Task(..., eager_start=True)). On
3.11 it is done by hand, the way 3.12 does it: the task is created first,
made the loop's current task (so asyncio.current_task(), asyncio.timeout
and anyio's cancel scopes, entered during the first step, belong to the
task that carries on), and the first step runs in the task's context. The
task's own first step, scheduled by create_task, then hands the task what
the coroutine is waiting for, or the outcome when it already finished.
"""
import asyncio
import contextvars
import sys

__all__ = ["start", "step", "py_start", "py_step"]

if sys.version_info >= (3, 12):
    def start(coro, loop):
        """(task, finished): finished tells whether the coroutine already
        ran to its end (the task is then done, or about to be)."""
        task = asyncio.Task(coro, loop=loop, eager_start=True)
        return task, task.done()

    def step(coro, loop):
        """(task, state, value, context): state 0, the coroutine goes on
        in task; 1, it already returned value; 2, it already raised value.
        context: the task's."""
        task = asyncio.Task(coro, loop=loop, eager_start=True)
        ctx = task.get_context()
        if not task.done():
            return task, 0, None, ctx
        if task.cancelled():
            return task, 2, asyncio.CancelledError(), ctx
        exc = task.exception()
        return (task, 2, exc, ctx) if exc is not None else (task, 1, task.result(), ctx)
    py_start, py_step = start, step
else:
    import types
    from asyncio.tasks import _enter_task, _leave_task

    _PRIMED = object()

    class _State:
        __slots__ = ("coro", "pending", "finished", "outcome", "failed", "ctx")

    async def _resume(state):
        # the task's coroutine: a native one, as tasks want
        return await _drive(state)

    @types.coroutine
    def _drive(state):
        """Primed before the task gets it: stops at `yield _PRIMED`, where
        the task's first step resumes it. A cancel arriving before that
        step is thrown in there, and goes on to the coroutine where it
        waits, as it would in an ordinary task."""
        try:
            yield _PRIMED
        except BaseException as exc:
            if state.finished:
                raise
            if isinstance(exc, GeneratorExit):
                state.coro.close()
                raise
            step, arg = state.coro.throw, exc
        else:
            if state.finished:  # the first step ran to the end
                outcome, state.outcome = state.outcome, None
                if isinstance(outcome, BaseException):
                    raise outcome
                return outcome
            step = None  # first hand the task what the first step yielded
        coro, pending = state.coro, state.pending
        state.coro = state.pending = None
        while True:
            if step is not None:
                try:
                    pending = step(arg)
                except StopIteration as stop:
                    return stop.value
            try:
                arg = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                step, arg = coro.throw, exc
            else:
                step = coro.send

    def py_start(coro, loop):
        """(task, finished): finished tells whether the coroutine already
        ran to its end (the task is then done, or about to be)."""
        task, state = _begin(coro, loop)
        return task, state.finished

    def py_step(coro, loop):
        """(task, state, value, context): state 0, the coroutine goes on
        in task; 1, it already returned value; 2, it already raised value.
        After 1 and 2 the outcome is the caller's, and the task ends with
        None. context: the task's (3.11 has no Task.get_context())."""
        task, state = _begin(coro, loop)
        if not state.finished:
            return task, 0, None, state.ctx
        outcome, state.outcome = state.outcome, None
        return task, 2 if state.failed else 1, outcome, state.ctx

    def _begin(coro, loop):
        state = _State()
        state.coro = coro
        state.pending = state.outcome = None
        state.finished = state.failed = False
        resume = _resume(state)
        resume.send(None)  # primed: stops at _drive's `yield _PRIMED`
        ctx = state.ctx = contextvars.copy_context()
        # asyncio.Task itself unless the loop has a task factory: the
        # loop's create_task wrapper costs a microsecond or two per request
        if loop.get_task_factory() is None:
            task = asyncio.Task(resume, loop=loop, context=ctx)
        else:
            task = loop.create_task(resume, context=ctx)
        outer = asyncio.current_task(loop)
        if outer is not None:
            _leave_task(loop, outer)
        _enter_task(loop, task)
        try:
            state.pending = ctx.run(coro.send, None)
        except StopIteration as exc:
            state.finished = True
            state.outcome = exc.value
        except BaseException as exc:
            state.finished = state.failed = True
            state.outcome = exc
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            _leave_task(loop, task)
            if outer is not None:
                _enter_task(loop, outer)
        return task, state

    try:
        # the same in C (src/zygote/eager.c), built into thaw-zygote: a
        # microsecond or two less per start, and a request starts one or two
        from _thaw_fast import start, step
    except ImportError:
        start, step = py_start, py_step
