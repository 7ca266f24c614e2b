"""Durable Object alarms (issue 18 point 5), black-box: objects written
as Cloudflare's docs write them, served by the real thaw dev, driven over
HTTP. The supervisor keeps each object's one alarm (src/do/alarms.h) and
sends the object an alarm event when it is due; the alarm itself lives in
the object's SQLite file, so it survives a restart. Short alarms and
wait_for: no timing is asserted."""
import json
import signal
import time

import pytest

from servelib import serve_factory  # noqa: F401
from thawlib import wait_for, write_worker

WORKER = """
    import datetime
    import json
    import time
    from urllib.parse import urlparse, parse_qs
    from workers import DurableObject, Response, WorkerEntrypoint


    def now_ms():
        return time.time() * 1000


    class Clock(DurableObject):
        async def arm(self, delay_ms):
            await self.ctx.storage.setAlarm(now_ms() + delay_ms)
            return await self.ctx.storage.getAlarm()

        async def arm_datetime(self, delay_ms):
            when = datetime.datetime.now(datetime.timezone.utc) + \\
                datetime.timedelta(milliseconds=delay_ms)
            await self.ctx.storage.setAlarm(when)
            return [await self.ctx.storage.getAlarm(), int(when.timestamp() * 1000)]

        async def arm_raw(self, value):
            await self.ctx.storage.setAlarm(value)

        async def get(self):
            return await self.ctx.storage.getAlarm()

        async def cancel(self):
            await self.ctx.storage.deleteAlarm()
            return await self.ctx.storage.getAlarm()

        async def wipe(self):
            await self.ctx.storage.deleteAll()
            return await self.ctx.storage.getAlarm()

        async def set_mode(self, mode):
            await self.ctx.storage.put("mode", mode)

        async def fired(self):
            return (await self.ctx.storage.get("fired")) or []

        async def alarm(self, alarm_info=None):
            print(f"alarm of {self.ctx.id.name} in {self.env.WHO}")
            fired = (await self.ctx.storage.get("fired")) or []
            fired.append({"retry": alarm_info.retryCount, "isRetry": alarm_info.isRetry,
                          "during": await self.ctx.storage.getAlarm()})
            await self.ctx.storage.put("fired", fired)
            mode = await self.ctx.storage.get("mode")
            if mode == "fail" or (mode == "fail-once" and not alarm_info.isRetry):
                raise ValueError("the alarm broke")
            if mode == "repeat" and len(fired) < 3:
                await self.ctx.storage.setAlarm(now_ms() + 100)


    class Bare(DurableObject):
        async def arm(self, delay_ms):
            await self.ctx.storage.setAlarm(now_ms() + delay_ms)

        async def fired(self):
            return await self.ctx.storage.get("fired")

        async def alarm(self):  # Cloudflare's docs write it without alarm_info too
            await self.ctx.storage.put("fired", True)


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            url = urlparse(request.url)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            ns = self.env.BARE if q.get("ns") == "bare" else self.env.CLOCK
            stub = ns.getByName(q.get("name", "default"))
            call = json.loads(await request.text())
            try:
                result = await getattr(stub, call["method"])(*call.get("args", []))
            except Exception as e:
                return Response(json.dumps({"error": type(e).__name__, "message": str(e)}),
                                status=500)
            return Response(json.dumps({"result": result}))
"""

CONFIG = dict(
    vars={"WHO": "do-alarms"},
    durable_objects={"bindings": [{"name": "CLOCK", "class_name": "Clock"},
                                  {"name": "BARE", "class_name": "Bare"}]},
    migrations=[{"tag": "v1", "new_sqlite_classes": ["Clock", "Bare"]}])


@pytest.fixture
def srv(workdir, thaw_factory, monkeypatch):
    # retries 50 ms, 100 ms, ... apart instead of Cloudflare's 2 s, 4 s, ...
    monkeypatch.setenv("THAW_DO_ALARM_BACKOFF_MS", "50")
    write_worker(workdir, WORKER, fmt="json", name="do-alarms", **CONFIG)
    return thaw_factory(workdir)


def rpc(srv, method, *args, name="default", ns="clock", status=200):
    r = srv.request("POST", f"/?name={name}&ns={ns}",
                    body=json.dumps({"method": method, "args": list(args)}).encode())
    assert r.status == status, f"{r.status}: {r.text}\n{srv.log()[-3000:]}"
    return r.json()


def fired(srv, name, n):
    """Waits until the object's alarm ran n times; its record."""
    out = []

    def enough():
        out[:] = rpc(srv, "fired", name=name)["result"]
        return len(out) >= n
    wait_for(enough, f"{n} alarm(s) of {name}")
    return out


def test_an_alarm_fires_once_then_is_gone(srv):
    before = time.time() * 1000
    at = rpc(srv, "arm", 200, name="once")["result"]
    assert isinstance(at, int) and at >= before
    got = fired(srv, "once", 1)
    # while alarm() ran, getAlarm() said None (as Cloudflare's)
    assert got == [{"retry": 0, "isRetry": False, "during": None}]
    assert rpc(srv, "get", name="once")["result"] is None
    assert "alarm() failed" not in srv.log()


def test_an_alarm_handler_without_alarm_info_runs(srv):
    rpc(srv, "arm", 100, name="bare", ns="bare")
    wait_for(lambda: rpc(srv, "fired", name="bare", ns="bare")["result"] is True,
             "the bare alarm")


