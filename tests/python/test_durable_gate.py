"""The object's gate (workers/_durable_host.py, _Gate): one call at a
time, in the order they came; a waiter cancelled before its turn does not
keep it, and one cancelled just as the gate was handed to it passes it on."""
import asyncio

from workers._durable_host import _Gate


async def _call(gate, log, name, hold):
    if gate.busy:
        await gate.wait()
    else:
        gate.busy = True
    try:
        log.append(name)
        await hold
    finally:
        gate.release()


def test_calls_take_the_gate_in_arrival_order():
    async def main():
        gate, log = _Gate(), []
        first = asyncio.get_running_loop().create_future()
        tasks = [asyncio.ensure_future(_call(gate, log, "a", first))]
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        for name in "bcd":
            tasks.append(asyncio.ensure_future(_call(gate, log, name, done)))
        await asyncio.sleep(0)
        assert log == ["a"] and gate.busy
        first.set_result(None)
        await asyncio.gather(*tasks)
        assert log == ["a", "b", "c", "d"]
        assert not gate.busy
    asyncio.run(main())


def test_a_waiter_cancelled_before_its_turn_does_not_keep_the_gate():
    async def main():
        gate, log = _Gate(), []
        first = asyncio.get_running_loop().create_future()
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        a = asyncio.ensure_future(_call(gate, log, "a", first))
        b = asyncio.ensure_future(_call(gate, log, "b", done))
        c = asyncio.ensure_future(_call(gate, log, "c", done))
        await asyncio.sleep(0)
        b.cancel()
        await asyncio.sleep(0)
        first.set_result(None)
        await asyncio.wait_for(asyncio.gather(a, c), 5)
        assert log == ["a", "c"] and b.cancelled()
        assert not gate.busy
    asyncio.run(main())


def test_a_waiter_cancelled_as_the_gate_reaches_it_passes_it_on():
    async def main():
        gate, log = _Gate(), []
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        gate.busy = True  # this call holds it
        b = asyncio.ensure_future(_call(gate, log, "b", done))
        c = asyncio.ensure_future(_call(gate, log, "c", done))
        await asyncio.sleep(0)
        gate.release()  # b's now, b not yet resumed
        b.cancel()
        # wait_for: a gate kept by the cancelled b would leave c waiting forever
        await asyncio.wait_for(asyncio.gather(b, c, return_exceptions=True), 5)
        assert log == ["c"] and b.cancelled()
        assert not gate.busy
    asyncio.run(main())
