"""Services: the executables run when an event happens (SPEC §6).

For event E of a job, in this order:

    libexec/services/onE/*      system services  } merged, sorted by name
    $GSAT_HOME/services/onE/*   user services    }
    gqsub --on E=COMMAND        the job's own, in the order given (run by /bin/sh -c)

Skipped: names starting with '.', editor backups (`~`, `#…#`, .bak, .swp,
.orig, .rej, .dpkg-*), anything not a regular executable file, and a
service whose head (first 5 lines) says `# gsat-when: KEY` or
`# gsat-when: KEY=VALUE` when the job's spec (job.json) has no true KEY, or
KEY is not VALUE: the shipped mail service says `# gsat-when: mail_events`,
so jobs that asked for no mail start no process for it.

Each service runs as its own session, as the user, with the job's
environment plus GSAT_EVENT, GSAT_EVENT_ID, GSAT_EVENT_ARGS (the trigger
arguments, JSON), GSAT_JOB_EXIT_VALUE where it applies, and the event as
JSON on stdin.  Job names and arguments travel only as data (environment,
stdin), never through a shell.  Output goes to
jobs/N/services/EVENT_ID.NAME.log, capped at LOG_LIMIT bytes (RLIMIT_FSIZE:
a service that writes more is stopped, nobody else suffers).

At least once: before an event with services is appended to the job's
events.log it is written to the host's outbox (hosts/HOST/outbox/ID.json);
the file goes once all its services have been started.  A controller that
finds outbox files at start runs their services then.
"""

import json
import os
import resource
import subprocess

from gsat import fsutil, lazylog, trust

LOG_LIMIT = 1 << 20
BACKUP_SUFFIXES = ("~", ".bak", ".swp", ".swo", ".orig", ".rej", ".tmp")


def find(event: str, dirs: list, spec: dict, checked=()) -> list[tuple[str, list[str]]]:
    """[(name, argv)] of the services for `event` of the job `spec`, in order.
    A folder in `checked` (the user's) is used only while gsat.trust trusts it,
    its onE/ and each service in it, looked at on every call (the listing is
    cached, the check is not); an untrusted one is skipped and logged."""
    found = {}
    for folder in dirs:
        listed = _executables(os.path.join(folder, "on" + event))
        if folder in checked:
            listed = _trusted(folder, event, listed)
        for name, path in listed:
            found.setdefault(name, path)  # the first folder (system) wins a name clash
    ordered = [(name, [path]) for name, path in sorted(found.items()) if applies(path, spec)]
    job_on = spec.get("on") or []
    ordered += [(f"on.{i}", ["/bin/sh", "-c", cmd]) for i, (ev, cmd) in enumerate(job_on, 1) if ev == event]
    return ordered


def _trusted(folder: str, event: str, listed: list) -> list[tuple[str, str]]:
    """The services of `listed` that gsat.trust trusts, with their folders; the
    rest logged.  Trusted folders let nobody else swap a file before it runs."""
    reason = (trust.dir_problem(folder, missing_ok=True)
              or trust.dir_problem(os.path.join(folder, "on" + event), missing_ok=True))
    kept = [] if reason else [(name, path) for name, path in listed if not trust.path_problem(path)]
    if len(kept) < len(listed):
        problems = [reason] if reason else [trust.path_problem(path) for _, path in listed]
        lazylog.get(__name__).error("services of %s not run: %s", event, "; ".join(filter(None, problems)))
    return kept


_LISTED: dict[str, tuple[int, list]] = {}  # folder -> (mtime_ns, [(name, path)])


def _executables(folder: str) -> list[tuple[str, str]]:
    """The services in `folder`, listed again only when the folder changed
    (a stat per event instead of a directory scan: this is on every job's path)."""
    try:
        mtime = os.stat(folder).st_mtime_ns
    except (FileNotFoundError, NotADirectoryError):
        return []
    cached = _LISTED.get(folder)
    if cached and cached[0] == mtime:
        return cached[1]
    found = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        name = entry.name
        if name.startswith((".", "#")) or name.endswith(BACKUP_SUFFIXES) or ".dpkg-" in name:
            continue
        if entry.is_file() and os.access(entry.path, os.X_OK):
            found.append((name, entry.path))
    _LISTED[folder] = (mtime, found)
    return found


_WHEN: dict[str, tuple[int, str | None]] = {}  # path -> (mtime_ns, condition)


def applies(path: str, spec: dict) -> bool:
    """False when the service's `# gsat-when:` line excludes this job."""
    condition = _condition(path)
    if not condition:
        return True
    key, eq, value = condition.partition("=")
    have = spec.get(key.strip())
    return str(have) == value.strip() if eq else bool(have)


