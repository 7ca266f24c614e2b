"""A template: forked from the zygote, it runs the worker's top level once,
then only forks instances. Every instance starts from this memory, so
what the top level computed is shared, copy-on-write."""
import gc
import json
import os
import signal
import sys
import threading
import time
import traceback

import _thaw

from . import buildcheck, entropy, hooks, instance, ipc, netpatch, output, proc, sandbox
from .handler import resolve_handler, resolve_scheduled
from .log import user_frames, user_traceback
from workers import _bindings, _durable, _jsmodules


class BuildError(Exception):
    """A build refused; kind says whose fault (src/pool/pool.h,
    enum thaw_build_fault): "worker" (its code) or "config"."""

    def __init__(self, msg, kind="worker"):
        super().__init__(msg)
        self.kind = kind


# What the supervisor sends when the top level ran past build_timeout_ms or
# cpu_ms (THAW_BUILD_STOP_SIGNAL in src/pool/build-deadline.h).
STOP_SIGNAL = signal.SIGUSR2


def _where(frame, wdir):
    """Where the top level was stopped: the innermost of the worker's own
    frames as "src/entry.py:LINE" (relative to its directory), and the
    stack of its frames as a traceback."""
    stack = user_frames(traceback.extract_stack(frame))
    root = os.path.realpath(wdir) + "/"
    where = ""
    for f in reversed(stack):
        path = os.path.realpath(f.filename)
        if path.startswith(root):
            where = f"{path[len(root):]}:{f.lineno}"
            break
    text = ("Traceback (most recent call last):\n" + "".join(stack.format())) if stack else ""
    return where, text


def _stop_on_signal(chan, version, wdir):
    """Installs the answer to thaw's stop signal for the top level's run:
    say where it was (BUILD_ERR of kind "stopped"), then exit. A top level
    that replaced the handler (or is stuck in C code that never returns
    to Python) is killed after a grace period, without a line."""
    def on_stop(signum, frame):
        try:
            where, text = _where(frame, wdir)
            chan.send(ipc.BUILD_ERR, version, ipc.fields(text, "stopped", where))
        finally:
            os._exit(1)
    signal.signal(STOP_SIGNAL, on_stop)
    return on_stop


