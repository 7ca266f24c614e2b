"""workers._assets: env gets a Fetcher only when `assets.binding` is set, and
fetch() refuses what JS fetch would refuse before any call is made."""
import asyncio

import pytest

from workers import Fetcher, Request
from workers._assets import bindings_from_config
from workers._bindings import env_mapping


def test_binding_only_when_named():
    assert list(bindings_from_config({})) == []
    assert list(bindings_from_config({"assets": {"directory": "public"}})) == []
    (name, obj), = bindings_from_config({"assets": {"directory": "p", "binding": "ASSETS"}})
    assert name == "ASSETS" and isinstance(obj, Fetcher)
    env = env_mapping({"assets": {"directory": "p", "binding": "STATIC"}, "vars": {"A": 1}})
    assert isinstance(env["STATIC"], Fetcher) and env["A"] == 1


def test_fetch_needs_an_absolute_url():
    f = Fetcher("ASSETS")
    with pytest.raises(TypeError, match="absolute URL"):
        asyncio.run(f.fetch("/style.css"))
    with pytest.raises(TypeError, match="Request or a URL"):
        asyncio.run(f.fetch(42))
    with pytest.raises(TypeError, match="absolute URL"):
        asyncio.run(f.fetch(Request("style.css")))
