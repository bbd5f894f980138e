"""gqsub [options] [SCRIPT | -] [-- ARGS...]: submit a job, print its id.

The hot path of the whole system: it imports nothing it can avoid (no
argparse, json, re or dataclasses; see gsat.options and gsat.jsontext)."""

import os
import stat  # loaded by os already: free
import sys

from gsat import __version__, client, jsontext, options, submit
from gsat.cli.common import run, say
from gsat.config import share_dir
from gsat.errors import UsageError

PROG = "gqsub"
USAGE = "[options] [SCRIPT | -] [-- ARGS...]"
DESCRIPTION = ("Submit a job script (a file, or stdin for - or nothing); print the new job's id.\n"
               "#GSAT lines in the script's leading comments take the same options; the command line wins.")


def main(argv: list[str]) -> int:
    before, job_args = _split_args(argv)
    opts, rest = options.parse(before, options.JOB_OPTIONS + options.COMMAND_OPTIONS)
    if opts.pop("help", False):
        sys.stdout.write(options.help_text(PROG, USAGE, DESCRIPTION, options.JOB_OPTIONS,
                                           options.COMMAND_OPTIONS))
        return 0
    if opts.pop("version", False):
        print(f"{PROG} (gsat) {__version__}")
        return 0
    if len(rest) > 1:
        raise UsageError(f"one script only (got {rest[1]!r} too); its arguments go after --")
    script_name = rest[0] if rest else "-"
    script = _read_script(script_name)
    submit.check_script(script)
    wait, as_json = opts.pop("wait", False), opts.pop("json", False)
    merged = {**submit.directives(script), **opts}
    ctx = client.context()
    left_out: list[str] = []
    spec = submit.build(merged, "STDIN" if script_name == "-" else script_name, job_args,
                        dict(os.environ), os.getcwd(),
                        [ctx.layout.user_jobtypes(), share_dir() / "etc" / "jobtypes"], ctx.config.host,
                        left_out)
    if left_out:
        say(PROG, f"warning: variables that are not UTF-8 left out of the job's environment: "
                  f"{', '.join(left_out)}")
    ids, warning = client.store_and_notify(ctx, spec, script, submit.array_count(spec),
                                           stored=lambda ids: _print_ids(ids, as_json))
    if warning:
        say(PROG, warning)
    if wait:
        from gsat import waiting
        return waiting.wait_jobs(ctx, ids)
    return 0


def _print_ids(ids: list[int], as_json: bool) -> None:
    """Printed (and flushed) as soon as the jobs are stored, before the controller is told."""
    sys.stdout.write(jsontext.dumps({"jobs": ids}) + "\n" if as_json else "".join(f"{i}\n" for i in ids))
    sys.stdout.flush()


def _split_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Options and the script before `--`, the script's arguments after it."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def _read_script(name: str) -> bytes:
    """The script: stdin for "-", else a regular file.  Opened without
    blocking and looked at first: a FIFO or a device would hang gqsub (or
    never end), so anything but a regular file is a usage error."""
    if name == "-":
        if sys.stdin.isatty():
            raise UsageError("no script given and stdin is a terminal")
        return sys.stdin.buffer.read(submit.MAX_SCRIPT + 1)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UsageError(f"{name} is not a regular file (give a file, or - for stdin)")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(submit.MAX_SCRIPT + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None
    finally:
        os.close(fd)


def entry() -> None:
    run(PROG, main)


if __name__ == "__main__":
    entry()
