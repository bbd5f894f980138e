"""Regressions found in review: each test failed before its fix."""

import json
import os
import subprocess
import time

import pytest

from gsat import fifo, jobs, messages
from gsat.channel import FileChannel
from helpers import BIN, await_file, read, wait_for

pytestmark = pytest.mark.timeout(60)


def job_spec(tmp_path) -> dict:
    return {"name": "t", "args": [], "workdir": str(tmp_path), "stdout": None, "stderr": None, "join": False,
            "env": {"PATH": os.environ["PATH"]}, "host": None, "jobtype": "default", "hold": False,
            "array": None, "user": "u", "submit_home": "/", "submit_host": "h", "submit_dir": str(tmp_path),
            "submitted": time.time()}


def step_until(ctrl, predicate, what: str):
    return wait_for(lambda: (ctrl.step(time.time()), predicate())[1], 10, what)


def test_a_released_rerun_is_not_killed_by_the_held_runs_grace(ctrl, tmp_path):
    go, runs = tmp_path / "go", tmp_path / "runs"
    script = (f"#!/bin/sh\ntrap 'exit 0' TERM\necho $GSAT_RUN >> {runs}\n"
              f"[ $GSAT_RUN = 1 ] && {{ while :; do sleep 0.05; done; }}\n" + await_file(go))
    (job,) = jobs.publish(ctrl.layout, job_spec(tmp_path), script.encode())
    ctrl.channel.send(messages.Submit(jobs=[job]))
    step_until(ctrl, lambda: read(runs) == "1\n", "run 1 with its trap set")
    held_at = time.time()
    assert ctrl.handle(messages.Hold(jobs=[job]), held_at).code == 0
    assert job in ctrl.kill_at  # run 1 gets SIGKILL at held_at + kill_grace unless it ends first
    step_until(ctrl, lambda: jobs.load(ctrl.layout, job).state.state == "held", "the hold")
    assert ctrl.handle(messages.Release(jobs=[job]), time.time()).code == 0
    step_until(ctrl, lambda: read(runs) == "1\n2\n", "run 2")
    ctrl.step(held_at + ctrl.config["kill_grace"] + 1)  # run 1's grace is over: run 2 must not get its SIGKILL
    go.touch()
    step_until(ctrl, lambda: jobs.load(ctrl.layout, job).state.state in ("finished", "failed"), "run 2's end")
    state = jobs.load(ctrl.layout, job).state
    assert (state.state, state.exit, state.run) == ("finished", 0, 2)


def answer_to(ctrl, msg) -> messages.Answer:
    """Send `msg` through the spool with a reply FIFO, step once, read the answer."""
    path, fd = fifo.create(ctrl.layout.spool() / "reply")
    try:
        FileChannel(ctrl.layout, ctrl.host).send(msg.replace(reply=os.path.basename(path)))
        ctrl.step(time.time())
        return messages.decode_answer(fifo.read(fd))
    finally:
        fifo.remove(path, fd)


@pytest.mark.parametrize("data", [b'{"kind": []}', b"[" * 5000, b'{"kind": {"a": 1}}'])
def test_hostile_messages_never_stop_the_controller(ctrl, data):
    inbox = ctrl.layout.spool()
    (inbox / "tmp" / "x").write_bytes(data)
    os.rename(inbox / "tmp" / "x", inbox / "new" / "1.1.x")
    assert answer_to(ctrl, messages.Raw(text="HOST?")).text == "testhost"  # it carries on
    assert not list((inbox / "new").iterdir())
    assert sorted(p.name for p in (inbox / "bad").iterdir()) == ["1.1.x", "1.1.x.reason"]  # set aside, once


def test_a_signal_number_out_of_range_is_refused_and_the_job_runs_on(ctrl, tmp_path):
    go = tmp_path / "go"
    (job,) = jobs.publish(ctrl.layout, job_spec(tmp_path), ("#!/bin/sh\n" + await_file(go)).encode())
    ctrl.channel.send(messages.Submit(jobs=[job]))
    step_until(ctrl, lambda: job in ctrl.jobs and ctrl.jobs[job].state.state == "running", "the start")
    answer = answer_to(ctrl, messages.Signal(jobs=[job], signal=99999999999))
    assert answer.code == 2 and answer.results[str(job)][0] == 2  # a usage error, for that job
    assert ctrl.jobs[job].state.state == "running" and not ctrl.jobs[job].state.suspended
    go.touch()
    step_until(ctrl, lambda: jobs.load(ctrl.layout, job).state.state in ("finished", "failed"), "the end")
    assert jobs.load(ctrl.layout, job).state.exit == 0  # no signal reached it


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
