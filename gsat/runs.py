"""How the controller runs jobs: a part of the Controller class (a mixin),
kept in its own file because it is one concern.

A start saves "running" (without fsync: gsat.recovery), then hands the run
to an idle pooled shepherd (gsat.spare), or forks one.  The end comes by
one of three roads, and whichever comes first ends the run (the attempt
check in _shepherd_ended makes the others no-ops): the shepherd's "JOB RUN
PID" line on the `ended` pipe (the usual one), SIGCHLD and waitpid (a
forked shepherd's exit, or one killed before it could tell), or the pidfd
of a shepherd adopted from a former controller.  run_ended reads the exit
record and decides what follows: the pending delete or hold, a restart,
finished or failed.  Stopping a run (gqdel, gqhold: the signal, then SIGKILL
after the grace) is here too.  Imports: adapters and domain only.
"""

import logging
import os
import signal
import time

from gsat import crashpoint, fifo, killing, messages, mishap, scheduler, shepherd, states
from gsat.dispatcher import Untold
from gsat.errors import EXIT_LOST, EXIT_NOT_STARTED, GsatError, Refused
from gsat.jobs import Job, State, change_state

log = logging.getLogger(__name__)

# the crash point (gsat.crashpoint) just after a transition's state is saved
SAVED_POINTS = {"hold": "control.hold", "release": "control.release", "delete": "control.delete",
                "finish": "end.saved", "fail": "end.saved", "restart": "end.saved"}


