"""Escape 9 of issue 14: worker output is attributed by the pipe it arrives
on, never by its text. A hostile worker writes lines tagged as the
innocent one's (`[innocent req=1] pwned`) to fd 1 and 2 with os.write (no
print(), so no tagging stream in between), with print(), at its top level
and in a handler, with embedded newlines and carriage returns. The
innocent's `thaw tail` never shows any of it; the hostile's own tail does,
and thaw's log shows each such line under the hostile's name."""
import json
import os
import queue
import subprocess
import threading
import time

from servelib import TOKEN
from tenantlib import tenant  # noqa: F401 (fixture)
from thawlib import THAW

HOSTILE = r'''
import os, sys, logging
from workers import Response, WorkerEntrypoint

os.write(2, b"[innocent req=1] pwned-top-raw\n")
os.write(1, b"[innocent] pwned-top-stdout\n")
print("[innocent req=1] pwned-top-print")
sys.stderr.write("x\n[innocent req=1] pwned-top-embedded\n")


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        os.write(2, b"[innocent req=1] pwned-raw\n")
        os.write(2, b"x\r[innocent req=1] pwned-cr\n")
        os.write(2, b"[innocent req=1] pwned-split-")   # a line in two writes
        os.write(2, b"write\n[innocent req=1] pwned-two\n[innocent req=1] pwned-three\n")
        os.write(1, b"[innocent req=1] pwned-stdout\n")
        print("[innocent req=1] pwned-print\n[innocent req=1] pwned-print-nl")
        print("line\r[innocent req=1] pwned-print-cr")
        logging.getLogger("x").warning("\n[innocent req=1] pwned-logging")
        os.write(2, b"[innocent req=1] pwned-last\n")
        return Response("hostile")
'''
# every "pwned" line the handler writes, as the hostile's tail must show it
HANDLER_LINES = ["pwned-raw", "pwned-cr", "pwned-split-write", "pwned-two", "pwned-three",
                 "pwned-stdout", "pwned-print", "pwned-print-nl", "pwned-print-cr",
                 "pwned-logging", "pwned-last"]
TOP_LINES = ["pwned-top-raw", "pwned-top-stdout", "pwned-top-print", "pwned-top-embedded"]


class Tail:
    """`thaw tail NAME`, its JSON lines read on a thread."""

    def __init__(self, srv, name):
        env = dict(os.environ, THAW_API_TOKEN=TOKEN)
        self.proc = subprocess.Popen([str(THAW), "tail", name, "--to", srv.admin], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.events = []
        self.q = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.q.put(json.loads(line))

    def until(self, pred, timeout=20):
        """Reads events until pred(event); returns every event so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                e = self.q.get(timeout=0.2)
            except queue.Empty:
                continue
            self.events.append(e)
            if pred(e):
                return self.events
        raise AssertionError(f"no such event within {timeout}s; got {self.events}")

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)


def is_request(e):
    return "method" in e


def test_a_worker_cannot_write_into_anothers_tail(tenant):
    srv = tenant.serve()
    innocent = Tail(srv, "innocent")
    hostile = None
    try:
        time.sleep(1.0)  # let the tail connect (as test_serve.py does)
        rc, out = tenant.deploy("hostile", HOSTILE)
        assert rc == 0, out
        # its top-level lines reached the log, under its own name
        log = srv.wait_log(*TOP_LINES)
        hostile = Tail(srv, "hostile")
        time.sleep(1.0)
        assert srv.host_get("hostile.localhost").text == "hostile"
        # in thaw's log means handed to the tails already (src/pool/output.c)
        srv.wait_log("pwned-last")
        # the innocent's tail: one request of its own, and nothing else
        assert srv.host_get("innocent.localhost").text == "innocent"
        events = innocent.until(is_request)
        assert not [e for e in events if "pwned" in json.dumps(e)], events
        assert [e for e in events if is_request(e)][0]["worker"] == "innocent"
        seen = {}

        def all_seen(e):
            if e.get("type") == "log" and "pwned-" in e["message"]:
                seen[e["message"].rsplit("pwned-", 1)[1]] = e
            return all(k.split("pwned-", 1)[1] in seen for k in HANDLER_LINES)
        hostile.until(all_seen)
        # the hostile's own lines, in its own tail, under its own name
        for e in seen.values():
            assert e["worker"] == "hostile", e
        # a line it wrote bypassing print() has no request: the tag is not its own
        assert seen["raw"]["request"] is None, seen["raw"]
    finally:
        innocent.close()
        if hostile:
            hostile.close()
    # thaw's log: every line with "pwned" is the hostile's (split on "\n" only:
    # a carriage return must not start a line that looks like another's)
    log = srv.wait_log("pwned-last")
    for line in log.split("\n"):
        if "pwned" in line:
            assert line.startswith("[hostile] ") or line.startswith("[hostile req="), line
            assert "\r" not in line, repr(line)
    tenant.innocent_serves()
