"""The background controller's log, hosts/HOST/log, kept bounded.

`gsatlc start` runs the controller with its stdout and stderr appended to
hosts/HOST/log (gsat.daemon.spawn).  When stderr is that file, the log
handler rotates it by size: once it passes MAX_BYTES, log.(KEEP-1) becomes
log.KEEP (the oldest is dropped), ..., log becomes log.1, and a new log is
opened onto stdout and stderr (dup2), so that a traceback of a dying
controller lands in the current file too.  `gsatlc run` with stderr
elsewhere (a terminal, systemd's journal) leaves rotation to whoever reads it.

Imported only by the controller's entry point: logging stays off the
commands' path.
"""

import logging
import os
import sys

MAX_BYTES = 1 << 20
KEEP = 3  # log.1 .. log.3 besides log


class RotatingStderr(logging.StreamHandler):
    """A handler on sys.stderr that rotates `path` (which stderr appends to)."""

    def __init__(self, path: str, max_bytes: int = MAX_BYTES, keep: int = KEEP):
        super().__init__(sys.stderr)
        self.path, self.max_bytes, self.keep = path, max_bytes, keep

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        try:
            if os.fstat(2).st_size > self.max_bytes:
                self.rotate()
        except OSError:  # a full disk: the log grows a little longer, nothing stops
            pass

    def rotate(self) -> None:
        self.flush()
        for n in range(self.keep - 1, 0, -1):
            if os.path.lexists(f"{self.path}.{n}"):
                os.replace(f"{self.path}.{n}", f"{self.path}.{n + 1}")
        os.replace(self.path, f"{self.path}.1")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.dup2(fd, 1, inheritable=False)
            os.dup2(fd, 2, inheritable=False)
        finally:
            os.close(fd)


def handler_for(log_path) -> logging.Handler:
    """RotatingStderr when stderr is the file `log_path`, else a plain stderr handler."""
    try:
        mine, log = os.fstat(2), os.stat(log_path)
    except OSError:
        return logging.StreamHandler(sys.stderr)
    if (mine.st_dev, mine.st_ino) == (log.st_dev, log.st_ino):
        return RotatingStderr(os.fspath(log_path))
    return logging.StreamHandler(sys.stderr)
