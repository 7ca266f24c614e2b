"""The file name of a binding's data from an id its config gives: the
Python twin of src/util/idname.c (keep them in step; tests/python and
tests/unit check both against the same examples).

Letters, digits, '-', '_' and '.' (not first) stay, every other byte of
the id's UTF-8 becomes %XX; a name over 160 bytes is cut to 100 and ends
in "~" and two 64-bit FNV-1a hashes of the whole id, in hex."""

MAX_ESCAPED = 160
KEEP = 100
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_MASK = (1 << 64) - 1


def _fnv1a(data, h):
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & _MASK
    return h


def _part(b, at):
    if b in _SAFE or (b == 0x2E and at > 0):
        return chr(b)
    return f"%{b:02X}"


def id_filename(ident):
    """The name (without ".sqlite") for ident, a non-empty str."""
    data = ident.encode("utf-8", "surrogatepass")
    if not data:
        raise ValueError("an empty id names no file")
    parts = [_part(b, i) for i, b in enumerate(data)]
    if sum(map(len, parts)) <= MAX_ESCAPED:
        return "".join(parts)
    out = ""
    for p in parts:
        if len(out) + len(p) > KEEP:
            break
        out += p
    return (f"{out}~{_fnv1a(data, 0xcbf29ce484222325):016x}"
            f"{_fnv1a(data, 0x84222325cbf29ce4):016x}")
