"""The client of thaw serve's admin API (docs/api.md):

    thaw deploy [DIR] --to URL      sync, bundle, upload, wait for the build
    thaw list --to URL
    thaw delete NAME --to URL
    thaw rollback NAME [--version N] --to URL
    thaw tail NAME --to URL [--format json|pretty]

The token comes from --token or THAW_API_TOKEN; URL also from THAW_URL.
"""
import http.client
import json
import os
import re
import struct
import sys
import time
import urllib.parse

from .project import ToolError, read_config

MAGIC = b"THAWBND1"
MAX_BUNDLE = 100 * 1024 * 1024
# never uploaded: tool state, caches, VCS data, and `thaw dev`'s local
# secrets and data (.dev.vars, .thaw/)
SKIP_DIRS = {".git", ".hg", ".svn", ".thaw", "__pycache__", ".venv", "venv",
             "node_modules", ".wrangler", ".mypy_cache", ".pytest_cache"}
SKIP_FILES = {".dev.vars", ".DS_Store"}
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def parse_args(argv, positional, flags):
    """(positionals, {flag: value}); flags maps '--x' to a default."""
    pos, opts = [], dict(flags)
    opts.setdefault("--to", os.environ.get("THAW_URL"))
    opts.setdefault("--token", os.environ.get("THAW_API_TOKEN"))
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--"):
            key, eq, val = a.partition("=")
            if key not in opts:
                raise ToolError(f"unknown option {key}")
            if not eq:
                if i + 1 >= len(argv):
                    raise ToolError(f"{key} needs a value")
                i += 1
                val = argv[i]
            opts[key] = val
        else:
            pos.append(a)
        i += 1
    if len(pos) > positional:
        raise ToolError(f"unexpected argument {pos[positional]!r}")
    if not opts["--to"]:
        raise ToolError("say where thaw serve's admin API is: --to http://HOST:8788 "
                        "(or THAW_URL)")
    if not opts["--token"]:
        raise ToolError("no API token: pass --token or set THAW_API_TOKEN (thaw serve "
                        "writes one into STATE/token on its first start)")
    return pos, opts


class Api:
    def __init__(self, url, token):
        u = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
        if u.scheme not in ("http", "https"):
            raise ToolError(f"--to {url}: want http://HOST:PORT")
        self.scheme, self.netloc, self.token = u.scheme, u.netloc, token
        self.base = u.path.rstrip("/")

    def conn(self, timeout):
        cls = http.client.HTTPSConnection if self.scheme == "https" else \
            http.client.HTTPConnection
        return cls(self.netloc, timeout=timeout)

    def request(self, method, path, body=None, timeout=300, stream=False):
        c = self.conn(timeout)
        headers = {"Authorization": f"Bearer {self.token}"}
        if body is not None:
            headers["Content-Type"] = "application/octet-stream"
        try:
            c.request(method, self.base + path, body=body, headers=headers)
            r = c.getresponse()
        except OSError as e:
            raise ToolError(f"cannot reach thaw serve at {self.scheme}://{self.netloc}: "
                            f"{e}") from None
        if stream and r.status == 200:
            return r
        data = r.read()
        try:
            doc = json.loads(data)
        except ValueError:
            doc = {"error": data.decode("utf-8", "replace").strip()}
        if r.status != 200:
            raise ApiError(r.status, doc)
        return doc


class ApiError(ToolError):
    def __init__(self, status, doc):
        self.status, self.doc = status, doc
        super().__init__(f"{doc.get('error', 'error')} (HTTP {status})")


def bundle(d):
    """The worker directory as a bundle (format: docs/api.md)."""
    out = [MAGIC]
    count = total = 0
    for root, dirs, files in os.walk(d):
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS
                         and not os.path.islink(os.path.join(root, x)))
        for f in sorted(files):
            p = os.path.join(root, f)
            if f in SKIP_FILES or f.endswith(".pyc") or not os.path.isfile(p) \
                    or os.path.islink(p):
                continue
            rel = os.path.relpath(p, d).replace(os.sep, "/")
            with open(p, "rb") as fh:
                data = fh.read()
            name = rel.encode("utf-8")
            out.append(struct.pack("<I", len(name)) + name +
                       struct.pack("<BI", 1 if os.access(p, os.X_OK) else 0, len(data)))
            out.append(data)
            count += 1
            total += len(data)
            if total > MAX_BUNDLE:
                raise ToolError(f"{d} holds over {MAX_BUNDLE >> 20} MiB of files: too big "
                                f"to deploy")
    return b"".join(out), count


