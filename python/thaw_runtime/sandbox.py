"""The Python side of the sandbox (src/sandbox/): which paths a worker may
read, and the calls a template and an instance make right after their
fork. docs/security.md describes the layers."""
import errno
import json
import os
import shutil
import sys
import tempfile
import time

import _thaw

# Files outside the trees below that Python reads at run time.
_HOST_FILES = ("/etc/localtime", "/etc/timezone", "/etc/mime.types")
# The stdlib, the built-in package set and the shared libraries their C
# extensions load; nothing secret lives there.
_SYSTEM_TREES = ("/usr", "/lib", "/lib64")
# TLS: the system's CA store (public certificates) and OpenSSL's config.
# Not /etc/ssl as a whole: /etc/ssl/private holds the host's private keys.
_CA_STORE = ("/etc/ssl/certs", "/etc/ssl/openssl.cnf", "/etc/pki/tls/certs",
             "/etc/ca-certificates")

_MAX_PATHS = 64     # THAW_SB_MAX_PATHS in src/sandbox/sandbox.h
_opts = None        # the template's settings, None when unsandboxed
_shared = None      # (read, keep, covers): the paths of every worker, from the zygote
_tmp_by_pid = {}    # instance pid -> its tmp directory (the template removes it)


# THAW_SB_TIMING=1: one line per template to stderr with the time of each
# step of its build (src/sandbox/timing.h prints the sandbox's own steps);
# docs/performance.md reads them.
TIMING = os.environ.get("THAW_SB_TIMING") == "1"


class Clock:
    """Phase timings of one template build, printed as one line."""

    def __init__(self, what, name, start_ns=None):
        self.t0 = self.last = start_ns or time.monotonic_ns()
        self.parts = [f"[thaw] sb-timing {what} {name} pid {os.getpid()}:"]

    def mark(self, phase):
        now = time.monotonic_ns()
        self.parts.append(f"{phase} {(now - self.last) / 1e6:.2f}")
        self.last = now

    def print(self):
        self.parts.append(f"total {(time.monotonic_ns() - self.t0) / 1e6:.2f} ms")
        os.write(2, (" ".join(self.parts) + "\n").encode())


fork_ns = None      # when the zygote forked this template (timing only)
# the control socket of this version's pid namespace's init (a template:
# inherited from the zygote; src/sandbox/keeper.c), None when unsandboxed
keeper_ctl = None


def hold_channel(fd):
    """Before an instance's fork: the init keeps the version's namespace
    while the supervisor keeps this channel open."""
    if keeper_ctl is not None:
        _thaw.pidns_hold(keeper_ctl, fd)


def instance_closes():
    """What an instance must not inherit from its template."""
    return [keeper_ctl] if keeper_ctl is not None else []


def _existing(paths):
    out = []
    for p in paths:
        if p and os.path.exists(p):
            p = os.path.realpath(p)
            if p not in out:
                out.append(p)
    return out


def _uncovered(paths, covers):
    """paths without those beneath one of covers: a read rule on /usr
    already covers /usr/lib/python3.11, and every rule costs each template
    and instance an open and a landlock_add_rule. covers are paths a
    template surely sees (the system trees and the kept paths), never one
    its mounts hide, whose rule would be skipped."""
    return [p for p in paths
            if not any(q != p and (p.startswith(q + "/") or q == "/") for q in covers)]


def _merge(*lists):
    """The resolved paths of lists, each once, in order."""
    out = []
    for paths in lists:
        out += [p for p in paths if p not in out]
    return out


def _ca_paths():
    """What ssl.create_default_context() (and certifi, requests) read, where
    it lies outside the system trees. Read-only, like everything here."""
    import ssl
    v = ssl.get_default_verify_paths()
    paths = list(_CA_STORE) + [v.cafile, v.capath, v.openssl_cafile, v.openssl_capath,
                                os.environ.get(v.openssl_cafile_env),
                                os.environ.get(v.openssl_capath_env)]
    try:
        import certifi
        paths.append(certifi.where())
    except Exception:  # not installed: nothing to allow
        pass
    return paths