class Runs:
    def _start_ready(self, now: float) -> None:
        if self.stopping:
            return
        running = [self.jobs[j] for j, _ in [*self.children.values(), *self.adopted.values()]
                   if j in self.jobs and self.jobs[j].state.state == states.RUNNING]
        ready = scheduler.pick(self.queue, self.jobs, running, self.config["scheduler"], self.config["slots"])
        for job in ready:
            self._start(job, now)

    def _start(self, job: Job, now: float) -> None:
        started = self._mark_started(job, now)
        if started is None:
            return
        crashpoint.at("start.saved")
        try:
            pid = self._shepherd_for(self._run_spec(job))
        except Exception as exc:  # no fork (EAGAIN, ENOMEM), or a job.json it cannot run:
            log.exception("job %d: cannot start a shepherd", job.id)  # the run is lost, not the controller
            if not isinstance(exc, OSError):
                job.state.reason = f"cannot start: {exc!r}"
            self._announce_start(job, started)
            self.end_or_retry((job.id, job.state.attempt), now)
            return
        self.children[pid] = (job.id, job.state.attempt)
        crashpoint.at("start.handed")
        self.running_changed = True
        self._announce_start(job, started)

    def _announce_start(self, job: Job, started: tuple) -> None:
        try:
            self.dispatcher.announce(job, started)
        except Exception:  # the run goes on, and its end is recorded as usual
            log.exception("job %d: cannot tell its start", job.id)

    def _mark_started(self, job: Job, now: float) -> tuple | None:
        """Save the job as running, its JOB_START on disk first (a crash after
        the start cannot lose it): that recorded event, or None when it does
        not start now: rejected (its job type), queued again (the disk is
        full: a later step tries again), or failed (a bug: gsat.mishap)."""
        before = State(**job.state.as_dict())
        try:
            problem = self._jobtype_problem(job)
            if problem:
                return self._reject(job, problem, now)
            started = self.dispatcher.record(job, change_state(job, "start", now))
            job.state.host = self.host
            self._save(job, sync=False)  # no fsync: see "a power cut" in gsat.recovery
            return started
        except (GsatError, OSError) as exc:
            job.state = before
            log.error("job %d: cannot start it now (tried again later): %s", job.id, exc)
            self.track(job)
        except Exception as exc:  # one job's bug must not stop the others
            job.state = before
            mishap.fail(self, job, "cannot start", exc, now, EXIT_NOT_STARTED)
        return None

    def _jobtype_problem(self, job: Job) -> str | None:
        """Why the job's type cannot be used now (its file went missing or
        wrong after the job was submitted), or None."""
        name = job.spec.get("jobtype", "default")
        try:
            self.catalog.get(name)
        except (GsatError, OSError) as exc:
            return f"job type {name} is unusable: {exc}"
        return None

    def _reject(self, job: Job, reason: str, now: float) -> None:
        """A queued job that cannot start fails at once with `reason`, never
        half-started: no JOB_START, gqwait returns, gqdel and gqhold work."""
        log.error("job %d cannot start: %s", job.id, reason)
        job.state.exit, job.state.reason = EXIT_NOT_STARTED, reason
        self._transition(job, "reject", now)

    def _shepherd_for(self, spec: shepherd.RunSpec) -> int:
        """The pid of the shepherd that runs `spec`: an idle pooled one, or a new fork."""
        return self.pool.start(spec) or shepherd.start(spec)

    def _fill_pool(self) -> None:
        if time.monotonic() < self.pool_retry:
            return
        try:
            self.pool.fill()
        except OSError as exc:  # no fork now: starts fork their own shepherds meanwhile
            log.warning("cannot fork a shepherd for the pool: %s", exc)
            self.pool_retry = time.monotonic() + 10.0

    def _run_spec(self, job: Job) -> shepherd.RunSpec:
        return shepherd.run_spec(self.layout, job, self.dispatcher.run_env(job), self._notify_from_orphan,
                                 self.ended_w)

    def _notify_from_orphan(self, job_id: int, run: int) -> None:
        """Runs in an orphaned shepherd: tell whichever controller runs now."""
        self.channel.send(messages.Exited(job=job_id, run=run))

    def _runs_told_ended(self, now: float) -> None:
        """End the runs our shepherds reported on the pipe.  A pooled shepherd
        is then idle again; a forked one exits, and its SIGCHLD finds the run
        over (the attempt check in _shepherd_ended)."""
        self._read_told_ended()
        for _ in range(len(self.told_ended)):
            job_id, run, pid = self.told_ended.popleft()
            if self.pool.ended(pid):
                self.children.pop(pid, None)
            self.end_or_retry((job_id, run), now)

    def end_or_retry(self, run: tuple, now: float) -> None:
        """End `run` (job id, attempt) if it is its job's current one.  Every
        road by which an end arrives comes here: when the end cannot be saved
        (a full disk), it is kept in told_ended and tried again at every
        wake-up (at most a second apart) until it is, with the exit record's
        real value."""
        try:
            self._shepherd_ended(run, now)
        except (GsatError, OSError) as exc:
            log.error("job %d: cannot record the end of run %d (tried again in a second): %s",
                      run[0], run[1], exc)
            if run[0] in self.jobs:  # its events may be in events.log already: the retry finds them there
                self.recovered.setdefault(run[0], False)
            self.told_ended.append((run[0], run[1], 0))
        except Exception as exc:  # a bug must not leave the job running forever
            if run[0] in self.jobs:
                mishap.fail(self, self.jobs[run[0]], f"cannot record the end of run {run[1]}", exc, now)

    def _read_told_ended(self) -> None:
        """Take the "JOB RUN PID" lines waiting on the pipe into told_ended."""
        self.told_ended.extend(shepherd.ended_runs(fifo.read(self.ended_r)))

    def _reap_children(self, now: float) -> None:
        self.flags.discard("child")  # the flag only woke us; waitpid is the truth
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.services.running:
                self.dispatcher.service_ended(self.services.reaped(pid, status))
                continue
            self.pool.gone(pid)
            run = self.children.pop(pid, None)
            if run:
                self.end_or_retry(run, now)

    def _adopted_ended(self, pidfd: int, now: float) -> None:
        os.close(pidfd)
        self.end_or_retry(self.adopted.pop(pidfd), now)

    def _shepherd_ended(self, run: tuple | None, now: float) -> None:
        """A shepherd is gone: if its run is still the job's current one, end it."""
        job = self.jobs.get(run[0]) if run else None
        if job and job.state.state == states.RUNNING and job.state.attempt == run[1]:
            self.run_ended(job, now)

    def run_ended(self, job: Job, now: float) -> None:
        """The current run of `job` is over: record it and decide what follows.
        When that cannot be saved (a full disk) the job is left as it was, to
        be ended again later (its events then fire again: at least once)."""
        self.running_changed = True
        self.kill_at.pop(job.id, None)  # a SIGKILL due for this run must not hit the next
        before = State(**job.state.as_dict())
        try:
            record = shepherd.read_exit(str(self.layout.job_dir(job.id)), job.state.attempt)
            job.state.exit = record["exit"] if record else EXIT_LOST
            if record is None:
                log.warning("job %d: run %d ended without an exit record: lost", job.id, job.state.attempt)
                self.kill_lost(job)
            # a run that recovery found ended may have had its events recorded before the crash
            seen = self._seen(job)
            ended = self.dispatcher.record(job, states.JOB_TERMINATION, seen=seen, exit=job.state.exit)
            action = self._after_run(job)
            # no fsync: the durable exit record rebuilds this state after a power cut
            # (gsat.recovery), unless the run left none or a delete removes it
            self._transition(job, action, now, sync=record is None or action == "delete", first=(ended,),
                             seen=seen)
            self.recovered.pop(job.id, None)
        except Exception:
            job.state = before  # as it was: the end is tried again, or the job fails (end_or_retry)
            raise

    def _seen(self, job: Job) -> dict | None:
        """The events an earlier try at this end may have recorded: after a
        crash (recovered True: services not started are the outbox's, see
        gsat.services) or by this controller's try that could not save
        (False: Untold, nothing of it was told); None for a first try."""
        if job.id not in self.recovered:
            return None
        seen = self.dispatcher.recorded(job)
        return seen if self.recovered[job.id] else Untold(seen)

    def kill_lost(self, job: Job) -> None:
        """Kill the process group a lost run may have left running (gsat.killing)."""
        if job.state.attempt and killing.kill_lost(self.layout, job, job.state.attempt):
            log.warning("job %d: killed the processes of its lost run %d", job.id, job.state.attempt)

    def _after_run(self, job: Job) -> str:
        st = job.state
        if st.pending:
            return st.pending
        jobtype = self._jobtype(job)
        if st.exit in jobtype.restart_on and st.restarts < jobtype.restart_limit:
            return "restart"
        return "finish" if st.exit == 0 else "fail"

    # ---- stopping a run -------------------------------------------------
    def _interrupt(self, job: Job, pending: str, sig: int, now: float) -> None:
        job.state.pending = pending
        self._save(job)
        crashpoint.at(SAVED_POINTS[pending])
        self._kill(job, sig)
        if job.state.suspended:
            self._kill(job, signal.SIGCONT)
        self.kill_at[job.id] = now + self.config["kill_grace"]

    def _escalate_kills(self, now: float) -> None:
        for job_id, when in list(self.kill_at.items()):
            if when <= now:
                del self.kill_at[job_id]
                job = self.jobs.get(job_id)
                if job and job.state.state == states.RUNNING:
                    log.info("job %d outlived its grace: SIGKILL", job_id)
                    self._kill_quietly(job, signal.SIGKILL)

    def _kill_quietly(self, job: Job, sig: int) -> None:
        try:
            self._kill(job, sig)
        except Refused as exc:
            log.warning("%s", exc)

    def _kill(self, job: Job, sig: int) -> None:
        killing.signal_job(self.layout, job, sig, (job.id, job.state.attempt) in self.children.values())
