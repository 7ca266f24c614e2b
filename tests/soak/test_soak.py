"""Soak (issue 15, item 8): `thaw serve` (sandbox on) with 50 workers for
SOAK_MINUTES (default 30) under mixed load: keep-alive GETs and POSTs to
well-behaved workers from several threads, a deploy every few seconds
(redeploys, rollbacks, a scratch worker deployed, called and deleted),
cron workers firing every minute, a hostile worker that crashes, loops
and eats memory, and restarts of thaw (SIGTERM and SIGKILL in turn).

Checked, and printed as a summary:
  - no 5xx and no failed connection for a well-behaved worker, and no
    failed deploy or rollback, outside the restarts' windows (from the
    signal until thaw is ready again);
  - flat supervisor: between the start and the end of each run of thaw
    (restart to restart), its fds and processes, measured idle, are not
    higher, and its RSS is within RSS_SLACK_KB;
  - every process of a stopped thaw is gone;
  - thaw stays up (outside restarts) and the crons fire.

Not in `make test`: `make soak` (SOAK_MINUTES=5 make soak for a short run).
Run: SOAK_MINUTES=5 /usr/bin/python3 -m pytest -q -s tests/soak"""
import http.client
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import churnlib as churn  # noqa: E402
import soak_workers as W  # noqa: E402
from servelib import ThawServe  # noqa: E402
from thawlib import is_alive, proc_comm, proc_identity  # noqa: E402

MINUTES = float(os.environ.get("SOAK_MINUTES", "30"))
GOOD = 45
CRONS = 3
LOAD_THREADS = 4
DEPLOY_EVERY = 3.0          # seconds between deploy actions
RSS_SLACK_KB = 3072
IDLE_TIMEOUT = "5s"         # instances go soon after the load pauses: idle is measurable
WARM = 1 / 3                # of each run of thaw: load before its baseline is taken
SAMPLE_EVERY = 10.0         # seconds between RSS samples under load (printed)


