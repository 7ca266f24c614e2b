"""Fork and child bookkeeping shared by the zygote and templates."""
import os
import signal
import sys
import traceback

from . import ipc


# called with the pid of every child reaped (the template cleans up after
# its instances: sandbox.reaped)
on_reaped = None


def _reap(signum=None, frame=None):
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if on_reaped is not None:
            on_reaped(pid)


def reap_children_on_sigchld():
    # The supervisor learns of deaths through pidfds; the forker only has
    # to reap, which the handler does between blocking reads.
    signal.signal(signal.SIGCHLD, _reap)


def fork_and_report(chan, stream, child_fds_to_close, child_main):
    """Forks; the child closes child_fds_to_close and runs child_main() and
    never returns. The parent opens a pidfd for the child and sends it to
    the supervisor in a SPAWNED frame.

    SIGCHLD stays blocked from before the fork until the pidfd is open, so
    the reaper cannot collect the child first and the supervisor never
    watches a reused pid. os.fork() brackets the fork with
    PyOS_BeforeFork / PyOS_AfterFork_*."""
    # unflushed output would be written twice: by the parent and the child
    sys.stdout.flush()
    sys.stderr.flush()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    try:
        pid = os.fork()
    except OSError as e:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        chan.send(ipc.SPAWN_ERR, stream, ipc.fields(f"fork: {e.strerror}"))
        return
    if pid == 0:
        code = 0
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            for item in child_fds_to_close:
                if isinstance(item, int):
                    os.close(item)
                else:
                    item.close_in_child()
            child_main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as e:
        chan.send(ipc.SPAWN_ERR, stream, ipc.fields(f"pidfd_open: {e.strerror}"))
        return
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
    try:
        chan.send(ipc.SPAWNED, stream, ipc.fields(str(pid)), fd=pidfd)
    finally:
        os.close(pidfd)
    return pid
