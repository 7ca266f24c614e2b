"""Helpers for the black-box tests of `build/thaw dev`.

Each test writes a worker project into tmp_path, starts the real binary on a
free loopback port, waits for `Ready on http://127.0.0.1:N` on its stdout and
speaks HTTP to it. thaw's stderr (its log) goes to a file the test can read.
Every server is stopped with SIGTERM at teardown (SIGKILL after 5 s).

Run: /usr/bin/python3 -m pytest -q tests/integration
(THAW_BIN=/path/to/thaw overrides the binary under test.)
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
THAW = Path(os.environ.get("THAW_BIN", REPO / "build" / "thaw"))
READY_TIMEOUT = 15.0
HTTP_TIMEOUT = 15.0


# ---------------------------------------------------------------- worker files

def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def write_config(d, name="test-worker", main="src/entry.py", vars=None, fmt="toml",
                 **tables):
    """Write wrangler.toml / wrangler.json / wrangler.jsonc into d. Extra
    keyword arguments are more tables (thaw={...}, limits={...})."""
    d = Path(d)
    if fmt == "toml":
        lines = [f"name = {json.dumps(name)}"]
        if main is not None:
            lines.append(f"main = {json.dumps(main)}")
        lines += ['compatibility_date = "2024-03-18"',
                  'compatibility_flags = ["python_workers"]']
        if vars:
            lines.append("")
            lines.append("[vars]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in vars.items()]
        for table, values in tables.items():
            lines.append("")
            lines.append(f"[{table}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
        (d / "wrangler.toml").write_text("\n".join(lines) + "\n")
    elif fmt in ("json", "jsonc"):
        cfg = {"name": name}
        if main is not None:
            cfg["main"] = main
        cfg["compatibility_date"] = "2024-03-18"
        cfg["compatibility_flags"] = ["python_workers"]
        if vars:
            cfg["vars"] = vars
        cfg.update(tables)
        (d / f"wrangler.{fmt}").write_text(json.dumps(cfg, indent=2) + "\n")
    else:
        raise ValueError(fmt)


def write_worker(d, source, files=None, **cfg):
    """Write a worker project: config + src/entry.py (+ extra files, relative
    to d). `source` is dedented. Returns the path of the main .py file."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    write_config(d, **cfg)
    main = d / cfg.get("main", "src/entry.py")
    main.parent.mkdir(parents=True, exist_ok=True)
    main.write_text(textwrap.dedent(source))
    for rel, text in (files or {}).items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return main


def write_main(d, source, main="src/entry.py"):
    """Rewrite only the worker's main .py file (dedented)."""
    p = Path(d) / main
    p.write_text(textwrap.dedent(source))
    return p


# ---------------------------------------------------------------- process info

