"""Real OpenPGP people and real mails for the gateway's tests.

A Person has a GNUPGHOME of their own and a real ed25519/cv25519 key made
by gpg; mails are built as raw bytes the way mail clients send them
(inline clearsigned, PGP/MIME signed, PGP/MIME encrypted).
"""

import base64
import email.utils
import os
import subprocess
import time
from pathlib import Path

import pgpkit
from helpers import BIN

DAY = 86400
GATEWAY = "gate@example.org"  # the address of the test gateway (`keys init --email`)
TO = f"#GSAT-TO: {GATEWAY}\n"
JOB = f"#!/bin/sh\n{TO}#GSAT -N fromMail\necho hello from mail\n"
REPLY_TO = "alice-replies@example.org"


class Person:
    def __init__(self, root: Path, name: str, expire: str = "0", created: int | None = None,
                 algos: tuple[str, str] = ("ed25519", "cv25519")):
        self.name = name
        self.email = f"{name}@example.org"
        self.home = root / name
        self.home.mkdir(mode=0o700, parents=True)
        self.gpg("--quick-gen-key", f"{name} <{self.email}>", algos[0], "sign,cert", expire, at=created)
        self.fingerprint = self.gpg("--with-colons", "--list-keys", self.email).decode().split("fpr:::::::::")[1][:40]
        self.gpg("--quick-add-key", self.fingerprint, algos[1], "encr", expire, at=created)

    def gpg(self, *args, data: bytes | None = None, at: int | None = None, check: bool = True) -> bytes:
        cmd = ["gpg", "--homedir", str(self.home), "--batch", "--yes", "--pinentry-mode", "loopback",
               "--passphrase", "", "--trust-model", "always"]
        if at is not None:
            cmd += ["--faked-system-time", str(at)]
        proc = subprocess.run(cmd + list(args), input=data, capture_output=True, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"gpg {args[:2]} failed: {proc.stderr.decode(errors='replace')}")
        return proc.stdout

    def public_key(self) -> bytes:
        return self.gpg("--armor", "--export", self.fingerprint)

    def revocation(self) -> bytes:
        """gpg's ready-made revocation certificate, armed (gpg stores it with ':' in front)."""
        text = (self.home / "openpgp-revocs.d" / f"{self.fingerprint}.rev").read_bytes()
        return text.replace(b"\n:-----BEGIN", b"\n-----BEGIN")

    def clearsign(self, text: str, digest: str = "SHA256", at: int | None = None, also: "Person" = None) -> bytes:
        signers = ["-u", self.fingerprint] + (["-u", also.fingerprint] if also else [])
        if also:  # the second signer's key must be in this keyring
            self.gpg("--import", data=also.public_key())
            also_secret = also.gpg("--armor", "--export-secret-keys", also.fingerprint)
            self.gpg("--import", data=also_secret)
        return self.gpg("--digest-algo", digest, *signers, "--clearsign", data=text.encode(), at=at)

    def detached(self, data: bytes, at: int | None = None, textmode: bool = False) -> bytes:
        return self.gpg("--digest-algo", "SHA256", "-u", self.fingerprint, "--armor", "--detach-sign",
                        *(["--textmode"] if textmode else []), data=data, at=at)

    def sign_encrypt(self, data: bytes, recipient_key: Path, sign: bool = True, to_self: bool = False) -> bytes:
        args = ["--armor", "--recipient-file", str(recipient_key), "--encrypt"]
        if to_self:  # what mail clients do by default, so that the sender can read the sent mail
            args = ["--recipient", self.fingerprint] + args
        if sign:
            args = ["-u", self.fingerprint, "--digest-algo", "SHA256", "--sign"] + args
        return self.gpg(*args, data=data)

    def open(self, armored: bytes) -> tuple[bytes, str]:
        """Decrypt (and check) a reply: (plaintext, gpg's status lines)."""
        cmd = ["gpg", "--homedir", str(self.home), "--batch", "--status-fd", "2", "--trust-model", "always",
               "--decrypt"]
        proc = subprocess.run(cmd, input=armored, capture_output=True, timeout=60)
        return proc.stdout, proc.stderr.decode(errors="replace")

    def verify_detached(self, data: bytes, signature: bytes, tmp: Path) -> str:
        (tmp / "reply.sig").write_bytes(signature)
        (tmp / "reply.data").write_bytes(data)
        proc = subprocess.run(["gpg", "--homedir", str(self.home), "--batch", "--status-fd", "1",
                               "--trust-model", "always", "--verify", str(tmp / "reply.sig"),
                               str(tmp / "reply.data")], capture_output=True, timeout=60)
        return proc.stdout.decode(errors="replace")

    def stop(self) -> None:
        stop_agent(self.home)


def stop_agent(gnupghome: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(gnupghome), "--kill", "gpg-agent"],
                   capture_output=True, timeout=30)


