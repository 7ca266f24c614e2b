"""What a template checks and sets up for Cloudflare's project settings
before the worker's top level runs (template.load calls it):

- pyproject.toml's `requires-python` against the Python thaw runs. A
  range that excludes it is a warning line in the build's log naming
  both, and a refused build with `[thaw] strict_python = true`: on
  Cloudflare the version comes from the compatibility date, here from the
  host, and a project may still run on a neighbouring version.
- the compatibility flag python_process_pth_files: the .pth files of
  python_modules/ are processed (site.addsitedir), as Cloudflare does."""
import os
import platform
import site
import sys
import tomllib


class VersionMismatch(Exception):
    """requires-python excludes this Python, and strict_python is set."""


def _requires_python(wdir):
    path = os.path.join(wdir, "pyproject.toml")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return None
    except (OSError, tomllib.TOMLDecodeError) as e:
        print(f"warning: pyproject.toml cannot be read ({e}); its requires-python is not "
              f"checked", file=sys.stderr, flush=True)
        return None
    spec = (data.get("project") or {}).get("requires-python")
    return spec if isinstance(spec, str) else None


def check_python(config, wdir):
    """Warns (or, strict, raises VersionMismatch) when requires-python
    excludes the running Python."""
    spec = _requires_python(wdir)
    if not spec:
        return
    had = set(sys.modules)
    try:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet
    except ImportError:
        return  # the host's Python has no `packaging`: nothing to judge with
    finally:
        # the worker may vendor its own `packaging`: it must not find ours cached
        for name in set(sys.modules) - had:
            del sys.modules[name]
    running = platform.python_version()
    try:
        ok = SpecifierSet(spec).contains(running, prereleases=True)
    except InvalidSpecifier:
        print(f"warning: pyproject.toml requires-python {spec!r} is not a version "
              f"specifier (PEP 440); it is not checked", file=sys.stderr, flush=True)
        return
    if ok:
        return
    what = f"pyproject.toml requires-python {spec}; this thaw runs Python {running}"
    if (config.get("thaw") or {}).get("strict_python") is True:
        raise VersionMismatch(f"{what}: build refused ([thaw] strict_python = true). Widen "
                              f"requires-python, or run a thaw built on a Python it allows")
    print(f"warning: {what} (the build goes on; [thaw] strict_python = true refuses it)",
          file=sys.stderr, flush=True)


def process_pth_files(config, vendored):
    """site.addsitedir(python_modules/) under the python_process_pth_files
    flag: its .pth files add paths and run their `import` lines."""
    if "python_process_pth_files" in (config.get("_thaw_flags") or ()) and \
            os.path.isdir(vendored):
        site.addsitedir(vendored)
