"""Load and crashes at the scale SPEC §9 names, end to end.

Real `gsatlc run`, real gqsub calls, real kill -9.  Every job appends a line
"ID RUN" to one marks file (an O_APPEND write of a few bytes: atomic), so the
file says how many times each job really ran, and when a chosen number of
jobs has run (the tests wait on it instead of sleeping).  Each test takes a
size: the full one (SPEC §9: 60 submitters x 100 jobs; 10,000 jobs with the
controller sampled) is marked `slow` and skipped by plain `pytest` and
`make test` (setup.cfg), and run by `pytest -m slow` (`make soak`); a
smaller size of the same code runs by default.
"""

import json
import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from helpers import all_states, q, wait_all_ended, wait_for

EXITS = 7  # job ID exits with ID % EXITS, so that exit values differ by id

DEADLINE_EXIT = 99  # a held-up job whose gate was never opened (a wrong exit value)

# A job marks its run, waits while a gate file of its id exists (the test
# makes gates for the jobs it wants running at a kill; ~30 s at most), and
# exits with a value of its own.
JOB = """#!/bin/sh
echo "$GSAT_JOBID $GSAT_RUN" >> {marks}
i=0
while [ -e {gates}/$GSAT_JOBID ]; do
  i=$((i+1))
  [ $i -gt 600 ] && exit {deadline}
  sleep 0.05
done
exit $((GSAT_JOBID % {exits}))
"""


def slow(*values, timeout: int):
    """A full-size parameter set: skipped by default, with a deadline of its own."""
    return pytest.param(*values, marks=[pytest.mark.slow, pytest.mark.timeout(timeout)])


# ---- helpers ---------------------------------------------------------------

@pytest.fixture
def marks(tmp_path):
    (tmp_path / "gates").mkdir()
    return tmp_path / "marks"


def job_script(marks) -> str:
    return JOB.format(marks=q(marks), gates=q(gates(marks)), exits=EXITS, deadline=DEADLINE_EXIT)


def gates(marks):
    return marks.with_name("gates")


def marked(marks) -> list[tuple[int, int]]:
    """The (id, run) lines the jobs wrote so far."""
    try:
        text = marks.read_text()
    except FileNotFoundError:
        return []
    return [(int(i), int(r)) for i, r in (line.split() for line in text.splitlines())]


def count_lines(marks) -> int:
    try:
        return marks.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def wait_marked(marks, count: int, timeout: float) -> int:
    """Wait until at least `count` runs are marked; return how many are."""
    return wait_for(lambda: (n := count_lines(marks)) >= count and n, timeout,
                    f"{count} runs in {marks.name}")




def submit_concurrently(g, script: str, submitters: int, each: int) -> list[int]:
    """`submitters` threads released together, each making `each` separate
    gqsub calls; return every id printed, in no particular order."""
    gate = threading.Barrier(submitters)

    def submitter(_):
        gate.wait(timeout=60)
        return [g.submit(script, timeout=300) for _ in range(each)]

    with ThreadPoolExecutor(submitters) as pool:
        return [i for chunk in pool.map(submitter, range(submitters)) for i in chunk]


def assert_ran_once_with_their_exits(g, marks, ids) -> dict[int, dict]:
    """Every job in `ids` ran exactly once (one mark), ended with ID % EXITS,
    its state and its events say the run that ran; return the states."""
    rows = wait_all_ended(g, ids, 120)
    runs = Counter(i for i, _ in marked(marks))
    twice = sorted(i for i, n in runs.items() if n > 1)
    never = sorted(set(ids) - set(runs))
    strangers = sorted(set(runs) - set(ids))
    assert not twice, f"{len(twice)} jobs ran more than once, e.g. {twice[:10]}"
    assert not never, f"{len(never)} jobs never ran, e.g. {never[:10]}"
    assert not strangers, f"runs of jobs nobody submitted: {strangers[:10]}"
    run_of = dict(marked(marks))
    for i in ids:
        row = rows[i]
        want = i % EXITS
        assert (row["state"], row["exit"], row["run"]) == \
            ("finished" if want == 0 else "failed", want, run_of[i]), f"job {i}: {row}"
        assert_events_of_the_run(g, i, run_of[i], "JOB_FINISHED" if want == 0 else "JOB_FAILED")
    return rows


def assert_events_of_the_run(g, job: int, run: int, final: str) -> None:
    """The job's event log tells of its QSUB, of the run that ran (its
    JOB_START and JOB_TERMINATION) and of its final end, each at least once
    (README: a crash may make an event fire again, never lose it), so that
    each had its services."""
    path = g.job_dir(job) / "events.log"
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    names = {e["name"] for e in events if e.get("run") in (run, 0)}
    missing = {"QSUB", "JOB_START", "JOB_TERMINATION", final} - names
    told = [(e["name"], e.get("run")) for e in events]
    assert not missing, f"job {job}, run {run}: no {sorted(missing)} in {told}"


