"""Firing a job's events: record, tell the waiters, start the services.

`fire` is the one way an event happens: it appends the event to the job's
events.log (passing through the outbox first when it has services, see
gsat.services), writes a line to every gqwait FIFO of the job, and starts
the services.  `trigger --wait` answers are held here until the event's
services have all ended.
"""

import logging
import os
import sys
import time

from gsat import crashpoint, eventlog, fifo, jsontext, messages, services, states
from gsat.config import share_dir
from gsat.environment import for_run
from gsat.errors import GsatError
from gsat.layout import EVENT_WAITER

log = logging.getLogger(__name__)


class Untold(dict):
    """`seen` for an end tried again after a failed save (a full disk): what
    the failed try recorded was never told (the telling comes after the save),
    so it is not recorded again but its services start with this try."""


class Dispatcher:
    def __init__(self, layout, host: str, catalog, service_timeout: float):
        self.layout, self.host, self.catalog = layout, host, catalog
        self.runner = services.Runner(service_timeout)
        self.waits: dict[str, dict] = {}     # event id -> {reply, pids, failed} (trigger --wait)

    def fire(self, job, name: str | None, durable: bool = False, **fields) -> tuple[dict | None, list[int]]:
        """Record event `name` of `job` (fsynced if `durable`), tell its waiters, start its services."""
        fired = self.record(job, name, durable, **fields)
        return (fired[0] if fired else None), self.announce(job, fired)

    def record(self, job, name: str | None, durable: bool = False, seen: dict | None = None,
               **fields) -> tuple | None:
        """The first half of fire: put the event on disk (the outbox when it has
        services, and events.log); (event, services, replayed).  An event that
        `seen` (name, run) -> event already holds (recorded before a crash) is
        not recorded again: it is `replayed`, and its services are the outbox's."""
        if not name:
            return None
        if seen and (name, job.state.run) in seen:
            if isinstance(seen, Untold):  # recorded, never told: its services start now
                return seen[name, job.state.run], self.services_for(job, name), False
            return seen[name, job.state.run], [], True
        event = eventlog.make(job.id, name, self.host, job.state.run, **fields)
        found = self.services_for(job, name)
        try:
            if found:
                services.put(self.layout, job.id, event)
            eventlog.append(self.layout.job_dir(job.id), event, sync=durable)
            crashpoint.at("event.recorded")
        except (OSError, GsatError) as exc:
            log.error("job %d: cannot record %s: %s", job.id, name, exc)
            if durable:
                raise  # trigger must not answer 0 for an event that is not on disk
        log.info("job %d: %s %s", job.id, name, fields or "")
        return event, found, False

    def announce(self, job, fired: tuple | None) -> list[int]:
        """The second half of fire: tell the waiters, start the services."""
        if fired is None:
            return []
        event, found, replayed = fired
        self.tell_waiters(job, event["name"])
        return [] if replayed else self.dispatch(job, event, found)

    def recorded(self, job) -> dict:
        """(name, run) -> event, of what the job's events.log holds."""
        return {(e.get("name"), e.get("run")): e for e in eventlog.read(self.layout.job_dir(job.id))}

    def dispatch(self, job, event: dict, found: list) -> list[int]:
        """Start the services `found` for a recorded event, then clear it from the outbox."""
        pids = []
        if found:
            env = services.environment(self.job_env(job), event)
            pids = self.runner.start(job.id, event, found, env, job.spec.get("workdir", "/"),
                                     self.layout.job_dir(job.id), time.time())
            crashpoint.at("event.dispatched")
            services.done(self.layout, event)
        return pids

    def services_for(self, job, name: str) -> list:
        dirs = [share_dir() / "libexec" / "services", self.layout.user_services()]
        return services.find(name, dirs, job.spec, checked=dirs[1:])

    def run_env(self, job) -> dict:
        """The environment the job's current run has (SPEC §5)."""
        return for_run(job.id, job.spec, job.state.run, self.host, str(self.layout.home),
                       str(self.layout.job_dir(job.id)), self.jobtype_env(job))

    def job_env(self, job) -> dict:
        """run_env plus what the shipped services need to find gsat."""
        env = self.run_env(job)
        env["GSAT_PYTHON"] = sys.executable
        env["GSAT_LIBDIR"] = str(share_dir())
        env["GSAT_MAIL_EVENTS"] = job.spec.get("mail_events") or ""
        return env

    def jobtype_env(self, job) -> dict:
        return self.catalog.get_or_default(job.spec.get("jobtype", "default")).environment

    def tell_waiters(self, job, event: str | None = None) -> None:
        """A line to the job's waiters: to all of them once it has ended, else only
        to those that wait for an event (a woken gqwait costs a job's end a CPU)."""
        folder = self.layout.job_dir(job.id) / "waiters"
        if os.path.lexists(folder):  # most jobs have nobody waiting: no line to build
            line = jsontext.dumps({"job": job.id, "state": job.state.state, "event": event, "exit": job.state.exit})
            prefix = EVENT_WAITER if job.state.state in states.ACTIVE else ""
            fifo.post_all(folder, line.encode() + b"\n", prefix)

    # ---- trigger --wait ----------------------------------------------------
    def hold_answer(self, reply, event: dict, pids: list[int]) -> None:
        """Call reply(Answer) once the services `pids` of `event` have ended."""
        self.waits[event["id"]] = {"reply": reply, "pids": set(pids), "failed": []}

    def service_ended(self, run: dict) -> None:
        log.info("job %d: service %s of %s exited %d", run["job"], run["name"], run["event"], run["exit"])
        waiting = self.waits.get(run["event"])
        if waiting is None:
            return
        waiting["pids"].discard(run["proc"].pid)
        if run["exit"] != 0:
            waiting["failed"].append(f"{run['name']} exited {run['exit']}")
        if not waiting["pids"]:
            del self.waits[run["event"]]
            failed = waiting["failed"]
            waiting["reply"](messages.Answer(code=1 if failed else 0, text="; ".join(failed)))
