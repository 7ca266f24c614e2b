"""Talks to Redis over a raw TCP socket with workers.connect() (the Sockets
API of Cloudflare Workers): GET / sends PING, GET /count increments a
counter. The same works with the redis package (`redis.Redis(...)`): thaw
routes the standard library's sockets the same way."""
from workers import Response, WorkerEntrypoint, connect


def command(*args):
    """A Redis command in RESP."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


async def ask(address, *args):
    sock = connect(address)
    try:
        await sock.writable.write(command(*args))
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = await sock.readable.read()
            if not chunk:
                break
            reply += chunk
        return reply.decode().strip()
    finally:
        await sock.close()


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        path = request.url.split("/", 3)[3].partition("?")[0]
        if path == "":
            return Response(f"redis says {await ask(self.env.REDIS, 'PING')}\n")
        if path == "count":
            n = await ask(self.env.REDIS, "INCR", "thaw:sockets-demo")
            return Response(f"count is {n.lstrip(':')}\n")
        return Response("not found\n", status=404)
