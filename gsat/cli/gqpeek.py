"""gqpeek [-e] [-f] [-n N] ID: print a job's stdout (stderr with -e); -f
follows it live until the job ends and exits with the job's exit value."""

import sys

from gsat import jobs
from gsat.cli.common import count, job_ids, parser, readable_config, run
from gsat.layout import Layout

PROG = "gqpeek"


def main(argv: list[str]) -> int:
    p = parser(PROG, "Print a job's standard output or error.")
    p.add_argument("-e", dest="stderr", action="store_true", help="standard error instead")
    p.add_argument("-f", dest="follow", action="store_true",
                   help="follow until the job ends, then exit with its exit value")
    p.add_argument("-n", dest="lines", type=count, metavar="N", help="only the last N lines")
    p.add_argument("id", metavar="ID")
    args = p.parse_args(argv)
    (job_id,) = job_ids([args.id])
    config = readable_config()
    layout = Layout(config.home, config.host)
    job = jobs.load(layout, job_id)
    path = jobs.output_path(layout, job, "stderr" if args.stderr else "stdout") or \
        jobs.output_path(layout, job, "stdout")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        data = b""  # queued, or nothing written yet
    size = len(data)
    if args.lines is not None:
        data = b"".join(data.splitlines(keepends=True)[-args.lines:]) if args.lines > 0 else b""
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    if args.follow:
        from gsat.follow import follow
        return follow(layout, job_id, path, sys.stdout.buffer, config["poll_interval"], size)
    return 0


def entry() -> None:
    run(PROG, main)


if __name__ == "__main__":
    entry()
