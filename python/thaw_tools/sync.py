"""`thaw sync [DIR] [--quiet]`: vendor pyproject.toml's [project]
dependencies into DIR/python_modules.

For each requirement, in order:

- `workers-py` and `workers-runtime-sdk` are the SDK, which thaw provides;
- a requirement the built-in package set (the Debian python3-* packages of
  this host, i.e. the site-packages of /usr/bin/python3) satisfies, extras
  included, is used from there;
- everything else goes to the installer: `uv pip install --target` when uv
  is on PATH, else `python3 -m pip install --target`, with the index options
  of [tool.thaw] or the THAW_* environment.

The installer writes into a fresh hidden directory next to python_modules/,
which replaces python_modules/ only when it succeeded: a failing resolve
prints the installer's error, exits 1 and leaves the previous
python_modules/ as it was. On success python_modules/.thaw-sync is written;
its mtime is "the last sync" for `thaw dev`'s automatic sync: the mtime the
pyproject.toml it synced had.
"""
import fcntl
import importlib.metadata as md
import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
import tempfile
import time

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .project import ToolError, read_pyproject

USAGE = "usage: thaw sync [DIR] [--quiet]"
MODULES = "python_modules"
STAMP = ".thaw-sync"
# the SDK packages of Cloudflare's Python Workers: thaw is their runtime
PROVIDED = frozenset(("workers-py", "workers-runtime-sdk"))
TOOL_KEYS = ("index-url", "extra-index-url", "find-links", "no-index")


class Report:
    def __init__(self, quiet):
        self.quiet = quiet
        self.lines = []

    def line(self, text):
        self.lines.append(text)
        if not self.quiet:
            print(text, flush=True)

    def note(self, text):
        if not self.quiet:
            print(f"thaw sync: {text}", flush=True)


# ---------------------------------------------------------------- built-in set

def builtin_paths():
    """The site directories of Debian's interpreter, as the runtime sees them
    (not the user's site, not a virtualenv)."""
    return [p for p in site.getsitepackages() if os.path.isdir(p)]


class BuiltinSet:
    def __init__(self, paths=None):
        self.dists = {}
        for dist in md.distributions(path=paths if paths is not None else builtin_paths()):
            name = dist.metadata["Name"]
            if name:
                self.dists.setdefault(canonicalize_name(name), dist)  # path order wins

    def get(self, name):
        return self.dists.get(canonicalize_name(name))

    @staticmethod
    def origin(dist):
        where = str(dist.locate_file(""))
        return "Debian" if where.startswith("/usr/lib/python3") else f"system, {where}"

    def satisfies(self, req, depth=0):
        """The built-in dist that satisfies req (with its extras), or None."""
        if req.url:
            return None
        dist = self.get(req.name)
        if dist is None or not version_ok(req.specifier, dist.version):
            return None
        if req.extras and depth < 8:
            for dep in extra_requires(dist, req.extras):
                if canonicalize_name(dep.name) in PROVIDED:
                    continue
                if self.satisfies(dep, depth + 1) is None:
                    return None
        return dist


def version_ok(spec, version):
    try:
        return spec.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def _requires(dist):
    for text in dist.requires or ():
        try:
            yield Requirement(text)
        except InvalidRequirement:
            continue  # a Debian metadata oddity: not ours to judge


def extra_requires(dist, extras):
    """Requirements of dist that only its `extras` bring in."""
    for r in _requires(dist):
        if r.marker is None or r.marker.evaluate({"extra": ""}):
            continue
        if any(r.marker.evaluate({"extra": e}) for e in extras):
            yield r


def needed_requires(dist, extras=()):
    """Requirements of dist that apply on this host, with extras."""
    for r in _requires(dist):
        if r.marker is None or any(r.marker.evaluate({"extra": e})
                                   for e in ("", *extras)):
            yield r


# ---------------------------------------------------------------- options

def _as_list(value, what):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ToolError(f"[tool.thaw] {what} must be a string or a list of strings")


def _env_flag(value):
    return value.strip().lower() in ("1", "true", "yes", "on")


