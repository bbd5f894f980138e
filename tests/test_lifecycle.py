"""Job state transitions end to end (SPEC §4, §5, §7): hold and release,
signals, delete, gqwait's exit values, job-type restarts, the schedulers and
the event log, with real jobs under a real `gsatlc run`.

Job scripts talk to the test through marker files in `tmp_path`: they write
a file once their traps are set, and every loop in them has a deadline, so
a broken controller makes a test fail instead of hang.
"""

import json
import subprocess
import time
from pathlib import Path

import pytest

from helpers import await_file, q, read, BIN, wait_for

pytestmark = pytest.mark.timeout(90)

# a foreground loop of short sleeps: traps run within 0.1 s, gives up after 30 s
LOOP = "i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n"


def sh(body: str) -> str:
    return "#!/bin/sh\n" + body


def proc_state(pid: int) -> str | None:
    """The state letter in /proc/PID/stat (R, S, T, Z...), None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone before the open, or between open and read
        return None
    return text.rsplit(")", 1)[1].split()[0]


def dead(pid: int) -> bool:
    return proc_state(pid) in (None, "Z", "X")


def event_records(g, job: int) -> list[dict]:
    path = g.job_dir(job) / "events.log"
    return [json.loads(line) for line in read(path).splitlines() if line.strip()]


def gone(g, job: int) -> bool:
    return g.run("gqstat", job).returncode == 3


def write_jobtype(g, name: str, text: str) -> None:
    folder = g.home / "jobtypes"
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / f"{name}.yaml").write_text(text)


RETRY_TYPE = "hold_signal: TERM\nrestart_on: [75]\nrestart_limit: 2\n"


# ---- hold and release ---------------------------------------------------

def test_hold_and_release_of_a_queued_job(running):
    first = running.submit(sh("sleep 30\n"))
    running.wait_state(first, "running")
    second = running.submit(sh("echo second ran\n"))
    assert running.state(second)["state"] == "queued"

    assert running.run("gqhold", second).returncode == 0
    assert running.wait_state(second, "held")["state"] == "held"
    assert running.run("gqrls", second).returncode == 0
    assert running.wait_state(second, "queued")["state"] == "queued"

    assert running.run("gqdel", first).returncode == 0
    running.wait_state(second, "finished")
    assert running.run("gqpeek", second).stdout == "second ran\n"
    wait_for(lambda: "JOB_FINISHED" in running.events(second), what="JOB_FINISHED")
    assert running.events(second) == ["QSUB", "JOB_HOLD", "JOB_RELEASE", "JOB_START",
                                      "JOB_TERMINATION", "JOB_FINISHED"]
    assert running.run("gqrls", second).returncode == 1  # finished, not held


def test_hold_of_a_running_job_sends_term_and_release_reruns_it(running, tmp_path):
    marker, ready = tmp_path / "signal", tmp_path / "ready"
    job = running.submit(sh(
        f'echo "$GSAT_RUN" >> {q(tmp_path / "runs")}\n'
        f'if [ "$GSAT_RUN" = 1 ]; then\n'
        f"  trap 'echo TERM > {q(marker)}; exit 0' TERM\n"
        f"  trap 'echo INT > {q(marker)}; exit 0' INT\n"
        f"  touch {q(ready)}\n"
        f"  {LOOP}"
        f"  exit 9\n"
        f"fi\n"
        f"exit 0\n"))
    wait_for(ready.exists, what="the job's traps")
    assert running.run("gqhold", job).returncode == 0
    held = running.wait_state(job, "held")
    assert read(marker) == "TERM\n"
    assert held["run"] == 1

    assert running.run("gqrls", job).returncode == 0
    again = running.wait_state(job, "finished")
    assert again["run"] == 2 and again["exit"] == 0
    assert read(tmp_path / "runs") == "1\n2\n"
    events = running.events(job)
    assert events.index("JOB_HOLD") < events.index("JOB_RELEASE")
    assert events.count("JOB_START") == 2


def test_hold_of_a_finished_job_then_release_runs_it_again(running, tmp_path):
    runs = tmp_path / "runs"
    job = running.submit(sh(f'echo "$GSAT_RUN" >> {q(runs)}\n'))
    assert running.run("gqwait", job).returncode == 0
    assert running.state(job)["state"] == "finished"

    assert running.run("gqhold", job).returncode == 0
    assert running.state(job)["state"] == "held"
    assert running.run("gqrls", job).returncode == 0
    wait_for(lambda: read(runs) == "1\n2\n", what="the second run")
    state = running.wait_state(job, "finished")
    assert state["run"] == 2 and state["exit"] == 0
    assert running.events(job).count("JOB_FINISHED") == 2


def test_hold_of_a_gtransfer_job_sends_int(running, tmp_path):
    marker, ready = tmp_path / "signal", tmp_path / "ready"
    job = running.submit(sh(
        f"trap 'echo TERM > {q(marker)}; exit 0' TERM\n"
        f"trap 'echo INT > {q(marker)}; exit 0' INT\n"
        f"touch {q(ready)}\n"
        f"{LOOP}"), "-T", "gtransfer")
    wait_for(ready.exists, what="the job's traps")
    assert running.run("gqhold", job).returncode == 0
    running.wait_state(job, "held")
    assert read(marker) == "INT\n"


# ---- gqsig --------------------------------------------------------------

def test_gqsig_term_to_a_job_that_exits_7_fails_it(running, tmp_path):
    ready = tmp_path / "ready"
    job = running.submit(sh(f"trap 'exit 7' TERM\ntouch {q(ready)}\n{LOOP}exit 0\n"))
    wait_for(ready.exists, what="the job's trap")
    assert running.run("gqsig", job).returncode == 0
    state = running.wait_state(job, "failed", "finished", timeout=10)
    assert state["state"] == "failed" and state["exit"] == 7
    signals = [e for e in event_records(running, job) if e["name"] == "JOB_SIGNAL"]
    assert [e.get("signal") for e in signals] == ["TERM"]


def looping_job(g, pid_file, trap: str) -> tuple[int, int]:
    """A job that sets `trap`, publishes its pid and loops: (job id, pid)."""
    job = g.submit(sh(trap + f"echo $$ > {q(pid_file)}.tmp && mv {q(pid_file)}.tmp {q(pid_file)}\n" + LOOP))
    wait_for(pid_file.exists, what="the job's pid")
    return job, int(pid_file.read_text())


def test_gqsig_stop_cont_and_signal_spellings(running, tmp_path):
    pid_file, usr1 = tmp_path / "pid", tmp_path / "usr1"
    job, pid = looping_job(running, pid_file, f"trap 'echo x >> {q(usr1)}' USR1\n")

    assert running.run("gqsig", "-s", "STOP", job).returncode == 0
    assert running.wait_state(job, "suspended")["state"] == "suspended"
    wait_for(lambda: proc_state(pid) == "T", what="the job to be stopped")
    assert "suspended" in running.run("gqstat", "-s", "suspended").stdout

    assert running.run("gqsig", "-s", "CONT", job).returncode == 0
    running.wait_state(job, "running")
    wait_for(lambda: proc_state(pid) in ("R", "S"), what="the job to run on")

    for count, spelling in enumerate(("SIGUSR1", "USR1", "10"), 1):
        assert running.run("gqsig", "-s", spelling, job).returncode == 0, spelling
        wait_for(lambda: read(usr1).count("x") == count, what=f"USR1 #{count} ({spelling})")
    assert running.state(job)["state"] == "running"

    bad = running.run("gqsig", "-s", "NOSUCHSIG", job)
    assert bad.returncode == 2
    assert bad.stderr.startswith("gqsig: ") and len(bad.stderr.splitlines()) == 1
    assert running.state(job)["state"] == "running"


# ---- gqdel --------------------------------------------------------------

def test_gqdel_of_a_running_job_kills_its_process_group(running, tmp_path):
    pids = tmp_path / "pids"
    job = running.submit(sh(
        f"sleep 300 &\n"
        f"echo $$ $! > {q(pids)}.tmp && mv {q(pids)}.tmp {q(pids)}\n"
        f"wait\n"))
    wait_for(pids.exists, what="the job's pids")
    shell, child = map(int, pids.read_text().split())
    waiter = subprocess.Popen([str(BIN / "gqwait"), str(job)], env=running.env)
    try:
        wait_for(lambda: any((running.job_dir(job) / "waiters").glob("*")), what="gqwait to wait")
        assert running.run("gqdel", job).returncode == 0
        wait_for(lambda: dead(shell) and dead(child), timeout=5, what="the job and its child to die")
        wait_for(lambda: gone(running, job), what="the job to disappear")
        assert waiter.wait(timeout=10) == 255
    finally:
        waiter.kill()
        waiter.wait()
    assert running.state(job) == {}
    assert f"\n{job} " not in running.run("gqstat").stdout


def test_gqdel_kills_a_job_that_ignores_term_after_kill_grace(running, tmp_path):
    pid_file = tmp_path / "pid"
    job, pid = looping_job(running, pid_file, "trap '' TERM\n")
    began = time.monotonic()
    assert running.run("gqdel", job).returncode == 0
    wait_for(lambda: dead(pid), timeout=10, what="SIGKILL after kill_grace")
    took = time.monotonic() - began
    assert 1.9 <= took < 8, f"the job died {took:.2f} s after gqdel (kill_grace is 2 s)"
    wait_for(lambda: gone(running, job), what="the job to disappear")


def test_gqdel_of_a_suspended_job_sends_term_and_cont(running, tmp_path):
    pid_file, marker = tmp_path / "pid", tmp_path / "signal"
    job, pid = looping_job(running, pid_file, f"trap 'echo TERM > {q(marker)}; exit 0' TERM\n")
    assert running.run("gqsig", "-s", "STOP", job).returncode == 0
    running.wait_state(job, "suspended")
    wait_for(lambda: proc_state(pid) == "T", what="the job to be stopped")

    assert running.run("gqdel", job).returncode == 0
    wait_for(lambda: dead(pid), timeout=10, what="the stopped job to die")
    wait_for(lambda: gone(running, job), what="the job to disappear")
    assert read(marker) == "TERM\n"  # it ran its trap: TERM and CONT, not only KILL


# ---- gqwait and gqsub --wait --------------------------------------------

def test_gqwait_returns_the_exit_value(running):
    job = running.submit(sh("exit 3\n"))
    assert running.run("gqwait", job).returncode == 3


def test_gqwait_returns_128_plus_signal(running):
    job = running.submit(sh("kill -KILL $$\n"))
    assert running.run("gqwait", job).returncode == 137
    assert running.state(job)["exit"] == 137


def test_gqwait_timeout_returns_124(running):
    job = running.submit(sh("sleep 30\n"))
    began = time.monotonic()
    assert running.run("gqwait", "--timeout", "0.5", job).returncode == 124
    assert time.monotonic() - began < 5
    assert running.state(job)["state"] == "running"


def test_gqwait_several_ids_first_failure_in_argument_order(running):
    ok1 = running.submit(sh("exit 0\n"))
    ok2 = running.submit(sh("exit 0\n"))
    four = running.submit(sh("exit 4\n"))
    five = running.submit(sh("exit 5\n"))
    assert running.run("gqwait", ok1, ok2).returncode == 0
    assert running.run("gqwait", ok1, four, five).returncode == 4
    assert running.run("gqwait", five, ok2, four).returncode == 5


def test_gqwait_any_returns_when_the_first_ends(gsat, tmp_path):
    gsat.write_config({"autostart": False, "kill_grace": 2, "slots": 2})
    gsat.start()
    go = tmp_path / "go"
    long = gsat.submit(sh("sleep 30\n"))
    short = gsat.submit(sh(await_file(go) + "exit 6\n"))
    gsat.wait_state(short, "running")
    waiter = subprocess.Popen([str(BIN / "gqwait"), "--any", str(long), str(short)], env=gsat.env)
    try:
        wait_for(lambda: any((gsat.job_dir(short) / "waiters").glob("*")), what="gqwait to wait")
        assert waiter.poll() is None
        go.touch()
        assert waiter.wait(timeout=10) == 6
    finally:
        waiter.kill()
        waiter.wait()
    assert gsat.state(long)["state"] == "running"


def test_gqsub_wait_exits_with_the_jobs_exit_value(running):
    proc = running.run("gqsub", "--wait", input=sh("exit 9\n"))
    assert proc.returncode == 9
    job = int(proc.stdout.split()[0])
    assert running.state(job)["state"] == "failed"
    assert running.run("gqsub", "--wait", input=sh("true\n")).returncode == 0


# ---- job types: restarts ------------------------------------------------

def test_jobtype_restart_until_success(running, tmp_path):
    write_jobtype(running, "retry", RETRY_TYPE)
    runs = tmp_path / "runs"
    job = running.submit(sh(f'echo "$GSAT_RUN" >> {q(runs)}\n'
                            f'[ "$GSAT_RUN" -ge 3 ] && exit 0\nexit 75\n'), "-T", "retry")
    assert running.run("gqwait", job).returncode == 0
    state = running.state(job)
    assert state["state"] == "finished" and state["run"] == 3 and state["restarts"] == 2
    assert read(runs) == "1\n2\n3\n"
    events = running.events(job)
    assert events.count("JOB_RESTART") == 2 and events.count("JOB_TERMINATION") == 3


def test_jobtype_restart_limit_then_failed(running, tmp_path):
    write_jobtype(running, "retry", RETRY_TYPE)
    runs = tmp_path / "runs"
    job = running.submit(sh(f'echo "$GSAT_RUN" >> {q(runs)}\nexit 75\n'), "-T", "retry")
    assert running.run("gqwait", job).returncode == 75
    state = running.state(job)
    assert state["state"] == "failed" and state["exit"] == 75 and state["run"] == 3
    assert read(runs) == "1\n2\n3\n"
    assert running.events(job).count("JOB_RESTART") == 2


# ---- schedulers ---------------------------------------------------------

def test_fifo_with_two_slots(gsat, tmp_path):
    gsat.write_config({"autostart": False, "kill_grace": 2, "slots": 2})
    gsat.start()
    go = tmp_path / "go"
    body = (f'date +%s.%N > {q(tmp_path)}/start.$GSAT_JOBID\n' + await_file(go) +
            f'date +%s.%N > {q(tmp_path)}/end.$GSAT_JOBID\n')
    ids = [gsat.submit(sh(body)) for _ in range(5)]
    wait_for(lambda: all((tmp_path / f"start.{i}").exists() for i in ids[:2]), timeout=20,
             what="two jobs to start")
    shown = {i: gsat.state(i)["state"] for i in ids}
    assert shown == {ids[0]: "running", ids[1]: "running",
                     ids[2]: "queued", ids[3]: "queued", ids[4]: "queued"}
    go.touch()
    assert gsat.run("gqwait", *ids).returncode == 0

    spans = [(float(read(tmp_path / f"start.{i}")), float(read(tmp_path / f"end.{i}"))) for i in ids]
    for at, _ in spans:
        assert sum(1 for s, e in spans if s <= at <= e) <= 2, spans
    starts = [next(e["time"] for e in event_records(gsat, i) if e["name"] == "JOB_START") for i in ids]
    assert starts == sorted(starts), "jobs did not start in id order"


def test_nobatch_runs_all_at_once(gsat, tmp_path):
    gsat.write_config({"autostart": False, "kill_grace": 2, "scheduler": "nobatch"})
    gsat.start()
    go = tmp_path / "go"
    ids = [gsat.submit(sh(f"touch {q(tmp_path)}/started.$GSAT_JOBID\n" + await_file(go)))
           for _ in range(4)]
    wait_for(lambda: all((tmp_path / f"started.{i}").exists() for i in ids), timeout=20,
             what="all four to start")
    assert {gsat.state(i)["state"] for i in ids} == {"running"}
    go.touch()
    assert gsat.run("gqwait", *ids).returncode == 0


def test_nobatch_starts_released_and_restarted_jobs(gsat):
    gsat.write_config({"autostart": False, "kill_grace": 2, "scheduler": "nobatch"})
    write_jobtype(gsat, "retry", RETRY_TYPE)
    gsat.start()
    blocker = gsat.submit(sh("sleep 30\n"))  # would hold the one fifo slot throughout
    gsat.wait_state(blocker, "running")
    held = gsat.submit(sh("true\n"), "-H")
    assert gsat.wait_state(held, "held")["state"] == "held"
    assert gsat.run("gqrls", held).returncode == 0
    assert gsat.run("gqwait", "--timeout", "15", held).returncode == 0

    retried = gsat.submit(sh('[ "$GSAT_RUN" -ge 2 ] && exit 0\nexit 75\n'), "-T", "retry")
    assert gsat.run("gqwait", "--timeout", "15", retried).returncode == 0
    state = gsat.state(retried)
    assert state["state"] == "finished" and state["run"] == 2
    assert gsat.events(retried).count("JOB_RESTART") == 1
    assert gsat.state(blocker)["state"] == "running"


# ---- events -------------------------------------------------------------

def test_events_of_a_successful_and_a_failing_job(running):
    good = running.submit(sh("true\n"))
    bad = running.submit(sh("exit 4\n"))
    assert running.run("gqwait", good, bad).returncode == 4
    wait_for(lambda: "JOB_FAILED" in running.events(bad), what="JOB_FAILED")
    assert running.events(good) == ["QSUB", "JOB_START", "JOB_TERMINATION", "JOB_FINISHED"]
    assert running.events(bad) == ["QSUB", "JOB_START", "JOB_TERMINATION", "JOB_FAILED"]
    ends = {j: [e for e in event_records(running, j) if e["name"] == "JOB_TERMINATION"] for j in (good, bad)}
    assert [e["exit"] for e in ends[good]] == [0]
    assert [e["exit"] for e in ends[bad]] == [4]
