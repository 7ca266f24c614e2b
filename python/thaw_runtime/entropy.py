"""Entropy and the snapshot (seed post 1, "Memory snapshots and Entropy").

Every instance starts from the template's memory. A random value drawn
while the worker's top level runs would be the same in every instance, so:

At deploy (in the template, around the import of the worker's module):
  - the `random` global generator is seeded with a fixed poison seed and
    its state recorded;
  - the APIs that draw entropy are wrapped: called from the worker's own
    code, they record a violation and raise EntropyAtDeployError naming the
    call, the file and line, and the fix; called from library code (a
    package drawing entropy while it imports: ssl contexts, tempfile...),
    they work, and draws from the `random` global go to a scratch generator
    so the global state stays the poison state;
  - `random.Random()` without a seed is allowed and remembered: each
    instance reseeds it, unless the top level drew from it (its values
    would be frozen);
  - afterwards the wrappers are removed, and the template refuses to fork
    if the global state is not the poison state any more.

After fork (in each instance): reseed the global generator, every
remembered unseeded Random, numpy's global state, and tempfile's names.
"""
import os
import random
import sys
import weakref

POISON_SEED = 0x7468617721  # b"thaw!"

# The `random` module functions that draw from its global generator.
_RANDOM_FUNCS = (
    "random", "uniform", "triangular", "randint", "choice", "randrange", "sample",
    "shuffle", "choices", "normalvariate", "lognormvariate", "expovariate",
    "vonmisesvariate", "gammavariate", "gauss", "betavariate", "paretovariate",
    "weibullvariate", "getrandbits", "randbytes",
)
_SECRETS_FUNCS = ("token_bytes", "token_hex", "token_urlsafe", "randbelow", "randbits",
                  "choice")
_NUMPY_FUNCS = (
    "rand", "randn", "random", "random_sample", "ranf", "sample", "randint",
    "random_integers", "choice", "shuffle", "permutation", "bytes", "normal",
    "uniform", "standard_normal", "exponential", "poisson", "binomial", "beta",
    "gamma", "standard_cauchy", "seed",
)


class EntropyAtDeployError(RuntimeError):
    """Raised at deploy time when the worker's top level draws randomness."""


class _Guard:
    def __init__(self, user_root, excluded_roots):
        self.user_root = user_root.rstrip("/") + "/"
        self.excluded = tuple(r.rstrip("/") + "/" for r in excluded_roots)
        self.violations = []
        self.patched = []          # (obj, name, original)
        self.unseeded = weakref.WeakKeyDictionary()  # Random -> (site, state)
        self.scratch = random.Random(POISON_SEED)
        self.poison_state = None
        self.active = False

    # -- who called ----------------------------------------------------
    def _is_user_file(self, filename):
        return filename.startswith(self.user_root) and not filename.startswith(self.excluded)

    def direct_user_site(self, depth=2):
        """(file, line) if the immediate caller is the worker's own code."""
        f = sys._getframe(depth)
        if f is not None and self._is_user_file(f.f_code.co_filename):
            return f.f_code.co_filename, f.f_lineno
        return None

    def fail(self, site, call, fix=None):
        file, line = site
        rel = os.path.relpath(file, self.user_root)
        fix = fix or ("Move it into the handler (fetch), which runs after every instance "
                      "has reseeded, or use random.Random(seed) for a fixed sequence.")
        msg = (f"{rel}:{line}: {call} at top level would freeze one random value into "
               f"the snapshot that every instance starts from. {fix}")
        self.violations.append(msg)
        raise EntropyAtDeployError(msg)

    # -- patching ------------------------------------------------------
    def patch(self, obj, name, wrapper):
        original = getattr(obj, name, None)
        if original is None:
            return
        self.patched.append((obj, name, original))
        setattr(obj, name, wrapper(original, name))

    def unpatch(self):
        for obj, name, original in reversed(self.patched):
            setattr(obj, name, original)
        self.patched.clear()


_guard = None


def _wrap_random_global(guard):
    def wrapper(original, name):
        scratch = getattr(guard.scratch, name)

        def guarded(*args, **kwargs):
            site = guard.direct_user_site()
            if site:
                guard.fail(site, f"random.{name}()")
            return scratch(*args, **kwargs)  # library draw: keep the poison state
        guarded.__wrapped__ = original
        return guarded
    return wrapper


def _wrap_seed(guard):
    def wrapper(original, name):
        def guarded(a=None, *args, **kwargs):
            site = guard.direct_user_site()
            if site and a is None:
                guard.fail(site, "random.seed() without a seed")
            if site:
                guard.fail(site, f"random.seed({a!r})",
                           "Each instance reseeds the global generator after the "
                           "snapshot, so seeding it here has no effect: use "
                           "random.Random(seed) for a reproducible sequence.")
            return guard.scratch.seed(a, *args, **kwargs)
        return guarded
    return wrapper


