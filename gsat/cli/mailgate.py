"""gsat-mailgate: jobs and commands by OpenPGP-signed mail (see gsat.mailgate).

    gsat-mailgate deliver [--mta]     one mail on stdin (.forward, procmail, Postfix pipe)
    gsat-mailgate watch MAILDIR [--once]
    gsat-mailgate imap [--once]
    gsat-mailgate keys init|allow|import|list|revoke|export

deliver exits 0 when the mail was accepted, 4 when it was rejected (it is
kept in GSAT_HOME/mailgate/rejected), 6 when GSAT_HOME is unusable.  With
--mta a rejection exits 0 (the MTA must not bounce it: no backscatter) and
a temporary failure exits 75 (EX_TEMPFAIL: the MTA retries).
"""

import logging
import os
import signal
import sys

from gsat import config as configmod, fsutil, watch as watchmod
from gsat.cli.common import parser, run, say
from gsat.errors import NOT_ALLOWED, GsatError, UsageError
from gsat.mailstate import Allowlist, mailgate_dir, normal_fingerprint, record_address

PROG = "gsat-mailgate"
EX_TEMPFAIL = 75
LOG_BYTES = 1 << 20


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    config = configmod.load()
    _log_to(mailgate_dir(config.home) / "log", verbose=args.command in ("watch", "imap"))
    return args.run(config, args)


def _parser():
    p = parser(PROG, "Jobs and commands by OpenPGP-signed mail.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    d = sub.add_parser("deliver", help="handle one mail from stdin")
    d.add_argument("--mta", action="store_true", help="exit 0 on rejection and 75 on temporary failure")
    d.set_defaults(run=_deliver)
    w = sub.add_parser("watch", help="handle the mail arriving in a Maildir")
    w.add_argument("maildir")
    w.add_argument("--once", action="store_true", help="handle what is there, then exit")
    w.set_defaults(run=_watch)
    i = sub.add_parser("imap", help="poll an IMAP folder (mailgate.imap_* in config.yaml)")
    i.add_argument("--once", action="store_true", help="poll once, then exit")
    i.set_defaults(run=_imap)
    _keys_parser(sub.add_parser("keys", help="the gateway's keyring and allowlist"))
    return p


def _keys_parser(k) -> None:
    ks = k.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = ks.add_parser("init", help="create the gateway's key pair")
    init.add_argument("--email", help="the key's address (default USER@fqdn)")
    init.add_argument("--name", default="gsat mail gateway")
    init.add_argument("--passphrase", action="store_true", help="protect the key with a passphrase "
                      "(asked for; then name a file holding it in mailgate.passphrase_file)")
    init.add_argument("--passphrase-file", metavar="FILE", help="protect the key with the passphrase in FILE")
    allow = ks.add_parser("allow", help="import a user's public key and allowlist it")
    allow.add_argument("file")
    allow.add_argument("--reply-to", required=True, metavar="ADDR", help="where replies for this key go")
    allow.add_argument("--fingerprint", help="which key of FILE, when it holds several")
    imp = ks.add_parser("import", help="import keys or revocation certificates, allowlisting nothing")
    imp.add_argument("file")
    ks.add_parser("list", help="keys and allowlist")
    revoke = ks.add_parser("revoke", help="take a key off the allowlist and out of the keyring")
    revoke.add_argument("fingerprint")
    ks.add_parser("export", help="print the gateway's public key")
    for action in ks.choices.values():
        action.set_defaults(run=_keys)


def _log_to(path: str, verbose: bool) -> None:
    """Log to `path`, which is bounded (anybody can make the gateway log): at LOG_BYTES it
    becomes path.1, replacing the one before."""
    import logging.handlers
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=1)
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(message)s"))
    root.addHandler(handler)
    console = logging.StreamHandler()
    console.setLevel(logging.INFO if verbose else logging.ERROR)
    console.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    root.addHandler(console)


def _deliver(config, args) -> int:
    from gsat import mailgate, mailparse, mailstate
    try:
        raw = sys.stdin.buffer.read(mailparse.MAX_MAIL + 1)
        while sys.stdin.buffer.read(1 << 16):  # an MTA writing the rest must not die of SIGPIPE
            pass
        outcome = mailgate.Gateway(config).handle(raw)
        if outcome.accepted:
            return 0
        kept = mailstate.keep_rejected(config.home, raw, config["mailgate"]["keep_rejected"])
        say(PROG, f"rejected: {outcome.reason} (kept as {kept})")
        return 0 if args.mta else NOT_ALLOWED
    except (GsatError, OSError) as exc:
        if not args.mta:
            raise
        say(PROG, f"temporary failure: {exc}")
        return EX_TEMPFAIL


def _watch(config, args) -> int:
    from gsat import mailgate
    from gsat.mailsources import MaildirSource
    gateway = mailgate.Gateway(config)
    source = MaildirSource(args.maildir, config["mailgate"]["rejected_folder"])
    if args.once:
        accepted, rejected = mailgate.drain(gateway, source)
        print(f"{accepted} accepted, {rejected} rejected")
        return 0
    stop, wakeup = _stop_on_signals()
    watcher = watchmod.make(config["watch"], source.wake_path(), config["poll_interval"])
    logging.getLogger(__name__).info("ready: watching the Maildir %s", source.path)
    mailgate.watch(gateway, source, watcher, wakeup, stop)
    return 0


