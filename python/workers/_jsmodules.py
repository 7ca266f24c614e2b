"""`import_from_javascript(name)` and the module-level `workers.env` /
`workers.wait_until`.

On Cloudflare this imports a JavaScript module; thaw has no JavaScript,
so it gives the two modules Python Workers code imports, built from
thaw's Python: "cloudflare:workers" (env, waitUntil, the entrypoint
classes) and "cloudflare:sockets" (connect). Any other name is an
ImportError naming those two.

The runtime tells this module the worker's env (before the worker's top
level runs, so `env` can be read there, as on Cloudflare) and the
instance's ctx (thaw_runtime/template.py, instance.py).
"""
import contextlib
import contextvars
import types
from collections.abc import Mapping

_env = None
_ctx = None
# patch_env's env, for the task (and the tasks it starts) that entered it
_patched = contextvars.ContextVar("thaw_patched_env", default=None)


def _thaw_set_env(env):
    global _env
    _env = env


def _thaw_set_ctx(ctx):
    global _ctx
    _ctx = ctx


def current_env():
    patched = _patched.get()
    if patched is not None:
        return patched
    if _env is None:
        raise RuntimeError("env is not available here: thaw sets it when it loads a worker "
                           "(outside thaw, pass an env to the handler instead)")
    return _env


@contextlib.contextmanager
def patch_env(d=None, **kwds):
    """Cloudflare's `with patch_env(NAME=value): ...`: inside the block
    (in this task and the tasks it starts) `workers.env` and
    cloudflare:workers' env hold these values over the worker's."""
    from ._env import Env
    base = _patched.get() or _env
    values = dict(base._thaw_vars) if base is not None else {}
    values.update(dict(d or ()), **kwds)
    secrets = base._thaw_secrets if base is not None else ()
    token = _patched.set(Env(values, secrets))
    try:
        yield
    finally:
        _patched.reset(token)


def wait_until(awaitable):
    """`waitUntil` of "cloudflare:workers": ctx.wait_until of the instance."""
    if _ctx is None:
        if hasattr(awaitable, "close"):
            awaitable.close()  # never awaited: no "never awaited" warning on top
        raise RuntimeError(
            "waitUntil() cannot be used here: work after the response belongs to a "
            "request or a scheduled event, not the top level of the worker, which runs "
            "once at deploy time. Call it from the handler.")
    _ctx.wait_until(awaitable)


class _CloudflareWorkers(types.ModuleType):
    """"cloudflare:workers": `env` is read when asked for (it is set after
    this object exists)."""

    @property
    def env(self):
        return current_env()


def _sockets_connect(address, options=None, **kwargs):
    """"cloudflare:sockets" connect(address, options): options a JS-style
    object ({"secureTransport": "on", "allowHalfOpen": False}) or keywords."""
    from .sockets import connect
    if options is not None:
        if not isinstance(options, Mapping):
            raise TypeError(f"connect() options must be an object (a dict), not "
                            f"{type(options).__name__}")
        kwargs = {**options, **kwargs}
    return connect(address, **kwargs)


def _build():
    from ._entrypoint import DurableObject, WorkerEntrypoint, WorkflowEntrypoint
    workers_mod = _CloudflareWorkers("cloudflare:workers")
    workers_mod.waitUntil = wait_until
    workers_mod.WorkerEntrypoint = WorkerEntrypoint
    workers_mod.DurableObject = DurableObject
    workers_mod.WorkflowEntrypoint = WorkflowEntrypoint
    sockets_mod = types.ModuleType("cloudflare:sockets")
    sockets_mod.connect = _sockets_connect
    return {"cloudflare:workers": workers_mod, "cloudflare:sockets": sockets_mod}


_modules = None


def import_from_javascript(module_name):
    """The JavaScript module `module_name`, of those thaw has."""
    global _modules
    if _modules is None:
        _modules = _build()
    try:
        return _modules[module_name]
    except (KeyError, TypeError):
        raise ImportError(
            f"Failed to import {module_name!r}: thaw runs Python without JavaScript, and "
            f"import_from_javascript gives 'cloudflare:workers' (env, waitUntil, "
            f"WorkerEntrypoint, DurableObject, WorkflowEntrypoint) and "
            f"'cloudflare:sockets' (connect) only") from None