def index_options(pyproject, d, environ=os.environ):
    """Installer arguments from THAW_INDEX_URL / THAW_EXTRA_INDEX_URL /
    THAW_FIND_LINKS / THAW_NO_INDEX, else from [tool.thaw] index-url /
    extra-index-url / find-links / no-index. Relative find-links paths are
    relative to the project."""
    tool = (pyproject.get("tool") or {}).get("thaw") or {}
    if not isinstance(tool, dict):
        raise ToolError("[tool.thaw] must be a table")
    tool = {k.replace("_", "-"): v for k, v in tool.items()}
    unknown = sorted(set(tool) - set(TOOL_KEYS))
    if unknown:
        raise ToolError(f"unknown key in [tool.thaw]: {', '.join(unknown)} "
                        f"(known: {', '.join(TOOL_KEYS)})")

    def pick(env, key, split):
        if environ.get(env, "").strip():
            v = environ[env].strip()
            return v.split() if split else v
        v = tool.get(key)
        if split:
            return _as_list(v, key)
        if v is not None and not isinstance(v, str):
            raise ToolError(f"[tool.thaw] {key} must be a string")
        return v

    args = []
    url = pick("THAW_INDEX_URL", "index-url", False)
    if url:
        args += ["--index-url", url]
    for u in pick("THAW_EXTRA_INDEX_URL", "extra-index-url", True):
        args += ["--extra-index-url", u]
    for link in pick("THAW_FIND_LINKS", "find-links", True):
        if "://" not in link:
            link = os.path.abspath(os.path.join(d, os.path.expanduser(link)))
        args += ["--find-links", link]
    if environ.get("THAW_NO_INDEX", "").strip():
        no_index = _env_flag(environ["THAW_NO_INDEX"])
    else:
        no_index = tool.get("no-index", False)
        if not isinstance(no_index, bool):
            raise ToolError("[tool.thaw] no-index must be true or false")
    if no_index:
        args.append("--no-index")
    return args


def installer(target, opts, reqs, environ=os.environ):
    """(name, argv) of the install command."""
    forced = environ.get("THAW_INSTALLER", "").strip()
    if forced not in ("", "uv", "pip"):
        raise ToolError(f"THAW_INSTALLER={forced!r}: use uv or pip")
    uv = shutil.which("uv") if forced != "pip" else None
    if forced == "uv" and not uv:
        raise ToolError("THAW_INSTALLER=uv, but uv is not on PATH")
    if uv:
        return "uv", [uv, "pip", "install", "--target", target,
                      "--python", sys.executable, *opts, *reqs]
    if importlib.util.find_spec("pip") is None:
        raise ToolError(f"neither uv nor pip is here to install {', '.join(reqs)}: "
                        "put uv on PATH, or install Debian's python3-pip")
    return "pip", [sys.executable, "-m", "pip", "install", "--target", target,
                   "--no-input", "--disable-pip-version-check",
                   "--root-user-action=ignore", *opts, *reqs]


# ---------------------------------------------------------------- the sync

def parse_args(argv):
    d, quiet = None, False
    for a in argv:
        if a in ("-q", "--quiet"):
            quiet = True
        elif a in ("-h", "--help"):
            print(USAGE + "\n")
            print(__doc__.split("\n\n", 1)[1].rstrip())
            raise SystemExit(0)
        elif a.startswith("-"):
            raise ToolError(f"unknown option {a}\n{USAGE}")
        elif d is None:
            d = a
        else:
            raise ToolError(f"unexpected argument {a}\n{USAGE}")
    return d or ".", quiet


def requirements(pyproject):
    project = pyproject.get("project") or {}
    if "dependencies" in (project.get("dynamic") or []):
        raise ToolError("pyproject.toml declares dependencies as dynamic: thaw sync "
                        "needs them listed in [project] dependencies")
    deps = project.get("dependencies") or []
    if not isinstance(deps, list) or not all(isinstance(x, str) for x in deps):
        raise ToolError("[project] dependencies must be a list of strings")
    out = []
    for text in deps:
        try:
            out.append(Requirement(text))
        except InvalidRequirement as e:
            raise ToolError(f"[project] dependencies: {text!r}: {e}") from None
    return out


def _dists_in(path):
    found = {}
    for dist in md.distributions(path=[path]):
        name = dist.metadata["Name"]
        if name:
            found[canonicalize_name(name)] = dist
    return found


def _swap_in(d, new, report):
    """Replace d/python_modules by `new`. A python_modules/ that thaw sync
    did not make is kept as python_modules.bak (not deleted)."""
    cur = os.path.join(d, MODULES)
    old = None
    if os.path.lexists(cur):
        managed = os.path.exists(os.path.join(cur, STAMP))
        if not managed and os.path.isdir(cur) and not os.path.islink(cur) \
                and not os.listdir(cur):
            managed = True  # an empty directory: nothing to keep
        if managed:
            old = tempfile.mkdtemp(prefix=".python_modules-old-", dir=d)
            os.rename(cur, os.path.join(old, MODULES))
        else:
            bak, n = cur + ".bak", 1
            while os.path.lexists(bak):
                n += 1
                bak = f"{cur}.bak{n}"
            os.rename(cur, bak)
            report.note(f"{MODULES}/ was not made by thaw sync: moved it to "
                        f"{os.path.basename(bak)}/")
    os.rename(new, cur)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def sync(d, quiet=False):
    report = Report(quiet)
    if not os.path.isdir(d):
        raise ToolError(f"{d} is not a directory")
    path = os.path.join(d, "pyproject.toml")
    try:
        lock = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        report.note(f"no pyproject.toml in {d}: nothing to do")
        return 0
    except OSError as e:
        raise ToolError(f"{path}: {e.strerror}") from None
    try:
        # one sync of a project at a time (two `thaw dev` starting together)
        fcntl.flock(lock, fcntl.LOCK_EX)
        # the stamp gets this mtime: an edit made while the installer runs
        # leaves pyproject.toml newer than the stamp, so it is synced again
        mtime_ns = os.fstat(lock).st_mtime_ns
        pyproject = read_pyproject(d) or {}
        reqs = requirements(pyproject)
        opts = index_options(pyproject, d)
        return _sync_locked(d, reqs, opts, report, mtime_ns)
    finally:
        os.close(lock)


