"""The controller in-process, one step(now) at a time: the crash windows and
timings that end-to-end tests cannot reach on purpose."""

import json
import os
import signal
import subprocess
import time

import pytest

from gsat import config, fifo, jobs, messages, shepherd, states
from gsat.channel import FileChannel
from gsat.controller import Controller
from gsat.errors import NoSuchJob
from gsat.layout import Layout
from helpers import wait_for

pytestmark = pytest.mark.timeout(60)


def make_spec(tmp_path, **extra):
    return {"name": "t", "args": [], "workdir": str(tmp_path), "stdout": None, "stderr": None,
            "join": False, "env": {"PATH": os.environ["PATH"]}, "host": None, "jobtype": "default",
            "hold": False, "array": None, "user": "u", "submit_home": "/", "submit_host": "h",
            "submit_dir": str(tmp_path), "submitted": time.time(), **extra}


def submit(ctrl, tmp_path, script="#!/bin/sh\nexit 0\n", **extra):
    (job_id,) = jobs.publish(ctrl.layout, make_spec(tmp_path, **extra), script.encode())
    ctrl.channel.send(messages.Submit(jobs=[job_id]))
    return job_id


def step_until(ctrl, job_id, *wanted, timeout=10.0):
    def done():
        ctrl.step(time.time())
        job = ctrl.jobs.get(job_id) or jobs.load(ctrl.layout, job_id)
        return job.state.state in wanted
    wait_for(done, timeout, f"job {job_id} to be {wanted}")
    return jobs.load(ctrl.layout, job_id)


def test_step_runs_a_job_to_its_exit_value(ctrl, tmp_path):
    job_id = submit(ctrl, tmp_path, "#!/bin/sh\nexit 4\n")
    job = step_until(ctrl, job_id, states.FAILED)
    assert job.state.exit == 4 and job.state.run == 1


def test_answers_reach_the_waiting_fifo(ctrl):
    path, fd = fifo.create(ctrl.layout.spool() / "reply")
    FileChannel(ctrl.layout, ctrl.host).send(messages.Raw(text="HOST?", reply=os.path.basename(path)))
    ctrl.step(time.time())
    assert messages.decode_answer(fifo.read(fd)).text == "testhost"
    fifo.remove(path, fd)


def test_kill_escalates_to_sigkill_after_grace(ctrl, tmp_path):
    ready = tmp_path / "trap-set"
    job_id = submit(ctrl, tmp_path, f"#!/bin/sh\ntrap '' TERM\ntouch {ready}\nwhile :; do sleep 0.05; done\n")
    step_until(ctrl, job_id, states.RUNNING)
    job_pid = wait_for(lambda: ready.exists() and (shepherd.read_start(str(ctrl.layout.job_dir(job_id)), 1)
                                                   or {}).get("job_pid"), what="the job's TERM trap")
    ctrl.handle(messages.Delete(jobs=[job_id]), time.time())
    assert ctrl.jobs[job_id].state.pending == "delete"
    assert job_id in ctrl.kill_at
    ctrl.step(time.time())  # within the grace: the job ignores the TERM it got, and lives
    assert job_id in ctrl.jobs and os.path.exists(f"/proc/{job_pid}")
    ctrl.step(time.time() + ctrl.config["kill_grace"] + 1)  # the grace is over
    wait_for(lambda: (ctrl.step(time.time()), job_id not in ctrl.jobs)[1], what="the kill")
    with pytest.raises(NoSuchJob):
        jobs.load(ctrl.layout, job_id)
    tombstone = jobs.load(ctrl.layout, job_id, deleted_ok=True).state
    assert (tombstone.state, tombstone.exit) == (states.DELETED, 128 + signal.SIGKILL)


def test_a_start_interrupted_before_the_shepherd_is_fenced_and_requeued(home_env, tmp_path):
    cfg = config.load()
    layout = Layout(cfg.home, cfg.host)
    layout.ensure()
    (job_id,) = jobs.publish(layout, make_spec(tmp_path), b"#!/bin/sh\necho run=$GSAT_RUN\n")
    # the controller saved "running, attempt 1" and died before forking
    job = jobs.load(layout, job_id)
    job.state = jobs.State(state=states.RUNNING, host=cfg.host, run=1, attempt=1, started=time.time())
    jobs.save(layout, job)
    ctrl = Controller(cfg)
    ctrl.open()
    jobdir = str(layout.job_dir(job_id))
    assert shepherd.read_start(jobdir, 1) == shepherd.FENCED
    job = step_until(ctrl, job_id, states.FINISHED)
    assert job.state.attempt == 2 and job.state.run == 1
    assert (layout.job_dir(job_id) / "stdout").read_text() == "run=1\n"


