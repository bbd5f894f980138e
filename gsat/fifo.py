"""Named pipes on which a client blocks until a controller writes to it.

The client creates the FIFO and opens it read-write, so that it never sees
end-of-file and needs no writer to exist yet; it then sleeps in poll() with
no busy waiting.  The controller opens it write-only and non-blocking: when
the client has gone (no reader) the open fails with ENXIO and the answer is
dropped.  A path that is not a FIFO of ours (owned by the effective user:
another user may have planted one, and would read what we write) is never
written, nor opened.  Lines are shorter
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


def post(path, data: bytes, dir_fd: int | None = None) -> bool | None:
    """Write `data` to the FIFO at `path` if a reader waits: True if it did,
    False if nobody reads it any more, None if `path` is no FIFO of ours.
    Never follows a symlink, never blocks, never raises."""
    try:
        if not _our_fifo(os.lstat(path, dir_fd=dir_fd)):
            return None
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        return False if exc.errno == errno.ENXIO else None
    try:
        if not _our_fifo(os.fstat(fd)):  # the one we opened, whatever the name meant before
            return None
        os.write(fd, data)
        return True
    except OSError:
        return True  # full (the reader is slow, it wakes anyway) or gone in between
    finally:
        os.close(fd)


def _our_fifo(info: os.stat_result) -> bool:
    return stat.S_ISFIFO(info.st_mode) and info.st_uid == os.geteuid()


def post_all(folder, data: bytes, prefix: str = "") -> None:
    """post() to every FIFO in `folder` whose name starts with `prefix` (not
    through symlinks); remove the ones whose reader has gone."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        for name in os.listdir(dir_fd):
            if name.startswith(prefix) and not name.startswith(".") and post(name, data, dir_fd) is False:
                try:
                    os.unlink(name, dir_fd=dir_fd)
                except OSError:
                    pass
    finally:
        os.close(dir_fd)


def reap(folder, before: float) -> None:
    """Unlink the FIFOs in `folder` older than `before` that have no reader."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.stat(follow_symlinks=False).st_mtime < before and post(entry.path, b"") is False:
                os.unlink(entry.path)
        except OSError:
            pass


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
