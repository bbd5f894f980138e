"""Crashes, restarts and hostile input, end to end (SPEC §2, §7, §9, §10).

Real `gsatlc` processes, real gqsub calls, real kill -9: the controller is
killed while jobs run and queue, restarted, fed bad spool messages, and
raced by many submitters.  Jobs that must outlive a crash wait on a barrier
file the test creates, with a deadline of their own so that nothing hangs.
"""

import os
import signal
import stat
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from helpers import ENDED, all_states, wait_all_ended, wait_for

pytestmark = pytest.mark.timeout(120)

DEADLINE_EXIT = 99  # a barrier job whose barrier never came

# A job that records each of its runs, then waits for the barrier file (at
# most ~30 s) and exits with a value of its own.
BARRIER_JOB = """#!/bin/sh
echo $$ > {marks}/$GSAT_JOBID.pid
echo $GSAT_RUN >> {marks}/$GSAT_JOBID.runs
i=0
while [ ! -e {barrier} ]; do
  i=$((i+1))
  [ $i -gt 600 ] && exit {deadline}
  sleep 0.05
done
echo done > {marks}/$GSAT_JOBID.done
exit {exit}
"""

STOP_MESSAGE = b'{"v": 1, "kind": "stop"}'


# ---- helpers ---------------------------------------------------------------

def barrier_job(marks, barrier, exit_value) -> str:
    return BARRIER_JOB.format(marks=marks, barrier=barrier, exit=exit_value, deadline=DEADLINE_EXIT)




def wait_lines(path, count: int, timeout: float) -> None:
    """Wait (cheaply, in-process) until the file at `path` has `count` lines."""
    wait_for(lambda: path.exists() and len(path.read_bytes().splitlines()) >= count, timeout,
             f"{count} lines in {path.name}")


