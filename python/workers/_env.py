"""Env: the bindings object handed to workers as `env` / `self.env`.

Config `vars`, secrets and bindings are reachable as `env.NAME` and
`env["NAME"]`.  Vars are returned as given (str, numbers, dicts/lists from
JSON); secrets are strings.  repr() lists names only, and never a secret's
value.  Env is read-only because one Env is shared by every request a
process serves.
"""


class Env:
    # No public methods: any method name (keys, get, ...) would shadow a
    # binding of the same name.  Only dunders and the one private slot exist.
    __slots__ = ("_thaw_vars", "_thaw_secrets")

    def __init__(self, mapping=None, secrets=()):
        object.__setattr__(self, "_thaw_vars", dict(mapping or {}))
        object.__setattr__(self, "_thaw_secrets", frozenset(secrets))

    def __getattr__(self, name):
        # Only called when normal lookup fails, i.e. for binding names.
        try:
            return self._thaw_vars[name]
        except KeyError:
            pass
        if name.startswith("__"):
            raise AttributeError(name)  # copy/pickle probes: keep it quiet
        names = ", ".join(sorted(self._thaw_vars)) or "(none)"
        raise AttributeError(
            f"env has no binding {name!r}; configured bindings: {names}"
        ) from None

    def __getitem__(self, name):
        try:
            return self._thaw_vars[name]
        except KeyError:
            names = ", ".join(sorted(self._thaw_vars)) or "(none)"
            raise KeyError(
                f"env has no binding {name!r}; configured bindings: {names}"
            ) from None

    def __contains__(self, name):
        return name in self._thaw_vars

    def __iter__(self):
        return iter(list(self._thaw_vars))

    def __len__(self):
        return len(self._thaw_vars)

    def __dir__(self):
        return sorted(self._thaw_vars)

    def __setattr__(self, name, value):
        raise AttributeError("env is read-only")

    def __delattr__(self, name):
        raise AttributeError("env is read-only")

    def __repr__(self):
        return f"<Env bindings: {', '.join(sorted(self._thaw_vars)) or '(none)'}>"
