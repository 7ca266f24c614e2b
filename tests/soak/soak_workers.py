"""The workers of the soak test (test_soak.py): well-behaved ones, cron
ones, and one hostile worker that crashes, loops and eats memory."""

# answers its name and deploy tag; POST echoes the body's length
GOOD = '''
from workers import Response, WorkerEntrypoint

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        if request.method == "POST":
            body = await request.text()
            return Response(f"{NAME!r} {TAG!r} {len(body)}")
        return Response(f"{NAME!r} {TAG!r} " + str(sum(range(2000))))
'''

CRON = GOOD + '''
    async def scheduled(self, controller, env, ctx):
        print(f"SOAK-CRON {NAME!r} {controller.cron}")
'''

# Each path misbehaves its own way; thaw's limits (its config below) stop
# it: cpu_ms for the loop, memory_mb for the allocation, a new instance
# after the crash.
HOSTILE = '''
import os
from urllib.parse import urlparse
from workers import Response, WorkerEntrypoint

hoard = []

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        path = urlparse(request.url).path
        if path == "/crash":
            os._exit(7)
        if path == "/loop":
            while True:
                pass
        if path == "/eat":
            while True:
                hoard.append(bytearray(1 << 20))
        return Response("hostile but fine")
'''
HOSTILE_CONFIG = {"limits": {"cpu_ms": 500},
                  "thaw": {"memory_mb": 64, "request_timeout_ms": 3000}}
HOSTILE_PATHS = ["/crash", "/loop", "/eat", "/"]


def source(kind, name, tag):
    text = {"good": GOOD, "cron": CRON}[kind]
    return text.replace("{NAME!r}", name).replace("{TAG!r}", tag)
