"""The file inbox of one controller: Maildir-style delivery that works on NFS.

    spool/HOST/tmp/   writers create messages here
    spool/HOST/new/   published messages, one file each
    spool/HOST/bad/   messages set aside, each with NAME.reason beside it

Delivery: the writer creates tmp/NAME exclusively (O_EXCL, never through a
symlink), writes the whole message, closes it (which on NFS flushes it to
the server), then renames it to new/NAME. rename() is atomic on the server,
so the reader sees a whole message or none; it never reads tmp/.  Messages
are not fsynced: one lost in a power cut is a command whose client timed
out waiting for its answer, or a submission the controller's scan of jobs/
finds anyway (the job itself is durable before gqsub says its id); a
message emptied by a crash is set aside as bad.  NAME is
`TIME_NS.PID.RANDOM`, unique without a lock and sorting in arrival order.

Taking: the one reader (the controller of HOST) lists new/ in name order,
skipping names that begin with '.', opens each without following symlinks
and without blocking, and accepts only a regular file owned by its own
user, with one link, no larger than messages.MAX_SIZE.  It unlinks a message
before acting on it (at most once: a lost command is retried by its client,
and lost submissions are found again by the controller's scan of jobs/).
Anything else is moved to bad/ with the reason, and the reader carries on.
"""


import os
import stat
import time

from gsat import fsutil, lazylog
from gsat.errors import BadMessage
from gsat.messages import MAX_SIZE

log = lazylog.get(__name__)

TMP_GRACE = 3600.0


def message_name() -> str:
    return f"{time.time_ns()}.{os.getpid()}.{os.urandom(6).hex()}"


def deliver(spool, data: bytes) -> str:
    """Publish one message into spool/new; return its name."""
    name = message_name()
    tmp, new = os.path.join(spool, "tmp", name), os.path.join(spool, "new", name)
    try:
        fsutil.write_new(tmp, data, sync=False)
        os.rename(tmp, new)
    except OSError as exc:
        fsutil.unlink_quietly(tmp)
        raise fsutil.translate_error(exc, spool) from None
    return name


def take(spool, parse) -> list:
    """Remove the messages waiting in spool/new, oldest first, and return
    `parse(bytes)` of each; a message `parse` refuses with BadMessage is
    set aside instead."""
    new = os.path.join(spool, "new")
    out = []
    for name in sorted(os.listdir(new)):
        if name.startswith("."):
            continue
        try:
            out.append(parse(_read_checked(os.path.join(new, name))))
        except FileNotFoundError:
            continue
        except BadMessage as exc:
            set_aside(spool, name, str(exc))
            continue
        except Exception as exc:  # whatever else a hostile file can do to a parser
            set_aside(spool, name, f"unreadable: {type(exc).__name__}: {exc}")
            continue
        fsutil.unlink_quietly(os.path.join(new, name))
    return out


def _read_checked(path: str) -> bytes:
    try:
        fd = os.open(path, fsutil.READ_FLAGS)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise BadMessage(f"cannot open: {exc.strerror} (a symlink?)") from None
    try:
        info = os.fstat(fd)
        _check(info)
        data = os.read(fd, MAX_SIZE + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_SIZE:
        raise BadMessage(f"oversized: more than {MAX_SIZE} bytes")
    return data


def _check(info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise BadMessage("not a regular file")
    if info.st_uid != os.geteuid():
        raise BadMessage(f"owned by uid {info.st_uid}, not {os.geteuid()}")
    if info.st_nlink != 1:
        raise BadMessage(f"has {info.st_nlink} links")
    if info.st_size > MAX_SIZE:
        raise BadMessage(f"oversized: {info.st_size} bytes")


def set_aside(spool, name: str, reason: str) -> None:
    """Move new/NAME to bad/NAME and write the reason next to it."""
    log.warning("bad message %s set aside: %s", name, reason)
    bad = os.path.join(spool, "bad")
    try:
        os.rename(os.path.join(spool, "new", name), os.path.join(bad, name))
        fsutil.atomic_write(os.path.join(bad, name + ".reason"), reason.encode() + b"\n", sync=False)
    except OSError as exc:
        log.error("cannot set %s aside: %s", name, exc)


def reap_tmp(spool, now: float, grace: float = TMP_GRACE) -> None:
    """Remove what crashed writers left in tmp/ more than `grace` seconds ago."""
    tmp = os.path.join(spool, "tmp")
    for entry in os.scandir(tmp):
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime > grace:
                os.unlink(entry.path)
        except OSError:
            pass
