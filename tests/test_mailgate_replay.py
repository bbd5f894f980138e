"""Replays whose signature was re-encoded without the key: the same signer,
time and text, other numbers (EdDSA S + k*L, ECDSA n - s, RSA s + k*n), so
another SIG_ID.  gpg still calls each a good signature; the gateway must
still call each a replay.  Real keys of each kind, the real gsat-mailgate.
"""

import pytest

import mailkit
import pgpkit
from mailkit import JOB, Person, deliver, stored_jobs

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def signers(tmp_path_factory, people):
    """alice (ed25519), erin (ECDSA P-256), rob (RSA 2048)."""
    root = tmp_path_factory.mktemp("signers")
    folks = {"ed25519": people["alice"],
             "ecdsa": Person(root, "erin", algos=("nistp256", "nistp256")),
             "rsa": Person(root, "rob", algos=("rsa2048", "rsa2048"))}
    yield folks
    for name in ("ecdsa", "rsa"):
        folks[name].stop()


def allow(gate, person, tmp_path) -> None:
    if person.name != "alice":
        (tmp_path / f"{person.name}.asc").write_bytes(person.public_key())
        gate.run("gsat-mailgate", "keys", "allow", tmp_path / f"{person.name}.asc", "--reply-to",
                 f"{person.name}@example.org", check=True)


def variants(person, shape, gateway_key) -> tuple[bytes, list[bytes]]:
    """(the mail as signed, the same mail with its signature re-encoded in each way there is)."""
    modulus = pgpkit.rsa_modulus(person.public_key()) if person.name == "rob" else None
    ks = (1, 2, 3) if modulus or person.name == "alice" else (1,)  # n - s has one form only
    if shape == "pgp-mime":
        entity = mailkit.text_entity(JOB)
        signature = person.detached(entity)
        build = lambda sig: mailkit.headers() + mailkit.signed_entity(entity, sig)  # noqa: E731
        return build(signature), [build(pgpkit.reencode_armored(signature, "SIGNATURE", modulus, k)) for k in ks]
    clearsigned = person.clearsign(JOB)
    build = {"inline": mailkit.inline,
             "re-encrypted": lambda text: mailkit.inline(person.sign_encrypt(text, gateway_key, sign=False))}[shape]
    return build(clearsigned), [build(pgpkit.reencode_clearsigned(clearsigned, modulus, k)) for k in ks]


@pytest.mark.parametrize("shape", ["inline", "pgp-mime", "re-encrypted"])
@pytest.mark.parametrize("algo", ["ed25519", "ecdsa", "rsa"])
def test_a_re_encoded_signature_is_a_replay(gate, signers, tmp_path, algo, shape):
    person = signers[algo]
    allow(gate, person, tmp_path)
    original, replays = variants(person, shape, gate.template["key"])
    first = deliver(gate, original)
    assert first.returncode == 0, first.stderr
    for replay in replays:
        proc = deliver(gate, replay)
        assert proc.returncode == 4 and b"replay" in proc.stderr, proc.stderr
    assert len(stored_jobs(gate)) == 1


def test_records_from_before_the_text_key_still_stop_a_replay(gate, people):
    """A record keyed on SIG_ID (older gsat) is kept as fingerprint + time: that mail stays spent."""
    alice, signed_at = people["alice"], mailkit.now() - 3600
    seen = gate.home / "mailgate" / "seen"
    seen.mkdir()
    (seen / ("ab" * 32)).write_text('{"fingerprint": "%s", "signed_at": %d, "sig_id": "x", "seen_at": %d}'
                                    % (alice.fingerprint, signed_at, signed_at + 5))
    proc = deliver(gate, mailkit.inline(alice.clearsign(JOB, at=signed_at)))
    assert proc.returncode == 4 and b"replay" in proc.stderr, proc.stderr
    assert deliver(gate, mailkit.inline(alice.clearsign(JOB, at=signed_at + 1))).returncode == 0
    assert (seen / ".v2").exists() and not (seen / ("ab" * 32)).exists()
