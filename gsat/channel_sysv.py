"""The System V message queue channel (config `channel: sysv`), one host only.

The same messages as the file channel (gsat.messages, JSON) travel through
one queue per GSAT_HOME, user and host:

    key      the first 31 bits of sha256("HOME:UID:HOST"), never 0
    mode     0600, created and owned by the user; any other queue under that
             key is refused (exit 4): whoever can write to it could inject
             commands, and its creator keeps that right even after giving
             the queue to the user (msgctl IPC_SET)
    type 1   requests to the controller
    type P   answers to the client whose pid is P; the answer carries the
             request's `mid`, so a stale answer left for an earlier process
             with the same pid is recognised and dropped

A queue has no file descriptor to sleep on, so a client rings the
controller's doorbell after sending: SIGUSR1 to the pid in hosts/HOST/pid,
which wakes its select() through the signal wake-up pipe.  A message sent
while no controller runs waits in the queue; a starting controller drains
the queue (and rescans jobs/).  A controller whose queue was removed
(ipcrm, systemd's RemoveIPC) recreates it on its next wake-up and rescans.
Job scripts and output stay on disk; only small messages cross the queue,
and one larger than the kernel's msgmax is refused before sending.  The
answers of clients that gave up are drained at the heartbeat once their
process is gone, so they never fill the queue.
"""

import hashlib
import logging
import os
import signal
import time

from gsat import daemon, messages, procinfo, watch
from gsat.errors import BadMessage, NotAllowed, Unreachable, UsageError

log = logging.getLogger(__name__)

REQUEST = 1
MSGMAX_PATH = "/proc/sys/kernel/msgmax"


