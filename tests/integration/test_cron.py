"""Cron triggers: `triggers.crons` in the config makes `thaw dev` call the
worker's scheduled handler at the right UTC minute; `/__scheduled?cron=...`
runs one now, as `wrangler dev --test-scheduled` does. Real triggers are
tested with THAW_CRON_CLOCK_START, which starts the scheduler's clock at a
chosen instant (then it runs at real speed), so a minute boundary comes
within seconds; one test waits for a real minute and is skipped unless
THAW_SLOW_TESTS=1."""
import calendar
import json
import os
import re
import time

import pytest

from thawlib import REPO, write_config, write_worker

RECORDER = '''
    import asyncio
    from workers import Response, WorkerEntrypoint

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            return Response("fetch")

        async def scheduled(self, controller, env, ctx):
            async def later():
                await asyncio.sleep(0.05)
                print(f"WAITED cron={controller.cron!r}")
            ctx.wait_until(later())
            same = controller.scheduled_time == controller.scheduledTime
            print(f"RAN cron={controller.cron!r} t={controller.scheduledTime!r} "
                  f"type={controller.type} same={same} "
                  f"var={env.GREETING} self_env={self.env.GREETING}")
            controller.noRetry()
            controller.no_retry()
'''


def ms(iso):
    """'2030-02-28T10:00:00Z' -> ms since the epoch."""
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")) * 1000


def ran(log):
    """(cron, scheduledTime) of every RAN line of the log."""
    return [(m.group(1), float(m.group(2)))
            for m in re.finditer(r"RAN cron='([^']*)' t=([0-9.]+)", log)]


def event_lines(log):
    """The JSON log lines of scheduled events."""
    out = []
    for line in log.splitlines():
        if line.startswith("{") and '"event":"scheduled"' in line:
            out.append(json.loads(line))
    return out


def crons_worker(d, source, crons, **cfg):
    write_worker(d, source, vars={"GREETING": "hi"}, triggers={"crons": crons}, **cfg)


# ---------------------------------------------------------------- /__scheduled

def test_scheduled_route_runs_handler_with_cron_and_now(workdir, thaw_factory):
    crons_worker(workdir, RECORDER, ["*/5 * * * *"])
    s = thaw_factory(workdir)
    before = time.time() * 1000
    r = s.get("/__scheduled?cron=*%2F3+*+*+*+*")
    after = time.time() * 1000
    assert (r.status, r.text) == (200, "Ran scheduled event"), r
    log = s.wait_log("RAN cron='*/3 * * * *'", "WAITED cron='*/3 * * * *'")
    # the configured */5 may also fire for real while the test runs
    (cron, t), = [x for x in ran(log) if x[0] == "*/3 * * * *"]
    assert before - 1000 <= t <= after + 1000, (before, t, after)
    assert "type=scheduled same=True var=hi self_env=hi" in log
    # the route is thaw's: other paths still reach fetch
    assert s.get("/elsewhere").text == "fetch"
    # wrangler passes "" when the query has no cron; newer wrangler's path too
    assert s.get("/__scheduled").text == "Ran scheduled event"
    assert s.request("POST", "/cdn-cgi/handler/scheduled?x=1&cron=0+9+*+*+MON").text == \
        "Ran scheduled event"
    log = s.wait_log("RAN cron='0 9 * * MON'")
    assert [c for c, _ in ran(log)] == ["*/3 * * * *", "", "0 9 * * MON"]


def test_legacy_on_scheduled(workdir, thaw_factory):
    crons_worker(workdir, '''
        from workers import Response

        async def on_fetch(request, env):
            return Response("fetch")

        def on_scheduled(controller, env, ctx):
            print(f"LEGACY {controller.cron} {env.GREETING} {type(ctx).__name__}")
    ''', ["0 * * * *"])
    s = thaw_factory(workdir)
    r = s.get("/__scheduled?cron=0+*+*+*+*")
    assert (r.status, r.text) == (200, "Ran scheduled event"), r
    assert "LEGACY 0 * * * * hi ExecutionContext" in s.wait_log("LEGACY")


def test_short_signatures(workdir, thaw_factory):
    """scheduled(self, controller) is called with the controller alone."""
    crons_worker(workdir, '''
        from workers import Response, WorkerEntrypoint

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response("fetch")

            def scheduled(self, controller):
                print(f"SHORT {controller.cron} {self.env.GREETING}")
    ''', ["0 * * * *"])
    s = thaw_factory(workdir)
    assert s.get("/__scheduled?cron=5+4+*+*+*").text == "Ran scheduled event"
    assert "SHORT 5 4 * * * hi" in s.wait_log("SHORT")


def test_handler_raising_is_500_with_traceback(workdir, thaw_factory):
    crons_worker(workdir, '''
        from workers import Response, WorkerEntrypoint

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response("fetch")

            async def scheduled(self, controller, env, ctx):
                raise ValueError(f"cron job broke for {controller.cron}")
    ''', ["0 * * * *"])
    s = thaw_factory(workdir)
    r = s.get("/__scheduled?cron=1+2+3+4+*")
    assert r.status == 500, r
    assert "scheduled handler" in r.text and "ValueError" in r.text, r.text
    log = s.wait_log("ValueError: cron job broke for 1 2 3 4 *")
    assert "Traceback (most recent call last)" in log
    assert "ValueError: cron job broke for 1 2 3 4 *" in log
    assert s.get("/").text == "fetch"  # the instance serves on