def proc_children(pid):
    """Direct children of pid, via /proc/PID/task/*/children."""
    out = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out.update(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def proc_descendants(pid):
    seen, todo = set(), [pid]
    while todo:
        for c in proc_children(todo.pop()):
            if c not in seen:
                seen.add(c)
                todo.append(c)
    return seen


def proc_stat(pid):
    """(state, ppid, starttime) of pid, or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[19])


def proc_comm(pid):
    """The process name (thaw-zygote, thaw-template, thaw-instance...)."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def proc_live(pid):
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def thaw_processes(thaw_pid, comm):
    """Live descendants of thaw_pid named comm."""
    return [p for p in proc_descendants(thaw_pid) if proc_comm(p) == comm and proc_live(p)]


def proc_identity(pid):
    st = proc_stat(pid)
    return (pid, st[2]) if st else None


def is_alive(ident):
    """ident is (pid, starttime); zombies and reused pids count as dead."""
    st = proc_stat(ident[0])
    return st is not None and st[0] not in ("Z", "X") and st[2] == ident[1]


# ---------------------------------------------------------------- HTTP helpers

class Resp:
    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        return f"<Resp {self.status} {self.reason!r} {self.body[:300]!r}>"


def read_response(f, method="GET"):
    """Parse one HTTP/1.1 response from a binary file object (raw sockets).
    Returns Resp with headers as a dict of lower-case name -> list of values."""
    line = f.readline()
    if not line:
        raise ConnectionError("connection closed before a status line")
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    body = b""
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        pass
    elif "chunked" in ",".join(headers.get("transfer-encoding", [])).lower():
        while True:
            size = int(f.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while f.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            body += f.read(size)
            f.readline()
    elif "content-length" in headers:
        n = int(headers["content-length"][0])
        body = f.read(n)
        if len(body) != n:
            raise ConnectionError(f"short body: {len(body)} of {n}")
    else:
        body = f.read()
    flat = {k: ", ".join(v) for k, v in headers.items()}
    return Resp(status, reason, flat, body)


def raw_request(port, data, method="GET", timeout=HTTP_TIMEOUT):
    """Send raw bytes on a new connection and parse one response. Send errors
    (the server may close early after an error response) are ignored."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        f = s.makefile("rb")
        return read_response(f, method)
    finally:
        s.close()


# Many `thaw dev` tests let the worker write marker files into the test's
# tmp dir (an out-of-band signal), which the sandbox rightly forbids: they
# run with --no-sandbox. `thaw serve` tests (servelib.py) and
# test_hostile.py run sandboxed; THAW_TEST_DEV_SANDBOX=1 runs the dev
# tests sandboxed too (those without marker files pass). A test that must
# prove something under the sandbox asks for it: Thaw(..., sandbox=True), or
# a module-level `SANDBOX = True` for the thaw_factory and serve fixtures
# (conftest.py); test_sockets*.py do.
DEV_SANDBOX = os.environ.get("THAW_TEST_DEV_SANDBOX") == "1"


class Thaw:
    """One running `thaw dev` process."""

    def __init__(self, workdir, logdir, args=(), cwd=None, pass_dir=True, sandbox=None):
        self.workdir = Path(workdir)
        self.logdir = Path(logdir)
        self.args = list(args)
        self.cwd = cwd
        self.pass_dir = pass_dir
        self.sandbox = DEV_SANDBOX if sandbox is None else sandbox
        self.proc = None
        self.port = None
        self.stdout_lines = []
        self.ready = threading.Event()
        self.stderr_path = None

    # -- lifecycle
    def spawn(self):
        if not THAW.exists():
            pytest.fail(f"{THAW} does not exist: run `make` first")
        self.port = free_port()
        n = len(list(self.logdir.glob("thaw-stderr*.log")))
        self.stderr_path = self.logdir / f"thaw-stderr{n}.log"
        cmd = [str(THAW), "dev"]
        if self.pass_dir:
            cmd.append(str(self.workdir))
        cmd += ["--port", str(self.port), "--ip", "127.0.0.1"] + self.args
        if not self.sandbox and "--no-sandbox" not in self.args:
            cmd.append("--no-sandbox")
        self.cmd = cmd
        self.ready.clear()
        self.stdout_lines = []
        errf = open(self.stderr_path, "wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errf,
            cwd=self.cwd, env=env, start_new_session=True)
        errf.close()
        self.pgid = self.proc.pid
        want = f"Ready on http://127.0.0.1:{self.port}"

        def pump(out=self.proc.stdout, lines=self.stdout_lines):
            for raw in iter(out.readline, b""):
                line = raw.decode("utf-8", "replace")
                lines.append(line)
                if want in line:
                    self.ready.set()
            out.close()
        threading.Thread(target=pump, daemon=True).start()

    def wait_ready_or_exit(self, timeout=READY_TIMEOUT):
        """True when Ready was printed, False when the process exited first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready.wait(0.05):
                return True
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the pump thread read the last lines
                return self.ready.is_set()
        pytest.fail(f"thaw did not print Ready within {timeout}s\ncmd: {self.cmd}\n"
                    f"stdout:\n{self.stdout()}\nstderr:\n{self.log()}")

    def start(self):
        for attempt in range(3):
            self.spawn()
            if self.wait_ready_or_exit():
                return self
            if "in use" not in self.log().lower() or attempt == 2:
                pytest.fail(f"thaw exited with {self.proc.returncode} before Ready\n"
                            f"cmd: {self.cmd}\nstdout:\n{self.stdout()}\n"
                            f"stderr:\n{self.log()}")
        return self

    def stop(self, sig=signal.SIGTERM):
        """Signal thaw, SIGKILL after 5 s; returns the exit code. Descendants
        still alive afterwards are killed by pid (cleanup only)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        tree = [i for i in map(proc_identity, proc_descendants(self.proc.pid)) if i]
        self.proc.send_signal(sig)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        for ident in tree:
            if is_alive(ident):
                try:
                    os.kill(ident[0], signal.SIGKILL)
                except OSError:
                    pass
        return self.proc.returncode

    # -- output
    def status(self):
        rc = self.proc.poll() if self.proc else None
        return "thaw is running" if rc is None else f"thaw EXITED with {rc}"

    def log(self):
        try:
            return self.stderr_path.read_text("utf-8", "replace")
        except (OSError, AttributeError):
            return ""

    def stdout(self):
        return "".join(self.stdout_lines)

    def output(self):
        return self.stdout() + self.log()

    def wait_log(self, *needles, timeout=5.0, any_=False):
        """Wait until every needle (any_: some needle) appears in thaw's
        log (its stderr); returns the log either way."""
        deadline = time.monotonic() + timeout
        test = any if any_ else all
        while True:
            text = self.log()
            if test(n in text for n in needles) or time.monotonic() > deadline:
                return text
            time.sleep(0.05)

    # -- HTTP
    def conn(self, timeout=HTTP_TIMEOUT):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=HTTP_TIMEOUT):
        c = self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return Resp(r.status, r.reason, r.headers, r.read())
        finally:
            c.close()

    def get(self, path="/", **kw):
        return self.request("GET", path, **kw)

    def poll_until(self, pred, path="/", timeout=10.0, interval=0.1):
        """GET path until pred(resp) holds; returns the list of responses seen
        (the last one satisfies pred) or fails showing the last response."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                r = self.get(path, timeout=5)
            except (OSError, http.client.HTTPException) as e:
                r = e
            seen.append(r)
            if isinstance(r, Resp) and pred(r):
                return seen
            if time.monotonic() > deadline:
                pytest.fail(f"condition not met within {timeout}s; last: {r!r}\n"
                            f"{self.status()}\nlog:\n{self.log()[-3000:]}")
            time.sleep(interval)

    def concurrent_get(self, path, n, timeout=HTTP_TIMEOUT, stagger=0.0):
        """n GETs at once from n threads (the i-th delayed by i * stagger
        seconds); returns the responses."""
        results = [None] * n
        barrier = threading.Barrier(n)

        def one(i):
            barrier.wait()
            time.sleep(i * stagger)
            try:
                results[i] = self.get(path, timeout=timeout)
            except Exception as e:  # reported below
                results[i] = e
        ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout + 5)
        for r in results:
            assert isinstance(r, Resp), \
                f"request failed: {r!r}\n{self.status()}\nlog:\n{self.log()[-3000:]}"
        return results


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Polls cond() every 0.1 s until it holds; fails the test after timeout s.
def wait_for(cond, what, timeout=30):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
