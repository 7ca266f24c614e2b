"""`workers.connect()`: black-box, through HTTP requests to a worker that
opens TCP sockets to servers this test starts on loopback (the cases of
workerd's and the Node polyfill's sockets tests that apply to Python).
Loopback is refused by the egress policy unless the config allows it."""
import hashlib
from urllib.parse import urlencode

import pytest

import socketservers as ss
from thawlib import Thaw, write_worker

# Sandboxed whatever THAW_TEST_DEV_SANDBOX says (conftest.py, thawlib.Thaw):
# sockets must work under seccomp, Landlock and an empty network namespace
SANDBOX = True

WORKER = r'''
import asyncio, hashlib, json
from urllib.parse import parse_qsl, urlsplit
from workers import Response, WorkerEntrypoint, connect, SocketError
from workers.sockets import connect as connect2


def pattern(n):
    block = hashlib.sha256(b"thaw-sockets").digest() * 2048
    reps, rest = divmod(n, len(block))
    return block * reps + block[:rest]


async def outcome(aw):
    try:
        if callable(aw):
            aw = aw()
        return {"ok": await aw}
    except Exception as e:
        return {"error": type(e).__name__, "message": str(e)}


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        q = dict(parse_qsl(urlsplit(request.url).query))
        try:
            out = await getattr(self, "case_" + q.pop("case"))(**q)
        except Exception as e:
            out = {"raised": type(e).__name__, "message": str(e)}
        return Response(json.dumps(out), headers={"content-type": "application/json"})

    async def case_echo(self, port, form="str"):
        addr = f"127.0.0.1:{port}" if form == "str" else {"hostname": "127.0.0.1", "port": int(port)}
        s = connect(addr)
        assert connect2 is connect
        info = await s.opened
        await s.writable.write(b"hello ")
        await s.writable.write("world")
        got = b""
        while len(got) < 11:
            got += await s.readable.read(100)
        await s.close()
        await s.closed
        return {"info": dict(info), "got": got.decode(), "secure": s.secure_transport,
                "upgraded": s.upgraded}

    async def case_bad(self, what):
        args = {"noport": ("127.0.0.1",), "port0": ("127.0.0.1:0",),
                "bigport": ("127.0.0.1:70000",), "strport": ("127.0.0.1:http",),
                "dictport": ({"hostname": "a", "port": "x"},), "type": (42,),
                "mode": ("127.0.0.1:1",)}[what]
        kw = {"secure_transport": "tls"} if what == "mode" else {}
        connect(*args, **kw)
        return {"no": "error"}

    async def case_refused(self, port):
        s = connect(f"127.0.0.1:{port}")
        return {"opened": await outcome(s.opened), "closed": await outcome(s.closed)}

    async def case_policy(self, port):
        s = connect(f"127.0.0.1:{port}")
        return {"opened": await outcome(s.opened)}

    async def case_write_after_close(self, port):
        s = connect(f"127.0.0.1:{port}")
        await s.opened
        await s.writable.close()
        r = await outcome(lambda: s.writable.write(b"x"))
        # the readable side still works: the echo server ends too
        rest = await s.readable.read()
        await s.close()
        return {"write": r, "rest": rest.decode()}

    async def case_write_after_socket_close(self, port):
        s = connect(f"127.0.0.1:{port}")
        await s.opened
        await s.close()
        return {"write": await outcome(lambda: s.writable.write(b"x"))}

    async def case_starttls_rules(self, port):
        plain = connect(f"127.0.0.1:{port}")
        r1 = await outcome(lambda: asyncio.sleep(0, plain.start_tls()))
        await plain.close()
        st = connect(f"127.0.0.1:{port}", secure_transport="starttls")
        tls = st.start_tls()
        r2 = await outcome(lambda: asyncio.sleep(0, st.start_tls()))
        r3 = await outcome(lambda: st.writable.write(b"x"))
        tls.close()
        return {"off": r1, "twice": r2, "old_write": r3, "mode": st.secure_transport,
                "new_mode": tls.secure_transport, "upgraded": [st.upgraded, tls.upgraded]}

    async def case_flush_on_close(self, port, n):
        s = connect(f"127.0.0.1:{port}")
        data = pattern(int(n))
        s.writable.write(data)           # not awaited: queued
        await s.close()                  # sends what is queued, then closes
        return {"sha": hashlib.sha256(data).hexdigest()}

    async def case_half_open(self, port, allow):
        s = connect(f"127.0.0.1:{port}", allow_half_open=(allow == "1"))
        first = await s.readable.read()
        end = await s.readable.read()    # the peer's FIN
        await asyncio.sleep(0.2)
        w = await outcome(lambda: s.writable.write(b"still here"))
        await s.writable.close() if allow == "1" else None
        await outcome(s.closed)
        return {"first": first.decode(), "end": end.decode(), "write": w}

    async def case_read_to_end(self, port, n):
        s = connect(f"127.0.0.1:{port}")
        h = hashlib.sha256()
        total = 0
        async for chunk in s.readable:
            h.update(chunk)
            total += len(chunk)
        again = await s.readable.read()
        await s.close()
        return {"n": total, "sha": h.hexdigest(), "again": again.decode()}

    async def case_big_up(self, port, n):
        s = connect(f"127.0.0.1:{port}")
        data = pattern(int(n))
        view = memoryview(data)
        for i in range(0, len(data), 1 << 20):
            await s.writable.write(view[i:i + (1 << 20)])
        await s.writable.close()
        await s.closed
        return {"sha": hashlib.sha256(data).hexdigest()}

    async def case_big_echo(self, port, n):
        s = connect(f"127.0.0.1:{port}")
        data = pattern(int(n))

        async def send():
            view = memoryview(data)
            for i in range(0, len(data), 1 << 20):
                await s.writable.write(view[i:i + (1 << 20)])
            await s.writable.close()

        async def receive():
            h = hashlib.sha256()
            total = 0
            async for chunk in s.readable:
                h.update(chunk)
                total += len(chunk)
            return total, h.hexdigest()
        _, (total, sha) = await asyncio.gather(send(), receive())
        await s.close()
        return {"n": total, "sha": sha, "want": hashlib.sha256(data).hexdigest()}

    async def case_tls(self, port, host="localhost"):
        s = connect(f"{host}:{port}", secure_transport="on")
        o = await outcome(s.opened)
        if "error" in o:
            return {"opened": o}
        await s.writable.write(b"over tls\n")
        got = await s.readable.read()
        await s.close()
        return {"got": got.decode(), "mode": s.secure_transport}

    async def case_starttls(self, port):
        s = connect({"hostname": "localhost", "port": int(port)}, secure_transport="starttls")
        lines = [(await s.readable.read()).decode()]
        await s.writable.write(b"HELLO\r\n")
        lines.append((await s.readable.read()).decode())
        await s.writable.write(b"STARTTLS\r\n")
        lines.append((await s.readable.read()).decode())
        tls = s.start_tls()
        await tls.opened
        await tls.writable.write(b"ping\r\n")
        lines.append((await tls.readable.read()).decode())
        old = await outcome(lambda: s.readable.read())
        await tls.close()
        return {"lines": lines, "old_read": old, "upgraded": tls.upgraded,
                "mode": tls.secure_transport}

    async def case_limit(self, port):
        socks = [connect(f"127.0.0.1:{port}") for _ in range(3)]
        results = [await outcome(s.opened) for s in socks]
        for s in socks:
            await s.close()
        again = connect(f"127.0.0.1:{port}")
        after = await outcome(again.opened)
        await again.close()
        return {"results": [("ok" if "ok" in r else r["message"]) for r in results],
                "after_close": "ok" in after}

    async def case_stdlib_limit(self, port):
        import socket
        # made but not yet connected sockets count too; connecting one does
        # not count it twice
        a, b = socket.socket(), socket.socket(socket.AF_INET6)
        try:
            socket.socket()
            third = "made"
        except PermissionError as e:
            third = str(e)
        a.connect(("127.0.0.1", int(port)))
        a.sendall(b"x")
        echoed = a.recv(1).decode()
        b.close()
        c = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
        c.close()
        a.close()
        return {"third": third, "echoed": echoed, "after_close": True}
'''

