"""Memory and deploy time of isolation = "shared" vs "per-worker"
(docs/security.md). Starts `thaw serve`, deploys N hello workers with
each setting, sends each one request, and reports the deploy wall time
and the proportional memory (PSS) of every process thaw runs.

    /usr/bin/python3 bench/isolation.py [N]
"""
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from servelib import ThawServe, project  # noqa: E402
from thawlib import proc_descendants  # noqa: E402


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(isolation, n):
    tmp = Path(tempfile.mkdtemp(prefix=f"thaw-iso-{isolation}-"))
    srv = ThawServe(tmp / "state", tmp, ("--isolation", isolation))
    srv.start()
    try:
        deploys = []
        for i in range(n):
            d = project(tmp, f"w{i}", f"w{i}")
            t0 = time.monotonic()
            srv.cli("deploy", str(d))
            deploys.append((time.monotonic() - t0) * 1000)
            assert srv.host_get(f"w{i}.localhost").text == f"w{i}"
        time.sleep(0.5)
        pids = [srv.proc.pid] + list(proc_descendants(srv.proc.pid))
        total = sum(pss_kb(p) for p in pids)
        return deploys, total, len(pids)
    finally:
        srv.stop()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    for iso in ("shared", "per-worker"):
        deploys, total, procs = run(iso, n)
        first, rest = deploys[0], sorted(deploys[1:])
        print(f"{iso:10s}: {n} workers, {procs} processes, PSS {total / 1024:.1f} MB "
              f"({total / 1024 / n:.1f} MB/worker); deploy: first {first:.0f} ms, "
              f"median of the rest {rest[len(rest) // 2]:.0f} ms")


if __name__ == "__main__":
    main()
