"""A model of the job states (README "Job states"), checked against the real thing.

hypothesis drives random sequences of what a user does, through the installed
commands only, against a real `gsatlc run`: submit (plain, held, an array),
gqhold, gqrls, gqdel, gqsig -s STOP/CONT/TERM, a job's own exit with a chosen
value, and kill -9 of the controller followed by a restart.  A small model
says what each step must lead to; after every step `gqstat --json` must agree
with it (state, exit value, run count) and each job's own record of its runs
must too.  The controller is asynchronous, so the check waits, with a
deadline, until the two agree; it never sleeps a fixed time.

Jobs talk to the test through files in MARKS: each run appends its GSAT_RUN
to ID.runs (one line per run: a run twice shows), then waits for ID.go, which
holds the exit value to use; a run consumes the file.  A job that is never
told gives up after its own deadline (exit 99, which no step chooses), so a
broken controller fails the test instead of hanging it.

Two slots under fifo make "queued or running" deterministic: the lowest
queued ids run, at most %MAX of one array.

Scale: GSAT_MODEL_EXAMPLES and GSAT_MODEL_STEPS (defaults 15 and 25, under a
minute); `make soak` sets them higher.  The examples are derandomized unless
GSAT_MODEL_EXAMPLES is set, so `make test` runs the same ones every time, and
then the test checks that they reached every case of MUST_COVER.  A failure prints
the whole failing sequence of steps; GSAT_MODEL_SHRINK=1 shrinks it first
(minutes: every failing try waits out its deadline).
"""

import json
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings, strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition, rule,
                                 run_state_machine_as_test)

from helpers import BIN, Gsat, q, wait_for

EXAMPLES = int(os.environ.get("GSAT_MODEL_EXAMPLES", "15"))
STEPS = int(os.environ.get("GSAT_MODEL_STEPS", "25"))
SLOTS = 2
MAX_JOBS = 10          # per example: keeps each step's gqstat cheap
JOB_DEADLINE = 120     # seconds of running (not stopped) time before a job gives up
AGREE = 15             # seconds the controller gets to catch up with the model
COVERED = Counter()    # what the examples did: the test checks the model met every case
ANY = object()         # an exit value the contract leaves open (a held or requeued job's last run)
EXITS = st.sampled_from([0, 1, 3, 42, 255])

pytestmark = pytest.mark.timeout(max(600, EXAMPLES * STEPS * 6))


def job_script(marks: Path) -> str:
    runs, go = f"{q(marks)}/$GSAT_JOBID.runs", f"{q(marks)}/$GSAT_JOBID.go"
    return (f"#!/bin/sh\necho \"$GSAT_RUN\" >> {runs}\n"
            f"i=0\nwhile [ ! -e {go} ]; do\n"
            f"  i=$((i+1)); [ $i -gt {JOB_DEADLINE * 10} ] && exit 99\n"
            f"  sleep 0.1\ndone\n"
            f"v=$(cat {go}); rm -f {go}\nexit \"$v\"\n")


@dataclass
class Job:
    """What the model knows of one job."""
    id: int
    state: str = "queued"      # queued held running finished failed deleted
    suspended: bool = False
    runs: int = 0
    exit: object = None
    go: int | None = None      # the exit value written to ID.go, not consumed yet
    term_pending: bool = False # a TERM sent while stopped: delivered on CONT
    array: tuple | None = None # (first id, MAX or None)

    @property
    def shown(self) -> str:
        return "suspended" if self.state == "running" and self.suspended else self.state


