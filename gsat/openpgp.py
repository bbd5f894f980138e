"""The gateway's keyring: python-gnupg over a GNUPGHOME of its own.

The keyring (GSAT_HOME/mailgate/gnupg, mode 0700) holds the gateway's own
key pair and the public keys of the people who may mail it.  Membership
plus the allowlist is the authorisation, so gpg runs with
`--trust-model always`: gpg's web of trust plays no part.

Reading mail does not go through python-gnupg but through gsat.gpgrun,
which bounds gpg's output and time and reads its status lines from a pipe
of their own; gsat.sigstatus judges them (python-gnupg's summary fields
would not do: a GOODSIG after a BADSIG turns `valid` back on).
python-gnupg makes and manages keys and signs the gateway's replies, whose
input is gsat's own.
"""

import os
import tempfile

import gnupg

from gsat import gpgrun
from gsat.errors import UsageError
from gsat.paths import Path

GPG_OPTIONS = ["--trust-model", "always", "--no-auto-key-retrieve", "--no-auto-key-locate"]


class Keyring:
    def __init__(self, home: Path, passphrase: str | None = None):
        os.makedirs(home, mode=0o700, exist_ok=True)
        os.chmod(home, 0o700)
        self.home = Path(home)
        self.passphrase = passphrase
        self.gpg = gnupg.GPG(gnupghome=str(home), options=GPG_OPTIONS)

    # -- reading mail

    def verify_detached(self, data: bytes, signature: bytes) -> list[tuple[str, str]]:
        """Status lines of checking `signature` (PGP/MIME's second part) over `data`."""
        with tempfile.NamedTemporaryFile(dir=self.home, prefix=".sig.") as sig:
            sig.write(signature)
            sig.flush()
            return self._gpg(["--verify", sig.name, "-"], data).statuses

    def open_armored(self, armored: bytes) -> tuple[bytes, list[tuple[str, str]]]:
        """Clearsigned, signed or encrypted data: (the signed or decrypted content, statuses).

        `gpg --decrypt` outputs only what the signature covers, never the
        text around it; at most gpgrun.MAX_OUTPUT bytes of it."""
        result = self._gpg(["--decrypt"], armored)
        return result.output, result.statuses

    def _gpg(self, args: list[str], data: bytes) -> gpgrun.GpgResult:
        return gpgrun.run(self.home, GPG_OPTIONS + args, data, self.passphrase)

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

