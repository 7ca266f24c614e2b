"""Outbound fetch: `await workers.fetch(url, ...)` (also `js.fetch`).

The request is made by thaw's supervisor (src/bind/fetch.c), which applies
the egress policy and streams the response back; this module shapes the
call and the answer as the Fetch API does. The result is a workers.Response
whose body streams, so `return await fetch(...)` proxies without holding
the body in memory.

Errors raised by `await fetch(...)` (and by reading the body, for failures
after the head):
  TypeError        a bad URL, scheme, method, header or argument;
                   redirect="error" met a redirect
  PermissionError  thaw's egress policy refused the address
  TimeoutError     thaw.egress.timeout_ms / connect_timeout_ms passed
  ConnectionError  DNS, connect, TLS or protocol failures
  JsException      RangeError: over thaw.egress.max_response_bytes
"""

import builtins

from . import _bind
from . import _durable_gate as _gate
from ._body import read_all
from ._headers import Headers
from ._request import Request
from ._response import Response

_BINDING = "__fetch"
_INIT_KEYS = frozenset(("method", "headers", "body", "redirect", "cf", "signal"))
_REDIRECT_MODES = ("follow", "manual", "error")
_NULL_BODY = frozenset((101, 103, 204, 205, 304))
# error classes the supervisor names in a body error ("Class: message")
_BODY_ERRORS = ("TypeError", "PermissionError", "TimeoutError", "ConnectionError")


def _body_error(message):
    name, sep, rest = message.partition(": ")
    if sep and name in _BODY_ERRORS:
        return getattr(builtins, name)(rest)
    if sep and name == "RangeError":
        return _bind.JsException(name, rest)
    return ConnectionError(message)


class _FetchBody:
    """A response body arriving from the supervisor; read whole with
    `read()` or iterate it. Dropping it unread stops the transfer."""

    __slots__ = ("_pending", "_done")

    def __init__(self, pending):
        self._pending = pending
        self._done = False

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._done:
            raise StopAsyncIteration
        try:
            chunk = await self._pending.next_chunk()
        except _bind.JsException as exc:
            self._done = True
            raise _body_error(exc.message) from None
        except BaseException:
            self._done = True
            raise
        if chunk is None:
            self._done = True
            raise StopAsyncIteration
        return chunk

    async def read(self):
        return b"".join([chunk async for chunk in self])

    async def aclose(self):
        self.close()

    def close(self):
        if not self._done:
            self._done = True
            self._pending.cancel()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _options(init, kwargs):
    opts = {}
    if init is not None:
        if isinstance(init, dict):
            opts.update(init)
        elif hasattr(init, "to_py"):
            opts.update(init.to_py())
        else:
            raise TypeError(f"fetch() options must be a dict, not {type(init).__name__}")
    opts.update(kwargs)
    unknown = set(opts) - _INIT_KEYS
    if unknown:
        raise TypeError(f"fetch() got unknown option(s): {', '.join(sorted(unknown))}; "
                        f"it takes method, headers, body and redirect")
    if opts.get("signal") is not None:
        raise TypeError("fetch(signal=...) is not supported by thaw: cancel the task "
                        "(asyncio.wait_for / Task.cancel) to abort a fetch")
    return opts


async def fetch(resource, init=None, /, **kwargs):
    """fetch(url or Request, method=..., headers=..., body=..., redirect=...)
    -> Response. `init` may also be a dict of the same options (as JS)."""
    if _bind._transport is None:
        raise RuntimeError(
            "fetch() cannot be used here: outbound requests are made while a request "
            "(or a scheduled event) is handled, not at the top level of the worker, which "
            "runs once at deploy time and is snapshotted. Move the call into the handler.")
    opts = _options(init, kwargs)
    if _gate.current.get() is not None:  # in a Durable Object: after its writes
        await _gate.writes_before()
    if isinstance(resource, Request):
        req = resource
        if any(k in opts for k in ("method", "headers", "body", "redirect")):
            req = Request(resource, method=opts.get("method"), headers=opts.get("headers"),
                          body=opts.get("body"),
                          redirect=opts.get("redirect", resource.redirect))
        url, method, headers, redirect = req.url, req.method, req.headers, req.redirect
        body = None if req._payload is None else await read_all(req._take())
    else:
        if not isinstance(resource, str):
            if hasattr(resource, "href"):
                resource = resource.href  # a URL object
            else:
                raise TypeError(f"fetch() takes a URL string or a Request, not "
                                f"{type(resource).__name__}")
        req = Request(resource, method=opts.get("method"), headers=opts.get("headers"),
                      redirect=opts.get("redirect", "follow"),
                      body=opts.get("body"))
        url, method, headers, redirect = req.url, req.method, req.headers, req.redirect
        payload = req._payload
        body = None if payload is None else await read_all(payload)
    if redirect not in _REDIRECT_MODES:
        raise TypeError(f"fetch(): redirect must be 'follow', 'manual' or 'error', "
                        f"not {redirect!r}")
    if (headers.get("upgrade") or "").strip().lower() == "websocket" and method == "GET":
        # a WebSocket: the supervisor's upgrade (src/bind/wsclient.c)
        from ._websocket import _fetch_upgrade
        return await _fetch_upgrade(url, headers._thaw_pairs())
    args = {"url": url, "method": method, "headers": headers._thaw_pairs(),
            "redirect": redirect, "body": body is not None}
    head, pending = await _bind.call_stream(_BINDING, "fetch", args, body or None)
    resp = Response.__new__(Response)
    resp.status = head["status"]
    resp._reason = head.get("statusText") or None
    resp.headers = Headers._thaw_trusted([tuple(p) for p in head["headers"]])
    resp.url = head["url"]
    resp.redirected = bool(head["redirected"])
    resp._used = False
    if method == "HEAD" or resp.status in _NULL_BODY:
        pending.cancel()
        resp._payload = None
    else:
        resp._payload = _FetchBody(pending)
    return resp