def queue_key(home, uid: int, host: str) -> int:
    digest = hashlib.sha256(f"{os.path.realpath(home)}:{uid}:{host}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF or 1


def msgmax() -> int:
    try:
        with open(MSGMAX_PATH) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 8192


class SysvChannel:
    def __init__(self, config, layout, host: str):
        import sysv_ipc
        self.ipc = sysv_ipc
        if watch.is_network(layout.home):
            raise UsageError(f"channel sysv works on one host only, and {layout.home} is on a "
                             f"network file system; use channel: file")
        self.layout, self.host = layout, host
        _one_host_only(layout, host)
        self.key = queue_key(layout.home, os.geteuid(), host)
        self.max_size = min(msgmax(), messages.MAX_SIZE)
        self.answered: dict[int, int | None] = {}  # client pid -> its start ticks
        self.bad = None  # spool/HOST/bad, once a bad message comes (gsat.spool.BadShelf)
        self.queue = self._open()

    def _open(self):
        queue = self.ipc.MessageQueue(self.key, self.ipc.IPC_CREAT, mode=0o600,
                                      max_message_size=msgmax())
        _check_queue(queue, self.key)
        return queue

    # ---- client side
    def send(self, msg: messages.Message) -> None:
        data = messages.encode(msg)
        if len(data) > self.max_size:
            raise UsageError(f"message of {len(data)} bytes is larger than the queue allows "
                             f"({self.max_size}); nothing was sent")
        self._put(data, REQUEST, deadline=time.monotonic() + 10.0)
        self._ring()

    def request(self, msg: messages.Message, timeout: float) -> messages.Answer:
        msg = msg.replace(reply=str(os.getpid()), mid=msg.mid or messages.new_mid())
        self._drop_stale(os.getpid())
        self.send(msg)
        # msgrcv has no timeout: block in it and let an interval timer interrupt it
        previous = signal.signal(signal.SIGALRM, lambda *_: None)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            return self._answer_to(msg.mid)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def _answer_to(self, mid: str) -> messages.Answer:
        while True:
            try:
                data, _ = self.queue.receive(block=True, type=os.getpid())
            except self.ipc.ExistentialError:
                raise Unreachable("the SysV queue was removed while waiting for an answer") from None
            except self.ipc.Error:  # "Signaled while waiting": the timer ran out
                raise Unreachable(f"no answer from the controller of {self.host} in time") from None
            answer = messages.decode_answer(data)
            if answer.mid in ("", mid):
                return answer

    def _put(self, data: bytes, mtype: int, deadline: float) -> None:
        while True:
            try:
                self.queue.send(data, block=False, type=mtype)
                return
            except self.ipc.BusyError:
                if time.monotonic() > deadline:
                    raise Unreachable("the SysV queue stays full: is the controller running?") from None
                time.sleep(0.005)
            except (self.ipc.ExistentialError, OSError):
                self.queue = self._open()  # removed under us: a new one, same key

    def _drop_stale(self, mtype: int) -> None:
        while True:
            try:
                self.queue.receive(block=False, type=mtype)
            except (self.ipc.BusyError, self.ipc.ExistentialError, OSError):
                return

    def _ring(self) -> None:
        pid = daemon.running_pid(self.layout) if self.host == self.layout.host else None
        if pid and pid > 0:
            try:
                os.kill(pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass

    # ---- controller side
    def watcher(self, mode: str, interval: float):
        return watch.PollWatcher(None)  # woken by the doorbell signal, not by a file

    def receive(self) -> list[messages.Message]:
        """Every waiting request; a bad one is kept in spool/HOST/bad and never
        costs the others (they are off the queue already: an exception here
        would lose them)."""
        out = []
        while True:
            try:
                data, _ = self.queue.receive(block=False, type=REQUEST)
            except self.ipc.BusyError:
                return out
            except (self.ipc.ExistentialError, OSError) as exc:
                log.warning("the SysV queue is gone (%s): recreating it", exc)
                self.queue = self._open()
                self.lost = True
                return out
            _decode_into(out, data, self._bad_shelf())

    def _bad_shelf(self):
        """spool/HOST/bad, bounded as the file channel's (gsat.spool.BadShelf)."""
        if self.bad is None:
            from gsat import spool
            self.bad = spool.BadShelf(self.layout.spool(self.host))
        return self.bad

    def answer(self, msg: messages.Message, answer: messages.Answer) -> None:
        try:
            client = int(msg.reply or 0)
        except ValueError:
            return
        if client <= REQUEST:
            return
        ticks = procinfo.start_ticks(client)
        if ticks is None:
            return  # the client is gone already: nobody would read the answer
        data = messages.encode_answer(answer.replace(mid=msg.mid))
        try:
            self.queue.send(data, block=False, type=client)
            self.answered[client] = ticks
        except (self.ipc.BusyError, self.ipc.ExistentialError, OSError) as exc:
            log.warning("answer to %d dropped: %s", client, exc)

    def housekeeping(self, now: float) -> None:
        """Drain the answers of clients that are gone (they gave up waiting, or
        died): nobody else reads them, and they would fill the queue."""
        for pid, ticks in list(self.answered.items()):
            if procinfo.start_ticks(pid) == ticks:
                continue  # still there: it may yet read its answer
            self._drop_stale(pid)  # gone, or the pid is another process now
            del self.answered[pid]

    lost = False  # set when the queue had to be recreated: the controller rescans


def _check_queue(queue, key: int) -> None:
    """NotAllowed unless the queue is ours alone: created by us (the creator
    keeps its rights whoever the owner becomes: another user can create the
    queue under our key and then give it to us), owned by us, mode 0600."""
    me = os.geteuid()
    if queue.cuid != me or queue.uid != me or queue.mode & 0o777 != 0o600:
        raise NotAllowed(f"SysV queue {key:#x} has creator {queue.cuid}, owner {queue.uid} and mode "
                         f"{queue.mode & 0o777:04o}, not yours alone with 0600: refusing it "
                         f"(whoever made it could inject commands; ipcrm -Q {key:#x} once you trust "
                         f"nothing uses it)")


def _one_host_only(layout, host: str) -> None:
    if host != layout.host:
        raise UsageError(f"channel sysv reaches only this host's controller, not {host}'s; "
                         f"use channel: file for several hosts")
    from gsat import heartbeat
    for other in heartbeat.hosts(layout):
        if other != host and heartbeat.status(heartbeat.read(layout, other), None) == "up":
            raise UsageError(f"channel sysv works on one host only, and {other} shares "
                             f"{layout.home}; use channel: file")


def _decode_into(out: list, data: bytes, shelf) -> None:
    try:
        out.append(messages.decode(data))
    except BadMessage as exc:
        shelf.keep(data, str(exc))
    except Exception as exc:  # a decoder bug: still one message set aside, not the batch lost
        shelf.keep(data, f"unreadable: {type(exc).__name__}: {exc}")
