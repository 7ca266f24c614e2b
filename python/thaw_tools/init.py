"""`thaw init [DIR] [--template hello|fastapi|django|kv|cron] [--name NAME]
[--force]`: write a new worker project that `thaw dev` serves at once:
wrangler.toml, src/entry.py, pyproject.toml and .gitignore.

Every template's dependencies are in thaw's built-in package set (Debian's
python3-fastapi, python3-django), so `thaw sync` vendors nothing and the
project runs offline. Existing files are never overwritten without --force.
"""
import datetime
import os
import re
from importlib import resources

from .project import ToolError, find_config

USAGE = ("usage: thaw init [DIR] [--template hello|fastapi|django|kv|cron] "
         "[--name NAME] [--force]")
# more [tool.mypy] for a template: its packages that have no type information
MYPY_EXTRA = {
    "django": '\n[[tool.mypy.overrides]]\nmodule = ["django.*"]\n'
              'ignore_missing_imports = true\n',
}
TEMPLATES = {
    # name: (dependencies, what it is)
    "hello": ([], "a fetch handler that greets with a [vars] value"),
    "fastapi": (["fastapi"], "Cloudflare's FastAPI sample through asgi.fetch"),
    "django": (["django"], "a single-file Django site through wsgi.fetch"),
    "kv": ([], "a key-value store over HTTP on a KV binding"),
    "cron": ([], "a scheduled handler for [triggers] crons (GET /__scheduled "
                 "runs it now)"),
}

GITIGNORE = """\
# vendored by `thaw sync` from pyproject.toml
python_modules/
python_modules.bak*/
# written by `thaw types`
typings/
__pycache__/
*.pyc
.venv/
.mypy_cache/
.wrangler/
.dev.vars
# KV data of `thaw dev` (its --state default)
.thaw/
"""

PYPROJECT = """\
[project]
name = "{name}"
version = "0.1.0"
description = "{what}"
requires-python = ">=3.11"
# `thaw sync` vendors these into python_modules/ (`thaw dev` runs it when
# this file changes); those the built-in package set has are used from there
dependencies = [{deps}]

[tool.thaw]
# index options for `thaw sync` (also THAW_INDEX_URL, THAW_FIND_LINKS, ...)
# index-url = "https://pypi.org/simple"
# find-links = ["wheels/"]

[tool.mypy]
# `thaw types` writes stubs for env and `workers` here
mypy_path = "typings"
check_untyped_defs = true
{mypy_extra}"""


def parse_args(argv):
    d, template, name, force = None, "hello", None, False
    it = iter(argv)
    for a in it:
        if a in ("-t", "--template") or a.startswith("--template="):
            template = a.split("=", 1)[1] if "=" in a else next(it, None)
            if template is None:
                raise ToolError(f"{a} needs a value\n{USAGE}")
        elif a == "--name" or a.startswith("--name="):
            name = a.split("=", 1)[1] if "=" in a else next(it, None)
            if name is None:
                raise ToolError(f"{a} needs a value\n{USAGE}")
        elif a in ("-f", "--force"):
            force = True
        elif a in ("-h", "--help"):
            print(USAGE)
            for t, (_, what) in TEMPLATES.items():
                print(f"  {t:8} {what}")
            raise SystemExit(0)
        elif a.startswith("-"):
            raise ToolError(f"unknown option {a}\n{USAGE}")
        elif d is None:
            d = a
        else:
            raise ToolError(f"unexpected argument {a}\n{USAGE}")
    if template not in TEMPLATES:
        raise ToolError(f"no template {template!r}; choose one of "
                        f"{', '.join(TEMPLATES)}")
    return d or ".", template, name, force


def worker_name(d, name):
    """A wrangler-style name: lower case letters, digits and dashes."""
    raw = name or os.path.basename(os.path.abspath(d))
    clean = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    return clean or "worker"


def template_files(template):
    """{relative path: text} of a template's own files."""
    root = resources.files(__package__) / "templates" / template
    out = {}

    def walk(node, rel):
        for child in node.iterdir():
            if child.name == "__pycache__":
                continue
            path = f"{rel}{child.name}"
            if child.is_dir():
                walk(child, path + "/")
            else:
                out[path] = child.read_text("utf-8")
    walk(root, "")
    return out


def render(template, name):
    deps, what = TEMPLATES[template]
    # UTC, as thaw judges "a date in the future" (src/config/config.c)
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    files = {rel: text.replace("__NAME__", name).replace("__DATE__", today)
             for rel, text in template_files(template).items()}
    files["pyproject.toml"] = PYPROJECT.format(
        name=name, what=what.replace('"', "'"),
        deps=", ".join(f'"{x}"' for x in deps), mypy_extra=MYPY_EXTRA.get(template, ""))
    files[".gitignore"] = GITIGNORE
    return files


def init(d, template, name=None, force=False):
    if os.path.exists(d) and not os.path.isdir(d):
        raise ToolError(f"{d} exists and is not a directory")
    name = worker_name(d, name)
    files = render(template, name)
    if not force:
        clash = sorted(rel for rel in files if os.path.lexists(os.path.join(d, rel)))
        cfg = find_config(d) if os.path.isdir(d) else None
        if cfg and "wrangler.toml" not in clash:
            clash.insert(0, os.path.basename(cfg))
        if clash:
            raise ToolError(f"{d} already has {', '.join(clash)}: not overwriting "
                            f"(--force overwrites)")
    elif os.path.isdir(d):
        for other in ("wrangler.json", "wrangler.jsonc"):
            if os.path.exists(os.path.join(d, other)):
                # it would win over the new wrangler.toml
                os.rename(os.path.join(d, other), os.path.join(d, other + ".bak"))
    for rel, text in sorted(files.items()):
        p = os.path.join(d, rel)
        os.makedirs(os.path.dirname(p) or ".", exist_ok=True)
        with open(p, "w", encoding="utf-8") as f:
            f.write(text)
    shown = os.path.relpath(d)
    if shown.startswith(".."):
        shown = os.path.abspath(d)
    print(f"thaw init: wrote a {template} worker named {name!r} in {shown}: "
          f"{', '.join(sorted(files))}")
    print("next:" + ("" if shown == "." else f" cd {shown} &&") + " thaw dev")
    return 0


def main(argv):
    d, template, name, force = parse_args(argv)
    return init(d, template, name, force)
