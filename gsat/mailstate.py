"""What the mail gateway keeps under GSAT_HOME/mailgate (mode 0700).

    mailgate/
      gnupg/        the gateway's keyring (gsat.openpgp)
      allowlist     "FINGERPRINT reply-address" per line, '#' comments;
                    written by `gsat-mailgate keys allow|revoke`, editable
      seen/         one file per accepted signature: the replay record
      rejected/     a Maildir of the mails `deliver` rejected
      log           one line per mail: accepted or rejected, and why

The replay record is keyed on the signature itself: the signing key's
primary fingerprint, the signature's time and gpg's SIG_ID (computed from
the signature, not from the mail's bytes), so a resent mail with new
Message-ID, Date or From headers, or with its text altered in ways a
text-mode signature does not cover, is still the same mail.  It is created exclusively and fsynced before any
action runs: a mail acts at most once, even across crashes and restarts.
Records are pruned a day after they leave the age window, measured with the
largest max_age ever used here (kept in seen/.horizon), so raising max_age
never makes an old signature acceptable again.
"""

import hashlib
import os
import time

from gsat import fsutil, jsontext
from gsat.errors import Rejected, UsageError
from gsat.paths import Path

PRUNE_MARGIN = 86400
HEX = frozenset("0123456789ABCDEF")


def mailgate_dir(home: Path) -> Path:
    path = Path(home) / "mailgate"
    os.makedirs(path, mode=0o700, exist_ok=True)
    if os.stat(path).st_mode & 0o077:
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
        data = fsutil.read_bytes(self.path)
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

    def remember(self, fingerprint: str, signed_at: int, sig_id: str, now: float) -> None:
        """Record the signature durably, or Rejected when it was seen before."""
        name = hashlib.sha256(f"{fingerprint}:{signed_at}:{sig_id}".encode()).hexdigest()
        record = {"fingerprint": fingerprint, "signed_at": signed_at, "sig_id": sig_id, "seen_at": now}
        try:
            fsutil.write_new(self.dir / name, jsontext.dumps(record).encode())
        except FileExistsError:
            seen = fsutil.read_json(self.dir / name) or {}
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seen.get("seen_at", 0)))
            raise Rejected(f"replay: this signature was accepted at {when}; sign anew") from None
        fsutil.fsync_dir(self.dir)

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


def keep_rejected(home: Path, raw: bytes) -> Path:
    """File a rejected mail in the Maildir mailgate/rejected; its path."""
    folder = mailgate_dir(home) / "rejected"
    for sub in ("tmp", "new", "cur"):
        os.makedirs(folder / sub, mode=0o700, exist_ok=True)
    name = f"{int(time.time())}.P{os.getpid()}R{os.urandom(4).hex()}.{os.uname().nodename}"
    fsutil.write_new(folder / "tmp" / name, raw)
    os.rename(folder / "tmp" / name, folder / "new" / name)
    return folder / "new" / name
