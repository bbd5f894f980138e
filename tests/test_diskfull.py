"""A full disk (SPEC §9): a clear one-line error with exit 6, and no corrupt
state.  GSAT_HOME is a real tmpfs mounted here with few inodes, so that it
fills up partway through a submission (root only: mount(2))."""

import os
import subprocess
import time

import pytest

from helpers import Gsat, q, wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def small_home(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,nr_inodes=64,mode=0700", "tmpfs", str(home)],
                   check=True, capture_output=True, timeout=30)
    g = Gsat(home)
    yield g
    g.cleanup()
    subprocess.run(["umount", "-l", str(home)], capture_output=True, timeout=30)


def job_dirs(g) -> list[str]:
    return sorted(os.listdir(g.home / "jobs")) if (g.home / "jobs").is_dir() else []


def state_of(g, name: str) -> str | None:
    path = g.home / "jobs" / name / "state.json"
    return path.read_text() if path.exists() else None


def fill_inodes(home) -> list:
    """Use up the file system's inodes the way another program would; the files made."""
    filler = []
    while True:
        path = home / f"filler{len(filler)}"
        try:
            path.write_text("x")
        except OSError:
            return filler
        filler.append(path)


def test_a_heartbeat_on_a_full_disk_is_skipped_and_the_step_goes_on(small_home, monkeypatch):
    """heartbeat.write raises HomeUnusable (not an OSError) on a full disk."""
    from gsat import config
    from gsat.controller import Controller
    monkeypatch.setenv("GSAT_HOME", str(small_home.home))
    monkeypatch.setenv("GSAT_HOSTNAME", small_home.host)
    ctrl = Controller(config.load())
    ctrl.open()
    try:
        fill_inodes(small_home.home)
        now = time.time()
        ctrl.next_beat = 0.0
        ctrl.step(now)  # must not raise
        assert ctrl.next_beat > now  # the beat was tried, and skipped
    finally:
        ctrl.pool.close()


def test_a_job_that_ends_while_the_disk_is_full_keeps_its_exit_value(small_home, tmp_path):
    """The shepherd cannot write the exit record, nor the controller the end
    state, nor a heartbeat: once space is back the job is failed with its own 3."""
    g = small_home
    g.write_config({"autostart": False, "heartbeat_interval": 0.2})
    go, pid_file = tmp_path / "go", tmp_path / "pid"
    g.start()
    job = g.submit(f"#!/bin/sh\necho $$ > {q(pid_file)}\n{await_file_line(go)}exit 3\n")
    g.wait_state(job, "running")
    job_pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip()))
    filler = fill_inodes(g.home)
    go.touch()
    wait_for(lambda: not os.path.exists(f"/proc/{job_pid}"), what="the job's end")  # reaped: the shepherd writes
    wait_for(lambda: "heartbeat.json: No space left" in g.log(), what="a heartbeat on the full disk")
    assert g.controllers[0].poll() is None
    for path in filler:
        path.unlink()
    row = g.wait_state(job, "failed", "finished", timeout=20)
    assert (row["state"], row["exit"]) == ("failed", 3), row
    assert g.run("gqwait", job, timeout=20).returncode == 3


def await_file_line(path) -> str:
    return f"while [ ! -e {q(path)} ]; do sleep 0.02; done\n"


def test_an_array_that_fills_the_disk_is_withdrawn_whole(small_home):
    g = small_home
    proc = g.run("gqsub", "-t", "1-50", input="#!/bin/sh\ntrue\n")
    assert proc.returncode == 6, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("gqsub: ")
    assert proc.stdout == ""  # no id was given out
    names = job_dirs(g)
    assert not [n for n in names if n.startswith(".")]  # no temporary directory left behind
    # what was renamed into place before the disk filled is a tombstone: nothing of it will run
    assert names and all('"deleted"' in (state_of(g, n) or "") for n in names), \
        {n: state_of(g, n) for n in names}
    listing = g.run("gqstat", check=True).stdout
    assert listing.count("\n") <= 1, listing  # the header at most


