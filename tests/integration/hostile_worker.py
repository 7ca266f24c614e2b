"""The hostile worker of test_hostile.py: GET /b/NAME tries behaviour NAME
and answers JSON {"ok": bool, "error": "Type: message", ...}; "ok" means
the thing worked (a sandbox hole). Behaviours that end the instance (CPU,
wall clock) never answer: the test checks the status thaw gives."""
import asyncio
import ctypes
import errno
import json
import os
import re
import signal
import socket
import threading
import time

from workers import Response, WorkerEntrypoint

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def _errno_call(fn):
    r = fn()
    if r == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def read_file(path):
    with open(path, "rb") as f:
        return f.read(64)


def b_read_shadow(env):
    return read_file("/etc/shadow")


def b_read_supervisor_memory(env):
    pid = int(env.SUPERVISOR_PID)
    with open(f"/proc/{pid}/mem", "rb") as f:
        f.seek(0x400000)
        return f.read(16)


def b_read_supervisor_environ(env):
    return read_file(f"/proc/{int(env.SUPERVISOR_PID)}/environ")


def b_process_vm_readv(env):
    buf = ctypes.create_string_buffer(16)
    local = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 16)
    remote = (ctypes.c_void_p * 2)(0x400000, 16)
    return _errno_call(lambda: libc.syscall(310, int(env.SUPERVISOR_PID), local, 1,
                                            remote, 1, 0))


def b_list_proc(env):
    return os.listdir("/proc")


def b_proc_of_pid1(env):
    return read_file("/proc/1/cmdline")


def b_read_other_bundle(env):
    return read_file(env.INNOCENT_BUNDLE)


def b_read_other_tmp(env):
    return read_file(env.INNOCENT_TMP_FILE)


def b_list_tmp_root(env):
    return os.listdir("/tmp")


def b_read_state_token(env):
    return read_file(env.STATE_TOKEN)


def b_write_outside_tmp(env):
    with open("/usr/lib/thaw-was-here", "w") as f:
        f.write("x")


def b_write_own_bundle(env):
    with open(os.path.join(os.getcwd(), "src", "entry.py"), "a") as f:
        f.write("# tampered\n")


def b_tcp_socket(env):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(("127.0.0.1", int(env.INNOCENT_PORT)))


def b_udp_socket(env):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"x", ("127.0.0.1", 53))


def b_ipv6_socket(env):
    # the socket itself comes from thaw (unconnected); its connect is the
    # supervisor's, under the egress policy, which refuses loopback
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.connect(("::1", int(env.INNOCENT_PORT)))


def b_connect_around_thaw(env):
    # the socket thaw made, connected by the instance itself (the stdlib's
    # own connect, not thaw's): Landlock (ABI 4) refuses TCP connect, and
    # the network namespace has no route anyway
    import _socket
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    _socket.socket.connect(s, ("127.0.0.1", int(env.INNOCENT_PORT)))


def b_raw_socket(env):
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)


def b_netlink_socket(env):
    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)


def b_admin_port(env):
    s = socket.create_connection(("127.0.0.1", int(env.ADMIN_PORT)), timeout=2)
    s.sendall(b"GET /v1/workers HTTP/1.0\r\n\r\n")
    return s.recv(100)


def b_fork_bomb(env):
    """Forks until refused; the children wait to be killed."""
    kids = []
    try:
        for _ in range(100000):
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            kids.append(pid)
        return f"forked {len(kids)}"
    finally:
        for pid in kids:
            os.kill(pid, signal.SIGKILL)
        for pid in kids:
            os.waitpid(pid, 0)


def b_thread_bomb(env):
    stop = threading.Event()
    threads = []
    try:
        for _ in range(100000):
            t = threading.Thread(target=stop.wait)
            t.start()
            threads.append(t)
        return f"started {len(threads)}"
    finally:
        stop.set()
        for t in threads:
            t.join()


def b_allocate_10gb(env):
    b = bytearray(10 << 30)
    return len(b)


def b_fill_disk(env):
    path = os.path.join(os.environ["TMPDIR"], "fill")
    chunk = b"x" * (1 << 20)
    n = 0
    try:
        with open(path, "wb") as f:
            for n in range(1, 100000):
                f.write(chunk)
                f.flush()
        return f"wrote {n} MB"
    finally:
        os.unlink(path)


def b_infinite_loop(env):
    while True:
        pass


def b_busy_c_extension(env):
    # catastrophic backtracking: the loop is inside _sre, in C
    return re.match(r"(a*)*b", "a" * 64)


