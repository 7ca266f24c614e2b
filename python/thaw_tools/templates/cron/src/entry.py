"""A scheduled (cron) worker.

The [triggers] crons of wrangler.toml call `scheduled`: `thaw dev` runs it
at the minutes they name (UTC), and GET /__scheduled?cron=*/5+*+*+*+* runs
it now, as `wrangler dev --test-scheduled` does. Other paths report the
last run this instance made."""
from workers import Response, WorkerEntrypoint

runs = []  # this instance's runs of `scheduled`: (cron, scheduledTime in ms)


class Default(WorkerEntrypoint):
    async def scheduled(self, controller, env, ctx):
        runs.append((controller.cron, controller.scheduledTime))
        print(f"ran {env.TASK} for cron {controller.cron!r}")

    async def fetch(self, request):
        if not runs:
            return Response("scheduled has not run yet: GET /__scheduled runs it\n")
        cron, at = runs[-1]
        return Response(f"{len(runs)} run(s); last: cron {cron!r} at {at:.0f}\n")
