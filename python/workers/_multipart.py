"""Form bodies: multipart/form-data (RFC 7578) written and read, and
application/x-www-form-urlencoded read, as the Workers runtime does it.

The errors are TypeErrors with the Workers runtime's own messages, so code
that matches on them (or a user reading them) finds what Cloudflare says.
"""
import os
import re
from urllib.parse import parse_qsl

FORM_DATA = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"
# a part's header block ends at a blank line (CRLF or LF alone)
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_UTF8 = ("utf-8", "utf8", "unicode-1-1-utf-8")

NO_TYPE = "Parsing a Body as FormData requires a Content-Type header."
BAD_TYPE = ("Unrecognized Content-Type header value. FormData can only parse the "
            f"following MIME types: {FORM_DATA}, {URLENCODED}")
NO_BOUNDARY = ("No boundary string in Content-Type header. The multipart/form-data MIME "
               "type requires a boundary parameter, e.g. 'Content-Type: "
               "multipart/form-data; boundary=\"abcd\"'. See RFC 7578, section 4.")


def media_type(value):
    """'Type/Sub; a=1; b="x y"' -> ('type/sub', {'a': '1', 'b': 'x y'})."""
    kind, _, rest = value.partition(";")
    params = {}
    while rest:
        item, rest = _next_param(rest)
        name, eq, val = item.partition("=")
        name = name.strip().lower()
        if eq and name and name not in params:
            params[name] = val
    return kind.strip().lower(), params


def _next_param(text):
    """The first `name=value` of text (value unquoted), and what follows it."""
    name, eq, rest = text.partition("=")
    if not eq:
        return name, ""
    rest = rest.lstrip()
    if not rest.startswith('"'):
        value, _, rest = rest.partition(";")
        return f"{name}={value.strip()}", rest
    out, i = [], 1
    while i < len(rest) and rest[i] != '"':
        if rest[i] == "\\" and i + 1 < len(rest):
            i += 1
        out.append(rest[i])
        i += 1
    _, _, rest = rest[i + 1:].partition(";")
    return f"{name}={''.join(out)}", rest


def parse(body, content_type, form, file_cls):
    """Fills `form` (a FormData) from a body with that Content-Type."""
    if not content_type:
        raise TypeError(NO_TYPE)
    kind, params = media_type(content_type)
    if kind == FORM_DATA:
        boundary = params.get("boundary")
        if not boundary:
            raise TypeError(NO_BOUNDARY)
        for name, value in _parts(body, boundary.encode("utf-8"), file_cls):
            form._entries.append((name, value))
    elif kind == URLENCODED:
        charset = params.get("charset")
        if charset is not None and charset.lower() not in _UTF8:
            raise TypeError("Non-utf-8 application/x-www-form-urlencoded body.")
        text = body.decode("utf-8", "replace")
        form._entries.extend(parse_qsl(text, keep_blank_values=True, errors="replace"))
    else:
        raise TypeError(BAD_TYPE)
    return form


def _parts(body, boundary, file_cls):
    """(name, str or File) for each part. Like the Workers runtime, a
    delimiter is matched after LF alone as well as CRLF."""
    delimiter = b"\n--" + boundary
    start = body.find(delimiter[1:])
    if start < 0:
        raise TypeError("No initial boundary string (or you have a truncated message).")
    pos = start + len(delimiter) - 1
    while True:
        if body.startswith(b"--", pos):
            return
        if body.startswith(b"\r\n", pos):
            pos += 2
        elif body.startswith(b"\n", pos):
            pos += 1
        else:
            raise TypeError("Boundary string was not succeeded by CRLF, LF, or '--'.")
        head = _HEAD_END.search(body, pos)
        if head is None:
            raise TypeError("No multipart message header termination found.")
        name, filename, ctype = _part_head(body[pos:head.start()])
        pos = head.end()
        end = body.find(delimiter, pos)
        if end < 0:
            raise TypeError("No subsequent boundary string after multipart message.")
        data = body[pos:end - 1] if end > pos and body[end - 1] == 13 else body[pos:end]
        if filename is None:
            yield name, data.decode("utf-8", "replace")
        else:
            yield name, file_cls._named(data, filename, ctype)
        pos = end + len(delimiter)


def _part_head(block):
    """(name, filename or None, content type or None) of one part."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        raise TypeError("FormData part had invalid headers.") from None
    disposition, ctype = None, None
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line:
            continue
        key, colon, value = line.partition(":")
        if not colon or not key or key != key.strip():
            raise TypeError("FormData part had invalid headers.")
        key = key.lower()
        if key == "content-disposition":
            disposition = value.strip()
        elif key == "content-type":
            ctype = value.strip()
    if disposition is None:
        raise TypeError("No valid Content-Disposition header found in FormData part.")
    kind, params = media_type(disposition)
    if kind != "form-data":
        raise TypeError('Content-Disposition header for FormData part must have the value '
                        f'"form-data", possibly followed by parameters. Got: "{kind}"')
    if "name" not in params:
        raise TypeError("Content-Disposition header in FormData part is missing a name.")
    return params["name"], params.get("filename"), ctype


def _quoted(value):
    # as the Workers runtime (and Chrome) escape a name in the header
    if value.endswith("\\"):
        raise TypeError("Name or filename can't end with backslash")
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\n", "%0A")


def encode(entries):
    """(body bytes, Content-Type) of a multipart/form-data body."""
    boundary = "----thawformdata" + os.urandom(12).hex()
    dash = b"--" + boundary.encode("ascii")
    out = []
    for name, value in entries:
        head = f'Content-Disposition: form-data; name="{_quoted(name)}"'
        if isinstance(value, str):
            out += [dash, b"\r\n", head.encode("utf-8"), b"\r\n\r\n", value.encode("utf-8")]
        else:
            head += (f'; filename="{_quoted(value.name)}"\r\n'
                     f"Content-Type: {value.type or 'application/octet-stream'}")
            out += [dash, b"\r\n", head.encode("utf-8"), b"\r\n\r\n", value._data]
        out.append(b"\r\n")
    out += [dash, b"--"]
    return b"".join(out), f"{FORM_DATA}; boundary={boundary}"
