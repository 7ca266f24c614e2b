"""Secrets in `thaw dev`: values from .dev.vars reach env as strings, like
config vars, but never appear in thaw's log or in `thaw types` output.

    cp .dev.vars.example .dev.vars
    build/thaw dev examples/secrets
    curl -H 'authorization: Bearer replace-me' http://127.0.0.1:8787/
"""
import hmac

from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        if "API_TOKEN" not in self.env:
            return Response("no API_TOKEN: copy .dev.vars.example to .dev.vars\n",
                            status=500)
        sent = request.headers.get("authorization") or ""
        want = f"Bearer {self.env.API_TOKEN}"
        # compare in constant time, as for any secret
        if not hmac.compare_digest(sent.encode(), want.encode()):
            return Response("unauthorized\n", status=401,
                            headers={"www-authenticate": "Bearer"})
        return Response(f"authorized; calling {self.env.API_BASE} with the token\n")
