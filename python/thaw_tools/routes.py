"""`thaw routes`: the route grants of a thaw serve (docs/api.md "Routing").

    thaw routes list [NAME] --to URL
    thaw routes grant NAME PATTERN... --to URL
    thaw routes revoke NAME [PATTERN...] --to URL     (no pattern: all of NAME's)

A worker always answers at NAME.DOMAIN; any other route in its config must
lie within a grant. Grants given here are kept in the state directory;
those of the operator config ([routes] of `thaw serve --config`) are
listed too but changed only there.
"""
import json
import sys

from .project import ToolError
from .remote import Api, ApiError, NAME_RE, parse_args

USAGE = ("usage: thaw routes list [NAME] | grant NAME PATTERN... | revoke NAME [PATTERN...]"
         " --to URL")


def show(doc):
    print(f"{doc['name']}: answers at {doc['host']}")
    for key, what in (("grants", "granted (API)"), ("config", "granted (operator config)"),
                      ("shared", "claimable by any worker (operator config)"),
                      ("routes", "held now")):
        items = doc.get(key) or []
        print(f"  {what + ':':44} {', '.join(items) if items else '-'}")


def main(argv):
    if not argv or argv[0] not in ("list", "grant", "revoke"):
        raise ToolError(USAGE)
    sub, rest = argv[0], argv[1:]
    pos, o = parse_args(rest, 1 << 16, {})
    api = Api(o["--to"], o["--token"])
    if sub == "list" and not pos:
        doc = api.request("GET", "/v1/grants", timeout=30)
        names = sorted(set(doc["grants"]) | set(doc["config"]))
        if not names:
            print("no route grants: every worker answers only at its NAME.DOMAIN")
            return 0
        for name in names:
            pats = doc["grants"].get(name, []) + doc["config"].get(name, [])
            label = "(any worker)" if name == "*" else name
            print(f"{label:24} {', '.join(pats)}")
        return 0
    if not pos:
        raise ToolError(USAGE)
    name, patterns = pos[0], pos[1:]
    if not NAME_RE.match(name):
        raise ToolError(f"{name!r} is not a worker name: 1 to 63 of a-z, 0-9 and '-'")
    path = f"/v1/workers/{name}/grants"
    if sub == "list":
        if patterns:
            raise ToolError(USAGE)
        show(api.request("GET", path, timeout=30))
        return 0
    if sub == "grant" and not patterns:
        raise ToolError("usage: thaw routes grant NAME PATTERN... --to URL "
                        "(a pattern like shop.example.com/* or example.com/shop/*)")
    body = json.dumps({"patterns": patterns}).encode() if patterns else None
    try:
        doc = api.request("POST" if sub == "grant" else "DELETE", path, body=body, timeout=30)
    except ApiError as e:
        print(f"thaw routes {sub}: {e}", file=sys.stderr)
        return 1
    show(doc)
    return 0