class Model:
    """The rules of README "Job states" under fifo with SLOTS slots."""

    def __init__(self):
        self.jobs: dict[int, Job] = {}

    def add(self, job: Job) -> None:
        self.jobs[job.id] = job
        self.settle()

    def end(self, job: Job, value: int, state: str | None = None) -> None:
        job.state = state or ("finished" if value == 0 else "failed")
        job.exit, job.suspended, job.term_pending = value, False, False

    def proceed(self, job: Job) -> None:
        """A running job that is not stopped acts on what it was told."""
        if job.state == "running" and not job.suspended and job.go is not None:
            value, job.go = job.go, None
            self.end(job, value)

    def settle(self) -> None:
        """Start what the scheduler starts, until nothing more changes."""
        while True:
            running = [j for j in self.jobs.values() if j.state == "running"]
            if len(running) >= SLOTS:
                return
            per_array = {}
            for j in running:
                if j.array:
                    per_array[j.array[0]] = per_array.get(j.array[0], 0) + 1
            nxt = next((j for j in sorted(self.jobs.values(), key=lambda j: j.id)
                        if j.state == "queued"
                        and not (j.array and j.array[1] and per_array.get(j.array[0], 0) >= j.array[1])),
                       None)
            if nxt is None:
                return
            nxt.state, nxt.runs, nxt.exit = "running", nxt.runs + 1, None
            self.proceed(nxt)

    # ---- commands: each returns the exit code the command must give ----
    def hold(self, job: Job) -> int:
        if job.state == "deleted":
            return 3
        if job.state == "held":
            return 1
        if job.state == "running":  # the hold signal (TERM) kills it; held, rerun on release
            self.end(job, 143, "held")
        else:
            job.state = "held"
        self.settle()
        return 0

    def release(self, job: Job) -> int:
        if job.state == "deleted":
            return 3
        if job.state != "held":
            return 1
        job.state = "queued"
        self.settle()
        return 0

    def delete(self, job: Job) -> int:
        if job.state == "deleted":
            return 3
        job.state, job.suspended = "deleted", False
        self.settle()
        return 0

    def signal(self, job: Job, sig: str) -> int:
        if job.state == "deleted":
            return 3
        if job.state != "running":
            return 1
        if sig == "STOP":
            job.suspended = True
        elif sig == "CONT" and job.suspended:
            job.suspended = False
            if job.term_pending:  # delivered before the job runs a single instruction
                self.end(job, 143)
            self.proceed(job)
        elif sig == "TERM":
            if job.suspended:     # a stopped process keeps TERM pending until CONT
                job.term_pending = True
            else:
                self.end(job, 143)
        self.settle()
        return 0

    def tell(self, job: Job, value: int) -> None:
        job.go = value
        self.proceed(job)
        self.settle()

    def wait_value(self, job: Job) -> int:
        """What `gqwait --timeout` gives for the job now."""
        if job.state == "deleted":
            return 255
        return job.exit if job.state in ("finished", "failed") else 124

    def expected(self) -> dict:
        """id -> (shown state, exit, run count) as gqstat --json must show it."""
        out = {}
        for j in self.jobs.values():
            if j.state == "deleted":
                continue
            settled = j.state in ("finished", "failed", "running") or j.runs == 0
            out[j.id] = (j.shown, j.exit if settled else ANY, j.runs)
        return out


def agrees(seen: dict, want: dict) -> bool:
    if seen.keys() != want.keys():
        return False
    return all(w[0] == s[0] and w[2] == s[2] and (w[1] is ANY or w[1] == s[1])
               for s, w in ((seen[k], want[k]) for k in want))


def note(case: str) -> None:
    COVERED[case] += 1