def _condition(path: str) -> str | None:
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        return None
    cached = _WHEN.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    condition = None
    try:
        with open(path, "rb") as f:
            for line in f.read(2048).decode("utf-8", "replace").splitlines()[:5]:
                if line.startswith("# gsat-when:"):
                    condition = line.split(":", 1)[1].strip()
    except OSError:
        pass
    _WHEN[path] = (mtime, condition)
    return condition


def environment(job_env: dict, event: dict) -> dict:
    env = dict(job_env)
    env["GSAT_EVENT"] = event["name"]
    env["GSAT_EVENT_ID"] = event["id"]
    env["GSAT_EVENT_ARGS"] = json.dumps(event.get("args", []))
    if event.get("exit") is not None:
        env["GSAT_JOB_EXIT_VALUE"] = str(event["exit"])
    return env


def launch(argv: list[str], env: dict, cwd: str, log_path: str, event: dict) -> subprocess.Popen:
    """Start one service; it reads the event as JSON on stdin."""
    os.makedirs(os.path.dirname(log_path), 0o700, exist_ok=True)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        proc = subprocess.Popen(argv, env=env, cwd=cwd if os.path.isdir(cwd) else "/",
                                stdin=subprocess.PIPE, stdout=log, stderr=log,
                                start_new_session=True, preexec_fn=_limits)
    finally:
        os.close(log)
    os.set_blocking(proc.stdin.fileno(), False)
    try:
        proc.stdin.write(json.dumps(event).encode() + b"\n")
        proc.stdin.close()
    except (BlockingIOError, BrokenPipeError):
        pass  # a service need not read its stdin
    return proc


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (LOG_LIMIT, LOG_LIMIT))


def log_path(jobdir, event: dict, name: str) -> str:
    return os.path.join(jobdir, "services", f"{event['id']}.{name}.log")


# ---- the outbox: events whose services have not all been started ----------

def outbox(layout) -> str:
    return os.path.join(layout.host_dir(), "outbox")


def put(layout, job_id: int, event: dict) -> None:
    os.makedirs(outbox(layout), 0o700, exist_ok=True)
    fsutil.write_json(os.path.join(outbox(layout), event["id"] + ".json"), {"job": job_id, "event": event})


def done(layout, event: dict) -> None:
    fsutil.unlink_quietly(os.path.join(outbox(layout), event["id"] + ".json"))


def pending(layout) -> list[dict]:
    """The outbox entries {job, event}, oldest first."""
    folder = outbox(layout)
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json") and not n.startswith("."))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        try:
            out.append(fsutil.read_json(os.path.join(folder, name)))
        except ValueError:
            fsutil.unlink_quietly(os.path.join(folder, name))
    return [entry for entry in out if entry]


# ---- services in flight --------------------------------------------------

class Runner:
    """The services this controller started and has not reaped yet."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.running: dict[int, dict] = {}  # pid -> {proc, deadline, job, event, name, log}

    def start(self, job_id: int, event: dict, found: list, env: dict, cwd: str, jobdir, now: float) -> list[int]:
        pids = []
        for name, argv in found:
            path = log_path(jobdir, event, name)
            try:
                proc = launch(argv, env, cwd, path, event)
            except OSError as exc:
                _note(path, f"gsat: cannot start service {name}: {exc}")
                continue
            self.running[proc.pid] = {"proc": proc, "deadline": now + self.timeout, "job": job_id,
                                      "event": event["id"], "name": name, "log": path}
            pids.append(proc.pid)
        return pids

    def reaped(self, pid: int, status: int) -> dict | None:
        """Book the end of service `pid` (already waited for); its record, with "exit"."""
        run = self.running.pop(pid, None)
        if run is not None:
            run["exit"] = run["proc"].returncode = os.waitstatus_to_exitcode(status)
        return run

    def kill_overdue(self, now: float) -> list[dict]:
        late = [run for run in self.running.values() if run["deadline"] <= now]
        for run in late:
            _note(run["log"], f"gsat: service {run['name']} killed after {self.timeout:g} s")
            try:
                os.killpg(run["proc"].pid, 9)
            except ProcessLookupError:
                pass
            run["deadline"] = float("inf")  # killed once; reaped like any other
        return late

    def next_deadline(self) -> float | None:
        deadlines = [r["deadline"] for r in self.running.values() if r["deadline"] != float("inf")]
        return min(deadlines) if deadlines else None


def _note(path: str, text: str) -> None:
    try:
        fsutil.append_line(path, text.encode() + b"\n", sync=False)
    except OSError:
        pass