def test_worker_without_scheduled_handler(workdir, thaw_factory):
    crons_worker(workdir, '''
        from workers import Response, WorkerEntrypoint

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response("fetch")
    ''', ["0 * * * *"])
    s = thaw_factory(workdir)
    r = s.get("/__scheduled?cron=0+*+*+*+*")
    assert r.status == 500, r
    fix = "add `async def scheduled(self, controller, env, ctx)`"
    assert "class Default has no `scheduled` method" in r.text and fix in r.text, r.text
    assert fix in s.wait_log(fix)


def test_scheduled_over_the_time_limit_is_cancelled(workdir, thaw_factory, monkeypatch):
    """request_timeout_ms bounds an event as it does a request: 504, and the
    handler is cancelled (its finally runs)."""
    crons_worker(workdir, '''
        import asyncio
        from workers import Response, WorkerEntrypoint

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response("fetch")

            async def scheduled(self, controller, env, ctx):
                try:
                    await asyncio.sleep(30)
                finally:
                    print(f"CANCELLED {controller.cron}")
    ''', ["0 0 * * *"], thaw={"request_timeout_ms": 500})
    monkeypatch.setenv("THAW_CRON_CLOCK_START", "2030-01-01T23:59:59Z")
    s = thaw_factory(workdir)
    r = s.get("/__scheduled?cron=manual")
    assert r.status == 504 and "request_timeout_ms" in r.text, r
    log = s.wait_log("CANCELLED manual", '"event":"scheduled"', "CANCELLED 0 0 * * *",
                     timeout=30)
    e, = event_lines(log)
    assert (e["cron"], e["status"]) == ("0 0 * * *", 504), e
    assert 'scheduled event for cron "0 0 * * *" failed: 504 Gateway Timeout' in log
    assert s.get("/").text == "fetch"


def test_legacy_on_scheduled_refused_after_no_global_handlers(workdir, thaw_factory):
    write_worker(workdir, '''
        from workers import Response, WorkerEntrypoint

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response("fetch")

        async def on_scheduled(controller, env, ctx):
            print("SHOULD NOT RUN")
    ''')
    cfg = workdir / "wrangler.toml"
    cfg.write_text(cfg.read_text().replace('"2024-03-18"', '"2025-09-01"'))
    s = thaw_factory(workdir)
    r = s.get("/__scheduled")
    assert r.status == 500 and "python_no_global_handlers" in r.text, r
    assert "SHOULD NOT RUN" not in s.log()


# ---------------------------------------------------------------- bad config

def _bad_config_exits(workdir, thaw_factory, crons, *needles, triggers=None):
    write_worker(workdir, RECORDER,
                 triggers=triggers if triggers is not None else {"crons": crons}, fmt="json")
    s = thaw_factory(workdir, start=False)
    s.spawn()
    assert not s.wait_ready_or_exit(), "thaw started with a bad cron"
    assert s.proc.returncode != 0
    for n in needles:
        assert n in s.log(), s.log()


def test_bad_cron_in_config_is_an_error_naming_it(workdir, thaw_factory):
    _bad_config_exits(workdir, thaw_factory, ["0 * * * *", "*/0 * * * *"],
                      'wrangler.json: triggers.crons[1] "*/0 * * * *": step 0 in the '
                      'minute field')


@pytest.mark.parametrize("crons,why", [
    (["61 * * * *"], '"61 * * * *": 61 is out of range 0-59 in the minute field'),
    (["* * * * 0"], "weekday 0 is not valid: weekdays are numbered 1-7 with 1 = Sunday"),
    (["0 0 * * * *"], "has more than 5"),
    (["0 0 30 2 *"], "it never fires"),
    (["0 0 * * MON-XYZ"], 'unknown name "XYZ" in the day-of-week field'),
    ([5], "triggers.crons[0] must be a string"),
    ("*/5 * * * *", "`triggers.crons` must be an array"),
])
def test_bad_crons(workdir, thaw_factory, crons, why):
    _bad_config_exits(workdir, thaw_factory, crons, why)


def test_bad_cron_on_reload_is_served_as_the_error(workdir, thaw_factory):
    crons_worker(workdir, RECORDER, ["0 * * * *"], fmt="json")
    s = thaw_factory(workdir)
    assert s.get("/").text == "fetch"
    write_config(workdir, vars={"GREETING": "hi"}, fmt="json",
                 triggers={"crons": ["0 * * * *", "0 25 * * *"]})
    r = s.poll_until(lambda r: r.status == 500, timeout=20)[-1]
    assert 'triggers.crons[1] "0 25 * * *": 25 is out of range 0-23 in the hour field' \
        in r.text, r
    # fixed again: served again
    write_config(workdir, vars={"GREETING": "hi"}, fmt="json",
                 triggers={"crons": ["0 * * * *"]})
    s.poll_until(lambda r: r.status == 200, timeout=20)


