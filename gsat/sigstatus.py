"""From gpg's status lines to one verdict on a signed mail.

gpg reports each signature it checks as NEWSIG followed by GOODSIG,
BADSIG, EXPSIG, EXPKEYSIG, REVKEYSIG or ERRSIG, and VALIDSIG when the
cryptography holds (VALIDSIG comes even for expired and revoked keys, so it
proves nothing alone).  The gateway accepts exactly one signature, good,
by a live key, with a hash of at least SHA-256; anything else fails closed
with a reason, as does any sign of trouble (NODATA, FAILURE, ERROR, a
non-zero exit of gpg).  Which key and when come from VALIDSIG: the primary
key's fingerprint (field 10, the one the allowlist names) and the
signature's time (field 3).  SIG_ID is a hash of the signature's numbers,
which can be re-encoded without the key, so it is checked to be there and
never used as the replay record's key (gsat.mailstate).

Stdlib only; the statuses are (KEYWORD, rest-of-line) pairs in gpg's order.
"""

import calendar
import time

from gsat.errors import Rejected
from gsat.record import Record

FATAL = {
    "BADSIG": "bad signature",
    "NO_PUBKEY": "signature by an unknown key",
    "EXPSIG": "signature has expired",
    "EXPKEYSIG": "signing key has expired",
    "REVKEYSIG": "signing key was revoked",
    "KEYREVOKED": "signing key was revoked",
    "DECRYPTION_FAILED": "cannot decrypt",
    "BADMDC": "encrypted message was modified",
    "NODATA": "no OpenPGP data where it was expected",
    "UNEXPECTED": "unexpected OpenPGP data",
    "FAILURE": "gpg failed",
    "ERROR": "gpg reported an error",
    "GPG_EXIT": "gpg exited with an error",
    "HANDLER_ERROR": "unreadable gpg status",
    "TOO_LARGE": "what gpg unpacked is larger than a mail may be (a compression bomb?)",
    "TOO_CHATTY": "gpg said too much about this mail",
    "TIMEOUT": "gpg took too long over this mail",
}
# encrypted to several keys: the ones the gateway lacks are fine once one worked
NO_SECKEY = "NO_SECKEY"
# RFC 4880/9580 hash ids: SHA-256, SHA-384, SHA-512, SHA3-256, SHA3-512
STRONG_HASHES = {8: "SHA256", 9: "SHA384", 10: "SHA512", 12: "SHA3-256", 14: "SHA3-512"}
WEAK_HASHES = {1: "MD5", 2: "SHA1", 3: "RIPEMD160", 11: "SHA224"}


class Signature(Record):
    __slots__ = ()
    FIELDS = {"fingerprint": "", "signing_key": "", "time": 0, "hash": "", "id": ""}


def verdict(statuses: list[tuple[str, str]]) -> Signature:
    """The one acceptable signature the statuses describe, or Rejected."""
    check_fatal(statuses)
    keys = [key for key, _ in statuses]
    signatures = keys.count("NEWSIG")
    if signatures == 0 or "GOODSIG" not in keys:
        raise Rejected("not signed")
    if signatures != 1 or any(keys.count(k) != 1 for k in ("GOODSIG", "VALIDSIG", "SIG_ID")):
        raise Rejected(f"{max(signatures, keys.count('GOODSIG'))} signatures; exactly one is accepted")
    if not keys.index("NEWSIG") < keys.index("GOODSIG") < keys.index("VALIDSIG"):
        raise Rejected("gpg's status lines are out of order")
    values = dict(statuses)
    sig_id = (values["SIG_ID"].split() or [""])[0]
    if not sig_id:
        raise Rejected("gpg's SIG_ID line is empty")
    return _valid_signature(values["VALIDSIG"].split()).replace(id=sig_id)


def check_fatal(statuses: list[tuple[str, str]]) -> None:
    """Rejected when gpg reported any kind of failure."""
    keys = [key for key, _ in statuses]
    for key, value in statuses:
        if key == "ERRSIG":
            raise Rejected(_errsig_reason(value.split(), "NO_PUBKEY" in keys))
        if key in FATAL:
            raise Rejected(FATAL[key])
        if key == NO_SECKEY and "DECRYPTION_OKAY" not in keys:
            raise Rejected("encrypted to a key the gateway does not have")


def _errsig_reason(fields: list[str], no_pubkey: bool) -> str:
    """Why gpg could not check a signature: ERRSIG is keyid, key algorithm, hash, class, time, rc."""
    if no_pubkey or (len(fields) > 5 and fields[5] == "9"):
        return "signature by an unknown key"
    hash_id = int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else None
    if hash_id in WEAK_HASHES:
        return f"weak hash {WEAK_HASHES[hash_id]}: SHA-256 or stronger is needed"
    return ("signature cannot be checked by gpg: a clearsigned Hash: header that does not name the "
            "signature's hash, or an algorithm gpg refuses")


def was_encrypted(statuses: list[tuple[str, str]]) -> bool:
    return any(key == "DECRYPTION_OKAY" for key, _ in statuses)


def signature_count(statuses: list[tuple[str, str]]) -> int:
    return sum(1 for key, _ in statuses if key in ("NEWSIG", "GOODSIG", "BADSIG", "ERRSIG"))


def _valid_signature(fields: list[str]) -> Signature:
    if len(fields) < 10:
        raise Rejected("gpg's VALIDSIG line is incomplete")
    try:
        algo = int(fields[7])
    except ValueError:
        raise Rejected("gpg's VALIDSIG line names no hash algorithm") from None
    if algo not in STRONG_HASHES:
        raise Rejected(f"weak hash {WEAK_HASHES.get(algo, algo)}: SHA-256 or stronger is needed")
    return Signature(fingerprint=fields[9].upper(), signing_key=fields[0].upper(),
                     time=_timestamp(fields[2]), hash=STRONG_HASHES[algo])


def _timestamp(text: str) -> int:
    """VALIDSIG's time: seconds since the epoch, or ISO 8601 (YYYYMMDDThhmmss)."""
    try:
        if "T" in text:
            return calendar.timegm(time.strptime(text, "%Y%m%dT%H%M%S"))
        return int(text)
    except ValueError:
        raise Rejected(f"gpg's signature time {text!r} is unreadable") from None
