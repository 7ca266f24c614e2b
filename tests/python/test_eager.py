"""Eager tasks (workers/_asgi_eager.py): the C version thaw-zygote uses
(_thaw_fast.start, src/zygote/eager.c) and the Python one behave alike,
on asyncio's loop and on uvloop (the instances' loop)."""
import asyncio
import contextvars

import pytest
import uvloop

import _thaw_fast
from workers import _asgi_eager

STARTS = {"c": _thaw_fast.start, "python": _asgi_eager.py_start}
STEPS = {"c": _thaw_fast.step, "python": _asgi_eager.py_step}
LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(params=sorted(STARTS))
def start(request):
    return STARTS[request.param]


@pytest.fixture(params=sorted(LOOPS))
def run(request):
    loop = LOOPS[request.param]()
    yield lambda fn: loop.run_until_complete(fn(loop))
    loop.close()


@pytest.fixture(params=sorted(STEPS))
def step(request):
    return STEPS[request.param]


def test_the_instances_use_the_c_version():
    assert _asgi_eager.start is _thaw_fast.start
    assert _asgi_eager.step is _thaw_fast.step


def test_step_hands_the_outcome_of_a_first_step_to_the_caller(step, run):
    var = contextvars.ContextVar("w", default="outer")

    async def setter():
        var.set("set in the first step")
        return 1

    async def quick():
        return asyncio.current_task()

    async def boom():
        raise ValueError("first")

    async def slow():
        await asyncio.sleep(0)
        return "late"

    async def main(loop):
        task, state, value, ctx = step(quick(), loop)
        assert (state, value) == (1, task)
        assert await task is None  # the outcome was the caller's
        task, state, value, ctx = step(boom(), loop)
        assert state == 2 and isinstance(value, ValueError)
        assert await task is None  # nothing left unretrieved
        task, state, value, ctx = step(slow(), loop)
        assert (state, value) == (0, None)
        assert await task == "late"
        # the task's context: what the first step set, to go on in
        task, state, value, ctx = step(setter(), loop)
        assert state == 1 and var.get() == "outer"
        assert ctx.run(var.get) == "set in the first step"
    run(main)


def test_a_coroutine_that_does_not_wait_is_done_when_start_returns(start, run):
    steps = []

    async def quick():
        steps.append(asyncio.current_task())
        return 42

    async def main(loop):
        me = asyncio.current_task()
        task, finished = start(quick(), loop)
        # it ran inside its own task, and the caller's task is current again
        assert finished and steps == [task] and asyncio.current_task() is me
        return await task
    assert run(main) == 42


def test_one_that_waits_goes_on_in_the_same_task(start, run):
    seen = []

    async def slow():
        seen.append(asyncio.current_task())
        # entered in the first step, used after it: it must be this task's
        async with asyncio.timeout(5):
            await asyncio.sleep(0.01)
        seen.append(asyncio.current_task())
        return "late"

    async def main(loop):
        task, finished = start(slow(), loop)
        assert not finished and not task.done()
        assert await task == "late"
        assert seen == [task, task]
    run(main)


def test_a_timeout_entered_in_the_first_step_cancels_the_task(start, run):
    async def stuck():
        async with asyncio.timeout(0.01):
            await asyncio.sleep(10)

    async def main(loop):
        task, finished = start(stuck(), loop)
        assert not finished
        with pytest.raises(TimeoutError):
            await task
    run(main)


def test_exceptions_of_the_first_step_and_later_reach_the_task(start, run):
    async def boom():
        raise ValueError("first")

    async def later():
        await asyncio.sleep(0)
        raise KeyError("later")

    async def main(loop):
        task, finished = start(boom(), loop)
        assert finished
        with pytest.raises(ValueError, match="first"):
            await task
        task, finished = start(later(), loop)
        assert not finished
        with pytest.raises(KeyError):
            await task
    run(main)


def test_a_cancel_before_the_tasks_first_step_reaches_the_coroutine(start, run):
    events = []

    async def waiting():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            events.append("cancelled where it waited")
            raise

    async def quick():
        return 1

    async def main(loop):
        task, _ = start(waiting(), loop)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert events == ["cancelled where it waited"]
        # after a first step that finished: the task ends cancelled
        task, finished = start(quick(), loop)
        assert finished
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    run(main)


def test_context_variables_set_in_the_first_step_stay_in_the_task(start, run):
    var = contextvars.ContextVar("v", default="outer")

    async def setter():
        var.set("inner")
        await asyncio.sleep(0)
        return var.get()

    async def main(loop):
        task, _ = start(setter(), loop)
        assert var.get() == "outer"  # the caller's context is untouched
        assert await task == "inner"
    run(main)


def test_keyboard_interrupt_leaves_at_once(start, run):
    seen = []

    async def interrupted():
        raise KeyboardInterrupt

    async def main(loop):
        me = asyncio.current_task()
        try:
            start(interrupted(), loop)
        except KeyboardInterrupt:
            seen.append(asyncio.current_task() is me)
        # the task's own step raises it again, out of the loop, as an
        # ordinary task's would
        await asyncio.sleep(0)
    with pytest.raises(KeyboardInterrupt):
        run(main)
    assert seen == [True]


def test_a_task_whose_coroutine_is_closed_unstarted_finalises_cleanly(start, run):
    async def waiting():
        await asyncio.sleep(10)

    async def main(loop):
        task, _ = start(waiting(), loop)
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()
        assert "Task" in repr(task)
    run(main)
