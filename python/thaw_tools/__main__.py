"""`python3 -m thaw_tools sync|init|types|d1 ARGS...`, run by `build/thaw`
(src/cli/tools.c) with Debian's /usr/bin/python3."""
import sys

from .project import ToolError

COMMANDS = ("sync", "init", "types", "d1", "deploy", "list", "delete", "rollback", "tail",
            "routes")


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        print("usage: thaw sync|init|types|d1|deploy|list|delete|rollback|tail|routes [ARGS]",
              file=sys.stderr)
        return 2
    cmd, args = argv[0], argv[1:]
    if cmd in ("deploy", "list", "delete", "rollback", "tail"):
        from . import remote
        try:
            return remote.main(cmd, args)
        except ToolError as e:
            print(f"thaw {cmd}: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
    if cmd == "sync":
        from . import sync as mod
    elif cmd == "init":
        from . import init as mod
    elif cmd == "d1":
        from . import d1 as mod
    elif cmd == "routes":
        from . import routes as mod
    else:
        from . import types as mod
    try:
        return mod.main(args)
    except ToolError as e:
        print(f"thaw {cmd}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


sys.exit(main(sys.argv[1:]))
