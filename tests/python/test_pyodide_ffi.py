"""pyodide.ffi and pyodide.http on native Python (python/pyodide/): Pyodide's
conversion rules, proxies, and the clear errors where thaw differs."""
import asyncio
import json

import pytest

from js import Object
from pyodide.ffi import (ConversionError, JsArray, JsBuffer, JsException, JsMap, JsObject,
                         JsProxy, create_once_callable, create_proxy, destroy_proxies,
                         run_sync, to_js, to_py)
from workers._body import Buffer
from workers._kv import JsObject as KVObject


def test_scalars_stay_as_they_are():
    for v in (None, True, 3, 2.5, "s"):
        assert to_js(v) is v


def test_lists_and_tuples_become_arrays_deeply():
    a = to_js([1, (2, 3), [4]])
    assert isinstance(a, JsArray) and isinstance(a[1], JsArray) and a.length == 3
    assert a.to_py() == [1, [2, 3], [4]] and type(a.to_py()) is list
    assert a.push(5) == 4 and a.join("-") == "1-2,3-4-5"


def test_dicts_become_maps_unless_a_dict_converter_says_otherwise():
    m = to_js({"a": {"b": 1}})
    assert isinstance(m, JsMap) and isinstance(m["a"], JsMap)
    assert m.get("a").get("b") == 1 and m.has("a") and m.size == 1
    o = to_js({"a": {"b": [1]}}, dict_converter=Object.fromEntries)
    assert isinstance(o, JsObject) and o.a.b == JsArray([1]) and o["a"]["b"][0] == 1
    assert json.dumps(o) == '{"a": {"b": [1]}}'
    assert to_py(o) == {"a": {"b": [1]}}
    assert to_js({"k": 1}, dict_converter=dict) == {"k": 1}


def test_buffers_become_uint8arrays_whose_buffer_is_a_body():
    b = to_js(b"\x89PNG")
    assert isinstance(b, JsBuffer) and isinstance(b, bytearray)
    assert b.buffer.to_bytes() == b"\x89PNG" and b.byteLength == 4
    assert b.to_py() == b"\x89PNG" and b.to_string("latin-1") == "\x89PNG"
    assert to_js(memoryview(b"abcdef")[::2]).to_bytes() == b"ace"
    out = bytearray(4)
    b.assign_to(out)
    assert out == b"\x89PNG"
    with pytest.raises(ValueError):
        b.assign(b"too long")


def test_sets_and_callables():
    s = to_js({1, 2})
    assert s.has(1) and s.size == 2

    def f():
        return 1
    assert to_js(f) is f
    with pytest.raises(ConversionError):
        to_js(f, create_pyproxies=False)


def test_unsupported_type_is_a_clear_type_error():
    class Point:
        pass
    with pytest.raises(TypeError) as e:
        to_js([Point()])
    assert "cannot convert a" in str(e.value) and "Point" in str(e.value)
    assert "default_converter" in str(e.value)
    got = to_js([Point()], default_converter=lambda v, conv, cache: "point")
    assert got == ["point"]


def test_depth_and_cycles():
    assert isinstance(to_js([[1]], depth=1)[0], list)
    assert not isinstance(to_js([[1]], depth=1)[0], JsArray)
    loop = []
    loop.append(loop)
    a = to_js(loop)
    assert a[0] is a


def test_thaw_results_are_js_proxies():
    assert isinstance(Buffer(b"x"), JsBuffer) and isinstance(Buffer(b"x"), JsProxy)
    assert isinstance(KVObject({"a": 1}), JsProxy)
    assert to_py(KVObject({"a": [KVObject({"b": 2})]})) == {"a": [{"b": 2}]}


def test_proxies():
    calls = []

    def record(v):
        calls.append(v)
    p = create_proxy(record)
    p(1)
    assert p.unwrap() is record
    destroy_proxies([p])
    with pytest.raises(JsException, match="already been destroyed"):
        p(2)
    once = create_once_callable(lambda: "x")
    assert once() == "x"
    with pytest.raises(JsException, match="only be called once"):
        once()
    with pytest.raises(TypeError):
        create_once_callable(3)
    assert calls == [1]


def test_run_sync_outside_and_inside_a_loop():
    async def seven():
        await asyncio.sleep(0)
        return 7
    assert run_sync(seven()) == 7

    async def handler():
        return run_sync(seven())
    with pytest.raises(RuntimeError, match="await"):
        asyncio.run(handler())


def test_fetch_response_reads_once_and_clones():
    from pyodide.http import BodyUsedError, FetchResponse, HttpStatusError
    from workers import Response

    async def go():
        r = FetchResponse("https://x/", Response('{"a": 1}', status=404,
                                                 headers={"content-type": "application/json"}))
        c = r.clone()
        assert await r.json() == {"a": 1}
        with pytest.raises(BodyUsedError):
            await r.text()
        assert (await c.buffer()).to_bytes() == b'{"a": 1}'
        assert r.headers["content-type"] == "application/json" and not r.ok
        with pytest.raises(HttpStatusError, match="404 Client Error"):
            r.raise_for_status()
    asyncio.run(go())