def test_a_fenced_shepherd_does_not_run_the_job(home_env, tmp_path):
    jobdir = tmp_path / "job"
    (jobdir / "runs").mkdir(parents=True)
    marker = tmp_path / "ran"
    script = jobdir / "script"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o700)
    assert shepherd.fence(str(jobdir), 1)
    spec = shepherd.RunSpec(job=1, run=1, jobdir=str(jobdir), argv=[str(script)], env={}, cwd="/",
                            stdout=str(jobdir / "out"), stderr=None, controller_pid=os.getpid())
    pid = shepherd.start(spec)
    assert os.waitpid(pid, 0)[1] == 0
    assert not marker.exists() and shepherd.read_exit(str(jobdir), 1) is None


def left_running(tmp_path):
    """A job that a controller recorded as running (attempt 1) before it died."""
    cfg = config.load()
    layout = Layout(cfg.home, cfg.host)
    layout.ensure()
    (job_id,) = jobs.publish(layout, make_spec(tmp_path), b"#!/bin/sh\n")
    job = jobs.load(layout, job_id)
    job.state = jobs.State(state=states.RUNNING, host=cfg.host, run=1, attempt=1)
    jobs.save(layout, job)
    runs = layout.job_dir(job_id) / "runs"
    runs.mkdir(exist_ok=True)
    return cfg, layout, job_id, runs


def test_a_start_record_from_another_boot_means_lost(home_env, tmp_path):
    cfg, layout, job_id, runs = left_running(tmp_path)
    (runs / "1.start").write_text(json.dumps(
        {"shepherd": {"pid": os.getpid(), "ticks": 1, "boot": "another-boot"}, "job_pid": os.getpid()}))
    ctrl = Controller(cfg)
    ctrl.open()
    job = jobs.load(layout, job_id)
    assert job.state.state == states.FAILED and job.state.exit == 255


def test_exit_record_written_while_down_is_reported(home_env, tmp_path):
    cfg, layout, job_id, runs = left_running(tmp_path)
    (runs / "1.start").write_text(json.dumps({"shepherd": {"pid": 1, "ticks": 0, "boot": "x"}}))
    (runs / "1.exit").write_text(json.dumps({"exit": 42, "signal": None, "ended": time.time()}))
    Controller(cfg).open()
    assert jobs.load(layout, job_id).state.exit == 42


def test_lost_submit_message_is_found_by_the_gap_scan(ctrl, tmp_path):
    (lost,) = jobs.publish(ctrl.layout, make_spec(tmp_path), b"#!/bin/sh\n")  # no message sent
    later = submit(ctrl, tmp_path)
    step_until(ctrl, later, states.FINISHED)
    step_until(ctrl, lost, states.FINISHED)


def test_idle_controller_sleeps_until_its_next_heartbeat(ctrl):
    now = time.time()
    ctrl.step(now)
    assert ctrl._timeout(now) == pytest.approx(ctrl.config["idle_heartbeat_interval"])
    assert json.loads((ctrl.layout.host_dir() / "heartbeat.json").read_text())["interval"] == 60


def test_a_controller_with_jobs_beats_at_the_shorter_interval(ctrl, tmp_path):
    job_id = submit(ctrl, tmp_path, hold=True)
    step_until(ctrl, job_id, states.HELD)
    now = time.time()
    ctrl._beat(now)
    assert ctrl._timeout(now) == pytest.approx(ctrl.config["heartbeat_interval"])
    assert json.loads((ctrl.layout.host_dir() / "heartbeat.json").read_text())["interval"] == 10


def test_an_array_publishes_around_a_taken_id_and_every_element_names_the_first(home_env, tmp_path):
    """Elements after the first are made durable together (one syncfs) and then
    renamed one by one; an id another submitter holds is skipped, never shared."""
    cfg = config.load()
    layout = Layout(cfg.home, cfg.host)
    layout.ensure()
    os.makedirs(layout.job_dir(3) / "runs")  # another submitter's job, published meanwhile
    (layout.job_dir(3) / "job.json").write_text("{}")
    array = {"first": 1, "last": 5, "max": None}
    ids = jobs.publish(layout, make_spec(tmp_path, array=array), b"#!/bin/sh\n", 5)
    assert ids == [1, 2, 4, 5, 6]
    for index, job_id in enumerate(ids):
        spec = jobs.load(layout, job_id).spec  # the first element learns its id as it loads
        assert spec["array"]["id"] == 1 and spec["array"]["index"] == index + 1
        assert (layout.job_dir(job_id) / "script").read_bytes() == b"#!/bin/sh\n"
    assert not [name for name in os.listdir(layout.jobs) if name.startswith(".")]  # no temporaries left


