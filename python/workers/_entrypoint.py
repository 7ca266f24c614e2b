"""Entrypoint base classes and the `handler` decorator.

The runtime instantiates the worker's `Default` class as `Default(ctx, env)`
and calls its methods (fetch, ...).  DurableObject and WorkflowEntrypoint
exist so worker modules that declare them still import; the runtime decides
whether it can run them.
"""


class WorkerEntrypoint:
    """Base class of `class Default(WorkerEntrypoint)`: keeps ctx and env."""

    def __init__(self, ctx, env):
        self.ctx = ctx
        self.env = env


class DurableObject:
    def __init__(self, ctx, env):
        self.ctx = ctx
        self.env = env


class WorkflowEntrypoint:
    def __init__(self, ctx, env):
        self.ctx = ctx
        self.env = env


def handler(func):
    """Cloudflare's decorator for old-style `on_fetch(request, env, ctx)`.

    There it converts JS objects into the Python types of this module; here
    the runtime already passes those types, so the function is returned
    unchanged (keeping it a coroutine function when it is one).
    """
    return func
