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
skipping names that begin with '.', and takes at most BATCH messages per
step (Inbox: the rest of a listing waits as a backlog; while it lasts new/
is listed again every RELIST seconds and what arrived since goes first).
It opens each without following symlinks and without blocking, and
accepts only a regular file owned by its own user, with one link, no
larger than messages.MAX_SIZE.  It unlinks a message before acting on it
(at most once: a lost command is retried by its client, and lost
submissions are found again by the controller's scan of jobs/).  Anything
else is moved to bad/ with the reason in NAME.reason (shortened, with a
hash, when NAME is too long for that), and the reader carries on.  bad/
keeps the newest KEEP_BAD messages; the log names LOG_EACH a minute and
counts the others.
"""


import collections
import os
import stat
import time

from gsat import fsutil, lazylog
from gsat.errors import BadMessage
from gsat.messages import MAX_SIZE

log = lazylog.get(__name__)

TMP_GRACE = 3600.0
BATCH = 128         # messages taken per controller step
RELIST = 0.2        # seconds between listings of new/ while a backlog lasts
KEEP_BAD = 1000     # messages kept in bad/, the newest
LOG_EACH = 50       # bad messages named in the log per LOG_WINDOW; the others are counted
LOG_WINDOW = 60.0
NAME_MAX = 255


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


class Inbox:
    """The reader's side of spool/new, taken BATCH messages at a time.

    A listing is kept as a backlog, so that a flood (100,000 junk files) is
    not taken in one step that would stall everything else the controller
    does: each take() handles at most BATCH of it.  While a backlog lasts,
    new/ is listed again every RELIST seconds and what arrived since goes
    first, so a command sent during a flood is answered within a step or
    two of that listing, not after the whole flood."""

    def __init__(self, spool):
        self.spool = spool
        self.backlog: collections.deque[str] = collections.deque()
        self.listed: set[str] = set()  # the names in the backlog
        self.listed_at = 0.0
        self.bad = BadShelf(spool)

    def take(self, parse) -> list:
        """Remove up to BATCH waiting messages and return `parse(bytes)` of
        each; a message `parse` refuses with BadMessage is set aside instead."""
        now = time.monotonic()
        if not self.backlog or now - self.listed_at >= RELIST:
            self._relist(now)
        out = []
        for _ in range(min(BATCH, len(self.backlog))):
            name = self.backlog.popleft()
            self.listed.discard(name)
            _take_one(self.spool, name, parse, out, self.bad)
        self.bad.report(drained=not self.backlog)
        return out

    def _relist(self, now: float) -> None:
        names = os.listdir(os.path.join(self.spool, "new"))
        fresh = sorted(n for n in names if not n.startswith(".") and n not in self.listed)
        self.backlog.extendleft(reversed(fresh))  # what arrived since the last listing goes first
        self.listed.update(fresh)
        self.listed_at = now


def take(spool, parse) -> list:
    """The messages waiting in spool/new, taken at once (a reader without a backlog)."""
    inbox, out = Inbox(spool), []
    while True:
        batch = inbox.take(parse)
        out += batch
        if not inbox.backlog:
            return out


def _take_one(spool, name: str, parse, out: list, bad) -> None:
    new = os.path.join(spool, "new")
    try:
        out.append(parse(_read_checked(os.path.join(new, name))))
    except FileNotFoundError:
        return
    except BadMessage as exc:
        return bad.put(name, str(exc))
    except Exception as exc:  # whatever else a hostile file can do to a parser
        return bad.put(name, f"unreadable: {type(exc).__name__}: {exc}")
    fsutil.unlink_quietly(os.path.join(new, name))


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


def reason_name(name: str) -> str:
    """NAME.reason, or for a name too long for that, a shortened name with a
    hash of the whole one (the reason file then names the message)."""
    if len(name) <= NAME_MAX - len(".reason"):
        return name + ".reason"
    import hashlib
    return f"{name[:200]}~{hashlib.sha256(name.encode(errors='surrogateescape')).hexdigest()[:16]}.reason"


class BadShelf:
    """spool/bad: the newest KEEP_BAD messages set aside, each with its
    reason; older ones are removed.  The log names the first LOG_EACH of
    every LOG_WINDOW seconds and then counts the others, so that a flood
    does not fill the log either."""

    def __init__(self, spool):
        self.dir = os.path.join(spool, "bad")
        self.spool = spool
        self.kept = collections.deque(self._oldest_first())
        self.window, self.named, self.unnamed = 0.0, 0, 0

    def _oldest_first(self) -> list[str]:
        """The messages in bad/ now, by the time they were set aside."""
        try:
            entries = {e.name: e for e in os.scandir(self.dir)}
        except OSError:
            return []
        names = [n for n in entries if not n.endswith(".reason")]

        def when(name):
            entry = entries.get(reason_name(name)) or entries[name]
            try:
                return entry.stat(follow_symlinks=False).st_mtime_ns
            except OSError:
                return 0
        return sorted(names, key=when)

    def put(self, name: str, reason: str) -> None:
        """Move new/NAME to bad/NAME and write the reason next to it."""
        self._shelve(name, reason, lambda: os.rename(os.path.join(self.spool, "new", name),
                                                     os.path.join(self.dir, name)))

    def keep(self, data: bytes, reason: str) -> None:
        """Keep a bad message that came by another channel (SysV) as bad/NAME."""
        name = message_name()
        self._shelve(name, reason, lambda: fsutil.write_new(os.path.join(self.dir, name), data, sync=False))

    def _shelve(self, name: str, reason: str, place) -> None:
        self._note(name, reason)
        try:
            place()
            text = reason if reason_name(name) == name + ".reason" else f"{reason} (message {name})"
            fsutil.atomic_write(os.path.join(self.dir, reason_name(name)), text.encode(errors="replace") + b"\n",
                                sync=False)
        except OSError as exc:
            log.error("cannot set %s aside: %s", name, exc)
        self.kept.append(name)
        while len(self.kept) > KEEP_BAD:
            old = self.kept.popleft()
            fsutil.unlink_quietly(os.path.join(self.dir, old))
            fsutil.unlink_quietly(os.path.join(self.dir, reason_name(old)))

    def _note(self, name: str, reason: str) -> None:
        now = time.monotonic()
        if now - self.window > LOG_WINDOW:
            self.report()
            self.window, self.named = now, 0
        if self.named < LOG_EACH:
            self.named += 1
            log.warning("bad message %s set aside: %s", name, reason)
        else:
            self.unnamed += 1

    def report(self, drained: bool = False) -> None:
        """Log how many bad messages went unnamed since the last report: once
        the inbox is drained, at the end of a window, or every 10,000."""
        if self.unnamed and (drained or time.monotonic() - self.window > LOG_WINDOW or self.unnamed >= 10000):
            log.warning("%d more bad messages set aside (bad/ keeps the newest %d)", self.unnamed, KEEP_BAD)
            self.unnamed = 0


def set_aside(spool, name: str, reason: str) -> None:
    """Move new/NAME to bad/NAME with its reason (one message, no shelf kept)."""
    BadShelf(spool).put(name, reason)


def reap_tmp(spool, now: float, grace: float = TMP_GRACE) -> None:
    """Remove what crashed writers left in tmp/ more than `grace` seconds ago."""
    tmp = os.path.join(spool, "tmp")
    for entry in os.scandir(tmp):
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime > grace:
                os.unlink(entry.path)
        except OSError:
            pass
