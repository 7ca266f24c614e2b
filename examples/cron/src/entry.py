"""A worker with cron triggers (see wrangler.toml).

`thaw dev examples/cron` calls `scheduled` at the minutes its crons name;
`curl "http://127.0.0.1:8787/__scheduled?cron=*/5+*+*+*+*"` runs it now.
GET / reports the last run this instance made."""
from datetime import datetime, timezone

from workers import Response, WorkerEntrypoint

last_run = None  # (cron, scheduled time) of this instance's last run


class Default(WorkerEntrypoint):
    async def scheduled(self, controller, env, ctx):
        global last_run
        at = datetime.fromtimestamp(controller.scheduledTime / 1000, timezone.utc)
        if controller.cron == "30 3 L * *":
            print(f"monthly report for {at:%Y-%m}")
        else:
            print(f"{env.TASK} for cron {controller.cron!r} at {at:%H:%M} UTC")
        last_run = (controller.cron, at)

    async def fetch(self, request):
        if last_run is None:
            text = ("scheduled has not run here yet; GET /__scheduled?cron=*/5+*+*+*+* "
                    "runs it now\n")
        else:
            cron, at = last_run
            text = f"last run: cron {cron!r}, scheduled for {at.isoformat()}\n"
        return Response(text)
