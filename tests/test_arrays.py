"""An array submission is all or nothing (gsat.arrays): real gqsub processes
killed with SIGKILL at moments spread over their run, with a controller
running and with none; every printed id runs exactly once, no element of
an unprinted array ever runs, and the controller removes the leftovers."""

import json
import os
import subprocess
import time

import pytest

from gsat import config, jobs, messages
from gsat.controller import Controller
from helpers import BIN, q, wait_for

pytestmark = pytest.mark.timeout(180)


def killed_submissions(g, script, delays, size: int = 2000) -> dict[int, list[int]]:
    """`timeout -s KILL DELAY gqsub -t 1-SIZE SCRIPT` for each delay: {array id: printed ids}."""
    printed = {}
    for delay in delays:
        proc = subprocess.run(["timeout", "-s", "KILL", f"{delay:.3f}", str(BIN / "gqsub"), "-t", f"1-{size}",
                               str(script)], env=g.env, capture_output=True, text=True, timeout=60)
        ids = [int(word) for word in proc.stdout.split()]
        if ids:
            assert len(ids) == size, proc.stdout  # the ids come whole or not at all
            printed[ids[0]] = ids
    return printed


def settled(g, marks, expected: int):
    """The marks of the jobs that ran, once nothing is left to take on or remove."""
    names = os.listdir(g.home / "jobs")
    leftovers = [n for n in names if n.startswith(".")]
    untaken = [n for n in names if n.isdigit() and not (g.home / "jobs" / n / "state.json").exists()]
    lines = marks.read_text().splitlines() if marks.exists() else []
    return not leftovers and not untaken and len(lines) >= expected and lines


def check_ran(g, marks, printed) -> None:
    expected = sorted((first, i) for first, ids in printed.items() for i in ids)
    lines = wait_for(lambda: settled(g, marks, len(expected)), 90, "the printed jobs to run and leftovers to go")
    ran = sorted(tuple(map(int, line.split())) for line in lines)
    assert ran == expected  # each printed id once, nothing of an unprinted array


def test_a_killed_array_submission_runs_whole_or_not_at_all(gsat, tmp_path):
    g = gsat
    g.write_config({"autostart": False, "heartbeat_interval": 0.3, "idle_heartbeat_interval": 0.3,
                    "slots": 2})
    marks, script = tmp_path / "marks", tmp_path / "job.sh"
    script.write_text(f'#!/bin/sh\necho "$GSAT_ARRAY_ID $GSAT_JOBID" >> {q(marks)}\n')
    controller = g.start()
    printed = killed_submissions(g, script, [0.01 + 0.39 * i / 9 for i in range(10)])
    whole = g.run("gqsub", "-t", "1-20", script, check=True).stdout.split()
    printed[int(whole[0])] = [int(i) for i in whole]
    check_ran(g, marks, printed)  # cleaned up at the heartbeats

    g.crash(controller)
    printed.update(killed_submissions(g, script, [0.05, 0.15, 0.3]))
    g.start()
    check_ran(g, marks, printed)  # cleaned up at start-up


def element_spec(tmp_path, host: str, pid: int, submitted: float, count: int) -> dict:
    return {"name": "t", "args": [], "workdir": str(tmp_path), "stdout": None, "stderr": None, "join": False,
            "env": {"PATH": os.environ["PATH"]}, "host": None, "hold": False, "jobtype": "default",
            "user": "u", "submit_home": "/", "submit_dir": str(tmp_path), "submit_host": host,
            "submitted": submitted,
            "array": {"first": 1, "last": count, "max": None, "index": 1, "id": None, "count": count,
                      "token": "feedface", "pid": pid}}


def tombstone(layout, job: int) -> bool:
    """jobs/N holds only what a deleted job leaves: its state says deleted."""
    folder = layout.job_dir(job)
    state = json.loads((folder / "state.json").read_text()) if (folder / "state.json").exists() else {}
    return state.get("state") == "deleted" and not (folder / "script").exists()


def test_the_elements_of_a_dead_submitters_array_are_removed_and_others_run(home_env, tmp_path):
    """Three of five elements in place, another job's between them, the submitter dead."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    ctrl = Controller(config.load())
    ctrl.open()
    try:
        layout, spec = ctrl.layout, element_spec(tmp_path, ctrl.host, dead.pid, time.time(), 5)
        first = jobs._claim(layout, jobs._fill(layout, spec, b"#!/bin/sh\n"), 1)
        element = dict(spec, array={**spec["array"], "id": first})
        second = jobs._claim(layout, jobs._fill(layout, element, b"#!/bin/sh\n"), first + 1)
        (other,) = jobs.publish(layout, dict(spec, array=None), b"#!/bin/sh\n")
        third = jobs._claim(layout, jobs._fill(layout, element, b"#!/bin/sh\n"), other + 1)
        ctrl.channel.send(messages.Submit(jobs=[first, second, other, third]))
        ctrl.step(time.time())
        assert other in ctrl.jobs and not {first, second, third} & set(ctrl.jobs)
        ctrl.next_beat = 0.0
        ctrl.step(time.time())
        assert [tombstone(layout, j) for j in (first, second, third)] == [True] * 3  # ids never used again
        assert os.path.isdir(layout.job_dir(other)) and not tombstone(layout, other)
    finally:
        ctrl.pool.close()


def test_leftovers_older_than_an_hour_go_even_when_their_submitter_lives(home_env, tmp_path):
    """A submitter that hangs (here: this test's own pid) cannot keep leftovers
    forever: its unfinished array is fenced and removed, its temporary
    directory too; a submitter that then tries to commit is refused."""
    from gsat import arrays
    from gsat.errors import Refused
    ctrl = Controller(config.load())
    ctrl.open()
    try:
        layout = ctrl.layout
        old = time.time() - 2 * arrays.STALE_AFTER
        spec = element_spec(tmp_path, ctrl.host, os.getpid(), old, 2)
        temp = layout.jobs / f".new.{ctrl.host}.{os.getpid()}.0123abcd"
        os.mkdir(temp)
        os.utime(temp, (old, old))
        first = jobs._claim(layout, jobs._fill(layout, spec, b"#!/bin/sh\n"), 1)  # one element of two
        ctrl.channel.send(messages.Submit(jobs=[first]))
        ctrl.step(time.time())
        assert first not in ctrl.jobs  # not whole: not taken on
        ctrl.next_beat = 0.0
        ctrl.step(time.time())
        assert tombstone(layout, first) and not os.path.lexists(temp)
        with pytest.raises(Refused):  # the hung submitter wakes up and commits
            arrays.commit(layout, first, "feedface")
    finally:
        ctrl.pool.close()


def test_an_array_is_marked_whole_and_its_elements_say_so(gsat, tmp_path):
    ids = [int(i) for i in gsat.run("gqsub", "-H", "-t", "1-3", input="#!/bin/sh\n", check=True).stdout.split()]
    spec = json.loads((gsat.job_dir(ids[1]) / "job.json").read_text())
    assert spec["array"]["count"] == 3 and spec["array"]["id"] == ids[0]
    assert (gsat.job_dir(ids[0]) / "array").read_text().strip() == spec["array"]["token"]
    assert not [n for n in os.listdir(gsat.home / "jobs") if n.startswith(".")]
