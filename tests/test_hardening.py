"""Regressions found in review: each test failed before its fix."""

import json
import os
import subprocess
import time

import pytest

from gsat import config, messages
from gsat.channel import FileChannel
from gsat.controller import Controller
from helpers import BIN, wait_for

pytestmark = pytest.mark.timeout(60)


def test_a_released_rerun_is_not_killed_by_the_held_runs_grace(running, tmp_path):
    g = running  # kill_grace is 2 s in the fixture
    go = tmp_path / "go"
    job = g.submit(f"#!/bin/sh\ntrap 'exit 0' TERM\n[ $GSAT_RUN = 1 ] && {{ while :; do sleep 0.05; done; }}\n"
                   f"while [ ! -e {go} ]; do sleep 0.05; done\nexit 0\n")
    g.wait_state(job, "running")
    wait_for(lambda: list(g.job_dir(job).glob("runs/1.start")) and
             json.loads((g.job_dir(job) / "runs" / "1.start").read_text()).get("job_pid"))
    assert g.run("gqhold", job).returncode == 0
    g.wait_state(job, "held")
    assert g.run("gqrls", job).returncode == 0
    wait_for(lambda: g.state(job).get("run") == 2 and g.state(job)["state"] == "running", what="run 2")
    started = time.monotonic()
    wait_for(lambda: time.monotonic() - started > 3 or g.state(job)["state"] != "running",
             timeout=10, what="the old grace to pass")
    assert g.state(job)["state"] == "running"  # not SIGKILLed at hold time + kill_grace
    go.touch()
    assert g.run("gqwait", job, timeout=20).returncode == 0


@pytest.mark.parametrize("data", [b'{"kind": []}', b"[" * 5000, b'{"kind": {"a": 1}}',
                                  b'{"kind": "signal", "jobs": [1], "signal": 99999999999}'])
def test_hostile_messages_never_stop_the_controller(home_env, data):
    ctrl = Controller(config.load())
    ctrl.open()
    inbox = ctrl.layout.spool()
    (inbox / "tmp" / "x").write_bytes(data)
    os.rename(inbox / "tmp" / "x", inbox / "new" / "1.1.x")
    FileChannel(ctrl.layout, ctrl.host).send(messages.Raw(text="HOST?"))
    ctrl.step(time.time())  # must not raise
    assert not list((inbox / "new").iterdir())
    assert len(list((inbox / "bad").glob("*.reason"))) + ("signal" in data.decode(errors="replace")) == 1


def test_a_submit_naming_a_huge_id_is_answered_at_once(running):
    start = time.monotonic()
    proc = running.run("sendcmd", "-c", '{"kind": "submit", "jobs": [999999999999]}', timeout=30)
    assert proc.returncode == 0 and time.monotonic() - start < 10
    assert running.run("sendcmd", "-c", "ALIVE?").stdout == "ALIVE\n"


def test_a_job_cannot_make_the_controller_delete_files_through_waiters(running, tmp_path):
    victim_dir = tmp_path / "precious"
    victim_dir.mkdir()
    victim = victim_dir / "file"
    victim.write_text("keep me")
    job = running.submit(f'#!/bin/sh\nrm -rf "$GSAT_JOBDIR/waiters"\nln -s {victim_dir} "$GSAT_JOBDIR/waiters"\n')
    assert running.run("gqwait", job, timeout=20).returncode == 0
    assert victim.read_text() == "keep me"
    assert running.run("sendcmd", "-c", "ALIVE?").stdout == "ALIVE\n"


def test_waiting_on_many_jobs_uses_one_fifo(running, tmp_path):
    go = tmp_path / "go"
    ids = [running.submit(f"#!/bin/sh\nwhile [ ! -e {go} ]; do sleep 0.05; done\n") for _ in range(3)]
    waiter = subprocess.Popen([str(BIN / "gqwait"), *map(str, ids)], env=running.env)
    try:
        fifos = wait_for(lambda: [p for i in ids for p in running.job_dir(i).glob("waiters/[!.]*")]
                         if all(list(running.job_dir(i).glob("waiters/[!.]*")) for i in ids) else None)
        assert len({os.stat(p).st_ino for p in fifos}) == 1
        go.touch()
        assert waiter.wait(timeout=20) == 0
    finally:
        waiter.kill()


