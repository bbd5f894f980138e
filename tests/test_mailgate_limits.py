"""What a mail may cost the gateway before any key is needed: memory, time,
CPU, disk.  Real hostile mails (made here with real gpg where they need
it), the real gsat-mailgate, measured from outside.
"""

import json
import subprocess
import sys
import time

import pytest

import mailkit
import pgpkit
from helpers import BIN
from mailkit import stored_jobs

pytestmark = pytest.mark.timeout(120)

# runs one command and reports its exit, the peak RSS of it and its children, and its wall time
MEASURE = ("import json, resource, subprocess, sys, time; t = time.monotonic(); "
           "rc = subprocess.run(sys.argv[1:]).returncode; "
           "print(json.dumps({'rc': rc, 'wall': time.monotonic() - t, "
           "'rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))")


def measured_deliver(g, raw: bytes) -> dict:
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(BIN / "gsat-mailgate"), "deliver"], input=raw,
                          capture_output=True, timeout=100, env=g.env)
    return {**json.loads(proc.stdout.decode().splitlines()[-1]), "stderr": proc.stderr.decode()}


def bomb(person, gateway_key, encrypted: bool) -> bytes:
    """2 GB of zeros in about 2 KB: what `head -c 2G /dev/zero | gpg --store --compress-algo BZIP2`
    makes, in a second; encrypted to the gateway with gpg itself."""
    packets = pgpkit.bzip2_bomb(54)
    if encrypted:
        return mailkit.inline(person.gpg("--no-literal", "-z", "0", "--armor", "--recipient-file",
                                         str(gateway_key), "--encrypt", data=packets))
    return mailkit.inline(pgpkit.armor(packets))


@pytest.mark.parametrize("encrypted", [False, True], ids=["stored", "encrypted to the gateway"])
def test_a_compression_bomb_is_rejected_in_bounded_memory_and_time(gate, people, encrypted):
    raw = bomb(people["mallory"], gate.template["key"], encrypted)
    assert len(raw) < 4000
    run = measured_deliver(gate, raw)
    assert run["rc"] == 4, run["stderr"]
    assert "larger than a mail may be" in run["stderr"]
    assert run["rss_mb"] < 200 and run["wall"] < 10, run
    assert stored_jobs(gate) == []


def flood(params: int, folded: bool = False) -> bytes:
    """A multipart/signed Content-Type with `params` parameters (CPython parses them in quadratic time)."""
    sep = b";\r\n x=y" if folded else b"; x=y"
    return (mailkit.headers() + b'Content-Type: multipart/signed; protocol="application/pgp-signature"; boundary=b'
            + sep * params + b"\r\n\r\n--b\r\nx\r\n--b--\r\n")


def test_a_parameter_flood_is_rejected_in_under_a_second(gate):
    from gsat import mailparse
    from gsat.errors import Rejected
    raw = flood(835_000)
    assert 4_100_000 < len(raw) < mailparse.MAX_MAIL
    for mail in (raw, flood(101), flood(101, folded=True)):
        started = time.process_time()
        with pytest.raises(Rejected, match="header"):
            mailparse.seal_of(mail)
        assert time.process_time() - started < 1
    proc = mailkit.deliver(gate, raw)
    assert proc.returncode == 4 and b"header block larger than" in proc.stderr, proc.stderr


def test_a_parameter_flood_in_the_signature_part_is_rejected_too():
    from gsat import mailparse
    from gsat.errors import Rejected
    raw = (mailkit.headers() + b'Content-Type: multipart/signed; protocol="application/pgp-signature"; '
           b'boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b\r\n'
           b'Content-Type: application/pgp-signature' + b"; x=y" * 5000 + b"\r\n\r\nsig\r\n--b--\r\n")
    started = time.process_time()
    with pytest.raises(Rejected, match="parameters"):
        mailparse.seal_of(raw)
    assert time.process_time() - started < 1


def test_a_mail_over_the_cap_is_read_to_its_end_and_rejected(gate):
    """An MTA writing 50 MB gets no SIGPIPE (exit 141 for a shell pipe): deliver reads it all."""
    proc = subprocess.Popen([str(BIN / "gsat-mailgate"), "deliver"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=gate.env)
    chunk = b"x" * 998 + b"\r\n"
    try:
        proc.stdin.write(mailkit.headers() + b"Content-Type: text/plain\r\n\r\n")
        for _ in range(50_000):
            proc.stdin.write(chunk)
        proc.stdin.flush()
    except BrokenPipeError:
        proc.stdin = None
        proc.kill()
        pytest.fail("deliver stopped reading before the end of the mail")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 4 and b"larger than" in err, err


def test_rejected_mail_and_the_log_are_bounded(gate):
    mailkit.configure(gate, keep_rejected=3)
    log = gate.home / "mailgate" / "log"
    log.write_bytes(b"an old line\n" * 100_000)  # 1.2 MB: the next line starts a new log
    subjects = [f"junk {i}" for i in range(5)]
    for subject in subjects:
        assert mailkit.deliver(gate, mailkit.inline(b"x\n", subject=subject)).returncode == 4
    big = mailkit.inline(b"y" * 1_000_000, subject="big")
    assert mailkit.deliver(gate, big).returncode == 4
    kept = sorted((gate.home / "mailgate" / "rejected" / "new").iterdir())
    assert [b"Subject: junk 3" in p.read_bytes() for p in kept] == [True, False, False]
    assert b"Subject: junk 4" in kept[1].read_bytes()
    assert kept[2].read_bytes() == big[:256 << 10]
    assert log.stat().st_size < 10_000 and (log.parent / "log.1").stat().st_size <= 1_300_000
    assert "rejected" in log.read_text()


def test_ten_thousand_hidden_recipients_are_refused_before_gpg_tries_them(gate, people):
    """Hidden recipients (key id 0) make gpg try its secret key on each: half a minute for 10,000."""
    armored = people["mallory"].sign_encrypt(b"gqstat\n", gate.template["key"], sign=False)
    packets = pgpkit.packets(pgpkit.dearmor(armored))
    tag, pkesk = packets[0]
    assert tag == 1 and pkesk[0] == 3
    hidden = pgpkit.packet(1, pkesk[:1] + bytes(8) + pkesk[9:])  # the same session key, to nobody named
    rest = b"".join(pgpkit.packet(t, body) for t, body in packets[1:])
    raw = mailkit.inline(pgpkit.armor(hidden * 10_000 + rest))
    assert 1_000_000 < len(raw) < 2_000_000
    started = time.monotonic()
    proc = mailkit.deliver(gate, raw)
    assert proc.returncode == 4 and b"more than 32 recipients" in proc.stderr, proc.stderr
    assert time.monotonic() - started < 5
    few = mailkit.inline(pgpkit.armor(hidden * 3 + rest))  # a few are fine: gpg finds its key in one
    proc = mailkit.deliver(gate, few)
    assert proc.returncode == 4 and b"not signed" in proc.stderr, proc.stderr
