"""The signed-mail gateway: one mail in, at most one action, at most one reply.

For each mail, in this order, and any failure rejects it:

1. find what is signed or encrypted (gsat.mailparse: top-level PGP/MIME or
   one inline armored block, nothing beside it);
2. decrypt when encrypted (at most 32 recipients: gsat.pgppackets), and
   check the signature (gsat.gpgrun runs gpg,
   gsat.sigstatus judges its status lines): exactly one, good, live key,
   SHA-256 or stronger;
3. the signing key's primary fingerprint must be allowlisted: that gives
   the reply address; no header (From, Reply-To, Subject) is ever used;
   only then is the signed MIME entity parsed;
4. the signature must be younger than mailgate.max_age and not dated ahead
   by more than mailgate.future_skew; with mailgate.require_encryption,
   the mail must have been encrypted;
5. the signed text must parse as a job script or command lines and name
   this gateway in a #GSAT-TO line (gsat.mailactions);
6. the key's hourly quota is checked and the replay record written
   (gsat.mailstate), durably;
7. the action runs: a job is stored and its controller told, commands run
   as gsatctl subprocesses (no shell, `python -I`, in the home directory,
   importing this gsat and never one from the working directory) with
   their output captured;
8. the reply goes to the allowlisted address, signed, and encrypted when
   the signer's key can take it (gsat.mailreply).

A rejection is logged with its reason and answered only when
mailgate.reply_to_rejected names an address.  Never imports the
controller: jobs reach it through the channel like gqsub's do.
"""

import logging
import os
import sys
import time

from gsat import client, mailactions, mailer, mailparse, mailreply, pgppackets, sigstatus, submit
from gsat.config import Config, share_dir
from gsat.errors import GsatError, Rejected, UsageError
from gsat.mailstate import Allowlist, RateLimit, ReplayLog, check_address, gateway_address, mailgate_dir
from gsat.openpgp import Keyring
from gsat.record import Record

log = logging.getLogger(__name__)

COMMAND_TIMEOUT = 60
GSAT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # holds the gsat package running here
RUN_GSATCTL = "import sys; sys.path.insert(0, sys.argv.pop(1)); from gsat.cli.gsatctl import entry; entry()"
MAX_OUTPUT = 64 << 10


class Opened(Record):
    """What the one good signature covers: a MIME entity or plain text, not yet parsed."""

    __slots__ = ()
    FIELDS = {"signature": None, "content": b"", "entity": False, "encrypted": False}

    def text(self) -> str:
        """The signed text; parsed only once the signer is known to be allowed (step 3)."""
        return mailparse.text_of_entity(self.content) if self.entity else mailparse.text_of_plain(self.content)


class Outcome(Record):
    __slots__ = ()
    FIELDS = {"accepted": False, "reason": "", "reply": ""}


def keyring_for(config: Config) -> Keyring:
    settings = config["mailgate"]
    passphrase = None
    if settings["passphrase_file"]:
        with open(os.path.expanduser(settings["passphrase_file"])) as f:
            passphrase = f.read().strip("\r\n")
    return Keyring(mailgate_dir(config.home) / "gnupg", passphrase)


