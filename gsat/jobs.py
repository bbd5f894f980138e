"""Job records and the job store under GSAT_HOME/jobs.

A job is plain data: its Spec (job.json, written once by gqsub and never
changed) and its State (state.json, written only by the controller that
claimed it).  A job directory without state.json is a submission that no
controller has taken on yet: it counts as queued (or held with -H).

Publishing a job is one atomic step: gqsub fills a temporary directory
`jobs/.new.*` and renames it to the next free id.  rename() of a directory
fails when the target exists and is not empty, so two submitters can never
get one id, and a crashed submitter leaves no lock behind, only a
temporary directory that is ignored (and removed by a controller:
gsat.arrays).  An array is taken on only once it is stored whole: see
gsat.arrays for its commit marker.  A job's files are durable before its
rename: each one fsynced, or, for the elements of an array after its first,
all of them at once by one syncfs() of the file system before any of them
is renamed (1,000 elements cost two flushes, not 4,000).  Deleted jobs keep a tombstone
(state.json with state "deleted") so that ids are never reused.

`change_state` is the only function that changes a job's state; it returns
the event the change causes.
"""

import errno
import os
import stat

from gsat import arrays, crashpoint, damage, fsutil, jsontext, states, trust
from gsat.errors import Damaged, GsatError, NoSuchJob, Refused, Untrusted, UsageError
from gsat.layout import JOB_DIGITS, Layout
from gsat.record import Record


class State(Record):
    """What state.json holds."""

    FROZEN = False
    __slots__ = ()
    FIELDS = {
        "state": states.QUEUED,
        "host": None,
        "run": 0,            # GSAT_RUN of the current or last run
        "attempt": 0,        # names runs/ATTEMPT.start|exit; never reused
        "restarts": 0,
        "started": None,
        "ended": None,
        "exit": None,
        "suspended": False,
        "pending": None,     # "delete" or "hold" while the job is being killed
        "reason": None,      # why it failed without running (an unusable job type), or is damaged
    }

    @classmethod
    def from_dict(cls, data: dict) -> "State":
        if not isinstance(data, dict):
            raise ValueError("state.json is not a JSON object")
        return cls(**{k: v for k, v in data.items() if k in cls.FIELDS})


class Job:
    __slots__ = ("id", "spec", "state")

    def __init__(self, id: int, spec: dict, state: State):
        self.id, self.spec, self.state = id, spec, state

    @property
    def shown_state(self) -> str:
        if self.state.state == states.RUNNING and self.state.suspended:
            return states.SUSPENDED
        return self.state.state


def change_state(job: Job, action: str, now: float) -> str:
    """Apply `action` to `job` per states.ALLOWED; return the event name."""
    new = states.next_state(job.state.state, action)
    if new is None:
        raise Refused(f"job {job.id} is {job.shown_state}: cannot {action}")
    st = job.state
    st.state, st.suspended, st.pending = new, False, None
    if action == "start":
        st.run += 1
        st.attempt += 1
        st.started, st.ended, st.exit, st.reason = now, None, None, None
    elif action == "restart":
        st.restarts += 1
    elif action == "requeue":  # the interrupted start never ran: same GSAT_RUN next time
        st.run -= 1
        st.started = None
    if new in states.ENDED:
        st.ended = now
    return states.EVENT_OF[action]


# ---- the store -----------------------------------------------------------

def publish(layout: Layout, spec: dict, script: bytes, count: int = 1) -> list[int]:
    """Store `count` copies of a job under fresh consecutive ids; return them.

    All or nothing: when any element fails, the ones already renamed into
    place become tombstones before the error goes up, so that no part of
    a submission the user saw fail ever runs."""
    if not os.path.isdir(layout.jobs):  # a look is cheaper than a mkdir that fails
        os.makedirs(layout.jobs, mode=0o700, exist_ok=True)
    ids: list[int] = []
    if spec.get("array"):  # its elements are taken on once the array is whole (gsat.arrays)
        spec = dict(spec, array={**spec["array"], "count": count, "token": arrays.new_token(),
                                 "pid": os.getpid()})
    try:
        first = _fill(layout, _array_element(spec, 0, []), script)
        crashpoint.at("submit.filled")
        ids.append(_claim(layout, first, _read_hint(layout)))
        crashpoint.at("submit.stored")
        if count > 1:  # the first element's id is the array's: the others carry it
            _publish_rest(layout, spec, script, count, ids)
        fsutil.fsync_dir(layout.jobs)
        if spec.get("array"):
            arrays.commit(layout, ids[0], spec["array"]["token"])
            crashpoint.at("submit.committed")
    except BaseException:
        withdraw(layout, ids, spec)
        raise
    _write_hint(layout, ids[-1] + 1)
    return ids