def _imap(config, args) -> int:
    import imaplib
    from gsat import mailgate
    from gsat.mailsources import ImapSource
    gateway = mailgate.Gateway(config)
    source = ImapSource(config["mailgate"])
    stop, wakeup = _stop_on_signals()
    log = logging.getLogger(__name__)
    while True:
        try:
            source.connect()
            accepted, rejected = mailgate.drain(gateway, source)
            log.info("imap: %d accepted, %d rejected", accepted, rejected)
        except (OSError, EOFError, imaplib.IMAP4.error) as exc:
            if args.once:
                raise OSError(f"IMAP {config['mailgate']['imap_host']}: {exc}") from None
            log.error("imap: %s", exc)
        finally:
            source.close()
        if args.once or stop():
            return 0
        _sleep_unless_signalled(wakeup, config["mailgate"]["imap_interval"])


def _stop_on_signals():
    flags = []
    read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(write_end)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: flags.append(True))
    return (lambda: bool(flags)), read_end


def _sleep_unless_signalled(wakeup: int, seconds: float) -> None:
    import select
    select.select([wakeup], [], [], seconds)


def _keys(config, args) -> int:
    from gsat import mailgate
    keyring = mailgate.keyring_for(config)
    allowlist = Allowlist(config.home, config["mailgate"]["allow"])
    if args.action == "init":
        return _keys_init(keyring, args, config)
    if args.action == "export":
        sys.stdout.write(keyring.export_public(keyring.own_fingerprint()))
        return 0
    if args.action == "list":
        return _keys_list(keyring, allowlist)
    if args.action == "revoke":
        fpr = normal_fingerprint(args.fingerprint)
        allowlist.remove(fpr)
        if fpr != _own_or_none(keyring):
            keyring.delete_public(fpr)
        print(f"revoked {fpr}")
        return 0
    data = _read_key_file(args.file)
    fingerprints, revocations = keyring.import_keys(data)
    if not fingerprints and not revocations:
        raise UsageError(f"{args.file}: no new OpenPGP key or revocation in it")
    if args.action == "import":
        print("".join(f"imported {fpr}\n" for fpr in fingerprints) + (
            f"imported {revocations} revocation certificate(s)\n" if revocations else ""), end="")
        return 0
    return _keys_allow(keyring, allowlist, fingerprints, args)


def _keys_init(keyring, args, config) -> int:
    import socket
    passphrase = None
    if args.passphrase_file:
        passphrase = (_read_key_file(args.passphrase_file).decode().strip("\r\n")) or None
    elif args.passphrase:
        import getpass
        passphrase = getpass.getpass("passphrase for the gateway key: ")
    if args.passphrase_file or args.passphrase:
        if not passphrase:
            raise UsageError("an empty passphrase")
    email = args.email or f"{os.environ.get('USER') or 'gsat'}@{socket.getfqdn()}"
    fpr = keyring.create_own(args.name, email, passphrase)
    record_address(config.home, email)  # from now on, signed texts must name it (#GSAT-TO)
    print(f"gateway key {fpr} <{email}>")
    print(f"signed texts must hold the line: #GSAT-TO: {email}")
    print("give users its public key: gsat-mailgate keys export > gateway.asc")
    return 0


def _keys_allow(keyring, allowlist, fingerprints, args) -> int:
    primaries = {key["fingerprint"] for key in keyring.public_keys()} & set(fingerprints)
    if args.fingerprint:
        wanted = normal_fingerprint(args.fingerprint)
        if wanted not in primaries:
            raise UsageError(f"{args.file} holds no key {wanted}")
        primaries = {wanted}
    if len(primaries) != 1:
        raise UsageError(f"{args.file} holds {len(primaries)} keys: name one with --fingerprint")
    fpr = primaries.pop()
    allowlist.add(fpr, args.reply_to)
    print(f"allowed {fpr}: replies to {args.reply_to}")
    return 0


def _keys_list(keyring, allowlist) -> int:
    allowed = allowlist.entries()
    own = _own_or_none(keyring)
    seen = set()
    for key in keyring.public_keys():
        fpr = key["fingerprint"]
        seen.add(fpr)
        status = {"e": "expired", "r": "revoked"}.get(key.get("trust"), "valid")
        role = "gateway" if fpr == own else (f"allowed -> {allowed[fpr]}" if fpr in allowed else "not allowed")
        print(f"{fpr}  {status:8} {role:30} {(key.get('uids') or [''])[0]}")
    for fpr in sorted(set(allowed) - seen):
        print(f"{fpr}  {'missing':8} allowed -> {allowed[fpr]}  (no key in the keyring)")
    return 0


def _own_or_none(keyring) -> str | None:
    try:
        return keyring.own_fingerprint()
    except UsageError:
        return None


def _read_key_file(path: str) -> bytes:
    data = fsutil.read_bytes(path, 1 << 20) if path != "-" else sys.stdin.buffer.read(1 << 20)
    if data is None:
        raise UsageError(f"{path}: no such file")
    return data


def entry() -> None:
    run(PROG, main)


if __name__ == "__main__":
    entry()
