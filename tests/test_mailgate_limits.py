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