def submit_parallel(g, script: str, count: int, workers: int = 8) -> list[int]:
    """`count` separate gqsub calls, `workers` at a time."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda _: g.submit(script), range(count)))


def runs_of(marks, job: int) -> list[str]:
    path = marks / f"{job}.runs"
    return path.read_text().split() if path.exists() else []


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def assert_serving(g) -> None:
    """The controller answers, so it has finished its start-up recovery."""
    proc = g.run("sendcmd", "-c", "ALIVE?", "--timeout", 10, timeout=30)
    assert (proc.returncode, proc.stdout.strip()) == (0, "ALIVE"), proc.stderr


def spool(g):
    return g.home / "spool" / g.host


@pytest.fixture
def marks(tmp_path):
    path = tmp_path / "marks"
    path.mkdir()
    return path


# ---- backlog and crashes ---------------------------------------------------

def test_backlog_of_200_runs_once_each_in_id_order(gsat, tmp_path):
    ran = tmp_path / "ran"
    gsat.write_config({"autostart": False, "kill_grace": 2, "slots": 4})
    ids = submit_parallel(gsat, f"#!/bin/sh\necho $GSAT_JOBID >> {ran}\n", 200)
    assert sorted(ids) == list(range(1, 201))
    assert not ran.exists(), "a job ran without a controller"
    assert {r["state"] for r in all_states(gsat).values()} == {"queued"}

    gsat.start()
    wait_lines(ran, 200, 60)
    waited = gsat.run("gqwait", "--timeout", 30, *ids, timeout=60)
    assert waited.returncode == 0, waited.stderr
    rows = all_states(gsat)

    assert sorted(map(int, ran.read_text().split())) == list(range(1, 201)), "a job ran twice or never"
    assert all(rows[i]["state"] == "finished" and rows[i]["run"] == 1 for i in ids)
    started = [rows[i]["started"] for i in range(1, 201)]
    late = [i for i in range(1, 200) if started[i - 1] > started[i]]
    assert not late, f"job {late[0]} started after job {late[0] + 1}"


def test_kill_9_with_jobs_running_and_queued(gsat, tmp_path, marks):
    barrier = tmp_path / "barrier"
    gsat.write_config({"autostart": False, "kill_grace": 2, "slots": 5})
    proc = gsat.start()
    ids = [gsat.submit(barrier_job(marks, barrier, "$((GSAT_JOBID % 7))")) for _ in range(15)]
    assert ids == list(range(1, 16))
    wait_for(lambda: all(runs_of(marks, i) for i in ids[:5]), 20, "5 jobs to run")
    rows = all_states(gsat)
    assert [rows[i]["state"] for i in ids] == ["running"] * 5 + ["queued"] * 10

    gsat.crash(proc)
    assert all(pid_alive(int((marks / f"{i}.pid").read_text())) for i in ids[:5]), \
        "a job died with its controller"
    gsat.start()
    assert_serving(gsat)
    rows = all_states(gsat)
    assert [rows[i]["state"] for i in ids] == ["running"] * 5 + ["queued"] * 10, \
        "the restarted controller did not re-adopt the running jobs"
    barrier.touch()
    rows = wait_all_ended(gsat, ids, 40)

    for i in ids:
        assert runs_of(marks, i) == ["1"], f"job {i} ran {runs_of(marks, i)} times"
        assert rows[i]["exit"] == i % 7, f"job {i}: {rows[i]}"
        assert rows[i]["state"] == ("finished" if i % 7 == 0 else "failed")
        assert rows[i]["run"] == 1
        assert gsat.events(i).count("JOB_TERMINATION") == 1
        assert gsat.events(i).count("JOB_START") == 1


def test_job_that_ends_while_the_controller_is_down(running, tmp_path, marks):
    barrier = tmp_path / "barrier"
    job = running.submit(barrier_job(marks, barrier, 42))
    wait_for(lambda: runs_of(marks, job), 20, "the job to run")
    running.crash(running.controllers[-1])
    pid = int((marks / f"{job}.pid").read_text())
    barrier.touch()
    wait_for(lambda: not pid_alive(pid), 20, "the job to end")
    assert running.state(job)["state"] == "running"

    running.start()
    waiter = running.run("gqwait", "--timeout", 20, job, timeout=30)
    assert waiter.returncode == 42, waiter.stderr
    row = running.state(job)
    assert (row["state"], row["exit"], row["run"]) == ("failed", 42, 1)
    assert runs_of(marks, job) == ["1"]
    assert running.events(job).count("JOB_TERMINATION") == 1


# ---- one controller per host -----------------------------------------------

def test_second_controller_refuses_and_stale_pid_file_does_not_block(gsat):
    first = gsat.start()
    pid_file = gsat.home / "hosts" / gsat.host / "pid"

    second = gsat.run("gsatlc", "run", timeout=30)
    assert second.returncode != 0
    assert second.stderr.startswith("gsatlc: "), second.stderr
    started = gsat.run("gsatlc", "start", timeout=30)
    assert started.returncode != 0
    assert started.stderr.startswith("gsatlc: "), started.stderr
    assert first.poll() is None
    assert gsat.run("gsatlc", "status").returncode == 0
    assert pid_file.read_text().strip() == str(first.pid)

    gsat.crash(first)
    assert pid_file.exists(), "expected kill -9 to leave the pid file behind"
    # worse than a dead pid: one that a live, unrelated process holds now
    squatter = subprocess.Popen(["sleep", "60"])
    try:
        pid_file.write_text(f"{squatter.pid}\n")
        assert gsat.run("gsatlc", "status").returncode == 5
        restarted = gsat.run("gsatlc", "start", timeout=30)
        assert restarted.returncode == 0, restarted.stderr
        assert squatter.poll() is None
    finally:
        squatter.kill()
        squatter.wait()
    new_pid = int(restarted.stdout.split()[0])
    assert new_pid != squatter.pid
    assert gsat.run("gsatlc", "status").returncode == 0
    job = gsat.submit("#!/bin/sh\ntrue\n")
    assert gsat.run("gqwait", "--timeout", 20, job, timeout=30).returncode == 0


# ---- bad messages ----------------------------------------------------------

def _plant_bad_messages(g, staging, elsewhere, prefix: str) -> list[str]:
    """Create every kind of bad message aside, then rename each into new/
    (so the controller never sees one half made); return their names."""
    made = []

    def plant(kind, make):
        name = f"{prefix}-{kind}"
        make(staging / name)
        os.rename(staging / name, spool(g) / "new" / name)
        made.append(name)

    plant("junk", lambda p: p.write_bytes(b"\x00\x01\x02 junk {{{ \xfe"))
    plant("utf8", lambda p: p.write_bytes(b'{"v": 1, "kind": "raw", "text": "\xff\xfe\xfd"}'))
    plant("unknown", lambda p: p.write_bytes(b'{"v": 1, "kind": "frobnicate", "jobs": [1]}'))
    plant("array", lambda p: p.write_bytes(b"[" + STOP_MESSAGE + b"]"))
    plant("oversized", lambda p: p.write_bytes(STOP_MESSAGE + b" " * 70000))
    plant("symlink-passwd", lambda p: os.symlink("/etc/passwd", p))
    plant("symlink-message", lambda p: os.symlink(elsewhere / "stop", p))
    plant("hardlink", lambda p: os.link(elsewhere / f"{prefix}-linked", p))
    if os.geteuid() == 0:
        def foreign(p):
            p.write_bytes(STOP_MESSAGE)
            os.chown(p, 65534, 65534)
        plant("foreign", foreign)
    plant("fifo", os.mkfifo)
    plant("directory", lambda p: (p.mkdir(), (p / "inside").write_bytes(STOP_MESSAGE)))
    return made


def _set_aside(g, name: str) -> bool:
    bad = spool(g) / "bad"
    return (not os.path.lexists(spool(g) / "new" / name) and os.path.lexists(bad / name)
            and (bad / f"{name}.reason").exists())


def test_bad_messages_are_set_aside_and_the_controller_carries_on(gsat, tmp_path):
    assert gsat.run("gsatlc", "status").returncode == 5  # creates the spool
    staging, elsewhere = tmp_path / "staging", tmp_path / "elsewhere"
    staging.mkdir()
    elsewhere.mkdir()
    # valid messages that would stop the controller if it accepted them
    (elsewhere / "stop").write_bytes(STOP_MESSAGE)
    for prefix in ("early", "late"):
        (elsewhere / f"{prefix}-linked").write_bytes(STOP_MESSAGE)
    passwd = Path("/etc/passwd").read_bytes()

    early = _plant_bad_messages(gsat, staging, elsewhere, "early")
    proc = gsat.start()
    wait_for(lambda: all(_set_aside(gsat, n) for n in early), 10, "the early bad messages set aside")
    late = _plant_bad_messages(gsat, staging, elsewhere, "late")
    wait_for(lambda: all(_set_aside(gsat, n) for n in late), 10, "the late bad messages set aside")

    bad = spool(gsat) / "bad"
    log = gsat.log()
    for name in early + late:
        assert (bad / f"{name}.reason").read_text().strip(), f"{name}: empty reason"
        assert name in log, f"{name} not in the controller's log"
    assert os.path.islink(bad / "early-symlink-passwd")
    assert stat.S_ISFIFO(os.lstat(bad / "late-fifo").st_mode)
    assert Path("/etc/passwd").read_bytes() == passwd
    assert (elsewhere / "stop").read_bytes() == STOP_MESSAGE
    assert os.stat(elsewhere / "late-linked").st_nlink == 2

    assert proc.poll() is None, "the controller died"
    job = gsat.submit("#!/bin/sh\necho still serving\n")
    assert gsat.run("gqwait", "--timeout", 20, job, timeout=30).returncode == 0
    assert gsat.run("gqpeek", job).stdout == "still serving\n"
    assert proc.poll() is None


def test_controller_refuses_a_spool_writable_by_others(gsat):
    assert gsat.run("gsatlc", "status").returncode == 5  # creates the spool
    os.chmod(spool(gsat), 0o777)
    for action in ("run", "start"):
        proc = gsat.run("gsatlc", action, timeout=30)
        assert proc.returncode == 6, (action, proc.returncode, proc.stderr)
        assert proc.stderr.startswith("gsatlc: ") and str(spool(gsat)) in proc.stderr, proc.stderr
        assert any(why in proc.stderr for why in ("writable", "0777", "mode")), proc.stderr
    assert gsat.run("gsatlc", "status").returncode != 0
    assert not (gsat.home / "hosts" / gsat.host / "pid").exists()


# ---- gsatlc start / stop / status ------------------------------------------

def test_start_stop_status_round_trip_and_jobs_outlive_stop(gsat, tmp_path, marks):
    barrier = tmp_path / "barrier"
    assert gsat.run("gsatlc", "status").returncode == 5
    started = gsat.run("gsatlc", "start", timeout=30)
    assert started.returncode == 0, started.stderr
    assert gsat.run("gsatlc", "status").returncode == 0
    job = gsat.submit(barrier_job(marks, barrier, 3))
    wait_for(lambda: runs_of(marks, job), 20, "the job to run")

    stopped = gsat.run("gsatlc", "stop", timeout=30)
    assert stopped.returncode == 0, stopped.stderr
    assert gsat.run("gsatlc", "status").returncode == 5
    first_pid = int(started.stdout.split()[0])
    wait_for(lambda: not pid_alive(first_pid), 10, "the stopped controller to exit")
    barrier.touch()
    wait_for(lambda: (marks / f"{job}.done").exists(), 20, "the job to finish after gsatlc stop")

    assert gsat.run("gsatlc", "start", timeout=30).returncode == 0
    row = gsat.wait_state(job, *ENDED)
    assert (row["state"], row["exit"], row["run"]) == ("failed", 3, 1)
    assert gsat.events(job).count("JOB_TERMINATION") == 1

    victim = gsat.submit(barrier_job(marks, tmp_path / "never", 0))
    wait_for(lambda: runs_of(marks, victim), 20, "the second job to run")
    pid = int((marks / f"{victim}.pid").read_text())
    killed = gsat.run("gsatlc", "stop", "--kill-jobs", timeout=30)
    assert killed.returncode == 0, killed.stderr
    assert gsat.run("gsatlc", "status").returncode == 5
    wait_for(lambda: not pid_alive(pid), 10, "gsatlc stop --kill-jobs to end the job")

    gsat.start()
    row = gsat.wait_state(victim, *ENDED)
    assert (row["state"], row["exit"]) == ("failed", 128 + signal.SIGTERM)
    assert not (marks / f"{victim}.done").exists()


def test_autostart_gqsub_starts_the_controller(gsat):
    gsat.write_config({"autostart": True, "kill_grace": 2})
    assert gsat.run("gsatlc", "status").returncode == 5
    job = gsat.submit("#!/bin/sh\necho autostarted\n")
    wait_for(lambda: gsat.run("gsatlc", "status").returncode == 0, 10, "the autostarted controller")
    assert gsat.run("gqwait", "--timeout", 20, job, timeout=30).returncode == 0
    assert gsat.run("gqpeek", job).stdout == "autostarted\n"


# ---- concurrent submitters -------------------------------------------------

def test_60_concurrent_submitters_get_distinct_consecutive_ids(gsat, tmp_path):
    ran = tmp_path / "ran"
    gsat.write_config({"autostart": False, "kill_grace": 2, "scheduler": "nobatch"})
    gsat.start()
    gate = threading.Barrier(60)

    def submitter(_):
        gate.wait(timeout=30)
        return [gsat.submit(f"#!/bin/sh\necho $GSAT_JOBID >> {ran}\n") for _ in range(5)]

    with ThreadPoolExecutor(60) as pool:
        ids = [i for chunk in pool.map(submitter, range(60)) for i in chunk]
    assert len(set(ids)) == 300, "two submissions got one id"
    assert sorted(ids) == list(range(1, 301))
    wait_lines(ran, 300, 60)
    waited = gsat.run("gqwait", "--timeout", 30, *ids, timeout=60)
    assert waited.returncode == 0, waited.stderr
    assert sorted(map(int, ran.read_text().split())) == list(range(1, 301))
    rows = all_states(gsat)
    assert sorted(rows) == list(range(1, 301))
    assert all(rows[i]["state"] == "finished" and rows[i]["run"] == 1 for i in ids)


def test_a_second_controller_refuses_at_once_instead_of_waiting_to_take_over(gsat):
    """Two commands that autostart at the same moment start two controllers. The
    second must give up at once: one that waited on the lock (its patience is
    for status probes) would inherit the host the moment the first stopped."""
    first = gsat.start()
    probe = ("from gsat import config, daemon; from gsat.layout import Layout; c = config.load(); "
             "daemon.acquire(Layout(c.home, c.host), patience=60)")
    proc = subprocess.run([sys.executable, "-c", probe], env=gsat.env, capture_output=True, text=True,
                          timeout=20)  # a waiting acquire would still be waiting: TimeoutExpired
    assert "Refused" in proc.stderr and "runs already" in proc.stderr, proc.stderr
    assert first.poll() is None
