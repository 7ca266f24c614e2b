"""A worker's print() and logging output, on thaw's log (stderr), tagged with the worker and the
request it belongs to: `[name req=17] text`.

Each template's fd 1 and 2 are a pipe of its worker version's own
(attach(), src/pool/output.h): the supervisor knows the worker from the
pipe, and takes only the request from the tag.

sys.stdout and sys.stderr are replaced in the zygote, before any worker
code exists, so even a logging handler that a worker's top level made
(it keeps the stream object it was given) writes through the tagging
stream. The request comes from a context variable that the instance sets
around each handler; a task inherits it when it is created."""
import contextvars
import io
import os
import sys
import time

request_id = contextvars.ContextVar("thaw_request_id", default=None)
_worker = ["thaw-zygote"]


def set_worker(name):
    _worker[0] = name


# A process may write RATE bytes a second to thaw's log, in bursts of up to
# BURST: a worker printing a gigabyte must not fill thaw's disk or drown
# the other workers' lines. What is over is dropped, and said so.
RATE = 1 << 20
BURST = 4 << 20
_budget = {"tokens": float(BURST), "t": None, "dropped": 0}


def _allow(n):
    b = _budget
    now = time.monotonic()
    if b["t"] is not None:
        b["tokens"] = min(float(BURST), b["tokens"] + (now - b["t"]) * RATE)
    b["t"] = now
    if b["tokens"] < n:
        b["dropped"] += n
        return False
    b["tokens"] -= n
    return True


def reset_budget():
    """A fresh budget (each instance after its fork)."""
    _budget.update(tokens=float(BURST), t=None, dropped=0)


class TaggedStream(io.TextIOBase):
    def __init__(self, raw):
        self._raw = raw
        self._partial = ""

    @property
    def encoding(self):
        return self._raw.encoding

    @property
    def errors(self):
        return self._raw.errors

    def fileno(self):
        return self._raw.fileno()

    def isatty(self):
        return False

    def writable(self):
        return True

    def _prefix(self):
        rid = request_id.get()
        return f"[{_worker[0]} req={rid}] " if rid is not None else f"[{_worker[0]}] "

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        text = self._partial + s
        lines = text.split("\n")
        self._partial = lines.pop()
        if len(self._partial) > 65536:  # a line without end is cut, not hoarded
            lines.append(self._partial)
            self._partial = ""
        if lines:
            prefix = self._prefix()
            out = "".join(f"{prefix}{line}\n" for line in lines)
            if _allow(len(out)):
                if _budget["dropped"]:
                    out = (f"{prefix}(thaw: {_budget['dropped']} bytes of output dropped: "
                           f"over {RATE >> 20} MB/s)\n" + out)
                    _budget["dropped"] = 0
                self._raw.write(out)
                self._raw.flush()
        return len(s)

    def flush(self):
        if self._partial:
            self._raw.write(self._prefix() + self._partial + "\n")
            self._partial = ""
        self._raw.flush()


def attach(fd):
    """In a freshly forked template: fd (the version's output pipe, taken
    over) becomes fd 1 and 2, which its instances inherit."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def install():
    # both go to thaw's log (stderr): thaw's stdout carries only its own
    # lines ("Ready on ..."), which tools may read
    sys.stdout = TaggedStream(sys.__stderr__)
    sys.stderr = TaggedStream(sys.__stderr__)


def worker_name():
    return _worker[0]
