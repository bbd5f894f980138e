"""`make soak`: jobs submitted without pause for SOAK_MINUTES (default 30)
while faults are injected at random: kill -9 of the controller (started
again after a moment), kill -9 of a running job's shepherd, and a full disk
for a few seconds (GSAT_HOME is a small tmpfs when this runs as root).

Every job appends "ID RUN" to a file outside GSAT_HOME and exits with a
value that follows from its id.  At the end nothing is submitted for a
while, every accepted job (its id printed) must have ended, and the last
line says:

    soak: N jobs run, F faults injected, L jobs lost, T jobs run twice, W wrong exit values

A job is lost when it was accepted and is missing or never ended; a job
whose shepherd was killed is expected to be failed 255, not lost.  Exit 1
when L, T or W is not 0.
"""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import Gsat, wait_for  # noqa: E402

JOB = """#!/bin/sh
echo "$GSAT_JOBID $GSAT_RUN" >> {marks}/runs
[ $((GSAT_JOBID % 4)) = 0 ] && sleep 0.$((GSAT_JOBID % 7))
exit $((GSAT_JOBID % 5 == 0 ? 3 : 0))
"""


HOME_MB = 2048  # the tmpfs GSAT_HOME, when this runs as root


def expected_exit(job: int) -> int:
    return 3 if job % 5 == 0 else 0