def _sync_locked(d, reqs, opts, report, mtime_ns):
    builtin = BuiltinSet()
    plan = []        # (kind, req, dist-or-None), in the pyproject's order
    to_install = []
    for req in reqs:
        key = canonicalize_name(req.name)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            plan.append(("skipped", req, None))
        elif key in PROVIDED:
            plan.append(("provided", req, None))
        else:
            dist = builtin.satisfies(req)
            if dist is not None:
                plan.append(("built-in", req, dist))
            else:
                plan.append(("vendored", req, None))
                to_install.append(str(req))
    if not reqs:
        report.note("no [project] dependencies: nothing to vendor")

    tmp = tempfile.mkdtemp(prefix=".python_modules-new-", dir=d)
    try:
        mask = os.umask(0o22)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp made it 0700
        vendored = {}
        if to_install:
            name, cmd = installer(tmp, opts, to_install)
            report.note(f"installing {', '.join(to_install)} with {name}")
            # not thaw's python/ (PYTHONPATH from `build/thaw`): its `workers`
            # and `js` must not shadow anything a build step imports
            env = {k: v for k, v in os.environ.items()
                   if k not in ("PYTHONPATH", "THAW_EXE")}
            try:
                proc = subprocess.run(cmd, cwd=d, stdin=subprocess.DEVNULL, env=env,
                                      capture_output=True, text=True)
            except OSError as e:
                raise ToolError(f"cannot run {cmd[0]}: {e}") from None
            if proc.returncode != 0:
                sys.stderr.write(proc.stdout + proc.stderr)
                if not proc.stderr.endswith("\n") and proc.stderr:
                    sys.stderr.write("\n")
                had = os.path.isdir(os.path.join(d, MODULES))
                print(f"thaw sync: {name} failed (exit {proc.returncode}); "
                      + (f"{MODULES}/ is left as it was" if had else
                         f"no {MODULES}/ was written"), file=sys.stderr)
                return 1
            vendored = _dists_in(tmp)

        seen = set()
        for kind, req, dist in plan:
            key = canonicalize_name(req.name)
            if kind == "provided":
                report.line(f"provided by thaw {req.name}")
            elif kind == "built-in":
                report.line(f"built-in {req.name} {dist.version} ({builtin.origin(dist)})")
            elif kind == "skipped":
                report.line(f"skipped {req.name} (not for this platform: {req.marker})")
            else:
                got = vendored.get(key)
                seen.add(key)
                report.line(f"vendored {req.name} {got.version if got else '?'}")
        for key in sorted(set(vendored) - seen):
            dist = vendored[key]
            report.line(f"vendored {dist.metadata['Name']} {dist.version} (dependency)")
        _warn_conflicts(plan, vendored)

        with open(os.path.join(tmp, STAMP), "w") as f:
            json.dump({"synced": time.time(), "report": report.lines}, f, indent=1)
            f.write("\n")
        os.utime(os.path.join(tmp, STAMP), ns=(time.time_ns(), mtime_ns))
        _swap_in(d, tmp, report)
        report.note(f"{len(vendored)} package(s) in {os.path.join(d, MODULES)}")
        return 0
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def _warn_conflicts(plan, vendored):
    """A vendored package wins over the built-in one on sys.path: say so
    when a built-in requirement needs a version the vendored one is not."""
    for kind, req, dist in plan:
        if kind != "built-in":
            continue
        for dep in needed_requires(dist, req.extras):
            v = vendored.get(canonicalize_name(dep.name))
            if v is not None and not version_ok(dep.specifier, v.version):
                print(f"thaw sync: warning: built-in {req.name} {dist.version} needs "
                      f"{dep}, but {v.metadata['Name']} {v.version} is vendored and "
                      f"comes first on sys.path: they may not work together",
                      file=sys.stderr)


def main(argv):
    d, quiet = parse_args(argv)
    return sync(d, quiet)