class JobStates(RuleBasedStateMachine):

    def __init__(self):
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="gsat-model-"))
        self.marks = self.root / "marks"
        self.marks.mkdir()
        self.g = Gsat(self.root / "home", config={"slots": SLOTS, "scheduler": "fifo"})
        self.model = Model()
        self.controller = None

    @initialize()
    def start_controller(self):
        self.controller = self.g.start()

    def teardown(self):
        self.g.cleanup()
        shutil.rmtree(self.root, ignore_errors=True)

    # ---- steps ---------------------------------------------------------
    def _submit(self, *options) -> list[int]:
        proc = self.g.run("gqsub", *options, input=job_script(self.marks))
        assert proc.returncode == 0, proc.stderr
        ids = [int(line) for line in proc.stdout.split()]
        assert ids and len(set(ids)) == len(ids) and not set(ids) & self.model.jobs.keys(), ids
        return ids

    @precondition(lambda self: len(self.model.jobs) < MAX_JOBS)
    @rule(held=st.booleans())
    def submit(self, held):
        (job_id,) = self._submit(*(["-H"] if held else []))
        self.model.add(Job(job_id, state="held" if held else "queued"))

    @precondition(lambda self: len(self.model.jobs) < MAX_JOBS)
    @rule(count=st.integers(2, 4), limit=st.sampled_from([None, 1, 2]), held=st.booleans())
    def submit_array(self, count, limit, held):
        spec = f"1-{count}" + (f"%{limit}" if limit else "")
        ids = self._submit("-t", spec, *(["-H"] if held else []))
        assert len(ids) == count, ids
        note(f"an array{' with %' + str(limit) if limit else ''}")
        for job_id in ids:
            self.model.jobs[job_id] = Job(job_id, state="held" if held else "queued", array=(ids[0], limit))
        self.model.settle()

    def _command(self, code: int, *args) -> None:
        proc = self.g.run(*args)
        assert proc.returncode == code, f"{args}: exit {proc.returncode}, the model says {code}: {proc.stderr}"

    def _pick(self, data, *likely: str) -> Job:
        """Any job the example made, or as often one in a state where the command
        acts (each such state as likely as the others, however many jobs it has)."""
        every = sorted(self.model.jobs)
        shown = sorted({self.model.jobs[j].shown for j in every} & set(likely))
        if shown and data.draw(st.booleans(), label="likely"):
            state = data.draw(st.sampled_from(shown), label="state")
            every = [j for j in every if self.model.jobs[j].shown == state]
        return self.model.jobs[data.draw(st.sampled_from(every), label="job")]

    @precondition(lambda self: self.model.jobs)
    @rule(data=st.data())
    def hold(self, data):
        job = self._pick(data, "running", "suspended", "queued", "finished", "failed")
        note(f"gqhold of a {job.shown} job")
        self._command(self.model.hold(job), "gqhold", job.id)

    @precondition(lambda self: self.model.jobs)
    @rule(data=st.data())
    def release(self, data):
        job = self._pick(data, "held")
        note(f"gqrls of a {job.shown} job")
        self._command(self.model.release(job), "gqrls", job.id)

    @precondition(lambda self: self.model.jobs)
    @rule(data=st.data())
    def delete(self, data):
        job = self._pick(data, "running", "suspended", "queued", "held")
        note(f"gqdel of a {job.shown} job")
        self._command(self.model.delete(job), "gqdel", job.id)
        self._command(255, "gqwait", "--timeout", AGREE, job.id)  # a deleted job's value, once gone

    @precondition(lambda self: self.model.jobs)
    @rule(data=st.data(), sig=st.sampled_from(["STOP", "CONT", "TERM"]))
    def signal(self, data, sig):
        stopped = any(j.shown == "suspended" for j in self.model.jobs.values())
        job = self._pick(data, "suspended") if stopped else self._pick(data, "running")
        note(f"gqsig -s {sig} of a {job.shown} job")
        self._command(self.model.signal(job, sig), "gqsig", "-s", sig, job.id)

    @precondition(lambda self: any(j.state != "deleted" and j.go is None for j in self.model.jobs.values()))
    @rule(data=st.data(), value=EXITS)
    def job_exits(self, data, value):
        """The job is told its exit value; a running one ends at once, another on
        its next run.  A gqwait started before must return that value."""
        told = [j.id for j in self.model.jobs.values() if j.state != "deleted" and j.go is None]
        running = [j for j in told if self.model.jobs[j].shown == "running"] or told
        job = self.model.jobs[data.draw(st.sampled_from(running) | st.sampled_from(told), label="job")]
        note(f"exit told to a {job.shown} job")
        waiter = None
        if job.shown == "running":
            waiter = subprocess.Popen([str(BIN / "gqwait"), str(job.id)], env=self.g.env)
        self._tell(job.id, value)
        self.model.tell(job, value)
        if waiter:
            assert waiter.wait(timeout=AGREE) == value, f"gqwait {job.id}: the job exited {value}"

    @precondition(lambda self: self.model.jobs)
    @rule(data=st.data())
    def wait(self, data):
        """gqwait gives an ended job's value at once, 255 for a deleted one, and
        times out (124) on an active one."""
        job = self._pick(data, "finished", "failed")
        self._command(self.model.wait_value(job), "gqwait", "--timeout", "0.2", job.id)

    @precondition(lambda self: any(j.state == "running" for j in self.model.jobs.values()))
    @rule(data=st.data())
    def controller_crash(self, data):
        """kill -9 of the controller; some running jobs end while it is down; restart."""
        self.g.crash(self.controller)
        alive = [j for j in self.model.jobs.values() if j.state == "running" and not j.suspended]
        ending = data.draw(st.lists(st.sampled_from(alive), unique_by=lambda j: j.id) if alive else st.just([]))
        for job in ending:
            records = self._exit_records(job.id)
            value = data.draw(EXITS)
            self._tell(job.id, value)
            wait_for(lambda: self._exit_records(job.id) > records, AGREE, f"job {job.id}'s exit record")
            self.model.end(job, value)
        note("kill -9 of the controller" + (" while a job ends" if ending else ""))
        self.controller = self.g.start()
        self.model.settle()

    # ---- the check after every step -------------------------------------
    @invariant()
    def gqstat_agrees_with_the_model(self):
        if self.controller is None:
            return
        want = self.model.expected()
        last = {}

        def agreed():
            last["seen"] = self._observed()
            return agrees(last["seen"], want) and self._runs_recorded()
        try:
            wait_for(agreed, AGREE, "gqstat to agree with the model")
        except AssertionError:
            raise AssertionError(f"gqstat: {last['seen']}\nmodel:  {want}\nruns: {self._runs_files()}\n"
                                 f"controller log:\n{self.g.log()[-3000:]}") from None

    def _observed(self) -> dict:
        proc = self.g.run("gqstat", "--json")
        assert proc.returncode == 0, proc.stderr
        return {r["id"]: (r["state"], r["exit"], r["run"]) for r in json.loads(proc.stdout)}

    def _runs_files(self) -> dict:
        return {j: (self.marks / f"{j}.runs").read_text().split() if (self.marks / f"{j}.runs").exists() else []
                for j in self.model.jobs}

    def _runs_recorded(self) -> bool:
        """Each job ran exactly as often as the model says, with GSAT_RUN 1, 2, ..."""
        files = self._runs_files()
        return all(files[j.id] == [str(n) for n in range(1, j.runs + 1)] for j in self.model.jobs.values())

    def _tell(self, job_id: int, value: int) -> None:
        tmp = self.marks / f".{job_id}.go"
        tmp.write_text(f"{value}\n")
        tmp.rename(self.marks / f"{job_id}.go")  # never read half-written

    def _exit_records(self, job_id: int) -> int:
        return len(list(self.g.job_dir(job_id).glob("runs/*.exit")))