class Gateway:
    def __init__(self, config: Config):
        self.config = config
        self.settings = config["mailgate"]
        if self.settings["reply_to_rejected"]:
            check_address(self.settings["reply_to_rejected"], "mailgate.reply_to_rejected:")
        if not str(self.settings["from"] or "").isprintable():
            raise UsageError("config mailgate.from: must be one line")
        self.keyring = keyring_for(config)
        self.allowlist = Allowlist(config.home, self.settings["allow"])
        self.replay = ReplayLog(config.home)
        self.rate = RateLimit(config.home, self.settings["max_per_hour"])
        self.addresses = self._own_addresses()

    def _own_addresses(self) -> set[str]:
        """What a #GSAT-TO line may name: mailgate.address, else what `keys init` recorded."""
        configured = self.settings["address"]
        if isinstance(configured, str):
            configured = [configured]
        found = [check_address(a, "mailgate.address:") for a in configured or []] or \
            [a for a in [gateway_address(self.config.home)] if a]
        return {a.lower() for a in found}

    def handle(self, raw: bytes, now: float | None = None) -> Outcome:
        now = time.time() if now is None else now
        ident = mailparse.header(raw, "Message-ID") or "(no Message-ID)"
        try:
            opened, address, action = self._admit(raw, now)
        except Rejected as exc:
            detail = getattr(exc, "detail", "")
            reason = printable(str(exc) + (f" ({detail})" if detail else ""))
            log.warning("rejected %s: %s", ident, reason)
            if not mailparse.auto_submitted(raw):  # RFC 3834: no loops
                self._tell_rejection(now, printable(str(exc)))
            return Outcome(accepted=False, reason=reason)
        # from here on the mail is spent (its replay record is written): nothing may raise
        log.info("accepted %s: signed by %s at %s", ident, opened.signature.fingerprint, opened.signature.time)
        try:
            text, subject = self._act(action, address)
        except Exception as exc:  # a failed fork, a full disk: say so in the reply
            log.error("acting on %s failed: %s", ident, exc)
            text, subject = f"error: {printable(str(exc))}\n", "gsat: error"
        self._reply(text, subject, address, opened.signature.fingerprint)
        try:
            self.replay.prune(now, self.settings["max_age"])
        except OSError as exc:
            log.error("pruning replay records: %s", exc)
        return Outcome(accepted=True, reason="accepted", reply=text)

    def _admit(self, raw: bytes, now: float):
        """Steps 1 to 6: (opened mail, reply address, action), or Rejected."""
        opened = failing_closed("unreadable mail", self.open, raw)
        address = self._authorise(opened, now)
        text = failing_closed("unreadable signed text", opened.text)
        action = mailactions.parse(text)
        self._check_addressed(text)
        signature = opened.signature
        self.rate.admit(signature.fingerprint, now,
                        lambda: self.replay.remember(signature.fingerprint, signature.time, text, now))
        return opened, address, action

    def _check_addressed(self, text: str) -> None:
        if not self.settings["require_to"]:
            return
        if not self.addresses:  # a set-up from before #GSAT-TO: say how to turn it on
            log.warning("signed texts need not name this gateway: set mailgate.address to require it")
            return
        mailactions.check_addressed(text, self.addresses)

    def open(self, raw: bytes, layer: int = 0, inline: bool = False) -> Opened:
        """The one good signature over the mail, and what it covers (steps 1 and 2).

        Layer 1 is what an encrypted mail held: a MIME entity or an inline
        block, which must be signed and must not be encrypted again."""
        sealed = mailparse.seal_of_text(raw) if inline else mailparse.seal_of(raw)
        if sealed.kind == "detached":
            statuses = self.keyring.verify_detached(sealed.data, sealed.signature)
            return Opened(signature=sigstatus.verdict(statuses), content=sealed.data, entity=True)
        if sealed.armored.startswith(mailparse.ARMORED[0]):
            pgppackets.check_recipients(sealed.armored)
        content, statuses = self.keyring.open_armored(sealed.armored)
        encrypted = sigstatus.was_encrypted(statuses)
        if encrypted and layer:
            raise Rejected("encrypted twice")
        if encrypted and sigstatus.signature_count(statuses) == 0:
            sigstatus.check_fatal(statuses)
            inner = self.open(content, layer=1, inline=not mailparse.is_mime_entity(sealed))
            return inner.replace(encrypted=True)
        return Opened(signature=sigstatus.verdict(statuses), content=content,
                      entity=mailparse.is_mime_entity(sealed), encrypted=encrypted)

    def _authorise(self, opened: Opened, now: float) -> str:
        fingerprint = opened.signature.fingerprint
        address = self.allowlist.entries().get(fingerprint)
        if not address:
            raise mailparse.rejected("the signing key is not on the allowlist", fingerprint)
        if self.settings["require_encryption"] and not opened.encrypted:
            raise Rejected("mailgate.require_encryption is set, and this mail was not encrypted")
        mailactions.check_age(opened.signature.time, now, self.settings["max_age"], self.settings["future_skew"])
        return address

    def _act(self, action, address: str) -> tuple[str, str]:
        """(the reply's text, its subject)."""
        if isinstance(action, mailactions.JobScript):
            try:
                ids, warning = self._submit(action.script, address)
            except (GsatError, OSError) as exc:
                return f"error: {exc}\n", "gsat: job not submitted"
            return "".join(f"jobId:{i}\n" for i in ids) + (f"{warning}\n" if warning else ""), \
                f"gsat: jobId:{ids[0]}"
        outputs = [run_command(argv) for argv in action.argvs]
        return "".join(outputs), f"gsat: {len(outputs)} command{'s' if len(outputs) > 1 else ''}"

    def _submit(self, script: bytes, address: str) -> tuple[list[int], str | None]:
        """Store the job as gqsub would, run from $HOME; its -m mail goes to the signer's address."""
        submit.check_script(script)
        ctx = client.context()
        opts = {"name": "mail", "mail_to": [address], **submit.directives(script)}
        home = os.path.expanduser("~")
        spec = submit.build(opts, "mail", [], mail_environ(), home,
                            [ctx.layout.user_jobtypes(), share_dir() / "etc" / "jobtypes"], ctx.config.host)
        ids, warning = client.store_and_notify(ctx, spec, script, submit.array_count(spec))
        log.info("submitted job %s", ",".join(map(str, ids)))
        return ids, warning

    def _reply(self, text: str, subject: str, address: str, fingerprint: str) -> None:
        try:
            raw, sender = mailreply.compose(text, subject, address, self.settings["from"], self.keyring, fingerprint)
            mailer.send_bytes(raw, sender, [address], self.settings)
        except (OSError, GsatError, ValueError) as exc:
            log.error("reply to %s not sent: %s", address, exc)
            return
        except Exception as exc:  # smtplib's errors have no common base with OSError
            log.error("reply to %s not sent: %s: %s", address, type(exc).__name__, exc)
            return
        log.info("replied to %s: %s", address, subject)

    def _tell_rejection(self, now: float, reason: str) -> None:
        """A note to mailgate.reply_to_rejected, in gsat's words only: nothing the sender chose
        (Message-ID, Subject, a MIME type, a command line) is quoted in a mail the gateway signs."""
        address = self.settings["reply_to_rejected"]
        if address:
            when = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(now))
            self._reply(f"a mail was rejected at {when}: {reason}\n"
                        f"(details in {mailgate_dir(self.config.home) / 'log'})\n",
                        "gsat: mail rejected", address, None)


