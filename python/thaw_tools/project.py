"""Reading a worker project: its wrangler config and its pyproject.toml.

The config is found as thaw's C loader finds it: wrangler.json, then
wrangler.jsonc, then wrangler.toml (wrangler's order)."""
import json
import os
import re
import tomllib

CONFIG_NAMES = ("wrangler.json", "wrangler.jsonc", "wrangler.toml")


class ToolError(Exception):
    """A user-facing error: printed as `thaw CMD: message`, exit 1."""


def find_config(d):
    for name in CONFIG_NAMES:
        p = os.path.join(d, name)
        if os.path.isfile(p):
            return p
    return None


def strip_jsonc(text):
    """JSON with // and /* */ comments and trailing commas -> JSON. Strings
    are copied untouched."""
    out = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                line = text.count("\n", 0, i) + 1
                raise ToolError(f"line {line}: a /* comment is never closed with */")
            out.append("\n" * text.count("\n", i, j))
            i = j + 2
        else:
            out.append(ch)
            i += 1
    s = "".join(out)
    # a comma followed (after blanks) by ] or } is a trailing comma; strings
    # cannot hold a raw newline, so re-scan with strings skipped
    res, i, n = [], 0, len(s)
    while i < n:
        ch = s[i]
        if ch == '"':
            j = i + 1
            while j < n and s[j] != '"':
                j += 2 if s[j] == "\\" else 1
            res.append(s[i:j + 1])
            i = j + 1
        elif ch == ",":
            m = re.compile(r"\s*[\]}]").match(s, i + 1)
            if not m:
                res.append(ch)
            i += 1
        else:
            res.append(ch)
            i += 1
    return "".join(res)


def read_config(d):
    """(path, dict) of the worker's config; ToolError when there is none or
    it does not parse."""
    path = find_config(d)
    if path is None:
        raise ToolError(f"no wrangler.toml, wrangler.json or wrangler.jsonc in {d}")
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if path.endswith(".toml"):
            cfg = tomllib.loads(raw.decode("utf-8"))
        else:
            text = raw.decode("utf-8")
            cfg = json.loads(strip_jsonc(text) if path.endswith(".jsonc") else text)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ToolError(f"{path}: {e}") from None
    if not isinstance(cfg, dict):
        raise ToolError(f"{path}: the top level is not a table/object")
    return path, cfg


def read_pyproject(d):
    """The parsed pyproject.toml of d, or None when there is none."""
    path = os.path.join(d, "pyproject.toml")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return None
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ToolError(f"{path}: {e}") from None