def _import_hint(exc, main_rel):
    """Cloudflare puts the directory of `main` on sys.path: `import src.x`
    fails there and here, and the fix is `import x`."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return ""
    main_dir = os.path.dirname(main_rel)
    parts = main_dir.split("/") if main_dir else []
    top, _, rest = exc.name.partition(".")
    if top in parts:
        inner = exc.name[len(main_dir.replace("/", ".")) + 1:] if exc.name.startswith(
            main_dir.replace("/", ".") + ".") else rest
        return (f"\nhint: `main` is {main_rel}, so {main_dir}/ is on sys.path (as on "
                f"Cloudflare): write `import {inner or '...'}` instead of "
                f"`import {exc.name}`.\n")
    return ""


def load(name, wdir, main_rel, config_json):
    from workers._env import Env

    config = json.loads(config_json)
    netpatch.install(config, wdir)  # worker code's sockets go through thaw (instances inherit it)
    main_path = os.path.join(wdir, main_rel)
    main_dir = os.path.dirname(main_path)
    modname = os.path.basename(main_rel)[:-3]
    # no code of the worker ran yet: its config names a file thaw cannot import
    if not modname.isidentifier():
        raise BuildError(f"`main` is {main_rel}, but {modname!r} is not a valid Python "
                         f"module name: rename the file (letters, digits, _)", "config")
    if modname in sys.modules:
        raise BuildError(f"`main` is {main_rel}, whose module name {modname!r} is already "
                         f"taken by the standard library or thaw: rename the file "
                         f"(e.g. entry.py)", "config")
    vendored = os.path.join(wdir, "python_modules")
    try:
        buildcheck.check_python(config, wdir)
    except buildcheck.VersionMismatch as e:
        raise BuildError(str(e), "config") from None
    # the worker's own directory, then its vendored packages, then thaw's
    # SDK, the stdlib and the built-in package set
    sys.path[0:0] = [main_dir, vendored]
    os.chdir(wdir)
    sys.argv = [main_path]
    # before the top level runs: it may read env through workers.env or
    # import_from_javascript("cloudflare:workers"), as on Cloudflare
    env = Env(_bindings.env_mapping(config), _bindings.secret_names(config))
    _jsmodules._thaw_set_env(env)
    guard = entropy.begin_deploy(wdir, [vendored])
    t0 = time.perf_counter()
    try:
        buildcheck.process_pth_files(config, vendored)  # its import lines run guarded
        module = __import__(modname)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt are user errors too
        errors = entropy.end_deploy(guard)
        if errors:
            raise BuildError(_entropy_message(main_rel, errors))
        raise BuildError(f"{main_rel} failed at top level:\n"
                         + user_traceback(exc) + _import_hint(exc, main_rel))
    top_ms = (time.perf_counter() - t0) * 1000
    errors = entropy.end_deploy(guard)
    if errors:
        raise BuildError(_entropy_message(main_rel, errors))
    # only the module can say it defines the classes the migrations name
    missing = _durable.check_exports(config, module, main_rel)
    if missing:
        raise BuildError(missing)
    if threading.active_count() > 1:
        names = ", ".join(t.name for t in threading.enumerate()
                          if t is not threading.main_thread())
        raise BuildError(f"{main_rel} started a thread at top level ({names}); threads "
                         f"cannot survive the snapshot (fork). Start it in the handler.")
    flags = frozenset(config.get("_thaw_flags") or ())
    worker = instance.Worker(name, module,
                             resolve_handler(module, flags, config.get("compatibility_date")),
                             env)
    worker.flags = flags
    worker.scheduled = resolve_scheduled(module, flags, config.get("compatibility_date"))
    worker.top_level_ms = top_ms
    return worker


def _entropy_message(main_rel, errors):
    return (f"{main_rel}: deploy refused: the top level uses randomness\n"
            + "\n".join(errors) + "\n")


def main(fd, version, name, wdir, main_rel, config_json, sandbox_json="{}"):
    clock = sandbox.Clock("template-py", name, sandbox.fork_ns) if sandbox.TIMING else None
    if clock:
        clock.mark("fork")
    _thaw.set_name("thaw-template")
    output.set_worker(name)
    chan = ipc.BlockingChannel(fd)
    proc.reap_children_on_sigchld()
    proc.on_reaped = sandbox.reaped
    # a call the seccomp filter traps while the top level runs becomes the
    # build's error, naming the call (src/sandbox/seccomp-load.c)
    _thaw.seccomp_report(fd, version)
    try:
        # before any of the worker's code runs
        sandbox.template(name, wdir, sandbox_json,
                         netpatch.configured_ca_file(json.loads(config_json), wdir), clock)
    except OSError as e:
        chan.send(ipc.BUILD_ERR, version, ipc.fields(
            f"thaw could not sandbox the worker: {e}\n(thaw doctor checks each layer)\n",
            "internal"))
        return
    on_stop = _stop_on_signal(chan, version, wdir)
    try:
        worker = load(name, wdir, main_rel, config_json)
    except BuildError as e:
        chan.send(ipc.BUILD_ERR, version, ipc.fields(str(e), e.kind))
        return
    finally:
        # instances must not inherit it; a handler the worker set stays
        if signal.getsignal(STOP_SIGNAL) is on_stop:
            signal.signal(STOP_SIGNAL, signal.SIG_DFL)
    # the frame would land in the middle of another one from now on
    _thaw.seccomp_report(-1, 0)
    chan.send(ipc.BUILT, version, ipc.fields(worker.module.__name__, worker.handler.describe(),
                                             f"{worker.top_level_ms:.1f}"))
    if clock:
        clock.mark("load+built")
        clock.print()
    # Instances share the template's pages; without freezing, the first
    # collection in each instance would touch (and copy) most of them.
    gc.collect()
    gc.freeze()
    prefault = b""  # pages instances write early, once thaw has seen one serve
    warm = []       # module globals naming the ASGI apps instances serve
    while True:
        msg = chan.recv()
        if msg is None:
            return  # the supervisor dropped this version
        ftype, stream, payload, fd = msg
        if ftype == ipc.SPAWN and fd is not None:
            try:
                sandbox.hold_channel(fd)
                pid = proc.fork_and_report(chan, stream, [chan] + sandbox.instance_closes(),
                                           lambda: instance.serve(fd, worker, stream, prefault, warm))
                if pid:
                    sandbox.forked(pid, stream)
            except (BrokenPipeError, ConnectionResetError):
                return  # the supervisor retired this version meanwhile
            finally:
                os.close(fd)
        elif ftype == ipc.PREFAULT:
            prefault = bytes(payload)
        elif ftype == ipc.WARM:
            warm = hooks.warm_names(payload, worker.module)
        elif fd is not None:
            os.close(fd)
