"""Worker-tagged lines on thaw's log (stderr, shared with the supervisor)."""
import sys
import traceback


def log_lines(tag, text):
    out = "".join(f"[{tag}] {line}\n" for line in text.rstrip("\n").split("\n"))
    sys.stderr.write(out)
    sys.stderr.flush()


def log_exception(tag, exc):
    log_lines(tag, "".join(traceback.format_exception(exc)))