def _publish_rest(layout: Layout, spec: dict, script: bytes, count: int, ids: list[int]) -> None:
    """Array elements 2..count, appended to `ids`: filled without fsync, made
    durable together by one syncfs where that is as good as fsync, then renamed."""
    filled: list[str] = []
    try:
        batch = _syncfs_is_enough(layout.jobs)
        for index in range(1, count):
            filled.append(_fill(layout, _array_element(spec, index, ids), script, sync=not batch))
        if batch:
            fsutil.sync_filesystem(layout.jobs)
        while filled:
            ids.append(_claim(layout, filled[0], ids[-1] + 1))
            filled.pop(0)
    finally:
        for tmp in filled:
            _discard(tmp)


# syncfs(2) reports write-back errors since Linux 5.8; on these file systems it
# flushes what fsync would (FUSE and SMB/CIFS do not ask their server to; NFS
# commits at close anyway, so batching gains nothing there)
SYNCFS_FILE_SYSTEMS = {"ext4", "xfs", "btrfs", "f2fs", "tmpfs"}


def _syncfs_is_enough(path) -> bool:
    from gsat import watch
    release = os.uname().release.split(".")
    try:
        kernel = (int(release[0]), int(release[1].split("-")[0]))
    except (IndexError, ValueError):
        return False
    return kernel >= (5, 8) and watch.fs_type(path) in SYNCFS_FILE_SYSTEMS and fsutil.can_syncfs()


def withdraw(layout: Layout, ids: list[int], spec: dict) -> None:
    """Tombstones for the elements of a failed submission; where even a
    tombstone does not fit (a full disk), the directory is renamed away."""
    for job_id in ids:
        job = Job(job_id, spec, State(state=states.DELETED, host=spec.get("submit_host") or "-"))
        try:
            save(layout, job)
            bury(layout, job)
        except (OSError, GsatError):  # save says HomeUnusable when the disk is full
            gone = layout.jobs / f".withdrawn.{os.getpid()}.{job_id}"
            try:
                os.rename(layout.job_dir(job_id), gone)
            except OSError:
                continue
            _discard(gone)


def _array_element(spec: dict, index: int, ids: list[int]) -> dict:
    array = spec.get("array")
    if not array:
        return spec
    element = dict(spec)
    element["array"] = {**array, "index": array["first"] + index, "id": ids[0] if ids else None}
    return element


def _fill(layout: Layout, spec: dict, script: bytes, sync: bool = True) -> str:
    """A temporary job directory holding `spec` and `script` (fsynced when `sync`)."""
    tmp = layout.jobs / f".new.{layout.host}.{os.getpid()}.{os.urandom(4).hex()}"  # gsat.arrays
    os.mkdir(tmp, 0o700)
    try:
        os.mkdir(tmp / "runs", 0o700)  # here, not on the controller's path to each start
        fsutil.write_new(tmp / "script", script, sync=sync, mode=0o700)
        fsutil.write_new(tmp / "job.json", jsontext.dumps(spec, sort_keys=True).encode() + b"\n", sync=sync)
        if sync:
            fsutil.fsync_dir(tmp)
    except OSError as exc:
        _discard(tmp)
        raise fsutil.translate_error(exc, tmp) from None
    return tmp


def _claim(layout: Layout, tmp: str, start: int) -> int:
    """Rename the filled `tmp` to the first free id from `start`; that id."""
    job = start
    while True:
        try:
            os.rename(tmp, layout.job_dir(job))
            return job
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                _discard(tmp)
                raise fsutil.translate_error(exc, tmp) from None
            job += 1


def _discard(tmp: str) -> None:
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)


def fix_array_id(spec: dict, first_id: int) -> dict:
    """Array elements published before the first id was known point to it."""
    if spec.get("array") and spec["array"].get("id") is None:
        spec = dict(spec, array={**spec["array"], "id": first_id})
    return spec


def _read_hint(layout: Layout) -> int:
    try:
        return max(1, int(fsutil.read_bytes(layout.nextid) or b"1"))
    except ValueError:
        return 1


def _write_hint(layout: Layout, value: int) -> None:
    # a hint only: publish() moves past taken ids, so no fsync is needed
    try:
        fsutil.atomic_write(layout.nextid, b"%d\n" % value, sync=False)
    except OSError:
        pass


def job_ids(layout: Layout) -> list[int]:
    """Every job id that has a directory, in id order (tombstones included)."""
    try:
        names = os.listdir(layout.jobs)
    except FileNotFoundError:
        return []
    return sorted([int(name) for name in names if name.isdigit() and len(name) >= JOB_DIGITS])


MAX_ID = 10 ** 18  # more digits than any file system's name allows: no such job, not an OSError
NOT_OURS = trust.NOT_OURS
open_dir = trust.open_job_dir  # jobs/N as a descriptor, or NoSuchJob, Damaged, Untrusted


def load(layout: Layout, job: int, deleted_ok: bool = False) -> Job:
    """The job as it is on disk.  NoSuchJob for unknown (or deleted) ids;
    Untrusted for a directory that is not ours (read through none of it);
    errors.Damaged (a NoSuchJob) when its files cannot be read (gsat.damage)."""
    if not 0 < job < MAX_ID:
        raise NoSuchJob(f"no such job {job}")
    fd = open_dir(layout, job)
    try:
        return _load_from(job, layout.job_dir(job), fd, deleted_ok)
    finally:
        os.close(fd)


