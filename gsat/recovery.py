"""How a starting controller takes on what is on disk, and how it finds a
running job's process group.  Functions over a Controller's tables.

At start (after the watch is set) the controller walks jobs/ in id order,
then runs the services of events left in its outbox (gsat.services).  At
each heartbeat it also takes on, by the same rules, the submissions that
no message announced.  The rules:

- a job directory that is a symlink, another user's, or writable by others
  (gsat.trust) is set aside: logged once, never taken on, run or deleted;
- a job without state.json is a submission nobody took on: it becomes ours
  (unless pinned to another host) and is queued or held;
- an active job of ours is loaded; if it was running, its current attempt
  N decides:
    runs/N.exit exists          the run ended while we were down: record it
    runs/N.start missing        we crashed between saving "running" and the
                                shepherd's start; fence N (create the file
                                first) so a late shepherd cannot run, requeue
    start record, other boot    lost (exit 255)
    shepherd still alive        adopt it: wait on a pidfd, not as a child
    shepherd gone, no exit      lost (exit 255)

A power cut: neither the "running" state nor the state a run's end leads
to (finished, failed, queued for a restart) is fsynced: the first is on the
path from submit to start, the second on the path from a job's end to
gqwait, and the durable run records rebuild both.  After a power cut
state.json may show the job as it was before that start or that end.  A run
that ended before the cut has a durable N.exit, and the fsync of runs/ that
made it durable made N.start durable too.  If state.json says "running N",
N.exit is read as at any restart; if it says the job was queued, it is
started again as the same attempt N, the new shepherd finds N.start taken
(fenced) and the controller reads the old N.exit.  Either way a finished
run never runs twice and its end is recorded again with the same exit value
(its events fire again: at least once).  A run the cut interrupted is run
again, or recorded lost when its N.start survived, as before.  A run that
left no exit record, and a delete, are saved with fsync.
"""

import logging
import os
import time

from gsat import crashpoint, eventlog, jobs, mishap, procinfo, services, shepherd, states, summary
from gsat.errors import Damaged, GsatError, NoSuchJob, Untrusted

log = logging.getLogger(__name__)


def recover(ctrl) -> None:
    rows: list[str] = []
    for job_id in jobs.job_ids(ctrl.layout):
        ctrl.max_seen = max(ctrl.max_seen, job_id)
        try:
            take_on(ctrl, job_id, rows)
        except Exception:  # one damaged job directory must not keep the others from running
            log.exception("job %d: cannot take it on; skipped", job_id)
    try:
        summary.rewrite(ctrl.layout, rows)  # compacted, from the state.json files just read
    except (OSError, GsatError) as exc:  # a full disk (HomeUnusable): gqstat renders the times itself
        log.warning("cannot rewrite the summary: %s", exc)
        summary.discard(ctrl.layout)
    for entry in services.pending(ctrl.layout):
        _redispatch(ctrl, entry["job"], entry["event"])


def take_on_untold(ctrl) -> None:
    """Jobs stored while their message could not be sent (a full spool) or was
    lost: the controller looks at each heartbeat, not only when it starts.
    jobs/ is listed only when its mtime moved (a rename into it moves it),
    and not while announced jobs wait to be taken on (a burst goes on in
    batches; the next heartbeat after it looks)."""
    if ctrl.announced:
        return
    try:
        mtime = os.stat(ctrl.layout.jobs).st_mtime_ns
    except OSError:
        return
    if mtime == ctrl.jobs_mtime:
        return
    ctrl.jobs_mtime = mtime
    for found in jobs.job_ids(ctrl.layout):
        if found > ctrl.max_seen:
            take_on(ctrl, found)
            if found in ctrl.jobs:
                ctrl.max_seen = found


def _redispatch(ctrl, job_id: int, event: dict) -> None:
    """Run the services of an event recorded before a crash (at least once)."""
    try:
        job = jobs.load(ctrl.layout, job_id, deleted_ok=True)
    except NoSuchJob:
        return services.done(ctrl.layout, event)
    jobdir = ctrl.layout.job_dir(job_id)
    if event["id"] not in {e.get("id") for e in eventlog.read(jobdir)}:
        eventlog.append(jobdir, event)  # the crash came between outbox and event log
    log.info("job %d: running the services of %s %s after a restart", job_id, event["name"], event["id"])
    ctrl.dispatcher.dispatch(job, event, ctrl.dispatcher.services_for(job, event["name"]))
    services.done(ctrl.layout, event)