def _wrap_user_only(guard, label):
    def wrapper(original, name):
        def guarded(*args, **kwargs):
            site = guard.direct_user_site()
            if site:
                guard.fail(site, f"{label}{name}()")
            return original(*args, **kwargs)
        guarded.__wrapped__ = original
        return guarded
    return wrapper


def _wrap_random_init(guard):
    def wrapper(original, name):
        def __init__(self, x=None, *args, **kwargs):
            original(self, x, *args, **kwargs)
            if x is None and not isinstance(self, random.SystemRandom):
                # only generators the worker makes itself: a library's own
                # generator is the library's business
                site = guard.direct_user_site()
                if site:
                    # reseeded in every instance, unless drawn from now
                    guard.unseeded[self] = (site, self.getstate())
        return __init__
    return wrapper


def _wrap_default_rng(guard):
    def wrapper(original, name):
        def guarded(seed=None, *args, **kwargs):
            site = guard.direct_user_site()
            if site and seed is None:
                guard.fail(site, "numpy.random.default_rng() without a seed")
            return original(seed, *args, **kwargs)
        return guarded
    return wrapper


def _patch_numpy(guard, nprandom):
    for name in _NUMPY_FUNCS:
        guard.patch(nprandom, name, _wrap_user_only(guard, "numpy.random."))
    guard.patch(nprandom, "default_rng", _wrap_default_rng(guard))


class _PatchingLoader:
    """Delegates to numpy.random's real loader, then patches the module."""

    def __init__(self, loader, guard):
        self._loader = loader
        self._guard = guard

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        if self._guard.active:
            _patch_numpy(self._guard, module)


class _NumpyWatcher:
    """A meta path finder that patches numpy.random as soon as the top
    level imports it (it need not be imported before)."""

    def __init__(self, guard):
        self.guard = guard

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "numpy.random":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader, self.guard)
                return spec
        return None


def begin_deploy(user_root, excluded_roots=()):
    """Poisons entropy for the worker's top level. Returns the guard."""
    global _guard
    import secrets
    import uuid

    guard = _Guard(user_root, excluded_roots)
    random.seed(POISON_SEED)
    guard.poison_state = random.getstate()
    for name in _RANDOM_FUNCS:
        guard.patch(random, name, _wrap_random_global(guard))
    guard.patch(random, "seed", _wrap_seed(guard))
    guard.patch(random, "setstate", _wrap_user_only(guard, "random."))
    guard.patch(random.Random, "__init__", _wrap_random_init(guard))
    guard.patch(os, "urandom", _wrap_user_only(guard, "os."))
    guard.patch(os, "getrandom", _wrap_user_only(guard, "os."))
    for name in _SECRETS_FUNCS:
        guard.patch(secrets, name, _wrap_user_only(guard, "secrets."))
    guard.patch(uuid, "uuid4", _wrap_user_only(guard, "uuid."))
    if "numpy.random" in sys.modules:
        _patch_numpy(guard, sys.modules["numpy.random"])
    watcher = _NumpyWatcher(guard)
    sys.meta_path.insert(0, watcher)
    guard.patched.append((None, "meta_path", watcher))
    guard.active = True
    _guard = guard
    return guard


def end_deploy(guard):
    """Removes the wrappers. Returns a list of error messages: the
    violations (even those the worker caught), unseeded generators drawn
    from at top level, and a changed global state (an API without a wrapper:
    an internal error that must stop the fork)."""
    guard.active = False
    for obj, name, original in reversed(guard.patched):
        if obj is None:
            try:
                sys.meta_path.remove(original)
            except ValueError:
                pass
        else:
            setattr(obj, name, original)
    guard.patched.clear()
    errors = list(dict.fromkeys(guard.violations))
    for rng, (site, state) in list(guard.unseeded.items()):
        if rng.getstate() != state:
            rel = os.path.relpath(site[0], guard.user_root)
            errors.append(
                f"{rel}:{site[1]}: a random.Random() made here without a seed was drawn "
                f"from at top level, which would freeze its values into the snapshot. "
                f"Draw from it in the handler (fetch), or give it a seed.")
    if not errors and random.getstate() != guard.poison_state:
        errors.append("internal error: the random module's global state changed while the "
                      "top level ran, through an API thaw does not guard; refusing to "
                      "snapshot (please report this with the worker's code).")
    return errors


def reseed_after_fork():
    """In a new instance, before any handler runs."""
    seed = int.from_bytes(os.urandom(32), "little")
    random.seed(seed)
    if _guard is not None:
        for rng in list(_guard.unseeded.keys()):
            rng.seed(int.from_bytes(os.urandom(32), "little"))
    nprandom = sys.modules.get("numpy.random")
    if nprandom is not None:
        try:
            nprandom.seed()  # numpy's legacy global state, from OS entropy
        except Exception:
            pass
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        tempfile._name_sequence = None
