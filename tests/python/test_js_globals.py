"""The `js` module's globals (python/js.py, python/_thaw_js/): what they
return and how they fail, against what JavaScript does."""
import asyncio
import hashlib

import pytest

import js
from pyodide.ffi import JsArray, JsBuffer, JsException, JsObject


def test_url_parts_and_normalisation():
    u = js.URL.new("HTTPS://Example.COM:443/a b/../c?x=1&y=2#frag")
    assert u.protocol == "https:" and u.hostname == "example.com" and u.port == ""
    assert u.host == "example.com" and u.origin == "https://example.com"
    assert u.search == "?x=1&y=2" and u.hash == "#frag"
    assert js.URL.new("/p?q", "http://h:8080/base").href == "http://h:8080/p?q"
    with pytest.raises(TypeError, match="Invalid URL"):
        js.URL.new("not a url")
    assert js.URL.canParse("https://x") and js.URL.parse("nope") is None
    # each part %-encoded as WHATWG does (what `new URL(...).href` gives in JS)
    assert js.URL.new("https://h/\u00e9?a b=\u00e9&c=%20#x y").href == \
        "https://h/%C3%A9?a%20b=%C3%A9&c=%20#x%20y"


def test_search_params_write_through_to_the_url():
    u = js.URL.new("https://h/p?a=1&a=2")
    assert u.searchParams.getAll("a") == ["1", "2"]
    u.searchParams.set("a", "x y")
    u.searchParams.append("b", "~*")
    assert u.href == "https://h/p?a=x+y&b=%7E*"
    p = js.URLSearchParams.new({"z": 1, "a": 2})
    p.sort()
    assert str(p) == "a=2&z=1" and list(p) == [["a", "2"], ["z", "1"]]
    assert js.URLSearchParams.new("?q=%20").get("q") == " "


def test_object_and_json():
    o = js.Object.fromEntries([["a", 1], ["b", [2]]])
    assert isinstance(o, JsObject) and o.a == 1 and js.Object.keys(o) == ["a", "b"]
    assert js.Object.fromEntries(js.Map.new([["m", 1]])) == {"m": 1}
    parsed = js.JSON.parse('{"user": {"name": "a", "roles": ["x"]}}')
    assert parsed.user.name == "a" and isinstance(parsed.user.roles, JsArray)
    assert js.JSON.stringify({"a": "é", "b": [1]}) == '{"a":"é","b":[1]}'
    assert js.JSON.stringify(js.Date.new(0)) == '"1970-01-01T00:00:00.000Z"'
    with pytest.raises(NotImplementedError):
        js.JSON.stringify({}, ["a"])


def test_math_and_date_numbers_are_python_ints_when_integral():
    assert js.Math.floor(2.7) == 2 and type(js.Math.floor(2.7)) is int
    assert js.Math.round(-2.5) == -2 and js.Math.max() == float("-inf")
    assert 0 <= js.Math.random() < 1
    d = js.Date.new("2024-02-29T12:00:00Z")
    assert d.getUTCMonth() == 1 and d.getUTCDate() == 29 and d.getDay() == 4
    assert js.Date.UTC(2024, 0, 1) == 1704067200000
    assert js.Date.new(js.Date.UTC(2024, 13, 1)).toISOString().startswith("2025-02-01")


def test_text_and_base64():
    data = js.TextEncoder.new().encode("hé")
    assert isinstance(data, JsBuffer) and data.to_bytes() == "hé".encode()
    assert js.TextDecoder.new().decode(b"\xef\xbb\xbfok") == "ok"
    with pytest.raises(TypeError):
        js.TextDecoder.new("utf-8", {"fatal": True}).decode(b"\xff")
    assert js.btoa("\xff") == "/w==" and js.atob(" /w = = ".replace(" ", "")) == "\xff"
    assert js.atob("aGk") == "hi"
    with pytest.raises(JsException, match="InvalidCharacterError"):
        js.btoa("☃")
    with pytest.raises(JsException, match="InvalidCharacterError"):
        js.atob("a")


def test_crypto():
    digest = asyncio.run(js.crypto.subtle.digest({"name": "SHA-256"}, b"abc"))
    assert digest.to_bytes() == hashlib.sha256(b"abc").digest()
    with pytest.raises(TypeError, match="encode it first"):
        asyncio.run(js.crypto.subtle.digest("SHA-256", "abc"))
    with pytest.raises(NotImplementedError, match="hashlib"):
        js.crypto.subtle.importKey
    arr = js.Uint8Array.new(32)
    assert js.crypto.getRandomValues(arr) is arr and any(arr)
    with pytest.raises(ValueError, match="QuotaExceededError"):
        js.crypto.getRandomValues(js.Uint8Array.new(65537))
    assert len(js.crypto.randomUUID()) == 36


def test_typed_arrays():
    assert js.Uint8Array.new([1, 256, 3]).to_bytes() == b"\x01\x00\x03"
    assert js.Uint8Array.new(b"abcdef", 2, 3).to_bytes() == b"cde"
    assert getattr(js.Uint8Array, "from")([7]).to_bytes() == b"\x07"
    assert js.ArrayBuffer.new(3).byteLength == 3
    assert js.Array.new(2) == [None, None] and getattr(js.Array, "from")("ab") == ["a", "b"]


def test_timers_run_on_the_loop():
    async def go():
        got = []
        js.setTimeout(got.append, 1, "once")
        tid = js.setTimeout(got.append, 1, "cancelled")
        js.clearTimeout(tid)

        async def later():
            got.append("async")
        js.setTimeout(later, 2)
        iid = js.setInterval(got.append, 1, "tick")
        await asyncio.sleep(0.05)
        js.clearInterval(iid)
        return got
    got = asyncio.run(go())
    assert "once" in got and "async" in got and "cancelled" not in got
    assert got.count("tick") >= 2
    with pytest.raises(RuntimeError, match="cannot be used here"):
        js.setTimeout(print, 1)


def test_abort_controller():
    c = js.AbortController.new()
    seen = []
    c.signal.onabort = lambda e: seen.append("on")
    c.signal.addEventListener("abort", lambda e: seen.append(e.type))
    c.abort("why")
    c.abort("again")
    assert seen == ["on", "abort"] and c.signal.reason == "why"
    with pytest.raises(JsException):
        js.AbortSignal.abort().throwIfAborted()


def test_form_data_and_blob():
    f = js.FormData.new()
    f.append("a", "1")
    f.append("a", js.Blob.new(["x"], {"type": "Text/Plain"}), "x.txt")
    f.set("b", 2)
    assert f.get("a") == "1" and f.getAll("a")[1].name == "x.txt"
    assert f.getAll("a")[1].type == "text/plain" and f.get("b") == "2"
    assert asyncio.run(js.Blob.new(["ab", b"c"]).slice(1).text()) == "bc"
