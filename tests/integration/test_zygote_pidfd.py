"""The supervisor keeps the pidfd of every zygote it starts for as long as
the zygote lives, whatever it answered meanwhile (a build asked of it once
made thaw forget the fd: it could no longer signal the zygote, and the fd
leaked when the zygote exited). A worker with a zygote of its own
(`isolation = "per-worker"`) builds, serves and is deleted: its zygote is
signalled and gone, and its pidfd is closed."""
import os
import time

from servelib import project, serve_factory  # noqa: F401
from thawlib import thaw_processes, wait_for


def pidfds(pid):
    """{fd: pid it refers to (-1: the process is gone)} of thaw's pidfds."""
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[pidfd]":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("Pid:"):
                        out[int(fd)] = int(line.split()[1])
        except OSError:
            continue
    return out


def test_a_per_worker_zygote_keeps_its_pidfd_and_gives_it_back(serve_factory, tmp_path):
    srv = serve_factory(args=["--isolation", "per-worker"])
    zygotes_before = set(thaw_processes(srv.proc.pid, "thaw-zygote"))
    d = project(tmp_path, "own", "mine")
    srv.cli("deploy", str(d))
    assert srv.host_get("own.localhost").text == "mine"
    own = set(thaw_processes(srv.proc.pid, "thaw-zygote")) - zygotes_before
    assert own, "the worker has no zygote of its own"
    # after the build it answered, thaw still holds a pidfd for each
    fds = {fd for fd, pid in pidfds(srv.proc.pid).items() if pid in own}
    assert fds, (own, pidfds(srv.proc.pid))

    st, _ = srv.api("DELETE", "/v1/workers/own")
    assert st == 200
    wait_for(lambda: not (own & set(thaw_processes(srv.proc.pid, "thaw-zygote"))),
             "the worker's zygote to exit")
    # the zygote's pidfd is closed (its number may since be another fd's)
    wait_for(lambda: not any(pidfds(srv.proc.pid).get(fd) == -1 for fd in fds),
             "thaw to close the pidfd of the exited zygote")