def assert_gqwait_agrees(g, ids, sample: int = 12, also=()) -> None:
    """gqwait on a spread of the jobs (and on `also`), one call each, returns
    each one's exit value."""
    step = max(1, len(ids) // sample)
    for i in sorted(set(sorted(ids)[::step]) | set(also)):
        proc = g.run("gqwait", "--timeout", 20, i, timeout=60)
        assert proc.returncode == i % EXITS, f"gqwait {i}: {proc.returncode} {proc.stderr}"


# ---- kill -9 of the controller during a run --------------------------------

@pytest.mark.parametrize("jobs, kills, slots", [
    (500, 4, 4),
    slow(2000, 10, 4, timeout=900),
])
def test_kill_9_of_the_controller_during_a_run_loses_and_repeats_nothing(gsat, marks, jobs, kills, slots):
    """SPEC §9: kill -9 of the controller during a 500-job run, several times
    at different moments: none lost, none twice, exit values right.  Kill k
    comes once the jobs from k/(kills+1) of the way on have started: all but
    one of them are held up by a gate, so the kill finds shepherds mid-run
    (to be adopted) while the free slot keeps trivial jobs starting and
    ending around it."""
    gsat.write_config({"autostart": False, "kill_grace": 2, "slots": slots})
    points = [jobs * k // (kills + 1) for k in range(1, kills + 1)]
    held = {p: list(range(p, p + slots - 1)) for p in points}
    for job in (j for group in held.values() for j in group):
        (gates(marks) / str(job)).touch()
    proc = gsat.run("gqsub", "-t", f"1-{jobs}", input=job_script(marks), timeout=120, check=True)
    ids = list(map(int, proc.stdout.split()))
    assert ids == list(range(1, jobs + 1))

    controller = gsat.start()
    at_kill = []
    for point in points:
        wait_for(lambda: set(held[point]) <= {i for i, _ in marked(marks)}, 60, f"jobs {held[point]} to run")
        gsat.crash(controller)
        at_kill.append(count_lines(marks))
        controller = gsat.start()
        rows = all_states(gsat)
        assert [rows[i]["state"] for i in held[point]] == ["running"] * len(held[point]), \
            "the restarted controller did not adopt the running jobs"
        for job in held[point]:
            (gates(marks) / str(job)).unlink()
    # each kill fell inside the run, not after it: else this proved nothing
    assert at_kill[-1] < jobs, f"runs marked at the kills: {at_kill}"

    assert_ran_once_with_their_exits(gsat, marks, ids)
    assert_gqwait_agrees(gsat, ids, also=[j for group in held.values() for j in group])


# ---- concurrent submitters -------------------------------------------------

@pytest.mark.parametrize("submitters, each", [
    (60, 10),
    slow(60, 100, timeout=1800),
])
def test_concurrent_submitters_lose_nothing(gsat, marks, submitters, each):
    """SPEC §9: 60 concurrent submitters x 100 jobs, separate gqsub calls:
    every printed id unique, every job runs exactly once, none lost."""
    gsat.write_config({"autostart": False, "kill_grace": 2, "slots": 4})
    gsat.start()
    total = submitters * each
    ids = submit_concurrently(gsat, job_script(marks), submitters, each)

    assert len(ids) == total
    assert len(set(ids)) == total, f"ids printed twice: {[i for i, n in Counter(ids).items() if n > 1][:10]}"
    assert sorted(ids) == list(range(1, total + 1))
    wait_marked(marks, total, 300)
    rows = assert_ran_once_with_their_exits(gsat, marks, ids)
    assert sorted(rows) == sorted(ids), "gqstat shows jobs nobody submitted"
    assert_gqwait_agrees(gsat, ids)


# ---- the controller's resources stay flat ----------------------------------

@dataclass
class Sample:
    at: float
    ran: int  # runs marked when the sample was taken
    fds: int
    rss_kb: int
    zombies: int


def controller_sample(pid: int, marks) -> Sample:
    """The controller's open descriptors, RSS and zombie children, now."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return Sample(time.monotonic(), count_lines(marks), fds, rss, zombie_children(pid))


def zombie_children(pid: int) -> int:
    """How many processes whose parent is `pid` are zombies (state Z)."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:  # gone between the listing and the read
            continue
        if fields[0] == "Z" and int(fields[1]) == pid:
            count += 1
    return count


@dataclass
class Sampler:
    """Samples the controller every `interval` seconds from a thread."""
    pid: int
    marks: object
    interval: float
    samples: list = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.wait(self.interval):
            self.samples.append(controller_sample(self.pid, self.marks))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)


# Flat, in numbers (measured at 10,000 jobs: fds 10 idle, 17 at most; RSS
# +1.9 MB from the first tenth to the end, levelling off; zombies 3 at most):
FD_SLACK = 16        # descriptors above the idle baseline at any moment (pipes of
                     # shepherds, reply FIFOs, a service's pipes in flight)
RSS_GROWTH_KB = 4 * 1024  # after the first tenth of the jobs has run: a leak of
                          # 0.5 KB a job shows at 10,000 jobs, of 5 KB at 1,000
ZOMBIE_SLACK = 4     # zombies above `slots` at any moment: shepherds and services
                     # that just exited, on a loaded machine (a leak makes thousands)


def settled(pid: int, marks, baseline: Sample, timeout: float = 10) -> Sample:
    """The controller's figures once back at the baseline's descriptors and no
    zombie, or (for the assertion to show) as they are after `timeout`."""
    def idle():
        now = controller_sample(pid, marks)
        return now.fds <= baseline.fds + 2 and now.zombies == 0 and now
    try:
        return wait_for(idle, timeout, "the idle controller to settle")
    except AssertionError:
        return controller_sample(pid, marks)


def report(samples, baseline: Sample, end: Sample, jobs: int) -> str:
    """The figures at start/peak/end, and RSS as each tenth of the jobs had run."""
    peak = lambda attr: max(getattr(s, attr) for s in samples)
    tenths = [next((s.rss_kb for s in samples if s.ran >= jobs * k // 10), end.rss_kb) for k in range(1, 11)]
    return (f"{len(samples)} samples; fds {baseline.fds}/{peak('fds')}/{end.fds}, "
            f"RSS KB {baseline.rss_kb}/{peak('rss_kb')}/{end.rss_kb}, "
            f"zombies {baseline.zombies}/{peak('zombies')}/{end.zombies} (start/peak/end); "
            f"RSS KB by tenths of the jobs run {tenths}")


@pytest.mark.parametrize("jobs, submitters, interval", [
    (1000, 50, 0.2),
    slow(10000, 50, 0.5, timeout=3600),
])
def test_the_controller_stays_flat_under_load(gsat, marks, jobs, submitters, interval):
    """SPEC §9 / issue 14: 10,000 jobs through 2 slots from 50 concurrent
    submitters; the controller's open descriptors, RSS and zombie children,
    sampled all along, stay flat: fds within FD_SLACK of the idle baseline,
    RSS growing at most RSS_GROWTH_KB after the first tenth of the jobs,
    zombies at most slots + ZOMBIE_SLACK at any sample and none at the end."""
    slots = 2
    gsat.write_config({"autostart": False, "kill_grace": 2, "slots": slots})
    # a service for every job's end: a child of the controller per job, so that
    # zombies have somewhere to come from besides the shepherds
    told = marks.with_name("told")
    service = gsat.home / "services" / "onJOB_TERMINATION" / "tell"
    service.parent.mkdir(parents=True)
    service.write_text(f"#!/bin/sh\necho $GSAT_JOBID >> {q(told)}\n")
    service.chmod(0o700)
    pid = gsat.start().pid
    assert gsat.run("sendcmd", "-c", "ALIVE?").stdout.strip() == "ALIVE"
    baseline = controller_sample(pid, marks)

    with Sampler(pid, marks, interval) as sampler:
        ids = submit_concurrently(gsat, job_script(marks), submitters, jobs // submitters)
        wait_marked(marks, jobs, 600)
        rows = assert_ran_once_with_their_exits(gsat, marks, ids)
    assert sorted(ids) == sorted(rows) == list(range(1, jobs + 1))
    wait_for(lambda: count_lines(told) >= jobs, 60, "every job's service")
    assert set(map(int, told.read_text().split())) == set(ids), "a job's end was never told"

    end = settled(pid, marks, baseline)
    samples = sampler.samples
    figures = report(samples, baseline, end, jobs)
    print(figures)
    assert len(samples) >= 10, figures
    # once idle, it gives back what the load took (a leak never does)
    assert end.fds <= baseline.fds + 2 and end.zombies == 0, f"after the load: {figures}"

    worst_fds = max(s.fds for s in samples)
    assert worst_fds <= baseline.fds + FD_SLACK, figures
    worst_zombies = max(s.zombies for s in samples)
    assert worst_zombies <= slots + ZOMBIE_SLACK, figures
    warm = [s for s in samples if s.ran >= jobs // 10]
    assert warm, figures
    growth = max(s.rss_kb for s in warm + [end]) - warm[0].rss_kb
    assert growth <= RSS_GROWTH_KB, f"RSS grew {growth} KB after warm-up; {figures}"
