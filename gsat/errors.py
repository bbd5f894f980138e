"""Every exit code of every gsat command, and the exceptions that carry them.

The CLI maps a GsatError to its exit code in one place (gsat.cli.common).
Stdlib only; imports nothing from gsat.
"""

OK = 0
REFUSED = 1
USAGE = 2
NO_SUCH_JOB = 3
NOT_ALLOWED = 4
UNREACHABLE = 5
HOME_UNUSABLE = 6

# gqwait's own values (SPEC §4)
WAIT_TIMEOUT = 124
EXIT_LOST = 255
EXIT_NOT_STARTED = 127  # a job that could not be started (its job type is unusable), as a shell says


class GsatError(Exception):
    """Root of gsat's errors; `code` is the command's exit code."""

    code = REFUSED


class Refused(GsatError):
    """The job is in a state where the request makes no sense."""

    code = REFUSED


class UsageError(GsatError):
    code = USAGE


class NoSuchJob(GsatError):
    code = NO_SUCH_JOB


class Damaged(NoSuchJob):
    """A job whose files cannot be read (SPEC §11): listed in state `damaged`
    with `reason`; gqdel removes it, other commands refuse it (exit 1).  A
    NoSuchJob, so that a reader that skips unknown jobs skips it too."""

    code = REFUSED

    def __init__(self, job: int, reason: str, spec: dict | None = None):
        super().__init__(f"job {job} is damaged: {reason}")
        self.job, self.reason, self.spec = job, reason, spec


class NotAllowed(GsatError):
    code = NOT_ALLOWED


class Rejected(NotAllowed):
    """A mail the gateway refuses; the text is the reason it logs."""


class Untrusted(NoSuchJob):
    """A job directory that is not the user's own (a symlink, another owner,
    writable by others): never taken for a job, run, or deleted through
    (gsat.trust).  A NoSuchJob to every reader, with the exit code of "not allowed"."""

    code = NOT_ALLOWED


class Unreachable(GsatError):
    code = UNREACHABLE


class HomeUnusable(GsatError):
    code = HOME_UNUSABLE


class BadMessage(GsatError):
    """A spool or queue message that must be set aside (never an exit code)."""

    code = REFUSED
