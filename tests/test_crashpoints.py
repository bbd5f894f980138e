"""Crash points, black box (gsat.crashpoint, SPEC §11): a process is killed
with SIGKILL at each named point of submit, take-on, start, end, the control
commands and service dispatch; a controller started again finishes the
workload; then the guarantees a user relies on are checked through the
commands and the files on disk:

- every accepted job exists once; nothing half-submitted is visible;
- no job ran twice (each run appends one line to a file);
- exit values are right, and gqwait callers get them;
- every state.json parses;
- every event in an events.log had its services run at least once, and
  every job that ended has its JOB_FINISHED or JOB_FAILED.

POINTS is the list the loop covers; test_every_point_in_the_code_is_covered
keeps it equal to the calls in the code, so a new point cannot be forgotten.
"""

import ast
import json
import os
import subprocess
from pathlib import Path

import pytest

from helpers import BIN, Gsat, wait_for

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parent.parent

# point -> the process that passes it
POINTS = {
    "submit.filled": "gqsub", "submit.stored": "gqsub", "submit.committed": "gqsub-array",
    "submit.told": "gqsub",
    "takeon.claimed": "controller", "start.saved": "controller", "start.handed": "controller",
    "run.published": "shepherd", "run.spawned": "shepherd", "run.recorded": "shepherd",
    "end.saved": "controller", "end.told": "controller",
    "control.hold": "controller", "control.release": "controller", "control.delete": "controller",
    "control.signal": "controller",
    "event.recorded": "controller", "event.dispatched": "controller",
}

EVENTS = ("QSUB", "JOB_START", "JOB_TERMINATION", "JOB_HOLD", "JOB_RELEASE", "JOB_DELETE", "JOB_SIGNAL",
          "JOB_FINISHED", "JOB_FAILED")

# One line per run, then wait for go.ID (which holds the exit value), 60 s at most.
JOB = """#!/bin/sh
echo "$GSAT_JOBID $GSAT_RUN" >> {marks}/runs
i=0
while [ ! -e {marks}/go.$GSAT_JOBID ]; do
  i=$((i+1)); [ $i -gt 3000 ] && exit 99
  sleep 0.02
done
exit $(cat {marks}/go.$GSAT_JOBID)
"""

SERVICE = """#!/bin/sh
echo "$GSAT_EVENT_ID" >> {marks}/services
"""


def test_every_point_in_the_code_is_covered():
    found = set()
    for path in (ROOT / "gsat").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "at"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "crashpoint"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                found.add(node.args[0].value)
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id.endswith("_POINTS")
                                                    for t in node.targets):
                found.update(v.value for v in node.value.values if isinstance(v, ast.Constant))
    assert found == set(POINTS)
    documented = (ROOT / "gsat" / "crashpoint.py").read_text()
    assert all(f"  {name} " in documented for name in POINTS)


def processes_of(jobdir: Path) -> list[int]:
    """The processes whose environment names this job directory (the job's own)."""
    mark = f"GSAT_JOBDIR={jobdir}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and mark in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


