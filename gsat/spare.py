"""Pooled shepherds: forked ahead of need, and used again once their job ended.

Forking the controller (a 17 MB interpreter) takes a millisecond or two,
and the child then pays a page fault for every page it touches: that was
half the time from submit to a job's first instruction, and most of the
controller's time per job in a burst.  So the controller keeps shepherds
that have already become shepherds (gsat.shepherd.become_shepherd: own
session, the controller's fds closed, identity read) and block reading a
pipe of their own.  To start a run the controller writes its RunSpec there
(a length, then one JSON document); the shepherd runs it as any shepherd
would, says "JOB RUN PID" on the controller's `ended` pipe, and waits for
the next one.  While it runs a job it serves that job alone, and it
outlives the controller as every shepherd does.  A shepherd whose pipe
closes (the controller has enough idle ones, stopped, or died) exits once
its run is over; so does one that could not tell its controller of an end
(then SIGCHLD tells).  The controller forks a new one when it is about to
sleep with none idle: off the path from submit to start.
"""

import dataclasses
import os

from gsat import jsontext, procinfo, shepherd

HEADER = 8  # bytes of decimal length before each spec
PIPE_ROOM = 65536  # a pipe's default capacity: a spec this size goes in with one write


class Spare:
    def __init__(self, pid: int, fd: int):
        self.pid, self.fd = pid, fd

    @classmethod
    def fork(cls, ended_fd: int, notify) -> "Spare":
        """Fork a pooled shepherd (in the controller); the child waits for work."""
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            raise
        if pid:
            os.close(read_end)
            os.set_blocking(write_end, False)  # a spare that does not read never blocks us
            return cls(pid, write_end)
        code = 1
        try:
            code = _serve(read_end, ended_fd, notify)
        finally:
            os._exit(code)

    def start(self, spec: shepherd.RunSpec) -> int | None:
        """Hand `spec` to this shepherd: its pid; None when it is gone or the
        spec does not fit its pipe at once (the caller forks a shepherd instead)."""
        fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.name != "notify"}
        body = jsontext.dumps(fields).encode()
        data = b"%0*d" % (HEADER, len(body)) + body
        if len(data) > PIPE_ROOM:
            return None  # it stays idle; this run gets a forked shepherd
        try:
            written = os.write(self.fd, data)
        except OSError:  # EPIPE: nobody reads (it was killed); EAGAIN: it does not read
            written = 0
        if written == len(data):
            return self.pid
        self.close()  # it exits on EOF (a spec cut short is no spec)
        return None

    def close(self) -> None:
        """No more work: it exits (after its current run, if any)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _serve(read_end: int, ended_fd: int, notify) -> int:
    shepherd.become_shepherd(keep=(read_end, ended_fd))
    identity = procinfo.identity(os.getpid())
    while True:
        header = _read_exactly(read_end, HEADER)
        body = _read_exactly(read_end, int(header)) if header.isdigit() else b""
        if not body or len(body) != int(header):
            break  # closed (or cut short): no more work
        spec = shepherd.RunSpec(**jsontext.loads(body), notify=notify)
        if not shepherd.run(spec, identity):
            break  # not told on the pipe: the exit (SIGCHLD) must tell
    shepherd.yield_to_others()
    return 0


def _read_exactly(fd: int, size: int) -> bytes:
    """`size` bytes, or fewer when the pipe closes first."""
    chunks, left = [], size
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class Pool:
    """The controller's pooled shepherds: the idle ones, and the busy ones by pid."""

    def __init__(self, ended_fd: int, notify, keep_idle: int):
        self.ended_fd, self.notify, self.keep_idle = ended_fd, notify, max(1, keep_idle)
        self.idle: list[Spare] = []
        self.busy: dict[int, Spare] = {}

    def fill(self) -> None:
        """Fork one when none is idle (the controller calls this before it sleeps)."""
        if not self.idle:
            self.idle.append(Spare.fork(self.ended_fd, self.notify))

    def start(self, spec: shepherd.RunSpec) -> int | None:
        """The pid of an idle shepherd now running `spec`; None when none is left."""
        while self.idle:
            spare = self.idle.pop()  # the last back is the warmest
            pid = spare.start(spec)
            if pid:
                self.busy[pid] = spare
                return pid
            if spare.fd >= 0:  # usable, but the spec is too big for a pipe
                self.idle.append(spare)
                return None
        return None

    def ended(self, pid: int) -> bool:
        """Its run is over (it said so): idle again, or told to exit when enough
        are idle.  False when `pid` is not one of ours."""
        spare = self.busy.pop(pid, None)
        if spare is None:
            return False
        if len(self.idle) < self.keep_idle:
            self.idle.append(spare)
        else:
            spare.close()
        return True

    def gone(self, pid: int) -> None:
        """It was reaped (killed, or it exited on its own)."""
        for spare in [self.busy.pop(pid, None), *[s for s in self.idle if s.pid == pid]]:
            if spare:
                spare.close()
        self.idle = [s for s in self.idle if s.pid != pid]

    def close(self) -> None:
        for spare in [*self.idle, *self.busy.values()]:
            spare.close()
        self.idle = []
