"""Events and services (SPEC §4 trigger, gqwait --event, -m/-M, --on; §6):
user events fired with `trigger`, the on<EVENT> services they run, per-job
--on commands, timeouts and output caps, at-least-once after a crash, and
the shipped mail service against a real SMTP server (aiosmtpd).

Services and jobs talk to the test through files in `tmp_path`; every loop
in them has a deadline, so a broken controller fails a test instead of
hanging it.  "The services of a job have ended" is read from /proc: no
process holds one of its service logs open any more.
"""

import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from gsat import config, eventlog, jobs, services, states
from gsat.controller import Controller
from helpers import await_file, q, read, BIN, wait_for

pytestmark = pytest.mark.timeout(90)

# the environment of SPEC §5 that every job and every service gets
JOB_VARS = ("GSAT_O_JOBID", "GSAT_JOBID", "GSAT_JOBNAME", "GSAT_O_WORKDIR", "GSAT_O_HOME",
            "GSAT_O_LOGNAME", "GSAT_O_HOST", "GSAT_O_PATH", "GSAT_SUBMIT_HOST", "GSAT_SUBMIT_DIR",
            "GSAT_HOME", "GSAT_JOBDIR", "GSAT_JOBTYPE", "GSAT_RUN")
MAIL_LETTERS = {"b": "JOB_START", "e": "JOB_TERMINATION", "a": "JOB_FAILED"}  # the mail service's


def sh(body: str) -> str:
    return "#!/bin/sh\n" + body


def service(home: Path, event: str, name: str, body: str, mode: int = 0o755) -> Path:
    """Install a user service GSAT_HOME/services/on<event>/<name>."""
    folder = home / "services" / f"on{event}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / name
    path.write_text(sh(body))
    path.chmod(mode)
    return path


def event_records(g, job: int) -> list[dict]:
    return [json.loads(line) for line in read(g.job_dir(job) / "events.log").splitlines() if line.strip()]


