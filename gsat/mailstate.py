"""What the mail gateway keeps under GSAT_HOME/mailgate (mode 0700).

    mailgate/
      gnupg/        the gateway's keyring (gsat.openpgp)
      allowlist     "FINGERPRINT reply-address" per line, '#' comments;
                    written by `gsat-mailgate keys allow|revoke`, editable
      address       the gateway's address, written by `keys init` (a
                    signed text must name it: mailgate.require_to)
      seen/         one file per accepted mail: the replay record
      rate/FPR      when each key's mails of the last hour were accepted
      rejected/     a Maildir of the mails `deliver` rejected: the newest
                    mailgate.keep_rejected (500), each cut at 256 KiB
      log, log.1    one line per mail: accepted or rejected, and why;
                    at 1 MiB log becomes log.1 (the older log.1 goes)

The replay record is keyed on what the signer decided, not on how the
signature is encoded: the signing key's primary fingerprint, the
signature's creation time and a SHA-256 of the signed text.  (gpg's
SIG_ID, the key of older records, is a hash of the signature's numbers,
and those can be re-encoded without the key while gpg still reports the
same good signature: EdDSA S + k*L, ECDSA n - s, RSA s + k*n.)  The text is hashed in a canonical form (lines split at LF, each
without trailing blanks or CR, no trailing empty lines), so that edits a
signature does not cover change nothing; signing the same text again at
another second is a new mail.  A resent mail with new Message-ID, Date or
From, re-encrypted or with its signature re-encoded, is still the same
mail.  The record is created exclusively and fsynced before any action
runs: a mail acts at most once, even across crashes and restarts.

Records written before this key (JSON without "v") are renamed, once, to a
name made of fingerprint and time alone (seen/.v2 marks that done): a mail
accepted before the change still counts as a replay for any text signed by
that key in that second.

Records are pruned a day after they leave the age window, measured with the
largest max_age ever used here (kept in seen/.horizon), so raising max_age
never makes an old signature acceptable again.
"""

import hashlib
import os
import time

from gsat import fsutil, jsontext, trust
from gsat.errors import Rejected, UsageError
from gsat.paths import Path

PRUNE_MARGIN = 86400
KEEP_REJECTED = 500
KEPT_BYTES = 256 << 10
HEX = frozenset("0123456789ABCDEF")


def mailgate_dir(home: Path) -> Path:
    """GSAT_HOME/mailgate, made 0700 when missing; HomeUnusable (exit 6) unless
    it and its keyring gnupg/ are directories of ours that only we can write
    (gsat.trust): another user could otherwise swap the allowlist or the keys."""
    path = Path(home) / "mailgate"
    os.makedirs(path, mode=0o700, exist_ok=True)
    trust.require_dir(path, missing_ok=False)  # lstat: a symlink made exist_ok pass
    trust.require_dir(path / "gnupg")
    if os.lstat(path).st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def normal_fingerprint(text: str) -> str:
    fpr = text.replace(" ", "").upper()
    if len(fpr) not in (40, 64) or not set(fpr) <= HEX:
        raise UsageError(f"{text!r} is not a key fingerprint (40 or 64 hex digits)")
    return fpr


def check_address(address, what: str = "address") -> str:
    """`address` when it is one plain mail address (nothing that could end a header)."""
    text = str(address or "")
    if not text or "@" not in text or any(c.isspace() or not c.isprintable() for c in text) \
            or any(c in text for c in ",;<>\"()"):
        raise UsageError(f"{what} {text!r} is not a mail address")
    return text


class Allowlist:
    def __init__(self, home: Path, configured: dict | None = None):
        self.path = mailgate_dir(home) / "allowlist"
        self.configured = {normal_fingerprint(k): check_address(v, "mailgate.allow:")
                           for k, v in (configured or {}).items()}

    def entries(self) -> dict[str, str]:
        """{fingerprint: reply address}, the file's and config.yaml's mailgate.allow."""
        return {**self._read(), **self.configured}

    def add(self, fingerprint: str, address: str) -> None:
        self._write({**self._read(), normal_fingerprint(fingerprint): check_address(address)})

    def remove(self, fingerprint: str) -> None:
        fpr = normal_fingerprint(fingerprint)
        if fpr in self.configured:
            raise UsageError(f"{fpr} is allowed in config.yaml (mailgate.allow): remove it there")
        entries = self._read()
        if entries.pop(fpr, None) is None:
            raise UsageError(f"{fpr} is not on the allowlist")
        self._write(entries)

    def _read(self) -> dict[str, str]:
        data = trust.read_file(self.path)  # the user's alone: it says who may run jobs
        entries = {}
        for line in (data or b"").decode("utf-8", "replace").splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) == 2:
                entries[normal_fingerprint(fields[0])] = check_address(fields[1], f"{self.path}:")
        return entries

    def _write(self, entries: dict[str, str]) -> None:
        text = "# fingerprint  reply-address  (gsat-mailgate keys allow|revoke)\n"
        text += "".join(f"{fpr} {addr}\n" for fpr, addr in sorted(entries.items()))
        fsutil.atomic_write(self.path, text.encode())


