"""A real PostgreSQL for the cluster tests: initdb and pg_ctl from Debian's
postgresql package, run as the `postgres` user (the server refuses root),
on its unix socket and 127.0.0.1. Missing PostgreSQL fails the test (run
scripts/install-deps): never a skip.

Its data directory and socket are in a directory of its own under /tmp,
owned by postgres, with a symlink TMP_PATH/pg to it: not under tmp_path
itself, because every pytest session that starts (other test runs on the
machine) makes /tmp/pytest-of-root 0700 again, and the server, as
postgres, would lose its way to its own files mid-test."""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from thawlib import free_port


def pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(p.split("/")[4]))
    if not found:
        pytest.fail("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl): "
                    "run scripts/install-deps")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("no `postgres` user (Debian's postgresql package makes it): "
                    "run scripts/install-deps")
    return Path(found[-1]).parent


class Postgres:
    def __init__(self, link):
        self.bin = pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="thaw-pg-", dir="/tmp"))
        Path(link).symlink_to(self.root)
        self.data = self.root / "data"
        self.sock = self.root / "sock"
        self.logfile = self.root / "postgres.log"
        self.port = free_port()
        self.sock.mkdir()
        pw = pwd.getpwnam("postgres")
        for d in (self.root, self.sock):
            os.chown(d, pw.pw_uid, pw.pw_gid)

    @property
    def url(self):
        return f"postgresql://thaw@/postgres?host={self.sock}&port={self.port}"

    @property
    def tcp_url(self):
        return f"postgresql://thaw@127.0.0.1:{self.port}/postgres"

    def _run(self, *cmd, check=True, timeout=60):
        r = subprocess.run(["runuser", "-u", "postgres", "--", *map(str, cmd)],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            pytest.fail(f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stdout}\n"
                        f"{r.stderr}\n{self.log()[-2000:]}")
        return r

    def log(self):
        try:
            return self.logfile.read_text("utf-8", "replace")
        except OSError:
            return ""

    def init(self):
        self._run(self.bin / "initdb", "-D", self.data, "-U", "thaw", "--auth=trust",
                  "--no-sync", "-E", "UTF8")
        return self

    def start(self):
        opts = f"-k {self.sock} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run(self.bin / "pg_ctl", "start", "-w", "-D", self.data, "-l", self.logfile,
                  "-o", opts)
        return self

    def stop(self, mode="fast"):
        self._run(self.bin / "pg_ctl", "stop", "-w", "-m", mode, "-D", self.data,
                  check=False)

    def sql(self, query):
        r = self._run(self.bin / "psql", "-h", self.sock, "-p", self.port, "-U", "thaw",
                      "-d", "postgres", "-Atc", query)
        return r.stdout.strip()


@pytest.fixture
def postgres(tmp_path):
    pg = Postgres(tmp_path / "pg").init().start()
    yield pg
    pg.stop("immediate")
    shutil.rmtree(pg.root, ignore_errors=True)


def wait_for(what, fn, timeout=30, interval=0.02):
    """Polls fn until it returns a true value; fails naming what after timeout."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = fn()
        except (OSError, ValueError) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {what} (last: {last!r})")
