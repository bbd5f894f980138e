"""The controller as a process: one per host and GSAT_HOME.

    hosts/HOST/lock   flock()ed by the running controller for its lifetime
    hosts/HOST/pid    its pid (information only: the lock is the truth)
    hosts/HOST/log    its log when it runs in the background

The kernel drops a flock when its holder dies, so a crash never leaves a
stale lock that blocks the next start, and a left-over pid file means
nothing.  The lock file is on the host's own directory; only controllers of
the same host contend for it.

This module starts, finds and stops controllers; it never imports the
controller itself (the CLI uses it to autostart one).
"""

import errno
import fcntl
import os
import sys
import time

from gsat import fsutil
from gsat.errors import Refused, Unreachable
from gsat.layout import Layout


def lock_path(layout: Layout):
    return layout.host_dir() / "lock"


def pid_path(layout: Layout):
    return layout.host_dir() / "pid"


def log_path(layout: Layout):
    return layout.host_dir() / "log"


def acquire(layout: Layout, patience: float = 1.0) -> int:
    """Take the host's controller lock and write the pid file; return the fd.

    A status probe holds the lock shared for a moment, hence the patience;
    but a running controller (its pid file names a live gsatlc) is refused
    at once: one that only waited would take over the moment it stops (two
    commands that both autostart one lead there)."""
    fd = os.open(lock_path(layout), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as exc:
            if exc.errno != errno.EWOULDBLOCK:
                raise
            if time.monotonic() > deadline or _controller_alive(read_pid(layout)):
                os.close(fd)
                raise Refused(f"a controller for {layout.host} runs already (pid {read_pid(layout)})")
            time.sleep(0.01)
    fsutil.atomic_write(pid_path(layout), b"%d\n" % os.getpid(), sync=False)
    return fd


def running_pid(layout: Layout) -> int | None:
    """The pid of this host's running controller, or None."""
    try:
        fd = os.open(lock_path(layout), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno == errno.EWOULDBLOCK:
            return read_pid(layout) or -1
        raise
    finally:
        os.close(fd)
    return None


def _controller_alive(pid: int | None) -> bool:
    if not pid or pid == os.getpid():
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"gsatlc" in f.read()
    except OSError:
        return False


def read_pid(layout: Layout) -> int | None:
    try:
        return int(fsutil.read_bytes(pid_path(layout)) or b"")
    except ValueError:
        return None


def release(layout: Layout, fd: int) -> None:
    fsutil.unlink_quietly(pid_path(layout))
    os.close(fd)


def spawn(layout: Layout):
    """Start `gsatlc run` in the background, in its own session; its Popen."""
    import subprocess
    env = dict(os.environ, GSAT_HOME=str(layout.home), GSAT_HOSTNAME=layout.host)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    log = os.open(log_path(layout), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "gsat.cli.gsatlc", "run"], env=env, cwd="/",
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    finally:
        os.close(log)


def wait_until(predicate, timeout: float, what: str) -> None:
    """Sleep in short steps until `predicate()`; Unreachable after `timeout`."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while not predicate():
        if time.monotonic() > deadline:
            raise Unreachable(f"{what} within {timeout:g} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