class Soak:
    def __init__(self, base: Path, minutes: float):
        self.base = base
        self.deadline = time.monotonic() + minutes * 60
        self.mounted = False
        home = base / "home"
        home.mkdir(mode=0o700)
        if os.geteuid() == 0:
            # 2 GB: half an hour of history (about 16 KB a job on tmpfs) fits beside the filler
            self.mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={HOME_MB}m,mode=0700", "tmpfs",
                                           str(home)]).returncode == 0
        self.g = Gsat(home, config={"autostart": False, "slots": 2, "kill_grace": 1,
                                    "heartbeat_interval": 1, "idle_heartbeat_interval": 1, "timeout": 5})
        self.marks = base / "marks"
        self.marks.mkdir()
        (self.marks / "runs").touch()
        self.script = JOB.format(marks=self.marks)
        self.accepted: set[int] = set()
        self.shepherd_killed: set[int] = set()
        self.faults = {"controller": 0, "shepherd": 0, "disk": 0}
        self.lock = threading.Lock()
        self.over = threading.Event()  # never set: pause() waits on it with a timeout
        self.refused = 0  # controller starts refused (a full disk)
        self.ctl = None

    # ---- the load --------------------------------------------------------
    def submitter(self) -> None:
        rng = random.Random()
        while time.monotonic() < self.deadline:
            count = rng.choice([1, 1, 1, 5, 20])
            args = ["gqsub", "-t", f"1-{count}"] if count > 1 else ["gqsub"]
            proc = self.g.run(*args, input=self.script, timeout=120)
            if proc.returncode == 0:
                with self.lock:
                    self.accepted.update(int(x) for x in proc.stdout.split())
            with self.lock:
                backlog = len(self.accepted) - self.ended_count()
            if backlog > 400:  # keep the queue bounded: the point is faults, not a backlog
                self.pause(1)  # pacing, not synchronisation: the queue drains meanwhile

    def ended_count(self) -> int:
        return len((self.marks / "runs").read_text().splitlines())

    def pause(self, seconds: float) -> None:
        """Let `seconds` of the soak pass (less once it is over)."""
        self.over.wait(max(0.0, min(seconds, self.deadline - time.monotonic())))

    # ---- the faults ------------------------------------------------------
    def faulter(self) -> None:
        rng = random.Random()
        while time.monotonic() < self.deadline:
            self.pause(rng.uniform(3, 12))  # the time between faults
            fault = rng.choice(["controller", "controller", "shepherd", "disk"] if self.mounted
                               else ["controller", "shepherd"])
            if getattr(self, "kill_" + fault)(rng):
                self.faults[fault] += 1

    def kill_controller(self, rng) -> bool:
        self.g.crash(self.ctl)
        self.pause(rng.uniform(0, 1.5))  # how long the host has no controller
        self.start_controller()
        return True

    def start_controller(self) -> None:
        """Start the controller, again and again for a minute if it refuses
        (as systemd would): on a full disk it cannot start."""
        for _ in range(60):
            try:
                self.ctl = self.g.start()
                return
            except AssertionError:
                self.refused += 1
                self.over.wait(1)
        self.ctl = self.g.start()

    def kill_shepherd(self, rng) -> bool:
        for start in sorted(self.g.home.glob("jobs/*/runs/*.start"), key=lambda p: -p.stat().st_mtime)[:5]:
            job = int(start.parent.parent.name)
            if (start.parent / start.name.replace(".start", ".exit")).exists():
                continue
            try:
                pid = json.loads(start.read_text())["shepherd"]["pid"]
                os.kill(pid, 9)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            with self.lock:
                self.shepherd_killed.add(job)
            return True
        return False

    def kill_disk(self, rng) -> bool:
        """A full disk for a few seconds."""
        filler = self.g.home / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", f"count={HOME_MB + 50}"], capture_output=True)
        self.pause(rng.uniform(2, 5))  # how long the disk stays full
        filler.unlink()
        return True

    # ---- the end ---------------------------------------------------------
    def run(self) -> int:
        self.start_controller()
        threads = [threading.Thread(target=self.submitter) for _ in range(3)]
        threads.append(threading.Thread(target=self.faulter))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.ctl.poll() is not None:
            self.start_controller()
        rows = self.wait_ended()
        return self.report(rows)

    def states(self) -> dict[int, dict]:
        proc = self.g.run("gqstat", "--json", timeout=120)
        return {row["id"]: row for row in json.loads(proc.stdout or "[]")}

    def wait_ended(self) -> dict[int, dict]:
        try:
            return wait_for(lambda: (rows := self.states()) and all(
                rows.get(j, {}).get("state") in ("finished", "failed") for j in self.accepted) and rows,
                600, "every accepted job to end")
        except AssertionError:
            return self.states()

    def report(self, rows: dict[int, dict]) -> int:
        runs: dict[int, int] = {}
        for line in (self.marks / "runs").read_text().splitlines():
            job = int(line.split()[0])
            runs[job] = runs.get(job, 0) + 1
        lost = [j for j in self.accepted if rows.get(j, {}).get("state") not in ("finished", "failed")]
        twice = [j for j, n in runs.items() if n > 1]
        wrong = [j for j in self.accepted if j not in lost and rows[j].get("exit") not in (
            {expected_exit(j), 255} if j in self.shepherd_killed else {expected_exit(j)})]
        faults = sum(self.faults.values())
        if lost or twice or wrong:
            print(f"lost {sorted(lost)[:20]} twice {sorted(twice)[:20]}")
            for j in sorted(lost)[:5]:
                print(f"lost: job {j} {rows.get(j)} events {self.g.events(j)}")
            for j in sorted(wrong)[:10]:
                print(f"wrong: job {j} {rows[j]} events {self.g.events(j)}")
        print(f"faults: {self.faults}; controller starts refused on a full disk: {self.refused}")
        print(f"soak: {len(runs)} jobs run, {faults} faults injected, {len(lost)} jobs lost, "
              f"{len(twice)} jobs run twice, {len(wrong)} wrong exit values")
        return 1 if lost or twice or wrong else 0

    def cleanup(self) -> None:
        self.g.cleanup()
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.g.home)])


def main() -> int:
    minutes = float(os.environ.get("SOAK_MINUTES", "30"))
    base = Path(tempfile.mkdtemp(prefix="gsat-soak."))
    soak = Soak(base, minutes)
    try:
        return soak.run()
    finally:
        soak.cleanup()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
