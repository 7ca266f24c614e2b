"""asgi.fetch's per-request parts in C (src/zygote/asgi-call.c,
asgi-scope.c) against their Python references: the scope
(_asgi_scope.py_http_scope) and the exchange's `send` (_HttpCall._send on
_PyCallBase). thaw-zygote has the C ones built in; build/py has them for
these tests."""
import asyncio
import types

import pytest

import _thaw_fast
import asgi
from workers import Headers, Request, _asgi_scope
from workers._env import Env

START = {"type": "http.response.start", "status": 200,
         "headers": [(b"Content-Type", b" text/plain "), (b"content-length", b"2")]}
BODY = {"type": "http.response.body", "body": b"hi"}


def test_fetch_uses_the_c_parts():
    assert asgi._CallBase is _thaw_fast.AsgiCall
    assert _asgi_scope.scope_of is _thaw_fast.asgi_scope


# ---- the scope ----------------------------------------------------------

def _decoded(url, method="GET", pairs=(("host", "h"),), client=("10.0.0.1", 5),
             version="1.0"):
    return Request._thaw_decoded(method, url, list(pairs), None, client, version)


class _OtherRequest:
    """Not a workers.Request: headers a plain mapping (header_pairs' other path)."""
    url = "http://x.test/a"
    method = "get"
    headers = {"X-One": "1", "Accept": "*/*"}


@pytest.mark.parametrize("req", [
    _decoded("http://127.0.0.1:8080/"),
    _decoded("https://h.test:8443/p%2Fq/%C3%A9?x=%41&y#frag", method="post"),
    _decoded("http://h.test", client=None, version=None),
    _decoded("http://h.test/caf\u00e9?q=\u00e9"),
    _decoded("http://[::1]:81/x", method="Patch"),
    _decoded("http://h.test:abc/x"),
    _decoded("ftp://h.test/x"),
    _decoded("http://h.test/" + "a" * 400),
    Request("https://h.test/p?x=1", method="delete", headers=[("X-A", "1"), ("x-a", "2")]),
    _OtherRequest(),
], ids=lambda r: r.url[:40])
@pytest.mark.parametrize("state", [None, {}, {"s": [1]}, types.MappingProxyType({"m": 2})],
                         ids=["none", "empty", "dict", "mapping"])
def test_c_scope_is_the_python_scope(req, state):
    env = Env({"K": "v"})
    want = _asgi_scope.py_http_scope(req, env, state)
    for _ in range(2):  # the second from the URL cache
        got = _thaw_fast.asgi_scope(req, env, state)
        assert list(got) == list(want)  # the same keys in the same order
        assert got == want
        if state is not None:
            assert got["state"] is not state and type(got["state"]) is dict
        assert got["asgi"] is not want["asgi"] and got["extensions"] is not want["extensions"]


def test_c_scope_errors_as_python():
    bad = _decoded("http://h.test/", pairs=[("x-a", "\u20ac")])  # not latin-1
    with pytest.raises(UnicodeEncodeError):
        _asgi_scope.py_http_scope(bad, None)
    with pytest.raises(UnicodeEncodeError):
        _thaw_fast.asgi_scope(bad, None, None)


def test_c_scope_cache_is_bounded():
    _asgi_scope._targets.clear()
    for i in range(_asgi_scope._TARGETS_MAX + 5):
        _thaw_fast.asgi_scope(_decoded(f"http://h.test/{i}"), None, None)
    assert 0 < len(_asgi_scope._targets) <= _asgi_scope._TARGETS_MAX
    _thaw_fast.asgi_scope(_decoded("http://h.test/" + "a" * 300), None, None)
    assert ("http://h.test/" + "a" * 300) not in _asgi_scope._targets


# ---- send ---------------------------------------------------------------

PyCall = type("PyCall", (asgi._PyCallBase,),
              {k: v for k, v in vars(asgi._HttpCall).items()
               if k not in ("__dict__", "__weakref__")})

STATE = ("head", "whole", "pipe", "finished", "finish_waiters", "head_waiter", "error",
         "app_done", "task", "body_iter", "request_done")


def _state(call):
    out = {}
    for k in STATE:
        v = getattr(call, k)
        if k == "pipe" and v is not None:
            v = ("pipe", v.whole(), v.done)
        out[k] = v
    return out


async def _send_all(call, messages):
    """What each send gave: None, or the exception raised at its await."""
    out = []
    for m in messages:
        try:
            out.append(await call.send(m))
        except Exception as exc:
            out.append((type(exc), str(exc)))
    return out


