"""gqwait [--timeout SEC] [--any] [--event NAME] ID...: block until jobs end; exit with
their exit value (128+N for signal N, 255 deleted or lost, 124 timeout)."""

from gsat import client, waiting
from gsat.cli.common import job_ids, parser, run, seconds

PROG = "gqwait"


def main(argv: list[str]) -> int:
    p = parser(PROG, "Wait for jobs to end and exit with their exit value.")
    p.add_argument("--timeout", type=seconds(zero_ok=True), metavar="SEC", help="give up after SEC seconds (exit 124)")
    p.add_argument("--any", action="store_true", help="return when the first of them ends")
    p.add_argument("--event", metavar="NAME", help="return 0 when the job fires NAME, 1 if it ends first")
    p.add_argument("ids", nargs="*", metavar="ID")
    args = p.parse_args(argv)
    ids = job_ids(args.ids)
    return waiting.wait_jobs(client.context(), ids, args.timeout, args.any, args.event)


def entry() -> None:
    run(PROG, main)


if __name__ == "__main__":
    entry()
