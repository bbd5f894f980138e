"""trigger [--job ID] [--wait] EVENT [ARG...]: fire a user event of a job.

Inside a job the job is found from GSAT_JOBID (and GSAT_HOME); outside one,
name it with --job.  Returns 0 as soon as the controller has recorded the
event durably; --wait waits for its services and exits 1 if one failed.
Jobs call it in their inner loops, so it parses its options from a table
(gsat.options) rather than importing argparse."""

import os
import sys

from gsat import __version__, client, messages, options, states
from gsat.cli.common import run, say
from gsat.errors import UsageError

PROG = "trigger"
USAGE = "[--job ID] [--wait] EVENT [ARG...]"
DESCRIPTION = "Fire a user event of a job: record it and run its on<EVENT> services."
OPTIONS = (
    (("--job",), "job", "value", "ID", "the job (default: $GSAT_JOBID, inside a job)"),
    (("--wait",), "wait", "flag", None, "wait for the services; exit 1 if one failed"),
    (("-h", "--help"), "help", "flag", None, "show this help and exit"),
    (("--version",), "version", "flag", None, "show the version and exit"),
)


def main(argv: list[str]) -> int:
    opts, rest = options.parse(argv, OPTIONS, interspersed=False)  # ARGs may look like options
    if opts.get("help"):
        sys.stdout.write(options.help_text(PROG, USAGE, DESCRIPTION, OPTIONS))
        return 0
    if opts.get("version"):
        print(f"{PROG} (gsat) {__version__}")
        return 0
    if not rest:
        raise UsageError("no event name given")
    event, args = rest[0], rest[1:]
    if event in states.RESERVED_EVENTS:
        raise UsageError(f"{event} is a reserved event name")
    if not states.valid_event_name(event):
        raise UsageError(f"invalid event name {event!r}: use [A-Za-z][A-Za-z0-9_.-], at most 64")
    job_text = opts.get("job") or os.environ.get("GSAT_JOBID")
    if not job_text:
        raise UsageError("not inside a job: name one with --job ID")
    from gsat.jobs import parse_id
    job_id = parse_id(job_text)
    ctx = client.context()
    if opts.get("wait"):  # the answer comes after the services, which may take service_timeout
        ctx = client.with_timeout(ctx, ctx.config["timeout"] + ctx.config["service_timeout"])
    msg = messages.Trigger(job=job_id, event=event, args=args, wait=bool(opts.get("wait")))
    answer = client.request(ctx, msg, client.owner(ctx, job_id))
    if answer.code:
        say(PROG, answer.text or f"{event} failed")
    return answer.code


def entry() -> None:
    run(PROG, main)


if __name__ == "__main__":
    entry()
