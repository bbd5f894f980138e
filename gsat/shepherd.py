"""The shepherd: the small process that runs one job and outlives the
controller.

The controller forks it (much cheaper than a new interpreter).  It:

1. leaves the controller's session (setsid) and ignores terminal signals;
2. publishes runs/N.start {shepherd identity, boot id} with link(), which
   fails if the file exists: a controller recovering from a crash fences a
   start it cannot account for by creating that file first, and then the
   shepherd exits without running anything, so no job runs twice;
3. forks the job into its own session and process group (pgid = job pid),
   with its environment, working directory and output files, and records
   the job's pid in runs/N.start;
4. waits for it and writes runs/N.exit {exit value, signal, end time, boot}
   durably (fsync file and directory) before anybody is told;
5. tells a controller by message only when it was orphaned (its parent is
   no longer the controller that forked it); its own parent learns from
   SIGCHLD.

Exit values: the job's exit status, 128+N when killed by signal N, 127 when
the script cannot be run, 126 when it is not executable.
"""

import dataclasses
import errno
import json
import os
import signal
import time
import typing

from gsat import fsutil, procinfo

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


def start_path(jobdir: str, run: int) -> str:
    return os.path.join(jobdir, "runs", f"{run}.start")


def exit_path(jobdir: str, run: int) -> str:
    return os.path.join(jobdir, "runs", f"{run}.exit")


def read_start(jobdir: str, run: int) -> dict | None:
    return fsutil.read_json(start_path(jobdir, run))


def read_exit(jobdir: str, run: int) -> dict | None:
    return fsutil.read_json(exit_path(jobdir, run))


def publish_record(path: str, record: dict) -> bool:
    """Create `path` holding `record` atomically; False if it already exists."""
    tmp = fsutil.temp_name(path)
    fsutil.write_new(tmp, json.dumps(record).encode(), sync=False)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
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
    os.setsid()
    signal.set_wakeup_fd(-1)
    # the controller's fds (its lock above all) must not live on in here
    os.closerange(3, _max_fd())
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    record = {"shepherd": procinfo.identity(os.getpid()), "job_pid": None, "started": time.time()}
    if not publish_record(start_path(spec.jobdir, spec.run), record):
        return 0  # fenced by a recovering controller: this run must not happen
    # the pipe closes when the job execs (or dies): only then is it surely
    # in its own process group, and only then is its pid published
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        _exec_job(spec)
    os.close(ready_w)
    while os.read(ready_r, 64):
        pass
    os.close(ready_r)
    record["job_pid"] = pid
    fsutil.atomic_write(start_path(spec.jobdir, spec.run), json.dumps(record).encode(), sync=False)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    ended = {"exit": code if code >= 0 else 128 - code, "signal": -code if code < 0 else None,
             "ended": time.time(), "boot": record["shepherd"]["boot"]}
    fsutil.atomic_write(exit_path(spec.jobdir, spec.run), json.dumps(ended).encode())
    if spec.notify and os.getppid() != spec.controller_pid:
        spec.notify(spec.job, spec.run)
    return 0


def _exec_job(spec: RunSpec) -> None:
    """In the job's own process: set up and exec; never returns."""
    try:
        os.setsid()
        for sig in range(1, signal.NSIG):
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        _redirect(spec)
        os.chdir(spec.cwd)
    except OSError as exc:
        _die(f"gsat: job {spec.job}: {getattr(exc, 'filename', '') or ''}: {exc.strerror}", 1)
    try:
        os.execve(spec.argv[0], spec.argv, spec.env)
    except OSError as exc:
        if exc.errno == errno.ENOEXEC:  # no #! line: run it with /bin/sh, as PBS does
            try:
                os.execve("/bin/sh", ["/bin/sh", *spec.argv], spec.env)
            except OSError as exc2:
                exc = exc2
        _die(f"gsat: job {spec.job}: cannot run {spec.argv[0]}: {exc.strerror}",
             126 if exc.errno in (errno.EACCES, errno.EPERM) else 127)


def _redirect(spec: RunSpec) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if spec.run == 1 else 0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    try:
        out = os.open(spec.stdout, flags, 0o600)
        err = out if spec.stderr is None else os.open(spec.stderr, flags, 0o600)
    except OSError as exc:
        fallback = os.open(os.path.join(spec.jobdir, "stderr"), flags, 0o600)
        os.dup2(fallback, 2)
        raise exc
    os.dup2(out, 1)
    os.dup2(err, 2)
    for fd in {null, out, err} - {0, 1, 2}:
        os.close(fd)


def _die(text: str, code: int) -> None:
    try:
        os.write(2, text.encode(errors="replace") + b"\n")
    finally:
        os._exit(code)


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        return 1024
