"""Where everything lives inside GSAT_HOME (names only, no I/O but mkdir).

    GSAT_HOME/
      config.yaml            optional user config (keys: gsat.config.DEFAULTS)
      nextid                 hint for the next job id (never trusted alone)
      jobtypes/NAME.yaml     the user's job types
      services/onEVENT/      the user's services
      jobs/0000042/          one directory per job, the id zero-padded
        job.json             what was submitted (written once by gqsub)
        script               the copy of the job script
        state.json           state, host, times, exit (written by the controller)
        stdout, stderr       the job's output unless -o/-e send it elsewhere
        events.log           append-only, one JSON line per event
        runs/N.start         shepherd's record of run N: pids, start ticks, boot id
        runs/N.exit          shepherd's durable exit record of run N
        waiters/             FIFOs of gqwait calls, written by the controller
                             (event.* ones are also told of each event)
      spool/HOST/            one inbox per host's controller (see gsat.spool)
        tmp/ new/ bad/       message delivery, Maildir-style
        reply/               FIFOs on which clients wait for answers
      hosts/HOST/            lock, pid, log, heartbeat of that host's controller
      mailgate/              the mail gateway's allowlist, keyring (gnupg/), records

Every directory above that a controller uses is private (gsat.trust); so
are the files it reads as code or config (config_files, code_trees).

Stdlib only.
"""

import os

from gsat import trust
from gsat.errors import HomeUnusable
from gsat.paths import Path

JOB_DIGITS = 7
EVENT_WAITER = "event."  # the name prefix of a waiter FIFO told of events, not only of the end


class Layout:
    def __init__(self, home: Path, host: str):
        self.home = Path(home)
        self.host = host
        self.jobs = self.home / "jobs"
        self._job_dirs: dict[int, Path] = {}
        self._private: dict[str | None, list[Path]] = {}
        self.nextid = self.home / "nextid"

    def job_dir(self, job: int) -> Path:
        path = self._job_dirs.get(job)
        if path is None:  # a controller asks for the same few directories over and over
            path = self._job_dirs[job] = self.jobs / job_name(job)
            if len(self._job_dirs) > 4096:
                self._job_dirs.clear()
        return path

    def spool(self, host: str | None = None) -> Path:
        return self.home / "spool" / (host or self.host)

    def host_dir(self, host: str | None = None) -> Path:
        return self.home / "hosts" / (host or self.host)

    def user_jobtypes(self) -> Path:
        return self.home / "jobtypes"

    def user_services(self) -> Path:
        return self.home / "services"

    SPOOL_SUBDIRS = ("tmp", "new", "bad", "reply")

    def private_dirs(self, host: str | None = None) -> list[Path]:
        """Every directory `host`'s controller reads or writes, parents first
        (gsat.trust checks each one)."""
        dirs = self._private.get(host)
        if dirs is None:  # a controller asks at every step
            spool = self.spool(host)
            dirs = self._private[host] = [self.home, self.jobs, self.home / "spool", spool,
                                          *(spool / sub for sub in self.SPOOL_SUBDIRS),
                                          self.home / "hosts", self.host_dir(host),
                                          *self.optional_dirs(host)]
        return dirs

    def optional_dirs(self, host: str | None = None) -> tuple[Path, ...]:
        """The private_dirs that may be missing (made when first needed, by
        the user or by what writes them), never made by ensure()."""
        return (self.user_jobtypes(), self.user_services(), self.home / "mailgate",
                self.home / "mailgate" / "gnupg", self.host_dir(host) / "outbox")

    def config_files(self) -> tuple[Path, Path]:
        """The files every command reads as config (gsat.config), checked by gsat.trust."""
        return self.home / "config.yaml", self.home / ".config.cache.json"

    def code_trees(self) -> tuple[tuple[Path, int], ...]:
        """(folder, depth): the user's job types (jobtypes/*.yaml) and services
        (services/onE/*), every entry of which gsat.trust checks."""
        return (self.user_jobtypes(), 0), (self.user_services(), 1)

    def ensure(self, host: str | None = None) -> None:
        """Create what this host needs (mode 0700) and refuse (HomeUnusable)
        any of it that gsat.trust does not trust: another owner, a symlink, a
        mode that lets others write.  Every command does this: a look (lstat)
        first, mkdir only what is missing (never an optional one)."""
        optional = self.optional_dirs(host)
        for path in self.private_dirs(host):
            if path in optional:
                trust.require_dir(path)
            else:
                private_dir(path)


def job_name(job: int) -> str:
    return f"{job:0{JOB_DIGITS}d}"


def private_dir(path: Path) -> None:
    """Make `path` (mode 0700) when it is missing; HomeUnusable unless gsat.trust
    trusts it: a real directory of ours, not writable by others."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        _mkdir(path)
        info = os.lstat(path)
    except OSError as exc:
        raise HomeUnusable(f"{path}: {exc.strerror}") from None
    reason = trust.info_problem(path, info)
    if reason:
        raise HomeUnusable(reason)


def _mkdir(path: Path) -> None:
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise HomeUnusable(f"cannot create {path}: {exc.strerror}") from None
