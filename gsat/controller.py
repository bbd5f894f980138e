"""The controller (gsatlc): the one writer of the state of the jobs it owns.

The runs themselves (start, hand-off to a shepherd, the three roads by
which an end arrives) are in gsat.runs, a part of this class kept apart.
`step(now)` is one pass of the loop and reads as its table of contents:
handle the flags signal handlers set, end the runs whose shepherds said so
on the `ended` pipe, reap shepherds that ended, take the
channel's messages, escalate kills whose grace ran out, start what the
scheduler picks.  `run()` is `open(); while not stopping: step(); wait()`,
where wait() sleeps on the channel's watcher and the signal pipe with a
timeout only when something is due (idle means no CPU); before it sleeps
it forks a shepherd for the pool when none is idle (gsat.spare).  Persist first,
then act: a state change is written (atomically) before a shepherd is
forked, a waiter is told, or an event is announced; after a crash, see
gsat.recovery.  Imports: adapters and domain only; never CLI or mail gate.
"""

import collections
import functools
import heapq
import logging
import os
import signal
import time

from gsat import arrays, crashpoint, fifo, guard, heartbeat, jobs, jobtypes, messages, recovery
from gsat import signames
from gsat import states, summary
from gsat.channel import FileChannel, open_channel
from gsat.config import Config, share_dir
from gsat.dispatcher import Dispatcher
from gsat.errors import Damaged, GsatError, NoSuchJob, Refused, UsageError
from gsat.jobs import Job, change_state
from gsat.layout import Layout
from gsat.runs import SAVED_POINTS, Runs
from gsat.spare import Pool

log = logging.getLogger(__name__)

GAP_SCAN = 1000  # ids a submit may skip before the controller lists jobs/ instead
TAKE_ON_BATCH = 32  # announced jobs taken on per step: a big array's first ones start meanwhile
DEFERRED = object()  # handle() result: the answer is sent later (trigger --wait)