def test_a_full_disk_refuses_a_submission_cleanly_and_space_brings_it_back(small_home):
    g = small_home
    filler = []
    while True:  # use up the inodes the way another program would
        path = g.home / f"filler{len(filler)}"
        try:
            path.write_text("x")
        except OSError:
            break
        filler.append(path)
    proc = g.run("gqsub", input="#!/bin/sh\ntrue\n")
    assert proc.returncode == 6 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert not [n for n in job_dirs(g) if n.startswith(".")]
    for path in filler:
        path.unlink()
    g.start()
    job = g.submit("#!/bin/sh\necho back\n")
    assert g.wait_state(job, "finished")["exit"] == 0


def test_an_array_is_stored_whole_by_a_python_without_ctypes(gsat, tmp_path):
    """Without ctypes there is no syncfs: every element is fsynced on its own instead."""
    blocker = tmp_path / "noctypes"
    blocker.mkdir()
    (blocker / "ctypes.py").write_text("raise ImportError('this Python was built without libffi')\n")
    proc = gsat.run("gqsub", "-t", "1-5", input="#!/bin/sh\ntrue\n", env={"PYTHONPATH": str(blocker)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "2", "3", "4", "5"]
    assert all((gsat.job_dir(i) / "job.json").is_file() for i in range(1, 6))


def test_an_end_retried_on_a_full_disk_records_its_events_once(small_home, tmp_path):
    """events.log takes the end's lines (an append needs no inode), state.json's
    temporary file does not fit: each retry must find the lines already there."""
    g = small_home
    g.write_config({"autostart": False, "heartbeat_interval": 0.2})
    go = tmp_path / "go"
    g.start()
    job = g.submit(f"#!/bin/sh\n{await_file_line(go)}exit 3\n")
    g.wait_state(job, "running")
    filler = fill_inodes(g.home)
    go.touch()
    filler.pop().unlink()  # one inode: the shepherd's exit record takes it
    wait_for(lambda: g.log().count("cannot record the end of run 1") >= 3, timeout=20, what="three retries")
    for path in filler:
        path.unlink()
    assert g.wait_state(job, "failed")["exit"] == 3
    events = g.events(job)
    assert events.count("JOB_TERMINATION") == 1 and events.count("JOB_FAILED") == 1, events


def test_an_abandoned_array_on_a_full_disk_is_still_removed(small_home, monkeypatch):
    """No room for its tombstones: its elements are renamed away instead
    (jobs.withdraw), and nothing of it stays behind to be listed."""
    from gsat import config
    from gsat.controller import Controller
    g = small_home
    assert g.run("gqsub", "-t", "1-3", input="#!/bin/sh\ntrue\n").returncode == 0
    # a controller fenced it (its submitter died before committing it) and crashed before removing it
    (g.job_dir(1) / "array").write_text("abandoned\n")
    monkeypatch.setenv("GSAT_HOME", str(g.home))
    monkeypatch.setenv("GSAT_HOSTNAME", g.host)
    ctrl = Controller(config.load())
    try:
        fill_inodes(g.home)  # no room for tombstones
        ctrl.open()  # takes the array on as not whole, finds its submitter gone, removes it
        assert not ctrl.intake.incomplete
        left = {n: state_of(g, n) for n in job_dirs(g) if not n.startswith(".")}
        assert all('"deleted"' in (state or "") for state in left.values()), left
    finally:
        ctrl.pool.close()


def test_a_shepherd_waits_for_room_to_publish_its_start_record(small_home):
    """A shepherd that met a full disk at its start record died (found by make
    soak: a job that never ran was failed 255, lost); it waits for room instead,
    and a recovering controller's fence still wins the same race as before."""
    import threading
    from gsat import shepherd
    runs = small_home.home / "runs"
    runs.mkdir()
    filler = fill_inodes(small_home.home)
    result = []
    publisher = threading.Thread(target=lambda: result.append(
        shepherd.publish_record(str(runs / "1.start"), {"job_pid": None}, wait_for_room=True)))
    publisher.start()
    publisher.join(timeout=0.5)  # a deadline, not a pause: it must still be waiting
    assert publisher.is_alive() and not result
    with pytest.raises(OSError):  # the controller's fence does not wait: it is tried again later
        shepherd.publish_record(str(runs / "2.start"), shepherd.FENCED)
    for path in filler:
        path.unlink()
    publisher.join(timeout=10)
    assert result == [True] and (runs / "1.start").exists()
