"""The gateway's answers: PGP/MIME mails signed by the gateway key.

When the signer's key can take it, the reply is multipart/encrypted
(RFC 3156 §4) holding the text signed and encrypted in one OpenPGP message;
otherwise it is multipart/signed (§5) with a detached signature over the
text part's exact bytes.  The message is built as bytes, not through
email.generator, so that nothing re-folds the part the signature covers.
Only gsat's own words and the commands' output go into a reply; nothing
from the incoming mail's headers is echoed.
"""

import email.utils
import os
import socket

from gsat.openpgp import Keyring

SIGNATURE_TYPE = 'multipart/signed; micalg="pgp-sha256"; protocol="application/pgp-signature"'
ENCRYPTED_TYPE = 'multipart/encrypted; protocol="application/pgp-encrypted"'


def compose(text: str, subject: str, to: str, sender: str | None, keyring: Keyring,
            encrypt_to: str | None) -> tuple[bytes, str]:
    """(the whole reply as bytes, its sender address)."""
    sender = sender or default_sender()
    part = _text_part(text)
    sealed = keyring.sign_encrypt(part, encrypt_to) if encrypt_to else None
    boundary = "gsat-" + os.urandom(12).hex()
    if sealed is not None:
        body = _multipart(boundary, [b"Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n",
                                     b'Content-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n'
                                     + _crlf(sealed)])
        ctype = ENCRYPTED_TYPE
    else:
        signature = keyring.sign_detached(part)
        body = _multipart(boundary, [part, b'Content-Type: application/pgp-signature; name="signature.asc"\r\n\r\n'
                                     + _crlf(signature)])
        ctype = SIGNATURE_TYPE
    head = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", f"Date: {email.utils.formatdate(localtime=True)}",
            f"Message-ID: {email.utils.make_msgid('gsat')}", "MIME-Version: 1.0",
            "Auto-Submitted: auto-replied",
            f'Content-Type: {ctype}; boundary="{boundary}"']
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body, email.utils.parseaddr(sender)[1]


def default_sender() -> str:
    return f"gsat-mailgate <{os.environ.get('USER') or 'gsat'}@{socket.getfqdn()}>"


def _text_part(text: str) -> bytes:
    """A 7-bit text/plain entity (RFC 3156 wants signed data 7-bit)."""
    import quopri
    encoded = quopri.encodestring(text.replace("\r\n", "\n").encode("utf-8"))
    return (b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
            + _crlf(encoded))


def _multipart(boundary: str, parts: list[bytes]) -> bytes:
    mark = f"--{boundary}".encode()
    out = b"This is an OpenPGP/MIME message (RFC 3156).\r\n"
    for part in parts:
        out += mark + b"\r\n" + part + b"\r\n"  # that CRLF is the boundary's (RFC 2046), not the part's
    return out + mark + b"--\r\n"


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