def b_kill_all(env):
    os.kill(-1, signal.SIGKILL)


def b_kill_group(env):
    # thaw serve leads its own process group in the tests
    os.kill(-int(env.SUPERVISOR_PID), signal.SIGTERM)


def b_kill_supervisor(env):
    os.kill(int(env.SUPERVISOR_PID), signal.SIGKILL)


def b_kill_pid1(env):
    os.kill(1, signal.SIGKILL)


def b_ptrace(env):
    return _errno_call(lambda: libc.ptrace(16, os.getppid(), None, None))  # ATTACH


def b_load_kernel_module(env):
    return _errno_call(lambda: libc.syscall(313, 0, b"", 0))  # finit_module


def b_bpf(env):
    return _errno_call(lambda: libc.syscall(321, 0, None, 0))


def b_mount(env):
    return _errno_call(lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))


def b_unshare_userns(env):
    return _errno_call(lambda: libc.unshare(0x10000000))


def b_setuid(env):
    os.setuid(1000)


def b_exec_proc_self_exe(env):
    os.execv("/proc/self/exe", ["thaw-zygote"])


def b_exec_shell(env):
    import subprocess
    return subprocess.run(["/bin/sh", "-c", "id"], capture_output=True).stdout


def b_symlink_escape(env):
    link = os.path.join(os.environ["TMPDIR"], "link")
    os.symlink("/etc/shadow", link)
    try:
        return read_file(link)
    finally:
        os.unlink(link)


def b_hardlink_escape(env):
    link = os.path.join(os.environ["TMPDIR"], "hard")
    os.link("/etc/passwd", link)
    return read_file(link)


def b_exhaust_fds(env):
    fds = []
    try:
        while len(fds) < 1000000:
            fds.append(os.open("/dev/null", os.O_RDONLY))
        return f"opened {len(fds)}"
    finally:
        for fd in fds:
            os.close(fd)


def b_inherited_fds(env):
    """Every fd beyond stdio must be the instance's own channel or its
    event loop's; none of the supervisor's (listening sockets, state)."""
    import stat as S
    odd = []
    for fd in range(3, 1024):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if S.S_ISSOCK(st.st_mode):
            s = socket.socket(fileno=os.dup(fd))
            if s.family != socket.AF_UNIX:
                odd.append((fd, str(s.family)))
            s.close()
        elif S.S_ISREG(st.st_mode) or S.S_ISDIR(st.st_mode):
            odd.append((fd, "file"))
        # pipes and anonymous inodes (epoll, eventfd) are the event loop's
    if odd:
        return f"found {odd}"
    raise PermissionError(errno.EPERM, "no foreign fd")


def b_stdout_flood(env):
    import sys
    chunk = "x" * ((1 << 20) - 1) + "\n"
    for _ in range(1024):  # 1 GB
        sys.stdout.write(chunk)
    raise PermissionError(errno.EPERM, "printed; the log must not hold it")


def b_sysctl_write(env):
    with open("/proc/sys/kernel/hostname", "w") as f:
        f.write("pwned")


def b_dev_mem(env):
    return read_file("/dev/mem")


def b_keyctl(env):
    return _errno_call(lambda: libc.syscall(250, 0, 0, 0, 0, 0))


def b_set_dumpable(env):
    return _errno_call(lambda: libc.prctl(4, 1, 0, 0, 0))


def b_unlisted_syscall(env):
    # sysfs(2): on neither list, so seccomp stops the process (and logs it)
    return libc.syscall(139, 3)


def b_tiocsti(env):
    import fcntl
    import termios
    fcntl.ioctl(2, termios.TIOCSTI, b"x")


BEHAVIOURS = {k[2:]: v for k, v in globals().items() if k.startswith("b_")}


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        path = request.url.split("://", 1)[-1].split("/", 1)[-1]
        if path.startswith("sleep-forever"):
            await asyncio.sleep(3600)
        if path.startswith("block-forever"):
            time.sleep(3600)
        name = path[2:] if path.startswith("b/") else ""
        fn = BEHAVIOURS.get(name)
        if fn is None:
            return Response(json.dumps(sorted(BEHAVIOURS)), status=404)
        try:
            what = fn(self.env)
            out = {"ok": True, "result": repr(what)[:300]}
        except BaseException as e:  # noqa: BLE001 - reporting what happened is the point
            out = {"ok": False, "error": f"{type(e).__name__}: {e}"[:300],
                   "type": type(e).__name__}
        return Response(json.dumps(out), headers={"content-type": "application/json"})