def test_a_job_whose_controller_was_never_told_runs_after_the_next_heartbeat(ctrl, tmp_path):
    """gqsub stores the job, then fails to send its message (a full spool): the
    controller finds it at its next heartbeat, not only at its next start."""
    ctrl.step(time.time())
    (untold,) = jobs.publish(ctrl.layout, make_spec(tmp_path), b"#!/bin/sh\n")  # no message sent
    ctrl.next_beat = 0  # the heartbeat is due
    step_until(ctrl, untold, states.FINISHED)


def test_a_run_that_ended_before_a_power_cut_never_runs_again(ctrl, tmp_path):
    """The "running" state is saved without fsync. Play the worst power cut: the
    run ended (its exit record is durable) but every state.json write was lost.
    The job is taken on as new and started as the same attempt: fenced, it
    reads the old exit record instead of running a second time."""
    runs = tmp_path / "runs.log"
    job_id = submit(ctrl, tmp_path, f"#!/bin/sh\necho ran >> {runs}\nexit 7\n")
    assert step_until(ctrl, job_id, states.FAILED).state.exit == 7
    os.unlink(ctrl.layout.job_dir(job_id) / "state.json")  # as if never written to disk
    after = Controller(config.load())
    after.open()
    assert step_until(after, job_id, states.FAILED).state.exit == 7
    assert runs.read_text() == "ran\n"


def test_a_run_ends_on_its_shepherds_word_before_the_shepherd_is_reaped(ctrl, tmp_path):
    """The shepherd says "JOB RUN" on the controller's pipe once the exit record
    is durable: the run is over without waiting for SIGCHLD and waitpid."""
    job_id = submit(ctrl, tmp_path, "#!/bin/sh\nexit 3\n")
    step_until(ctrl, job_id, states.RUNNING)
    wait_for(lambda: fifo.wait([ctrl.ended_r], 0.05), what="the shepherd's line")
    ctrl._runs_told_ended(time.time())  # the pipe only: no reaping
    job = jobs.load(ctrl.layout, job_id)
    assert job.state.state == states.FAILED and job.state.exit == 3
    ctrl.step(time.time())  # the reap that follows finds the run over: nothing changes
    assert jobs.load(ctrl.layout, job_id).state.as_dict() == job.state.as_dict()


@pytest.mark.parametrize("restart", [False, True])
def test_an_end_state_lost_in_a_power_cut_is_rebuilt_from_the_exit_record(ctrl, tmp_path, restart):
    """The state a run's end leads to (failed; queued for a restart) is saved
    without fsync: play the cut that loses it (state.json still says running)
    and check that the next controller comes to the same end, restart
    included, and that no run happens twice."""
    runs = tmp_path / "runs.log"
    extra = {}
    if restart:
        (ctrl.layout.home / "jobtypes").mkdir(exist_ok=True)
        (ctrl.layout.home / "jobtypes" / "again.yaml").write_text("restart_on: [7]\nrestart_limit: 1\n")
        extra = {"jobtype": "again"}
    job_id = submit(ctrl, tmp_path, f"#!/bin/sh\necho ran >> {runs}\nexit 7\n", **extra)
    running = step_until(ctrl, job_id, states.RUNNING)
    wait_for(lambda: fifo.wait([ctrl.ended_r], 0.05), what="the shepherd's line")
    ctrl._runs_told_ended(time.time())  # the end is saved, nothing else is started
    assert jobs.load(ctrl.layout, job_id).state.state == (states.QUEUED if restart else states.FAILED)
    jobs.save(ctrl.layout, running)  # the cut: the end never reached the disk
    after = Controller(config.load())
    after.open()
    job = step_until(after, job_id, states.FAILED)
    assert job.state.exit == 7 and job.state.restarts == (1 if restart else 0)
    assert runs.read_text() == ("ran\n" * (2 if restart else 1))


