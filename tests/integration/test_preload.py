"""The shared preloaded base (issue 3.4): `--preload` imports packages once,
in a zygote every template forks from; a worker that vendors its own copy
of one in python_modules/ is built from the plain zygote, so its copy wins.
The package here is Debian's `six` against a vendored six.py of another
version: two versions of one small package."""
import pytest

WORKER = '''
import sys
PRELOADED = "six" in sys.modules   # before the worker imports it
import six
from workers import WorkerEntrypoint, Response

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response.json({"preloaded": PRELOADED, "version": six.__version__,
                              "file": six.__file__})
'''

VENDORED_SIX = '__version__ = "99.0-vendored"\n'


def test_preloaded_package_is_in_the_template_already(serve):
    srv = serve(WORKER, args=("--preload", "six"))
    got = srv.get("/").json()
    assert got["preloaded"] is True, got
    assert got["file"].startswith("/usr/lib/python3/dist-packages/"), got


def test_without_preload_the_worker_imports_it_itself(serve):
    got = serve(WORKER).get("/").json()
    assert got["preloaded"] is False, got


def test_vendored_copy_wins_over_the_preloaded_one(serve):
    srv = serve(WORKER, args=("--preload", "six"),
                files={"python_modules/six.py": VENDORED_SIX})
    got = srv.get("/").json()
    assert got == {"preloaded": False, "version": "99.0-vendored",
                   "file": got["file"]}, got
    assert got["file"].endswith("python_modules/six.py"), got
    assert "vendors its own `six`" in srv.log()


def test_vendored_copy_wins_without_preload_too(serve):
    # sys.path order: the worker's dir, python_modules/, then built-ins
    got = serve(WORKER, files={"python_modules/six.py": VENDORED_SIX}).get("/").json()
    assert got["version"] == "99.0-vendored", got


def test_unknown_preload_package_is_reported_not_fatal(serve):
    srv = serve(WORKER, args=("--preload", "six,no_such_pkg_thaw"))
    assert srv.get("/").status == 200
    assert "cannot import 'no_such_pkg_thaw'" in srv.log()
