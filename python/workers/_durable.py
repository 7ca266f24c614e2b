"""Durable Objects in a worker: `env.BINDING` namespaces for
`durable_objects.bindings`, and the check, after the top level ran, that
the entry module defines every class the migrations created.

The config was checked and summarised by the supervisor (src/do/config.c)
as `_thaw_do`. Calls to an object (stub.fetch, RPC) and its storage are not
run yet: a stub says so when called (docs/bindings/durable-objects.md).
"""
from ._durable_id import DurableObjectId, DurableObjectNamespace
from ._entrypoint import DurableObject

__all__ = ["DurableObjectId", "DurableObjectNamespace", "DurableObjectStub",
           "bindings_from_config", "check_exports"]

_NOT_YET = ("thaw does not run calls to Durable Objects yet ({what}): namespaces and "
            "ids work, stub.fetch(), RPC methods and ctx.storage come next "
            "(docs/bindings/durable-objects.md)")


class DurableObjectStub:
    """What namespace.get(id) returns: `stub.id`, `stub.name`; fetch() and
    RPC methods raise until thaw runs objects."""

    __slots__ = ("_ns", "_id")

    def __init__(self, ns, id):
        self._ns = ns
        self._id = id

    @property
    def id(self):
        return self._id

    @property
    def name(self):
        return self._id.name

    def fetch(self, *args, **kwargs):
        raise NotImplementedError(_NOT_YET.format(what="stub.fetch()"))

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)

        def call(*args, **kwargs):
            raise NotImplementedError(_NOT_YET.format(what=f"RPC: stub.{method}()"))
        call.__name__ = method
        return call

    def __repr__(self):
        return f"<DurableObjectStub {self._id}>"


def bindings_from_config(config):
    do = config.get("_thaw_do") or {}
    for name, b in (do.get("bindings") or {}).items():
        yield name, DurableObjectNamespace(name, b["class_name"], b["key"], DurableObjectStub)


def check_exports(config, module, main_rel):
    """Every class the migrations left must be a DurableObject subclass in
    the entry module (Cloudflare: "not exported by script"). Returns None,
    or the message of the first one that is not."""
    do = config.get("_thaw_do") or {}
    for cls, info in sorted((do.get("classes") or {}).items()):
        obj = module.__dict__.get(cls)
        bound = [n for n, b in (do.get("bindings") or {}).items() if b["class_name"] == cls]
        by = f"migration \"{info.get('tag')}\" creates it" + (
            f" and binding {', '.join(bound)} uses it" if bound else "")
        if obj is None:
            return (f"{main_rel} defines no class {cls} ({by}): define "
                    f"`class {cls}(DurableObject)` in {main_rel} (from workers import "
                    f"DurableObject), or fix the name in the config")
        if not (isinstance(obj, type) and issubclass(obj, DurableObject)):
            what = "a class" if isinstance(obj, type) else type(obj).__name__
            return (f"{main_rel}: {cls} is {what} but not a Durable Object class ({by}): "
                    f"write `class {cls}(DurableObject)` (from workers import DurableObject)")
    return None