def _load_from(job: int, folder, fd: int, deleted_ok: bool) -> Job:
    try:
        state = damage.read_record(job, folder, "state.json", fd)
    except Damaged as exc:  # say what it was, when job.json can tell
        raise Damaged(job, exc.reason, _spec_if_sound(job, folder, fd)) from None
    if state is not None and state.get("state") == states.DELETED and not deleted_ok:
        raise NoSuchJob(f"no such job {job}")
    spec = damage.read_record(job, folder, "job.json", fd)
    if spec is None:
        raise Damaged(job, "job.json is missing")
    spec = damage.check_spec(job, spec)
    if state is None:
        return Job(job, fix_array_id(spec, job), initial_state(spec))
    return Job(job, fix_array_id(spec, job), State.from_dict(damage.check_state(job, state, spec)))


def _spec_if_sound(job: int, folder, fd: int) -> dict | None:
    try:
        return damage.check_spec(job, damage.read_record(job, folder, "job.json", fd) or {}) or None
    except Damaged:
        return None


def load_or_damaged(layout: Layout, job: int) -> Job:
    """load() for listings: a damaged job comes back as a Job in state
    `damaged`, its reason in state.reason, its spec when that could be read."""
    try:
        return load(layout, job)
    except Damaged as exc:
        return Job(job, exc.spec or {}, State(state=states.DAMAGED, reason=exc.reason))
    except Untrusted as exc:  # listed, never read through; gqdel refuses it (exit 4)
        return Job(job, {}, State(state=states.DAMAGED, reason=str(exc).partition(": ")[2]))


def initial_state(spec: dict) -> State:
    return State(state=states.HELD if spec.get("hold") else states.QUEUED)


def output_path(layout: Layout, job: Job, stream: str) -> str | None:
    """Where the job's "stdout" or "stderr" goes: -o/-e with %j expanded, else
    the file of that name in the job's directory; None for stderr joined to stdout."""
    if stream == "stderr" and job.spec.get("join"):
        return None
    given = job.spec.get(stream)
    return given.replace("%j", str(job.id)) if given else str(layout.job_dir(job.id) / stream)


def save(layout: Layout, job: Job, sync: bool = True) -> None:
    """Write state.json atomically (fsynced unless sync=False).  An older
    state.json after a power loss is consistent: recovery goes by the run
    records, so the directory is not fsynced on every change."""
    fsutil.write_json(layout.job_dir(job.id) / "state.json", job.state.as_dict(), sync, sync_dir=False)


def bury(layout: Layout, job: Job) -> None:
    """Turn a saved deleted job into a tombstone: keep job.json, state.json and
    an array's marker (which refuses a late commit of an abandoned array).
    Everything goes through a descriptor of the job's own directory (checked
    by open_dir): nothing is removed through a symlink, at any depth."""
    import shutil
    fd = open_dir(layout, job.id)
    try:
        for entry in os.scandir(fd):
            if entry.name in ("job.json", "state.json", arrays.MARKER):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.name, ignore_errors=True, dir_fd=fd)  # never follows links inside
            else:
                try:
                    os.unlink(entry.name, dir_fd=fd)
                except OSError:
                    pass
    finally:
        os.close(fd)


def entomb_damaged(layout: Layout, job: int, host: str, spec: dict | None) -> None:
    """Turn a damaged job into a tombstone (gqdel): state.json says deleted,
    an unreadable job.json is replaced, every other file goes.  Its directory
    must be one open_dir trusts (Untrusted otherwise; Refused for a file in
    its place), and everything goes through that descriptor: no symlink, at
    any depth, leads a rename, a write or a removal elsewhere."""
    fd = _open_to_entomb(layout, job)
    tomb = Job(job, spec or {}, State(state=states.DELETED, host=host, reason="damaged; deleted"))
    try:
        for name in ("state.json", "job.json"):  # a directory there cannot be replaced by a file
            try:
                if stat.S_ISDIR(os.lstat(name, dir_fd=fd).st_mode):
                    os.rename(name, f".damaged.{name}.{os.getpid()}", src_dir_fd=fd, dst_dir_fd=fd)  # bury() removes it
            except FileNotFoundError:
                pass
        fsutil.write_json("state.json", tomb.state.as_dict(), dir_fd=fd)
        if spec is None:
            fsutil.write_json("job.json", {"damaged": True}, sync=False, dir_fd=fd)
    finally:
        os.close(fd)
    bury(layout, tomb)


def _open_to_entomb(layout: Layout, job: int) -> int:
    try:
        return open_dir(layout, job)
    except Damaged:  # a file of ours where the directory should be
        raise Refused(f"job {job}: {layout.job_dir(job)} is not a directory; remove it by hand") from None


def parse_id(text: str) -> int:
    """A job id as users type it: '42', '00042'; UsageError for anything else."""
    text = str(text).strip()
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise UsageError(f"invalid job id {text!r}")
    return int(text)


