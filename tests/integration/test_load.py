"""Load test: 64 keep-alive connections for 20 s against a hello worker.

Every response must be a 200 with the right body (no resets, no timeouts, no
5xx), and the supervisor's resident memory (VmRSS of the thaw pid) must not
grow by more than RSS_GROWTH_MB between the end of a 3 s warm-up and the end
of the run. The client is stdlib asyncio (no wrk), so the test needs nothing
beyond what scripts/install-deps installs; ~25 s in all.

Run: /usr/bin/python3 -m pytest -q tests/integration/test_load.py
"""
import asyncio
import time

CONNECTIONS = 64
DURATION = 20.0        # seconds of load, warm-up included
WARMUP = 3.0           # RSS baseline taken this long after the load starts
RSS_GROWTH_MB = 8.0    # allowed VmRSS growth of the supervisor, baseline to end
REQUEST_TIMEOUT = 10.0
MIN_REQUESTS = CONNECTIONS * int(DURATION)  # at least ~1 req/s per connection

HELLO = """
    from workers import Response, WorkerEntrypoint

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            return Response("Hello world!")
"""
BODY = b"Hello world!"


def vm_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


async def read_response(reader):
    """One HTTP/1.1 response: (status, headers lower-cased, body)."""
    line = await reader.readline()
    if not line:
        raise ConnectionError("connection closed before a status line")
    status = int(line.split(b" ", 2)[1])
    headers = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n"):
            break
        if not h:
            raise ConnectionError("connection closed in the response head")
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                break
            body += await reader.readexactly(size)
            await reader.readline()
    else:
        raise ConnectionError(f"response without a length: {status} {headers}")
    return status, headers, body


async def load(port, stop_at, stats):
    request = (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").encode()

    async def client():
        reader = writer = None
        while time.monotonic() < stop_at:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request)
                status, headers, body = await asyncio.wait_for(read_response(reader),
                                                               REQUEST_TIMEOUT)
                if status != 200 or body != BODY:
                    stats["errors"].append(f"{status} {body[:200]!r}")
                else:
                    stats["ok"] += 1
                if headers.get("connection", "").lower() == "close":
                    stats["closed"] += 1
                    writer.close()
                    reader = writer = None
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                    ValueError, IndexError) as e:
                stats["errors"].append(repr(e))
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(client() for _ in range(CONNECTIONS)))


def test_64_connections_for_20s_no_errors_bounded_supervisor_rss(serve):
    s = serve(HELLO)
    assert s.get("/").body == BODY
    pid = s.proc.pid
    stats = {"ok": 0, "closed": 0, "errors": []}
    samples = []  # (seconds into the run, VmRSS kB)

    async def main():
        t0 = time.monotonic()
        task = asyncio.ensure_future(load(s.port, t0 + DURATION, stats))
        while not task.done():
            await asyncio.wait([task], timeout=1.0)
            samples.append((time.monotonic() - t0, vm_rss_kb(pid)))
        await task
    asyncio.run(main())

    assert s.proc.poll() is None, f"thaw exited during the load\n{s.log()[-3000:]}"
    errors = stats["errors"]
    assert not errors, (f"{len(errors)} errors in {stats['ok'] + len(errors)} requests, "
                        f"first: {errors[:5]}\nlog:\n{s.log()[-3000:]}")
    assert stats["ok"] >= MIN_REQUESTS, f"only {stats['ok']} requests in {DURATION}s"
    assert stats["closed"] == 0, f"the server closed {stats['closed']} keep-alive connections"
    base = next(kb for t, kb in samples if t >= WARMUP)
    end = samples[-1][1]
    growth_mb = (end - base) / 1024
    print(f"\n{stats['ok']} requests ({stats['ok'] / DURATION:.0f}/s) on {CONNECTIONS} "
          f"connections; supervisor VmRSS {base / 1024:.1f} MB after {WARMUP:.0f} s, "
          f"{end / 1024:.1f} MB at the end, peak {max(kb for _, kb in samples) / 1024:.1f} MB")
    assert growth_mb < RSS_GROWTH_MB, \
        f"supervisor VmRSS grew {growth_mb:.1f} MB (bound {RSS_GROWTH_MB} MB): {samples}"
