"""The zygote: CPython is initialised once here; every template is a fork
of this process, so it pays for interpreter start-up and for importing
the runtime exactly once."""
import json
import os
import sys
import tomllib

import _thaw

from . import ipc, proc

# Imported here so every template and instance inherits them already
# loaded (the point of the zygote); asyncio is what instances run on.
import asyncio  # noqa: F401
import workers  # noqa: F401
import js  # noqa: F401
from . import template, instance  # noqa: F401


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


def _build(chan, version, payload, fd):
    args = [f.decode("utf-8", "surrogateescape") for f in ipc.parse_fields(payload)]
    proc.fork_and_report(chan, version, [chan],
                         lambda: template.main(fd, version, *args))
    os.close(fd)


def main(fd):
    _thaw.set_name("thaw-zygote")
    # a worker's print() reaches the log line by line, not at exit
    sys.stdout.reconfigure(line_buffering=True)
    proc.reap_children_on_sigchld()
    chan = ipc.BlockingChannel(fd)
    while True:
        msg = chan.recv()
        if msg is None:
            return  # the supervisor is gone
        ftype, stream, payload, mfd = msg
        if ftype == ipc.TOML:
            _toml_to_json(chan, stream, payload)
        elif ftype == ipc.BUILD and mfd is not None:
            _build(chan, stream, payload, mfd)
        else:
            if mfd is not None:
                os.close(mfd)
            print(f"[thaw-zygote] unexpected frame type {ftype}", file=sys.stderr)