def _sdk_dir():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def prepare():
    """Resolves, once in the zygote, the paths every worker may read (the
    system trees, the CA store, certifi, thaw's SDK, sys.path): templates
    inherit the list and resolve only their own bundle and CA file, which
    saves each template about 2 ms (importing certifi, stat and realpath
    of some 20 paths). The zygote sees the host's files as its templates
    do (a template's own mounts come after this list is used)."""
    global _shared
    if not _thaw.sandbox_active():
        return
    keep = _existing([_sdk_dir()] + [p for p in sys.path if p])
    covers = _existing(_SYSTEM_TREES) + keep
    read = _existing(list(_SYSTEM_TREES) + list(_HOST_FILES) + _ca_paths() + keep)
    _shared = (_uncovered(read, covers), keep, covers)


def _own_ca(ca, bundle, tenant):
    """The CA file's read rule. Under thaw serve (tenant) only one inside
    the bundle, after symlinks: the deploy refused any other
    (src/serve/tenant-paths.c), and were that check ever bypassed, a
    ca_file naming the admin token or a neighbour's secrets must still
    not become readable. In thaw dev the developer's CA file may lie
    anywhere."""
    if not tenant:
        return ca
    return [p for p in ca
            if any(p == b or p.startswith(b.rstrip("/") + "/") for b in bundle)]


def template(name, wdir, sandbox_json, ca_file=None, clock=None):
    """Sandboxes a freshly forked template, before the worker's top level
    runs; ca_file: the worker's thaw.egress.ca_file (absolute) or None;
    clock: a Clock when THAW_SB_TIMING is on. Raises OSError naming the
    step that failed."""
    global _opts
    opts = json.loads(sandbox_json or "{}")
    if not opts.get("on") or not _thaw.sandbox_active():
        return
    if _shared is None:
        raise OSError("sandbox: the zygote did not resolve the shared read paths")
    shared_read, shared_keep, covers = _shared
    # the worker's own: its bundle and its thaw.egress.ca_file, read-only
    # like the rest
    bundle = _existing([wdir])
    ca = _own_ca(_existing([ca_file]), bundle, opts.get("tenant"))
    # kept visible where they lie under a path the sandbox hides (/tmp,
    # /home, ...): the bundle, the SDK, sys.path and the CA file, in this
    # order (a CA file inside the bundle is visible once the bundle is)
    keep = _merge(bundle, shared_keep, ca)
    read = _uncovered(_merge(bundle, ca, shared_read), covers + bundle)
    if clock:
        clock.mark("paths")
    for what, paths in (("readable", read), ("kept", keep)):
        if len(paths) > _MAX_PATHS:
            # never cut the list: a path left out would be unreadable
            # (or hidden) without a word
            raise OSError(errno.E2BIG, f"the sandbox takes at most {_MAX_PATHS} {what} "
                                       f"paths and this worker needs {len(paths)} "
                                       f"(sys.path entries and the bundle): "
                                       f"{', '.join(paths)}")
    _thaw.sandbox_template(name, read, keep, int(opts["tmp_bytes"]),
                           int(opts["nproc"]), int(opts["nofile"]), int(opts["fsize"]),
                           int(opts["as_bytes"]), int(opts.get("uid") or 0),
                           opts.get("memcg", ""))
    if clock:
        clock.mark("sandbox")
    _opts = opts
    tempfile.tempdir = None
    # thaw's stdout carries only its own lines; a worker writing to fd 1
    # lands in the log like its print()
    os.dup2(2, 1)


def instance(iid):
    """Sandboxes a freshly forked instance: its own directory under the
    worker's private /tmp, which is all it may write."""
    if _opts is None:
        return
    tmp = f"/tmp/i{iid}"
    os.mkdir(tmp, 0o700)
    _thaw.sandbox_instance(tmp)
    os.environ["TMPDIR"] = tmp
    tempfile.tempdir = tmp


def forked(pid, iid):
    """The template remembers each instance's directory ..."""
    if _opts is not None:
        _tmp_by_pid[pid] = f"/tmp/i{iid}"


def reaped(pid):
    """... and removes it when the instance is gone."""
    tmp = _tmp_by_pid.pop(pid, None)
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
