"""The gateway's keyring: python-gnupg over a GNUPGHOME of its own.

The keyring (GSAT_HOME/mailgate/gnupg, mode 0700) holds the gateway's own
key pair and the public keys of the people who may mail it.  Membership
plus the allowlist is the authorisation, so gpg runs with
`--trust-model always`: gpg's web of trust plays no part.

Verification results are not taken from python-gnupg's summary fields
(a GOODSIG after a BADSIG turns `valid` back on): every status line is
recorded in order and gsat.sigstatus judges them.  A status line that
python-gnupg cannot parse is recorded as HANDLER_ERROR, and a non-zero exit
of gpg as GPG_EXIT; both reject.

gpg's status lines share stderr with its messages, and some of those echo
what the mail says (an unknown armor header, for one).  python-gnupg splits
stderr into lines with a text reader that also breaks at NEL (0x85), VT,
FS and CR, so a forged "[GNUPG:] GOODSIG ..." behind one of those bytes
would read as a status line.  _StatusGPG splits gpg's stderr at LF only,
where gpg itself ends a line, so text gpg echoes can never start one.
"""

import os
import tempfile

import gnupg

from gsat.errors import UsageError
from gsat.paths import Path

GPG_OPTIONS = ["--trust-model", "always", "--no-auto-key-retrieve", "--no-auto-key-locate"]


class _Recorder:
    """Mixed into python-gnupg's result classes: keeps every status line."""

    def __init__(self, gpg):
        super().__init__(gpg)
        self.statuses = []

    def handle_status(self, key, value):
        self.statuses.append((key, value))
        try:
            super().handle_status(key, value)
        except (ValueError, KeyError, IndexError):
            self.statuses.append(("HANDLER_ERROR", key))


class _StatusGPG(gnupg.GPG):
    def _read_response(self, stream, result):
        raw = stream.stream.read()  # the bytes under python-gnupg's text reader
        for line in raw.split(b"\n"):
            if line.startswith(b"[GNUPG:] "):
                keyword, _, value = line[9:].rstrip(b"\r").decode("utf-8", "replace").partition(" ")
                result.handle_status(keyword, value)
        result.stderr = raw.decode("utf-8", "replace")


class _Verify(_Recorder, gnupg.Verify):
    pass


class _Crypt(_Recorder, gnupg.Crypt):
    pass


class Keyring:
    def __init__(self, home: Path, passphrase: str | None = None):
        os.makedirs(home, mode=0o700, exist_ok=True)
        os.chmod(home, 0o700)
        self.home = Path(home)
        self.passphrase = passphrase
        self.gpg = _StatusGPG(gnupghome=str(home), options=GPG_OPTIONS)
        self.gpg.result_map = {**self.gpg.result_map, "verify": _Verify, "crypt": _Crypt}

    # -- reading mail

    def verify_detached(self, data: bytes, signature: bytes) -> list[tuple[str, str]]:
        """Status lines of checking `signature` (PGP/MIME's second part) over `data`."""
        with tempfile.NamedTemporaryFile(dir=self.home, prefix=".sig.") as sig:
            sig.write(signature)
            sig.flush()
            result = self.gpg.verify_data(sig.name, data)
        return _with_exit(result)

    def open_armored(self, armored: bytes) -> tuple[bytes, list[tuple[str, str]]]:
        """Clearsigned, signed or encrypted data: (the signed or decrypted content, statuses).

        `gpg --decrypt` outputs only what the signature covers, never the
        text around it."""
        result = self.gpg.decrypt(armored, passphrase=self.passphrase)
        return result.data, _with_exit(result)

    # -- writing replies

    def sign_detached(self, data: bytes) -> bytes:
        result = self.gpg.sign(data, keyid=self.own_fingerprint(), detach=True, binary=False,
                               passphrase=self.passphrase, extra_args=["--digest-algo", "SHA256"])
        if not result.data:
            raise OSError(f"gpg cannot sign with the gateway key: {result.status}")
        return result.data

    def sign_encrypt(self, data: bytes, recipient: str) -> bytes | None:
        """`data` signed by the gateway and encrypted to `recipient`; None when its key cannot encrypt."""
        result = self.gpg.encrypt(data, [recipient], sign=self.own_fingerprint(), always_trust=True,
                                  passphrase=self.passphrase, armor=True,
                                  extra_args=["--digest-algo", "SHA256"])
        return result.data if result.ok and result.data else None

    # -- managing keys

    def own_fingerprint(self) -> str:
        keys = self.gpg.list_keys(secret=True)
        if not keys:
            raise UsageError(f"no gateway key in {self.home}: run `gsat-mailgate keys init`")
        return keys[0]["fingerprint"]

    def create_own(self, name: str, email: str, passphrase: str | None) -> str:
        if self.gpg.list_keys(secret=True):
            raise UsageError(f"{self.home} already holds a gateway key")
        spec = self.gpg.gen_key_input(key_type="EDDSA", key_curve="ed25519", key_usage="sign",
                                      subkey_type="ECDH", subkey_curve="cv25519", subkey_usage="encrypt",
                                      name_real=name, name_email=email, expire_date=0,
                                      passphrase=passphrase or "", no_protection=not passphrase)
        result = self.gpg.gen_key(spec)
        if not result.fingerprint:
            raise OSError(f"gpg could not create a key: {result.stderr.strip().splitlines()[-1:]}")
        return result.fingerprint

    def import_keys(self, data: bytes) -> tuple[list[str], int]:
        """Import keys or revocation certificates: (fingerprints of keys, revocations)."""
        result = self.gpg.import_keys(data)
        return sorted({fpr for fpr in result.fingerprints if fpr}), int(getattr(result, "n_revoc", 0) or 0)

    def public_keys(self) -> list[dict]:
        return self.gpg.list_keys()

    def export_public(self, fingerprint: str) -> str:
        return self.gpg.export_keys(fingerprint)

    def delete_public(self, fingerprint: str) -> None:
        self.gpg.delete_keys(fingerprint)



def _with_exit(result) -> list[tuple[str, str]]:
    return result.statuses + ([("GPG_EXIT", str(result.returncode))] if result.returncode else [])
