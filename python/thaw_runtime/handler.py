"""Finds how a worker module wants to be called, once, in the template,
so instances do no introspection per request.

The forms Cloudflare Python Workers accept:
  class Default(WorkerEntrypoint): async def fetch(self, request)
  ... def fetch(self, request)          (a plain function)
  ... async def fetch(self)             (no request)
  async def on_fetch(request, env[, ctx])  (the legacy module-level form)
"""
import inspect


def _positional_count(fn, skip_self):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 1
    n = 0
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            n += 1
        elif p.kind == p.VAR_POSITIONAL:
            return 99
    return n - 1 if skip_self else n


class Handler:
    kind = "missing"

    def __init__(self, module):
        if isinstance(getattr(module, "Default", None), type):
            self.message = (
                f"worker module `{module.__name__}`: class Default has no `fetch` "
                f"method: add `async def fetch(self, request)` to it")
        else:
            self.message = (
                f"worker module `{module.__name__}` has no fetch handler: define "
                f"`class Default(WorkerEntrypoint)` with a `fetch` method, or a "
                f"module-level `async def on_fetch(request, env)`")

    def describe(self):
        return self.kind

    def call(self, request, env, ctx):
        raise LookupError(self.message)


class EntrypointHandler(Handler):
    kind = "Default.fetch"

    def __init__(self, cls):
        self.cls = cls
        self.with_request = _positional_count(cls.fetch, skip_self=True) >= 1

    def call(self, request, env, ctx):
        obj = self.cls(ctx, env)
        return obj.fetch(request) if self.with_request else obj.fetch()


class LegacyHandler(Handler):
    kind = "on_fetch"

    def __init__(self, fn):
        self.fn = fn
        self.nargs = min(_positional_count(fn, skip_self=False), 3)

    def call(self, request, env, ctx):
        if self.nargs <= 1:
            return self.fn(request)
        if self.nargs == 2:
            return self.fn(request, env)
        return self.fn(request, env, ctx)


def resolve_handler(module, flags=(), compat_date=None):
    """flags: the compatibility flags in effect (see src/config/compat.c)."""
    default = getattr(module, "Default", None)
    if isinstance(default, type) and callable(getattr(default, "fetch", None)):
        return EntrypointHandler(default)
    on_fetch = getattr(module, "on_fetch", None)
    if callable(on_fetch):
        if "python_no_global_handlers" in flags:
            h = Handler(module)
            h.message = (
                f"worker module `{module.__name__}` defines a module-level `on_fetch`, "
                f"which is not called with compatibility_date {compat_date} (flag "
                f"python_no_global_handlers, on from 2025-08-14): move it into "
                f"`class Default(WorkerEntrypoint)` as `async def fetch(self, request)`, "
                f"or add \"disable_python_no_global_handlers\" to compatibility_flags")
            return h
        return LegacyHandler(on_fetch)
    return Handler(module)
