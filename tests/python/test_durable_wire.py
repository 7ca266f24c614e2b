"""workers/_durable_wire.py: what Durable Object RPC carries between
instances, and what it refuses with Cloudflare's TypeError."""
import datetime
import math

import pytest

from pyodide.ffi import to_js
from workers import _durable_wire as wire
from workers._rpc import JsDict


def round_trip(v):
    return wire.decode(wire.encode(v))


@pytest.mark.parametrize("value", [
    None, True, False, 0, -7, 2**70, 1.5, "", "é∂", b"", b"\x00\xff", [], [1, [2, [3]]],
    {"a": {"b": [None]}}, {1, "x"}, datetime.datetime(2024, 3, 18, 12, 0, 0, 123000),
])
def test_values_come_back_equal(value):
    assert round_trip(value) == value


def test_dicts_read_as_attributes_and_floats_json_cannot_hold():
    out = round_trip({"name": "ada", "inf": math.inf, "neg": -math.inf, "nan": math.nan})
    assert isinstance(out, JsDict) and out.name == "ada"
    assert out["inf"] == math.inf and out["neg"] == -math.inf and math.isnan(out["nan"])


def test_an_aware_datetime_arrives_as_naive_utc():
    tz = datetime.timezone(datetime.timedelta(hours=2))
    assert round_trip(datetime.datetime(2024, 1, 1, 12, tzinfo=tz)) == \
        datetime.datetime(2024, 1, 1, 10)


def test_to_js_values_travel_as_their_python_values():
    assert round_trip(to_js({"a": [1, 2]})) == {"a": [1, 2]}
    assert round_trip(to_js([1, "x"])) == [1, "x"]
    assert round_trip(to_js(b"ab")) == b"ab"


def test_a_tag_like_user_key_is_not_taken_for_a_tag():
    assert round_trip({"$b": "not bytes", "$o": 1}) == {"$b": "not bytes", "$o": 1}


@pytest.mark.parametrize("value, message", [
    ((1, 2), "<class 'tuple'> cannot be sent over RPC."),
    (bytearray(b"x"), "<class 'bytearray'> cannot be sent over RPC."),
    (object(), "<class 'object'> cannot be sent over RPC."),
    ([{"k": (1,)}], "<class 'tuple'> cannot be sent over RPC."),
    ({1: "x"}, "keys are strings"),
])
def test_what_rpc_cannot_carry_is_a_type_error(value, message):
    with pytest.raises(TypeError) as e:
        wire.encode(value)
    assert message in str(e.value)


def test_an_awaitable_is_refused_as_cloudflare_refuses_it():
    async def coro():
        pass
    c = coro()
    with pytest.raises(TypeError, match="Awaitable .* cannot be sent over RPC."):
        wire.encode(c)
    c.close()