ALLOW = {"egress": {"allow": ["127.0.0.0/8"], "max_connections": 2}}


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    return ss.make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def worker(tmp_path_factory, tls_files):
    ca, _, _ = tls_files
    d = tmp_path_factory.mktemp("sockets")
    cfg = {"egress": dict(ALLOW["egress"], ca_file=str(ca))}
    write_worker(d / "w", WORKER, thaw=cfg)
    t = Thaw(d / "w", d, sandbox=SANDBOX)
    t.start()
    yield t
    t.stop()


def call(t, **q):
    r = t.get("/?" + urlencode(q), timeout=120)
    assert r.status == 200, (r.status, r.text, t.log()[-3000:])
    return r.json()


@pytest.fixture
def server():
    made = []

    def make(handler, tls=None, host="127.0.0.1"):
        s = ss.Server(handler, tls, host)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def closed_port():
    s = ss.socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_echo_both_address_forms(worker, server):
    srv = server(ss.echo)
    for form in ("str", "dict"):
        out = call(worker, case="echo", port=srv.port, form=form)
        assert out["got"] == "hello world"
        assert out["info"]["remoteAddress"] == f"127.0.0.1:{srv.port}"
        assert out["info"]["localAddress"].startswith("127.0.0.1:")
        assert out["secure"] == "off" and out["upgraded"] is False


