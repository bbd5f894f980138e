"""A flood of junk in the spool inbox does not stall the controller: it is
taken in bounded batches between the other work of the loop, bad/ keeps
only the newest messages, and the controller's log is rotated."""

import os
import time

import pytest

from helpers import wait_for

pytestmark = pytest.mark.timeout(120)

JUNK = 50000
KEEP_BAD = 1000  # bad/ keeps the newest 1,000 (README)
LOG_EACH = 50  # bad messages named in the log a minute


def inbox(g):
    return g.home / "spool" / g.host


def plant_junk(g, count: int, prefix: str = "junk") -> None:
    """Junk messages put straight into new/, as a runaway program of the user's would."""
    new = inbox(g) / "new"
    for i in range(count):
        fd = os.open(new / f"{prefix}{i:06d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"not json")
        os.close(fd)


def test_a_flood_of_junk_does_not_stall_jobs_or_answers(running, tmp_path):
    """At 8ac7fd3 one step took the whole inbox: ALIVE? went unanswered for
    longer than its 5 s, the job waited for the whole flood."""
    g = running
    plant_junk(g, JUNK)
    flooded = time.monotonic()
    alive = g.run("sendcmd", "-c", "ALIVE?", "--timeout", "5", timeout=30)
    answered = time.monotonic() - flooded
    job = g.submit("#!/bin/sh\ntrue\n")
    submitted = time.monotonic()
    g.wait_state(job, "finished", timeout=30)
    ran = time.monotonic() - submitted
    left = len(os.listdir(inbox(g) / "new"))
    print(f"\n{JUNK} junk files: ALIVE? answered after {answered:.2f} s, a job submitted then "
          f"finished {ran:.2f} s later, {left} junk files still waiting")
    assert alive.returncode == 0 and alive.stdout == "ALIVE\n", alive.stderr
    assert answered < 2.5 and ran < 4.0 and left > 0  # while the flood was being drained


def test_bad_keeps_the_newest_messages_and_the_log_counts_the_rest(gsat):
    g = gsat
    g.run("gsatlc", "status")  # makes the spool
    count = KEEP_BAD * 3
    plant_junk(g, count)
    g.start()
    wait_for(lambda: not os.listdir(inbox(g) / "new"), 60, "the junk to be set aside")
    bad = set(os.listdir(inbox(g) / "bad"))
    newest = {f"junk{i:06d}" for i in range(count - KEEP_BAD, count)}
    assert bad == newest | {n + ".reason" for n in newest}
    log = wait_for(lambda: "more bad messages set aside" in g.log() and g.log())
    assert f"{count - LOG_EACH} more bad messages set aside" in log
    assert log.count("bad message junk") == LOG_EACH


def test_a_message_with_a_255_character_name_gets_its_reason(running):
    g = running
    name = "x" * 255
    (inbox(g) / "new" / name).write_bytes(b"not json")
    bad = inbox(g) / "bad"
    wait_for(lambda: name in os.listdir(bad) and [n for n in os.listdir(bad) if n.endswith(".reason")],
             what="the message set aside with its reason")
    (reason,) = [n for n in os.listdir(bad) if n.endswith(".reason")]
    assert len(reason) <= 255 and name in (bad / reason).read_text()


def test_the_background_controllers_log_is_rotated(gsat):
    g = gsat
    g.run("gsatlc", "status")  # makes hosts/HOST/
    log = g.home / "hosts" / g.host / "log"
    log.write_bytes(b"old line\n" * (KEEP_BAD * 120))  # about 1 MiB already
    assert g.run("gsatlc", "start").returncode == 0
    try:
        plant_junk(g, 50, prefix="rotate")
        wait_for(lambda: not os.listdir(inbox(g) / "new"), 20, "the junk to be set aside")
        wait_for(lambda: (log.parent / "log.1").exists(), 20, "the log to be rotated")
        assert log.stat().st_size < 1 << 20
        assert b"old line" in (log.parent / "log.1").read_bytes()
    finally:
        g.run("gsatlc", "stop")
