"""Finding what a mail had signed, from its raw bytes.

Three shapes are accepted, and only at the top level of the message:

- PGP/MIME signed (RFC 3156 §5): `multipart/signed;
  protocol="application/pgp-signature"` with exactly two parts.  The
  signature covers the first part's raw bytes, headers included, with
  CRLF line ends; those bytes are cut from the message as received, never
  re-serialised by Python's email package (which may fold or re-encode).
- PGP/MIME encrypted (RFC 3156 §4): `multipart/encrypted;
  protocol="application/pgp-encrypted"`, the second part armored.
- Inline: a text body that, apart from blank lines around it, is exactly
  one `BEGIN PGP SIGNED MESSAGE` or `BEGIN PGP MESSAGE` block.

Anything else (no signature, a signed part wrapped in multipart/mixed,
text outside the armor) is Rejected: unsigned text beside signed text
must never reach the actions.

Every header block is bounded before Python's email package sees it (at
most MAX_HEAD bytes, and at most MAX_PARAMS parameters in each Content-*
header): CPython 3.11 parses parameters in quadratic time, and the
parameters of the top-level Content-Type are read before any signature is
checked.  Stdlib only.
"""

import email
import email.parser
import email.policy
import email.utils
import re

from gsat.errors import Rejected
from gsat.record import Record

MAX_MAIL = 4 << 20
MAX_HEAD = 64 << 10
MAX_PARAMS = 100
# the armor lines an inline block must consist of, in order (RFC 4880 §6.2, §7)
CLEARSIGNED = (b"-----BEGIN PGP SIGNED MESSAGE-----", b"-----BEGIN PGP SIGNATURE-----",
               b"-----END PGP SIGNATURE-----")
ARMORED = (b"-----BEGIN PGP MESSAGE-----", b"-----END PGP MESSAGE-----")


class Sealed(Record):
    """What to hand to gpg: data + detached signature, or one armored block."""

    __slots__ = ()
    # kind: detached, armored (inline: gives text) or encrypted-mime (gives a MIME entity)
    FIELDS = {"kind": "", "data": b"", "signature": b"", "armored": b""}


def seal_of(raw: bytes) -> Sealed:
    """Where the signature (or encryption) of `raw` is, or Rejected."""
    if len(raw) > MAX_MAIL:
        raise Rejected(f"mail larger than {MAX_MAIL} bytes")
    head, body = _split_head(raw)
    check_head(head)
    message = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head + b"\r\n")
    return _readable("MIME headers", _seal, message, body, raw)


def _seal(message, body: bytes, raw: bytes) -> Sealed:
    ctype = message.get_content_type()
    if ctype == "multipart/signed":
        return _detached(message, body)
    if ctype == "multipart/encrypted":
        return _encrypted(message, body)
    if ctype == "text/plain":
        message = _entity(raw)
        return seal_of_text(message.get_payload(decode=True) or b"")
    raise rejected("not signed: PGP/MIME or an inline signed text body is needed", ctype)


def _readable(what: str, step, *args):
    """step(*args), whose email package calls decode what the sender chose:
    an RFC 2231 parameter in a charset such as idna raises UnicodeError, an
    unknown or non-text one LookupError, `p*=...; p*0=...` a TypeError from
    sorting its sections.  Those are a rejection with its reason, not a
    traceback (gsat.mailgate logs any other surprise as one)."""
    try:
        return step(*args)
    except (LookupError, ValueError, TypeError) as exc:  # UnicodeError is a ValueError
        raise rejected(f"unreadable {what}", f"{type(exc).__name__}: {exc}") from None


def rejected(reason: str, detail: str) -> Rejected:
    """A rejection whose `detail` holds words the sender chose: logged, never put in a reply."""
    exc = Rejected(reason)
    exc.detail = "".join(c for c in str(detail) if c.isprintable())[:100]
    return exc


def header(raw: bytes, name: str) -> str | None:
    """The first `name` header of `raw`, unfolded, for logs and loop prevention only (headers are
    never trusted): printable characters only, at most 100."""
    return next(iter(headers(raw, name)), None)


