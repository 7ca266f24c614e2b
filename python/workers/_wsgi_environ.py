"""The PEP 3333 environ of a workers.Request whose body was read."""
import io
import sys

from ._asgi_scope import HTTP_VERSION, Target, header_pairs


def build_environ(request, body, env):
    t = Target(request.url)
    environ = {
        "REQUEST_METHOD": request.method.upper(),
        "SCRIPT_NAME": "",
        # PEP 3333 "native strings": the decoded bytes, one char per byte
        "PATH_INFO": t.path_bytes().decode("latin-1"),
        "QUERY_STRING": t.query.decode("latin-1"),
        "RAW_URI": (t.raw_path + (b"?" + t.query if t.query else b"")).decode("latin-1"),
        "SERVER_NAME": t.host,
        "SERVER_PORT": str(t.port),
        "SERVER_PROTOCOL": "HTTP/" + getattr(request, "_thaw_http_version", HTTP_VERSION),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": t.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,  # reading to EOF is safe: it is all here
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "workers.env": env,
    }
    client = getattr(request, "_thaw_client", None)
    if client:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client[0], str(client[1])
    joined = {}
    for name, value in header_pairs(request):
        if "_" in name:
            # "x_user" and "x-user" would both become HTTP_X_USER: drop the
            # underscore form so a client cannot spoof a proxy's header
            continue
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
            continue
        if name == "content-length":
            continue  # set below from the body actually read
        key = "HTTP_" + name.upper().replace("-", "_")
        if key in joined:
            sep = "; " if name == "cookie" else ", "
            joined[key] = joined[key] + sep + value
        else:
            joined[key] = value
    environ.update(joined)
    # Chunked uploads have no Content-Length, but the body is complete now;
    # frameworks (Django) read exactly CONTENT_LENGTH bytes.
    if body or request.headers.has("content-length"):
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ
