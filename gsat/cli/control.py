"""gqdel, gqhold, gqrls and gqsig: one request per owning controller.

    gqdel ID...               remove (a running job: TERM, KILL after kill_grace)
    gqhold ID...              queued|running|finished|failed -> held
    gqrls ID...               held -> queued
    gqsig [-s SIGNAL] ID...   signal a running job's process group
"""

from gsat import client, messages, signames
from gsat.cli.common import job_ids, parser, report, run

VERBS = {
    "gqdel": (messages.Delete, "Delete jobs; a running job is terminated first."),
    "gqhold": (messages.Hold, "Hold jobs; a running job gets its type's hold signal and reruns on release."),
    "gqrls": (messages.Release, "Release held jobs."),
    "gqsig": (messages.Signal, "Send a signal to running jobs' process groups."),
}


def main_for(prog: str):
    kind, description = VERBS[prog]

    def main(argv: list[str]) -> int:
        p = parser(prog, description)
        if kind is messages.Signal:
            p.add_argument("-s", dest="signal", default="TERM", help="name (TERM, SIGTERM) or number")
        p.add_argument("ids", nargs="*", metavar="ID")
        args = p.parse_args(argv)
        ids = job_ids(args.ids)
        fields = {"signal": signames.parse(args.signal)} if kind is messages.Signal else {}
        ctx = client.context()
        return report(prog, client.per_job_request(ctx, kind, ids, **fields))
    return main


def gqdel() -> None:
    run("gqdel", main_for("gqdel"))


def gqhold() -> None:
    run("gqhold", main_for("gqhold"))


def gqrls() -> None:
    run("gqrls", main_for("gqrls"))


def gqsig() -> None:
    run("gqsig", main_for("gqsig"))
