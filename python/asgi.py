"""`import asgi`, as on Cloudflare Python Workers: the same module object as
`workers.asgi`, so both names share one set of lifespan state."""
import sys

from workers import asgi as _impl

sys.modules[__name__] = _impl