@pytest.mark.parametrize("what,needle", [
    ("noport", "must be \"host:port\""),
    ("port0", "port 0 is out of range"),
    ("bigport", "port 70000 is out of range"),
    ("strport", "must be a number from 1 to 65535"),
    ("dictport", "must be a number from 1 to 65535"),
    ("type", "address must be \"host:port\" or a dict"),
    ("mode", "secure_transport must be \"off\", \"on\" or \"starttls\""),
])
def test_bad_address_is_a_type_error_at_call_time(worker, what, needle):
    out = call(worker, case="bad", what=what)
    assert out["raised"] == "TypeError", out
    assert needle in out["message"]


def test_refused_port_fails_opened_and_closed(worker):
    out = call(worker, case="refused", port=closed_port())
    for key in ("opened", "closed"):
        assert out[key]["error"] == "SocketError", out
        assert out[key]["message"].startswith("SocketError: ")
        assert "Connection refused" in out[key]["message"]


def test_write_after_writable_close_fails(worker, server):
    srv = server(ss.echo)
    out = call(worker, case="write_after_close", port=srv.port)
    assert out["write"]["error"] == "TypeError"
    assert "writable side is closed" in out["write"]["message"]
    assert out["rest"] == ""


def test_write_after_socket_close_fails(worker, server):
    srv = server(ss.echo)
    out = call(worker, case="write_after_socket_close", port=srv.port)
    assert out["write"]["error"] == "TypeError"


def test_start_tls_rules(worker, server):
    srv = server(ss.echo)
    out = call(worker, case="starttls_rules", port=srv.port)
    assert out["off"]["error"] == "TypeError"
    assert "secure_transport=\"starttls\"" in out["off"]["message"]
    assert out["twice"]["error"] == "TypeError"
    assert "only once" in out["twice"]["message"]
    assert out["old_write"]["error"] == "TypeError"
    assert "upgraded with start_tls()" in out["old_write"]["message"]
    assert out["mode"] == "starttls" and out["new_mode"] == "on"
    assert out["upgraded"] == [False, True]


def test_close_flushes_pending_writes(worker, server):
    srv = server(ss.sink)
    n = 8 << 20
    out = call(worker, case="flush_on_close", port=srv.port, n=n)
    ev = srv.wait_for(lambda e: e[0] == "sink")
    assert ev == ("sink", n, out["sha"])


def test_half_open_off_closes_the_writable_side(worker, server):
    srv = server(ss.half_closer)
    out = call(worker, case="half_open", port=srv.port, allow="0")
    assert out["first"] == "bye" and out["end"] == ""
    assert out["write"]["error"] == "TypeError", out
    assert srv.wait_for(lambda e: e[0] == "after-fin") == ("after-fin", b"")


def test_half_open_on_keeps_the_writable_side(worker, server):
    srv = server(ss.half_closer)
    out = call(worker, case="half_open", port=srv.port, allow="1")
    assert out["first"] == "bye" and out["end"] == ""
    assert "ok" in out["write"], out
    assert srv.wait_for(lambda e: e[0] == "after-fin") == ("after-fin", b"still here")


def test_reading_after_the_peer_closed_ends_the_stream(worker, server):
    n = 300000
    srv = server(ss.source(n))
    out = call(worker, case="read_to_end", port=srv.port, n=n)
    assert out == {"n": n, "sha": hashlib.sha256(ss.pattern(n)).hexdigest(), "again": ""}


def test_64_mib_down_intact(worker, server):
    n = 64 << 20
    srv = server(ss.source(n))
    out = call(worker, case="read_to_end", port=srv.port, n=n)
    assert out["n"] == n and out["sha"] == hashlib.sha256(ss.pattern(n)).hexdigest()


def test_64_mib_up_intact(worker, server):
    n = 64 << 20
    srv = server(ss.sink)
    out = call(worker, case="big_up", port=srv.port, n=n)
    assert srv.wait_for(lambda e: e[0] == "sink") == ("sink", n, out["sha"])


def test_64_mib_echo_both_directions_at_once(worker, server):
    n = 64 << 20
    srv = server(ss.echo)
    out = call(worker, case="big_echo", port=srv.port, n=n)
    assert out["n"] == n and out["sha"] == out["want"]


def test_tls_with_a_ca_the_config_names(worker, server, tls_files):
    _, cert, key = tls_files
    srv = server(ss.echo, tls=ss.server_context(cert, key))
    out = call(worker, case="tls", port=srv.port)
    assert out == {"got": "over tls\n", "mode": "on"}


def test_tls_checks_the_hostname(worker, server, tls_files):
    _, cert, key = tls_files
    srv = server(ss.echo, tls=ss.server_context(cert, key), host="127.0.0.2")
    # the certificate names localhost and 127.0.0.1, not 127.0.0.2
    out = call(worker, case="tls", port=srv.port, host="127.0.0.2")
    assert out["opened"]["error"] == "SocketError"
    assert "certificate verify failed" in out["opened"]["message"]


