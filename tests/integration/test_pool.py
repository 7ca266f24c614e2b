"""The instance pool and its limits (issue 4.1, 4.2): concurrency on one
instance, a bounded queue with 503 + Retry-After, scale to zero, CPU,
memory and wall-clock limits, and the same knobs in the config file."""
import time

from thawlib import proc_comm, proc_descendants, proc_live, thaw_processes

WORKER = '''
import asyncio, os, time
from urllib.parse import urlparse
from workers import WorkerEntrypoint, Response

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        path = urlparse(request.url).path
        if path == "/async":
            await asyncio.sleep(0.3)
        elif path == "/block":
            time.sleep(1.0)
        elif path == "/spin":
            while True:
                pass
        elif path == "/eat":
            hog = b"x" * (300 << 20)   # touched: private memory
            await asyncio.sleep(5)
            return Response(str(len(hog)))
        elif path == "/hang":
            await asyncio.sleep(30)
        elif path == "/burn":
            end = time.process_time() + 0.15
            while time.process_time() < end:
                pass
        return Response(str(os.getpid()))
'''


def _instances(srv):
    return thaw_processes(srv.proc.pid, "thaw-instance")


def test_one_instance_serves_many_async_requests_at_once(serve):
    srv = serve(WORKER)
    assert srv.get("/").status == 200   # a warm instance exists
    rs = srv.concurrent_get("/async", 12)
    pids = {r.text for r in rs}
    assert all(r.status == 200 for r in rs)
    # 12 overlapping requests that only await are packed onto the warm
    # instance (its loop is free: it waits in epoll), not one each; the
    # spare, or one more on a slow machine, may take a few
    assert len(pids) <= 3, pids


def test_cpu_bound_requests_spread_over_instances(serve):
    # a request sent to an instance still busy running handlers waits
    # behind them: with a core free, the spare takes it instead (as uvicorn
    # spreads over its processes); before, all four queued on one loop
    srv = serve(WORKER, args=("--max-instances", "2"))
    assert srv.get("/").status == 200   # warm instance, and a spare forked
    time.sleep(0.5)
    rs = srv.concurrent_get("/burn", 4)
    assert all(r.status == 200 for r in rs), rs
    assert len({r.text for r in rs}) == 2, [r.text for r in rs]


def _pids_under_load(srv, path, clients, seconds):
    """GET path from `clients` keep-alive connections at once for `seconds`;
    the answers (pids) of the last half, in order."""
    import threading
    out, stop, lock = [], time.monotonic() + seconds, threading.Lock()
    half = time.monotonic() + seconds / 2

    def client():
        c = srv.conn()
        while time.monotonic() < stop:
            c.request("GET", path)
            r = c.getresponse()
            body = r.read().decode()
            assert r.status == 200, body
            if time.monotonic() > half:
                with lock:
                    out.append(body)
        c.close()
    ts = [threading.Thread(target=client) for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def test_cheap_requests_pack_onto_one_instance(serve):
    # requests that cost an instance little CPU (the pool samples it while
    # they run) go to the instance already busy with others as long as it
    # keeps up: waking a second instance for them costs more CPU than they
    # do (docs/performance.md). Before, every request that found the warm
    # instance busy woke the other one: 35-50% went there in this test.
    from thawlib import free_port
    admin = free_port()
    srv = serve(WORKER, args=("--max-instances", "2", "--admin", f"127.0.0.1:{admin}"))
    assert srv.get("/").status == 200   # warm instance, and a spare forked
    pids = _pids_under_load(srv, "/", 6, 3.0)
    assert len(pids) > 100, len(pids)
    # how many are packed depends on how busy the machine is (the busy
    # instance spills after 2 ms without answering: 20-80% were packed in
    # runs on a loaded machine, so no share is asserted); /metrics counts
    # those packed onto a busy instance, and the old pool packed none
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5) as r:
        text = r.read().decode()
    packed = [int(x.split()[-1]) for x in text.splitlines()
              if x.startswith("thaw_routing_total{") and 'kind="packed"' in x]
    assert packed and packed[0] > 0, (packed, len(pids))


