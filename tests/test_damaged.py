"""Damaged jobs (issue 12, items 5 and 11): a job whose files cannot be read
is listed as `damaged` with its reason, never breaks a listing or a command
on other jobs, is refused by every command but gqdel, which removes it."""

import json
import os

import pytest

from helpers import wait_for

pytestmark = pytest.mark.timeout(60)

SCRIPT = "#!/bin/sh\necho hi\n"


def _symlink(path, target):
    path.unlink(missing_ok=True)
    path.symlink_to(target)


DAMAGES = {
    "truncated": lambda p, t: p.write_text('{"state": "finished", "ex'),
    "garbage": lambda p, t: p.write_bytes(b"\x00\xff not json"),
    "symlink": lambda p, t: _symlink(p, t),
    "directory": lambda p, t: (p.unlink(missing_ok=True), p.mkdir()),
    "fifo": lambda p, t: (p.unlink(missing_ok=True), os.mkfifo(p)),
    "wrong type": lambda p, t: p.write_text('{"state": "finished", "exit": "zero"}'),
    "unknown state": lambda p, t: p.write_text('{"state": "bogus"}'),
}


def table_states(stdout: str) -> dict:
    return {line.split()[0]: line.split()[1] for line in stdout.splitlines()[1:]}


@pytest.mark.parametrize("kind", DAMAGES)
def test_a_damaged_state_is_listed_refused_and_removed_by_gqdel(gsat, tmp_path, kind):
    target = tmp_path / "someone-elses-state.json"
    target.write_text('{"state": "queued"}')
    ids = [gsat.submit(SCRIPT, "-N", f"j{i}") for i in range(3)]
    bad = ids[1]
    DAMAGES[kind](gsat.job_dir(bad) / "state.json", target)

    table = gsat.run("gqstat")
    assert table.returncode == 0, table.stderr
    assert table_states(table.stdout) == {str(ids[0]): "queued", str(bad): "damaged", str(ids[2]): "queued"}
    assert f"gqstat: job {bad} is damaged: state.json" in table.stderr
    full = gsat.run("gqstat", "-f", bad)
    assert full.returncode == 0 and "state=damaged" in full.stdout.splitlines(), full.stderr
    assert any(line.startswith("reason=state.json: ") for line in full.stdout.splitlines())
    listed = {j["id"]: j for j in json.loads(gsat.run("gqstat", "--json", check=True).stdout)}
    assert listed[bad]["state"] == "damaged" and listed[bad]["reason"].startswith("state.json: ")
    assert listed[bad]["name"] == "j1"  # job.json could still be read
    assert table_states(gsat.run("gqstat", "-s", "damaged", check=True).stdout) == {str(bad): "damaged"}

    gsat.start()  # takes the others on, leaves the damaged one alone
    for job in (ids[0], ids[2]):
        gsat.wait_state(job, "finished")
    for command in (("gqrls",), ("gqsig",), ("gqhold",), ("gqwait",), ("gqpeek",)):
        proc = gsat.run(*command, bad)
        assert proc.returncode == 1 and f"job {bad} is damaged" in proc.stderr, (command, proc.stderr)
        assert "Traceback" not in proc.stderr
    proc = gsat.run("gqdel", ids[0], bad)
    assert proc.returncode == 0, proc.stderr
    assert gsat.run("gqstat", bad).returncode == 3
    assert sorted(os.listdir(gsat.job_dir(bad))) == ["job.json", "state.json"]
    assert target.read_text() == '{"state": "queued"}'  # nothing written through the link
    assert table_states(gsat.run("gqstat", check=True).stdout) == {str(ids[2]): "finished"}


def test_a_damaged_job_json_is_listed_and_removed(running):
    """(A job the controller holds in memory, queued, held or running, is not
    damaged for it: it rewrites state.json from what it holds.)"""
    ok, bad = running.submit(SCRIPT), running.submit(SCRIPT)
    running.wait_state(bad, "finished")
    (running.job_dir(bad) / "job.json").write_text('{"name": "x", "wor')
    listed = {j["id"]: j for j in json.loads(running.run("gqstat", "--json", check=True).stdout)}
    assert listed[ok]["state"] == "finished"
    assert listed[bad]["state"] == "damaged" and listed[bad]["reason"].startswith("job.json: ")
    proc = running.run("gqhold", bad)
    assert proc.returncode == 1 and f"job {bad} is damaged: job.json" in proc.stderr, proc.stderr
    proc = running.run("gqdel", bad)
    assert proc.returncode == 0, proc.stderr
    assert running.run("gqstat", bad).returncode == 3
    assert json.loads((running.job_dir(bad) / "state.json").read_text())["state"] == "deleted"


def test_a_damaged_job_found_at_start_does_not_keep_the_others_from_running(gsat):
    ids = [gsat.submit(SCRIPT) for _ in range(3)]
    (gsat.job_dir(ids[0]) / "state.json").write_text('{"state": "run')
    gsat.start()
    for job in ids[1:]:
        gsat.wait_state(job, "finished")
    wait_for(lambda: f"job {ids[0]} is damaged" in gsat.log(), what="the damaged job in the log")


def test_a_torn_last_line_of_the_event_log_is_skipped(running):
    job = running.submit(SCRIPT)
    running.wait_state(job, "finished")
    with open(running.job_dir(job) / "events.log", "a") as log:
        log.write('{"id": "17a-1", "name": "JOB_TERM')
    full = running.run("gqstat", "-f", job)
    assert full.returncode == 0, full.stderr
    assert "events=QSUB,JOB_START,JOB_TERMINATION,JOB_FINISHED" in full.stdout.splitlines()
    proc = running.run("gqwait", "--event", "JOB_START", job, "--timeout", "10")
    assert proc.returncode == 0, proc.stderr


def test_an_id_of_300_digits_is_no_such_job(running):
    huge = "9" * 300
    for command in ("gqstat", "gqdel", "gqrls", "gqwait", "gqpeek"):
        proc = running.run(command, huge)
        assert proc.returncode == 3, (command, proc.returncode, proc.stderr)
        assert "no such job" in proc.stderr
