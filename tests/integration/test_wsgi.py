"""`wsgi.fetch` through the real binary: the PEP 3333 environ, bodies,
streamed and sized responses, errors, blocking apps in a thread; and the
Flask (python3-flask) and Django (python3-django) examples."""
import re
import concurrent.futures
import json
import time

import pytest

from thawlib import REPO, raw_request

WORKER = '''
    import json, time
    from workers import WorkerEntrypoint
    import workers.wsgi
    from workers import wsgi

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/raise":
            raise ValueError("wsgi-boom-5512")
        if path == "/sleep":
            time.sleep(float(environ["QUERY_STRING"] or "1"))  # blocks its thread only
            start_response("200 OK", [("content-type", "text/plain")])
            return [b"slept"]
        if path == "/generator":
            def gen():
                start_response("202 Accepted", [("content-type", "text/plain"),
                                                ("x-gen", "1")])
                for i in range(4):
                    yield b"part-%d;" % i
            return gen()
        if path == "/write":
            write = start_response("200 OK", [("content-type", "text/plain")])
            write(b"written;")
            return [b"returned"]
        if path == "/teapot":
            start_response("418 I'm a teapot", [("set-cookie", "a=1"), ("set-cookie", "b=2")])
            return [b"short and stout"]
        body = environ["wsgi.input"].read()
        keys = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME",
                "SERVER_PORT", "SERVER_PROTOCOL", "CONTENT_TYPE", "CONTENT_LENGTH",
                "REMOTE_ADDR",
                "HTTP_X_REP", "HTTP_COOKIE", "HTTP_HOST", "wsgi.url_scheme")
        out = {k: environ.get(k) for k in keys}
        out["wsgi.version"] = list(environ["wsgi.version"])
        out["headers_with_underscore"] = [k for k in environ if k.startswith("HTTP_X_UNDER")]
        out["greeting"] = environ["workers.env"].GREETING
        out["body"] = body.decode()
        data = json.dumps(out).encode()
        start_response("200 OK", [("content-type", "application/json"),
                                  ("content-length", str(len(data)))])
        return [data]

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            if request.headers.get("x-call") == "dotted":
                return await workers.wsgi.fetch(app, request.js_object, self.env)
            return await wsgi.fetch(app, request, self.env)
'''


@pytest.fixture
def srv(serve):
    return serve(WORKER, args=("--max-instances", "1"), vars={"GREETING": "hi-wsgi"})


def test_environ(srv):
    r = raw_request(srv.port, b"POST /p%20q/%C3%A9?a=1&b=%20 HTTP/1.1\r\nHost: site.test:8080\r\n"
                              b"X-Rep: one\r\nX-Rep: two\r\nCookie: a=1\r\nCookie: b=2\r\n"
                              b"X_Under: spoof\r\nContent-Type: text/plain\r\n"
                              b"Content-Length: 5\r\nConnection: close\r\n\r\nhello")
    assert r.status == 200, r
    e = r.json()
    assert e["REQUEST_METHOD"] == "POST"
    assert e["SCRIPT_NAME"] == ""
    assert e["PATH_INFO"] == "/p q/é".encode().decode("latin-1")  # PEP 3333 bytes-as-latin-1
    assert e["QUERY_STRING"] == "a=1&b=%20"
    assert e["SERVER_NAME"] == "site.test"
    assert e["SERVER_PORT"] == "8080"
    assert e["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert e["REMOTE_ADDR"] == "127.0.0.1"
    assert e["CONTENT_TYPE"] == "text/plain"
    assert e["CONTENT_LENGTH"] == "5"
    assert e["HTTP_X_REP"] == "one, two"
    assert e["HTTP_COOKIE"] == "a=1; b=2"
    assert e["HTTP_HOST"] == "site.test:8080"
    assert e["headers_with_underscore"] == []
    assert e["wsgi.url_scheme"] == "http"
    assert e["wsgi.version"] == [1, 0]
    assert e["greeting"] == "hi-wsgi"
    assert e["body"] == "hello"
    assert r.header("content-length") == str(len(r.body))


def test_chunked_upload_gets_content_length(srv):
    c = srv.conn()
    try:
        c.request("PUT", "/up", body=iter([b"abc", b"defg"]), encode_chunked=True,
                  headers={"x-call": "dotted"})
        r = c.getresponse()
        e = json.loads(r.read())
    finally:
        c.close()
    assert r.status == 200
    assert e["body"] == "abcdefg"
    assert e["CONTENT_LENGTH"] == "7"


def test_get_without_body_has_no_content_length(srv):
    e = srv.get("/x").json()
    assert e["CONTENT_LENGTH"] is None
    assert e["body"] == ""


def test_generator_response_streams(srv):
    r = srv.get("/generator")
    assert r.status == 202, r
    assert r.header("transfer-encoding") == "chunked"
    assert r.header("x-gen") == "1"
    assert r.body == b"part-0;part-1;part-2;part-3;"


def test_write_callable_and_status_reason(srv):
    assert srv.get("/write").body == b"written;returned"
    r = srv.get("/teapot")
    assert r.status == 418
    assert r.reason == "I'm a teapot"
    assert r.headers.get_all("set-cookie") == ["a=1", "b=2"]
    assert r.body == b"short and stout"


def test_exception_is_500_with_traceback(srv):
    r = srv.get("/raise")
    assert r.status == 500, r
    log = srv.wait_log("wsgi-boom-5512")
    assert "Traceback" in log
    assert re.search(r"\[test-worker req=\d+\] ValueError: wsgi-boom-5512", log), log
    assert srv.get("/x").status == 200


def test_blocking_app_does_not_stall_the_instance(srv):
    """One instance (--max-instances 1): a request blocked in time.sleep
    runs in a thread, so another request is answered meanwhile."""
    srv.get("/x")  # the instance exists
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        slow = pool.submit(srv.get, "/sleep?3")
        time.sleep(0.3)
        t0 = time.monotonic()
        fast = srv.get("/x")
        fast_took = time.monotonic() - t0
        assert fast.status == 200
        assert not slow.done()
        assert slow.result().body == b"slept"
    assert fast_took < 2.0, fast_took


# ---------------------------------------------------------------- examples

def _form_roundtrip(srv):
    r = srv.get("/")
    assert r.status == 200, r
    page = srv.get("/greet")
    assert page.status == 200 and "<form" in page.text
    r = srv.request("POST", "/greet", body=b"name=Ada+%3CL%3E",
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status == 200, r
    assert "Hello, Ada &lt;L&gt;!" in r.text
    return srv.get("/")


def test_flask_example(thaw_factory):
    srv = thaw_factory(REPO / "examples" / "flask")
    r = _form_roundtrip(srv)
    assert r.text == "Hello from Flask on thaw\n"  # env.MESSAGE via environ
    assert srv.get("/missing").status == 404
    assert srv.request("DELETE", "/greet").status == 405


def test_django_example(thaw_factory):
    srv = thaw_factory(REPO / "examples" / "django")
    r = _form_roundtrip(srv)
    assert r.text == "Hello from Django on thaw\n"
    assert r.header("content-length") == str(len(r.body))
    assert srv.get("/missing").status == 404
    assert srv.request("DELETE", "/greet").status == 405
