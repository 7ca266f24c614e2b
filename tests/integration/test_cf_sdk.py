"""Issue 17, point 4: the `workers` SDK's breadth, used as Cloudflare's
Python Workers docs and SDK tests use it, through the real `thaw dev`
(sandboxed) over HTTP: FormData / File / Blob, `await request.form_data()`,
Response.redirect and Response.json, `request.cf`,
`import_from_javascript("cloudflare:workers" / "cloudflare:sockets")` and
the RPC conversion helpers. Bad input fails with the Workers runtime's
own message."""
import email.parser
import email.policy
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import socketservers as ss
from thawlib import write_worker

SANDBOX = True

WORKER = '''
import hashlib
from http import HTTPStatus
from urllib.parse import parse_qs, urlparse

from workers import (Blob, File, FormData, Response, WorkerEntrypoint, fetch,
                     import_from_javascript, python_from_rpc, python_to_rpc)
import workers

# importable at the top level, as Cloudflare's docs show
cloudflare_workers = import_from_javascript("cloudflare:workers")
TOP_GREETING = cloudflare_workers.env.GREETING


def describe(value):
    if isinstance(value, str):
        return {"text": value}
    return {"file": value.name, "type": value.content_type, "size": value.size,
            "sha": hashlib.sha256(value._data).hexdigest()}


async def later():
    print("waituntil-ran-5531")


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlparse(request.url)
        path, q = url.path, {k: v[0] for k, v in parse_qs(url.query).items()}
        if path == "/upload":
            form = await request.form_data()
            return Response.json({"entries": [[k, describe(v)] for k, v in form.items()],
                                  "first": describe(form["name"]) if "name" in form else None,
                                  "all": len(form.get_all("multi")),
                                  "missing": form["nope"]})
        if path == "/upload-js":
            form = await request.formData()  # JS's name: iterating gives pairs
            return Response.json([[pair[0], describe(pair[1])] for pair in form])
        if path == "/redirect":
            return Response.redirect(q["to"], int(q.get("status", 302)))
        if path == "/redirect-checked":
            try:
                return Response.redirect("", HTTPStatus.BAD_GATEWAY)
            except ValueError as e:
                return Response(f"ValueError: {e}", status=400)
        if path == "/json":
            return Response.json({"obj": {"field": 123}}, status=HTTPStatus.NOT_FOUND)
        if path == "/cf":
            cf = request.cf
            return Response.json({"cf": dict(cf), "proto": cf.httpProtocol,
                                  "country": cf.get("country")})
        if path == "/cf-country":
            return Response(request.cf.country)
        if path == "/roundtrip":
            data = FormData({"field": "value"})
            data["blob.py"] = Blob("print(42)", content_type="text/python")
            data.append("metadata", Blob("{}", content_type="text/python"),
                        filename="metadata.json")
            data.append("bin", File([bytes(range(256))], "b.bin",
                                    content_type="application/octet-stream"))
            resp = await fetch(self.env.UPSTREAM + "/echo", method="POST", body=data)
            back = await resp.form_data()
            return Response.json({
                "sent_type": resp.headers.get("x-got-type"),
                "field": back["field"],
                "blob": await back["blob.py"].text(),
                "blob_type": back["blob.py"].content_type,
                "metadata": back["metadata"].name,
                "bin": describe(back["bin"])})
        if path == "/form-response":
            form = FormData()
            form.append("greeting", "héllo")
            form.append("upload", File(["line\\n"], "a.txt", content_type="text/plain"))
            return Response(form)
        if path == "/blob":
            return Response(Blob([b"\\x89PNG", b"\\r\\n"], content_type="image/png"))
        if path == "/env":
            with workers.patch_env(GREETING="patched"):
                patched = cloudflare_workers.env.GREETING
            return Response.json({"top": TOP_GREETING, "handler": workers.env.GREETING,
                                  "patched": patched, "after": self.env.GREETING})
        if path == "/wait":
            cloudflare_workers.waitUntil(later())
            return Response("queued")
        if path == "/sockets":
            sockets = import_from_javascript("cloudflare:sockets")
            sock = sockets.connect(f"127.0.0.1:{q['port']}", {"allowHalfOpen": False})
            await sock.opened
            await sock.writable.write(b"ping over cloudflare:sockets")
            got = await sock.readable.read()
            await sock.close()
            return Response(got)
        if path == "/import-unknown":
            import_from_javascript("node:fs")
        if path == "/rpc":
            js_value = python_to_rpc({"name": "thaw", "tags": ["a", None], "n": 3})
            back = python_from_rpc(js_value)
            try:
                python_to_rpc((1, 2))
                refused = None
            except TypeError as e:
                refused = str(e)
            return Response.json({"name": back.name, "tags": back["tags"], "n": back.n,
                                  "is_dict": isinstance(back, dict), "refused": refused})
        return Response("no route", status=404)
'''