def test_bad_clock_start_is_refused(workdir, thaw_factory, monkeypatch):
    crons_worker(workdir, RECORDER, ["* * * * *"])
    monkeypatch.setenv("THAW_CRON_CLOCK_START", "tomorrow")
    s = thaw_factory(workdir, start=False)
    s.spawn()
    assert not s.wait_ready_or_exit()
    assert s.proc.returncode != 0
    assert 'THAW_CRON_CLOCK_START="tomorrow": want a UTC time like' in s.log()


# ---------------------------------------------------------------- real triggers

def test_triggers_fire_at_their_minute(workdir, thaw_factory, monkeypatch):
    """2030-02-28 is the last day of February: `L` fires, the 1st does not,
    and each matching cron gets its own event with the minute's time."""
    crons_worker(workdir, RECORDER, ["0 10 L * *", "0 10 1 * *", "*/5 * * * *",
                                     "0 10 * * THU#4", "1 10 * * *"])
    monkeypatch.setenv("THAW_CRON_CLOCK_START", "2030-02-28T09:59:58Z")
    s = thaw_factory(workdir)
    assert "the scheduler's clock reads 2030-02-28T09:59:5" in s.log()
    log = s.wait_log('"cron":"0 10 * * THU#4"', '"cron":"*/5 * * * *"', '"cron":"0 10 L * *"',
                     "WAITED cron='0 10 L * *'", timeout=30)
    at = ms("2030-02-28T10:00:00Z")
    assert sorted(ran(log)) == sorted([("0 10 L * *", at), ("*/5 * * * *", at),
                                       ("0 10 * * THU#4", at)]), log
    events = {e["cron"]: e for e in event_lines(log)}
    assert set(events) == {"0 10 L * *", "*/5 * * * *", "0 10 * * THU#4"}, log
    for e in events.values():
        assert e["status"] == 200 and e["scheduled_time"] == at and e["worker"] == "test-worker"
        assert e["instance"] >= 1 and e["start"] in ("cold", "warm")
    assert 'cron trigger "1 10 * * *": next at 2030-02-28T10:01:00Z' in log
    assert 'cron trigger "0 10 1 * *": next at 2030-03-01T10:00:00Z' in log


def test_trigger_failure_is_logged(workdir, thaw_factory, monkeypatch):
    crons_worker(workdir, '''
        from workers import Response, WorkerEntrypoint

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response("fetch")

            async def scheduled(self, controller, env, ctx):
                raise RuntimeError("nightly job failed")
    ''', ["0 0 * * *"])
    monkeypatch.setenv("THAW_CRON_CLOCK_START", "2030-01-01T23:59:58Z")
    s = thaw_factory(workdir)
    log = s.wait_log('"event":"scheduled"', "RuntimeError: nightly job failed", timeout=30)
    e, = event_lines(log)
    assert (e["cron"], e["status"], e["scheduled_time"]) == \
        ("0 0 * * *", 500, ms("2030-01-02T00:00:00Z")), e
    assert "Traceback (most recent call last)" in log


def test_reload_takes_new_crons(workdir, thaw_factory, monkeypatch):
    crons_worker(workdir, RECORDER, ["0 0 1 1 *"])
    monkeypatch.setenv("THAW_CRON_CLOCK_START", "2030-03-01T09:59:45Z")
    s = thaw_factory(workdir)
    assert 'cron trigger "0 0 1 1 *": next at 2031-01-01T00:00:00Z' in s.log()
    write_config(workdir, vars={"GREETING": "hi"}, triggers={"crons": ["0 10 * * *"]})
    log = s.wait_log('cron trigger "0 10 * * *": next at 2030-03-01T10:00:00Z', timeout=20)
    assert 'cron trigger "0 10 * * *": next at 2030-03-01T10:00:00Z' in log, log
    log = s.wait_log("RAN cron='0 10 * * *'", timeout=30)
    assert ran(log) == [("0 10 * * *", ms("2030-03-01T10:00:00Z"))], log


@pytest.mark.skipif(os.environ.get("THAW_SLOW_TESTS") != "1",
                    reason="waits for a real minute boundary (THAW_SLOW_TESTS=1 runs it)")
def test_real_minute(workdir, thaw_factory):
    crons_worker(workdir, RECORDER, ["* * * * *"])
    s = thaw_factory(workdir)
    log = s.wait_log("RAN cron='* * * * *'", timeout=75)
    (cron, t), = ran(log)
    assert t % 60000 == 0 and abs(t - time.time() * 1000) < 10000


# ---------------------------------------------------------------- the example

def test_example_cron(thaw_factory, tmp_path):
    s = thaw_factory(REPO / "examples" / "cron")
    assert "GET /__scheduled" in s.get("/").text
    r = s.get("/__scheduled?cron=*/5+*+*+*+*")
    assert (r.status, r.text) == (200, "Ran scheduled event"), r
    assert "cleanup for cron '*/5 * * * *'" in s.wait_log("cleanup for cron")
    assert "last run: cron '*/5 * * * *'" in s.get("/").text
