"""Exit codes and messages of odd inputs (issue 12, item 11); damaged files
and 300-digit ids are in test_damaged.py."""

import json
import os
import shutil
import subprocess

import pytest

from helpers import BIN

pytestmark = pytest.mark.timeout(60)

SCRIPT = "#!/bin/sh\necho hi\n"
NAME = "\x1b[31mred\x07\ttab"  # an escape sequence, a bell, a tab


def test_gqsub_of_a_fifo_or_a_directory_is_a_usage_error_at_once(gsat, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path, "/dev/zero"):
        proc = gsat.run("gqsub", path, timeout=10)
        assert proc.returncode == 2, proc.stderr
        assert "not a regular file" in proc.stderr
    assert not (gsat.home / "jobs").exists() or not any((gsat.home / "jobs").iterdir())


@pytest.mark.parametrize("host", ["a\tb", "a\nb", "-a", ".a", "a/b", "x" * 65, "é"])
def test_a_host_name_outside_the_pattern_is_a_usage_error(gsat, host):
    for args, env in ((("gqsub", "-q", host, "-"), None), (("gqstat",), {"GSAT_HOSTNAME": host}),
                      (("gqnodes",), {"GSAT_HOSTNAME": host}), (("sendcmd", "-c", "ALIVE?", f"-q{host}"), None)):
        proc = gsat.run(*args, input=SCRIPT, env=env, timeout=20)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "host name" in proc.stderr
    spool = gsat.home / "spool"
    assert not spool.exists() or set(os.listdir(spool)) <= {gsat.host}


def test_control_characters_of_a_job_name_are_printed_escaped(gsat):
    queued = gsat.submit(SCRIPT, "-N", NAME)  # read from its files: no controller, no summary
    for out in (gsat.run("gqstat", check=True).stdout, gsat.run("gqstat", queued, check=True).stdout,
                gsat.run("gqstat", "-f", queued, check=True).stdout):
        assert "\x1b" not in out and "\x07" not in out and "\\x1b[31mred\\x07" in out, out
    gsat.start()
    gsat.wait_state(queued, "finished")
    table = gsat.run("gqstat", check=True).stdout  # now from the controller's summary
    assert "\x1b" not in table and "\\x1b[31mred\\x07" in table
    assert json.loads(gsat.run("gqstat", "--json", check=True).stdout)[0]["name"] == NAME


def test_gqnodes_prints_control_characters_of_a_host_directory_escaped(gsat):
    (gsat.home / "hosts" / "bad\x1b[2Jhost").mkdir(parents=True)
    out = gsat.run("gqnodes", check=True).stdout
    assert "\x1b" not in out and "bad\\x1b[2Jhost" in out


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root (to make another user's GSAT_HOME) and setpriv")
def test_another_users_gsat_home_is_unusable_not_a_usage_error(gsat):
    """Played by root without the capabilities that let it read anyone's files."""
    shutil.chown(gsat.home, "nobody")
    shutil.chown(gsat.home / "config.yaml", "nobody")
    try:
        for args in (("gqstat",), ("gqsub", "-"), ("gqpeek", "1")):
            proc = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                                   str(BIN / args[0]), *args[1:]],
                                  input=SCRIPT, capture_output=True, text=True, env=gsat.env, timeout=20)
            assert proc.returncode == 6, (args, proc.returncode, proc.stderr)
            assert proc.stderr.startswith(f"{args[0]}: ") and "Traceback" not in proc.stderr
    finally:
        shutil.chown(gsat.home, "root")


@pytest.mark.parametrize("damage", ["[1, 2]", "{\"host\": ", "directory"])
def test_gqnodes_shows_a_host_with_an_unreadable_heartbeat_as_down(gsat, damage):
    folder = gsat.home / "hosts" / "other"
    folder.mkdir(parents=True)
    if damage == "directory":
        (folder / "heartbeat.json").mkdir()
    else:
        (folder / "heartbeat.json").write_text(damage)
    proc = gsat.run("gqnodes")
    assert proc.returncode == 0, proc.stderr
    assert any(line.split()[:2] == ["other", "down"] for line in proc.stdout.splitlines()), proc.stdout