class Log:
    """Everything the threads saw, with times, classified at the end."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []      # (t0, t1, worker, status or error text)
        self.hostile = {}       # status or error -> count
        self.actions = []       # (t0, t1, what, ok, detail)
        self.windows = []       # (t0, t1): restarts
        self.segments = []      # (start idle usage, end idle usage)
        self.samples = []       # per run of thaw: RSS (MiB) every SAMPLE_EVERY s under load

    def add(self, lst, item):
        with self.lock:
            lst.append(item)

    def in_window(self, t0, t1):
        return any(t0 <= w1 and t1 >= w0 for w0, w1 in self.windows)


class Soak:
    def __init__(self, tmp):
        self.tmp = tmp
        self.root = tmp / "projects"
        self.srv = ThawServe(tmp / "state", tmp, ("--idle-timeout", IDLE_TIMEOUT))
        self.log = Log()
        self.stop = threading.Event()
        self.paused = threading.Event()     # set: load threads wait
        self.good = [f"good{i:02d}" for i in range(GOOD)]
        self.crons = [f"cron{i}" for i in range(CRONS)]
        self.versions = {}                  # worker -> versions deployed
        self.serial = 0

    # -- deploys
    def put(self, name, kind):
        self.serial += 1
        tag = f"t{self.serial}"
        cfg = {"triggers": {"crons": ["* * * * *"]}} if kind == "cron" else {}
        d = self.root / name
        churn.write_worker(d, W.source(kind, name, tag), name=name, **cfg)
        data, _ = churn.bundle(str(d))
        return self.srv.api("PUT", f"/v1/workers/{name}", body=data)

    def put_hostile(self):
        d = self.root / "hostile"
        churn.write_worker(d, W.HOSTILE, name="hostile", **W.HOSTILE_CONFIG)
        data, _ = churn.bundle(str(d))
        return self.srv.api("PUT", "/v1/workers/hostile", body=data)

    def setup(self):
        self.srv.start()
        for name in self.good:
            status, doc = self.put(name, "good")
            assert status == 200, (name, status, doc)
            self.versions[name] = 1
        for name in self.crons:
            status, doc = self.put(name, "cron")
            assert status == 200, (name, status, doc)
        status, doc = self.put_hostile()
        assert status == 200, doc

    def action(self):
        """One deploy action: a redeploy, a rollback or a scratch cycle."""
        r = random.random()
        t0 = time.monotonic()
        what = "deploy action"
        try:
            if r < 0.6:
                name = random.choice(self.good)
                what = f"redeploy {name}"
                status, doc = self.put(name, "good")
                if status == 200:
                    self.versions[name] += 1
            elif r < 0.8:
                name = random.choice([n for n in self.good if self.versions[n] > 1] or
                                     self.good)
                what = f"rollback {name}"
                status, doc = self.srv.api("POST", f"/v1/workers/{name}/rollback", body=b"")
                if status == 404:   # only one version: not a failure of thaw
                    status = 200
            else:
                what = "scratch deploy/request/delete"
                status, doc = self.put("scratch", "good")
                if status == 200:
                    got = self.srv.host_get("scratch.localhost")
                    status, doc = got.status, got.text
                if status == 200:
                    status, doc = self.srv.api("DELETE", "/v1/workers/scratch")
        except Exception as e:  # recorded; judged by its time
            status, doc = None, repr(e)
        self.log.add(self.log.actions, (t0, time.monotonic(), what, status == 200,
                                        f"{status} {doc}"[:300]))

    # -- threads
    def load(self, seed):
        rnd = random.Random(seed)
        conn, port = None, None
        while not self.stop.is_set():
            if self.paused.is_set():
                if conn:
                    conn.close()
                    conn = None
                time.sleep(0.1)
                continue
            name = rnd.choice(self.good + self.crons)
            post = rnd.random() < 0.2
            t0 = time.monotonic()
            try:
                if conn is None or port != self.srv.port:
                    port = self.srv.port
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
                body = b"x" * rnd.randint(0, 20000) if post else None
                conn.request("POST" if post else "GET", "/", body=body,
                             headers={"Host": f"{name}.localhost"})
                r = conn.getresponse()
                text = r.read().decode("utf-8", "replace")
                res = r.status
                if res == 200 and not text.startswith(name + " "):
                    res = f"200 with a wrong body {text[:80]!r}"
                elif res != 200:
                    res = f"{res} {text[:200]}"
            except Exception as e:  # judged by its time
                res = repr(e)
                if conn:
                    conn.close()
                conn = None
                time.sleep(0.05)    # thaw may be restarting: do not spin
            self.log.add(self.log.requests, (t0, time.monotonic(), name, res))

    def hostile(self):
        while not self.stop.is_set():
            if self.paused.is_set():
                time.sleep(0.1)
                continue
            path = random.choice(W.HOSTILE_PATHS)
            try:
                res = self.srv.host_get("hostile.localhost", path, timeout=20).status
            except Exception as e:  # counted
                res = type(e).__name__
            with self.log.lock:
                key = f"{path} -> {res}"
                self.log.hostile[key] = self.log.hostile.get(key, 0) + 1
            time.sleep(0.5)

    def deployer(self):
        while not self.stop.wait(DEPLOY_EVERY):
            if not self.paused.is_set():
                self.action()

    # -- restarts and measurements
    def idle_usage(self, timeout=30.0):
        """Pauses the load and waits (bounded) until thaw's fds and
        processes hold still for 2 s: instances have exited."""
        self.paused.set()
        pid = self.srv.proc.pid
        deadline = time.monotonic() + timeout
        last = churn.usage(pid)
        time.sleep(float(IDLE_TIMEOUT.rstrip("s")) + 1)
        while time.monotonic() < deadline:
            time.sleep(2.0)
            now = churn.usage(pid)
            if now.fds == last.fds and now.procs == last.procs:
                break
            last = now
        return churn.usage(pid)

    def wait_ready(self, timeout=180.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.srv.api("GET", "/readyz", timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        pytest.fail(f"thaw not ready {timeout} s after a restart\n{self.srv.log()[-3000:]}")

    def restart(self, sig, left):
        tree = [(i, proc_comm(i[0])) for i in
                map(proc_identity, churn.live_descendants(self.srv.proc.pid)) if i]
        t0 = time.monotonic()
        self.srv.proc.send_signal(sig)
        self.srv.proc.wait(60)
        deadline = time.monotonic() + 15
        while any(is_alive(i) for i, _ in tree) and time.monotonic() < deadline:
            time.sleep(0.2)
        left.extend((sig, i[0], comm) for i, comm in tree if is_alive(i))
        self.srv.start()
        self.wait_ready()
        self.log.windows.append((t0, time.monotonic() + 1.0))


def summarize(soak, crons_fired, left, minutes):
    log = soak.log
    bad, in_windows, by_status = [], 0, {}
    for t0, t1, name, res in log.requests:
        if res == 200:
            continue
        if log.in_window(t0, t1):
            in_windows += 1
            continue
        bad.append((round(t0, 1), name, res))
        key = str(res)[:60]
        by_status[key] = by_status.get(key, 0) + 1
    failed_actions = [a for a in log.actions if not a[3] and not log.in_window(a[0], a[1])]
    flat = []
    for n, (start, end) in enumerate(log.segments):
        ok = (end.fds <= start.fds and end.procs <= start.procs
              and end.rss_kb <= start.rss_kb + RSS_SLACK_KB)
        flat.append(ok)
        print(f"  run {n + 1} of thaw: idle after its warm-up {churn.fmt(start)}; at its end "
              f"{churn.fmt(end)} {'(flat)' if ok else '(GREW)'}")
        if n < len(log.samples):
            print("    RSS MiB under load, every %gs: %s" % (
                SAMPLE_EVERY, " ".join(f"{r:.1f}" for r in log.samples[n])))
    print(f"soak: {minutes:g} min, {len(log.requests)} requests to well-behaved workers, "
          f"{len(bad)} failed outside restarts, {in_windows} failed during restarts")
    for k, v in sorted(by_status.items()):
        print(f"  {v:6d} x {k}")
    print(f"  deploy actions: {len(log.actions)}, {len(failed_actions)} failed outside restarts")
    for a in failed_actions[:10]:
        print(f"    {a[2]}: {a[4]}")
    print(f"  restarts: {len(log.windows)}; processes left by a stopped thaw: {left or 'none'}")
    print(f"  cron events: {crons_fired}")
    print("  hostile worker: " + ", ".join(f"{k}: {v}" for k, v in sorted(log.hostile.items())))
    return bad, failed_actions, flat


def test_soak(tmp_path):
    soak = Soak(tmp_path)
    soak.setup()
    minutes = MINUTES
    restarts = max(1, round(minutes / 5))
    segment = minutes * 60 / (restarts + 1)
    threads = [threading.Thread(target=soak.load, args=(i,), daemon=True)
               for i in range(LOAD_THREADS)]
    threads += [threading.Thread(target=soak.hostile, daemon=True),
                threading.Thread(target=soak.deployer, daemon=True)]
    left = []
    try:
        for t in threads:
            t.start()
        for n in range(restarts + 1):
            # a third of the run under load (the allocator's arenas and
            # thaw's buffers reach their working size), then the idle
            # baseline of this run, then the rest under load
            samples = []
            soak.log.samples.append(samples)
            for part in (WARM, 1 - WARM):
                end_at = time.monotonic() + segment * part
                next_sample = time.monotonic()
                while time.monotonic() < end_at:
                    time.sleep(1.0)
                    assert soak.srv.proc.poll() is None, \
                        f"thaw exited with {soak.srv.proc.returncode}\n{soak.srv.log()[-3000:]}"
                    if time.monotonic() >= next_sample:
                        samples.append(churn.rss_kb(soak.srv.proc.pid) / 1024)
                        next_sample += SAMPLE_EVERY
                if part == WARM:
                    start = soak.idle_usage()
                    soak.paused.clear()
            end = soak.idle_usage()
            soak.log.segments.append((start, end))
            soak.paused.clear()     # the restart happens under load
            if n < restarts:
                soak.restart(signal.SIGTERM if n % 2 == 0 else signal.SIGKILL, left)
    finally:
        soak.stop.set()
        for t in threads:
            t.join(30)
        logs = "".join(p.read_text("utf-8", "replace") for p in tmp_path.glob("thaw-stderr*.log"))
        crons_fired = logs.count("SOAK-CRON")
        if soak.srv.proc.poll() is None:
            tree = [i for i in map(proc_identity, churn.live_descendants(soak.srv.proc.pid))
                    if i]
            soak.srv.stop()
            time.sleep(2)
            left.extend(("end", i[0], proc_comm(i[0])) for i in tree if is_alive(i))
    bad, failed_actions, flat = summarize(soak, crons_fired, left, minutes)
    problems = []
    if bad:
        problems.append(f"{len(bad)} requests to well-behaved workers failed outside "
                        f"restarts, e.g. {bad[:5]}")
    if failed_actions:
        problems.append(f"{len(failed_actions)} deploy actions failed outside restarts")
    if not all(flat):
        problems.append("the supervisor grew during a run (above)")
    if left:
        problems.append(f"processes outlived their thaw: {left}")
    if minutes >= 2 and crons_fired == 0:
        problems.append("no cron event fired")
    assert not problems, "soak: " + "; ".join(problems)
