from urllib.parse import urlparse

from workers import DurableObject, Response, WorkerEntrypoint


class Counter(DurableObject):
    """One counter per name: its value in the key-value API, a log of
    visits in its own SQL table."""

    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        ctx.storage.sql.exec(
            "CREATE TABLE IF NOT EXISTS visits (at TEXT DEFAULT CURRENT_TIMESTAMP)")

    async def increment(self, amount=1):
        value = (await self.ctx.storage.get("value")) or 0
        value += amount
        await self.ctx.storage.put("value", value)
        self.ctx.storage.sql.exec("INSERT INTO visits DEFAULT VALUES")
        return value

    async def fetch(self, request):
        row = self.ctx.storage.sql.exec("SELECT count(*) AS n FROM visits").one()
        return Response(f"Hello from {self.ctx.id.name}: {row.n} visits\n")


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        parts = [p for p in urlparse(request.url).path.split("/") if p]
        if not parts:
            return Response("GET /NAME counts, GET /NAME/hello asks the object\n")
        stub = self.env.COUNTER.getByName(parts[0])
        if parts[1:] == ["hello"]:
            return await stub.fetch(request)
        return Response(f"{await stub.increment()}\n")
