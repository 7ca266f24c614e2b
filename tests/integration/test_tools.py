"""`thaw sync`, `thaw init` and `thaw types` (python/thaw_tools), run through
the real `build/thaw`.

No package index is reachable here, so the sync tests build small wheels in
tmp_path (by hand, or with `pip wheel` for a C extension) and vendor them
with --find-links and --no-index.
"""
import base64
import csv
import hashlib
import io
import json
import os
import subprocess
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from thawlib import REPO, THAW, write_worker

PY = "/usr/bin/python3"


# ---------------------------------------------------------------- helpers

def tool_env(**extra):
    """The environment for a tool run: no pip/uv settings of this machine
    (config files, PIP_FIND_LINKS, ...), so every test says its own."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "THAW_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env.update(extra)
    return env


def thaw(*args, cwd=None, env=None, timeout=120):
    return subprocess.run([str(THAW), *map(str, args)], cwd=cwd, env=env or tool_env(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


def make_wheel(dest, name, version, files, requires=()):
    """Write a minimal pure-Python wheel (METADATA, WHEEL, RECORD) into dest;
    files maps paths inside the wheel to their text."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    content = {rel: textwrap.dedent(text) for rel, text in files.items()}
    content[f"{info}/METADATA"] = "\n".join(meta) + "\n"
    content[f"{info}/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: thaw-tests\n"
                                "Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = io.StringIO()
    w = csv.writer(record, lineterminator="\n")
    for rel, text in content.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        w.writerow([rel, f"sha256={digest.decode()}", len(data)])
    w.writerow([f"{info}/RECORD", "", ""])
    content[f"{info}/RECORD"] = record.getvalue()
    path = dest / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for rel, text in content.items():
            z.writestr(rel, text)
    return path


def write_pyproject(d, deps, **tool):
    lines = ["[project]", 'name = "t"', 'version = "0"',
             f"dependencies = {json.dumps(deps)}"]
    if tool:
        lines.append("\n[tool.thaw]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in tool.items()]
    p = Path(d) / "pyproject.toml"
    p.write_text("\n".join(lines) + "\n")
    return p


def listing(d):
    """{relative path: (size, mtime_ns)} of every file under d."""
    d = Path(d)
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in d.rglob("*") if p.is_file()}


@pytest.fixture
def wheels(tmp_path):
    """A find-links directory with thawdemo 1.2 (needing thawdep) and
    thawdep 0.1."""
    d = tmp_path / "wheels"
    make_wheel(d, "thawdemo", "1.2", {
        "thawdemo/__init__.py": """
            from thawdep import word
            VERSION = "1.2"
            def greet(who):
                return f"{word()} {who} from thawdemo {VERSION}"
        """}, requires=["thawdep>=0.1"])
    make_wheel(d, "thawdep", "0.1", {"thawdep/__init__.py": "def word():\n    return 'hi'\n"})
    return d


DEMO_WORKER = """
    import thawdemo
    from workers import Response, WorkerEntrypoint

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            return Response(thawdemo.greet("you") + "\\n")
"""


# ---------------------------------------------------------------- thaw sync

def test_sync_vendors_from_find_links_and_dev_serves_it(workdir, wheels, thaw_factory):
    write_worker(workdir, DEMO_WORKER)
    write_pyproject(workdir, ["thawdemo>=1", "workers-py"],
                    **{"find-links": ["../wheels"], "no-index": True})
    r = ok(thaw("sync", workdir))
    lines = r.stdout.splitlines()
    assert "vendored thawdemo 1.2" in lines, r.stdout
    assert "vendored thawdep 0.1 (dependency)" in lines, r.stdout
    assert "provided by thaw workers-py" in lines, r.stdout
    mods = workdir / "python_modules"
    assert (mods / "thawdemo" / "__init__.py").is_file()
    assert (mods / "thawdep" / "__init__.py").is_file()
    # "the last sync" that `thaw dev` compares with: pyproject.toml's mtime
    assert (mods / ".thaw-sync").stat().st_mtime_ns == \
        (workdir / "pyproject.toml").stat().st_mtime_ns
    assert oct(mods.stat().st_mode & 0o777) == "0o755"
    assert not [p for p in workdir.iterdir() if p.name.startswith(".python_modules")]
    s = thaw_factory(workdir)
    assert s.get("/").text == "hi you from thawdemo 1.2\n"


def test_sync_uses_the_builtin_set_and_says_where_each_came_from(workdir):
    import six  # Debian's python3-six, in scripts/install-deps
    write_pyproject(workdir, ["six>=1.10", "workers-py", "workers-runtime-sdk",
                              "fastapi", "flask[async]", 'numpy; python_version < "3"'])
    r = ok(thaw("sync", workdir))
    assert r.stdout.splitlines() == [
        f"built-in six {six.__version__} (Debian)",
        "provided by thaw workers-py",
        "provided by thaw workers-runtime-sdk",
        f"built-in fastapi {pkg_version('fastapi')} (Debian)",
        f"built-in flask {pkg_version('flask')} (Debian)",
        'skipped numpy (not for this platform: python_version < "3")',
        "thaw sync: 0 package(s) in " + str(workdir / "python_modules"),
    ], r.stdout
    # nothing was installed: python_modules/ holds only the stamp
    assert os.listdir(workdir / "python_modules") == [".thaw-sync"]


def pkg_version(name):
    import importlib.metadata
    return importlib.metadata.version(name)


def test_a_version_the_builtin_set_lacks_is_vendored_and_wins(workdir, tmp_path,
                                                               thaw_factory):
    make_wheel(tmp_path / "wheels", "six", "99.0", {"six.py": "__version__ = '99.0'\n"})
    write_worker(workdir, """
        import six
        from workers import Response, WorkerEntrypoint

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response(six.__version__)
    """)
    write_pyproject(workdir, ["six>=99"])
    r = ok(thaw("sync", workdir, env=tool_env(THAW_FIND_LINKS=str(tmp_path / "wheels"),
                                              THAW_NO_INDEX="1")))
    assert "vendored six 99.0" in r.stdout.splitlines(), r.stdout
    assert thaw_factory(workdir).get("/").text == "99.0"


def test_a_failed_resolve_prints_the_error_and_keeps_python_modules(workdir, wheels):
    write_pyproject(workdir, ["thawdemo"], **{"find-links": [str(wheels)], "no-index": True})
    ok(thaw("sync", workdir))
    before = listing(workdir / "python_modules")
    assert "thawdemo/__init__.py" in before
    time.sleep(0.01)
    write_pyproject(workdir, ["thawdemo", "no-such-thaw-package>=1"],
                    **{"find-links": [str(wheels)], "no-index": True})
    r = thaw("sync", workdir)
    assert r.returncode != 0
    # pip's own error, then thaw's line
    assert "No matching distribution found for no-such-thaw-package" in r.stderr, r.stderr
    assert "python_modules/ is left as it was" in r.stderr
    assert listing(workdir / "python_modules") == before
    assert not [p for p in workdir.iterdir() if p.name.startswith(".python_modules")]
    # the stamp is older than pyproject.toml: `thaw dev` will try again
    assert (workdir / "python_modules/.thaw-sync").stat().st_mtime_ns < \
        (workdir / "pyproject.toml").stat().st_mtime_ns


def test_removed_dependencies_leave_python_modules(workdir, wheels):
    write_pyproject(workdir, ["thawdemo"], **{"find-links": [str(wheels)], "no-index": True})
    ok(thaw("sync", workdir))
    write_pyproject(workdir, [])
    r = ok(thaw("sync", workdir))
    assert "no [project] dependencies: nothing to vendor" in r.stdout
    assert os.listdir(workdir / "python_modules") == [".thaw-sync"]


def test_nothing_to_do_without_pyproject(workdir):
    r = ok(thaw("sync", workdir))
    assert "no pyproject.toml" in r.stdout and "nothing to do" in r.stdout
    assert not (workdir / "python_modules").exists()
    # DIR defaults to the current directory
    r = ok(thaw("sync", cwd=workdir))
    assert "nothing to do" in r.stdout


def test_quiet_prints_nothing_on_success(workdir, wheels):
    write_pyproject(workdir, ["thawdemo", "six"],
                    **{"find-links": [str(wheels)], "no-index": True})
    r = ok(thaw("sync", workdir, "--quiet"))
    assert r.stdout == "" and r.stderr == ""
    assert (workdir / "python_modules/thawdemo").is_dir()


def test_a_python_modules_not_made_by_sync_is_kept_aside(workdir, wheels):
    mine = workdir / "python_modules" / "handmade.py"
    mine.parent.mkdir()
    mine.write_text("X = 1\n")
    write_pyproject(workdir, ["thawdemo"], **{"find-links": [str(wheels)], "no-index": True})
    r = ok(thaw("sync", workdir))
    assert "moved it to python_modules.bak/" in r.stdout
    assert (workdir / "python_modules.bak/handmade.py").read_text() == "X = 1\n"
    assert (workdir / "python_modules/thawdemo").is_dir()


def test_bad_tool_thaw_key_is_an_error(workdir):
    write_pyproject(workdir, ["six"], **{"find-link": ["x"]})
    r = thaw("sync", workdir)
    assert r.returncode == 1
    assert "unknown key in [tool.thaw]: find-link" in r.stderr


FAKE_UV = """#!/bin/sh
# a stand-in for uv: records its arguments, installs with pip
printf '%s\\n' "$@" > "$UV_LOG"
[ "$1 $2" = "pip install" ] || exit 2
shift 2
args=""
while [ $# -gt 0 ]; do
    case "$1" in
        --python) shift ;;
        *) args="$args $1" ;;
    esac
    shift
done
exec /usr/bin/python3 -m pip install --disable-pip-version-check --root-user-action=ignore $args
"""


def test_uv_is_used_when_on_path(workdir, wheels, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "uv").write_text(FAKE_UV)
    (bindir / "uv").chmod(0o755)
    log = tmp_path / "uv.log"
    write_pyproject(workdir, ["thawdemo==1.2"], **{"index-url": "http://127.0.0.1:9/simple",
                                                  "no-index": True})
    env = tool_env(PATH=f"{bindir}:/usr/bin:/bin", UV_LOG=str(log),
                   THAW_FIND_LINKS=str(wheels))
    r = ok(thaw("sync", workdir, env=env))
    assert "installing thawdemo==1.2 with uv" in r.stdout
    assert "vendored thawdemo 1.2" in r.stdout
    args = log.read_text().splitlines()
    assert args[:3] == ["pip", "install", "--target"]
    assert args[args.index("--python") + 1] == PY
    assert args[args.index("--index-url") + 1] == "http://127.0.0.1:9/simple"
    assert args[args.index("--find-links") + 1] == str(wheels)
    assert "--no-index" in args and args[-1] == "thawdemo==1.2"
    # without uv on PATH, pip
    r = ok(thaw("sync", workdir, env=tool_env(PATH="/usr/bin:/bin",
                                              THAW_FIND_LINKS=str(wheels))))
    assert "with pip" in r.stdout


C_EXT = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *add(PyObject *self, PyObject *args)
{
    long a, b;
    if (!PyArg_ParseTuple(args, "ll", &a, &b))
        return NULL;
    return PyLong_FromLong(a + b);
}

static PyMethodDef methods[] = {{"add", add, METH_VARARGS, "a + b"}, {NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "thawfast", NULL, -1, methods};
PyMODINIT_FUNC PyInit_thawfast(void) { return PyModule_Create(&mod); }
"""


def test_a_package_with_a_c_extension_is_vendored_and_served(workdir, tmp_path,
                                                               thaw_factory):
    src = tmp_path / "thawfast-src"
    src.mkdir()
    (src / "thawfast.c").write_text(C_EXT)
    (src / "setup.py").write_text(
        "from setuptools import setup, Extension\n"
        "setup(name='thawfast', version='2.0', "
        "ext_modules=[Extension('thawfast', ['thawfast.c'])])\n")
    built = subprocess.run(
        [PY, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index",
         "-w", str(tmp_path / "wheels"), str(src)],
        env=tool_env(), capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    write_worker(workdir, """
        import thawfast
        from workers import Response, WorkerEntrypoint

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response(f"{thawfast.add(40, 2)} {thawfast.__file__.split('/')[-2]}")
    """)
    write_pyproject(workdir, ["thawfast>=2"],
                    **{"find-links": ["../wheels"], "no-index": True})
    r = ok(thaw("sync", workdir))
    assert "vendored thawfast 2.0" in r.stdout
    assert list((workdir / "python_modules").glob("thawfast.cpython-*.so"))
    assert thaw_factory(workdir).get("/").text == "42 python_modules"


def test_dev_syncs_when_pyproject_is_newer_than_the_last_sync(workdir, tmp_path,
                                                                thaw_factory):
    wheels = tmp_path / "wheels"
    for v in ("1.0", "2.0"):
        make_wheel(wheels, "thawver", v, {"thawver.py": f"V = {v!r}\n"})
    write_worker(workdir, """
        import thawver
        from workers import Response, WorkerEntrypoint

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response(thawver.V)
    """)
    write_pyproject(workdir, ["thawver==1.0"], **{"find-links": [str(wheels)],
                                                  "no-index": True})
    s = thaw_factory(workdir)  # no `thaw sync` first: dev runs it
    assert s.get("/").text == "1.0"
    assert (workdir / "python_modules/.thaw-sync").is_file()
    write_pyproject(workdir, ["thawver==2.0"], **{"find-links": [str(wheels)],
                                                  "no-index": True})
    s.poll_until(lambda r: r.text == "2.0", timeout=30)


# ---------------------------------------------------------------- thaw init

TEMPLATES = {
    # template: (path, expected body fragment)
    "hello": ("/", "Hello from "),
    "fastapi": ("/", '{"message":"This is an example of FastAPI"}'),
    "django": ("/", "Hello from Django on thaw"),
    "kv": ("/", "PUT /KEY stores the body"),
    "cron": ("/", "scheduled has not run yet"),
}


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_init_writes_a_project_dev_serves_at_once(template, tmp_path, thaw_factory):
    d = tmp_path / f"my-{template}"
    r = ok(thaw("init", d, "--template", template))
    assert f"wrote a {template} worker named 'my-{template}'" in r.stdout
    for f in ("wrangler.toml", "src/entry.py", "pyproject.toml", ".gitignore"):
        assert (d / f).is_file(), f
    assert "python_modules/" in (d / ".gitignore").read_text()
    assert f'name = "my-{template}"' in (d / "wrangler.toml").read_text()
    s = thaw_factory(d)
    path, want = TEMPLATES[template]
    resp = s.get(path)
    assert resp.status == 200 and want in resp.text, resp
    if template == "fastapi":
        assert s.get("/env").json() == {"message": "Here is an example of getting an "
                                        "environment variable: This is an environment "
                                        "variable"}
        assert s.request("POST", "/items/", body=b'{"name":"x","price":1.5}',
                         headers={"content-type": "application/json"}).json() == \
            {"name": "x", "description": None, "price": 1.5, "tax": None}
    if template == "kv":
        assert s.request("PUT", "/greeting", body=b"hi there").status == 201
        got = s.get("/greeting")
        assert got.text == "hi there"
        assert '["greeting"]' in s.get("/").text
        assert (d / f".thaw/state/kv/my-{template}-kv.sqlite").is_file()
        assert "not supported" not in s.log()
    if template == "cron":
        assert s.get("/__scheduled?cron=*/5+*+*+*+*").text == "Ran scheduled event"
        assert "run(s); last: cron" in s.get("/").text
        assert "ran cleanup" in s.wait_log("ran cleanup")
    # its dependencies come from the built-in set: the sync vendored nothing
    r = ok(thaw("sync", d))
    assert "vendored" not in r.stdout


def test_init_defaults_and_refuses_to_overwrite(tmp_path):
    d = tmp_path / "Fresh Worker"
    d.mkdir()
    ok(thaw("init", cwd=d))  # DIR ., template hello
    assert 'name = "fresh-worker"' in (d / "wrangler.toml").read_text()
    assert "GREETING" in (d / "wrangler.toml").read_text()
    (d / "src/entry.py").write_text("# mine\n")
    r = thaw("init", d, "--template", "kv")
    assert r.returncode == 1 and "not overwriting" in r.stderr
    assert (d / "src/entry.py").read_text() == "# mine\n"
    ok(thaw("init", d, "--template", "kv", "--force"))
    assert "self.env.KV" in (d / "src/entry.py").read_text()
    r = thaw("init", tmp_path / "x", "--template", "nope")
    assert r.returncode == 1 and "no template 'nope'" in r.stderr


# ---------------------------------------------------------------- thaw types

def mypy(d, *files, cache=None):
    cache = cache or Path(d) / ".mypy_cache"
    return subprocess.run([PY, "-m", "mypy", "--cache-dir", str(cache), *files],
                          cwd=d, capture_output=True, text=True, timeout=300)


TYPED_WORKER = """
    from workers import Request, Response, WorkerEntrypoint


    class Default(WorkerEntrypoint):
        async def fetch(self, request: Request) -> Response:
            greeting: str = self.env.GREETING
            count: int = self.env.COUNT
            ratio: float = self.env.RATIO
            debug: bool = self.env.DEBUG
            settings: dict = self.env.SETTINGS
            tags: list = self.env.TAGS
            await self.env.CACHE.get("k")  # a KV binding: KVNamespace
            self.ctx.wait_until(request.text())
            page = self.env["GREETING"]
            body = f"{greeting} {count} {ratio} {debug} {settings} {tags} {page}"
            return Response(body, headers={"x-env": str(len(self.env))})
"""


def typed_worker(workdir, source=TYPED_WORKER):
    write_worker(workdir, source,
                 vars={"GREETING": "hi", "COUNT": 3, "RATIO": 0.5, "DEBUG": True,
                       "SETTINGS": {"a": 1}, "TAGS": ["x"], "not-an-attr": "y"})
    with open(workdir / "wrangler.toml", "a") as f:
        f.write('\n[[kv_namespaces]]\nbinding = "CACHE"\nid = "abc"\n')
    (workdir / "pyproject.toml").write_text(
        '[project]\nname = "t"\nversion = "0"\ndependencies = []\n\n'
        '[tool.mypy]\nmypy_path = "typings"\ncheck_untyped_defs = true\n')


def test_types_writes_env_and_workers_stubs_mypy_accepts(workdir):
    typed_worker(workdir)
    r = ok(thaw("types", workdir))
    assert "7 var(s), 1 binding(s)" in r.stdout
    env = (workdir / "typings/env.pyi").read_text()
    assert "def GREETING(self) -> str" in env and "def COUNT(self) -> int" in env
    assert "def RATIO(self) -> float" in env and "def DEBUG(self) -> bool" in env
    assert "def SETTINGS(self) -> dict[str, Any]" in env
    assert "def CACHE(self) -> KVNamespace" in env and "kv_namespaces" in env
    assert "not-an-attr" in env  # named in a comment, not as an attribute
    for f in ("workers/__init__.pyi", "workers/asgi.pyi", "workers/wsgi.pyi",
              "asgi.pyi", "js.pyi"):
        assert (workdir / "typings" / f).is_file(), f
    r = mypy(workdir, "src/entry.py")
    assert r.returncode == 0 and "Success: no issues found" in r.stdout, r.stdout + r.stderr


def test_mypy_flags_a_misspelt_env_attribute(workdir):
    typed_worker(workdir, """
        from workers import Response, WorkerEntrypoint


        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response(self.env.GREETNG)


        async def on_fetch(request, env: "Env"):
            env.COUNT = 4
            return Response(env.COUNT + 1)


        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from env import Env
    """)
    ok(thaw("types", workdir))
    r = mypy(workdir, "src/entry.py")
    assert r.returncode == 1, r.stdout
    assert '"Env" has no attribute "GREETNG"; maybe "GREETING"?' in r.stdout, r.stdout
    assert 'Property "COUNT" defined in "Env" is read-only' in r.stdout, r.stdout
    assert 'Argument 1 to "Response" has incompatible type "int"' in r.stdout, r.stdout


def test_types_reads_jsonc_and_writes_to_out(workdir, tmp_path):
    write_worker(workdir, "print(1)\n", fmt="jsonc", vars={"URL": "https://x/*y*/"})
    cfg = workdir / "wrangler.jsonc"
    text = cfg.read_text().replace('"vars"', '// comment\n  /* and */ "vars"')
    text = text.replace('"https://x/*y*/"\n', '"https://x/*y*/",\n')  # a trailing comma
    cfg.write_text(text)
    out = tmp_path / "stubs"
    ok(thaw("types", workdir, "-o", out))
    assert "def URL(self) -> str" in (out / "env.pyi").read_text()
    ok(thaw("types", "-o", "elsewhere", cwd=workdir))
    assert (workdir / "elsewhere/env.pyi").is_file()


def test_init_then_types_then_mypy_is_clean_for_every_template(tmp_path):
    for template in sorted(TEMPLATES):
        d = tmp_path / template
        ok(thaw("init", d, "--template", template))
        ok(thaw("types", d))
        r = mypy(d, "src", cache=tmp_path / "mypy-cache")  # shared: fastapi once
        assert r.returncode == 0, f"{template}:\n{r.stdout}{r.stderr}"


def test_the_workers_stubs_match_the_sdk(workdir):
    """mypy's stubtest compares the stubs with thaw's real `workers`, `js`
    and `pyodide` modules (the differences: Response.json, a descriptor that is a
    classmethod on the class and a coroutine method on an instance; and
    js.Array.from / js.Uint8Array.from, which no stub can spell: `from` is
    a Python keyword)."""
    typed_worker(workdir)
    ok(thaw("types", workdir))
    allow = workdir / "allow.txt"
    allow.write_text("workers.Response.json\njs.Response.json\njs.Array.from\n"
                     "js.Uint8Array.from\n")
    env = dict(tool_env(), PYTHONPATH=str(REPO / "python"), MYPYPATH="typings")
    r = subprocess.run([PY, "-m", "mypy.stubtest", "--allowlist", str(allow),
                        "--mypy-config-file", os.devnull, "workers", "js", "pyodide"],
                       cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