class Rig:
    """A GSAT_HOME, its marks, and a controller that may die at a crash point."""

    def __init__(self, tmp_path: Path):
        self.g = Gsat(tmp_path / "home", config={"autostart": False, "kill_grace": 2, "slots": 2,
                                                 "heartbeat_interval": 1, "idle_heartbeat_interval": 1,
                                                 "timeout": 5})
        self.marks = tmp_path / "marks"
        self.marks.mkdir()
        (self.marks / "runs").touch()
        (self.marks / "services").touch()
        for event in EVENTS:
            folder = self.g.home / "services" / f"on{event}"
            folder.mkdir(parents=True)
            (folder / "record").write_text(SERVICE.format(marks=self.marks))
            (folder / "record").chmod(0o700)
        self.script = JOB.format(marks=self.marks)
        self.controller = None
        self.crashed = False
        self.waiters: list[tuple[subprocess.Popen, int]] = []

    # ---- the controller --------------------------------------------------
    def start(self, point: str | None = None) -> None:
        self.controller = self.g.start(env={"GSAT_CRASH_AT": point} if point else None)

    def died(self) -> bool:
        return self.controller.poll() is not None

    def restart_if_dead(self) -> bool:
        if not self.died():
            return False
        assert self.controller.returncode == -9, f"controller exited {self.controller.returncode}: {self.g.log()}"
        self.crashed = True
        self.start()
        return True

    def until(self, done, what: str, timeout: float = 30.0) -> None:
        """Wait for `done`; a controller that dies meanwhile is started again."""
        def settled():
            return done() or self.died()
        while True:
            wait_for(settled, timeout, what)
            if not self.restart_if_dead():
                return

    def ensure(self, done, what: str, *argv) -> None:
        """Run the command until `done` holds, as a user would after a crash:
        a command whose controller died is stopped and typed again."""
        for _ in range(3):
            if done():
                return
            proc = subprocess.Popen([str(BIN / argv[0]), *map(str, argv[1:])], env=self.g.env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for(lambda: proc.poll() is not None or self.died(), 30, f"{argv} or a crash")
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if self.restart_if_dead():
                continue
            try:
                self.until(done, what, timeout=15)
                return
            except AssertionError:
                continue
        self.until(done, what)

    # ---- jobs --------------------------------------------------------------
    def submit(self, *options) -> int:
        return self.g.submit(self.script, *options)

    def go(self, job: int, value: int) -> None:
        tmp = self.marks / f".go.{job}"
        tmp.write_text(str(value))
        tmp.rename(self.marks / f"go.{job}")

    def state(self, job: int) -> dict:
        return self.g.state(job)

    def is_(self, job: int, *states):
        return lambda: self.state(job).get("state") in states

    def runs(self, job: int) -> list[str]:
        return [line for line in (self.marks / "runs").read_text().splitlines() if line.split()[0] == str(job)]

    def wait_in_background(self, job: int) -> None:
        proc = subprocess.Popen([str(BIN / "gqwait"), "--timeout", "60", str(job)], env=self.g.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.waiters.append((proc, job))


# ---- the workload ------------------------------------------------------------

def workload(rig: Rig) -> dict[int, tuple]:
    """Every road through the controller; returns job -> (state, exit, runs)."""
    running = ("running", "suspended")
    a, b = rig.submit(), rig.submit()
    rig.until(lambda: rig.is_(a, "running")() and rig.is_(b, "running")(), "a and b to run")
    rig.ensure(lambda: rig.state(a).get("state") == "suspended", "a suspended", "gqsig", "-s", "STOP", a)
    rig.ensure(lambda: rig.state(a).get("state") == "running", "a continued", "gqsig", "-s", "CONT", a)
    rig.wait_in_background(b)
    rig.go(a, 0)
    rig.go(b, 3)
    rig.until(lambda: rig.is_(a, "finished")() and rig.is_(b, "failed")(), "a and b to end")

    c = rig.submit("-H")
    rig.ensure(rig.is_(c, *running), "c released", "gqrls", c)
    rig.until(lambda: len(rig.runs(c)) == 1, "c's first run")
    rig.ensure(rig.is_(c, "held"), "c held", "gqhold", c)
    rig.ensure(rig.is_(c, *running), "c released again", "gqrls", c)
    rig.until(lambda: len(rig.runs(c)) == 2, "c's second run")
    rig.go(c, 0)
    rig.until(rig.is_(c, "finished"), "c to finish")

    d = rig.submit()
    rig.until(lambda: len(rig.runs(d)) == 1, "d to run")
    rig.wait_in_background(d)
    rig.ensure(lambda: not rig.state(d), "d deleted", "gqdel", d)
    e = rig.submit("-H")
    rig.ensure(lambda: not rig.state(e), "e deleted", "gqdel", e)
    return {a: ("finished", 0, 1), b: ("failed", 3, 1), c: ("finished", 0, 2), d: (None, None, 1),
            e: (None, None, 0)}


def check(rig: Rig, expected: dict[int, tuple]) -> None:
    g = rig.g
    rows = json.loads(g.run("gqstat", "--json").stdout or "[]")
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)), f"a job listed twice: {ids}"
    for job, (state, exit_value, runs) in expected.items():
        row = rig.state(job)
        assert row.get("state") == state, (job, row)
        if state:
            assert row.get("exit") == exit_value, (job, row)
        assert len(rig.runs(job)) == runs, (job, rig.runs(job))
    lines = (rig.marks / "runs").read_text().splitlines()
    assert len(lines) == len(set(lines)), f"a run ran twice: {lines}"
    assert set(ids) <= set(expected), f"jobs nobody submitted: {set(ids) - set(expected)}"
    for path in g.home.glob("jobs/*/state.json"):
        json.loads(path.read_text())
    assert not list(g.home.glob("jobs/.new.*")), "a half-submitted job was left"
    for proc, job in rig.waiters:
        proc.wait(timeout=70)
        want = expected[job][1] if expected[job][0] else 255
        assert proc.returncode == want, (job, proc.returncode, proc.stderr.read())
    recorded, ended = set(), set()
    for path in g.home.glob("jobs/*/events.log"):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            recorded.add(event["id"])
            if event["name"] in ("JOB_FINISHED", "JOB_FAILED"):
                ended.add(int(path.parent.name))
    assert {j for j, (state, _, _) in expected.items() if state} <= ended, "an end without its event"
    wait_for(lambda: recorded <= set((rig.marks / "services").read_text().split()), 30,
             "every recorded event's services")


# ---- the loop ----------------------------------------------------------------

@pytest.mark.parametrize("point", [p for p, who in POINTS.items() if who == "controller"])
def test_controller_killed_at(tmp_path, point):
    rig = Rig(tmp_path)
    try:
        rig.start(point)
        expected = workload(rig)
        rig.restart_if_dead()
        assert rig.crashed, f"the controller never passed {point}"
        check(rig, expected)
    finally:
        rig.g.cleanup()


