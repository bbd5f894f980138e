"""Another local user against the victim's gsat (issue 12, items 1-4): each
attack is carried out for real, by a second Unix account, against a
controller and commands running as root.  The account is created when the
tests run as root (and kept for the next run); otherwise they are skipped."""

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from helpers import Gsat, await_file, q, remove_queue, wait_for

pytestmark = pytest.mark.timeout(90)

OTHER = "gsatother"
FAST_BEATS = {"heartbeat_interval": 0.2, "idle_heartbeat_interval": 0.2}  # the controller looks often


class Other:
    """The attacker: runs commands as another uid, without our groups."""

    def __init__(self, entry: pwd.struct_passwd):
        self.uid, self.gid = entry.pw_uid, entry.pw_gid

    def run(self, *cmd, check: bool = True, **kw) -> subprocess.CompletedProcess:
        proc = subprocess.run(["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                               *map(str, cmd)], capture_output=True, text=True, timeout=30, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"{cmd} as {OTHER} exited {proc.returncode}: {proc.stderr}")
        return proc

    def sh(self, script: str) -> subprocess.CompletedProcess:
        return self.run("/bin/sh", "-ec", script)

    def owns(self, path: Path) -> Path:
        os.chown(path, self.uid, self.gid)
        return path


@pytest.fixture(scope="session")
def other() -> Other:
    """The second account (created once, as root: `useradd -M -r`)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the attacker is a second account that these tests create")
    if not shutil.which("useradd") or not shutil.which("setpriv"):
        pytest.skip("needs useradd and setpriv to play a second account")
    try:
        return Other(pwd.getpwnam(OTHER))
    except KeyError:
        subprocess.run(["useradd", "-M", "-r", "-s", "/usr/sbin/nologin", OTHER], capture_output=True,
                       timeout=30)  # exit 9 when a parallel run made it meanwhile: looked up below
    try:
        return Other(pwd.getpwnam(OTHER))
    except KeyError:
        pytest.skip(f"could not create the account {OTHER}")


@pytest.fixture
def base(other):
    """A directory the other account can reach (mode 0711; tmp_path's parents are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="gsat-sec-", dir="/tmp"))
    os.chmod(path, 0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def victim(base):
    g = Gsat(base / "home", config=FAST_BEATS)
    yield g
    g.cleanup()


def planted_job(other: Other, where: Path, marker: Path, template: dict) -> Path:
    """A job directory of the other user's whose script, if ever run, creates `marker`."""
    where.mkdir(mode=0o755)
    (where / "job.json").write_text(json.dumps(dict(template, name="planted")))
    (where / "script").write_text(f"#!/bin/sh\nid -u > {q(marker)}\n")
    (where / "keep").write_text("the other user's file\n")
    (where / "runs").mkdir()  # as gqsub makes it
    os.chmod(where / "script", 0o755)
    for path in (where, *where.iterdir()):
        other.owns(path)
    return where


def job_template(g: Gsat) -> dict:
    """job.json of a real submission (then deleted), as a planted job would copy it."""
    job = g.submit("#!/bin/sh\ntrue\n")
    spec = json.loads((g.job_dir(job) / "job.json").read_text())
    return spec


def beats_after(g: Gsat, moment: float, count: int = 4) -> None:
    """Wait until the controller has written `count` heartbeats after `moment`:
    it has had its chance to act on what was there."""
    interval = FAST_BEATS["heartbeat_interval"]
    path = g.home / "hosts" / g.host / "heartbeat.json"

    def seen() -> bool:
        try:
            return json.loads(path.read_text())["time"] > moment + count * interval
        except (OSError, ValueError, KeyError):
            return False
    wait_for(seen, timeout=15, what=f"{count} heartbeats")


def one_line_error(proc, prog: str, code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: "), proc.stderr
    return lines[0]


def exit_of(g: Gsat, *args, timeout: float = 10.0, **kw) -> subprocess.CompletedProcess:
    """Run a command that must exit by itself (a controller that starts serving instead fails)."""
    try:
        return g.run(*args, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(map(str, args))} kept running instead of refusing")


# ---- 1. SysV queue squatting -----------------------------------------------------

SQUAT = """
import sys, sysv_ipc
queue = sysv_ipc.MessageQueue(int(sys.argv[1]), sysv_ipc.IPC_CREX, mode=0o600)
queue.uid = int(sys.argv[2])  # the creator may give it away, and keeps its own rights
print(queue.cuid, queue.uid, oct(queue.mode))
"""


def test_a_queue_squatted_by_another_user_and_given_to_us_is_refused(victim, other):
    g = victim
    g.env["GSAT_CHANNEL"] = "sysv"
    key = g.queue_key()
    remove_queue(key)
    squat = other.run(sys.executable, "-c", SQUAT, key, os.geteuid())
    assert squat.stdout.split() == [str(other.uid), str(os.geteuid()), "0o600"]
    try:
        line = one_line_error(exit_of(g, "gsatlc", "run"), "gsatlc", 4)
        assert f"creator {other.uid}" in line
        one_line_error(exit_of(g, "sendcmd", "-c", "ALIVE?"), "sendcmd", 4)
        one_line_error(exit_of(g, "gqsub", input="#!/bin/sh\ntrue\n"), "gqsub", 4)
    finally:
        remove_queue(key)


# ---- 2. trust is checked at start-up for every directory, and at every step --------

@pytest.mark.parametrize("sub", ["tmp", "new", "bad", "reply"])
def test_a_spool_subdirectory_writable_by_others_is_refused_at_start(victim, sub):
    g = victim
    assert g.run("gsatlc", "status").returncode == 5  # creates the layout
    inbox = g.home / "spool" / g.host / sub
    os.chmod(inbox, 0o777)
    line = one_line_error(exit_of(g, "gsatlc", "run"), "gsatlc", 6)
    assert str(inbox) in line and "writable by others" in line
    one_line_error(exit_of(g, "gqsub", input="#!/bin/sh\ntrue\n"), "gqsub", 6)
    assert not (g.home / "hosts" / g.host / "pid").exists()


def test_a_home_made_world_writable_under_a_running_controller_runs_no_planted_job(victim, other, base):
    g = victim
    g.start()
    template = job_template(g)
    assert g.run("gqwait", 1, timeout=20).returncode == 0
    stage = base / "stage"
    stage.mkdir()
    other.owns(stage)
    marker = base / "planted-ran"
    planted_job(other, stage / "0000002", marker, template)
    os.chmod(g.home, 0o777)  # the user's mistake
    planted = time.time()
    other.sh(f"cd {q(g.home)}; mv jobs jobs.mine; mkdir jobs; cp -r {q(stage / '0000002')} jobs/")
    wait_for(lambda: marker.exists() or "not trusted" in g.log(), what="the controller to notice")
    beats_after(g, planted)
    assert not marker.exists(), "the other user's job ran as the victim"
    assert g.log().count("not trusted") == 1, g.log()
    assert json.loads((g.home / "hosts" / g.host / "heartbeat.json").read_text())["untrusted"]
    # restored: the planted store goes, the user's comes back, and the controller carries on
    shutil.rmtree(g.home / "jobs")
    os.rename(g.home / "jobs.mine", g.home / "jobs")
    os.chmod(g.home, 0o700)
    wait_for(lambda: "trusted again" in g.log(), what="the controller to trust it again")
    job = g.submit("#!/bin/sh\necho fine\n")
    assert g.run("gqwait", job, timeout=20).returncode == 0
    assert g.run("gqpeek", job).stdout == "fine\n"
    assert not marker.exists()


def test_a_reply_directory_made_writable_by_others_is_refused_by_commands_and_controller(victim):
    """With reply/ 0777 the other user could swap a waiting command's FIFO for
    her own: commands refuse it, and the running controller holds still."""
    g = victim
    g.start()
    reply = g.home / "spool" / g.host / "reply"
    os.chmod(reply, 0o777)
    line = one_line_error(exit_of(g, "sendcmd", "-c", "ALIVE?"), "sendcmd", 6)
    assert str(reply) in line
    wait_for(lambda: "not trusted" in g.log(), what="the controller to notice")
    wait_for(lambda: json.loads(g.run("gqnodes", "--json").stdout)[0]["status"] == "untrusted",
             what="gqnodes to show the host untrusted")
    os.chmod(reply, 0o700)
    wait_for(lambda: "trusted again" in g.log(), what="the controller to trust it again")
    assert g.run("sendcmd", "-c", "ALIVE?").stdout == "ALIVE\n"


# ---- 3. the job store follows no symlink ---------------------------------------------

@pytest.mark.parametrize("kind", ["symlink", "foreign"])
def test_a_job_directory_that_is_not_ours_is_set_aside_never_run_never_deleted_through(victim, other, base,
                                                                                         kind):
    g = victim
    g.start()
    template = job_template(g)
    assert g.run("gqwait", 1, timeout=20).returncode == 0
    g.crash(g.controllers[-1])
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    other.owns(elsewhere)
    marker = base / "planted-ran"
    fake = planted_job(other, elsewhere / "fakejob", marker, template)
    entry = g.home / "jobs" / "0000100"
    if kind == "symlink":
        os.symlink(fake, entry)
    else:
        shutil.copytree(fake, entry, symlinks=True)
        for path in (entry, *entry.iterdir()):
            other.owns(path)
    g.start()
    wait_for(lambda: marker.exists() or "set aside" in g.log(), what="the controller to look at job 100")
    beats_after(g, time.time())
    assert not marker.exists(), "the other user's job ran as the victim"
    assert g.log().count("set aside") == 1 and "job 100" in g.log(), g.log()
    proc = g.run("gqdel", 100)
    line = one_line_error(proc, "gqdel", 4)
    assert "job 100" in line
    assert sorted(p.name for p in fake.iterdir()) == ["job.json", "keep", "runs", "script"]
    assert sorted(p.name for p in Path(os.path.realpath(entry)).iterdir()) == ["job.json", "keep", "runs", "script"]
    proc = g.run("gqstat", 100)  # listed as damaged, with the reason, never read through
    assert proc.returncode == 0 and "damaged" in proc.stdout and "not a job of yours" in proc.stderr, proc
    assert not marker.exists()


# ---- 4. the reading tools trust no GSAT_HOME that others could write ------------------

@pytest.mark.parametrize("how", ["world-writable", "group-writable", "foreign"])
@pytest.mark.parametrize("tool", [("gqstat",), ("gqstat", "--json"), ("gqpeek", "1"), ("gqnodes",)],
                         ids=lambda t: " ".join(t))
def test_the_reading_tools_refuse_a_home_others_could_write(victim, other, tool, how):
    g = victim
    g.start()
    job = g.submit("#!/bin/sh\necho out\n")
    assert g.run("gqwait", job, timeout=20).returncode == 0
    g.crash(g.controllers[-1])
    if how == "foreign":
        os.chown(g.home, other.uid, other.gid)
    else:
        os.chmod(g.home, 0o777 if how == "world-writable" else 0o770)
    line = one_line_error(g.run(*tool), tool[0], 6)
    assert str(g.home) in line
    os.chown(g.home, 0, 0)
    os.chmod(g.home, 0o700)
    assert g.run(*tool).returncode == 0


def test_a_run_that_ends_while_trust_is_lost_is_recorded_once_it_is_back(home_env, tmp_path):
    """In-process: while the store is not trusted the controller records no end
    (nor anything else); the end waits in memory and is recorded afterwards."""
    from gsat import config, jobs, messages, states
    from gsat.controller import Controller
    from test_controller_step import make_spec, step_until
    ctrl = Controller(config.load())
    ctrl.open()
    go = tmp_path / "go"
    (job,) = jobs.publish(ctrl.layout, make_spec(tmp_path), f"#!/bin/sh\n{await_file(go)}exit 3\n".encode())
    ctrl.channel.send(messages.Submit(jobs=[job]))
    try:
        step_until(ctrl, job, states.RUNNING)
        os.chmod(home_env, 0o777)
        ctrl.step(time.time())
        assert ctrl.distrust and "writable by others" in ctrl.distrust
        go.touch()
        wait_for(lambda: (ctrl.step(time.time()), ctrl.told_ended)[1], what="the shepherd to tell the end")
        ctrl.step(time.time())
        assert jobs.load(ctrl.layout, job).state.state == states.RUNNING  # nothing recorded meanwhile
        os.chmod(home_env, 0o700)
        assert step_until(ctrl, job, states.FAILED).state.exit == 3
        assert ctrl.distrust is None
    finally:
        ctrl.pool.close()
        os.close(ctrl.ended_r)
        os.close(ctrl.ended_w)


# ---- 5. code and config planted during a trust window (review 1) ----------------------

def open_window(g: Gsat, folder: Path) -> None:
    """The user's mistake: `folder` writable by all (GSAT_HOME searchable);
    wait until the controller saw it."""
    os.chmod(g.home, 0o711)
    os.chmod(folder, 0o777)
    wait_for(lambda: "not trusted any more" in g.log(), what="the controller to notice")


def test_a_service_planted_while_home_was_open_never_runs_once_it_is_closed(victim, other, base):
    g = victim
    g.start()
    marker = base / "service-ran"
    open_window(g, g.home)
    other.sh(f"cd {q(g.home)}; mkdir -p services/onJOB_FINISHED; "
             f"printf '#!/bin/sh\\nid -u > {marker}\\n' > services/onJOB_FINISHED/x; "
             f"chmod 755 services services/onJOB_FINISHED services/onJOB_FINISHED/x")
    os.chmod(g.home, 0o700)  # mended: what she planted stays
    planted = g.home / "services"
    wait_for(lambda: f"now because {planted} belongs to uid {other.uid}" in g.log(),
             what="the controller to name the planted directory")
    beats_after(g, time.time())
    assert "trusted again" not in g.log()
    one_line_error(exit_of(g, "gsatlc", "run"), "gsatlc", 6)  # nor does a new controller start on it
    # the planted file alone, in a folder of ours (her directories given to us): still refused
    for path in (planted, planted / "onJOB_FINISHED"):
        os.chown(path, 0, 0)
        os.chmod(path, 0o700)
    wait_for(lambda: f"now because {planted / 'onJOB_FINISHED' / 'x'} belongs to uid {other.uid}" in g.log(),
             what="the controller to name the planted service")
    shutil.rmtree(planted)
    wait_for(lambda: "trusted again" in g.log(), what="the controller to trust it again")
    job = g.submit("#!/bin/sh\ntrue\n")
    assert g.run("gqwait", job, timeout=20).returncode == 0
    beats_after(g, time.time())
    assert not marker.exists(), "the other user's service ran as the victim"


def cache_for(g: Gsat, values: dict) -> str:
    """A .config.cache.json that a reader would believe for the current config.yaml."""
    info = os.stat(g.home / "config.yaml")
    return json.dumps({"key": [info.st_mtime_ns, info.st_size, info.st_ino], "values": values})


@pytest.mark.parametrize("planted", ["jobtypes/evil.yaml", "config.yaml", ".config.cache.json"])
def test_a_job_type_or_config_planted_in_a_window_is_refused(victim, other, base, planted):
    g = victim
    assert g.run("gqstat").returncode == 0  # writes the config cache
    (g.home / "jobtypes").mkdir(mode=0o700)
    g.start()
    path = g.home / planted
    open_window(g, path.parent)
    staged = base / "staged"
    if planted == ".config.cache.json":
        staged.write_text(cache_for(g, dict(FAST_BEATS, autostart=True)))
    elif planted == "config.yaml":
        staged.write_text("heartbeat_interval: 0.2\nidle_heartbeat_interval: 0.2\nautostart: true\n")
    else:
        staged.write_text("environment:\n  LD_PRELOAD: /tmp/evil.so\n")
    os.chmod(staged, 0o644)
    other.sh(f"cp {q(staged)} {q(path)}.new; mv {q(path)}.new {q(path)}")
    os.chmod(path.parent, 0o700)
    os.chmod(g.home, 0o700)
    wait_for(lambda: f"now because {path} belongs to uid {other.uid}" in g.log(),
             what="the controller to name the planted file")
    args = ("-T", "evil") if planted.startswith("jobtypes") else ()
    line = one_line_error(g.run("gqsub", *args, input="#!/bin/sh\ntrue\n"), "gqsub", 6)
    assert str(path) in line
    if not args:
        one_line_error(g.run("gqstat"), "gqstat", 6)
    assert json.loads((g.home / "hosts" / g.host / "heartbeat.json").read_text())["untrusted"]
    os.unlink(path)
    wait_for(lambda: "trusted again" in g.log(), what="the controller to trust it again")
    job = g.submit("#!/bin/sh\ntrue\n")
    assert g.run("gqwait", job, timeout=20).returncode == 0


# ---- 6. the reading tools believe no summary another user could write (review 5) ------

@pytest.mark.parametrize("how", ["host directory open", "planted file"])
def test_gqstat_believes_no_summary_row_another_user_could_plant(victim, other, base, how):
    g = victim
    job = g.submit("#!/bin/sh\ntrue\n")  # queued: no controller runs
    assert g.run("gqstat").returncode == 0
    hostdir = g.home / "hosts" / g.host
    os.chmod(g.home, 0o711)
    os.chmod(g.home / "hosts", 0o711)
    os.chmod(hostdir, 0o777)
    zone = subprocess.run([sys.executable, "-c", "from gsat import timefmt; print(timefmt.zone())"],
                          capture_output=True, text=True, env=g.env, check=True).stdout.strip()
    forged = base / "forged"
    row = [f"{job:07d}", "finished", g.host, "0", "1s", "\x1b[31mEVIL", "x", "1", "1", "1", "2"]
    forged.write_text(f"#zone\t{zone}\n" + "\t".join(row) + "\n")
    os.chmod(forged, 0o644)
    other.run("cp", forged, hostdir / "summary.tsv")
    if how == "planted file":
        os.chmod(hostdir, 0o700)
    proc = g.run("gqstat")
    assert "EVIL" not in proc.stdout and "finished" not in proc.stdout
    line = one_line_error(proc, "gqstat", 6)
    assert str(hostdir) in line


# ---- 7. no write to a FIFO or through a directory that is not ours (review 8) ----------

def test_a_waiter_fifo_planted_by_another_user_is_not_written(victim, other):
    g = victim
    g.start()
    job = g.submit("#!/bin/sh\ntrue\n", "-H")
    waiters = g.job_dir(job) / "waiters"
    waiters.mkdir(mode=0o700)
    for path in (g.home, g.home / "jobs", g.job_dir(job)):
        os.chmod(path, 0o711)  # the window: she can reach waiters/ and write to it
    os.chmod(waiters, 0o777)
    other.run("mkfifo", "-m", "0666", waiters / "planted")
    for path in (g.home, g.home / "jobs", g.job_dir(job), waiters):
        os.chmod(path, 0o700)
    wait_for(lambda: "trusted again" in g.log() or "not trusted" not in g.log(), what="a trusted store")
    planted = os.open(waiters / "planted", os.O_RDWR | os.O_NONBLOCK)  # a reader waits on it
    try:
        assert g.run("gqrls", job).returncode == 0
        assert g.run("gqwait", job, timeout=20).returncode == 0  # our own FIFO is told
        beats_after(g, time.time(), count=2)
        with pytest.raises(BlockingIOError):
            os.read(planted, 4096)
    finally:
        os.close(planted)
    assert (waiters / "planted").exists()  # not ours to remove either


def test_gqdel_of_a_damaged_job_in_a_directory_others_can_write_refuses(victim, other):
    """entomb_damaged trusts the job directory as open_dir does: mode included."""
    g = victim
    g.start()
    job = g.submit("#!/bin/sh\ntrue\n", "-H")
    g.wait_state(job, "held")
    folder = g.job_dir(job)
    (folder / "state.json").write_text("{broken")
    os.chmod(folder, 0o777)
    line = one_line_error(g.run("gqdel", job), "gqdel", 4)
    assert "writable by others" in line
    assert (folder / "script").exists()
