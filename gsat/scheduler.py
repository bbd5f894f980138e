"""Which queued jobs start now.

    fifo     lowest id first, at most `slots` jobs running on this host
    nobatch  every queued job at once

Both honour an array's %MAX (at most MAX elements of one array running).
Released and restarted jobs are ordinary queued jobs again, so both
schedulers start them (gsatellite's nobatch forgot them).  Pure functions
over plain job records; no I/O.
"""

from collections import Counter

from gsat import states


def pick(jobs, scheduler: str, slots: int) -> list:
    """The queued jobs among `jobs` to start now, in start order."""
    running = [j for j in jobs if j.state.state == states.RUNNING]
    queued = sorted((j for j in jobs if j.state.state == states.QUEUED), key=lambda j: j.id)
    free = len(queued) if scheduler == "nobatch" else max(0, slots - len(running))
    per_array = Counter(_array_id(j) for j in running)
    chosen = []
    for job in queued:
        if len(chosen) >= free:
            break
        array, limit = _array_id(job), _array_max(job)
        if array is not None and limit and per_array[array] >= limit:
            continue
        per_array[array] += 1
        chosen.append(job)
    return chosen


def _array_id(job):
    array = job.spec.get("array")
    return array["id"] if array else None


def _array_max(job):
    array = job.spec.get("array")
    return array.get("max") if array else None