# a shepherd killed at a point: the job it ran ends as it must (lost before the exit record)
SHEPHERD_OUTCOME = {"run.published": ("failed", 255, 0), "run.spawned": ("failed", 255, None),
                    "run.recorded": ("finished", 0, 1)}


@pytest.mark.parametrize("point", sorted(SHEPHERD_OUTCOME))
def test_shepherd_killed_at(tmp_path, point):
    rig = Rig(tmp_path)
    try:
        rig.start(point)  # every shepherd of this controller inherits the hook
        first = rig.submit()
        if point != "run.spawned":  # that one must be killed as lost, or it runs on untracked
            rig.go(first, 0)
        rig.until(rig.is_(first, "finished", "failed"), "the first job to end")
        wait_for(lambda: not processes_of(rig.g.job_dir(first)), 10, "the lost run's processes to go")
        rig.g.crash(rig.controller)
        rig.start()
        expected = workload(rig)
        state, exit_value, runs = SHEPHERD_OUTCOME[point]
        row = rig.state(first)
        assert (row["state"], row["exit"]) == (state, exit_value), row
        if runs is not None:
            assert len(rig.runs(first)) == runs
        expected[first] = (state, exit_value, len(rig.runs(first)))
        check(rig, expected)
        assert len(rig.runs(first)) <= 1
    finally:
        rig.g.cleanup()


@pytest.mark.parametrize("point", [p for p, who in POINTS.items() if who == "gqsub"])
def test_gqsub_killed_at(tmp_path, point):
    rig = Rig(tmp_path)
    try:
        rig.start()
        proc = rig.g.run("gqsub", input=rig.script, env={"GSAT_CRASH_AT": point})
        stored = sorted(int(p.name) for p in rig.g.home.glob("jobs/[0-9]*"))
        printed = [int(x) for x in proc.stdout.split()]
        assert proc.returncode == -9 and printed == (stored if point == "submit.told" else []), proc
        if point == "submit.filled":
            assert stored == []
            wait_for(lambda: not list(rig.g.home.glob("jobs/.new.*")), 30, "the leftover to go")
            expected = {}
        else:
            assert len(stored) == 1
            rig.go(stored[0], 0)
            rig.until(rig.is_(stored[0], "finished"), "the untold job to run")
            expected = {stored[0]: ("finished", 0, 1)}
        expected.update(workload(rig))
        check(rig, expected)
    finally:
        rig.g.cleanup()


@pytest.mark.parametrize("point", ["submit.stored", "submit.committed"])
def test_gqsub_of_an_array_killed_at(tmp_path, point):
    """Killed once its first element is stored, an array never runs and goes;
    killed once it is committed, it runs whole."""
    rig = Rig(tmp_path)
    try:
        rig.start()
        proc = rig.g.run("gqsub", "-t", "1-5", input=rig.script, env={"GSAT_CRASH_AT": point})
        assert proc.returncode == -9 and proc.stdout == "", proc
        stored = sorted(int(p.name) for p in rig.g.home.glob("jobs/[0-9]*"))
        assert len(stored) == (1 if point == "submit.stored" else 5), stored
        if point == "submit.committed":
            for job in range(1, 6):
                rig.go(job, 0)
        if point == "submit.stored":
            rig.until(lambda: not rig.state(1), "the abandoned array to go")
            expected = {1: (None, None, 0)}
        else:
            rig.until(lambda: all(rig.is_(j, "finished")() for j in range(1, 6)), "the array to run")
            expected = {j: ("finished", 0, 1) for j in range(1, 6)}
        expected.update(workload(rig))
        check(rig, expected)
    finally:
        rig.g.cleanup()


def test_a_waiting_job_is_announced_once_however_often_the_controller_dies(tmp_path):
    """A held job's state is not written when it is taken on; each start takes
    it on again, and must not fire its QSUB (and its services) again."""
    rig = Rig(tmp_path)
    try:
        rig.start()
        job = rig.submit("-H")
        for _ in range(3):
            rig.until(lambda: rig.g.events(job) == ["QSUB"], "the QSUB")
            rig.g.crash(rig.controller)
            rig.start()
        rig.ensure(rig.is_(job, "running"), "the release", "gqrls", job)
        assert rig.g.events(job) == ["QSUB", "JOB_RELEASE", "JOB_START"], rig.g.events(job)
        ids = [json.loads(line)["id"] for line in (rig.g.job_dir(job) / "events.log").read_text().splitlines()]
        # each event's services ran (at least once: a kill between the start of a service and
        # the outbox forgetting it runs it again), and no QSUB was made anew
        wait_for(lambda: set((rig.marks / "services").read_text().split()) == set(ids), 10,
                 "each event's services")
        rig.go(job, 0)
        rig.until(rig.is_(job, "finished"), "the end")
    finally:
        rig.g.cleanup()
