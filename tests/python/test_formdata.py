"""workers.FormData / File / Blob and the js module's: one implementation,
with the behaviour Cloudflare's SDK tests check (workerd's
src/workerd/server/tests/python/sdk/worker.py) and JavaScript's names."""
import asyncio
from http import HTTPStatus

import pytest

import js
import workers
from workers import (Blob, File, FormData, Request, Response, import_from_javascript,
                     patch_env, python_from_rpc, python_to_rpc)
from workers._formdata import JsFormData, parse

run = asyncio.run


def test_js_and_workers_are_the_same_classes():
    assert js.Blob is Blob and js.File is File
    assert issubclass(js.FormData, FormData)
    f = js.FormData.new()
    f.append("a", js.Blob.new(["x"], {"type": "Text/Plain"}), "x.txt")
    assert isinstance(f["a"], File) and f["a"].content_type == "text/plain"
    assert [list(pair) for pair in f][0][0] == "a"  # JS: iterating gives pairs
    assert list(FormData(f)) == ["a"]               # the SDK: names


def test_form_data_as_cloudflares_sdk_tests_it():
    js_data = js.FormData.new()
    js_data.append("foobar", 123)
    js_data.append("key", "lorem ipsum")
    js_data.append("key", "dolor sit amet")
    data = FormData(js_data)
    assert data["foobar"] == "123"
    assert data["key"] == "lorem ipsum"
    assert data.get_all("key") == ["lorem ipsum", "dolor sit amet"]
    assert "unknown key" not in data and "key" in data
    data = FormData({"key": "foobar"})
    data.append("key", "another")
    data.append("key2", "foobar2")
    assert set(data.items()) == {("key", "foobar"), ("key", "another"), ("key2", "foobar2")}
    assert len(list(data.keys())) == 3 and len(data) == 3
    assert set(data.values()) == {"foobar", "another", "foobar2"}


def test_form_data_values_are_strings_as_js_writes_them():
    f = FormData()
    f.append("t", True)
    f.append("n", None)
    f.append("x", 1.0)
    assert [f["t"], f["n"], f["x"]] == ["true", "null", "1"]
    with pytest.raises(TypeError, match="Expected single item"):
        f["t"] = ["a", "b"]
    with pytest.raises(TypeError, match="dict or an instance of FormData"):
        FormData([("a", "1")])


def test_set_delete_and_missing_names():
    f = FormData()
    f.append("a", "1")
    f.append("b", "2")
    f.append("a", "3")
    f["a"] = "x"  # the first stays in place, the others go
    assert list(f.items()) == [("a", "x"), ("b", "2")]
    del f["b"]
    assert list(f.items()) == [("a", "x")]
    assert f["missing"] is None and f.get("missing", "d") == "d"


def test_blob_as_cloudflares_sdk_tests_it():
    data = FormData()
    data["test"] = Blob(["some string"])
    assert run(data["test"].text()) == "some string"
    data["js"] = js.Blob.new(["another string"])
    assert isinstance(data["js"], Blob)
    b = Blob(["test"], content_type="application/json")
    assert b.js_object.type == "application/json" and b.size == 4
    assert run(b.bytes()) == b"test" and run(b.slice(1, 3).text()) == "es"
    assert run(Blob([memoryview(b"foobar")]).text()) == "foobar"
    assert Blob(b).content_type == "application/json"
    assert Blob(b, content_type="other/type").content_type == "other/type"
    assert Blob([b]).content_type == ""
    f = File("my file", filename="test.txt", content_type="text/plain")
    assert (f.content_type, f.name) == ("text/plain", "test.txt")


def test_blob_details():
    b = Blob(["a\r\nb"], endings="native")
    assert run(b.text()) == "a\nb"
    with pytest.raises(TypeError, match="endings"):
        Blob(["x"], endings="dos")
    with pytest.raises(TypeError, match="Blob part"):
        Blob([object()])
    assert Blob(["x"], content_type="tëxt/plain").type == ""  # not printable ASCII
    assert run(Blob(["abcdef"]).slice(-2).text()) == "ef"
    assert run(Blob(["abcdef"]).slice(4, 2).text()) == ""
    assert run(Blob(["ab"]).arrayBuffer()).to_bytes() == b"ab"
    f = File([b"x"], "f", last_modified=5)
    assert (f.last_modified, f.lastModified, File(f, "g").last_modified) == (5, 5, 5)
    assert js.File.new(["x"], "n", {"type": "a/b", "lastModified": 7}).lastModified == 7


def test_a_blob_appended_without_a_filename_is_named_by_the_entry():
    f = FormData()
    f.append("avatar", Blob([b"x"], content_type="image/png"))
    assert f["avatar"].name == "avatar"  # as the Workers runtime names it
    f.append("renamed", File([b"x"], "a.png"), "b.png")
    assert f["renamed"].name == "b.png"


