"""URL and URLSearchParams (WHATWG names), over urllib.parse."""
from urllib.parse import quote, quote_plus, unquote_plus, urljoin, urlsplit, urlunsplit

from pyodide._values import JsArray
from workers._formdata import set_pair

from . import New

_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443", "ftp": "21"}
_SPECIAL = frozenset(_DEFAULT_PORTS) | {"file"}
# what WHATWG leaves as it is in each part (the rest is %-encoded as UTF-8;
# an existing %XX stays)
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = "!$%&()*+,-./:;=?@[\\]^_`{|}~"
_FRAGMENT_SAFE = "!#$%&'()*+,-./:;=?@[\\]^_{|}~"


def _form_encode(s):
    # the application/x-www-form-urlencoded set: all but alphanumerics and *-._
    return quote_plus(str(s), safe="*").replace("~", "%7E")


class URLSearchParams(New):
    """Query parameters: get, getAll, set, append, delete, has, sort,
    toString; iterating gives [name, value] pairs, as in JS."""

    def __init__(self, init=None, _url=None):
        self._pairs = []
        self._url = _url
        if init is None:
            return
        if isinstance(init, URLSearchParams):
            self._pairs = list(init._pairs)
        elif isinstance(init, str):
            self._parse(init)
        elif hasattr(init, "items"):
            self._pairs = [(str(k), str(v)) for k, v in init.items()]
        else:
            for pair in init:
                pair = list(pair)
                if len(pair) != 2:
                    raise TypeError("URLSearchParams: each pair must have exactly two items")
                self._pairs.append((str(pair[0]), str(pair[1])))

    def _parse(self, query):
        self._pairs = []
        for part in query[1:].split("&") if query.startswith("?") else query.split("&"):
            if part:
                name, _, value = part.partition("=")
                self._pairs.append((unquote_plus(name), unquote_plus(value)))

    def _update(self):
        if self._url is not None:
            self._url._set_query(self.toString())

    def get(self, name):
        for k, v in self._pairs:
            if k == name:
                return v
        return None

    def getAll(self, name):
        return JsArray(v for k, v in self._pairs if k == name)

    def has(self, name, value=None):
        return any(k == name and (value is None or v == str(value)) for k, v in self._pairs)

    def append(self, name, value):
        self._pairs.append((str(name), str(value)))
        self._update()

    def set(self, name, value):
        self._pairs = set_pair(self._pairs, str(name), str(value))
        self._update()

    def delete(self, name, value=None):
        self._pairs = [(k, v) for k, v in self._pairs
                       if not (k == name and (value is None or v == str(value)))]
        self._update()

    def sort(self):
        self._pairs.sort(key=lambda kv: kv[0])  # stable, as JS's
        self._update()

    @property
    def size(self):
        return len(self._pairs)

    def keys(self):
        return iter([k for k, _ in self._pairs])

    def values(self):
        return iter([v for _, v in self._pairs])

    def entries(self):
        return iter([JsArray(kv) for kv in self._pairs])

    __iter__ = entries

    def forEach(self, fn):
        for k, v in list(self._pairs):
            fn(v, k, self)

    def toString(self):
        return "&".join(f"{_form_encode(k)}={_form_encode(v)}" for k, v in self._pairs)

    __str__ = toString

    def _thaw_body(self):
        """As a Request or Response body (workers/_body.py), as in JS."""
        return self.toString().encode("ascii"), "application/x-www-form-urlencoded;charset=UTF-8"

    def __repr__(self):
        return f"URLSearchParams({self.toString()!r})"


class URL(New):
    """A parsed absolute URL: href, origin, protocol, username, password,
    host, hostname, port, pathname, search, hash, searchParams."""

    def __init__(self, url, base=None):
        url = str(getattr(url, "href", url))
        if base is not None:
            base = str(getattr(base, "href", base))
            if not urlsplit(base).scheme:
                raise TypeError(f"Invalid base URL: {base}")
            url = urljoin(base, url)
        parts = urlsplit(url.strip())
        if not parts.scheme or (parts.scheme.lower() in _SPECIAL - {"file"}
                                and not parts.netloc):
            raise TypeError(f"Invalid URL: {url}")
        try:
            port = parts.port
        except ValueError:
            raise TypeError(f"Invalid URL: {url} (bad port)") from None
        self._scheme = parts.scheme.lower()
        self._username = parts.username or ""
        self._password = parts.password or ""
        self._hostname = (parts.hostname or "").lower()
        self._port = "" if port is None or str(port) == _DEFAULT_PORTS.get(self._scheme) \
            else str(port)
        path = quote(parts.path, safe=_PATH_SAFE)
        self._path = path or ("/" if self._scheme in _SPECIAL else "")
        self._query = quote(parts.query, safe=_QUERY_SAFE)
        self._fragment = quote(parts.fragment, safe=_FRAGMENT_SAFE)
        self._params = URLSearchParams(self._query, _url=self)

    @staticmethod
    def canParse(url, base=None):
        try:
            URL(url, base)
        except TypeError:
            return False
        return True

    @staticmethod
    def parse(url, base=None):
        try:
            return URL(url, base)
        except TypeError:
            return None

    def _set_query(self, query):
        self._query = query

    @property
    def protocol(self):
        return self._scheme + ":"

    @protocol.setter
    def protocol(self, value):
        self._scheme = str(value).rstrip(":").lower()

    @property
    def username(self):
        return self._username

    @property
    def password(self):
        return self._password

    @property
    def hostname(self):
        return self._hostname

    @hostname.setter
    def hostname(self, value):
        self._hostname = str(value).lower()

    @property
    def port(self):
        return self._port

    @port.setter
    def port(self, value):
        value = str(value)
        self._port = "" if value == _DEFAULT_PORTS.get(self._scheme) else value

    @property
    def host(self):
        return self._hostname + (":" + self._port if self._port else "")

    @host.setter
    def host(self, value):
        name, _, port = str(value).partition(":")
        self.hostname = name
        self.port = port

    @property
    def origin(self):
        if self._scheme not in _DEFAULT_PORTS:
            return "null"
        return f"{self._scheme}://{self.host}"

    @property
    def pathname(self):
        return self._path

    @pathname.setter
    def pathname(self, value):
        value = quote(str(value), safe=_PATH_SAFE)
        self._path = value if value.startswith("/") or not value else "/" + value

    @property
    def search(self):
        return "?" + self._query if self._query else ""

    @search.setter
    def search(self, value):
        value = str(value)
        self._query = quote(value[1:] if value.startswith("?") else value, safe=_QUERY_SAFE)
        self._params._parse(self._query)

    @property
    def searchParams(self):
        return self._params

    @property
    def hash(self):
        return "#" + self._fragment if self._fragment else ""

    @hash.setter
    def hash(self, value):
        value = str(value)
        self._fragment = quote(value[1:] if value.startswith("#") else value,
                               safe=_FRAGMENT_SAFE)

    @property
    def href(self):
        auth = ""
        if self._username or self._password:
            auth = self._username + (":" + self._password if self._password else "") + "@"
        netloc = auth + self.host
        if not netloc and self._scheme == "file":
            return f"file://{self._path}{self.search}{self.hash}"
        return urlunsplit((self._scheme, netloc, self._path, self._query, self._fragment))

    @href.setter
    def href(self, value):
        self.__init__(value)

    def toString(self):
        return self.href

    toJSON = toString
    __str__ = toString

    def __repr__(self):
        return f"URL({self.href!r})"

    def __eq__(self, other):
        return isinstance(other, URL) and other.href == self.href

    __hash__ = None