def take_on(ctrl, job_id: int, rows: list | None = None) -> None:
    """Load job `job_id` into the controller if it is active and ours; add
    the summary row of every job of ours to `rows` (a start-up's snapshot).
    Nothing is taken on while the store is not trusted (gsat.guard), nor
    from a job directory that is not ours (set aside).  A job that breaks
    the code here (a bug: not a GsatError or an OSError) fails (gsat.mishap)."""
    try:
        _take_on(ctrl, job_id, rows)
    except (GsatError, OSError):
        raise
    except Exception as exc:  # one job must not keep the others from being taken on
        job = ctrl.jobs.get(job_id)
        if job is None:
            raise
        mishap.fail(ctrl, job, "cannot take it on", exc, time.time())


def _take_on(ctrl, job_id: int, rows: list | None) -> None:
    if job_id in ctrl.jobs or ctrl.distrust or job_id in ctrl.set_aside:
        return
    try:
        job = jobs.load(ctrl.layout, job_id, deleted_ok=True)
    except Untrusted as exc:
        return set_aside(ctrl, job_id, str(exc))
    except Damaged as exc:  # listed as damaged by gqstat; gqdel removes it
        log.warning("%s; left alone", exc)
        return
    except NoSuchJob:
        return
    st = job.state
    if st.host is None:  # a new submission
        if job.spec.get("host") not in (None, ctrl.host) or not ctrl.intake.ready(job):
            return  # another host's, or an element of an array not stored whole (gsat.arrays)
        st.host = ctrl.host  # claimed in memory; state.json is first written when it changes
        ctrl.track(job)
        crashpoint.at("takeon.claimed")
        # a start takes on again what an earlier controller took on and never saved: its QSUB is told once
        seen = ctrl.dispatcher.recorded(job) if rows is not None else None
        ctrl.dispatcher.announce(job, ctrl.dispatcher.record(job, states.QSUB, seen=seen))
    elif st.host != ctrl.host:
        return
    elif st.state in states.ACTIVE:
        ctrl.track(job)
        if st.state == states.RUNNING and (job_id, st.attempt) not in ctrl.children.values():
            ctrl.recovered[job_id] = True
            _readopt(ctrl, job)
            if st.state == states.RUNNING and st.pending:  # a gqdel/gqhold the crash interrupted
                ctrl._interrupt(job, st.pending, _pending_signal(ctrl, job), time.time())
    if rows is None:
        ctrl.note(job)
    else:
        rows.append(summary.row(job))  # as it is now, after any recovery above


def set_aside(ctrl, job_id: int, reason: str) -> None:
    """Never take job `job_id` on (until a restart looks again); say so once."""
    ctrl.set_aside[job_id] = reason
    log.warning("set aside: %s", reason)


def _readopt(ctrl, job) -> None:
    jobdir = str(ctrl.layout.job_dir(job.id))
    attempt = job.state.attempt
    if shepherd.read_exit(jobdir, attempt) is not None:
        return ctrl.end_or_retry((job.id, attempt), time.time())
    record = shepherd.read_start(jobdir, attempt)
    if record is None and shepherd.fence(jobdir, attempt):
        record = shepherd.FENCED
    record = record or shepherd.read_start(jobdir, attempt)
    if record.get("fenced"):
        log.info("job %d: start %d never ran; queued again", job.id, attempt)
        ctrl._transition(job, "requeue", time.time())
        return
    ident = record["shepherd"]
    if procinfo.alive(ident) and _watch(ctrl, job, ident["pid"]):
        log.info("job %d: adopted shepherd %d", job.id, ident["pid"])
        return
    ctrl.end_or_retry((job.id, attempt), time.time())  # reads the exit record if it appeared meanwhile


def _pending_signal(ctrl, job) -> int:
    import signal
    return ctrl._jobtype(job).hold_signal if job.state.pending == "hold" else signal.SIGTERM


def _watch(ctrl, job, pid: int) -> bool:
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    ctrl.adopted[pidfd] = (job.id, job.state.attempt)
    return procinfo.start_ticks(pid) is not None
