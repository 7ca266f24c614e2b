"""Durable Objects in a worker: `env.BINDING` namespaces for
`durable_objects.bindings`, their stubs, and the check, after the top level
ran, that the entry module defines every class the migrations created.

The config was checked and summarised by the supervisor (src/do/config.c)
as `_thaw_do`. A stub's calls are binding calls to the namespace
(src/do/call.c), which the supervisor hands to the instance hosting the
worker's objects (workers/_durable_host.py).
"""
from . import _bind
from . import _durable_host
from . import _durable_wire as wire
from ._body import read_all
from ._durable_gate import current as _gate_of, writes_before
from ._durable_id import DurableObjectId, DurableObjectNamespace
from ._entrypoint import DurableObject
from ._headers import Headers

__all__ = ["DurableObjectId", "DurableObjectNamespace", "DurableObjectStub",
           "bindings_from_config", "check_exports"]

_NULL_BODY = frozenset((101, 103, 204, 205, 304))


def _raise_from(payload):
    """The exception the object raised, for the caller: a builtin class of
    the same name when there is one, else JsException carrying the name."""
    err = (payload or {}).get("error") or {}
    return _builtin_or_js(err.get("name") or "Error", err.get("message") or "")


def _builtin_or_js(name, message):
    import builtins
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        return cls(message)
    return _bind.JsException(name, message)


class DurableObjectStub:
    """What namespace.get(id) returns: `stub.id`, `stub.name`,
    `await stub.fetch(url or Request, ...)` and `await stub.method(*args)`."""

    __slots__ = ("_ns", "_id")

    def __init__(self, ns, id):
        self._ns = ns
        self._id = id

    @property
    def id(self):
        return self._id

    @property
    def name(self):
        return self._id.name

    def _args(self, **kw):
        return {"id": str(self._id), "name": self._id.name, **kw}

    async def fetch(self, resource, init=None, /, **kwargs):
        from ._fetch import _options
        from ._request import Request
        from ._response import Response
        opts = _options(init, kwargs)
        if _gate_of.get() is not None:  # a call from an object waits for its writes
            await writes_before()
        if isinstance(resource, Request):
            req = resource
            if any(k in opts for k in ("method", "headers", "body")):
                req = Request(resource, method=opts.get("method"),
                              headers=opts.get("headers"), body=opts.get("body"))
        else:
            if not isinstance(resource, str):
                if hasattr(resource, "href"):
                    resource = resource.href
                else:
                    raise TypeError(f"stub.fetch() takes a URL string or a Request, not "
                                    f"{type(resource).__name__}")
            req = Request(resource, method=opts.get("method"), headers=opts.get("headers"),
                          body=opts.get("body"))
        body = None if req._payload is None else await read_all(req._take())
        args = self._args(method=req.method, url=req.url, headers=req.headers._thaw_pairs())
        head, pending = await _bind.call_stream(self._ns._binding, "fetch", args, body or None)
        pairs = [tuple(p) for p in head["headers"]]
        if any(n == _durable_host.MARK for n, _ in pairs):
            payload = (await pending.read_all()) if pending.has_body else b"{}"
            raise _raise_from(_json(payload))
        resp = Response.__new__(Response)
        resp.status = head["status"]
        resp._reason = head.get("statusText") or None
        resp.headers = Headers._thaw_trusted(pairs)
        resp.url = req.url
        resp.redirected = False
        resp._used = False
        if resp.status == 101:
            # the object's WebSocket: the worker returns this Response and
            # the client's socket is the object's (workers/_durable_ws.py)
            from ._websocket import WebSocket
            sid = resp.headers.get("x-thaw-ws")
            resp.headers = Headers._thaw_trusted([p for p in pairs if p[0] != "x-thaw-ws"])
            if sid:
                resp._web_socket = WebSocket()
                resp._web_socket._do_client = sid
        if req.method == "HEAD" or resp.status in _NULL_BODY or not pending.has_body:
            if pending.has_body:
                pending.cancel()
            resp._payload = None
        else:
            from ._fetch import _FetchBody
            resp._payload = _FetchBody(pending)
        return resp

    async def _rpc(self, method, args):
        data = wire.encode(list(args))
        if _gate_of.get() is not None:
            await writes_before()
        _, body = await _bind.call(self._ns._binding, "rpc", self._args(method=method), data)
        payload = _json(body or b"{}")
        if "error" in payload:
            raise _raise_from(payload)
        return wire._dec(payload.get("result"))

    def __getattr__(self, method):
        if method.startswith("__"):
            raise AttributeError(method)  # copy/pickle probes; `_x` goes to the object

        def call(*args, **kwargs):
            if kwargs:
                raise TypeError(f"stub.{method}(): RPC takes positional arguments only "
                                f"(JavaScript has no keyword arguments)")
            return self._rpc(method, args)
        call.__name__ = method
        return call

    def __repr__(self):
        return f"<DurableObjectStub {self._id}>"


def _json(data):
    import json
    try:
        return json.loads(data)
    except ValueError:
        return {"error": {"name": "Error", "message": "thaw: a malformed answer from the "
                                                      "object's instance"}}


def bindings_from_config(config):
    do = config.get("_thaw_do") or {}
    _durable_host.config = do  # the instances forked later host the objects
    for name, b in (do.get("bindings") or {}).items():
        # b["script"]: another worker's class, its key asked for when needed
        yield name, DurableObjectNamespace(name, b["class_name"], b.get("key"),
                                           DurableObjectStub)


def check_exports(config, module, main_rel):
    """Every class the migrations left must be a DurableObject subclass in
    the entry module (Cloudflare: "not exported by script"). Returns None,
    or the message of the first one that is not."""
    do = config.get("_thaw_do") or {}
    for cls, info in sorted((do.get("classes") or {}).items()):
        obj = module.__dict__.get(cls)
        bound = [n for n, b in (do.get("bindings") or {}).items() if b["class_name"] == cls]
        by = f"migration \"{info.get('tag')}\" creates it" + (
            f" and binding {', '.join(bound)} uses it" if bound else "")
        if obj is None:
            return (f"{main_rel} defines no class {cls} ({by}): define "
                    f"`class {cls}(DurableObject)` in {main_rel} (from workers import "
                    f"DurableObject), or fix the name in the config")
        if not (isinstance(obj, type) and issubclass(obj, DurableObject)):
            what = "a class" if isinstance(obj, type) else type(obj).__name__
            return (f"{main_rel}: {cls} is {what} but not a Durable Object class ({by}): "
                    f"write `class {cls}(DurableObject)` (from workers import DurableObject)")
    return None
