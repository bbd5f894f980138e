"""The shepherd: the small process that runs one job and outlives the
controller.

The controller forks it (much cheaper than a new interpreter).  It:

1. leaves the controller's session (setsid) and ignores terminal signals;
2. publishes runs/N.start {shepherd identity, boot id} with link(), which
   fails if the file exists: a controller recovering from a crash fences a
   start it cannot account for by creating that file first, and then the
   shepherd exits without running anything, so no job runs twice;
3. starts the job (posix_spawn) in its own session and process group
   (pgid = job pid), with its environment, working directory and output
   files, and records the job's pid in runs/N.start;
4. waits for it and writes runs/N.exit {exit value, signal, end time, boot}
   durably (fsync file and directory) before anybody is told; a write that
   fails (a full disk) is tried again until it works, so the run's real
   exit value is never lost and its end never reported before it is durable;
5. tells its controller at once, by a line "JOB RUN PID" on the pipe the
   controller gave it (the exit of a forked interpreter takes the kernel a
   millisecond to tear down, and SIGCHLD comes after it); an orphaned
   shepherd (its parent is no longer that controller) tells whichever
   controller runs now by message instead.  SIGCHLD stays the controller's
   fallback: a shepherd killed before it could tell.

A shepherd forked here runs one job and exits; most are pooled instead
(gsat.spare): forked ahead of need, and waiting for the next run once their
job has ended.

Exit values: the job's exit status, 128+N when killed by signal N, 127 when
the script cannot be run, 126 when it is not executable.
"""

import dataclasses
import errno
import os
import signal
import time
import typing

from gsat import crashpoint, fsutil, jobs, jsontext, procinfo
from gsat.errors import GsatError

FENCED = {"fenced": True}


@dataclasses.dataclass(frozen=True)
class RunSpec:
    job: int
    run: int
    jobdir: str
    argv: list
    env: dict
    cwd: str
    stdout: str
    stderr: str | None  # None: joined with stdout
    controller_pid: int
    notify: typing.Callable[[int, int], None] | None = None
    ended_fd: int = -1  # the write end of the controller's pipe for "JOB RUN" lines


def run_spec(layout, job, env: dict, notify, ended_fd: int = -1) -> RunSpec:
    """What the shepherd of `job`'s current attempt needs to know."""
    jobdir = str(layout.job_dir(job.id))
    return RunSpec(job=job.id, run=job.state.attempt, jobdir=jobdir,
                   argv=[os.path.join(jobdir, "script"), *job.spec.get("args", [])], env=env,
                   cwd=job.spec["workdir"], stdout=jobs.output_path(layout, job, "stdout"),
                   stderr=jobs.output_path(layout, job, "stderr"), controller_pid=os.getpid(),
                   notify=notify, ended_fd=ended_fd)


def start_path(jobdir: str, run: int) -> str:
    return os.path.join(jobdir, "runs", f"{run}.start")


def exit_path(jobdir: str, run: int) -> str:
    return os.path.join(jobdir, "runs", f"{run}.exit")


def read_start(jobdir: str, run: int) -> dict | None:
    return fsutil.read_json(start_path(jobdir, run))


def read_exit(jobdir: str, run: int) -> dict | None:
    """The exit record of run `run`; None when there is none or it is unreadable
    (only a power cut could leave one half-written: the run is then lost)."""
    try:
        record = fsutil.read_json(exit_path(jobdir, run))
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("exit"), int) else None


FULL = (errno.ENOSPC, errno.EDQUOT)


def publish_record(path: str, record: dict, wait_for_room: bool = False) -> bool:
    """Create `path` holding `record` atomically; False if it already exists.
    With `wait_for_room` (a shepherd's start record) a full disk is waited
    out, as write_until_done does: a shepherd that died of it would leave a
    run that never began to be taken for lost (255)."""
    data, delay = jsontext.dumps(record).encode(), 0.01
    while True:
        tmp = fsutil.temp_name(path)
        try:
            fsutil.write_new(tmp, data, sync=False)
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if not (wait_for_room and exc.errno in FULL):
                raise
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)
        finally:
            fsutil.unlink_quietly(tmp)


def fence(jobdir: str, run: int) -> bool:
    """Claim run `run` for nobody; False when a shepherd has started it."""
    os.makedirs(os.path.join(jobdir, "runs"), 0o700, exist_ok=True)
    return publish_record(start_path(jobdir, run), FENCED)


def start(spec: RunSpec) -> int:
    """Fork the shepherd for `spec`; return its pid (in the controller)."""
    os.makedirs(os.path.join(spec.jobdir, "runs"), 0o700, exist_ok=True)
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        code = _shepherd(spec)
    finally:
        os._exit(code)


def _shepherd(spec: RunSpec) -> int:
    become_shepherd(keep=(spec.ended_fd,))
    run(spec, procinfo.identity(os.getpid()))
    yield_to_others()
    return 0


