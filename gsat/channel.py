"""How commands reach a controller and answers come back.

Every channel has the same small protocol:

    client:     send(msg)                  deliver, no answer wanted
                request(msg, timeout)      deliver, wait for the Answer
    controller: watcher(mode, interval)    what to sleep on
                receive()                  the waiting messages, bad ones set aside
                answer(msg, answer)        reply to msg's sender, if it waits

FileChannel delivers through the host's spool inbox (gsat.spool) and
answers through a FIFO the client made in spool/HOST/reply/.  The SysV
channel (gsat.channel_sysv) carries the same bytes through a message queue.
`open_channel` picks one from the config.
"""


import os

from gsat import lazylog, messages, spool
from gsat.errors import Unreachable
from gsat.layout import Layout

log = lazylog.get(__name__)


class FileChannel:
    def __init__(self, layout: Layout, host: str):
        self.layout, self.host = layout, host
        self.dir = layout.spool(host)
        self.inbox = None  # the controller's side, made on the first receive()

    # ---- client side
    def send(self, msg: messages.Message) -> None:
        spool.deliver(self.dir, messages.encode(msg))

    def request(self, msg: messages.Message, timeout: float) -> messages.Answer:
        from gsat import fifo  # not on gqsub's path, which only sends
        path, fd = fifo.create(self.dir / "reply")
        try:
            self.send(_with_reply(msg, os.path.basename(path)))
            if not fifo.wait([fd], timeout):
                raise Unreachable(f"no answer from the controller of {self.host} within {timeout:g} s")
            return messages.decode_answer(fifo.read(fd))
        finally:
            fifo.remove(path, fd)

    # ---- controller side
    def watcher(self, mode: str, interval: float):
        from gsat import watch
        return watch.make(mode, self.dir / "new", interval)

    def receive(self) -> list[messages.Message]:
        """The next batch of waiting messages (at most spool.BATCH: see `backlog`)."""
        if self.inbox is None:
            self.inbox = spool.Inbox(self.dir)
        return self.inbox.take(messages.decode)

    @property
    def backlog(self) -> bool:
        """Messages already listed wait for the next receive(): do not sleep."""
        return bool(self.inbox and self.inbox.backlog)

    def answer(self, msg: messages.Message, answer: messages.Answer) -> None:
        from gsat import fifo
        name = msg.reply
        if not name or "/" in name or name.startswith("."):
            return
        if fifo.post(self.dir / "reply" / name, messages.encode_answer(answer)) is not True:
            log.info("client of %s %s left before its answer", msg.kind, name)

    def housekeeping(self, now: float) -> None:
        """Remove what crashed writers left in tmp/ and reply FIFOs nobody reads."""
        from gsat import fifo
        spool.reap_tmp(self.dir, now)
        fifo.reap(self.dir / "reply", now - spool.TMP_GRACE)


def _with_reply(msg: messages.Message, reply: str) -> messages.Message:
    return msg.replace(reply=reply, mid=msg.mid or messages.new_mid())


def open_channel(config, layout: Layout, host: str | None = None):
    host = host or config.host
    if config["channel"] == "sysv":
        from gsat.channel_sysv import SysvChannel
        return SysvChannel(config, layout, host)
    return FileChannel(layout, host)
