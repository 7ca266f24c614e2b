# `import asgi` is `workers.asgi` (as on Cloudflare), written by `thaw types`.
from workers.asgi import ClientDisconnected as ClientDisconnected, env as env, fetch as fetch
