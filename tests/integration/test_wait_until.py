"""ctx.wait_until(): work that continues after the response is sent. The
instance tells the supervisor while such work runs, so scale-to-zero and
recycling wait for it; it is stopped at the wall-clock limit."""
import time

WORKER = """
    import asyncio, os
    from workers import Response, WorkerEntrypoint


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            path = request.url.split("/", 3)[3]
            marker = self.env.MARKER_DIR + "/" + path

            async def later(seconds):
                await asyncio.sleep(seconds)
                with open(marker, "w") as f:
                    f.write(str(os.getpid()))

            if path.startswith("slow"):
                self.ctx.wait_until(later(1.5))
            elif path.startswith("forever"):
                self.ctx.wait_until(asyncio.sleep(3600))
            elif path.startswith("raises"):
                async def boom():
                    await asyncio.sleep(0.05)
                    raise ValueError("background failure")
                self.ctx.waitUntil(boom())
            return Response("sent")
"""


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def test_wait_until_outlives_the_response_and_the_idle_timeout(serve, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    # the instance would be reaped after 200 ms idle; the work takes 1.5 s
    t = serve(WORKER, vars={"MARKER_DIR": str(markers)},
              thaw={"idle_timeout_ms": 200, "prefork": 0})
    t0 = time.monotonic()
    r = t.get("/slow1")
    assert r.status == 200 and r.text == "sent"
    assert time.monotonic() - t0 < 1.4, "the response waited for the background work"
    assert wait_for(lambda: (markers / "slow1").exists(), 10), t.log()


def test_wait_until_work_survives_recycling(serve, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    # every instance is recycled after one request: the recycle waits for
    # the background work instead of cutting it off
    t = serve(WORKER, vars={"MARKER_DIR": str(markers)},
              thaw={"requests_per_instance": 1})
    for i in range(3):
        assert t.get(f"/slow{i}").status == 200
    for i in range(3):
        assert wait_for(lambda: (markers / f"slow{i}").exists(), 10), t.log()


def test_wait_until_is_stopped_at_the_wall_clock_limit(serve, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    t = serve(WORKER, vars={"MARKER_DIR": str(markers)},
              thaw={"request_timeout_ms": 1000, "idle_timeout_ms": 100})
    assert t.get("/forever").status == 200
    log = t.wait_log("ctx.wait_until() work ran past the wall-clock limit of 1000 ms",
                     timeout=10)
    assert "ctx.wait_until() work ran past the wall-clock limit of 1000 ms" in log, log
    # thaw goes on serving
    assert t.get("/again").status == 200


def test_wait_until_failure_is_logged(serve, tmp_path):
    t = serve(WORKER, vars={"MARKER_DIR": str(tmp_path)})
    assert t.get("/raises").status == 200
    log = t.wait_log("ValueError: background failure", timeout=10)
    assert "ValueError: background failure" in log, log
