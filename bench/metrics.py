"""The measurements.  Each returns a list of samples in seconds (or a rate,
CPU seconds, MB, as its name says); run.py turns them into medians and p95.

Timestamps come from the jobs themselves: bash's $EPOCHREALTIME as the
job's first (or last) instruction, compared with the bench's time.time()
when the submit call returned (or the wait command exited).  Waiting for a
job's timestamp file polls every millisecond: the bench may poll, gsat may
not.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from systems import Gsat, VENV_BIN

TIMEOUT = 120.0


def python_floor(calls: int) -> list[float]:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples.append(time.perf_counter() - start)
    return samples


def per_system(system, folder: Path, n: dict) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    trivial = script(folder / "trivial.sh", ":\n")
    out = {
        "submit call": [system.submit(trivial)[1] for _ in range(n["calls"])],
        "submit → first instruction": start_latency(system, folder, n["samples"]),
        "last instruction → wait returns": wait_latency(system, folder, n["samples"]),
        f"{n['jobs']} jobs, separate submits (jobs/s)": [throughput(system, trivial, n["jobs"])],
        f"list with {n['jobs'] + n['calls']}+ in history": list_latency(system),
    }
    if isinstance(system, Gsat):
        out[f"{n['jobs']} jobs, one array gqsub -t (jobs/s)"] = [throughput(system, trivial, n["jobs"], True)]
        out["trigger call"] = trigger_latency(system, folder, n["calls"])
    return out


def gsat_only(tmp: Path, n: dict) -> dict:
    out: dict[str, dict] = {}
    for channel, watch, interval in (("sysv", "auto", 0.5), ("file", "poll", 0.5)):
        system = Gsat(tmp / f"gsat-{channel}-{watch}", channel, watch, interval)
        system.start()
        try:
            folder = tmp / f"jobs-{system.name}"
            folder.mkdir()
            out.setdefault("submit → first instruction", {})[system.name] = \
                start_latency(system, folder, n["samples"])
            if watch != "poll":
                out.setdefault("last instruction → wait returns", {})[system.name] = \
                    wait_latency(system, folder, n["samples"])
        finally:
            system.stop()
    for count in n["history"]:
        system = Gsat(tmp / f"gsat-history-{count}")
        fake_history(system.root, count)
        system.start()  # as in real life, a controller has seen them (and written its summary)
        system.stop()
        out[f"gqstat with {count} jobs in history"] = {"gsat": list_latency(system)}
    idle = Gsat(tmp / "gsat-idle")
    out.update(idle_figures(idle, n["idle"], "empty"))
    out.update(idle_figures(Gsat(tmp / f"gsat-history-{n['history'][-1]}"), n["idle"],
                            f"{n['history'][-1]} jobs"))
    return out


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)
    return path


def start_latency(system, folder: Path, samples: int) -> list[float]:
    out = []
    for i in range(samples):
        stamp = folder / f"start-{i}"
        job, _ = system.submit(script(folder / f"start-{i}.sh", f"echo $EPOCHREALTIME > {stamp}.t; mv {stamp}.t {stamp}\n"))
        returned = time.time()
        out.append(float(wait_file(stamp)) - returned)
        system.wait(job)
    return out


def wait_latency(system, folder: Path, samples: int) -> list[float]:
    out = []
    for i in range(samples):
        stamp = folder / f"end-{i}"
        body = f"sleep 0.3\necho $EPOCHREALTIME > {stamp}\n"
        job, _ = system.submit(script(folder / f"end-{i}.sh", body))
        subprocess.run(system.wait_argv(job), env=system.env, capture_output=True, timeout=TIMEOUT)
        out.append(time.time() - float(wait_file(stamp)))
    return out


def throughput(system, trivial: Path, jobs: int, array: bool = False) -> float:
    start = time.perf_counter()
    if array:
        ids = system.submit_array(trivial, jobs)
    else:
        ids = [system.submit(trivial)[0] for _ in range(jobs)]
    if isinstance(system, Gsat):
        subprocess.run([*system.wait_argv(ids[0]), *ids[1:]], env=system.env, capture_output=True)
    else:
        for job in ids[-2:]:  # both slots' last jobs (nq: the last is last)
            system.wait(job)
    return jobs / (time.perf_counter() - start)


def list_latency(system, runs: int = 10) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(system.list_argv(), env=system.env, capture_output=True, check=True)
        out.append(time.perf_counter() - start)
    return out


def trigger_latency(system: Gsat, folder: Path, calls: int) -> list[float]:
    job, _ = system.submit(script(folder / "target.sh", ":\n"))
    system.wait(job)
    out = []
    for i in range(calls):
        start = time.perf_counter()
        subprocess.run([system.bin("trigger"), "--job", job, "benchEvent", str(i)],
                       env=system.env, check=True, capture_output=True)
        out.append(time.perf_counter() - start)
    return out


def idle_figures(system: Gsat, seconds: float, label: str) -> dict:
    import psutil
    system.start()
    try:
        proc = psutil.Process(system.controller_pid())
        wait_until(lambda: proc.cpu_percent(0.2) < 5)  # start-up scan over
        before = sum(proc.cpu_times()[:2])
        time.sleep(seconds)
        cpu = sum(proc.cpu_times()[:2]) - before
        rss = proc.memory_info().rss / 1e6
    finally:
        system.stop()
    return {f"idle controller {seconds:g} s, {label} (CPU s)": {"gsat": {"median": cpu, "p95": cpu, "n": 1}},
            f"idle controller RSS, {label} (MB)": {"gsat": {"median": rss, "p95": rss, "n": 1}}}


def fake_history(home: Path, count: int) -> None:
    """`count` finished jobs, written as the controller would have left them, with
    times as a real history has them: one job every 3.7 s, each running a while
    (identical times would let gqstat format one timestamp for all)."""
    jobs = home / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    first = time.time() - count * 3.7
    spec = {"name": "hist", "args": [], "workdir": "/tmp", "stdout": None, "stderr": None,
            "join": False, "env": {"PATH": "/usr/bin:/bin"}, "host": None, "jobtype": "default",
            "hold": False, "mail_events": "", "mail_to": [], "on": [], "array": None,
            "user": "bench", "uid": os.getuid(), "submit_host": "bench", "submit_dir": "/tmp",
            "submit_home": "/tmp", "script_name": "hist.sh"}
    for job in range(1, count + 1):
        submitted = first + job * 3.7
        state = {"state": "finished", "host": "bench", "run": 1, "attempt": 1, "restarts": 0,
                 "started": submitted + 0.25, "ended": submitted + 0.25 + (job % 97) * 1.3, "exit": 0,
                 "suspended": False, "pending": None}
        folder = jobs / f"{job:07d}"
        folder.mkdir(mode=0o700)
        (folder / "job.json").write_text(json.dumps({**spec, "submitted": submitted}))
        (folder / "state.json").write_text(json.dumps(state))
        (folder / "script").write_text("#!/bin/sh\n:\n")
    (home / "nextid").write_text(f"{count + 1}\n")


def wait_file(path: Path) -> str:
    wait_until(path.exists)
    return path.read_text().strip()


def wait_until(predicate, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("bench: gave up waiting")
        time.sleep(0.001)


__all__ = ["per_system", "gsat_only", "python_floor", "VENV_BIN"]
