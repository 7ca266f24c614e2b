"""The WARM hint (ipc-proto.h) as the template reads it: only names of the
worker module's globals survive; a malformed payload is ignored."""
import types

from thaw_runtime import hooks, ipc


def test_names_of_module_globals_are_kept():
    module = types.SimpleNamespace(app=object(), other=1)
    payload = ipc.fields("asgi", "app", "asgi", "missing", "wsgi", "other", "asgi", "os.system")
    assert hooks.warm_names(payload, module) == ["app"]


def test_malformed_payloads_give_nothing():
    module = types.SimpleNamespace(app=object())
    assert hooks.warm_names(b"\xff\xff\xff\xff", module) == []       # overruns
    assert hooks.warm_names(b"\x01", module) == []                    # truncated
    assert hooks.warm_names(ipc.fields("asgi", b"\xff"), module) == []  # not UTF-8
    assert hooks.warm_names(ipc.fields("asgi"), module) == []         # odd count


def test_the_instance_observer_is_called_only_when_set():
    seen = []
    hooks.asgi_app_starting("x")   # no instance: nothing happens
    hooks._app_observer = seen.append
    try:
        hooks.asgi_app_starting("app")
    finally:
        hooks._app_observer = None
    assert seen == ["app"]
