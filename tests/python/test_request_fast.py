"""The instance's Request constructor in C (_thaw_fast.new_request,
src/zygote/sdk-new.c) against its reference, Request._thaw_decoded: the
same object, attribute for attribute and in the same order."""
import pytest

import _thaw_fast
from workers import Headers, Request


class _Body:
    pass


@pytest.mark.parametrize("client,version,body", [
    (("127.0.0.1", 40000), "1.1", None),
    (None, None, None),
    (("::1", 1), None, _Body()),
    (None, "1.0", _Body()),
])
def test_new_request_is_thaw_decoded(client, version, body):
    pairs = [("host", "h.test"), ("accept", "*/*")]
    got = _thaw_fast.new_request("GET", "http://h.test/x", pairs, body, client, version)
    want = Request._thaw_decoded("GET", "http://h.test/x", list(pairs), body, client, version)
    assert type(got) is Request and type(got.headers) is Headers
    assert got.headers._pairs is pairs  # the decoder's list, not a copy
    g, w = dict(vars(got)), dict(vars(want))
    assert list(g) == list(w)
    g.pop("headers"), w.pop("headers")
    assert g == w
    assert got.cf == want.cf
    assert got.headers.get("accept") == "*/*" and got.js_object is got


def test_the_instance_uses_it():
    import os
    import thaw_runtime
    path = os.path.join(os.path.dirname(thaw_runtime.__file__), "instance.py")
    with open(path) as f:
        src = f.read()
    assert "self.new_request = fast.new_request" in src
    assert "request = self.new_request(method, url, pairs, body, client, version)" in src
