"""thaw's runtime inside the zygote, templates and instances.

Not for worker code: workers import `workers` and `js`. The C side of the
frame format is src/ipc/ipc-proto.h; ipc.py mirrors it.
"""
