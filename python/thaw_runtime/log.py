"""Worker-tagged lines on thaw's log (stderr, shared with the supervisor)."""
import os
import sys
import traceback

_HERE = os.path.dirname(os.path.abspath(__file__))


def log_lines(tag, text):
    """thaw's own lines about a worker; the output module adds the tag (and
    the request, when there is one)."""
    sys.stderr.write(text.rstrip("\n") + "\n")
    sys.stderr.flush()


def user_traceback(exc):
    """The traceback without thaw's own frames: the user's code is what
    the reader needs to see."""
    te = traceback.TracebackException.from_exception(exc)
    te.stack = traceback.StackSummary.from_list(
        [f for f in te.stack
         if not f.filename.startswith(_HERE) and "importlib._bootstrap" not in f.filename])
    return "".join(te.format())


def log_exception(tag, exc):
    log_lines(tag, user_traceback(exc))
