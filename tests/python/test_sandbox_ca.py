"""The CA file's read rule (python/thaw_runtime/sandbox.py): under thaw
serve only a ca_file inside the worker's bundle is made readable, even if
the deploy check were bypassed; thaw dev keeps one anywhere."""
import sys
import types

sys.modules.setdefault("_thaw", types.ModuleType("_thaw"))  # the zygote's module

from thaw_runtime import sandbox  # noqa: E402

BUNDLE = ["/state/workers/evil/versions/1"]


def test_serve_keeps_only_a_ca_file_inside_the_bundle():
    inside = BUNDLE[0] + "/certs/ca.pem"
    for outside in ("/etc/shadow", "/state/token", "/state/workers/evil/versions/10/x",
                    "/state/workers/innocent/versions/1/.dev.vars"):
        assert sandbox._own_ca([outside], BUNDLE, 1) == []
    assert sandbox._own_ca([inside], BUNDLE, 1) == [inside]
    assert sandbox._own_ca([], BUNDLE, 1) == []


def test_dev_keeps_the_developers_ca_file_anywhere():
    assert sandbox._own_ca(["/home/dev/ca.pem"], BUNDLE, 0) == ["/home/dev/ca.pem"]
    assert sandbox._own_ca(["/home/dev/ca.pem"], BUNDLE, None) == ["/home/dev/ca.pem"]
