"""The job's append-only event log: jobs/N/events.log, one JSON line each.

    {"id": "17a3f0c2d4e5-42", "name": "JOB_START", "time": 1763755200.1,
     "host": "node1", "run": 1}

JOB_TERMINATION lines carry "exit"; user events carry "args".  A line is
written (O_APPEND) before anything acts on the event.
"""

import os
import time

from gsat import fsutil, jsontext


def make(job: int, name: str, host: str, run: int, **fields) -> dict:
    """A new event; ids sort in time order and are unique per job."""
    return {"id": f"{time.time_ns():x}-{job}", "name": name, "time": time.time(), "host": host,
            "run": run, **{k: v for k, v in fields.items() if v is not None}}


def append(jobdir, event: dict, sync: bool = False) -> None:
    """Append `event`.  Not fsynced by default: an event with services is durable
    in the outbox first (and appended again from there after a crash), and the
    job's state is in state.json; `trigger` asks for sync (it promises durability)."""
    fsutil.append_line(os.path.join(jobdir, "events.log"), jsontext.dumps(event).encode() + b"\n", sync=sync)


def read(jobdir) -> list[dict]:
    """Every event of the job, oldest first; a torn last line (or any line
    that is not a JSON object with a text "name" and "id": a crash mid-append,
    a careless edit) is skipped, and so is a log that cannot be read at all."""
    try:
        data = fsutil.read_bytes(os.path.join(jobdir, "events.log"), limit=16 << 20) or b""
    except OSError:  # a symlink or a directory there: no events to show
        return []
    out = []
    for line in data.splitlines():
        try:
            event = jsontext.loads(line)
        except ValueError:
            continue
        if _well_formed(event):
            out.append(event)
    return out


def _well_formed(event) -> bool:
    """An event readers can use without looking: gqstat -f prints the name,
    recovery compares the id, a retried end looks events up by (name, run)
    (so run is a number when present; the other fields are optional)."""
    return (isinstance(event, dict) and isinstance(event.get("name"), str) and isinstance(event.get("id"), str)
            and isinstance(event.get("run", 0), int))