def headers(frm: str = "alice@example.org", subject: str = "job", msgid: str | None = None,
            date: str | None = None, to: str = "gsat@example.org") -> bytes:
    lines = [f"From: {frm}", f"To: {to}", f"Subject: {subject}",
             f"Date: {date or email.utils.formatdate()}",
             f"Message-ID: {msgid or email.utils.make_msgid('test')}", "MIME-Version: 1.0"]
    return ("\r\n".join(lines) + "\r\n").encode()


def inline(body: bytes, **kw) -> bytes:
    return headers(**kw) + b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + crlf(body)


def text_entity(text: str) -> bytes:
    """A text/plain MIME entity with CRLF line ends, as PGP/MIME signs it."""
    return crlf(b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
                + text.encode())


def signed_entity(entity: bytes, signature: bytes, boundary: str = "sig-b") -> bytes:
    """The multipart/signed entity (its Content-Type header, then the body)."""
    return (f'Content-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; '
            f'boundary="{boundary}"\r\n\r\n--{boundary}\r\n').encode() + entity + \
        f"\r\n--{boundary}\r\nContent-Type: application/pgp-signature\r\n\r\n".encode() + crlf(signature) + \
        f"\r\n--{boundary}--\r\n".encode()


def pgp_mime(person: Person, text: str, at: int | None = None, **kw) -> bytes:
    entity = text_entity(text)
    return headers(**kw) + signed_entity(entity, person.detached(entity, at=at))


def encrypted_mime(armored: bytes, **kw) -> bytes:
    return headers(**kw) + (
        b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="enc-b"\r\n\r\n'
        b"--enc-b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n"
        b'--enc-b\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n'
        + crlf(armored) + b"\r\n--enc-b--\r\n")


def mixed(parts: list[bytes], **kw) -> bytes:
    """multipart/mixed around raw entities."""
    body = b"".join(b"--mix-b\r\n" + part.rstrip(b"\r\n") + b"\r\n" for part in parts)
    return headers(**kw) + b'Content-Type: multipart/mixed; boundary="mix-b"\r\n\r\n' + body + b"--mix-b--\r\n"


def armor_signatures(*armored: bytes) -> bytes:
    """Several detached signatures as one armored block (their packets back to back)."""
    return armor(b"".join(pgpkit.dearmor(a) for a in armored), "SIGNATURE")


def armor(packets: bytes, kind: str = "MESSAGE", header: bytes = b"") -> bytes:
    """OpenPGP ASCII armor (RFC 4880 §6.2) around `packets`, with an optional armor header line."""
    lines = [base64.b64encode(packets[i:i + 48]) for i in range(0, len(packets), 48)]
    crc = base64.b64encode(pgpkit.crc24(packets).to_bytes(3, "big"))
    return (f"-----BEGIN PGP {kind}-----\n".encode() + (header + b"\n" if header else b"") + b"\n"
            + b"\n".join(lines) + b"\n=" + crc + f"\n-----END PGP {kind}-----\n".encode())


def literal_packet(data: bytes, name: bytes = b"") -> bytes:
    """An OpenPGP literal data packet (tag 11): data, and no signature at all."""
    body = b"b" + bytes([len(name)]) + name + int(time.time()).to_bytes(4, "big") + data
    return bytes([0xC0 | 11, 0xFF]) + len(body).to_bytes(4, "big") + body


def forged_status(fingerprint: str, separator: bytes) -> bytes:
    """Text that reads as gpg status lines of a good signature if a reader splits lines at `separator`."""
    lines = [b"[GNUPG:] NEWSIG", f"[GNUPG:] GOODSIG {fingerprint[-16:]} x".encode(),
             f"[GNUPG:] SIG_ID forged 2026-11-21 {now()}".encode(),
             f"[GNUPG:] VALIDSIG {fingerprint} 2026-11-21 {now()} 0 4 0 22 8 00 {fingerprint}".encode()]
    return separator + separator.join(lines) + separator


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def now() -> int:
    return int(time.time())


def maildir_put(maildir: Path, raw: bytes) -> str:
    """Deliver into a Maildir the way an MDA does: tmp/, then rename into new/."""
    name = f"{time.time_ns()}.P{os.getpid()}.test"
    (maildir / "tmp" / name).write_bytes(raw)
    os.rename(maildir / "tmp" / name, maildir / "new" / name)
    return name


# ---- the gateway under test (fixtures in conftest.py) ----

def configure(g, **mailgate) -> None:
    """config.yaml: replies go to the test's SMTP server, plus `mailgate` keys."""
    g.write_config({"autostart": False, "kill_grace": 2, "mailgate": {
        "method": "smtp", "smtp_host": "127.0.0.1", "smtp_port": g.mail_port, "from": "gate@example.org",
        **mailgate}})


def deliver(g, raw: bytes, *args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "gsat-mailgate"), "deliver", *args], input=raw, capture_output=True,
                          timeout=60, env=g.env, cwd=cwd)


def stored_jobs(g) -> list[str]:
    jobs = g.home / "jobs"
    return sorted(p.name for p in jobs.iterdir()) if jobs.is_dir() else []


def gate_log(g) -> str:
    path = g.home / "mailgate" / "log"
    return path.read_text() if path.exists() else ""