def mail_environ() -> dict:
    """The environment a mailed job is submitted from: the login-like variables only, so that
    -V or -v VAR in a mailed script never copies the gateway's (an MTA's, a cron job's) secrets."""
    from gsat import environment
    return {k: v for k, v in os.environ.items() if k in environment.KEEP or k.startswith("LC_")}


def failing_closed(what: str, step, *args):
    """step(*args), with any surprise of a parser fed hostile input turned into a rejection."""
    try:
        return step(*args)
    except Rejected:
        raise
    except Exception as exc:  # a RecursionError deep in the email package, say: fail closed, stay up
        log.exception(what)
        raise Rejected(f"{what} ({type(exc).__name__})") from None


def run_command(argv: list[str]) -> str:
    """One command line's transcript: the line, its output, and its exit value when not 0."""
    import subprocess
    # -I: neither the working directory nor PYTHON* variables choose which gsat runs (a gsat.py
    # planted where the gateway was started must not); this gsat's own tree is put first instead
    cmd = [sys.executable, "-I", "-c", RUN_GSATCTL, GSAT_ROOT, argv[0][1:], *argv[1:]]
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=COMMAND_TIMEOUT,
                              cwd=os.path.expanduser("~"))
    except subprocess.TimeoutExpired:
        return f"$ {' '.join(argv)}\n(no answer within {COMMAND_TIMEOUT} s)\n"
    except OSError as exc:
        return f"$ {' '.join(argv)}\n(not run: {exc})\n"
    output = (done.stdout + done.stderr)[:MAX_OUTPUT].decode("utf-8", "replace")
    status = f"(exit {done.returncode})\n" if done.returncode else ""
    return f"$ {' '.join(argv)}\n{output}{status}"


def printable(text: str) -> str:
    """One log line's worth of `text`: control characters shown as spaces."""
    return "".join(c if c.isprintable() else " " for c in text)[:300]


def drain(gateway: Gateway, source) -> tuple[int, int]:
    """Handle every pending mail of `source`; (accepted, rejected)."""
    counts = [0, 0]
    for handle in source.pending():
        try:
            outcome = gateway.handle(source.read(handle))
            where = source.finish(handle, outcome.accepted)
        except (OSError, GsatError) as exc:  # GSAT_HOME or the source failing: try again later
            log.error("mail %s left where it is: %s", handle, exc)
            continue
        if not outcome.accepted:
            log.warning("moved %s to %s", handle, where)
        counts[0 if outcome.accepted else 1] += 1
    return counts[0], counts[1]


def watch(gateway: Gateway, source, watcher, wakeup_fd: int, stop) -> None:
    """drain() whenever `watcher` says the source changed, until stop() is true.

    `wakeup_fd` is the read end of signal.set_wakeup_fd's pipe: a signal
    ends the wait at once (select itself is retried after a handler)."""
    import select
    while not stop():
        drain(gateway, source)
        fd = watcher.fileno()
        ready, _, _ = select.select([wakeup_fd] + ([fd] if fd is not None else []), [], [],
                                    watcher.interval or 60.0)  # inotify: still rescan each minute
        if fd in ready:
            watcher.drain()
        if wakeup_fd in ready:
            os.read(wakeup_fd, 512)
