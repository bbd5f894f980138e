"""Named pipes on which a client blocks until a controller writes to it.

The client creates the FIFO and opens it read-write, so that it never sees
end-of-file and needs no writer to exist yet; it then sleeps in poll() with
no busy waiting.  The controller opens it write-only and non-blocking: when
the client has gone (no reader) the open fails with ENXIO and the answer is
dropped.  A path that is not a FIFO is never written.  Lines are shorter
than PIPE_BUF, so each write arrives whole.
"""

import errno
import os
import select
import stat

from gsat import fsutil


def create(folder, prefix: str = "") -> tuple[str, int]:
    """Make a FIFO in `folder`; return its path and a read-write fd.

    It is made and opened under a dot name, then renamed: a writer never
    sees it before it has its reader (and never takes it for abandoned)."""
    name = f"{prefix}{os.getpid()}.{os.urandom(4).hex()}"
    hidden, path = os.path.join(folder, "." + name), os.path.join(folder, name)
    os.mkfifo(hidden, 0o600)
    fd = os.open(hidden, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    os.rename(hidden, path)
    return path, fd


def post(path, data: bytes) -> bool:
    """Write `data` to the FIFO at `path` if a reader waits; True if it did."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.ENOENT, errno.ELOOP, errno.EACCES):
            return False
        raise
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        os.write(fd, data)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def wait(fds: list[int], timeout: float | None) -> list[int]:
    """The fds that became readable within `timeout` seconds (None: forever)."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    ms = None if timeout is None else max(0, int(timeout * 1000))
    return [fd for fd, _ in poller.poll(ms)]


def read(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def remove(path, fd: int | None = None) -> None:
    if fd is not None:
        os.close(fd)
    fsutil.unlink_quietly(path)