def human(n):
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def deploy(argv):
    pos, o = parse_args(argv, 1, {})
    d = os.path.abspath(pos[0] if pos else ".")
    if not os.path.isdir(d):
        raise ToolError(f"{d} is not a directory")
    path, cfg = read_config(d)
    name = cfg.get("name") or os.path.basename(d)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ToolError(f"{path}: `name` {name!r} is not a valid worker name: 1 to 63 of "
                        "a-z, 0-9 and '-', not starting or ending with '-'")
    if os.path.isfile(os.path.join(d, "pyproject.toml")):
        from . import sync
        rc = sync.main([d, "--quiet"])
        if rc:
            return rc
    t0 = time.monotonic()
    data, count = bundle(d)
    print(f"Bundled {name}: {count} files, {human(len(data))}", flush=True)
    api = Api(o["--to"], o["--token"])
    print(f"Uploading to {api.scheme}://{api.netloc} and building its template...",
          flush=True)
    try:
        doc = api.request("PUT", f"/v1/workers/{name}", body=data)
    except ApiError as e:
        print(f"thaw deploy: {name} was not deployed: {e.doc.get('error')}", file=sys.stderr)
        if e.doc.get("traceback"):
            print(e.doc["traceback"].rstrip("\n"), file=sys.stderr)
        return 1
    print(f"Template built in {doc['build_ms']:.0f} ms (top level {doc['top_level_ms']:.0f}"
          f" ms)")
    print(f"Deployed {name} version {doc['version']} in "
          f"{(time.monotonic() - t0) * 1000:.0f} ms", flush=True)
    return 0


def list_(argv):
    _, o = parse_args(argv, 0, {})
    doc = Api(o["--to"], o["--token"]).request("GET", "/v1/workers", timeout=30)
    rows = doc["workers"]
    if not rows:
        print("no workers deployed")
        return 0
    print(f"{'NAME':24} {'VERSION':>7} {'STATE':10} ROUTES")
    for w in sorted(rows, key=lambda w: w["name"]):
        routes = ", ".join(w["routes"]) or w["host"]
        print(f"{w['name']:24} {w['version']:>7} {w['state']:10} {routes}")
    return 0


def need_name(pos, cmd):
    if not pos:
        raise ToolError(f"usage: thaw {cmd} NAME --to URL")
    return pos[0]


def delete(argv):
    pos, o = parse_args(argv, 1, {})
    name = need_name(pos, "delete")
    Api(o["--to"], o["--token"]).request("DELETE", f"/v1/workers/{name}", timeout=30)
    print(f"Deleted {name}")
    return 0


def rollback(argv):
    pos, o = parse_args(argv, 1, {"--version": None})
    name = need_name(pos, "rollback")
    body = {}
    if o["--version"] is not None:
        try:
            body["version"] = int(o["--version"])
        except ValueError:
            raise ToolError(f"--version wants a number, got {o['--version']!r}") from None
    try:
        doc = Api(o["--to"], o["--token"]).request(
            "POST", f"/v1/workers/{name}/rollback", body=json.dumps(body).encode())
    except ApiError as e:
        print(f"thaw rollback: {e}", file=sys.stderr)
        if e.doc.get("traceback"):
            print(e.doc["traceback"].rstrip("\n"), file=sys.stderr)
        return 1
    print(f"Rolled {name} back to version {doc['version']}")
    return 0


def pretty(line):
    try:
        e = json.loads(line)
    except ValueError:
        return line
    if e.get("type") == "log":  # the worker's print() / logging
        req = e.get("request")
        return f"{e.get('time', '')}   (log{f' req={req}' if req is not None else ''}) " \
               f"{e.get('message', '')}"
    if e.get("type") == "dropped":
        return f"... {e.get('count')} line(s) dropped: this client read too slowly"
    if e.get("event") == "scheduled":
        return (f"{e.get('time', '')} scheduled \"{e.get('cron', '')}\" -> "
                f"{e.get('status', '')} in {e.get('duration_ms', 0):.1f} ms")
    return (f"{e.get('time', '')} {e.get('method', '')} {e.get('path', '')} -> "
            f"{e.get('status', '')} in {e.get('duration_ms', 0):.1f} ms "
            f"({e.get('start', '')})")


def tail(argv):
    pos, o = parse_args(argv, 1, {"--format": "json"})
    name = need_name(pos, "tail")
    if o["--format"] not in ("json", "pretty"):
        raise ToolError("--format is json or pretty")
    r = Api(o["--to"], o["--token"]).request("GET", f"/v1/workers/{name}/tail",
                                            timeout=None, stream=True)
    print(f"Tailing {name} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    while True:
        line = r.readline()
        if not line:
            return 0
        text = line.decode("utf-8", "replace").rstrip("\n")
        print(pretty(text) if o["--format"] == "pretty" else text, flush=True)


COMMANDS = {"deploy": deploy, "list": list_, "delete": delete, "rollback": rollback,
            "tail": tail}


def main(cmd, argv):
    return COMMANDS[cmd](argv)