def test_a_plain_waiter_is_woken_by_the_end_and_an_event_waiter_by_events_too(ctrl, tmp_path):
    """A woken gqwait competes for a CPU with the controller ending the job:
    only `gqwait --event` FIFOs (event.*) are told of an active job's events."""
    from gsat import waiting
    job_id = submit(ctrl, tmp_path, "#!/bin/sh\nexit 0\n", hold=True)
    step_until(ctrl, job_id, states.HELD)
    plain = waiting.make_fifo(ctrl.layout, job_id)
    events = waiting.make_fifo(ctrl.layout, job_id, events=True)
    ctrl.handle(messages.Trigger(job=job_id, event="stageDone", args=[]), time.time())
    assert fifo.read(plain[1]) == b""
    assert b'"event":"stageDone"' in fifo.read(events[1])
    ctrl.handle(messages.Release(jobs=[job_id]), time.time())
    step_until(ctrl, job_id, states.FINISHED)
    assert b'"state":"finished"' in fifo.read(plain[1])
    assert b'"state":"finished"' in fifo.read(events[1])
    for path, fd in (plain, events):
        fifo.remove(path, fd)


def test_a_pooled_shepherd_runs_job_after_job_and_exits_when_its_pipe_closes(ctrl, tmp_path):
    """run() forks a shepherd for the pool before it sleeps; a start hands it the
    run instead of forking, and once the job has ended it waits for the next."""
    ctrl._fill_pool()
    pooled = ctrl.pool.idle[0].pid
    for exit_value in (5, 0):
        job_id = submit(ctrl, tmp_path, f"#!/bin/sh\necho job=$GSAT_JOBID\nexit {exit_value}\n")
        step_until(ctrl, job_id, states.RUNNING)
        assert ctrl.children[pooled] == (job_id, 1) and not ctrl.pool.idle
        job = step_until(ctrl, job_id, states.FINISHED, states.FAILED)
        assert job.state.exit == exit_value
        assert shepherd.read_start(str(ctrl.layout.job_dir(job_id)), 1)["shepherd"]["pid"] == pooled
        assert (ctrl.layout.job_dir(job_id) / "stdout").read_text() == f"job={job_id}\n"
        assert [s.pid for s in ctrl.pool.idle] == [pooled] and pooled not in ctrl.children
    ctrl.pool.close()
    assert os.waitpid(pooled, 0)[1] == 0


def test_a_killed_pooled_shepherd_is_replaced_by_a_forked_one(ctrl, tmp_path):
    ctrl._fill_pool()
    pooled = ctrl.pool.idle[0].pid
    os.kill(pooled, 9)
    os.waitpid(pooled, 0)  # reaped here: the start finds its pipe without a reader
    job_id = submit(ctrl, tmp_path, "#!/bin/sh\nexit 0\n")
    assert step_until(ctrl, job_id, states.FINISHED).state.exit == 0
    assert not ctrl.pool.idle and not ctrl.pool.busy


def test_a_killed_idle_shepherd_is_reaped_and_leaves_the_pool(ctrl):
    ctrl._fill_pool()
    pooled = ctrl.pool.idle[0].pid
    os.kill(pooled, 9)
    wait_for(lambda: (ctrl.step(time.time()), not ctrl.pool.idle)[1], what="the reap")
    ctrl._fill_pool()
    assert [s.pid for s in ctrl.pool.idle] != [pooled]


def test_a_spec_too_big_for_the_pipe_gets_a_forked_shepherd_and_the_pooled_one_stays(ctrl, tmp_path):
    from gsat.spare import PIPE_ROOM
    ctrl._fill_pool()
    pooled = ctrl.pool.idle[0].pid
    env = {"PATH": os.environ["PATH"], "BIG": "x" * PIPE_ROOM}
    job_id = submit(ctrl, tmp_path, "#!/bin/sh\necho ${#BIG}\n", env=env)
    assert step_until(ctrl, job_id, states.FINISHED).state.exit == 0
    assert (ctrl.layout.job_dir(job_id) / "stdout").read_text() == f"{PIPE_ROOM}\n"
    assert shepherd.read_start(str(ctrl.layout.job_dir(job_id)), 1)["shepherd"]["pid"] != pooled
    assert [s.pid for s in ctrl.pool.idle] == [pooled]


