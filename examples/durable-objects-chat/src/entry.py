from urllib.parse import parse_qs, urlparse

from workers import DurableObject, Response, WebSocketPair, WorkerEntrypoint

from page import PAGE

HISTORY = 20  # lines a newcomer gets


class ChatRoom(DurableObject):
    """One room: its sockets held with the Hibernation API (the object may
    leave memory while they stay open), its last lines in its own SQL
    table."""

    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        ctx.storage.sql.exec(
            "CREATE TABLE IF NOT EXISTS lines (n INTEGER PRIMARY KEY, text TEXT)")

    async def fetch(self, request):
        query = parse_qs(urlparse(request.url).query)
        name = query.get("name", ["anon"])[0].strip()[:32] or "anon"
        client, server = WebSocketPair.new().object_values()
        self.ctx.acceptWebSocket(server)
        server.serializeAttachment({"name": name})  # survives hibernation
        rows = self.ctx.storage.sql.exec(
            "SELECT text FROM lines ORDER BY n DESC LIMIT ?", HISTORY).toArray()
        for row in reversed(rows):
            server.send(row.text)
        self.broadcast(f"* {name} joined")
        return Response(None, status=101, web_socket=client)

    async def webSocketMessage(self, ws, message):
        if not isinstance(message, str):
            return
        line = f"{ws.deserializeAttachment()['name']}: {message[:1000]}"
        self.ctx.storage.sql.exec("INSERT INTO lines (text) VALUES (?)", line)
        self.broadcast(line)

    async def webSocketClose(self, ws, code, reason, wasClean):
        self.broadcast(f"* {ws.deserializeAttachment()['name']} left", skip=ws)

    def broadcast(self, line, skip=None):
        for peer in self.ctx.getWebSockets():
            if peer != skip:
                try:
                    peer.send(line)
                except Exception:
                    pass  # a socket closing under us


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlparse(request.url)
        if url.path == "/ws":
            if request.headers.get("Upgrade") != "websocket":
                return Response("Durable Object expected Upgrade: websocket", status=426)
            room = parse_qs(url.query).get("room", ["lobby"])[0]
            return await self.env.ROOMS.getByName(room).fetch(request)
        if url.path == "/":
            return Response(PAGE, headers={"content-type": "text/html; charset=utf-8"})
        return Response("not found\n", status=404)
