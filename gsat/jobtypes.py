"""Job types: declarative YAML files that say how a kind of job is held and
when it is restarted.

    # etc/jobtypes/gtransfer.yaml
    hold_signal: INT          # sent to the process group by gqhold
    restart_on: [75]          # exit values that mean "run it again"
    restart_limit: 3          # at most this many automatic restarts
    environment:              # added to the job's environment
      X509_USER_PROXY: ...    # $VARS expand against the job environment and $UID

The user's GSAT_HOME/jobtypes/NAME.yaml overrides the shipped one of the
same name.  The user's files are used only when gsat.trust trusts them
(a regular file of yours that others cannot write, opened O_NOFOLLOW), on
every use, not only when a cached parse is refreshed: HomeUnusable (exit
6) for one another user could have planted.  Every key is checked when a file is read (load): a wrong one is a
UsageError naming the file and the key.  The controller parses these
files (PyYAML); gqsub only when a type is named (-T), to refuse a bad one.
"""


import os

from gsat import trust
from gsat.errors import GsatError, HomeUnusable, UsageError
from gsat.paths import Path
from gsat.record import Record

KEYS = {"hold_signal", "restart_on", "restart_limit", "environment", "description"}


class JobType(Record):
    __slots__ = ()
    FIELDS = {"name": "default", "hold_signal": 15, "restart_on": (), "restart_limit": 0, "environment": {}}


def check(name: str, dirs: list[Path]) -> None:
    """UsageError unless type `name` exists and every key of its file is right."""
    load(name, dirs)


def find(name: str, dirs: list[Path]) -> Path:
    """The file that defines type `name`; UsageError when there is none.
    dirs[0] is the user's (GSAT_HOME/jobtypes): a file there, and the folder,
    must be trusted (HomeUnusable otherwise); the shipped ones are the install's."""
    if not name or "/" in name or name.startswith("."):
        raise UsageError(f"unknown job type {name!r}")
    for i, folder in enumerate(dirs):
        path = folder / f"{name}.yaml"
        if i == 0 and _user_file(folder, path):
            return path
        if i and path.is_file():
            return path
    raise UsageError(f"unknown job type {name!r}")


def _user_file(folder: Path, path: Path) -> bool:
    """Whether the user's type file `path` exists; HomeUnusable when it, or
    its folder, is not to be trusted."""
    trust.require_dir(folder)
    reason = trust.path_problem(path)
    if reason:
        raise HomeUnusable(f"{reason}: not using it")
    return os.path.lexists(path)


def _open(path: Path, dirs: list[Path]) -> int:
    """A descriptor of a type file; the user's (in dirs[0]) checked on it (gsat.trust)."""
    if path.parent != dirs[0]:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    fd = trust.open_file(path)
    if fd is None:
        raise FileNotFoundError(2, "No such file or directory", str(path))
    return fd


def _mtime(path: Path, dirs: list[Path]) -> float:
    fd = _open(path, dirs)
    try:
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)


def _text(path: Path, dirs: list[Path]) -> str:
    with os.fdopen(_open(path, dirs), "rb") as f:
        return f.read().decode()


def load(name: str, dirs: list[Path]) -> JobType:
    """The job type `name`, every key checked: UsageError naming the file and
    the key when one is wrong (gqsub -T exits 2 on it; the controller fails a
    job whose type went bad after it was submitted, gsat.runs)."""
    import yaml
    path = find(name, dirs)
    try:
        data = yaml.safe_load(_text(path, dirs))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: {exc}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of keys among {', '.join(sorted(KEYS))}")
    unknown = sorted(map(str, set(data) - KEYS))
    if unknown:
        raise UsageError(f"{path}: unknown key {unknown[0]!r} (expected keys among {', '.join(sorted(KEYS))})")
    values = {}
    for key, check in CHECKS.items():
        try:
            values[key] = check(data[key]) if key in data else JobType.FIELDS[key]
        except (UsageError, TypeError, ValueError) as exc:
            raise UsageError(f"{path}: {key}: {exc}") from None
    if not isinstance(data.get("description", ""), str):
        raise UsageError(f"{path}: description: expected a text")
    return JobType(name=name, **values)


def _signal(value) -> int:
    from gsat import signames
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"expected a signal name or number, got {value!r}")
    try:
        return signames.parse(str(value))
    except UsageError:
        raise ValueError(f"expected a signal name or number, got {value!r}") from None


def _exit_values(value) -> tuple:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(_is_exit_value(v) for v in value):
        raise ValueError(f"expected a list of exit values 0-255, got {value!r}")
    return tuple(value)


def _is_exit_value(value) -> bool:
    return type(value) is int and 0 <= value <= 255


def _count(value) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"expected a whole number >= 0, got {value!r}")
    return value


def _environment(value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and k and "=" not in k and isinstance(v, (str, int, float)) and not isinstance(v, bool)
            for k, v in value.items()):
        raise ValueError(f"expected a mapping of variable names to texts or numbers, got {value!r}")
    return {k: str(v) for k, v in value.items()}


CHECKS = {"hold_signal": _signal, "restart_on": _exit_values, "restart_limit": _count,
          "environment": _environment}


class Catalog:
    """The job types in `dirs`, each parsed once and again when its file changes."""

    def __init__(self, dirs: list[Path]):
        self.dirs = dirs
        self._cache: dict[str, tuple[float, JobType]] = {}

    def get(self, name: str) -> JobType:
        """The job type `name`; UsageError or OSError when it cannot be had."""
        path = find(name, self.dirs)
        mtime = _mtime(path, self.dirs)  # checked at every use, not only when it changed
        cached = self._cache.get(name)
        if cached is None or cached[0] != mtime:
            self._cache[name] = (mtime, load(name, self.dirs))
        return self._cache[name][1]

    def get_or_default(self, name: str) -> JobType:
        """The job type, or (logged) the defaults when its file went missing or broke."""
        try:
            return self.get(name)
        except (GsatError, OSError) as exc:  # HomeUnusable: not trusted, never used
            from gsat import lazylog
            lazylog.get(__name__).warning("job type %s unusable (%s); using defaults", name, exc)
            return JobType(name=name)