def test_an_end_that_cannot_be_saved_is_recorded_later_not_dropped(ctrl, tmp_path):
    """A full disk (here: an immutable job directory) when the shepherd reports
    the end: the job stays running in memory and the end is recorded once the
    directory takes files again."""
    job_id = submit(ctrl, tmp_path, "#!/bin/sh\nexit 6\n")
    step_until(ctrl, job_id, states.RUNNING)
    jobdir = ctrl.layout.job_dir(job_id)
    wait_for(lambda: shepherd.read_exit(str(jobdir), 1), what="the exit record")
    wait_for(lambda: fifo.wait([ctrl.ended_r], 0.05), what="the shepherd's line")
    if subprocess.run(["chattr", "+i", str(jobdir)], capture_output=True).returncode:
        pytest.skip("chattr +i is not supported here")
    try:
        ctrl._runs_told_ended(time.time())
        assert ctrl.jobs[job_id].state.state == states.RUNNING and ctrl.told_ended
        assert ctrl._timeout(time.time()) <= 1.0
    finally:
        subprocess.run(["chattr", "-i", str(jobdir)], check=True)
    assert step_until(ctrl, job_id, states.FAILED).state.exit == 6


def test_a_command_that_reaches_a_submission_first_takes_it_on_with_its_qsub(ctrl, tmp_path):
    """gqhold of a job still waiting to be taken on (announced, or untold)."""
    from gsat import eventlog
    (job_id,) = jobs.publish(ctrl.layout, make_spec(tmp_path), b"#!/bin/sh\n")  # nobody told
    answer = ctrl.handle(messages.Hold(jobs=[job_id]), time.time())
    assert answer.code == 0
    names = [e["name"] for e in eventlog.read(ctrl.layout.job_dir(job_id))]
    assert names == [states.QSUB, states.JOB_HOLD]
    assert jobs.load(ctrl.layout, job_id).state.state == states.HELD


def test_a_pooled_shepherd_killed_during_its_run_makes_the_run_lost(ctrl, tmp_path):
    ctrl._fill_pool()
    pooled = ctrl.pool.idle[0].pid
    job_id = submit(ctrl, tmp_path, "#!/bin/sh\nsleep 30\n")
    step_until(ctrl, job_id, states.RUNNING)
    wait_for(lambda: (shepherd.read_start(str(ctrl.layout.job_dir(job_id)), 1) or {}).get("job_pid"))
    job_pid = shepherd.read_start(str(ctrl.layout.job_dir(job_id)), 1)["job_pid"]
    os.kill(pooled, 9)
    os.killpg(job_pid, 9)  # the job would outlive its shepherd: not this test's business
    assert step_until(ctrl, job_id, states.FAILED).state.exit == 255
    assert pooled not in ctrl.pool.busy


def test_a_plain_wait_takes_the_exit_value_from_the_controllers_line(ctrl, tmp_path):
    """gqwait re-reads no job files for an end the controller's line reports
    (the state was saved first); a line it cannot read makes it look at all."""
    from gsat import waiting
    job_id = submit(ctrl, tmp_path, "#!/bin/sh\nexit 9\n")
    path, fd = waiting.make_fifo(ctrl.layout, job_id)
    step_until(ctrl, job_id, states.FAILED)
    lines = fifo.read(fd)
    assert waiting._named(lines, [job_id, 99]) == ([job_id], {job_id: 9})
    running = b'{"job":%d,"state":"running","event":"JOB_START","exit":null}\n' % job_id
    assert waiting._named(running, [job_id]) == ([], {})
    assert waiting._named(b"garbage\n", [job_id, 99]) == ([job_id, 99], {})
    deleted = b'{"job":%d,"state":"deleted","event":"QDEL","exit":null}\n' % job_id
    assert waiting._named(deleted, [job_id]) == ([job_id], {job_id: 255})
    fifo.remove(path, fd)


def test_a_big_submission_is_taken_on_in_batches_and_its_first_jobs_start_at_once(ctrl, tmp_path):
    from gsat.controller import TAKE_ON_BATCH
    count = TAKE_ON_BATCH + 8
    array = {"first": 1, "last": count, "max": None}
    ids = jobs.publish(ctrl.layout, make_spec(tmp_path, array=array), b"#!/bin/sh\n", count)
    ctrl.channel.send(messages.Submit(jobs=ids))
    now = time.time()
    ctrl.next_beat = ctrl.last_beat = now + 60  # no heartbeat: it would take every untold job on
    ctrl.step(now)
    assert len(ctrl.jobs) == TAKE_ON_BATCH and ctrl.children  # the first ones already run
    assert ctrl._timeout(now) == 0  # no sleep while announced jobs wait
    ctrl.step(time.time())
    assert set(ids) <= set(ctrl.jobs) | {j for j in ids if jobs.load(ctrl.layout, j).state.state != states.QUEUED}
    for job_id in ids:
        step_until(ctrl, job_id, states.FINISHED)


