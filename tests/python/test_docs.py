"""docs/config.md documents every limit in src/config/limits.c: the flag,
the config key and the default."""
import os
import re

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_every_limit_is_documented():
    src = open(os.path.join(ROOT, "src/config/limits.c")).read()
    doc = open(os.path.join(ROOT, "docs/config.md")).read()
    specs = re.findall(r'\{"(--[a-z-]+)", "([a-z]+)", "([a-z_]+)"', src)
    assert len(specs) >= 10, specs
    for flag, table, key in specs:
        assert f"`{flag}`" in doc, f"{flag} is not in docs/config.md"
        assert f"`{table}.{key}`" in doc, f"{table}.{key} is not in docs/config.md"
