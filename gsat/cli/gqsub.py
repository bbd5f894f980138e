"""gqsub [options] [SCRIPT | -] [-- ARGS...]: submit a job, print its id."""

import json
import os
import sys

from gsat import client, jobs, messages, submit
from gsat.cli.common import Parser, parser, run, say
from gsat.config import share_dir
from gsat.errors import GsatError, UsageError

PROG = "gqsub"
CHUNK = 500  # ids per submit message (fits a SysV message of 8 KiB)


def build_parser() -> Parser:
    p = parser(PROG, "Submit a job script (from a file or stdin); print the new job's id.")
    submit.add_options(p)
    p.add_argument("--wait", action="store_true", help="wait for the job and exit with its exit value")
    p.add_argument("--json", action="store_true", help="print {\"jobs\": [ids]}")
    p.add_argument("script", nargs="?", default="-", help="the job script; - or nothing: stdin")
    return p


def main(argv: list[str]) -> int:
    argv, job_args = _split_args(argv)
    p = build_parser()
    cli = vars(p.parse_args(argv))
    script_name = cli.pop("script")
    script = _read_script(script_name)
    submit.check_script(script)
    opts = submit.directives(script, lambda tokens: vars(_directive_parser().parse_args(tokens)))
    wait, as_json = cli.pop("wait"), cli.pop("json")
    opts.update(cli)
    ctx = client.context()
    spec = submit.build(opts, "STDIN" if script_name == "-" else script_name, job_args,
                        dict(os.environ), os.getcwd(),
                        [ctx.layout.user_jobtypes(), share_dir() / "etc" / "jobtypes"], ctx.config.host)
    channel = client.channel(ctx, spec["host"])  # a refused channel stops us before storing
    ids = jobs.publish(ctx.layout, spec, script, submit.array_count(spec))
    try:
        for start in range(0, len(ids), CHUNK):
            channel.send(messages.Submit(jobs=ids[start:start + CHUNK]))
    except GsatError as exc:  # the job is stored: a controller finds it when it (re)starts
        say(PROG, f"job stored, but its controller was not told ({exc}); it runs when one starts")
    sys.stdout.write(json.dumps({"jobs": ids}) + "\n" if as_json else "".join(f"{i}\n" for i in ids))
    sys.stdout.flush()
    if wait:
        from gsat import waiting
        return waiting.wait_jobs(ctx, ids)
    return 0


def _directive_parser() -> Parser:
    p = Parser(prog="#GSAT", add_help=False)
    submit.add_options(p)
    return p


def _split_args(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def _read_script(name: str) -> bytes:
    if name == "-":
        if sys.stdin.isatty():
            raise UsageError("no script given and stdin is a terminal")
        return sys.stdin.buffer.read()
    try:
        with open(name, "rb") as f:
            return f.read(submit.MAX_SCRIPT + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None


def entry() -> None:
    run(PROG, main)


if __name__ == "__main__":
    entry()