# the cases the examples must reach, or the model checked less than it seems to
# a tuple: any one of them (which of these a fixed example reaches depends on
# how fast the machine lets a job get going)
SUSPENDED = ("gqsig -s CONT of a suspended job", "gqsig -s TERM of a suspended job", "gqdel of a suspended job")
MUST_COVER = ("gqhold of a running job", "gqhold of a held job", "gqrls of a held job",
              "gqrls of a queued job", "gqdel of a running job", "gqdel of a queued job",
              "gqsig -s STOP of a running job", SUSPENDED,
              "gqsig -s TERM of a running job",
              "gqsig -s TERM of a held job", "exit told to a running job", "exit told to a held job",
              "kill -9 of the controller while a job ends", "an array with %1")


def test_job_states_follow_the_model():
    COVERED.clear()
    run_state_machine_as_test(JobStates, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None,
        derandomize="GSAT_MODEL_EXAMPLES" not in os.environ,
        # each failing attempt waits AGREE seconds: shrinking takes minutes, so only on request
        phases=[p for p in Phase if p != Phase.shrink or os.environ.get("GSAT_MODEL_SHRINK")],
        suppress_health_check=list(HealthCheck)))
    if "GSAT_MODEL_EXAMPLES" not in os.environ:  # random runs may miss a case by chance
        missed = [case for case in MUST_COVER
                  if not (any(COVERED[c] for c in case) if isinstance(case, tuple) else COVERED[case])]
        assert not missed, f"the examples never reached: {missed}; they did {dict(COVERED)}"
