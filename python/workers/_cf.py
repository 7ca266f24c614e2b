"""`request.cf` of a request thaw received: Cloudflare's
IncomingRequestCfProperties, holding what a server of its own knows.

Cloudflare's edge fills most fields (where the client is, its network,
the TLS handshake it made with the edge, bot scores); thaw sees a TCP
connection and an HTTP request, nothing more, and does not make values up.
Reading a field thaw does not have names it and says why
(docs/python-api.md has the table).
"""
from pyodide._values import JsObject

# Cloudflare's fields that thaw leaves out, by why
_GEO = ("asn", "asOrganization", "city", "colo", "continent", "country", "isEUCountry",
        "latitude", "longitude", "metroCode", "postalCode", "region", "regionCode",
        "timezone")
_TLS = ("tlsCipher", "tlsClientAuth", "tlsClientCiphersSha1", "tlsClientExtensionsSha1",
        "tlsClientExtensionsSha1Le", "tlsClientHelloLength", "tlsClientRandom",
        "tlsExportedAuthenticator", "tlsVersion")
_EDGE = ("botManagement", "clientQuicRtt", "clientTcpRtt", "edgeRequestKeepAliveStatus",
         "hostMetadata", "requestPriority", "verifiedBotCategory")
_WHY = dict([(k, "Cloudflare's network locates the client; thaw has no location data")
             for k in _GEO]
            + [(k, "TLS ends in front of thaw (thaw serves plain HTTP), so it never "
                   "sees the handshake") for k in _TLS]
            + [(k, "Cloudflare's edge measures or scores it; thaw does not")
               for k in _EDGE])


class IncomingCf(JsObject):
    """request.cf: fields as attributes and items (a JS object from
    Python), `.get(name)` None for a missing one."""

    __slots__ = ()

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            pass
        why = _WHY.get(name)
        if why is None:
            raise AttributeError(name)
        raise AttributeError(
            f"request.cf.{name} is not set by thaw: {why}. thaw sets "
            f"{', '.join(sorted(self))}; use request.cf.get({name!r}) where it may be "
            f"absent (docs/python-api.md, request.cf)")


def incoming_cf(request):
    cf = IncomingCf()
    cf["httpProtocol"] = "HTTP/" + getattr(request, "_thaw_http_version", "1.1")
    accept = request.headers.get("accept-encoding")
    if accept is not None:
        # Cloudflare rewrites Accept-Encoding and keeps the client's here;
        # thaw passes the header on as it came
        cf["clientAcceptEncoding"] = accept
    return cf
