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


# ---- scheduled (cron triggers) ------------------------------------------
#   class Default(WorkerEntrypoint): async def scheduled(self, controller, env, ctx)
#   async def on_scheduled(controller, env, ctx)   (the legacy module-level form)
# Fewer parameters get the first ones: (controller), (controller, env).

class ScheduledMissing:
    kind = "missing"

    def __init__(self, message):
        self.message = message

    def call(self, controller, env, ctx):
        raise LookupError(self.message)


class ScheduledHandler:
    def __init__(self, fn, skip_self, kind):
        self.fn = fn
        self.kind = kind
        self.nargs = min(_positional_count(fn, skip_self=skip_self), 3)

    def call(self, controller, env, ctx):
        return self.fn(*(controller, env, ctx)[:self.nargs])


class EntrypointScheduled(ScheduledHandler):
    def __init__(self, cls):
        super().__init__(cls.scheduled, True, "Default.scheduled")
        self.cls = cls

    def call(self, controller, env, ctx):
        return self.cls(ctx, env).scheduled(*(controller, env, ctx)[:self.nargs])


def resolve_scheduled(module, flags=(), compat_date=None):
    """How to run the worker's scheduled handler (cron triggers)."""
    default = getattr(module, "Default", None)
    if isinstance(default, type) and callable(getattr(default, "scheduled", None)):
        return EntrypointScheduled(default)
    on_scheduled = getattr(module, "on_scheduled", None)
    if callable(on_scheduled):
        if "python_no_global_handlers" in flags:
            return ScheduledMissing(
                f"worker module `{module.__name__}` defines a module-level `on_scheduled`, "
                f"which is not called with compatibility_date {compat_date} (flag "
                f"python_no_global_handlers, on from 2025-08-14): move it into "
                f"`class Default(WorkerEntrypoint)` as `async def scheduled(self, controller, "
                f"env, ctx)`, or add \"disable_python_no_global_handlers\" to "
                f"compatibility_flags")
        return ScheduledHandler(on_scheduled, False, "on_scheduled")
    where = ("class Default has no `scheduled` method"
             if isinstance(default, type) else "it has no scheduled handler")
    return ScheduledMissing(
        f"worker module `{module.__name__}` got a scheduled event (a cron trigger) but "
        f"{where}: add `async def scheduled(self, controller, env, ctx)` to "
        f"`class Default(WorkerEntrypoint)`")
