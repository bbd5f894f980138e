"""What gsat trusts under GSAT_HOME, decided in one place.

gsat acts only on what the user could have written alone.  A directory it
reads or writes is trusted when it is

    a real directory, not a symlink       (lstat, never followed)
    owned by the effective user           (not root's files for a user, nor the reverse)
    not writable by group or others       (nobody else can add, swap or remove entries)

Another local user who could write to one of them could plant a job (run
as the victim), swap a reply FIFO, or move the store aside.  The checks:

- `store_problem(layout)`: every directory a controller reads: GSAT_HOME,
  jobs/, spool/, spool/HOST/ with tmp/ new/ bad/ reply/, hosts/, hosts/HOST/.
  Layout.ensure() refuses (HomeUnusable, exit 6) at every command's start;
  a running controller asks at every step and, while the answer is a
  reason, takes on and starts nothing (gsat.controller).
- `require_readable(home)`: GSAT_HOME, jobs/, spool/, hosts/ and every
  hosts/HOST/ for the reading tools (gqstat, gqpeek, gqnodes): a store
  others can write can lie (a planted summary row).
- `info_problem` of an opened job directory (gsat.jobs): a job directory
  that is a symlink or not the user's own is set aside, never run, never
  deleted through.
- code and config: config.yaml and .config.cache.json, jobtypes/*.yaml,
  services/onE/*, hosts/HOST/summary.tsv, mailgate/ files.  A file is
  trusted when it is a regular file (not a symlink) of the effective user
  that group and others cannot write.  `open_file`/`read_file` open it
  O_NOFOLLOW and check the descriptor (fstat); `store_problem` also looks
  at them (lstat) at every controller step, so that what another user
  planted while a directory was open to her is refused once it is closed
  again, not run.

Stdlib only (it runs on gqstat's hot path); imports nothing from gsat but
the errors.
"""

import os
import stat

from gsat.errors import Damaged, HomeUnusable, NoSuchJob, Untrusted


def info_problem(path, info: os.stat_result) -> str | None:
    """Why a directory with this (l)stat cannot be trusted; None when it can."""
    return _kind_problem(path, info, stat.S_ISDIR, "a directory") or _owner_problem(path, info)


def file_problem(path, info: os.stat_result) -> str | None:
    """Why a file (code or config) with this (l)stat cannot be trusted; None when it can."""
    return _kind_problem(path, info, stat.S_ISREG, "a regular file") or _owner_problem(path, info)


def _kind_problem(path, info: os.stat_result, is_kind, kind: str) -> str | None:
    if stat.S_ISLNK(info.st_mode):
        return f"{path} is a symlink"
    return None if is_kind(info.st_mode) else f"{path} is not {kind}"


def entry_problem(path, info: os.stat_result) -> str | None:
    """info_problem for a directory, file_problem for anything else."""
    return (info_problem if stat.S_ISDIR(info.st_mode) else file_problem)(path, info)


def _owner_problem(path, info: os.stat_result) -> str | None:
    if info.st_uid != os.geteuid():
        return f"{path} belongs to uid {info.st_uid}, not to you (uid {os.geteuid()})"
    if info.st_mode & 0o022:
        return (f"{path} is writable by others (mode {stat.S_IMODE(info.st_mode):04o}); "
                f"chmod go-w it")
    return None