def test_round_trip_through_a_body():
    f = FormData({"field": "value"})
    f["blob.py"] = Blob("print(42)", content_type="text/python")
    f.append("metadata", Blob("{}", content_type="text/python"), filename="metadata.json")
    r = Response(f)
    ctype = r.headers["content-type"]
    assert ctype.startswith("multipart/form-data; boundary=")
    back = run(r.form_data())
    assert back["field"] == "value"
    assert run(back["blob.py"].text()) == "print(42)"
    assert back["blob.py"].content_type == "text/python"
    assert back["metadata"].name == "metadata.json"
    req = Request("http://x/", method="POST", body=js.URLSearchParams.new("a=1&b=2"))
    assert list(run(req.form_data()).items()) == [("a", "1"), ("b", "2")]


def test_quotes_and_newlines_in_names_survive():
    f = FormData()
    f.append('we"ird\nname', File([b"1"], 'a"b.txt'))
    back = run(Response(f).form_data())
    assert list(back.keys()) == ["we%22ird%0Aname"]  # escaped as the runtime does
    assert back["we%22ird%0Aname"].name == "a%22b.txt"
    with pytest.raises(TypeError, match="backslash"):
        Response(FormData({"a\\": "1"}))


def test_parse_rejects_what_the_runtime_rejects():
    with pytest.raises(TypeError, match="Boundary string was not succeeded"):
        parse(b"--b junk", "multipart/form-data; boundary=b")
    with pytest.raises(TypeError, match="header termination"):
        parse(b"--b\r\nContent-Disposition: form-data", "multipart/form-data; boundary=b")
    with pytest.raises(TypeError, match="invalid headers"):
        parse(b"--b\r\nno colon\r\n\r\nx\r\n--b--", "multipart/form-data; boundary=b")
    with pytest.raises(TypeError, match="No valid Content-Disposition"):
        parse(b"--b\r\nX: 1\r\n\r\nx\r\n--b--", "multipart/form-data; boundary=b")
    empty = parse(b"--b--", "multipart/form-data; boundary=b", JsFormData)
    assert isinstance(empty, JsFormData) and len(empty) == 0


def test_body_blob():
    r = Response(b"\x00\x01", headers={"content-type": "Image/PNG"})
    b = run(r.blob())
    assert (b.type, run(b.bytes())) == ("image/png", b"\x00\x01")


def test_redirect_and_json():
    assert Response.redirect("https://e.com/", HTTPStatus.MOVED_PERMANENTLY).status == 301
    with pytest.raises(ValueError, match="invalid redirect status 502"):
        Response.redirect("", HTTPStatus.BAD_GATEWAY)
    assert run(Response.json([1, 2, 3]).text()) == "[1, 2, 3]"  # Cloudflare's SDK test
    assert run(Response.json("test").text()) == '"test"'
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        Response.json({1, 2, 3})


def test_request_cf():
    assert Request("http://x/").cf is None  # built in code: None, as on Cloudflare
    assert Request("http://x/", cf={"cacheTtl": 5}).cf == {"cacheTtl": 5}
    req = Request._thaw_decoded("GET", "http://x/", [("accept-encoding", "br")], None,
                                ("127.0.0.1", 5), "1.0")
    assert req.cf == {"httpProtocol": "HTTP/1.0", "clientAcceptEncoding": "br"}
    assert req.cf.httpProtocol == "HTTP/1.0" and req.cf.get("colo") is None
    with pytest.raises(AttributeError, match="request.cf.colo is not set by thaw"):
        req.cf.colo
    with pytest.raises(AttributeError):
        req.cf.somethingElse
    assert Request(req).cf is req.cf


def test_import_from_javascript_outside_thaw():
    cw = import_from_javascript("cloudflare:workers")
    assert cw.WorkerEntrypoint.__name__ == "WorkerEntrypoint"
    assert import_from_javascript("cloudflare:sockets").connect is not None
    with pytest.raises(ImportError, match="'cloudflare:workers'.*'cloudflare:sockets'"):
        import_from_javascript("cloudflare:email")

    async def never():
        pass
    with pytest.raises(RuntimeError, match="waitUntil"):
        cw.waitUntil(never())
    with pytest.raises(TypeError, match="options must be an object"):
        import_from_javascript("cloudflare:sockets").connect("h:1", "on")
    with pytest.raises(RuntimeError, match="env is not available here"):
        workers.env
    with patch_env({"A": "1"}, B="2"):
        assert (cw.env.A, workers.env.B) == ("1", "2")
        with patch_env(A="inner"):
            assert (workers.env.A, workers.env.B) == ("inner", "2")
    with pytest.raises(RuntimeError):
        cw.env


def test_rpc_helpers():
    import datetime
    value = python_to_rpc({"r": Response("x"), "when": datetime.datetime(2026, 1, 2),
                           "e": ValueError("bad"), "b": b"\x01"})
    assert isinstance(value.r, Response) and value.when.getTime() > 0
    back = python_from_rpc(value)
    assert back.when == datetime.datetime(2026, 1, 2) and back.b == b"\x01"
    assert str(back.e) == "Error: bad" and isinstance(back.r, Response)
    assert python_to_rpc(None) is None and python_from_rpc(None) is None
    for bad in ((1,), bytearray(b"x"), [asyncio.sleep(0)]):
        with pytest.raises(TypeError, match="cannot be sent over RPC"):
            python_to_rpc(bad)
        if isinstance(bad, list):
            bad[0].close()