def test_full_pool_and_queue_give_503_with_retry_after(serve):
    srv = serve(WORKER, args=("--max-instances", "1", "--max-queue", "0", "--prefork", "0"))
    results = {}

    import threading
    t = threading.Thread(target=lambda: results.setdefault("slow", srv.get("/block")))
    t.start()
    time.sleep(0.3)                      # the only instance is now blocked
    r = srv.get("/")
    t.join()
    assert r.status == 503, r
    assert r.header("retry-after"), r.headers
    assert "busy" in r.text and "max_instances" in r.text, r.text
    assert results["slow"].status == 200
    assert srv.get("/").status == 200    # and the next one is served


def test_queued_request_times_out_with_503(serve):
    srv = serve(WORKER, args=("--max-instances", "1", "--max-queue", "4", "--prefork", "0",
                              "--queue-timeout", "200ms"))
    import threading
    t = threading.Thread(target=lambda: srv.get("/block"))
    t.start()
    time.sleep(0.3)
    r = srv.get("/")
    t.join()
    assert r.status == 503, r
    assert "queue_timeout_ms" in r.text and r.header("retry-after")


def test_queued_request_is_served_when_an_instance_frees_up(serve):
    srv = serve(WORKER, args=("--max-instances", "1", "--prefork", "0"))
    import threading
    t = threading.Thread(target=lambda: srv.get("/block"))
    t.start()
    time.sleep(0.3)
    r = srv.get("/")                      # waits behind /block, then runs
    t.join()
    assert r.status == 200, r


def test_idle_instances_exit_and_the_template_stays(serve):
    srv = serve(WORKER, args=("--idle-timeout", "300ms"))
    first = srv.get("/").text
    assert _instances(srv), "no instance while serving"
    deadline = time.monotonic() + 5
    while _instances(srv) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _instances(srv), "idle instances did not exit (scale to zero)"
    tree = {proc_comm(p) for p in proc_descendants(srv.proc.pid) if proc_live(p)}
    assert "thaw-template" in tree, tree
    r = srv.get("/")                      # a cold start from the template
    assert r.status == 200 and r.text != first


def test_cpu_limit_fails_request_with_503_and_replaces_instance(serve):
    srv = serve(WORKER, args=("--cpu-ms", "300"))
    r = srv.get("/spin", timeout=20)
    assert r.status == 503, r
    assert "CPU time limit" in r.text and "cpu_ms" in r.text, r.text
    assert "CPU time limit" in srv.log()
    assert srv.get("/").status == 200


def test_memory_limit_kills_instance_with_503(serve):
    srv = serve(WORKER, args=("--memory", "64"))
    r = srv.get("/eat", timeout=20)
    assert r.status == 503, r
    assert "memory limit of 64 MB" in r.text, r.text
    assert "memory limit" in srv.log()
    assert srv.get("/").status == 200


def test_wall_clock_limit_gives_504_and_the_instance_lives_on(serve):
    # long enough for a cold first request on a loaded machine; /hang never ends
    # one instance and no spare: with a spare, "/" after the 504 may go to
    # the spare while the cancel is still on its way, which says nothing
    # about whether the first instance lived
    srv = serve(WORKER, args=("--request-timeout", "3s", "--max-instances", "1",
                              "--prefork", "0"))
    pid = srv.get("/").text
    r = srv.get("/hang", timeout=20)
    assert r.status == 504, r
    assert "request_timeout_ms" in r.text
    assert srv.get("/").text == pid       # the request was cancelled, not the instance
    assert proc_live(int(pid))


def test_limits_from_the_config_file(serve):
    srv = serve(WORKER, thaw={"max_instances": 1, "max_queue": 0, "prefork": 0},
                limits={"cpu_ms": 300})
    r = srv.get("/spin", timeout=20)
    assert r.status == 503 and "CPU time limit of 300 ms" in r.text, r


def test_unknown_limit_key_is_a_config_error(serve, workdir, thaw_factory):
    from thawlib import write_worker
    write_worker(workdir, WORKER, thaw={"max_instance": 1})
    srv = thaw_factory(workdir, start=False)
    srv.spawn()
    code = srv.proc.wait(timeout=15)
    assert code != 0
    assert "max_instance" in srv.log() and "unknown key" in srv.log()


def test_bad_flag_value_is_refused(workdir, thaw_factory):
    from thawlib import write_worker
    write_worker(workdir, WORKER)
    srv = thaw_factory(workdir, "--cpu-ms", "lots", start=False)
    srv.spawn()
    assert srv.proc.wait(timeout=15) == 2
    assert "--cpu-ms" in srv.log()