def test_set_alarm_takes_a_datetime(srv):
    got, want = rpc(srv, "arm_datetime", 150, name="dt")["result"]
    assert got == want
    assert fired(srv, "dt", 1)[0]["retry"] == 0


def test_one_alarm_per_object_set_replaces_delete_cancels(srv):
    first = rpc(srv, "arm", 60000, name="one")["result"]
    second = rpc(srv, "arm", 120000, name="one")["result"]
    assert second > first
    assert rpc(srv, "get", name="one")["result"] == second
    assert rpc(srv, "cancel", name="one")["result"] is None
    # a cancelled alarm does not fire: armed and cancelled before another
    # object's, which does
    rpc(srv, "arm", 100, name="cancelled")
    assert rpc(srv, "cancel", name="cancelled")["result"] is None
    rpc(srv, "arm", 300, name="witness")
    fired(srv, "witness", 1)
    assert rpc(srv, "fired", name="cancelled")["result"] == []


def test_an_alarm_handler_may_set_the_next_alarm(srv):
    rpc(srv, "set_mode", "repeat", name="rep")
    rpc(srv, "arm", 100, name="rep")
    got = fired(srv, "rep", 3)
    assert [g["retry"] for g in got] == [0, 0, 0]  # each a new alarm
    assert rpc(srv, "get", name="rep")["result"] is None


def test_a_handler_that_raises_is_retried(srv):
    rpc(srv, "set_mode", "fail-once", name="flaky")
    rpc(srv, "arm", 100, name="flaky")
    got = fired(srv, "flaky", 2)
    assert [(g["retry"], g["isRetry"]) for g in got] == [(0, False), (1, True)]
    srv.wait_log("ValueError: the alarm broke", "retry 1 of 6")
    assert rpc(srv, "get", name="flaky")["result"] is None


def test_a_handler_that_always_raises_is_given_up_after_six_retries(srv):
    rpc(srv, "set_mode", "fail", name="doomed")
    rpc(srv, "arm", 100, name="doomed")
    srv.wait_log("alarm() failed 7 times; the alarm is dropped", timeout=30)
    got = rpc(srv, "fired", name="doomed")["result"]
    assert [g["retry"] for g in got] == list(range(7))
    assert rpc(srv, "get", name="doomed")["result"] is None


@pytest.mark.parametrize("value, says", [
    ("soon", "not str"), (True, "not bool"), (None, "not NoneType"),
    ([1], "not list")])
def test_set_alarm_refuses_what_is_not_a_time(srv, value, says):
    r = rpc(srv, "arm_raw", value, name="bad", status=500)
    assert r["error"] == "TypeError", r
    assert "milliseconds since the epoch" in r["message"] and says in r["message"], r
    assert rpc(srv, "get", name="bad")["result"] is None


def test_delete_all_deletes_the_alarm(srv):
    rpc(srv, "arm", 60000, name="wiped")
    assert rpc(srv, "wipe", name="wiped")["result"] is None
    assert rpc(srv, "get", name="wiped")["result"] is None


def test_an_alarm_survives_a_restart(workdir, thaw_factory):
    write_worker(workdir, WORKER, fmt="json", name="do-alarms", **CONFIG)
    srv = thaw_factory(workdir)
    # far enough ahead that it is still armed when thaw dies
    at = rpc(srv, "arm", 4000, name="phoenix")["result"]
    srv.stop(signal.SIGKILL)
    again = thaw_factory(workdir)
    again.wait_log("1 Durable Object alarm armed from its storage")
    assert rpc(again, "get", name="phoenix")["result"] == at
    assert fired(again, "phoenix", 1)[0]["retry"] == 0
    assert rpc(again, "get", name="phoenix")["result"] is None


def test_metrics_count_armed_alarms(workdir, thaw_factory):
    import urllib.request
    from thawlib import free_port
    admin = free_port()
    write_worker(workdir, WORKER, fmt="json", name="do-alarms", **CONFIG)
    srv = thaw_factory(workdir, "--admin", f"127.0.0.1:{admin}")

    def armed():
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5) as r:
            text = r.read().decode()
        line = [x for x in text.splitlines() if x.startswith("thaw_do_alarms{")]
        assert line == [line[0]] and 'worker="do-alarms"' in line[0], text
        return int(line[0].split()[-1])
    assert armed() == 0
    rpc(srv, "arm", 60000, name="m1")
    rpc(srv, "arm", 60000, name="m2")
    assert armed() == 2
    rpc(srv, "cancel", name="m1")
    assert armed() == 1


def test_an_alarm_of_a_deleted_worker_never_fires(tmp_path, serve_factory):
    srv = serve_factory()
    for name in ("doomed", "witness"):
        write_worker(tmp_path / name, WORKER, fmt="json", name=name,
                     **dict(CONFIG, vars={"WHO": name}))
        srv.cli("deploy", str(tmp_path / name))

    def call(worker, method, *args):
        r = srv.request("POST", "/?name=x", headers={"Host": f"{worker}.localhost"},
                        body=json.dumps({"method": method, "args": list(args)}).encode())
        assert r.status == 200, f"{r.status}: {r.text}\n{srv.log()[-3000:]}"
        return r.json()["result"]
    # far enough ahead that the delete comes first; the witness's after it
    at = call("doomed", "arm", 4000)
    srv.cli("delete", "doomed")
    call("witness", "arm_raw", at + 500)
    wait_for(lambda: len(call("witness", "fired")) == 1, "the witness's alarm")
    assert "alarm of x in witness" in srv.log()
    assert "alarm of x in doomed" not in srv.log()
