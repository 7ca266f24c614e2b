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


def user_frames(stack):
    """A StackSummary without thaw's own frames: the user's code is what
    the reader needs to see."""
    return traceback.StackSummary.from_list(
        [f for f in stack
         if not f.filename.startswith(_HERE) and "importlib._bootstrap" not in f.filename])


def user_traceback(exc):
    """The traceback of exc without thaw's own frames."""
    te = traceback.TracebackException.from_exception(exc)
    te.stack = user_frames(te.stack)
    return "".join(te.format())


def log_exception(tag, exc):
    log_lines(tag, user_traceback(exc))