def test_starttls_handshake(worker, server, tls_files):
    _, cert, key = tls_files
    srv = server(ss.starttls_server(ss.server_context(cert, key)))
    out = call(worker, case="starttls", port=srv.port)
    assert out["lines"] == ["220 thaw-test ready\r\n", "250 hello\r\n", "220 go ahead\r\n",
                            "pong\r\n"]
    assert out["old_read"]["error"] == "TypeError"
    assert out["upgraded"] is True and out["mode"] == "on"
    assert srv.wait_for(lambda e: e[0] == "tls") == ("tls", b"ping")


def test_connections_per_instance_are_limited(worker, server):
    srv = server(ss.echo)
    out = call(worker, case="limit", port=srv.port)
    assert out["results"][:2] == ["ok", "ok"]
    assert "SocketError: " in out["results"][2]
    assert "thaw.egress.max_connections (2)" in out["results"][2]
    assert out["after_close"] is True


def test_stdlib_sockets_count_against_the_limit(worker, server):
    srv = server(ss.echo)
    out = call(worker, case="stdlib_limit", port=srv.port)
    assert "thaw.egress.max_connections (2)" in out["third"], out
    assert out["echoed"] == "x" and out["after_close"] is True


# ---------------------------------------------------------------- policy

POLICY_WORKER = r'''
from urllib.parse import parse_qsl, urlsplit
from workers import Response, WorkerEntrypoint, connect


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        q = dict(parse_qsl(urlsplit(request.url).query))
        s = connect(q["addr"])
        try:
            await s.opened
        except Exception as e:
            return Response(f"{type(e).__name__}|{e}")
        await s.close()
        return Response("opened")
'''


def test_loopback_refused_without_allow(serve, server):
    srv = server(ss.echo)
    t = serve(POLICY_WORKER)
    r = t.get(f"/?addr=127.0.0.1:{srv.port}")
    cls, msg = r.text.split("|", 1)
    assert cls == "SocketError"
    assert msg.startswith("SocketError: thaw egress policy refused the connection to "
                          f"127.0.0.1:{srv.port}")
    assert "127.0.0.0/8" in msg and "loopback" in msg and "wrangler.toml" in msg


def test_localhost_name_is_checked_after_dns(serve, server):
    srv = server(ss.echo)
    t = serve(POLICY_WORKER)
    r = t.get(f"/?addr=localhost:{srv.port}")
    assert r.text.startswith("SocketError|SocketError: thaw egress policy refused")


def test_port_25_refused_unless_allowed(serve, tmp_path):
    t = serve(POLICY_WORKER, thaw={"egress": {"allow": ["127.0.0.0/8"]}})
    r = t.get("/?addr=127.0.0.1:25")
    assert "port 25 is closed on every address" in r.text
    assert "allow_ports" in r.text


def test_port_25_opened_by_allow_ports(serve):
    t = serve(POLICY_WORKER, thaw={"egress": {"allow": ["127.0.0.0/8"], "allow_ports": [25]}})
    r = t.get("/?addr=127.0.0.1:25")
    # nothing listens there: the policy let it through to a refused connect
    assert "Connection refused" in r.text or r.text == "opened"


@pytest.mark.parametrize("egress,needle", [
    ({"allow_ports": ["smtp"]}, "`thaw.egress.allow_ports` item 1 is not a port number"),
    ({"allow_ports": [0]}, "`thaw.egress.allow_ports` item 1 is not a port number"),
    ({"allow_ports": 25}, "`thaw.egress.allow_ports` must be a list"),
    ({"max_connections": 0}, "`thaw.egress.max_connections` must be a whole number"),
])
def test_bad_socket_egress_config_is_an_error(serve, egress, needle):
    srv = serve(POLICY_WORKER, thaw={"egress": egress})
    r = srv.get("/?addr=x:1")
    assert r.status == 500
    assert needle in r.text and "wrangler.toml" in r.text, r.text


# ---------------------------------------------------------------- the example

def test_example_sockets_redis(tmp_path, thaw_factory):
    import shutil
    import subprocess
    import time
    from thawlib import REPO, free_port
    if not shutil.which("redis-server"):
        pytest.skip("no redis-server")
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                ss.socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        d = tmp_path / "sockets"
        shutil.copytree(REPO / "examples" / "sockets", d)
        cfg = d / "wrangler.toml"
        cfg.write_text(cfg.read_text().replace("127.0.0.1:6379", f"127.0.0.1:{port}"))
        t = thaw_factory(d)
        assert t.get("/").text == "redis says +PONG\n"
        assert t.get("/count").text == "count is 1\n"
        assert t.get("/count").text == "count is 2\n"
    finally:
        redis.terminate()
        redis.wait(10)