def immutable(path):
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("chattr +i is not supported here")


def test_an_end_seen_by_sigchld_that_cannot_be_saved_is_retried(ctrl, tmp_path):
    """The SIGCHLD road (a forked shepherd, its pipe line left unread) on a
    job directory that takes no files: the step goes on, the end is recorded
    once it can be, with the real exit value."""
    job_id = submit(ctrl, tmp_path, "#!/bin/sh\nexit 3\n")
    step_until(ctrl, job_id, states.RUNNING)
    (pid,) = ctrl.children
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # the shepherd has exited; not reaped yet
    fifo.read(ctrl.ended_r)  # as if its line never came: only SIGCHLD tells
    jobdir = ctrl.layout.job_dir(job_id)
    immutable(jobdir)
    try:
        ctrl.step(time.time())  # must not raise
        assert pid not in ctrl.children and ctrl.jobs[job_id].state.state == states.RUNNING
        assert ctrl.told_ended and ctrl._timeout(time.time()) <= 1.0
    finally:
        subprocess.run(["chattr", "-i", str(jobdir)], check=True)
    assert step_until(ctrl, job_id, states.FAILED).state.exit == 3


def test_an_end_found_at_start_up_that_cannot_be_saved_is_retried(home_env, tmp_path):
    """Recovery: the run ended while no controller ran, and its end cannot be
    saved when the next one starts; it is recorded once it can be."""
    first = Controller(config.load())
    first.open()
    job_id = submit(first, tmp_path, "#!/bin/sh\nexit 3\n")
    step_until(first, job_id, states.RUNNING)
    jobdir = first.layout.job_dir(job_id)
    wait_for(lambda: shepherd.read_exit(str(jobdir), 1), what="the exit record")
    first.pool.close()  # the first controller "dies" before it records the end
    immutable(jobdir)
    try:
        ctrl = Controller(config.load())
        ctrl.open()
        assert ctrl.jobs[job_id].state.state == states.RUNNING and ctrl.told_ended
    finally:
        subprocess.run(["chattr", "-i", str(jobdir)], check=True)
    assert step_until(ctrl, job_id, states.FAILED).state.exit == 3


# ---- a job that breaks the controller's code fails alone (review, finding 3) ----
# The damage checks keep such shapes out of job files; here a spec in memory is
# given one, standing for whatever bug or shape they still miss.

def test_a_job_whose_end_breaks_the_code_fails_with_a_reason_and_the_step_goes_on(ctrl, tmp_path):
    go = tmp_path / "go"
    job_id = submit(ctrl, tmp_path, f"#!/bin/sh\nwhile [ ! -e {go} ]; do sleep 0.02; done\nexit 0\n")
    other = submit(ctrl, tmp_path)
    step_until(ctrl, job_id, states.RUNNING)
    ctrl.jobs[job_id].spec["on"] = [1]  # recording the end raises TypeError
    go.touch()
    job = step_until(ctrl, job_id, states.FAILED)
    assert job.state.exit == 0 and job.state.reason.startswith("cannot record the end of run 1: TypeError")
    assert job_id not in ctrl.jobs
    assert step_until(ctrl, other, states.FINISHED).state.exit == 0


def test_a_job_whose_start_breaks_the_code_fails_with_a_reason(ctrl, tmp_path):
    job_id = submit(ctrl, tmp_path, hold=True)
    step_until(ctrl, job_id, states.HELD)
    ctrl.jobs[job_id].spec["jobtype"] = ["default"]  # not a name: the job-type lookup raises
    ctrl.channel.send(messages.Release(jobs=[job_id]))
    job = step_until(ctrl, job_id, states.FAILED)
    assert job.state.reason.startswith("cannot start: ") and job.state.run == 0, job.state


def test_a_message_that_breaks_the_code_is_answered_and_the_batch_goes_on(ctrl, tmp_path):
    bad, good = submit(ctrl, tmp_path, hold=True), submit(ctrl, tmp_path, hold=True)
    step_until(ctrl, good, states.HELD)
    ctrl.jobs[bad].spec["on"] = 5  # its JOB_DELETE event raises TypeError
    ctrl.channel.send(messages.Delete(jobs=[bad]))
    ctrl.channel.send(messages.Release(jobs=[good]))
    ctrl.step(time.time())  # one batch: both messages
    assert jobs.load(ctrl.layout, good).state.state in (states.QUEUED, states.RUNNING, states.FINISHED)
