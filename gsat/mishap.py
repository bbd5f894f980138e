"""When one job breaks the controller's code: that job fails, the loop goes on.

The damage checks (gsat.damage) keep job files of the wrong shape out; what
still raises something other than GsatError or OSError (a bug, a shape
nobody thought of) on a job's take-on, start or end must neither stop the
controller's step nor leave the job "running" forever with nobody to end
it.  `fail` logs the traceback and ends the job as failed with a reason
that gqstat -f shows, saved without events (what broke may be the events'
own code: the services of a job's "on"), and tells its waiters so that
gqwait returns.  If even that cannot be saved, the job is dropped from
memory: on disk it stays as it was until the controller starts again.
Functions over a Controller's tables, like gsat.recovery.
"""

import logging

from gsat import jobs, shepherd, states, summary
from gsat.errors import EXIT_LOST, GsatError

log = logging.getLogger(__name__)

REASON_LIMIT = 200  # a reason is one line of gqstat -f, not a traceback


def fail(ctrl, job, what: str, exc: BaseException, now: float, exit_value: int | None = None) -> None:
    """`what` (e.g. "cannot start") broke with `exc` for `job`: fail it."""
    log.error("job %d: %s", job.id, what, exc_info=exc)
    st = job.state
    if exit_value is None:
        exit_value = _exit_of(ctrl, job) if st.state == states.RUNNING else EXIT_LOST
    st.state, st.pending, st.suspended, st.exit, st.ended = states.FAILED, None, False, exit_value, now
    st.reason = f"{what}: {exc!r}"[:REASON_LIMIT]
    try:
        jobs.save(ctrl.layout, job)
        ctrl.summary_rows.append(summary.row(job))
    except Exception:  # nothing more to do for it now than say so
        log.exception("job %d: cannot save it as failed either; left as it is on disk", job.id)
    _forget(ctrl, job)
    try:
        ctrl.dispatcher.tell_waiters(job)
    except Exception:  # a waiter's FIFO must not undo the failing
        log.exception("job %d: cannot tell its waiters", job.id)


def _exit_of(ctrl, job) -> int:
    """The exit value of the job's current run from its exit record; lost without one."""
    try:
        record = shepherd.read_exit(str(ctrl.layout.job_dir(job.id)), job.state.attempt)
        return int(record["exit"]) if record else EXIT_LOST
    except (GsatError, OSError, KeyError, TypeError, ValueError):
        return EXIT_LOST


def _forget(ctrl, job) -> None:
    for table in (ctrl.jobs, ctrl.kill_at, ctrl.recovered):
        table.pop(job.id, None)