class ReplayLog:
    def __init__(self, home: Path):
        self.dir = mailgate_dir(home) / "seen"
        os.makedirs(self.dir, mode=0o700, exist_ok=True)

    def remember(self, fingerprint: str, signed_at: int, text: str, now: float) -> None:
        """Record the signed text durably, or Rejected when it was seen before."""
        self._migrate()
        digest = text_digest(text)
        if os.path.exists(self.dir / legacy_name(fingerprint, signed_at)):
            self._replayed(legacy_name(fingerprint, signed_at))
        name = record_name(fingerprint, signed_at, digest)
        record = {"v": 2, "fingerprint": fingerprint, "signed_at": signed_at, "text_sha256": digest,
                  "seen_at": now}
        try:
            fsutil.write_new(self.dir / name, jsontext.dumps(record).encode())
        except FileExistsError:
            self._replayed(name)
        fsutil.fsync_dir(self.dir)

    def _replayed(self, name: str):
        try:
            seen = fsutil.read_json(self.dir / name) or {}
        except ValueError:
            seen = {}
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seen.get("seen_at", 0)))
        raise Rejected(f"replay: this signed text was accepted at {when}; sign anew") from None

    def _migrate(self) -> None:
        """Rename records keyed on gpg's SIG_ID to their fingerprint-and-time name (once)."""
        marker = self.dir / ".v2"
        if os.path.exists(marker):
            return
        for name in os.listdir(self.dir):
            try:
                record = None if name.startswith(".") else fsutil.read_json(self.dir / name)
            except (ValueError, OSError):
                continue
            if isinstance(record, dict) and "v" not in record and "fingerprint" in record:
                try:
                    os.replace(self.dir / name, self.dir / legacy_name(record["fingerprint"], record["signed_at"]))
                except OSError:  # another process migrated it first
                    pass
        fsutil.atomic_write(marker, b"records keyed on fingerprint, time and text\n")

    def prune(self, now: float, max_age: float) -> int:
        horizon_file = self.dir / ".horizon"
        try:
            horizon = max(max_age, float(fsutil.read_bytes(horizon_file) or 0))
        except ValueError:
            horizon = max_age
        if horizon == max_age:
            fsutil.atomic_write(horizon_file, b"%d\n" % max_age)
        removed = 0
        for name in os.listdir(self.dir):
            try:
                record = fsutil.read_json(self.dir / name) if not name.startswith(".") else None
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("signed_at", now) < now - horizon - PRUNE_MARGIN:
                fsutil.unlink_quietly(self.dir / name)
                removed += 1
        return removed


class RateLimit:
    """At most `limit` accepted mails per key and hour (mailgate.max_per_hour; 0: no limit).

    rate/FINGERPRINT holds the acceptance times of the last hour, one per
    line; it is read and rewritten under an flock, held while the caller
    records the mail, so that concurrent deliveries count right."""

    def __init__(self, home: Path, limit: int):
        self.dir = mailgate_dir(home) / "rate"
        self.limit = int(limit)

    def admit(self, fingerprint: str, now: float, record) -> None:
        """record() unless `fingerprint` used up its hour (then Rejected); count it if record() returns."""
        import fcntl
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        path = self.dir / normal_fingerprint(fingerprint)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            recent = [t for t in _times(fsutil.read_bytes(path) or b"") if now - 3600 < t <= now + 3600]
            if self.limit and len(recent) >= self.limit:
                raise Rejected(f"rate limit: {self.limit} mails of this key were accepted in the last hour "
                               "(mailgate.max_per_hour)")
            record()
            os.ftruncate(fd, 0)
            os.pwrite(fd, "".join(f"{t:.3f}\n" for t in recent + [now]).encode(), 0)
        finally:
            os.close(fd)


def _times(data: bytes) -> list[float]:
    out = []
    for line in data.split():
        try:
            out.append(float(line))
        except ValueError:
            continue
    return out


def gateway_address(home: Path) -> str | None:
    """The address `keys init` recorded for this gateway, if it did."""
    data = trust.read_file(mailgate_dir(home) / "address")
    return data.decode("utf-8", "replace").strip() or None if data else None


def record_address(home: Path, address: str) -> None:
    fsutil.atomic_write(mailgate_dir(home) / "address", check_address(address, "the gateway address").encode() + b"\n")


def text_digest(text: str) -> str:
    """SHA-256 of `text` in the canonical form the replay record uses."""
    lines = [line.rstrip(" \t\r") for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogatepass")).hexdigest()


def record_name(fingerprint: str, signed_at: int, digest: str) -> str:
    return hashlib.sha256(f"v2:{fingerprint}:{signed_at}:{digest}".encode()).hexdigest()


def legacy_name(fingerprint: str, signed_at: int) -> str:
    return hashlib.sha256(f"legacy:{fingerprint}:{signed_at}".encode()).hexdigest()


def keep_rejected(home: Path, raw: bytes, keep: int = KEEP_REJECTED) -> Path:
    """File a rejected mail in the Maildir mailgate/rejected; its path.

    Anybody can send mail, so the folder is bounded: a mail is kept cut at
    KEPT_BYTES, and only the `keep` newest are kept (names sort in arrival
    order)."""
    folder = mailgate_dir(home) / "rejected"
    for sub in ("tmp", "new", "cur"):
        os.makedirs(folder / sub, mode=0o700, exist_ok=True)
    now = time.time()
    name = f"{int(now)}.M{int(now * 1e6) % 1000000:06d}P{os.getpid()}R{os.urandom(4).hex()}.{os.uname().nodename}"
    fsutil.write_new(folder / "tmp" / name, raw[:KEPT_BYTES])
    os.rename(folder / "tmp" / name, folder / "new" / name)
    _keep_newest(folder, max(1, keep))
    return folder / "new" / name


def _keep_newest(folder: Path, keep: int) -> None:
    kept = sorted((name, sub) for sub in ("new", "cur") for name in os.listdir(folder / sub)
                  if not name.startswith("."))
    for name, sub in kept[:-keep]:
        fsutil.unlink_quietly(folder / sub / name)
