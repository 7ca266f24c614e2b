"""A scheduled (cron) worker.

On Cloudflare, the [triggers] crons of wrangler.toml call `scheduled`.
thaw does not run cron triggers yet, so this worker's fetch handler runs it
by hand on GET /__scheduled?cron=... (the URL `wrangler dev` uses for the
same purpose); any other path reports the last run."""
import time
from urllib.parse import parse_qs, urlparse

from workers import Response, WorkerEntrypoint

runs = []  # this instance's runs of `scheduled`


class Controller:
    """The `controller` argument of scheduled(): cron and scheduledTime."""

    def __init__(self, cron):
        self.cron = cron
        self.scheduledTime = int(time.time() * 1000)
        self.type = "scheduled"


class Default(WorkerEntrypoint):
    async def scheduled(self, controller, env, ctx):
        runs.append((controller.cron, controller.scheduledTime))
        print(f"ran {env.TASK} for cron {controller.cron!r}")

    async def fetch(self, request):
        url = urlparse(request.url)
        if url.path == "/__scheduled":
            cron = parse_qs(url.query).get("cron", ["*/5 * * * *"])[0]
            await self.scheduled(Controller(cron), self.env, self.ctx)
            return Response(f"ran scheduled({cron!r})\n")
        if not runs:
            return Response("scheduled has not run yet: GET /__scheduled runs it\n")
        cron, at = runs[-1]
        return Response(f"{len(runs)} run(s); last: cron {cron!r} at {at}\n")
