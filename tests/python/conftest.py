# Make the in-repo Python packages (workers, js, thaw_runtime) importable
# without installing anything, and the modules `make` builds for them
# (build/py: _thaw_fast, which thaw-zygote has built in).
import os
import sys

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
for _dir in (os.path.join(_ROOT, "build", "py"), os.path.join(_ROOT, "python")):
    if _dir not in sys.path:
        sys.path.insert(0, _dir)
