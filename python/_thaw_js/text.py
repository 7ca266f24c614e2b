"""TextEncoder, TextDecoder, btoa and atob."""
import base64
import binascii
import codecs

from workers._bind import JsException

from . import New
from .values import Uint8Array


class TextEncoder(New):
    encoding = "utf-8"

    def encode(self, text=""):
        return Uint8Array(str(text).encode("utf-8", "surrogatepass"))


class TextDecoder(New):
    def __init__(self, label="utf-8", options=None):
        try:
            self.encoding = codecs.lookup(str(label)).name.replace("_", "-")
        except LookupError:
            raise ValueError(f"RangeError: TextDecoder: unknown encoding {label!r}") from None
        options = options or {}
        self.fatal = bool(options.get("fatal", False))
        self.ignoreBOM = bool(options.get("ignoreBOM", False))

    def decode(self, data=None, options=None):
        if data is None:
            return ""
        raw = memoryview(data).tobytes()
        codec = "utf-8-sig" if self.encoding == "utf-8" and not self.ignoreBOM else self.encoding
        try:
            return raw.decode(codec, "strict" if self.fatal else "replace")
        except UnicodeDecodeError as e:
            raise TypeError(f"TextDecoder: the data is not valid {self.encoding} ({e})") \
                from None


def btoa(data):
    """Base64 of a string of code points 0-255, as JS's."""
    try:
        raw = str(data).encode("latin-1")
    except UnicodeEncodeError:
        raise JsException("InvalidCharacterError",
                          "btoa: the string has characters outside Latin-1 (encode "
                          "the text to bytes and use base64.b64encode)") from None
    return base64.b64encode(raw).decode("ascii")


def atob(data):
    """The string of code points 0-255 that base64 data encodes, as JS's
    (ASCII whitespace ignored, padding optional)."""
    text = "".join(str(data).split())
    if len(text) % 4 == 0 and text.endswith("="):
        text = text[:-2] if text.endswith("==") else text[:-1]
    if len(text) % 4 == 1 or "=" in text:
        raise JsException("InvalidCharacterError", "atob: the string is not valid base64")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise JsException("InvalidCharacterError",
                          "atob: the string is not valid base64") from None
    return raw.decode("latin-1")