def headers(raw: bytes, name: str) -> list[str]:
    """Every `name` header of `raw`, each unfolded: printable characters only, at most 100."""
    head, _ = _split_head(raw[:MAX_HEAD + 4])
    wanted = name.lower().encode()
    return ["".join(c for c in value.decode("ascii", "replace") if c.isprintable()).strip()[:100]
            for key, value in _unfolded(head) if key.strip().lower() == wanted]


def auto_submitted(raw: bytes) -> bool:
    """Whether `raw` says it was sent by a program (RFC 3834): any Auto-Submitted other than "no"."""
    return any(value.split("(")[0].strip().lower() != "no" for value in headers(raw, "Auto-Submitted"))


def check_head(head: bytes) -> None:
    """Rejected unless the header block `head` is small enough to give to the email package."""
    if len(head) > MAX_HEAD:
        raise Rejected(f"header block larger than {MAX_HEAD} bytes")
    for name, value in _unfolded(head):
        if name.lower().startswith(b"content-") and value.count(b";") > MAX_PARAMS:
            raise Rejected(f"a Content-* header with more than {MAX_PARAMS} parameters")


def _unfolded(head: bytes):
    """(name, value) of each header line, continuation lines joined (RFC 5322 §2.2.3)."""
    name, value = None, b""
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t") and name is not None:
            value += line
            continue
        if name is not None:
            yield name, value
        name, _, value = line.partition(b":")
    if name is not None:
        yield name, value


def _entity(data: bytes, policy=email.policy.compat32):
    """A MIME entity parsed from bytes, once its header block passed check_head."""
    check_head(_split_head(data)[0])
    return email.message_from_bytes(data, policy=policy)


def is_mime_entity(sealed: Sealed) -> bool:
    """Whether what gpg gives back for this seal is a MIME entity (else plain text)."""
    return sealed.kind == "encrypted-mime"


def text_of_entity(entity: bytes) -> str:
    """The text of a signed MIME entity: exactly one text/plain body and nothing else."""
    return _readable("MIME headers in the signed part", _text_of, entity)


def _text_of(entity: bytes) -> str:
    message = _entity(entity, email.policy.default)  # it parses some headers already
    leaves = [part for part in message.walk() if not part.is_multipart()]
    if len(leaves) != 1 or leaves[0].get_content_type() != "text/plain":
        kinds = ", ".join(part.get_content_type() for part in leaves) or "nothing"
        raise rejected("the signed part must be one text/plain body", kinds)
    try:
        text = normalise(leaves[0].get_content())
    except (LookupError, ValueError, TypeError) as exc:
        raise rejected("the signed text cannot be decoded", str(exc)) from None
    if _param(leaves[0], "format").lower() == "flowed":
        return unflow(text, _param(leaves[0], "delsp").lower() == "yes")
    return text


def unflow(text: str, delsp: bool) -> str:
    """Undo format=flowed (RFC 3676), which mail clients use to wrap long lines:
    a line ending in a space continues on the next; a leading space is stuffing."""
    out, current = [], ""
    for line in text.split("\n"):
        line = line[1:] if line.startswith(" ") else line
        if line.endswith(" ") and line != "-- ":
            current += line[:-1] if delsp else line
        else:
            out.append(current + line)
            current = ""
    if current:
        out.append(current)
    return "\n".join(out)


