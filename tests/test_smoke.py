"""The first thing a user does: submit, wait, look."""

from helpers import wait_for


def test_submit_wait_stat_peek(running):
    job = running.submit("#!/bin/sh\necho hello $GSAT_JOBID\n")
    assert running.run("gqwait", job, timeout=30).returncode == 0
    assert running.state(job)["state"] == "finished"
    assert running.run("gqpeek", job).stdout == f"hello {job}\n"
    table = running.run("gqstat").stdout
    assert table.splitlines()[0].split()[:3] == ["ID", "STATE", "HOST"]
    assert f"{job}" in table and "finished" in table


def test_gqstat_works_without_a_controller(gsat):
    job = gsat.submit("#!/bin/sh\ntrue\n")
    assert gsat.state(job)["state"] == "queued"
    proc = gsat.start()
    wait_for(lambda: gsat.state(job)["state"] == "finished", what="the backlog to run")
    assert proc.poll() is None
