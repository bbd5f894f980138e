"""Signalling a job: always its whole process group (os.killpg, never
/bin/kill), found from the shepherd's start record of the current attempt
and only while that shepherd lives and has written no exit record, so a
reused pid is never hit.

A run declared lost (its shepherd died without an exit record: kill -9 of
the shepherd) may leave its process group running untracked; kill_lost
SIGKILLs it.  The group is the job's pid (job_pid in runs/N.start), and a
reused number is told apart by the start ticks of its leader (job_ticks):
while the leader lives (or is a zombie) its number cannot be anyone
else's, and once it is gone a group of that number can only be what is
left of the job's own (Linux gives no process a pid that is in use as a
process group id).  A record from another boot is never acted on.  A
shepherd killed between the spawn and that record leaves no job_pid: then
the job is found by what it inherited, the GSAT_JOBDIR and GSAT_RUN of
that run in its environment, as the leader of its own session."""

import os
import signal
import time

from gsat import procinfo, shepherd
from gsat.errors import Refused

# the job's process group is orphaned (its own session): the kernel drops these
# when their default action is to stop, so a SIGSTOP follows them
STOP_LIKE = frozenset({signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})


def job_pgid(layout, job) -> int | None:
    """The job's process group (its pid), once its shepherd has published it
    (after the job's exec, so the group surely exists); None before, and
    after: once the exit record exists (a pooled shepherd lives on), or the
    shepherd is gone."""
    jobdir = str(layout.job_dir(job.id))
    record = shepherd.read_start(jobdir, job.state.attempt) or {}
    if record.get("job_pid") is None or not procinfo.alive(record.get("shepherd")):
        return None
    if os.path.lexists(shepherd.exit_path(jobdir, job.state.attempt)):
        return None
    return record["job_pid"]


def kill_lost(layout, job, attempt: int) -> bool:
    """SIGKILL what is left of run `attempt` of `job` when it ended without
    an exit record; True when a group was signalled."""
    jobdir = str(layout.job_dir(job.id))
    record = shepherd.read_start(jobdir, attempt) or {}
    if shepherd.read_exit(jobdir, attempt) is not None:
        return False
    if (record.get("shepherd") or {}).get("boot") != procinfo.boot_id():
        return False
    pgid = record.get("job_pid")
    if pgid is None:  # the shepherd died before it could say
        return any([_kill_group(leader) for leader in _leaders_of_run(jobdir, job.state.run)])
    if not isinstance(pgid, int) or pgid <= 1:
        return False
    ticks = procinfo.start_ticks(pgid)
    if ticks is not None and ticks != record.get("job_ticks"):
        return False  # that pid is another process now (or the record predates job_ticks)
    return _kill_group(pgid)


def _kill_group(pgid: int) -> bool:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _leaders_of_run(jobdir: str, run: int) -> list[int]:
    """Our session leaders whose environment names this job directory and
    run: the job itself, which no other process's environment does."""
    marks = {f"GSAT_JOBDIR={jobdir}".encode(), f"GSAT_RUN={run}".encode()}
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = set(f.read().split(b"\0"))
            if marks <= env and os.getsid(int(name)) == int(name) and os.stat(f"/proc/{name}").st_uid == os.geteuid():
                found.append(int(name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def signal_job(layout, job, sig: int, just_started: bool) -> None:
    """Send `sig` to the job's group; Refused when there is none.  A job whose
    shepherd was forked a moment ago gets up to 2 s to publish its pid."""
    pgid = job_pgid(layout, job)
    deadline = time.monotonic() + 2.0
    while pgid is None and just_started and time.monotonic() < deadline:
        time.sleep(0.001)
        pgid = job_pgid(layout, job)
    if pgid is None:
        raise Refused(f"job {job.id}: its process group cannot be found (ended a moment ago?)")
    try:
        os.killpg(pgid, sig)
        if sig in STOP_LIKE:
            os.killpg(pgid, signal.SIGSTOP)
    except ProcessLookupError:
        pass
