"""The controller's guard: it acts on its store only while it trusts it.

Functions over a Controller.  `trusted(ctrl)` asks gsat.trust about every
directory the controller uses (GSAT_HOME, jobs/, spool/HOST/ with tmp/
new/ bad/ reply/, hosts/HOST/) and every file it reads as code or config
(config.yaml, its cache, job types, the user's services) at the start of every step: so at every
heartbeat, and before anything a scan finds or a message announces is taken
on.  A `chmod 777 $GSAT_HOME` while a controller runs would otherwise let
another user move jobs/ aside and plant a job that runs as the victim.

While the answer is a reason, `hold_still(ctrl, now)` is the whole step:
no message is read, no job taken on, started, ended or deleted, no service
fired, nothing written to the store.  Runs that end meanwhile are noted in
memory (their exit records are durable) and recorded once trust is back.
One line is logged when trust is lost, one when it is back, and one each
time the reason changes (a mode mended, but a file another user planted
meanwhile still there: the line names it); in between the
controller looks again every TRUST_RETRY seconds (the heartbeat interval if
shorter) and writes only its heartbeat, with "untrusted": the reason
(gqnodes shows the host `untrusted`).

Imports: adapters and domain only; never the controller.
"""

import logging

from gsat import heartbeat, states, trust
from gsat.errors import GsatError

log = logging.getLogger(__name__)

TRUST_RETRY = 2.0  # seconds between looks while the store is not trusted


def trusted(ctrl) -> bool:
    """Whether every directory `ctrl` uses is trusted now; ctrl.distrust says
    why not.  Logs one line when the answer changes."""
    reason = trust.store_problem(ctrl.layout)
    if reason and not ctrl.distrust:
        log.error("GSAT_HOME is not trusted any more: %s; taking on, starting and recording "
                  "nothing until it is restored", reason)
        ctrl.next_beat = 0.0  # at once: a heartbeat that says so, then a look every TRUST_RETRY
    elif reason and reason != ctrl.distrust:  # e.g. the mode mended, a planted file left behind
        log.error("GSAT_HOME is still not to be trusted, now because %s", reason)
    elif ctrl.distrust and not reason:
        log.warning("GSAT_HOME is trusted again: carrying on")
        ctrl.next_beat = 0.0  # at once: a heartbeat, and a look at jobs/
    ctrl.distrust = reason
    return reason is None


def hold_still(ctrl, now: float) -> None:
    """The step of a controller that does not trust its store: read the
    shepherds' pipe (or it would wake the loop again at once), keep the
    ends for later, and beat (best effort: the one line said why already)."""
    ctrl._read_told_ended()
    if now < ctrl.next_beat and not ctrl.stopping:
        return
    interval = min(TRUST_RETRY, ctrl.config["heartbeat_interval"])
    ctrl.next_beat, ctrl.last_beat = now + interval, now
    running = sorted(j.id for j in ctrl.jobs.values() if j.state.state == states.RUNNING)
    record = heartbeat.compose(ctrl.config, ctrl.started, now, not ctrl.stopping, running, interval)
    try:
        heartbeat.write(ctrl.layout, dict(record, untrusted=ctrl.distrust))
    except (GsatError, OSError):
        pass