class Controller(Runs):
    def __init__(self, config: Config, channel=None):
        self.config = config
        self.host = config.host
        self.layout = Layout(config.home, self.host)
        self.layout.ensure()
        self.channel = channel or open_channel(config, self.layout)
        # the file inbox is always read too: a tool or job that was configured for
        # the file channel is still heard when this controller uses SysV
        self.channels = [self.channel]
        if not isinstance(self.channel, FileChannel):
            self.channels.append(FileChannel(self.layout, self.host))
        self.jobs: dict[int, Job] = {}          # the active jobs this controller owns
        self.children: dict[int, tuple] = {}    # shepherd pid -> (job id, attempt): own children
        self.adopted: dict[int, tuple] = {}     # pidfd -> (job id, attempt): a former controller's
        self.kill_at: dict[int, float] = {}     # job id -> when SIGKILL follows SIGTERM
        self.queue: list[int] = []              # heap of ids that became queued (gsat.scheduler)
        self.flags: set[str] = set()
        self.announced: collections.deque[int] = collections.deque()  # submitted ids not taken on yet
        self.summary_rows: list[str] = []  # appended to the summary at the end of the step
        self.stopping = False
        self.max_seen = 0
        self.jobs_mtime = None  # of jobs/, at the last look for submissions nobody told us of
        self.intake = arrays.Intake(self.layout, self.host)  # arrays not stored whole yet, leftovers
        self.watchers = []
        self.started = time.time()
        self.catalog = jobtypes.Catalog([self.layout.user_jobtypes(), share_dir() / "etc" / "jobtypes"])
        self.dispatcher = Dispatcher(self.layout, self.host, self.catalog, config["service_timeout"])
        self.replying = self.channel  # the channel of the message being handled
        self.services = self.dispatcher.runner
        self.next_beat = 0.0
        self.running_changed = False  # gqnodes shows running jobs within a second, not a beat later
        self.last_beat = 0.0
        # our shepherds write "JOB RUN" here once the exit record is durable (gsat.shepherd)
        self.ended_r, self.ended_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.told_ended: collections.deque[tuple] = collections.deque()  # read, not yet recorded
        self.pool = Pool(self.ended_w, self._notify_from_orphan, config["slots"])  # filled by run()
        self.pool_retry = 0.0  # monotonic time before which a failed fork is not tried again
        self.distrust: str | None = None  # why the store is not trusted now (gsat.guard); None: it is
        self.recovered: dict[int, bool] = {}  # job -> its end may be half recorded: after a crash (True), a failed save
        self.set_aside: dict[int, str] = {}  # job id -> why its directory is not ours (gsat.recovery)

    # ---- the loop --------------------------------------------------------
    def open(self) -> None:
        """Watch first, then scan: nothing that arrives meanwhile is missed."""
        self.watchers = [ch.watcher(self.config["watch"], self.config["poll_interval"]) for ch in self.channels]
        recovery.recover(self)
        self._settle_arrays(time.time())
        self._flush_summary()

    def step(self, now: float) -> None:
        self._handle_flags()
        if not guard.trusted(self):
            return guard.hold_still(self, now)
        self._runs_told_ended(now)
        self._reap_children(now)
        for channel in self.channels:
            for msg in channel.receive():
                self.replying = channel
                answer = self.handle(msg, now)
                if answer is not DEFERRED and msg.reply:
                    channel.answer(msg, answer)
        if getattr(self.channel, "lost", False):  # the SysV queue was removed and recreated
            self.channel.lost = False
            recovery.recover(self)
        self._take_on_announced()
        self._escalate_kills(now)
        self.services.kill_overdue(now)
        self._start_ready(now)
        if now >= self.next_beat or self.stopping or (self.running_changed and now >= self.last_beat + 1.0):
            self._beat(now)
        self._flush_summary()

    def run(self) -> None:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        for sig, flag in ((signal.SIGCHLD, "child"), (signal.SIGTERM, "stop"), (signal.SIGINT, "stop"),
                          (signal.SIGHUP, "stop"), (signal.SIGUSR1, "doorbell")):
            signal.signal(sig, lambda _s, _f, flag=flag: self.flags.add(flag))
        self.open()
        while not self.stopping:
            try:
                self.step(time.time())
            except Exception:  # a bug or a disk error must not take the host's jobs down
                log.exception("controller step failed; carrying on")
                time.sleep(0.5)
            if not self.stopping:
                self._fill_pool()
                self.wait(wake_r)
        self.pool.close()  # idle shepherds exit, busy ones after their run
        log.info("controller of %s stops; %d jobs keep running", self.host,
                 sum(1 for j in self.jobs.values() if j.state.state == states.RUNNING))

    def wait(self, wake_fd: int) -> None:
        fds = [wake_fd, self.ended_r, *(() if self.distrust else self.adopted)]
        fds += [w.fileno() for w in self.watchers if w.fileno() is not None]
        ready = fifo.wait(fds, self._timeout(time.time()))  # poll(): no FD_SETSIZE limit
        if wake_fd in ready:
            fifo.read(wake_fd)
        for watcher in self.watchers:
            watcher.drain()
        for fd in set(ready) & set(self.adopted):  # not polled while the store is not trusted
            self._adopted_ended(fd, time.time())

    def _timeout(self, now: float) -> float | None:
        if self.distrust:  # nothing else is due until trust is back: only the next look
            return max(0.0, self.next_beat - now)
        due = [w.interval for w in self.watchers if w.interval]
        due.append(max(0.0, (self.last_beat + 1.0 if self.running_changed else self.next_beat) - now))
        if self.announced or any(getattr(ch, "backlog", False) for ch in self.channels):
            due.append(0.0)  # more to take on, or messages of a flood's backlog (gsat.spool)
        if self.told_ended:  # ends that could not be recorded yet
            due.append(1.0)
        due += [max(0.0, t - now) for t in self.kill_at.values()]
        if self.services.next_deadline() is not None:
            due.append(max(0.0, self.services.next_deadline() - now))
        return min(due) if due else None

    def _beat(self, now: float) -> None:
        recovery.take_on_untold(self)
        self._settle_arrays(now)
        # idle (no active job), the controller wakes only for this: once a minute by default
        interval = self.config["heartbeat_interval"]
        if not self.jobs and not self.announced:
            interval = max(interval, self.config["idle_heartbeat_interval"])
        self.next_beat, self.last_beat = now + interval, now
        self.running_changed = False
        running = sorted(j.id for j in self.jobs.values() if j.state.state == states.RUNNING)
        try:
            record = heartbeat.compose(self.config, self.started, now, not self.stopping, running, interval)
            heartbeat.write(self.layout, record)
            for channel in self.channels:
                channel.housekeeping(now)
        except (GsatError, OSError) as exc:  # a full disk is HomeUnusable: skip this beat, not the step
            log.warning("heartbeat or housekeeping failed (skipped): %s", exc)

    def _settle_arrays(self, now: float) -> None:
        """Take on the arrays now stored whole; remove what dead submitters left (gsat.arrays)."""
        try:
            for job_id in self.intake.settle(now):
                recovery.take_on(self, job_id)
                if job_id in self.jobs:
                    self.max_seen = max(self.max_seen, job_id)
            self.intake.sweep_temporaries(now)
        except (GsatError, OSError) as exc:
            log.warning("cannot settle the arrays not stored whole: %s", exc)

    def _handle_flags(self) -> None:
        if "stop" in self.flags:
            self.stopping = True
        self.flags -= {"stop", "doorbell"}  # the doorbell only woke us; step() reads the channel

    # ---- messages --------------------------------------------------------
    def handle(self, msg: messages.Message, now: float) -> messages.Answer:
        """Carry out one message; the Answer says how it went, per job."""
        handler = getattr(self, "_on_" + msg.kind)
        try:
            if hasattr(msg, "jobs"):
                return self._per_job(msg, handler, now)
            return handler(msg, now) or messages.Answer()
        except GsatError as exc:
            return messages.Answer(code=exc.code, text=str(exc))
        except Exception as exc:  # one failing command (or a bug) must not lose the batch's other messages
            log.exception("%s failed", msg.kind)
            return messages.Answer(code=Refused.code, text=f"{msg.kind} failed: {exc}")

    def _per_job(self, msg, handler, now: float) -> messages.Answer:
        results, first = {}, 0
        for job_id in msg.jobs:
            try:
                handler(job_id, msg, now)
                results[str(job_id)] = [0, ""]
            except Exception as exc:  # an OSError or a bug: this job's answer, the others go on
                code = exc.code if isinstance(exc, GsatError) else Refused.code
                if not isinstance(exc, GsatError):
                    log.exception("%s of job %d failed", msg.kind, job_id)
                results[str(job_id)] = [code, str(exc)]
                first = first or code
        return messages.Answer(code=first, results=results)


    def _on_submit(self, job_id: int, msg, now: float) -> None:
        """Noted only: the step takes announced jobs on TAKE_ON_BATCH at a time.
        (A crash meanwhile loses nothing: a starting controller reads jobs/.)"""
        self.announced.append(job_id)

    def _take_on_announced(self) -> None:
        for _ in range(min(TAKE_ON_BATCH, len(self.announced))):
            job_id = self.announced.popleft()
            try:
                self._take_on_submitted(job_id)
            except Exception:  # the next ones are taken on all the same
                log.exception("job %d: cannot take it on", job_id)

    def _take_on_submitted(self, job_id: int) -> None:
        if job_id - self.max_seen > GAP_SCAN:  # far ahead (or nonsense): look at what exists
            for found in jobs.job_ids(self.layout):
                if found > self.max_seen:
                    recovery.take_on(self, found)
        else:
            for gap in range(self.max_seen + 1, job_id):  # submissions whose message was lost
                recovery.take_on(self, gap)
            recovery.take_on(self, job_id)
        if job_id in self.jobs:
            self.max_seen = max(self.max_seen, job_id)

    def _on_delete(self, job_id: int, msg, now: float) -> None:
        try:
            job = self._owned(job_id)
        except Damaged as exc:
            return self._delete_damaged(exc)
        if job.state.state == states.RUNNING:
            self._interrupt(job, "delete", signal.SIGTERM, now)
        else:
            self.kill_lost(job)  # a lost run's processes (a shepherd killed before this version)
            self._transition(job, "delete", now)

    def _delete_damaged(self, exc: Damaged) -> None:
        """gqdel of a job whose files cannot be read: no events (its spec may be
        unreadable), a tombstone, and a summary row so that gqstat's table agrees."""
        owner = (exc.spec or {}).get("host") or self.host
        if owner != self.host:
            raise Refused(f"job {exc.job} belongs to host {owner}")
        log.warning("job %d is damaged (%s): deleted", exc.job, exc.reason)
        jobs.entomb_damaged(self.layout, exc.job, self.host, exc.spec)
        self.note(jobs.load(self.layout, exc.job, deleted_ok=True))

    def _on_hold(self, job_id: int, msg, now: float) -> None:
        job = self._owned(job_id)
        if job.state.state == states.RUNNING:
            if job.state.pending:
                raise Refused(f"job {job_id} is being stopped already")
            self._interrupt(job, "hold", self._jobtype(job).hold_signal, now)
        else:
            self._transition(job, "hold", now)

    def _on_release(self, job_id: int, msg, now: float) -> None:
        self._transition(self._owned(job_id), "release", now)

    def _on_signal(self, job_id: int, msg, now: float) -> None:
        job = self._owned(job_id)
        if job.state.state != states.RUNNING:
            raise Refused(f"job {job_id} is {job.shown_state}, not running")
        if not 0 < msg.signal < signal.NSIG:
            raise UsageError(f"invalid signal number {msg.signal}")
        self._kill(job, msg.signal)  # TSTP/TTIN/TTOU are followed by STOP (gsat.killing)
        if msg.signal in signames.STOPPING:
            job.state.suspended = True
        elif msg.signal == signal.SIGCONT:
            job.state.suspended = False
        self._save(job)
        crashpoint.at("control.signal")
        self._event(job, states.JOB_SIGNAL, signal=signames.name(msg.signal))

    def _on_exited(self, msg: messages.Exited, now: float) -> None:
        self.end_or_retry((msg.job, msg.run), now)  # a no-op unless it is the job's current run

    def _on_trigger(self, msg: messages.Trigger, now: float):
        if msg.event in states.RESERVED_EVENTS or not states.valid_event_name(msg.event):
            raise UsageError(f"invalid event name {msg.event!r} (reserved, or not [A-Za-z][A-Za-z0-9_.-]*)")
        job = self.jobs.get(msg.job) or jobs.load(self.layout, msg.job)
        event, pids = self.dispatcher.fire(job, msg.event, durable=True, args=list(msg.args))
        if msg.wait and pids:
            self.dispatcher.hold_answer(functools.partial(self.replying.answer, msg), event, pids)
            return DEFERRED
        return messages.Answer(text=event["id"])

    def _on_raw(self, msg: messages.Raw, now: float) -> messages.Answer:
        text = msg.text.strip().upper()
        if text == "STOP":
            return self._on_stop(messages.Stop(), now)
        reply = {"ALIVE?": "ALIVE", "PID?": str(os.getpid()), "HOST?": self.host}.get(text)
        return messages.Answer(text=reply) if reply else messages.Answer(code=2, text=f"unknown command {msg.text!r}")

    def _on_stop(self, msg: messages.Stop, now: float) -> messages.Answer:
        if msg.kill_jobs:
            for job in [j for j in self.jobs.values() if j.state.state == states.RUNNING]:
                self._kill_quietly(job, signal.SIGTERM)
        self.stopping = True
        return messages.Answer(text="STOPPING")

    # ---- job changes -----------------------------------------------------
    def _owned(self, job_id: int) -> Job:
        """The job, from memory or disk; it must be ours (or nobody's yet).  A
        submission not taken on yet (announced, or untold) is taken on first,
        so that its QSUB happens before what the command does."""
        job = self.jobs.get(job_id)
        if job is None:
            recovery.take_on(self, job_id)
            job = self.jobs.get(job_id)
        if job is None:
            job = jobs.load(self.layout, job_id)
            if job.state.host is None and not self.intake.ready(job):
                raise NoSuchJob(f"no such job {job_id} (an array not stored whole yet)")
            owner = job.state.host or job.spec.get("host") or self.host
            if owner != self.host:
                raise Refused(f"job {job_id} belongs to host {owner}")
            job.state.host = self.host
        return job

    def _save(self, job: Job, sync: bool = True) -> None:
        """Persist the job's state, then note it in the host's summary (gqstat's cache)."""
        jobs.save(self.layout, job, sync)
        self.note(job)

    def note(self, job: Job) -> None:
        self.summary_rows.append(summary.row(job))

    def _flush_summary(self) -> None:
        rows, self.summary_rows = self.summary_rows, []
        if rows:
            try:
                summary.append(self.layout, rows)
            except (GsatError, OSError) as exc:  # a full disk: kept, and appended with the next rows
                log.warning("cannot append to the summary (kept for later): %s", exc)
                self.summary_rows = rows + self.summary_rows

    def track(self, job: Job) -> None:
        """Hold an active job in memory; a queued one goes onto the scheduler's heap."""
        self.jobs[job.id] = job
        if job.state.state == states.QUEUED:
            heapq.heappush(self.queue, job.id)

    def _transition(self, job: Job, action: str, now: float, sync: bool = True, first: tuple = (),
                    seen: dict | None = None) -> None:
        """Change the job's state.  The events the change causes (`first`, then
        its own) are on disk before the state is saved, so that a crash
        between the two cannot lose an end's JOB_FINISHED; they are told
        (waiters, services) after it, so that gqstat agrees with gqwait."""
        fired = [*first, self.dispatcher.record(job, change_state(job, action, now), seen=seen)]
        self._save(job, sync)
        crashpoint.at(SAVED_POINTS.get(action, ""))
        if job.state.state in states.ACTIVE:
            self.track(job)
            for one in fired:
                self.dispatcher.announce(job, one)
            return
        self._flush_summary()
        for one in fired:
            self.dispatcher.announce(job, one)
        crashpoint.at("end.told")
        self.jobs.pop(job.id, None)
        self.kill_at.pop(job.id, None)
        if job.state.state == states.DELETED:
            jobs.bury(self.layout, job)

    # ---- helpers -------------------------------------------------------
    def _jobtype(self, job: Job) -> jobtypes.JobType:
        return self.catalog.get_or_default(job.spec.get("jobtype", "default"))

    def _event(self, job: Job, name: str | None, **fields) -> tuple[dict | None, list[int]]:
        return self.dispatcher.fire(job, name, **fields)