def become_shepherd(keep: tuple[int, ...]) -> None:
    """In a child just forked from the controller: leave its session, close
    its fds (its lock above all) but `keep`, ignore terminal signals."""
    os.setsid()
    signal.set_wakeup_fd(-1)
    low = 3
    for fd in sorted(fd for fd in keep if fd >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _max_fd())
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def run(spec: RunSpec, identity: dict) -> bool:
    """Be the shepherd of `spec` (steps 2 to 5 above) as the process `identity`;
    False when the controller that forked it was not told on its pipe."""
    record = {"shepherd": identity, "job_pid": None, "started": time.time()}
    if not publish_record(start_path(spec.jobdir, spec.run), record, wait_for_room=True):
        return False  # fenced by a recovering controller: this run must not happen
    crashpoint.at("run.published")
    pid, code = _launch(spec)
    crashpoint.at("run.spawned")
    os.chdir("/")  # a pooled shepherd must not keep the job's directory busy
    if pid:
        record["job_pid"] = pid  # posix_spawn returns after the exec: the group exists
        record["job_ticks"] = procinfo.start_ticks(pid)  # with job_pid: a reused pgid is never killed
        write_until_done(start_path(spec.jobdir, spec.run), jsontext.dumps(record).encode(), sync=False)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
    ended = {"exit": code if code >= 0 else 128 - code, "signal": -code if code < 0 else None,
             "ended": time.time(), "boot": record["shepherd"]["boot"]}
    write_until_done(exit_path(spec.jobdir, spec.run), jsontext.dumps(ended).encode())
    crashpoint.at("run.recorded")
    if os.getppid() == spec.controller_pid:
        return tell_ended(spec.ended_fd, spec.job, spec.run)
    if spec.notify:
        spec.notify(spec.job, spec.run)
    return False


RETRY_MAX = 1.0  # seconds between tries of a record write that failed


def write_until_done(path: str, data: bytes, sync: bool = True) -> None:
    """atomic_write, tried again (0.01 s, doubling to RETRY_MAX) until it
    works: a shepherd that gave up on a full disk would turn a real exit
    value into "lost"."""
    delay = 0.01
    while True:
        try:
            return fsutil.atomic_write(path, data, sync=sync)
        except (OSError, GsatError):
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)


def yield_to_others() -> None:
    """The kernel's teardown of a forked interpreter takes about a millisecond
    of CPU; at the lowest priority it does not delay the controller and the
    waiters the end just woke."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 19)
    except OSError:
        pass


def tell_ended(fd: int, job: int, run: int) -> bool:
    """The line "JOB RUN PID" on the controller's pipe (shorter than PIPE_BUF:
    it arrives whole); False when it could not be written (a full pipe, a
    gone reader): then the shepherd must exit, and SIGCHLD tells instead."""
    if fd < 0:
        return False
    try:
        os.write(fd, b"%d %d %d\n" % (job, run, os.getpid()))
        return True
    except OSError:
        return False


def ended_runs(data: bytes) -> list[tuple[int, int, int]]:
    """The (job, run, shepherd pid) triples the controller read from its pipe."""
    out = []
    for line in data.split(b"\n"):
        fields = line.split()
        if len(fields) == 3 and all(f.isdigit() for f in fields):
            out.append((int(fields[0]), int(fields[1]), int(fields[2])))
    return out


def _launch(spec: RunSpec) -> tuple[int, int]:
    """Start the job: (its pid, 0), or (0, exit value) when it cannot start.

    posix_spawn (vfork and exec in the C library) rather than fork: no
    Python code runs in the job's process, which makes starting cheap.
    The job gets its own session, default signal dispositions (the
    shepherd's ignored ones included), an empty signal mask, stdin from
    /dev/null and its output files; it inherits the shepherd's working
    directory and no other file descriptors (the shepherd's are CLOEXEC)."""
    try:
        os.chdir(spec.cwd)
        _create_outputs(spec)
    except OSError as exc:
        _complain(spec, f"{exc.filename or ''}: {exc.strerror}")
        return 0, 1
    argv = spec.argv
    for attempt in (argv, ["/bin/sh", *argv]):  # no #! line: /bin/sh runs it, as in PBS
        try:
            return os.posix_spawn(attempt[0], attempt, spec.env, file_actions=_actions(spec),
                                  setsid=True, setsigdef=RESET_SIGNALS, setsigmask=()), 0
        except OSError as exc:
            if exc.errno != errno.ENOEXEC or attempt is not argv:
                _complain(spec, f"cannot run {argv[0]}: {exc.strerror}")
                return 0, 126 if exc.errno in (errno.EACCES, errno.EPERM) else 127
    return 0, 127


RESET_SIGNALS = tuple(s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP))
APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND


def _create_outputs(spec: RunSpec) -> None:
    """Create (on the first run: empty) the output files; errors surface here."""
    for path in filter(None, (spec.stdout, spec.stderr)):
        os.close(os.open(path, APPEND | (os.O_TRUNC if spec.run == 1 else 0), 0o600))


def _actions(spec: RunSpec) -> list:
    err = (os.POSIX_SPAWN_DUP2, 1, 2) if spec.stderr is None else \
        (os.POSIX_SPAWN_OPEN, 2, spec.stderr, APPEND, 0o600)
    return [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, spec.stdout, APPEND, 0o600), err]


def _complain(spec: RunSpec, text: str) -> None:
    """Say why the job could not start, in its stderr (or the job directory's)."""
    line = f"gsat: job {spec.job}: {text}\n".encode(errors="replace")
    for path in (spec.stderr or spec.stdout, os.path.join(spec.jobdir, "stderr")):
        try:
            fsutil.append_line(path, line, sync=False)
            return
        except OSError:
            continue


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        return 1024
