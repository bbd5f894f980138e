"""Waiting for jobs without busy waiting (gqwait, gqsub --wait).

The waiter makes one FIFO per job in jobs/N/waiters/, then reads the job's
state; the controller writes a line to every FIFO there after it has saved
an ended or deleted state.  Because the waiter creates its FIFO before it
reads the state, and the controller saves the state before it lists the
FIFOs, an end is never missed.  On a network file system a controller on
another host cannot reach our FIFO, so the state is also re-read every
poll interval.

The controller also writes a line for every event of the job to the FIFOs
named event.*, which is how `gqwait --event NAME` wakes (0 when fired, 1
when the job ended first); a plain waiter is not woken by events.

Exit values: the job's (0 when all succeeded, else the first failure in
the order given; with any=True the first to end), 255 for a deleted or
lost job, 124 on timeout.
"""

import os
import time

from gsat import client, eventlog, fifo, fsutil, jobs, jsontext, states, watch
from gsat.errors import EXIT_LOST, WAIT_TIMEOUT, NoSuchJob
from gsat.layout import EVENT_WAITER


SAFETY_RECHECK = 5.0  # seconds; not a poll loop: the FIFO wakes us at once


def wait_jobs(ctx, ids: list[int], timeout: float | None = None, any_: bool = False,
              event: str | None = None) -> int:
    """Block until the jobs end (or, with `event`, fire it: 0, or end first: 1)."""
    for job_id in ids:
        jobs.load(ctx.layout, job_id, deleted_ok=True)  # NoSuchJob (exit 3) before waiting
    client.ensure_controller(ctx)
    path, fd = make_fifo(ctx.layout, ids[0], events=event is not None)
    links: list[str] = []
    value_of = exit_value if event is None else (lambda layout, job_id: fired(layout, job_id, event))
    try:
        for job_id in dict.fromkeys(ids[1:]):  # one FIFO, one fd, however many jobs
            if job_id != ids[0]:
                links.append(_link(path, ctx.layout, job_id))
        return _loop(ctx, ids, fd, timeout, any_, value_of, event)
    finally:
        for link in links:
            fsutil.unlink_quietly(link)
        fifo.remove(path, fd)


def _link(path: str, layout, job_id: int) -> str:
    folder = layout.job_dir(job_id) / "waiters"
    os.makedirs(folder, 0o700, exist_ok=True)
    link = str(folder / os.path.basename(path))
    os.link(path, link)
    return link


def _loop(ctx, ids, fd, timeout, any_, value_of, event=None) -> int:
    deadline = None if timeout is None else time.monotonic() + timeout
    # another host's controller cannot reach our FIFO: re-read at the poll interval;
    # on one host a rare re-read guards against a FIFO the job itself removed
    recheck = ctx.config["poll_interval"] if watch.is_network(ctx.layout.jobs) else SAFETY_RECHECK
    done: dict[int, int] = {}
    check = list(dict.fromkeys(ids))  # at first every job; then those the controller named
    told: dict[int, int] = {}  # exit values the controller's lines gave
    full_check = time.monotonic()
    while True:
        for job_id in check:
            if job_id not in done:
                value = told[job_id] if job_id in told else value_of(ctx.layout, job_id)
                if value is not None:
                    done[job_id] = value
                    if any_:
                        return value
        if len(done) == len(set(ids)):
            return next((done[i] for i in ids if done[i] != 0), 0)
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return WAIT_TIMEOUT
        waits = [t for t in (left, max(0.0, full_check + recheck - time.monotonic())) if t is not None]
        if fifo.wait([fd], min(waits)):
            check, told = _named(fifo.read(fd), ids, event)
        if time.monotonic() - full_check >= recheck:  # however chatty the FIFO: look at them all
            check, full_check = ids, time.monotonic()


def _named(lines: bytes, ids: list[int], event: str | None = None) -> tuple[list[int], dict[int, int]]:
    """The waited-for jobs whose lines from the controller may change the answer
    (a line saying the job is still active cannot end a wait for its end, nor
    can an event of another name end a wait for `event`), and the exit values
    the lines give of ended jobs.  A plain wait takes those as they are: the
    controller saved the state before it wrote the line, and only the user's
    own processes can write to the FIFO.  Any other named job is re-read."""
    named, told = [], {}
    for line in lines.splitlines():
        try:
            said = jsontext.loads(line)
            job = said["job"]
        except (ValueError, KeyError, TypeError):
            return ids, {}  # not ours to understand: look at them all
        state = said.get("state")
        if state in states.ACTIVE and (event is None or said.get("event") != event):
            continue
        named.append(job)
        if event is None and state == states.DELETED:
            told[job] = EXIT_LOST
        elif event is None and state in states.ENDED and isinstance(said.get("exit"), int):
            told[job] = said["exit"]
    wanted = set(ids)
    return [job for job in dict.fromkeys(named) if job in wanted], told


def exit_value(layout, job_id: int) -> int | None:
    """The job's final exit value, or None while it may still run."""
    try:
        job = jobs.load(layout, job_id, deleted_ok=True)
    except NoSuchJob:
        return EXIT_LOST  # vanished meanwhile
    if job.state.state == states.DELETED:
        return EXIT_LOST
    if job.state.state in states.ENDED:
        return job.state.exit if job.state.exit is not None else EXIT_LOST
    return None


def fired(layout, job_id: int, event: str) -> int | None:
    """0 once the job has fired `event`, 1 when it ended without, else None."""
    if any(e.get("name") == event for e in eventlog.read(layout.job_dir(job_id))):
        return 0
    return None if exit_value(layout, job_id) is None else 1


def make_fifo(layout, job_id: int, events: bool = False) -> tuple[str, int]:
    """A FIFO in the job's waiters/: told of the job's end, and of its events
    too when `events` (its name starts with layout.EVENT_WAITER)."""
    folder = layout.job_dir(job_id) / "waiters"
    os.makedirs(folder, 0o700, exist_ok=True)
    return fifo.create(folder, EVENT_WAITER if events else "")
