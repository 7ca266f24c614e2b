"""thaw_tools.idname gives the names src/util/idname.c gives (the same
examples as tests/unit/test_idname.c): `thaw d1` finds the file thaw dev
writes, whatever id the config holds."""
import pytest

from thaw_tools.idname import id_filename

SAME_AS_C = [
    ("my-kv", "my-kv"),
    ("a.b", "a.b"),
    ("<YOUR_KV_NAMESPACE_ID>", "%3CYOUR_KV_NAMESPACE_ID%3E"),
    ("../../etc/passwd", "%2E.%2F..%2Fetc%2Fpasswd"),
    (".hidden", "%2Ehidden"),
    ("\u00e9", "%C3%A9"),
    ("%41", "%2541"),
    ("a\0b", "a%00b"),
    ("x" * 200, "x" * 100 + "~6ee14c8caecd5c4540d0fffa82ab9664"),
    ("a/" * 60, "a%2F" * 25 + "~1348a6621411f665d99ba2575e9e9864"),
]


@pytest.mark.parametrize("ident,name", SAME_AS_C)
def test_same_names_as_the_supervisor(ident, name):
    assert id_filename(ident) == name
    assert "/" not in name and not name.startswith(".")


def test_empty_id_names_nothing():
    with pytest.raises(ValueError):
        id_filename("")
