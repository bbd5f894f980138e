"""Careful file I/O: atomic writes, no symlink following, capped reads.

An atomic write goes to a temporary name beginning with '.' in the target's
directory, is fsynced, renamed over the final name, and the directory is
fsynced (POSIX gives rename no durability without it).  Readers skip names
that begin with '.'.  A failed fsync is never retried: the temporary file is
dropped and the write fails as a whole.

Disk-full and read-only errors become HomeUnusable (exit 6).
"""

import errno
import os

from gsat.errors import HomeUnusable

FULL = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO)
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def temp_name(path) -> str:
    head, tail = os.path.split(os.fspath(path))
    return os.path.join(head, f".{tail}.{os.getpid()}.{os.urandom(4).hex()}")


def write_new(path, data: bytes, sync: bool = True, mode: int = 0o600, dir_fd: int | None = None) -> None:
    """Create `path` exclusively (never through a symlink) and write it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    try:
        _write_all(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, data: bytes, sync: bool = True, mode: int = 0o600, sync_dir: bool = True,
                 dir_fd: int | None = None) -> None:
    """Replace `path` with `data` so that readers see old or new, never half.

    sync_dir=False skips the directory fsync: for a file that is replaced
    again and again, whose older version after a power loss is still a
    consistent state.  With `dir_fd`, `path` is a name in that directory
    (no path is walked; the directory is not fsynced)."""
    tmp = temp_name(path)
    try:
        write_new(tmp, data, sync, mode, dir_fd)
        os.replace(tmp, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as exc:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise translate_error(exc, path) from None
    if sync and sync_dir and dir_fd is None:
        fsync_dir(os.path.dirname(os.fspath(path)))


def write_json(path, obj, sync: bool = True, sync_dir: bool = True, dir_fd: int | None = None) -> None:
    from gsat import jsontext
    atomic_write(path, jsontext.dumps(obj, sort_keys=True).encode() + b"\n", sync, sync_dir=sync_dir,
                 dir_fd=dir_fd)


def read_bytes(path, limit: int = 1 << 20, dir_fd: int | None = None) -> bytes | None:
    """The file's bytes, None when it does not exist; never follows a symlink
    (`path` relative to `dir_fd` when given: then no part of it is followed)."""
    try:
        fd = os.open(path, READ_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    try:
        size = os.fstat(fd).st_size
        return os.read(fd, min(limit, size + 1 if size else limit))  # no buffer of `limit` bytes
    finally:
        os.close(fd)


def read_json(path, dir_fd: int | None = None):
    data = read_bytes(path, dir_fd=dir_fd)
    if data is None:
        return None
    from gsat import jsontext
    return jsontext.loads(data)


def fsync_dir(path) -> None:
    fd = os.open(path or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # some file systems cannot fsync a directory
            raise translate_error(exc, path) from None
    finally:
        os.close(fd)


def can_syncfs() -> bool:
    """Whether this Python can call syncfs(2) (ctypes needs libffi; libc needs the symbol)."""
    try:
        return _syncfs() is not None
    except (ImportError, OSError):
        return False


def sync_filesystem(path) -> None:
    """Make everything written to the file system holding `path` durable at
    once (syncfs(2)); callers check can_syncfs() first."""
    import ctypes
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _syncfs()(fd) != 0:
            err = ctypes.get_errno()
            raise translate_error(OSError(err, os.strerror(err), os.fspath(path)), path)
    finally:
        os.close(fd)


def _syncfs():
    import ctypes  # only bulk writers pay for it
    return getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)


def append_line(path, line: bytes, sync: bool = True) -> None:
    """Append one line (O_APPEND keeps concurrent short lines whole)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        _write_all(fd, line)
        if sync:
            os.fsync(fd)
    except OSError as exc:
        raise translate_error(exc, path) from None
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def unlink_quietly(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def translate_error(exc: OSError, path) -> OSError:
    if exc.errno in FULL:
        return HomeUnusable(f"cannot write {path}: {exc.strerror}")
    return exc