def dead(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone before the open, or between open and read
        return True
    return text.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def open_files() -> set[str]:
    """Every path some process of ours has open."""
    found = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                found.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                continue
    return found


def services_settled(g, job: int, needed=()) -> bool:
    """The job's events `needed` have service logs, and no service still writes one."""
    folder = g.job_dir(job) / "services"
    logs = {p.name: str(p) for p in folder.glob("*.log")} if folder.is_dir() else {}
    for event in event_records(g, job):
        if event["name"] in needed and not any(n.startswith(event["id"] + ".") for n in logs):
            return False
    return not (set(logs.values()) & open_files())


# ---- trigger runs the on<EVENT> services ----------------------------------

def test_trigger_runs_user_services_with_args_environment_and_event_on_stdin(running, tmp_path):
    g = running
    rec, work = tmp_path / "rec", tmp_path / "work"
    rec.mkdir()
    work.mkdir()
    service(g.home, "stageDone", "record",
            f"d={q(rec)}\n"
            + "".join(f'printf %s "${v}" > "$d/{v}"\n' for v in
                      ("GSAT_EVENT", "GSAT_EVENT_ARGS", "GSAT_EVENT_ID", *JOB_VARS))
            + 'cat > "$d/stdin"\ntouch "$d/done"\n')
    job_env = tmp_path / "job_env"
    job = g.submit(sh(f"env > {q(job_env)}\ntrigger stageDone 1 2\n"), "-N", "stager", cwd=work)
    wait_for(lambda: (rec / "done").exists(), 20, "the stageDone service")
    got = {p.name: p.read_text() for p in rec.iterdir()}

    assert got["GSAT_EVENT"] == "stageDone"
    assert json.loads(got["GSAT_EVENT_ARGS"]) == ["1", "2"]
    assert got["GSAT_JOBID"] == str(job) and got["GSAT_JOBNAME"] == "stager"
    assert os.path.realpath(got["GSAT_O_WORKDIR"]) == os.path.realpath(work)
    g.wait_state(job, "finished")
    in_job = dict(line.split("=", 1) for line in read(job_env).splitlines() if line.startswith("GSAT_"))
    for var in JOB_VARS:
        assert got[var] == in_job.get(var), var
    stdin = json.loads(got["stdin"])
    assert stdin["name"] == "stageDone" and stdin["args"] == ["1", "2"]
    assert stdin["id"] == got["GSAT_EVENT_ID"]

    logged = [e for e in event_records(g, job) if e["name"] == "stageDone"]
    assert len(logged) == 1 and logged[0]["args"] == ["1", "2"] and logged[0]["id"] == got["GSAT_EVENT_ID"]
    full = g.run("gqstat", "-f", job, check=True).stdout
    events_line = next(line for line in full.splitlines() if line.startswith("events="))
    assert "stageDone" in events_line.split("=", 1)[1].split(",")


def test_services_start_sorted_by_name_and_skip_hidden_backup_and_plain_files(running, tmp_path):
    g = running
    pids, skipped = tmp_path / "pids", tmp_path / "skipped"
    pids.mkdir()
    skipped.mkdir()
    for name in ("c_three", "a_one", "b_two"):  # created out of order on purpose
        service(g.home, "ev", name, f'echo $$ > {q(pids / name)}\n')
    for name in (".hidden", "x~", "x.bak", "#x#", "x.swp"):
        service(g.home, "ev", name, f'touch {q(skipped / "marker")}.{shlex.quote(name.strip(".#~"))}\n')
    service(g.home, "ev", "plain", f'touch {q(skipped / "plain")}\n', mode=0o644)
    job = g.submit(sh("trigger --wait ev\n"))
    g.wait_state(job, "finished")

    started = sorted((int(read(pids / n)), n) for n in ("a_one", "b_two", "c_three"))
    # Popen forks them one after the other: pids rise in start order
    assert [n for _, n in started] == ["a_one", "b_two", "c_three"]
    assert list(skipped.iterdir()) == []
    (ev,) = [e["id"] for e in event_records(g, job) if e["name"] == "ev"]
    logs = sorted(p.name[len(ev) + 1:] for p in (g.job_dir(job) / "services").glob(f"{ev}.*.log"))
    assert logs == ["a_one.log", "b_two.log", "c_three.log"]


def test_on_option_runs_a_per_job_service_for_its_event_only(running, tmp_path):
    g = running
    hit, miss = tmp_path / "hit", tmp_path / "miss"
    job = g.submit(sh("trigger --wait stageDone\n"),
                   "--on", f"stageDone=echo hi >> {q(hit)}",
                   "--on", f"stage=echo no >> {q(miss)}",
                   "--on", f"stageDoneX=echo no >> {q(miss)}")
    g.wait_state(job, "finished")
    assert read(hit) == "hi\n"
    assert not miss.exists()


# ---- trigger's exit values ------------------------------------------------

def test_trigger_wait_returns_0_when_services_succeed_and_1_when_one_fails(running, tmp_path):
    g = running
    rcs, slow_done = tmp_path / "rcs", tmp_path / "slow_done"
    service(g.home, "okEv", "a", f"sleep 0.5; touch {q(slow_done)}\n")  # --wait must wait for it
    service(g.home, "okEv", "b", "exit 0\n")
    service(g.home, "badEv", "good", "exit 0\n")
    service(g.home, "badEv", "bad", "exit 1\n")
    job = g.submit(sh(f"trigger --wait okEv; echo ok=$? >> {q(rcs)}\n"
                      f"[ -e {q(slow_done)} ] && echo waited >> {q(rcs)}\n"
                      f"trigger --wait badEv; echo bad=$? >> {q(rcs)}\n"))
    g.wait_state(job, "finished")
    assert read(rcs).split() == ["ok=0", "waited", "bad=1"]


def test_trigger_without_wait_returns_0_while_a_slow_service_still_runs(running, tmp_path):
    g = running
    rc, barrier, done = tmp_path / "rc", tmp_path / "barrier", tmp_path / "done"
    service(g.home, "slowEv", "slow", await_file(barrier, 30) + f"touch {q(done)}\n")
    job = g.submit(sh(f"trigger slowEv; echo $? > {q(rc)}\n"))
    wait_for(lambda: read(rc) == "0\n", 20, "trigger to return")
    g.wait_state(job, "finished")
    assert not done.exists()  # the service cannot end before the barrier
    barrier.touch()
    wait_for(done.exists, 20, "the slow service to end")


def test_reserved_and_bad_event_names_are_usage_errors(running, tmp_path):
    g = running
    rcs = tmp_path / "rcs"
    job = g.submit(sh(f"for ev in JOB_START JOB_FAILED 1bad 'a b' ''; do trigger \"$ev\"; echo $? >> {q(rcs)}; done\n"))
    g.wait_state(job, "finished")
    assert read(rcs).split() == ["2"] * 5
    assert g.events(job).count("JOB_START") == 1
    assert "JOB_FAILED" not in g.events(job)
    assert g.events(job) == ["QSUB", "JOB_START", "JOB_TERMINATION", "JOB_FINISHED"]
    errors = g.run("gqpeek", "-e", job, check=True).stdout.splitlines()
    assert len(errors) == 5 and all(line.startswith("trigger: ") for line in errors), errors


def test_trigger_outside_a_job_needs_job_and_then_works(running, tmp_path):
    g = running
    marker = tmp_path / "ran"
    service(g.home, "late", "record", f'echo "$GSAT_JOBID $GSAT_EVENT_ARGS" >> {q(marker)}\n')
    job = g.submit(sh("exit 0\n"))
    g.wait_state(job, "finished")
    env = {k: v for k, v in g.env.items() if k not in ("GSAT_JOBID", "GSAT_O_JOBID")}
    bare = subprocess.run([str(BIN / "trigger"), "late"], env=env, capture_output=True, text=True, timeout=30)
    assert bare.returncode == 2 and bare.stderr.startswith("trigger: ")

    proc = subprocess.run([str(BIN / "trigger"), "--job", str(job), "late", "x"], env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert [e["args"] for e in event_records(g, job) if e["name"] == "late"] == [["x"]]
    wait_for(lambda: read(marker) == f'{job} ["x"]\n', 20, "the service of a trigger --job")


# ---- services cannot hurt the controller --------------------------------

def test_a_hanging_service_is_killed_at_its_timeout_while_jobs_go_on(gsat, tmp_path):
    g = gsat
    # 5 s rather than 1: another job must finish while the service still hangs
    g.write_config({"autostart": False, "kill_grace": 2, "service_timeout": 5})
    proc = g.start()
    sh_pid, sleep_pid = tmp_path / "sh_pid", tmp_path / "sleep_pid"
    service(g.home, "hang", "hang", f"echo $$ > {q(sh_pid)}.tmp; mv {q(sh_pid)}.tmp {q(sh_pid)}\n"
            f"sleep 300 & echo $! > {q(sleep_pid)}.tmp; mv {q(sleep_pid)}.tmp {q(sleep_pid)}\nwait\n")
    first = g.submit(sh("trigger hang\n"))
    wait_for(lambda: read(sleep_pid), 20, "the hanging service to start")
    pids = int(read(sh_pid)), int(read(sleep_pid))

    second = g.submit(sh("echo served\n"))
    g.wait_state(second, "finished")
    g.wait_state(first, "finished")
    assert not any(dead(p) for p in pids), "the other job waited for the hanging service"

    wait_for(lambda: all(dead(p) for p in pids), 15, "the hanging service to be killed")
    (log,) = (g.job_dir(first) / "services").glob("*.hang.log")
    assert "kill" in log.read_text().lower()
    assert proc.poll() is None
    assert g.run("gsatlc", "status").returncode == 0


def test_failing_and_chatty_services_do_no_harm(running, tmp_path):
    g = running
    proc = g.controllers[0]
    service(g.home, "JOB_START", "big", "yes 0123456789abcdef | head -c 5242880\n")
    service(g.home, "JOB_START", "fail", "echo failing; exit 1\n")
    first = g.submit(sh("echo one\n"))
    g.wait_state(first, "finished")
    wait_for(lambda: services_settled(g, first, {"JOB_START"}), 20, "the chatty service to end")
    (log,) = (g.job_dir(first) / "services").glob("*.big.log")
    assert 0 < log.stat().st_size <= 1 << 20

    later = [g.submit(sh(f"echo {i}\n")) for i in range(3)]
    for job in later:
        g.wait_state(job, "finished")
        wait_for(lambda: services_settled(g, job, {"JOB_START"}), 20, f"job {job}'s services to end")
        (log,) = (g.job_dir(job) / "services").glob("*.big.log")
        assert log.stat().st_size <= 1 << 20
        assert read(g.job_dir(job) / "stdout") == f"{later.index(job)}\n"
    assert proc.poll() is None
    assert g.run("gsatlc", "status").returncode == 0


def test_job_names_never_reach_a_shell(running, tmp_path):
    g = running
    victim = tmp_path / "injected"
    name = f"$(touch {victim})"
    out1, out2 = tmp_path / "out1", tmp_path / "out2"
    service(g.home, "JOB_START", "echoname", f'echo "$GSAT_JOBNAME" >> {q(out1)}\n')
    job = g.submit(sh('echo "$GSAT_JOBNAME"\n'), "-N", name,
                   "--on", f'JOB_START=echo $GSAT_JOBNAME >> {q(out2)}; echo "$GSAT_JOBNAME" >> {q(out2)}')
    g.wait_state(job, "finished")
    wait_for(lambda: read(out1) and len(read(out2).splitlines()) == 2, 20, "the JOB_START services")
    wait_for(lambda: services_settled(g, job, {"JOB_START"}), 20, "the services to end")
    assert read(out1) == name + "\n"
    assert read(out2).splitlines() == [name, name]
    assert read(g.job_dir(job) / "stdout") == name + "\n"
    assert not victim.exists()


# ---- at least once after a crash (in-process) --------------------------

def make_spec(tmp_path, **extra):
    return {"name": "t", "args": [], "workdir": str(tmp_path), "stdout": None, "stderr": None,
            "join": False, "env": {"PATH": os.environ["PATH"]}, "host": None, "jobtype": "default",
            "hold": False, "array": None, "user": "u", "submit_home": "/", "submit_host": "h",
            "submit_dir": str(tmp_path), "submitted": time.time(), **extra}


def settle(ctrl) -> None:
    """Step `ctrl` until every service it started has been reaped."""
    wait_for(lambda: (ctrl.step(time.time()), not ctrl.services.running)[1], 20, "the services to end")


def crashed_with_event(home, tmp_path, *, logged: bool):
    """A controller that recorded stageDone of a held job and died before dispatch."""
    marker = tmp_path / "ran"
    service(home, "stageDone", "record", f'echo "$GSAT_EVENT_ID" >> {q(marker)}\n')
    first = Controller(config.load())
    (job_id,) = jobs.publish(first.layout, make_spec(tmp_path, hold=True), b"#!/bin/sh\nexit 0\n")
    first.open()
    job = first.jobs[job_id]
    assert job.state.state == states.HELD
    event = eventlog.make(job_id, "stageDone", first.host, job.state.run, args=["a"])
    services.put(first.layout, job_id, event)  # what Controller._event does before dispatch
    if logged:
        eventlog.append(first.layout.job_dir(job_id), event)
    return first.layout, job_id, event, marker


@pytest.mark.parametrize("logged", [True, False], ids=["after-log", "before-log"])
def test_services_of_an_event_recorded_before_a_crash_run_once_after_restart(home_env, tmp_path, logged):
    layout, job_id, event, marker = crashed_with_event(home_env, tmp_path, logged=logged)
    assert services.pending(layout)

    second = Controller(config.load())
    second.open()
    settle(second)
    assert read(marker).splitlines() == [event["id"]]
    assert services.pending(layout) == []
    assert os.listdir(services.outbox(layout)) == []
    ids = [e["id"] for e in eventlog.read(layout.job_dir(job_id))]
    assert ids.count(event["id"]) == 1

    third = Controller(config.load())  # and once only: a later restart does not repeat it
    third.open()
    settle(third)
    assert read(marker).splitlines() == [event["id"]]
    assert [e["id"] for e in eventlog.read(layout.job_dir(job_id))].count(event["id"]) == 1


# ---- gqwait --event -------------------------------------------------------

def gqwait_event(g, job: int, barrier: Path) -> int:
    """Start `gqwait --event stageDone JOB`, open the barrier once it waits, return its exit."""
    waiter = subprocess.Popen([str(BIN / "gqwait"), "--timeout", "30", "--event", "stageDone", str(job)],
                              env=g.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: any((g.job_dir(job) / "waiters").glob("*")) or waiter.poll() is not None,
                 20, "gqwait to wait")
        assert waiter.poll() is None, waiter.communicate()
        barrier.touch()
        waiter.wait(timeout=30)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    return waiter.returncode


def test_gqwait_event_returns_0_when_the_job_fires_it(running, tmp_path):
    barrier = tmp_path / "barrier"
    job = running.submit(sh(await_file(barrier) + "trigger stageDone\n" + await_file(tmp_path / "never", 5)))
    running.wait_state(job, "running")
    assert gqwait_event(running, job, barrier) == 0
    assert running.state(job)["state"] == "running"  # returned at the event, not at the end


def test_gqwait_event_returns_1_when_the_job_ends_without_it(running, tmp_path):
    barrier = tmp_path / "barrier"
    job = running.submit(sh(await_file(barrier) + "trigger otherEvent\nexit 0\n"))
    running.wait_state(job, "running")
    assert gqwait_event(running, job, barrier) == 1
    assert running.state(job)["state"] == "finished"


# ---- mail -----------------------------------------------------------------

def mail_home(g, port: int) -> None:
    g.write_config({"autostart": False, "kill_grace": 2,
                    "mail": {"method": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port,
                             "from": "gsat@test", "to": None}})
    g.start()


def run_to_end(g, script: str, final: str, *options) -> int:
    """Submit, wait for the final state and for every service of the job to end."""
    job = g.submit(script, *options)
    g.wait_state(job, final)
    letters = options[options.index("-m") + 1] if "-m" in options else ""
    mailing = {MAIL_LETTERS[c] for c in letters if c in MAIL_LETTERS}
    if final == "finished":
        mailing.discard("JOB_FAILED")
    wait_for(lambda: f"JOB_{final.upper()}" in g.events(job) and services_settled(g, job, mailing), 20,
             f"job {job}'s services to end")
    return job


def body(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def test_mail_on_begin_and_end_reaches_the_M_address(gsat, smtp):
    port, mails = smtp
    mail_home(gsat, port)
    job = run_to_end(gsat, sh("echo first line\necho the-last-line-7f3a\nexit 3\n"), "failed",
                     "-m", "be", "-M", "user@example.org")
    assert len(mails) == 2, [m["Subject"] for _, m, _ in mails]
    assert all(rcpt == ["user@example.org"] for rcpt, _, _ in mails)
    (start,) = [m for _, m, _ in mails if "JOB_START" in m["Subject"]]
    (term,) = [m for _, m, _ in mails if "JOB_TERMINATION" in m["Subject"]]
    for msg in (start, term):
        assert re.search(rf"\b{job}\b", body(msg)) and "testhost" in body(msg)
    assert re.search(r"exit\D{0,12}\b3\b", body(term), re.I)
    assert "the-last-line-7f3a" in body(term)


def test_mail_n_sends_nothing_and_a_mails_once_on_failure(gsat, smtp):
    port, mails = smtp
    mail_home(gsat, port)
    run_to_end(gsat, sh("echo quiet\nexit 0\n"), "finished", "-m", "n", "-M", "user@example.org")
    run_to_end(gsat, sh("exit 5\n"), "failed", "-m", "n", "-M", "user@example.org")
    assert mails == []

    job = run_to_end(gsat, sh("echo oops\nexit 4\n"), "failed", "-m", "a", "-M", "user@example.org")
    assert len(mails) == 1, [m["Subject"] for _, m, _ in mails]
    rcpt, msg, _ = mails[0]
    assert rcpt == ["user@example.org"]
    assert "JOB_FAILED" in msg["Subject"]
    assert re.search(rf"\b{job}\b", body(msg))


def test_gsat_when_limits_a_service_to_the_jobs_it_names(running, tmp_path):
    g = running
    marks = tmp_path / "marks"
    service(g.home, "JOB_START", "typed", f"# gsat-when: jobtype=gtransfer\necho $GSAT_JOBID >> {q(marks)}\n")
    plain = g.submit(sh("true\n"))
    typed = g.submit(sh("true\n"), "-T", "gtransfer")
    for job in (plain, typed):
        g.wait_state(job, "finished")
    wait_for(lambda: read(marks) == f"{typed}\n", 20, "the typed service")
    # the shipped mail service says `# gsat-when: mail_events`: no -m, no process, no log
    assert not list((g.job_dir(plain) / "services").glob("*.mail.log"))
