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


def test_every_compatibility_flag_and_wrangler_key_is_in_compat_md():
    """docs/compat.md is true to the tables: each flag of compat.c and
    compat-inert.c, and each wrangler key of config.c, is there."""
    compat = open(os.path.join(ROOT, "docs/compat.md")).read()
    config_md = open(os.path.join(ROOT, "docs/config.md")).read()
    inert = open(os.path.join(ROOT, "src/config/compat-inert.c")).read()
    names = re.findall(r'"([^"]+)",', inert)
    assert len(names) > 250, len(names)
    for n in names:
        assert f"`{n}`" in compat, f"{n} (compat-inert.c) is not in docs/compat.md"
    table = open(os.path.join(ROOT, "src/config/compat.c")).read()
    for name, disable in re.findall(r'\{"([a-z0-9_]+)", (?:"([a-z0-9_]+)"|NULL)', table):
        assert f"`{name}`" in config_md and f"`{name}`" in compat, name
        if disable:
            assert f"`{disable}`" in config_md, disable
    config_c = open(os.path.join(ROOT, "src/config/config.c")).read()
    keys = re.findall(r'\{"([$a-z0-9_]+)", (?:JSON_[A-Z]+|0), (?:USE|QUIET|LATER)', config_c)
    assert len(keys) > 50, keys
    for k in keys:
        assert f"`{k}`" in compat, f"wrangler key {k} is not in docs/compat.md"


def test_every_test_compat_md_names_exists():
    """A row of docs/compat.md backed by a test names one that is there."""
    compat = open(os.path.join(ROOT, "docs/compat.md")).read()
    defined = set()
    for base, _, files in os.walk(os.path.join(ROOT, "tests")):
        for f in files:
            if f.endswith((".py", ".c")):
                text = open(os.path.join(base, f), errors="replace").read()
                defined.update(re.findall(r"(?:def |TEST\(|void )(test_\w+|\w+)\b", text))
    named = set(re.findall(r"`(test_\w+)`", compat))
    assert len(named) > 40, named
    missing = sorted(n for n in named if n not in defined)
    assert not missing, f"docs/compat.md names tests that do not exist: {missing}"
