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
- `require_readable(home)`: GSAT_HOME, jobs/ and hosts/ for the reading
  tools (gqstat, gqpeek, gqnodes): a store others can write can lie.
- `info_problem` of an opened job directory (gsat.jobs): a job directory
  that is a symlink or not the user's own is set aside, never run, never
  deleted through.

Stdlib only (it runs on gqstat's hot path); imports nothing from gsat but
the errors.
"""

import os
import stat

from gsat.errors import HomeUnusable


def info_problem(path, info: os.stat_result) -> str | None:
    """Why a directory with this (l)stat cannot be trusted; None when it can."""
    if stat.S_ISLNK(info.st_mode):
        return f"{path} is a symlink"
    if not stat.S_ISDIR(info.st_mode):
        return f"{path} is not a directory"
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


def store_problem(layout, host: str | None = None) -> str | None:
    """The first reason not to trust the directories `host`'s controller uses; None when none.
    About a dozen lstat calls: cheap enough for every step of the controller."""
    for path in layout.private_dirs(host):
        reason = dir_problem(path)
        if reason:
            return reason
    return None


def require_readable(home) -> None:
    """HomeUnusable unless GSAT_HOME, jobs/ and hosts/ are the user's own (a
    missing one holds nothing that could lie)."""
    for path in (home, os.path.join(home, "jobs"), os.path.join(home, "hosts")):
        reason = dir_problem(path, missing_ok=True)
        if reason:
            raise HomeUnusable(f"{reason}: not reading it")
