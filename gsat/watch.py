"""Waking up when a directory changes: inotify where it works, polling where
it cannot (network file systems: inotify never sees other clients' writes).

A Watcher has `fileno()` (an fd to select on, or None) and `interval` (the
longest the owner may sleep, None for "until the fd is readable").  After a
wake-up the owner calls `drain()` and then lists the directory itself: the
listing is the truth, inotify only says when to look, so an event-queue
overflow costs nothing but a rescan.
"""

import logging
import os

log = logging.getLogger(__name__)

NETWORK_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "lustre",
              "afs", "fuse.sshfs", "fuse.glusterfs", "fuse.s3fs", "gpfs", "beegfs"}


def fs_type(path) -> str:
    """The type of the file system holding `path` (from /proc/self/mountinfo)."""
    path = os.path.realpath(path)
    best, kind = "", "unknown"
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                mount = left.split()[4].replace("\\040", " ")
                if _under(path, mount) and len(mount) >= len(best):
                    best, kind = mount, right.split()[0]
    except OSError:
        pass
    return kind


def is_network(path) -> bool:
    return fs_type(path) in NETWORK_FS


def _under(path: str, mount: str) -> bool:
    return path == mount or path.startswith(mount.rstrip("/") + "/")


class PollWatcher:
    def __init__(self, interval: float):
        self.interval = interval

    def fileno(self):
        return None

    def drain(self) -> None:
        pass

    def close(self) -> None:
        pass


class InotifyWatcher:
    interval = None

    def __init__(self, path):
        import inotify_simple
        flags = inotify_simple.flags
        self._inotify = inotify_simple.INotify()
        self._inotify.add_watch(os.fspath(path), flags.MOVED_TO | flags.CREATE | flags.CLOSE_WRITE | flags.MODIFY)
        self._overflow = flags.Q_OVERFLOW

    def fileno(self):
        return self._inotify.fileno()

    def drain(self) -> None:
        for event in self._inotify.read(timeout=0):
            if event.mask & self._overflow:
                log.warning("inotify queue overflowed; rescanning")

    def close(self) -> None:
        self._inotify.close()


def choose(mode: str, path) -> str:
    """'inotify' or 'poll' for a watch mode of auto|inotify|poll on `path`."""
    if mode == "auto":
        return "poll" if is_network(path) else "inotify"
    return mode


def make(mode: str, path, interval: float):
    kind = choose(mode, path)
    log.info("watching %s by %s", path, kind)
    return InotifyWatcher(path) if kind == "inotify" else PollWatcher(interval)
