"""asyncio's registry of tasks with its add and removal in C
(_thaw_fast.lighten_task_set, src/zygote/taskset.c), as an instance runs
it: asyncio.all_tasks() sees the same tasks as with the Python WeakSet,
and a task freed while someone iterates the registry leaves it after."""
import asyncio
import asyncio.tasks
import gc
import weakref

import uvloop

import _thaw_fast


def test_instances_lighten_the_registry():
    import os
    import thaw_runtime  # instance.py itself imports _thaw, only in the zygote
    path = os.path.join(os.path.dirname(thaw_runtime.__file__), "instance.py")
    with open(path) as f:
        assert "fast.lighten_task_set(asyncio.tasks._all_tasks)" in f.read()


def test_registry_is_taken_over_once():
    reg = asyncio.tasks._all_tasks
    assert _thaw_fast.lighten_task_set(reg) is True
    assert _thaw_fast.lighten_task_set(reg) is True  # again: nothing changes
    assert type(reg.add).__name__ == "builtin_function_or_method"
    assert _thaw_fast.lighten_task_set(weakref.WeakSet()) is False  # one per process


def test_not_a_weakset_is_left_alone():
    class Other:
        pass
    # the registry is already taken in this process: any other object is refused
    assert _thaw_fast.lighten_task_set(Other()) is False


def _dead():
    """References in the registry to tasks already freed."""
    return sum(1 for r in asyncio.tasks._all_tasks.data if r() is None)


def test_all_tasks_and_freed_tasks():
    _thaw_fast.lighten_task_set(asyncio.tasks._all_tasks)

    async def main():
        ev = asyncio.Event()
        tasks = [asyncio.get_running_loop().create_task(ev.wait()) for _ in range(5)]
        await asyncio.sleep(0)
        assert set(tasks) <= asyncio.all_tasks()
        refs = [weakref.ref(t) for t in tasks]
        ev.set()
        for t in tasks:
            await t
        assert not set(tasks) & asyncio.all_tasks()  # done
        del tasks, t
        await asyncio.sleep(0)  # the loop lets go of the last one awaited
        gc.collect()
        assert all(r() is None for r in refs)  # freed...
        assert _dead() == 0  # ...and out of the registry

        # freed while the registry is iterated: deferred, then gone
        it = iter(asyncio.tasks._all_tasks)
        next(it)
        t = asyncio.get_running_loop().create_task(asyncio.sleep(0))
        await t
        ref = weakref.ref(t)
        del t
        await asyncio.sleep(0)
        gc.collect()
        assert ref() is None
        assert _dead() >= 1 and asyncio.tasks._all_tasks._pending_removals
        del it
        gc.collect()
        assert not asyncio.tasks._all_tasks._pending_removals
        assert _dead() == 0

    for new_loop in (asyncio.new_event_loop, uvloop.new_event_loop):
        loop = new_loop()
        loop.run_until_complete(main())
        loop.close()
