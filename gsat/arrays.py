"""An array submission is taken on whole or not at all.

gqsub stores an array one element at a time (gsat.jobs.publish: each element
is renamed from `jobs/.new.*` to its id), so a submitter killed halfway would
leave some elements in place.  Each element's job.json names its array:
`"array": {"id": FIRST, "count": N, "token": T, "pid": P, ...}` (the first
element's id is filled in when it is read: gsat.jobs.fix_array_id), and
job.json's `submit_host` says where P runs.

Commit: once every element is in place and durable (after the fsync of
jobs/), gqsub creates `jobs/FIRST/array` holding T, by link() of a fsynced
temporary file, which fails when the name exists: the marker is there
whole or not at all.  Only then does gqsub print the ids.  A controller
takes an element on only when the marker of its array holds its token.

Leftovers: an array without its marker whose submitter is gone (P no
longer runs on this host) or older than STALE_AFTER is abandoned.  The
controller first *fences* it by creating the marker itself, holding
"abandoned" (link() again: if gqsub committed a moment before, the array
is whole after all, and is taken on), then removes its elements, the first
one (which holds the marker) last.  A submitter that finds its marker
taken fails and withdraws.  Temporary directories `jobs/.new.HOST.PID.R`
and `jobs/.withdrawn.*` of a submitter that is gone, or older than
STALE_AFTER, are removed too.  The controller looks at start-up and at each
heartbeat (listing jobs/ only when its mtime moved).

Elements of specs without a token (stored before arrays had markers) are
whole.  Imports: adapters only.
"""

import os

from gsat import fsutil, lazylog, procinfo
from gsat.errors import Refused

log = lazylog.get(__name__)

MARKER = "array"
ABANDONED = "abandoned"
STALE_AFTER = 3600.0
TEMP_PREFIXES = (".new.", ".withdrawn.")


def new_token() -> str:
    return os.urandom(8).hex()


def commit(layout, first: int, token: str, sync: bool = True) -> None:
    """Mark array `first` whole; Refused when a controller abandoned it first."""
    if not _publish(layout.job_dir(first) / MARKER, token, sync):
        raise Refused("the array was abandoned by the controller (its submission took too long)")
    if sync:
        fsutil.fsync_dir(layout.job_dir(first))


def fence(layout, first: int) -> bool:
    """Abandon array `first`: True, unless its submitter has just committed it."""
    return _publish(layout.job_dir(first) / MARKER, ABANDONED, sync=False)


def _publish(path, text: str, sync: bool) -> bool:
    tmp = fsutil.temp_name(path)
    try:
        fsutil.write_new(tmp, text.encode() + b"\n", sync=sync)
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        raise fsutil.translate_error(exc, path) from None
    finally:
        fsutil.unlink_quietly(tmp)


def marker(layout, first: int) -> str | None:
    """What jobs/FIRST/array holds (a token, or "abandoned"); None when missing."""
    try:
        data = fsutil.read_bytes(layout.job_dir(first) / MARKER, 256)
    except OSError:
        return None
    return None if data is None else data.decode(errors="replace").strip()


def submitter_gone(array: dict, submit_host: str | None, host: str, now: float, born: float) -> bool:
    """Whether the submitter of an unmarked array can no longer commit it."""
    if now - born > STALE_AFTER:
        return True
    return submit_host == host and not _alive(array.get("pid"))


def _alive(pid) -> bool:
    """Whether `pid` runs here (a zombie does not: its parent may be slow to reap it)."""
    return isinstance(pid, int) and pid > 0 and procinfo.start_ticks(pid) is not None


class Intake:
    """A controller's view of arrays not yet whole and of temporary leftovers."""

    def __init__(self, layout, host: str):
        self.layout, self.host = layout, host
        self.whole: set[tuple[int, str]] = set()           # (first, token) seen committed
        self.incomplete: dict[int, tuple[dict, str | None, float, set]] = {}  # first -> array, host, born, ids
        self.temps: set[str] = set()                         # leftovers whose submitter still runs
        self.jobs_mtime = None

    def ready(self, job) -> bool:
        """Whether a new submission may be taken on: not an element of an
        array that is not whole yet (those are noted for settle())."""
        array = job.spec.get("array") or {}
        token, first = array.get("token"), array.get("id")
        if not token or not isinstance(first, int) or (first, token) in self.whole:
            return True
        if marker(self.layout, first) == token:
            self.whole.add((first, token))
            return True
        entry = self.incomplete.setdefault(first, (array, job.spec.get("submit_host"),
                                                   job.spec.get("submitted") or 0.0, set()))
        entry[3].add(job.id)
        return False

    def settle(self, now: float) -> list[int]:
        """Look at the arrays that were not whole: the ids of those that are
        now (to be taken on, in order); abandoned ones are removed."""
        out = []
        for first, (array, submit_host, born, ids) in list(self.incomplete.items()):
            state = marker(self.layout, first)
            if state is None and submitter_gone(array, submit_host, self.host, now, born):
                state = ABANDONED if fence(self.layout, first) else marker(self.layout, first)
            if state is None:
                continue
            if state == array.get("token"):
                self.whole.add((first, state))
                out += sorted(ids)
            else:
                self.remove(first, array)  # when it fails, the next settle tries again
            del self.incomplete[first]
        return out

    def remove(self, first: int, array: dict) -> None:
        """Bury every element of an abandoned array, the first one last: each
        leaves a tombstone, as a deleted job does."""
        from gsat import jobs  # not at the top: jobs imports this module
        token, found = array.get("token"), []
        for job_id in jobs.job_ids(self.layout):
            if job_id > first and len(found) < array.get("count", 0) - 1:
                spec = _spec(self.layout, job_id)
                if spec and (spec.get("array") or {}).get("token") == token:
                    found.append(job_id)
        # tombstones, not removal: gqstat may have listed these ids, which are never used again
        jobs.withdraw(self.layout, [*found, first], dict(array=None, submit_host=self.host))
        log.warning("array %d: its submitter died before storing it whole; removed %d elements",
                    first, len(found) + 1)

    def sweep_temporaries(self, now: float) -> None:
        """Remove the temporary job directories of submitters that are gone."""
        try:
            mtime = os.stat(self.layout.jobs).st_mtime_ns
        except OSError:
            return
        if mtime != self.jobs_mtime:
            self.jobs_mtime = mtime
            self.temps |= {n for n in os.listdir(self.layout.jobs) if n.startswith(TEMP_PREFIXES)}
        for name in list(self.temps):
            path = self.layout.jobs / name
            try:
                born = os.lstat(path).st_mtime
            except FileNotFoundError:
                self.temps.discard(name)
                continue
            if now - born > STALE_AFTER or not _temp_owner_alive(name, self.host):
                import shutil
                shutil.rmtree(path, ignore_errors=True)
                self.temps.discard(name)


def _temp_owner_alive(name: str, host: str) -> bool:
    """`.new.HOST.PID.RANDOM` (or, from older versions, `.new.PID.RANDOM`):
    whether PID still runs here; another host's submitter is assumed alive."""
    if not name.startswith(".new."):
        return False  # .withdrawn.*: what a failed submission could not tombstone
    parts = name[5:].split(".")
    owner, pid = (".".join(parts[:-2]), parts[-2]) if len(parts) > 2 else (host, parts[0])
    if not pid.isdigit():
        return False
    return owner != host or _alive(int(pid))


def _spec(layout, job_id: int) -> dict | None:
    try:
        spec = fsutil.read_json(layout.job_dir(job_id) / "job.json")
    except (OSError, ValueError):
        return None
    return spec if isinstance(spec, dict) else None