def text_of_plain(data: bytes) -> str:
    try:
        return normalise(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise Rejected("the signed text is not UTF-8") from None


def normalise(text: str) -> str:
    """CRLF line ends as LF; a lone CR is Rejected: a text-mode signature does
    not cover a CR at a line's end, and a reader splitting there (a job's
    shell reading a script, say) would see other lines than the signer wrote."""
    text = text.replace("\r\n", "\n")
    if "\r" in text:
        raise Rejected("a bare CR in the signed text")
    return text


def _split_head(raw: bytes) -> tuple[bytes, bytes]:
    match = re.search(rb"\r?\n\r?\n", raw)
    if not match:
        return raw, b""
    return raw[:match.start()], raw[match.end():]


def _param(message, name: str) -> str:
    """A Content-Type parameter as one string (RFC 2231 forms collapsed), '' when absent."""
    return str(email.utils.collapse_rfc2231_value(message.get_param(name, "") or ""))


def _two_parts(message, body: bytes, protocol: str) -> list[bytes]:
    """The two parts of a multipart/signed or multipart/encrypted of this `protocol`."""
    ctype = message.get_content_type()
    if _param(message, "protocol").lower() != protocol:
        raise Rejected(f"{ctype}, but not OpenPGP ({protocol})")
    parts = _parts(body, message.get_boundary())
    if len(parts) != 2:
        raise Rejected(f"{ctype} with {len(parts)} parts (2 are needed)")
    return parts


def _detached(message, body: bytes) -> Sealed:
    parts = _two_parts(message, body, "application/pgp-signature")
    signature = _entity(parts[1])
    if signature.get_content_type() != "application/pgp-signature":
        raise rejected("the second part of multipart/signed is not a signature", signature.get_content_type())
    data = _crlf(parts[0])
    if b"\r" in data.replace(b"\r\n", b""):
        # a text-mode signature does not cover a CR before CRLF, so it could be
        # added to change the text (a line continuation, a replay's hash)
        raise Rejected("a bare CR in the signed part")
    return Sealed(kind="detached", data=data, signature=signature.get_payload(decode=True) or b"")


def _encrypted(message, body: bytes) -> Sealed:
    parts = _two_parts(message, body, "application/pgp-encrypted")
    payload = _entity(parts[1]).get_payload(decode=True) or b""
    return Sealed(kind="encrypted-mime", armored=_one_block(payload, ARMORED))


def seal_of_text(body: bytes) -> Sealed:
    """The armored block that is all of `body` (a text body, or an inline-encrypted mail's plaintext)."""
    stripped = body.strip()
    if stripped.startswith(CLEARSIGNED[0]):
        return Sealed(kind="armored", armored=_one_block(body, CLEARSIGNED))
    if stripped.startswith(ARMORED[0]):
        return Sealed(kind="armored", armored=_one_block(body, ARMORED))
    if CLEARSIGNED[0] in body or ARMORED[0] in body:
        raise Rejected("text outside the signed block")
    raise Rejected("not signed: no PGP/MIME signature and no signed block in the body")


def _one_block(data: bytes, markers: tuple[bytes, ...]) -> bytes:
    """`data` when it is exactly one armored block (blank lines around it allowed).

    Inside a clearsigned text, lines that begin with a dash are dash-escaped,
    so every line starting `-----BEGIN PGP` or `-----END PGP` is armor."""
    lines = data.strip().splitlines()
    armor = tuple(line.rstrip() for line in lines if line.startswith((b"-----BEGIN PGP", b"-----END PGP")))
    if armor != markers or lines[0].rstrip() != markers[0] or lines[-1].rstrip() != markers[-1]:
        raise Rejected("text outside the signed block, or more than one block")
    return b"\n".join(lines) + b"\n"


def _parts(body: bytes, boundary: str | None) -> list[bytes]:
    """The raw bytes of each body part between `--boundary` lines (RFC 2046 §5.1.1)."""
    if not boundary:
        raise Rejected("multipart without a boundary")
    delimiter = re.compile(rb"(?:^|\r?\n)--" + re.escape(boundary.encode()) + rb"(--)?[ \t]*(?=\r?\n|$)")
    parts, start, closed = [], None, False
    for match in delimiter.finditer(body):
        if start is not None:
            parts.append(body[start:match.start()])
        if match.group(1):
            closed = True
            break
        start = match.end() + (2 if body[match.end():match.end() + 2] == b"\r\n" else 1)
    if not closed:
        raise Rejected("multipart without its closing boundary")
    return parts


def _crlf(data: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", data)
