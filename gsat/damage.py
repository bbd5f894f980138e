"""Reading a job's two record files so that a damaged one is a reason, never a crash.

A job's job.json or state.json may be truncated (a full disk under another
tool, a careless edit), garbage, a symbolic link, a directory, a FIFO, or
JSON of the wrong shape.  `read_record` returns the parsed object (None when
the file does not exist) or raises errors.Damaged naming the file and what
is wrong with it; `check_state` and `check_spec` refuse values of the wrong
type, so that nothing downstream (the summary, the scheduler, gqstat's
table) meets a string where it counts on a number.  Opening never follows a
symlink and never blocks (fsutil.READ_FLAGS has O_NONBLOCK: a FIFO reads as
empty).  Stdlib and gsat's vocabulary only.
"""

import errno

from gsat import configcheck, fsutil, jsontext, states
from gsat.errors import Damaged

NUMBER = (int, float)
NOTHING = type(None)
# state.json: key -> accepted types (bool is an int: checked apart)
STATE_TYPES = {
    "state": (str,), "host": (str, NOTHING), "run": (int,), "attempt": (int,), "restarts": (int,),
    "started": (*NUMBER, NOTHING), "ended": (*NUMBER, NOTHING), "exit": (int, NOTHING),
    "suspended": (bool,), "pending": (str, NOTHING), "reason": (str, NOTHING),
}
PENDING = (None, "delete", "hold")
TIMES = ("submitted", "started", "ended")
MAX_TIME = 253402300799  # 9999-12-31 23:59:59 UTC: the last second the listings can show
ARRAY_INTS = ("first", "last", "max", "count", "index", "id", "pid")  # int or null where present
# job.json: the keys the controller and the listings read without looking
SPEC_TYPES = {
    "name": (str,), "host": (str, NOTHING), "jobtype": (str,), "workdir": (str,), "args": (list,),
    "env": (dict,), "array": (dict, NOTHING), "hold": (bool,), "submitted": (*NUMBER, NOTHING),
    "stdout": (str, NOTHING), "stderr": (str, NOTHING), "on": (list,), "mail_events": (str,),
}


def read_record(job: int, folder, name: str, dir_fd: int | None = None) -> dict | None:
    """The JSON object in folder/name (read relative to `dir_fd`, the open
    `folder`, when given); None when there is no such file."""
    try:
        data = fsutil.read_bytes(name, dir_fd=dir_fd) if dir_fd is not None else fsutil.read_bytes(folder / name)
    except OSError as exc:
        raise Damaged(job, f"{name}: {_why(exc)}") from None
    if data is None:
        return None
    try:
        value = jsontext.loads(data)
    except ValueError:
        raise Damaged(job, f"{name}: {'empty' if not data.strip() else 'not valid JSON (truncated?)'}") from None
    if not isinstance(value, dict):
        raise Damaged(job, f"{name}: not a JSON object")
    return value


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symbolic link (never followed)"
    if exc.errno == errno.EISDIR:
        return "a directory"
    if exc.errno == errno.ENOTDIR:
        return "the job's directory is not a directory"
    return exc.strerror or str(exc)


def check_state(job: int, data: dict, spec: dict | None) -> dict:
    """`data` (state.json) when every known key has the right type; else Damaged."""
    bad = _bad_key(data, STATE_TYPES)
    if bad is None and data.get("state", states.QUEUED) not in states.STORED:
        bad = "state"
    if bad is None and data.get("pending") not in PENDING:
        bad = "pending"
    if bad is None and not configcheck.valid_host(data.get("host") or "x"):
        bad = "host"
    if bad is None and any(data.get(k, 0) < 0 for k in ("run", "attempt", "restarts")):
        bad = next(k for k in ("run", "attempt", "restarts") if data.get(k, 0) < 0)
    bad = bad or _bad_time(data)
    if bad is not None:
        raise Damaged(job, f"state.json: {bad} is {_show(data[bad])}", spec)
    return data


def check_spec(job: int, data: dict) -> dict:
    """`data` (job.json) when the keys readers rely on have the right type; else Damaged."""
    bad = _bad_key(data, SPEC_TYPES)
    if bad is None and not configcheck.valid_host(data.get("host") or "x"):
        bad = "host"
    bad = bad or _bad_time(data) or _bad_shape(data)
    if bad is not None:
        raise Damaged(job, f"job.json: {bad} is {_show(data[bad])}")
    return data


def _bad_key(data: dict, types: dict) -> str | None:
    for key, accepted in types.items():
        if key in data:
            value = data[key]
            if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
                return key
    return None


def _bad_time(data: dict) -> str | None:
    """The first time that is not a finite number of seconds between 1970 and
    year 9999 (NaN, 1e300 and 1e400, which JSON reads as infinity, would break
    the listings' rendering and the summary)."""
    for key in TIMES:
        value = data.get(key)
        if value is not None and not 0 <= value <= MAX_TIME:  # False for NaN too
            return key
    return None


def _bad_shape(data: dict) -> str | None:
    """The first list or mapping of job.json whose elements have the wrong
    shape: "on" holds [EVENT, COMMAND] pairs of text, "args" text, "env" text
    to text, "array" whole numbers (the controller's code takes them as such)."""
    if any(not (isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p))
           for p in data.get("on", ())):
        return "on"
    if not all(isinstance(a, str) for a in data.get("args", ())):
        return "args"
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.get("env", {}).items()):
        return "env"
    array = data.get("array") or {}
    if any(not _whole(array.get(k)) for k in ARRAY_INTS) or not isinstance(array.get("token"), (str, NOTHING)):
        return "array"
    return None


def _whole(value) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _show(value) -> str:
    text = jsontext.dumps(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."
