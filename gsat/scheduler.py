"""Which queued jobs start now.

    fifo     lowest id first, at most `slots` jobs running on this host
    nobatch  every queued job at once

Both honour an array's %MAX (at most MAX elements of one array running).
Released and restarted jobs are ordinary queued jobs again, so both
schedulers start them (gsatellite's nobatch forgot them).

The queue is a heap of job ids that the controller pushes an id onto
whenever that job becomes queued; entries of jobs that are no longer
queued are dropped when they surface (lazy deletion), so a pick costs
O(k log n) for k started jobs, not a sort of every job.  No I/O.
"""

import heapq
from collections import Counter

from gsat import states


def pick(queue: list[int], jobs: dict, running: list, scheduler: str, slots: int) -> list:
    """Pop and return the queued jobs to start now, in start order."""
    free = len(queue) if scheduler == "nobatch" else max(0, slots - len(running))
    per_array = Counter(_array_id(j) for j in running)
    chosen, skipped, seen = [], [], set()
    while queue and len(chosen) < free:
        job_id = heapq.heappop(queue)
        job = jobs.get(job_id)
        if job is None or job.state.state != states.QUEUED or job_id in seen:
            continue
        seen.add(job_id)
        array, limit = _array_id(job), _array_max(job)
        if array is not None and limit and per_array[array] >= limit:
            skipped.append(job_id)
            continue
        per_array[array] += 1
        chosen.append(job)
    for job_id in skipped:
        heapq.heappush(queue, job_id)
    return chosen


def _array_id(job):
    array = job.spec.get("array")
    return array["id"] if array else None


def _array_max(job):
    array = job.spec.get("array")
    return array.get("max") if array else None
