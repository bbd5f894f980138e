"""Where the gateway's mail comes from: a Maildir, or an IMAP folder.

Both give the same small protocol: `pending()` lists handles of unhandled
mail in arrival order, `read(handle)` gives its raw bytes, `finish(handle,
accepted)` moves it out of the way, so a mail is looked at once.

- Maildir: mail is taken from `new/` (names starting with '.' are skipped);
  accepted mail goes to `cur/` marked seen (`:2,S`), rejected mail to the
  Maildir++ folder `.REJECTED/cur/` beside it, which mail clients show as a
  folder.
- IMAP (imaplib, standard library): IMAPS or STARTTLS, certificate checked
  against the system's CAs or `imap_ca_file`; mail is fetched with
  BODY.PEEK[] and then moved by UID to the done or rejected folder (COPY,
  \\Deleted, EXPUNGE; both folders are created when missing).
"""

import imaplib
import os
import ssl

from gsat import fsutil
from gsat.errors import UsageError
from gsat.mailparse import MAX_MAIL
from gsat.paths import Path


class MaildirSource:
    def __init__(self, path: str, rejected_folder: str):
        self.path = Path(os.path.abspath(path))
        self.rejected = self.path / f".{rejected_folder}"
        for folder in (self.path, self.rejected):
            for sub in ("tmp", "new", "cur"):
                os.makedirs(folder / sub, mode=0o700, exist_ok=True)

    def wake_path(self) -> Path:
        return self.path / "new"

    def pending(self) -> list[str]:
        return sorted(name for name in os.listdir(self.path / "new") if not name.startswith("."))

    def read(self, handle: str) -> bytes:
        return fsutil.read_bytes(self.path / "new" / handle, MAX_MAIL + 1) or b""

    def finish(self, handle: str, accepted: bool) -> str:
        """Move the mail out of new/; where it went."""
        target = (self.path if accepted else self.rejected) / "cur" / (handle.split(":", 1)[0] + ":2,S")
        os.rename(self.path / "new" / handle, target)
        return target


class ImapSource:
    def __init__(self, settings: dict):
        self.settings = settings
        self.password = _read_secret(settings.get("imap_password_file"), "mailgate.imap_password_file")
        if not settings.get("imap_user"):
            raise UsageError("config mailgate.imap_user is not set")
        self.imap = None

    def connect(self) -> None:
        s = self.settings
        context = ssl.create_default_context(cafile=s.get("imap_ca_file") or None)
        if s["imap_security"] == "tls":
            self.imap = imaplib.IMAP4_SSL(s["imap_host"], int(s["imap_port"]), ssl_context=context, timeout=60)
        else:
            self.imap = imaplib.IMAP4(s["imap_host"], int(s["imap_port"]), timeout=60)
            self.imap.starttls(ssl_context=context)
        self.imap.login(s["imap_user"], self.password)
        for folder in (s["done_folder"], s["rejected_folder"]):
            self.imap.create(folder)  # NO when it exists, which is fine
        self._ok(self.imap.select(_quote(s["imap_folder"])), "select")

    def close(self) -> None:
        if self.imap is not None:
            try:
                self.imap.logout()
            except (OSError, imaplib.IMAP4.error):
                pass
            self.imap = None

    def pending(self) -> list[bytes]:
        data = self._ok(self.imap.uid("SEARCH", None, "UNDELETED"), "search")
        return data[0].split() if data and data[0] else []

    def read(self, handle: bytes) -> bytes:
        data = self._ok(self.imap.uid("FETCH", handle, "(BODY.PEEK[])"), "fetch")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2:
                return item[1][:MAX_MAIL + 1]
        return b""

    def finish(self, handle: bytes, accepted: bool) -> str:
        folder = self.settings["done_folder" if accepted else "rejected_folder"]
        self._ok(self.imap.uid("COPY", handle, _quote(folder)), "copy")
        self._ok(self.imap.uid("STORE", handle, "+FLAGS", "(\\Seen \\Deleted)"), "store")
        self.imap.expunge()
        return f"imap:{folder}"

    @staticmethod
    def _ok(response, what: str):
        status, data = response
        if status != "OK":
            raise OSError(f"IMAP {what} failed: {data!r}")
        return data


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _read_secret(path: str | None, key: str) -> str:
    if not path:
        raise UsageError(f"config {key} is not set")
    data = fsutil.read_bytes(os.path.expanduser(path))
    if data is None:
        raise UsageError(f"{key}: {path} does not exist")
    return data.decode().strip("\r\n")