class _Echo(BaseHTTPRequestHandler):
    """Answers a POST with its own body and Content-Type (a form goes back
    as it came); the raw request is kept for the test to read."""
    protocol_version = "HTTP/1.1"
    seen = []

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        ctype = self.headers.get("content-type", "")
        _Echo.seen.append((ctype, body))
        self.send_response(200)
        self.send_header("content-type", ctype)
        self.send_header("x-got-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def echo_http():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def sdk(tmp_path, thaw_factory, echo_http):
    d = tmp_path / "w"
    write_worker(d, WORKER, fmt="json", vars={"GREETING": "hi from vars",
                                              "UPSTREAM": echo_http},
                 thaw={"egress": {"allow": ["127.0.0.0/8"]}})
    return thaw_factory(d)


def multipart(boundary, parts, eol=b"\r\n"):
    """A multipart/form-data body written by hand (as a browser sends it)."""
    out = b""
    for head, data in parts:
        out += b"--" + boundary + eol + head + eol + eol + data + eol
    return out + b"--" + boundary + b"--" + eol


def parse_multipart(ctype, body):
    """The parts of a multipart body, read by the standard library's email
    parser (independent of thaw's)."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
    assert msg.is_multipart(), body
    return [(p.get_param("name", header="content-disposition"), p.get_filename(),
             p.get_content_type(), p.get_payload(decode=True)) for p in msg.iter_parts()]


UPLOAD = multipart(b"XyZ", [
    (b'Content-Disposition: form-data; name="name"', "Zoë".encode()),
    (b'Content-Disposition: form-data; name="multi"', b"1"),
    (b'Content-Disposition: form-data; name="multi"', b"2"),
    (b'Content-Disposition: form-data; name="avatar"; filename="me.png"\r\n'
     b'Content-Type: image/png', b"\x89PNG\r\n\x00\xff" * 100),
])


def test_multipart_upload_is_parsed_by_form_data(sdk):
    r = sdk.request("POST", "/upload", body=UPLOAD,
                    headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert r.status == 200, r.text
    out = r.json()
    png = b"\x89PNG\r\n\x00\xff" * 100
    assert out["entries"] == [
        ["name", {"text": "Zoë"}], ["multi", {"text": "1"}], ["multi", {"text": "2"}],
        ["avatar", {"file": "me.png", "type": "image/png", "size": len(png),
                    "sha": hashlib.sha256(png).hexdigest()}]]
    assert out["first"] == {"text": "Zoë"} and out["all"] == 2
    assert out["missing"] is None  # as Cloudflare's FormData: null, not KeyError


def test_multipart_with_bare_lf_and_a_quoted_boundary(sdk):
    body = multipart(b"a b", [(b'Content-Disposition: form-data; name="name"', b"lf")],
                     eol=b"\n")
    r = sdk.request("POST", "/upload", body=body,
                    headers={"content-type": 'multipart/form-data; boundary="a b"'})
    assert r.status == 200, r.text
    assert r.json()["entries"] == [["name", {"text": "lf"}]]


def test_urlencoded_form(sdk):
    r = sdk.request("POST", "/upload", body=b"name=J%C3%B6rg+M&multi=a&multi=&flag",
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status == 200, r.text
    out = r.json()
    assert out["entries"] == [["name", {"text": "Jörg M"}], ["multi", {"text": "a"}],
                              ["multi", {"text": ""}], ["flag", {"text": ""}]]


def test_js_form_data_iterates_pairs(sdk):
    r = sdk.request("POST", "/upload-js", body=UPLOAD,
                    headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert r.status == 200, r.text
    assert [k for k, _ in r.json()] == ["name", "multi", "multi", "avatar"]


@pytest.mark.parametrize("ctype,body,message", [
    ("multipart/form-data; boundary=XyZ", UPLOAD[:-20],
     "TypeError: No subsequent boundary string after multipart message."),
    ("multipart/form-data; boundary=other", UPLOAD,
     "TypeError: No initial boundary string (or you have a truncated message)."),
    ("multipart/form-data", UPLOAD, "TypeError: No boundary string in Content-Type header."),
    ("multipart/form-data; boundary=XyZ",
     multipart(b"XyZ", [(b'Content-Disposition: attachment; name="x"', b"1")]),
     'TypeError: Content-Disposition header for FormData part must have the value '
     '"form-data", possibly followed by parameters. Got: "attachment"'),
    ("multipart/form-data; boundary=XyZ",
     multipart(b"XyZ", [(b'Content-Disposition: form-data; filename="x"', b"1")]),
     "TypeError: Content-Disposition header in FormData part is missing a name."),
    ("text/plain", b"name=x", "TypeError: Unrecognized Content-Type header value. FormData "
     "can only parse the following MIME types: multipart/form-data, "
     "application/x-www-form-urlencoded"),
    ("application/x-www-form-urlencoded; charset=latin1", b"a=1",
     "TypeError: Non-utf-8 application/x-www-form-urlencoded body."),
])
def test_bad_form_bodies_fail_with_the_workers_runtime_message(sdk, ctype, body, message):
    r = sdk.request("POST", "/upload", body=body, headers={"content-type": ctype})
    assert r.status == 500, r
    log = sdk.wait_log(message)
    assert message in log, log[-3000:]


def test_form_without_content_type(sdk):
    r = sdk.request("POST", "/upload", body=b"a=1")
    assert r.status == 500, r
    msg = "TypeError: Parsing a Body as FormData requires a Content-Type header."
    assert msg in sdk.wait_log(msg)


def test_response_redirect(sdk):
    r = sdk.get("/redirect?to=https://example.com/next")
    assert (r.status, r.header("location")) == (302, "https://example.com/next"), r
    for status in (301, 303, 307, 308):
        r = sdk.get(f"/redirect?to=https://example.com/s&status={status}")
        assert (r.status, r.header("location")) == (status, "https://example.com/s"), r


def test_response_redirect_with_a_bad_status(sdk):
    r = sdk.get("/redirect-checked")  # Cloudflare's SDK test: a ValueError
    assert r.status == 400 and r.text.startswith("ValueError: invalid redirect status 502")
    r = sdk.get("/redirect?to=https://example.com/&status=200")
    assert r.status == 500, r
    msg = "ValueError: invalid redirect status 200; use 301, 302, 303, 307 or 308"
    assert msg in sdk.wait_log(msg)


def test_response_json_as_cloudflare_writes_it(sdk):
    r = sdk.get("/json")
    assert r.status == 404, r
    assert r.header("content-type") == "application/json"
    assert r.body == b'{"obj": {"field": 123}}'  # Cloudflare's SDK test's bytes


def test_request_cf_holds_what_thaw_knows(sdk):
    r = sdk.get("/cf", headers={"accept-encoding": "gzip, br"})
    assert r.status == 200, r.text
    assert r.json() == {"cf": {"httpProtocol": "HTTP/1.1", "clientAcceptEncoding": "gzip, br"},
                        "proto": "HTTP/1.1", "country": None}


def test_request_cf_field_thaw_does_not_have_says_why(sdk):
    r = sdk.get("/cf-country")
    assert r.status == 500, r
    log = sdk.wait_log("request.cf.country is not set by thaw")
    assert "Cloudflare's network locates the client" in log
    assert "request.cf.get('country')" in log


def test_form_data_round_trip_through_outbound_fetch(sdk):
    _Echo.seen.clear()
    r = sdk.request("POST", "/roundtrip")
    assert r.status == 200, r.text
    out = r.json()
    assert out["sent_type"].startswith("multipart/form-data; boundary=")
    assert out["field"] == "value" and out["blob"] == "print(42)"
    assert out["blob_type"] == "text/python" and out["metadata"] == "metadata.json"
    data = bytes(range(256))
    assert out["bin"] == {"file": "b.bin", "type": "application/octet-stream", "size": 256,
                          "sha": hashlib.sha256(data).hexdigest()}
    # what went over the wire is multipart the standard library reads
    ctype, body = _Echo.seen[-1]
    assert parse_multipart(ctype, body) == [
        ("field", None, "text/plain", b"value"),
        ("blob.py", "blob.py", "text/python", b"print(42)"),
        ("metadata", "metadata.json", "text/python", b"{}"),
        ("bin", "b.bin", "application/octet-stream", data)]


def test_form_data_and_blob_as_response_bodies(sdk):
    r = sdk.get("/form-response")
    assert r.status == 200, r
    assert parse_multipart(r.header("content-type"), r.body) == [
        ("greeting", None, "text/plain", "héllo".encode()),
        ("upload", "a.txt", "text/plain", b"line\n")]
    r = sdk.get("/blob")
    assert (r.status, r.header("content-type"), r.body) == (200, "image/png", b"\x89PNG\r\n")


def test_cloudflare_workers_env_at_top_level_in_the_handler_and_patched(sdk):
    assert sdk.get("/env").json() == {"top": "hi from vars", "handler": "hi from vars",
                                      "patched": "patched", "after": "hi from vars"}


def test_cloudflare_workers_wait_until(sdk):
    assert sdk.get("/wait").text == "queued"
    assert "waituntil-ran-5531" in sdk.wait_log("waituntil-ran-5531")


def test_cloudflare_sockets_connect(sdk):
    srv = ss.Server(ss.echo)
    try:
        r = sdk.get(f"/sockets?port={srv.port}")
    finally:
        srv.close()
    assert (r.status, r.body) == (200, b"ping over cloudflare:sockets"), r


def test_import_from_javascript_of_an_unknown_module(sdk):
    r = sdk.get("/import-unknown")
    assert r.status == 500, r
    msg = "ImportError: Failed to import 'node:fs'"
    log = sdk.wait_log(msg)
    assert msg in log and "'cloudflare:workers'" in log and "'cloudflare:sockets'" in log


def test_rpc_conversion_helpers(sdk):
    assert sdk.get("/rpc").json() == {
        "name": "thaw", "tags": ["a", None], "n": 3, "is_dict": True,
        "refused": "<class 'tuple'> cannot be sent over RPC."}
