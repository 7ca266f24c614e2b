"""The zygote: CPython is initialised once here; every template is a fork
of this process, so it pays for interpreter start-up and for importing
the runtime exactly once."""
import gc
import importlib
import json
import os
import sys
import threading
import time
import tomllib

import _thaw

from . import ipc, output, proc, sandbox

# Imported here so every template and instance inherits them already
# loaded (the point of the zygote); asyncio is what instances run on.
import asyncio  # noqa: F401
try:
    import uvloop  # noqa: F401  (the instances' loop: instance.py)
except ImportError:
    print("thaw: python3-uvloop is not installed: instances run on asyncio's own "
          "event loop, which costs more CPU per request (scripts/install-deps "
          "installs it)", file=sys.stderr, flush=True)
import workers  # noqa: F401
import js  # noqa: F401
from . import template, instance  # noqa: F401
# What every template imports before the worker's top level: the modules
# the entropy guard wraps (entropy.begin_deploy) and the `env` class. Imported
# in each template they cost 12-16 ms of every build (hashlib and OpenSSL,
# platform; THAW_SB_TIMING showed it); here, once.
import secrets  # noqa: F401
import uuid  # noqa: F401
import workers._env  # noqa: F401


def _toml_to_json(chan, stream, payload):
    (path,) = ipc.parse_fields(payload)
    path = path.decode("utf-8", "surrogateescape")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
        text = json.dumps(data, default=str)
    except tomllib.TOMLDecodeError as e:
        chan.send(ipc.TOML_ERR, stream, ipc.fields(f"{path}: {e}"))
    except OSError as e:
        chan.send(ipc.TOML_ERR, stream, ipc.fields(f"{path}: {e.strerror}"))
    else:
        chan.send(ipc.TOML_OK, stream, ipc.fields(text))


# (cookie, fd): the output pipe that the supervisor sent (STDIO) for the
# BUILD of the same cookie, which follows it on the channel
_stdio = [None]


def _take_stdio(stream, fd):
    if _stdio[0] is not None:
        os.close(_stdio[0][1])  # a BUILD that never came (the supervisor gave up)
    _stdio[0] = (stream, fd)


def _build(chan, version, payload, fd):
    out = _stdio[0][1] if _stdio[0] and _stdio[0][0] == version else None
    if out is None:
        # its output would land on the zygote's stderr, where nothing tells
        # workers apart (src/pool/output.h): no template without its pipe
        os.close(fd)
        chan.send(ipc.SPAWN_ERR, version, ipc.fields("no output pipe came with the build"))
        return
    _stdio[0] = None
    args = [f.decode("utf-8", "surrogateescape") for f in ipc.parse_fields(payload)]
    if sandbox.TIMING:
        sandbox.fork_ns = time.monotonic_ns()  # the template reads it: fork time

    def child():
        output.attach(out)  # before any of the worker's code runs
        template.main(fd, version, *args)
    if _thaw.sandbox_active():
        # the version's own pid namespace, born with its template and gone
        # once the supervisor let go of its channels (src/sandbox/keeper.c)
        try:
            sandbox.keeper_ctl = _thaw.pidns_new(fd)
        except OSError as e:
            chan.send(ipc.SPAWN_ERR, version, ipc.fields(str(e)))
            os.close(fd)
            os.close(out)
            return
    try:
        proc.fork_and_report(chan, version, [chan], child)
    finally:
        if sandbox.keeper_ctl is not None:
            os.close(sandbox.keeper_ctl)  # the template's now
            sandbox.keeper_ctl = None
    os.close(fd)
    os.close(out)


def _top_level_modules():
    return {name.partition(".")[0] for name in sys.modules}


def _preload(packages):
    """Imports the shared base. Returns the top-level modules it added: a
    worker that vendors its own copy of one must get a plain zygote."""
    before = _top_level_modules()
    for name in packages:
        try:
            importlib.import_module(name)
        except Exception as e:
            print(f"--preload: cannot import {name!r} ({type(e).__name__}: "
                  f"{e}); it is not preloaded", file=sys.stderr, flush=True)
    return sorted(_top_level_modules() - before)


# The zygote's environment is the one every worker gets (src/zygote/client.c
# lists it), plus these knobs for thaw itself, read by now (sandbox.TIMING,
# and main.c for the C side): gone before any template is forked.
_OWN_KNOBS = ("THAW_SB_TIMING",)


def _drop_own_knobs():
    for name in _OWN_KNOBS:
        os.environ.pop(name, None)


def main(fd, preload=""):
    _thaw.set_name("thaw-zygote")
    # a worker's print() reaches the log line by line, tagged
    output.install()
    proc.reap_children_on_sigchld()
    chan = ipc.BlockingChannel(fd)
    added = _preload([p.strip() for p in preload.split(",") if p.strip()])
    if threading.active_count() > 1:
        print("warning: the preloaded packages started threads, which "
              "do not survive fork", file=sys.stderr, flush=True)
    sandbox.prepare()
    _drop_own_knobs()
    # templates share the zygote's pages as the instances share theirs
    gc.collect()
    gc.freeze()
    chan.send(ipc.HELLO, 0, ipc.fields(*added))
    while True:
        msg = chan.recv()
        if msg is None:
            return  # the supervisor is gone
        ftype, stream, payload, mfd = msg
        if ftype == ipc.TOML:
            _toml_to_json(chan, stream, payload)
        elif ftype == ipc.STDIO and mfd is not None:
            _take_stdio(stream, mfd)
        elif ftype == ipc.BUILD and mfd is not None:
            _build(chan, stream, payload, mfd)
        else:
            if mfd is not None:
                os.close(mfd)
            print(f"unexpected frame type {ftype}", file=sys.stderr)