def dir_problem(path, missing_ok: bool = False) -> str | None:
    """Why the directory `path` cannot be trusted (never following it); None when it can."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None if missing_ok else f"{path} is missing"
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    return info_problem(path, info)


def path_problem(path) -> str | None:
    """Why the file or directory `path` cannot be trusted (lstat); None when it
    can or is missing."""
    try:
        return entry_problem(path, os.lstat(path))
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{path}: {exc.strerror}"


def tree_problem(folder, depth: int) -> str | None:
    """The first reason not to trust `folder` (missing is fine) or an entry in
    it, down to `depth` levels of subdirectories; None when none."""
    reason = dir_problem(folder, missing_ok=True)
    if reason:
        return reason
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{folder}: {exc.strerror}"
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # gone meanwhile: nothing left to trust
        except OSError as exc:
            return f"{entry.path}: {exc.strerror}"
        if depth and stat.S_ISDIR(info.st_mode):
            reason = tree_problem(entry.path, depth - 1)
        else:
            reason = entry_problem(entry.path, info)
        if reason:
            return reason
    return None


def store_problem(layout, host: str | None = None) -> str | None:
    """The first reason not to trust what `host`'s controller uses; None when none:
    its directories (layout.private_dirs; the optional ones may be missing),
    the config files, and every job type and user service (layout.code_trees).
    Some twenty lstat calls and two small scans: cheap enough for every step."""
    optional = layout.optional_dirs(host)
    for path in layout.private_dirs(host):
        reason = dir_problem(path, missing_ok=path in optional)
        if reason:
            return reason
    for path in layout.config_files():
        reason = path_problem(path)
        if reason:
            return reason
    for folder, depth in layout.code_trees():
        reason = tree_problem(folder, depth)
        if reason:
            return reason
    return None


def require_dir(path, missing_ok: bool = True) -> None:
    """HomeUnusable unless the directory `path` is trusted (or missing, when that is ok)."""
    reason = dir_problem(path, missing_ok)
    if reason:
        raise HomeUnusable(reason)


def open_file(path, dir_fd: int | None = None) -> int | None:
    """A read-only descriptor of the file `path` (never through a symlink), or
    None when there is none; HomeUnusable when it is not a regular file of
    ours that only we can write (checked on the descriptor: fstat)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a symlink
        reason = (path_problem(path) if dir_fd is None else None) or f"{path}: {exc.strerror}"
        raise HomeUnusable(f"{reason}: not using it") from None
    reason = file_problem(path, os.fstat(fd))
    if reason:
        os.close(fd)
        raise HomeUnusable(f"{reason}: not using it")
    return fd


def read_file(path, limit: int = 1 << 20) -> bytes | None:
    """The bytes of a trusted file (open_file), None when it is missing."""
    fd = open_file(path)
    if fd is None:
        return None
    try:
        size = os.fstat(fd).st_size
        return os.read(fd, min(limit, size + 1 if size else limit))
    finally:
        os.close(fd)


def require_readable(home) -> None:
    """HomeUnusable unless GSAT_HOME, jobs/, spool/, hosts/ and every hosts/HOST/
    are the user's own (a missing one holds nothing that could lie)."""
    hosts = os.path.join(home, "hosts")
    for path in (home, os.path.join(home, "jobs"), os.path.join(home, "spool"), hosts, *_subdirs(hosts)):
        reason = dir_problem(path, missing_ok=True)
        if reason:
            raise HomeUnusable(f"{reason}: not reading it")


def _subdirs(folder) -> list[str]:
    try:
        return [os.path.join(folder, name) for name in os.listdir(folder)]
    except OSError:  # missing, or not a directory: the check of `folder` says so
        return []


# ---- job directories ----------------------------------------------------

NOT_OURS = "not a job of yours, never run nor deleted through"  # the end of an Untrusted's text


def open_job_dir(layout, job: int) -> int:
    """A descriptor of jobs/N, opened without following a symlink: NoSuchJob
    when there is none, Untrusted when it is not a directory of ours that
    only we can write.  The caller closes it."""
    folder = layout.job_dir(job)
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NoSuchJob(f"no such job {job}") from None
    except NotADirectoryError:  # a symlink (O_NOFOLLOW), or a file: lstat says which
        _not_a_directory(job, folder)
    reason = info_problem(folder, os.fstat(fd))
    if reason:
        os.close(fd)
        _refuse(job, reason)
    return fd


def _not_a_directory(job: int, folder) -> None:
    """Untrusted for a symlink or another user's file; a file of ours is a
    damaged record."""
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        raise NoSuchJob(f"no such job {job}") from None
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid():
        _refuse(job, info_problem(folder, info))
    raise Damaged(job, f"{folder} is not a directory")


def _refuse(job: int, reason: str):
    raise Untrusted(f"job {job}: {reason}: {NOT_OURS}")
