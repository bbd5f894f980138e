"""A look at an armored OpenPGP message before gpg gets it: how many recipients.

An encrypted message starts with one session key packet per recipient
(RFC 4880 §5.1 public-key, §5.3 symmetric; marker packets may sit among
them).  A recipient may be hidden (key id 0), and gpg then tries every
secret key it has on each: 10,000 hidden recipients in a 1.3 MB mail cost
gpg half a minute, and need no key at all to make.  So the leading session
key packets are counted here, from the packet headers alone, and more than
MAX_RECIPIENTS reject the mail.  Stdlib only; nothing is decrypted here.
"""

import base64
import binascii

from gsat.errors import Rejected

MAX_RECIPIENTS = 32
PKESK, SKESK, MARKER = 1, 3, 10


def check_recipients(armored: bytes, limit: int = MAX_RECIPIENTS) -> None:
    """Rejected when the armored message starts with more than `limit` session key packets."""
    count = 0
    for tag in leading_tags(dearmor(armored)):
        if tag not in (PKESK, SKESK, MARKER):
            break
        count += tag != MARKER
        if count > limit:
            raise Rejected(f"encrypted to more than {limit} recipients")


def dearmor(armored: bytes) -> bytes:
    """The packets of one ASCII-armored block (RFC 4880 §6.2): armor headers and the CRC line skipped."""
    lines = armored.strip().split(b"\n")[1:-1]  # BEGIN and END lines
    body = []
    for number, line in enumerate(lines):
        line = line.strip()
        if not body and (b": " in line or not line) and number < 20:  # armor headers, then a blank line
            continue
        if line.startswith(b"=") and len(line) == 5:
            break
        body.append(line)
    try:
        return base64.b64decode(b"".join(body))
    except (binascii.Error, ValueError):
        raise Rejected("unreadable OpenPGP armor") from None


def leading_tags(data: bytes):
    """The tag of each packet from the start of `data`, while lengths are definite."""
    i = 0
    while i < len(data):
        first = data[i]
        if not first & 0x80:
            return
        if first & 0x40:
            tag, length, i = first & 0x3F, *_new_length(data, i + 1)
        else:
            tag, kind = (first >> 2) & 0x0F, first & 3
            if kind == 3:  # indeterminate: the rest of the data
                yield tag
                return
            size = (1, 2, 4)[kind]
            length, i = int.from_bytes(data[i + 1:i + 1 + size], "big"), i + 1 + size
        if length is None:  # a partial body: a data packet, not a session key
            yield tag
            return
        yield tag
        i += length


def _new_length(data: bytes, i: int) -> tuple[int | None, int]:
    """(length or None for a partial body, index after the length octets)."""
    o = data[i] if i < len(data) else 0
    if o < 192:
        return o, i + 1
    if o < 224:
        return ((o - 192) << 8) + (data[i + 1] if i + 1 < len(data) else 0) + 192, i + 2
    if o == 255:
        return int.from_bytes(data[i + 1:i + 5], "big"), i + 5
    return None, i + 1
