"""What every command shares: argument parsing with one-line errors, the
mapping of GsatError to exit codes, and job id parsing."""

import errno
import os
import sys

from gsat import __version__
from gsat.text import printable  # noqa: F401  (the commands print through it)
from gsat.errors import HOME_UNUSABLE, REFUSED, USAGE, GsatError, UsageError


def parser(prog: str, description: str, **kw):
    """An argparse parser whose usage errors are one line `prog: message`, exit 2."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message):
            raise UsageError(message)

    p = Parser(prog=prog, description=description, **kw)
    p.add_argument("--version", action="version", version=f"{prog} (gsat) {__version__}")
    return p


def seconds(zero_ok: bool = False):
    """An argparse type: a finite number of seconds > 0 (>= 0 when zero_ok);
    NaN, infinities and negatives are usage errors, not tracebacks."""
    from gsat import configcheck
    check = configcheck.seconds(None if zero_ok else 0.0)

    def parse(text: str) -> float:
        import argparse
        try:
            return check(float(text))
        except ValueError as exc:  # float()'s own, or configcheck.Bad
            what = exc if isinstance(exc, configcheck.Bad) else "expected a number of seconds"
            raise argparse.ArgumentTypeError(f"{what}, not {text!r}") from None
    return parse


def count(text: str) -> int:
    """An argparse type: a whole number >= 0."""
    if not (text.isascii() and text.isdigit()):
        import argparse
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, not {text!r}")
    return int(text)


def run(prog: str, main, argv=None) -> None:
    """Call main(argv) and exit with its code; errors become `prog: message`."""
    try:
        code = main(sys.argv[1:] if argv is None else argv)
    except GsatError as exc:
        say(prog, str(exc))
        code = exc.code
    except KeyboardInterrupt:
        code = 130
    except OSError as exc:  # the disk or the kernel said no: one line, a documented code
        say(prog, f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}")
        code = HOME_UNUSABLE if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) else REFUSED
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code or 0)  # nothing to tear down: skip the interpreter's shutdown


def readable_config():
    """The config of a GSAT_HOME the reading tools may trust (gsat.trust):
    HomeUnusable (exit 6) for one others can write to or that is not ours,
    before anything in it is read, config.yaml included."""
    from gsat import config, trust
    home = config.gsat_home()
    trust.require_readable(home)
    return config.load(home)


def say(prog: str, message: str) -> None:
    print(f"{prog}: {message}", file=sys.stderr)


def job_ids(texts: list[str]) -> list[int]:
    from gsat.jobs import parse_id
    if not texts:
        raise UsageError("no job id given")
    return list(dict.fromkeys(parse_id(t) for t in texts))  # 5 and 005 name one job, once


def report(prog: str, results: dict) -> int:
    """Print each failed job's reason; return the first failure's code."""
    first = 0
    for job_id, (code, text) in results.items():
        if code:
            say(prog, text or f"job {job_id}: failed")
            first = first or code
    return first


__all__ = ["parser", "run", "say", "printable", "job_ids", "report", "USAGE"]