def test_gqwait_on_an_already_deleted_job_is_255(running):
    job = running.submit("#!/bin/sh\ntrue\n")
    running.run("gqwait", job, timeout=20)
    assert running.run("gqdel", job).returncode == 0
    assert running.run("gqwait", job, timeout=20).returncode == 255
    assert running.run("gqwait", 999).returncode == 3


def test_gqwait_with_an_id_given_twice(running):
    job = running.submit("#!/bin/sh\nexit 4\n")
    other = running.submit("#!/bin/sh\ntrue\n")
    assert running.run("gqwait", job, other, job, "00" + str(job), timeout=20).returncode == 4


def test_an_id_given_twice_is_acted_on_once(running):
    job = running.submit("#!/bin/sh\ntrue\n", "-H")
    proc = running.run("gqdel", job, f"00{job}")
    assert proc.returncode == 0, proc.stderr
    assert running.run("gqstat", job).returncode == 3


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group `pgid`, from /proc."""
    out = []
    for name in os.listdir("/proc"):
        try:
            text = open(f"/proc/{name}/stat", "rb").read()
        except OSError:
            continue
        fields = text[text.rindex(b")") + 2:].split()
        if name.isdigit() and fields[0] != b"Z" and int(fields[2]) == pgid:
            out.append(int(name))
    return out


def test_kill_9_of_a_shepherd_kills_its_jobs_processes(running, tmp_path):
    from helpers import q
    beat = tmp_path / "beat"
    job = running.submit(f"#!/bin/sh\nwhile :; do date +%s%N > {q(beat)}; sleep 0.05; done\n")
    start = running.job_dir(job) / "runs" / "1.start"
    record = wait_for(lambda: start.exists() and (r := json.loads(start.read_text())).get("job_pid") and r)
    pgid = record["job_pid"]
    assert group_members(pgid)
    os.kill(record["shepherd"]["pid"], 9)
    row = running.wait_state(job, "failed")
    assert row["exit"] == 255
    wait_for(lambda: not group_members(pgid), what="the lost job's processes to go")
    assert running.run("gqdel", job).returncode == 0


def test_gqdel_of_a_lost_job_kills_what_it_left_and_a_reused_pid_is_spared(gsat, tmp_path):
    """State written as a controller before this fix left it: failed 255, the
    group still running.  gqdel kills it; a record whose pid now names a
    process of another start time is not acted on."""
    from gsat import procinfo
    leftover = subprocess.Popen(["sleep", "60"], start_new_session=True)
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        jobs = []
        for pid, ticks in ((leftover.pid, procinfo.start_ticks(leftover.pid)),
                           (stranger.pid, procinfo.start_ticks(stranger.pid) - 1)):
            job = gsat.submit("#!/bin/sh\ntrue\n", "-H")
            jobdir = gsat.job_dir(job)
            (jobdir / "runs" / "1.start").write_text(json.dumps(
                {"shepherd": {"pid": 999999999, "ticks": 1, "boot": procinfo.boot_id()},
                 "job_pid": pid, "job_ticks": ticks, "started": time.time()}))
            (jobdir / "state.json").write_text(json.dumps(
                {"state": "failed", "host": gsat.host, "run": 1, "attempt": 1, "exit": 255}))
            jobs.append(job)
        gsat.start()
        assert gsat.run("gqdel", *jobs).returncode == 0
        assert leftover.wait(timeout=10) == -9
        assert stranger.poll() is None
    finally:
        leftover.kill()
        stranger.kill()
        leftover.wait()
        stranger.wait()
