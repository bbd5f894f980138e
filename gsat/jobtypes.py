"""Job types: declarative YAML files that say how a kind of job is held and
when it is restarted.

    # etc/jobtypes/gtransfer.yaml
    hold_signal: INT          # sent to the process group by gqhold
    restart_on: [75]          # exit values that mean "run it again"
    restart_limit: 3          # at most this many automatic restarts
    environment:              # added to the job's environment
      X509_USER_PROXY: ...    # $VARS expand against the job environment and $UID

The user's GSAT_HOME/jobtypes/NAME.yaml overrides the shipped one of the
same name.  Only the controller parses these files (PyYAML); the tools only
check that a type exists.
"""


from gsat.errors import UsageError
from gsat.paths import Path
from gsat.record import Record

KEYS = {"hold_signal", "restart_on", "restart_limit", "environment", "description"}


class JobType(Record):
    __slots__ = ()
    FIELDS = {"name": "default", "hold_signal": 15, "restart_on": (), "restart_limit": 0, "environment": {}}


def find(name: str, dirs: list[Path]) -> Path:
    """The file that defines type `name`; UsageError when there is none."""
    if not name or "/" in name or name.startswith("."):
        raise UsageError(f"unknown job type {name!r}")
    for folder in dirs:
        path = folder / f"{name}.yaml"
        if path.is_file():
            return path
    raise UsageError(f"unknown job type {name!r}")


def load(name: str, dirs: list[Path]) -> JobType:
    import yaml

    from gsat import signames
    path = find(name, dirs)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: {exc}") from None
    if not isinstance(data, dict) or set(data) - KEYS:
        raise UsageError(f"{path}: expected keys among {', '.join(sorted(KEYS))}")
    return JobType(
        name=name,
        hold_signal=signames.parse(data.get("hold_signal", "TERM")),
        restart_on=tuple(int(v) for v in data.get("restart_on") or ()),
        restart_limit=int(data.get("restart_limit", 0)),
        environment={str(k): str(v) for k, v in (data.get("environment") or {}).items()},
    )


class Catalog:
    """The job types in `dirs`, each parsed once and again when its file changes."""

    def __init__(self, dirs: list[Path]):
        self.dirs = dirs
        self._cache: dict[str, tuple[float, JobType]] = {}

    def get(self, name: str) -> JobType:
        """The job type `name`; UsageError or OSError when it cannot be had."""
        path = find(name, self.dirs)
        mtime = path.stat().st_mtime
        cached = self._cache.get(name)
        if cached is None or cached[0] != mtime:
            self._cache[name] = (mtime, load(name, self.dirs))
        return self._cache[name][1]

    def get_or_default(self, name: str) -> JobType:
        """The job type, or (logged) the defaults when its file went missing or broke."""
        try:
            return self.get(name)
        except (UsageError, OSError) as exc:
            from gsat import lazylog
            lazylog.get(__name__).warning("job type %s unusable (%s); using defaults", name, exc)
            return JobType(name=name)