SEQUENCES = {
    "start, whole body": [START, BODY],
    "no headers key, no body key": [{"type": "http.response.start", "status": 204},
                                    {"type": "http.response.body"}],
    "tuple headers": [dict(START, headers=((b"a", b"1"),)), BODY],
    "more_body": [START, dict(BODY, more_body=True), dict(BODY, more_body=False)],
    "more_body false explicitly": [START, dict(BODY, more_body=False)],
    "more_body 0": [START, dict(BODY, more_body=0)],
    "bytearray body": [START, dict(BODY, body=bytearray(b"x"))],
    "body after whole": [START, BODY, BODY],
    "body before start": [BODY],
    "start twice": [START, START],
    "unknown type": [{"type": "http.response.trailers"}],
    "no type": [{}],
    "invalid header name": [dict(START, headers=[(b"bad name", b"1")]), BODY],
    "str headers": [dict(START, headers=[("a", "1")]), BODY],
    # made per run: the iterator is used up
    "generator headers": lambda: [dict(START, headers=iter([(b"a", b"1")])), BODY],
    "list subclass headers": [dict(START, headers=type("L", (list,), {})([(b"a", b"1")]))],
    "no status": [{"type": "http.response.start"}],
    "not a dict": [types.MappingProxyType(START), types.MappingProxyType(BODY)],
}


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_c_send_is_python_send(name):
    async def both():
        c, p = asgi._HttpCall(), PyCall()
        seq = SEQUENCES[name]
        got = await _send_all(c, seq() if callable(seq) else seq)
        want = await _send_all(p, seq() if callable(seq) else seq)
        return got, want, _state(c), _state(p)
    got, want, cstate, pstate = asyncio.run(both())
    assert got == want
    assert cstate == pstate


def test_common_messages_complete_at_once():
    """The C path is taken (no coroutine) for a head and a whole body."""
    call = asgi._HttpCall()
    assert call.send(START) is _thaw_fast.DONE
    assert call.send(BODY) is _thaw_fast.DONE
    assert call.whole == b"hi" and call.finished is True
    assert call.head == (200, [("content-type", "text/plain"), ("content-length", "2")], None)
    slow = asgi._HttpCall().send(dict(BODY, more_body=True))
    assert asyncio.iscoroutine(slow)
    slow.close()


def test_body_wakes_waiting_receive():
    async def main():
        call = asgi._HttpCall()
        call.request_done = True
        waiting = asyncio.ensure_future(call.receive())
        await asyncio.sleep(0)
        assert call.finish_waiters
        await call.send(START)
        assert call.send(BODY) is _thaw_fast.DONE
        return await asyncio.wait_for(waiting, 1)
    assert asyncio.run(main()) == {"type": "http.disconnect"}


def test_head_wakes_waiting_fetch():
    async def main():
        call = asgi._HttpCall()
        call.head_waiter = w = asyncio.get_running_loop().create_future()
        await call.send(START)
        return w.done()
    assert asyncio.run(main())


def test_done_is_awaitable_everywhere():
    done = _thaw_fast.DONE

    async def main():
        a = await done
        b = await asyncio.ensure_future(done)
        c = await asyncio.get_running_loop().create_task(done)
        d = await asyncio.wait_for(done, 1)
        return a, b, c, d
    assert asyncio.run(main()) == (None, None, None, None)
    with pytest.raises(StopIteration):
        done.send(None)
    with pytest.raises(KeyError):
        done.throw(KeyError("k"))
    assert done.close() is None


def test_fetch_answers_through_either_send():
    async def app(scope, receive, send):
        await send(START)
        await send(dict(BODY, more_body=True))
        await send({"type": "http.response.body", "body": b"!"})

    async def simple(scope, receive, send):
        await send(START)
        await send(BODY)

    from workers import _asgi_lifespan
    for a, want in ((app, b"hi!"), (simple, b"hi")):
        _asgi_lifespan._by_app.clear()

        async def main():
            resp = await asgi.fetch(a, Request("http://x/"), None)
            return resp.status, await resp.bytes(), resp.headers.get("content-type")
        assert asyncio.run(main()) == (200, want, "text/plain")


def test_scope_headers_of_a_headers_subclass():
    class MyHeaders(Headers):
        pass
    req = _decoded("http://h.test/")
    req.headers = MyHeaders([("X-B", "2")])
    assert _thaw_fast.asgi_scope(req, None, None)["headers"] == [(b"x-b", b"2")]


# ---- the response of an exchange that ended ---------------------------

def _parts(resp):
    return (type(resp), resp.status, resp._reason, resp.headers._pairs, resp._payload,
            resp._used, type(resp.headers))


@pytest.mark.parametrize("status", [200, 201, 299, 404, 500, 599])
def test_sized_response_is_response(status):
    async def main():
        call = asgi._HttpCall()
        await call.send(dict(START, status=status))
        await call.send(BODY)
        return call.sized_response(), call.response("GET")
    got, want = asyncio.run(main())
    assert got is not None
    assert _parts(got) == _parts(want)
    assert got.headers._pairs is not None and got.status == status


@pytest.mark.parametrize("case", ["204", "304", "199", "600", "str status", "bool status",
                                  "no body yet", "streamed", "no head",
                                  "invalid headers"])
def test_sized_response_leaves_the_rest_to_response(case):
    async def main():
        call = asgi._HttpCall()
        status = {"204": 204, "304": 304, "199": 199, "600": 600, "str status": "200",
                  "bool status": True}.get(case, 200)
        if case != "no head":
            headers = [(b"bad name", b"x")] if case == "invalid headers" else START["headers"]
            await call.send(dict(START, status=status, headers=headers))
        if case == "streamed":
            await call.send(dict(BODY, more_body=True))
            await call.send(BODY)
        elif case not in ("no body yet", "no head"):
            await call.send(BODY)
        return call.sized_response()
    assert asyncio.run(main()) is None


def test_js_object_is_the_request():
    req = _decoded("http://h.test/")
    assert req.js_object is req
    assert Request.js_object.fget is _thaw_fast.same
