"""crypto.randomUUID, crypto.getRandomValues and crypto.subtle.digest.
Randomness drawn at the worker's top level fails its deploy, as Python's
own (docs/python-api.md, entropy): these go through uuid and os.urandom."""
import hashlib
import os
import uuid

from pyodide._values import JsBuffer

from . import entropy_check

_DIGESTS = {"SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512",
            "MD5": "md5"}  # MD5: workerd's own addition
MAX_RANDOM_BYTES = 65536


def _bytes_of(data, what):
    if isinstance(data, str):
        raise TypeError(f"{what}: the data must be an ArrayBuffer or a typed array, not a "
                        f"str (encode it first: TextEncoder.new().encode(s) or s.encode())")
    try:
        return memoryview(data).tobytes()
    except TypeError:
        raise TypeError(f"{what}: the data must be an ArrayBuffer or a typed array, not "
                        f"{type(data).__name__}") from None


class SubtleCrypto:
    async def digest(self, algorithm, data):
        """The digest of data as an ArrayBuffer (a JsBuffer)."""
        name = algorithm.get("name") if hasattr(algorithm, "get") else algorithm
        algo = _DIGESTS.get(str(name).upper())
        if algo is None:
            raise NotImplementedError(
                f"crypto.subtle.digest: unrecognized algorithm {name!r}; it takes "
                f"{', '.join(_DIGESTS)}")
        return JsBuffer(hashlib.new(algo, _bytes_of(data, "crypto.subtle.digest")).digest())

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotImplementedError(
            f"crypto.subtle.{name} is not provided by thaw (digest is): use Python's "
            f"hashlib, hmac, secrets, or the `cryptography` package, which native "
            f"Python runs")


class Crypto:
    subtle = SubtleCrypto()

    @staticmethod
    def randomUUID():
        entropy_check("crypto.randomUUID()")
        return str(uuid.uuid4())

    @staticmethod
    def getRandomValues(array):
        """Fills the typed array (a JsBuffer / bytearray) with random bytes,
        in place, and returns it."""
        entropy_check("crypto.getRandomValues()")
        if not isinstance(array, bytearray):
            raise TypeError("crypto.getRandomValues: the argument must be an integer "
                            "typed array (Uint8Array.new(n) or to_js(bytearray(n)))")
        if len(array) > MAX_RANDOM_BYTES:
            raise ValueError(f"QuotaExceededError: crypto.getRandomValues takes at most "
                             f"{MAX_RANDOM_BYTES} bytes, not {len(array)}")
        array[:] = os.urandom(len(array))
        return array


crypto = Crypto()
