"""trigger [--job ID] [--wait] EVENT [ARG...]: fire a user event of a job.

Inside a job the job is found from GSAT_JOBID (and GSAT_HOME); outside one,
name it with --job.  Returns 0 as soon as the controller has recorded the
event durably; --wait waits for its services and exits 1 if one failed."""

import argparse
import os

from gsat import client, messages, states
from gsat.cli.common import parser, run, say
from gsat.errors import UsageError

PROG = "trigger"


def main(argv: list[str]) -> int:
    p = parser(PROG, "Fire a user event of a job: record it and run its on<EVENT> services.")
    p.add_argument("--job", metavar="ID", help="the job (default: $GSAT_JOBID, inside a job)")
    p.add_argument("--wait", action="store_true", help="wait for the services; exit 1 if one failed")
    p.add_argument("event", metavar="EVENT")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARG")
    args = p.parse_args(argv)
    if args.event in states.RESERVED_EVENTS:
        raise UsageError(f"{args.event} is a reserved event name")
    if not states.USER_EVENT.match(args.event):
        raise UsageError(f"invalid event name {args.event!r}: use [A-Za-z][A-Za-z0-9_.-], at most 64")
    job_text = args.job or os.environ.get("GSAT_JOBID")
    if not job_text:
        raise UsageError("not inside a job: name one with --job ID")
    from gsat.jobs import parse_id
    job_id = parse_id(job_text)
    ctx = client.context()
    if args.wait:  # the answer comes after the services, which may take service_timeout
        ctx = client.with_timeout(ctx, ctx.config["timeout"] + ctx.config["service_timeout"])
    msg = messages.Trigger(job=job_id, event=args.event, args=args.args, wait=args.wait)
    answer = client.request(ctx, msg, client.owner(ctx, job_id))
    if answer.code:
        say(PROG, answer.text or f"{args.event} failed")
    return answer.code


def entry() -> None:
    run(PROG, main)


if __name__ == "__main__":
    entry()
