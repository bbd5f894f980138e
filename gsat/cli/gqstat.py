"""gqstat [-s STATE] [-q HOST] [-f] [--json] [ID...]: show jobs.

Reads the job store directly: works while no controller runs."""

import os
import sys
import time

from gsat import __version__, eventlog, jobs, options, states, summary, timefmt
from gsat.cli.common import job_ids, printable, readable_config, run, say
from gsat.errors import NO_SUCH_JOB, NoSuchJob, UsageError
from gsat.layout import JOB_DIGITS, Layout

PROG = "gqstat"
COLUMNS = ("ID", "STATE", "HOST", "NAME", "EXIT", "ELAPSED", summary.TIMES_HEADING)


OPTIONS = (
    (("-s",), "state", "value", "STATE", "only jobs in this state: " + ", ".join(states.SHOWN)),
    (("-q",), "host", "value", "HOST", "only jobs of this host"),
    (("-f",), "full", "flag", None, "every field as key=value lines (live figures of running jobs)"),
    (("--json",), "json", "flag", None, "a JSON list of jobs"),
    (("-h", "--help"), "help", "flag", None, "show this help and exit"),
    (("--version",), "version", "flag", None, "show the version and exit"),
)


class Args:
    """The parsed command line (gsat.options: no argparse on this hot path)."""

    def __init__(self, argv: list[str]):
        opts, self.ids = options.parse(argv, OPTIONS)
        self.state, self.host = opts.get("state"), opts.get("host")
        self.full, self.json = opts.get("full", False), opts.get("json", False)
        self.help, self.version = opts.get("help", False), opts.get("version", False)
        if self.state is not None and self.state not in states.SHOWN:
            raise UsageError(f"-s: {self.state!r} is not one of {', '.join(states.SHOWN)}")


def main(argv: list[str]) -> int:
    args = Args(argv)
    if args.help:
        sys.stdout.write(options.help_text(PROG, "[-s STATE] [-q HOST] [-f] [--json] [ID...]",
                                           "Show jobs: a table, every field (-f) or JSON.", OPTIONS))
        return 0
    if args.version:
        print(f"{PROG} (gsat) {__version__}")
        return 0
    config = readable_config()
    layout = Layout(config.home, config.host)
    if not (args.ids or args.full or args.json):
        import gc
        gc.disable()  # 10,000 rows of short-lived lists: no cycles to collect, only time to lose
        sys.stdout.write(_table(_fast_rows(layout, args)))
        return 0
    wanted = job_ids(args.ids) if args.ids else jobs.job_ids(layout)
    found, code = [], 0
    for job_id in wanted:
        try:
            found.append(_load(layout, job_id))
        except NoSuchJob as exc:
            if args.ids:
                say(PROG, str(exc))
                code = NO_SUCH_JOB
    found = [j for j in found if _matches(j, args)]
    if not (args.full or args.json):  # the table has no column for the reason
        _say_damaged(found)
    out = _json(found) if args.json else _full(layout, found) if args.full else _table(map(_row, found))
    sys.stdout.write(out)
    return code


def _load(layout, job_id: int):
    """The job from its files; a damaged one as a job in state `damaged`."""
    return jobs.load_or_damaged(layout, job_id)


def _say_damaged(found) -> None:
    for job in found:
        if job.state.state == states.DAMAGED:
            cure = "look, then remove it yourself" if job.state.reason.endswith(jobs.NOT_OURS) else \
                f"gqdel {job.id} removes it"
            say(PROG, f"job {job.id} is damaged: {printable(job.state.reason)}; {cure}")


def _matches(job, args) -> bool:
    if args.state and job.shown_state != args.state:
        return False
    host = job.state.host or job.spec.get("host")
    return not args.host or host == args.host


def record(job) -> dict:
    st = job.state
    return {"id": job.id, "state": job.shown_state, "host": st.host or job.spec.get("host"),
            "name": job.spec.get("name"), "exit": st.exit, "submitted": job.spec.get("submitted"),
            "started": st.started, "ended": st.ended, "run": st.run, "restarts": st.restarts,
            "jobtype": job.spec.get("jobtype"), "workdir": job.spec.get("workdir"),
            "user": job.spec.get("user"), "array": job.spec.get("array"),
            "stdout": job.spec.get("stdout"), "stderr": job.spec.get("stderr"),
            "pending": st.pending, "reason": st.reason}


def _json(found) -> str:
    import json
    return json.dumps([record(j) for j in found], indent=1) + "\n"


def _full(layout, found) -> str:
    blocks = []
    for job in found:
        fields = record(job)
        if job.state.state == states.RUNNING:
            fields.update(_live(layout, job))
        jobdir = layout.job_dir(job.id)
        fields["events"] = ",".join(e.get("name", "?") for e in eventlog.read(jobdir))
        fields["jobdir"] = str(jobdir)
        fields["service_logs"] = str(jobdir / "services")
        lines = [f"{k}={printable(_flat(v))}" for k, v in fields.items()]
        lines += [f"spec.{printable(k)}={printable(_flat(v))}" for k, v in sorted(job.spec.items()) if k != "env"]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _live(layout, job) -> dict:
    """pid, processes, cpu_percent, rss_bytes, elapsed of a running job's tree."""
    from gsat import procstats, shepherd
    record = shepherd.read_start(str(layout.job_dir(job.id)), job.state.attempt) or {}
    if not record.get("job_pid"):
        return {}
    return procstats.tree_figures(record["job_pid"], job.state.started)


def _flat(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        import json
        return json.dumps(value, sort_keys=True)
    return str(value)


def _fast_rows(layout, args) -> list[tuple]:
    """Table rows from the hosts' summaries (gsat.summary), and from the job
    files only for the jobs no summary names yet.  The loop is the cost of
    gqstat with 10,000 jobs: the summary holds the texts it prints, and it
    calls no function per row that an index can replace."""
    known = summary.read_all(layout)
    damaged = []
    for key in _unnamed(layout, known):
        if key.isdigit():
            try:
                job = _load(layout, int(key))
            except NoSuchJob:
                continue
            known[key] = summary.row(job).rstrip("\n").split("\t", summary.SHOWN)
            if job.state.state == states.DAMAGED and _matches(job, args):
                damaged.append(job)
    _say_damaged(sorted(damaged, key=lambda j: j.id))
    keys = sorted(known)
    if keys and max(map(len, keys)) > JOB_DIGITS:  # ids past 9,999,999 have more digits
        keys.sort(key=lambda k: (len(k), k))
    rows, now = [], time.time()
    want_state, want_host, deleted, live = args.state, args.host, states.DELETED, summary.LIVE
    for key in keys:
        f = known[key]
        state, host = f[1], f[2]
        if state == deleted or (want_state and state != want_state) or (want_host and host != want_host):
            continue
        rows.append((key.lstrip("0"), state, host, f[5], f[3], _live_span(f, now) if state in live else f[4], f[6]))
    return rows


def _live_span(f: list[str], now: float) -> str:
    """How long a running job's run has lasted so far (the summary cannot say)."""
    begun = summary.started(f)
    return "-" if begun == "-" else timefmt.span_text(int(now - float(begun)))


def _unnamed(layout, known: dict) -> set[str]:
    """The entries of jobs/ no summary names.  Where a directory's link count
    is 2 + its subdirectories (ext4, xfs, tmpfs; not btrfs, not most network
    file systems) and that number is the summaries', there are none: the
    listing (a tenth of gqstat with 10,000 jobs) is skipped."""
    try:
        if os.stat(layout.jobs).st_nlink - 2 == len(known) and known:
            return set()
        return set(os.listdir(layout.jobs)).difference(known)  # set operations run in C
    except FileNotFoundError:
        return set()


def _table(rows) -> str:
    """Rows as columns.  Their texts are printable already: summary.row escapes
    a name's control characters, and host names are checked where read."""
    rows = [COLUMNS, *rows]
    widths = [max(map(len, column)) for column in zip(*rows)]  # C-speed for 10,000 rows
    line = "  ".join(f"%-{w}s" for w in widths[:-1]) + "  %s"  # the last column unpadded
    return "\n".join(map(line.__mod__, rows)) + "\n"


def _row(job) -> tuple:
    """The table row of a job read from its files: its summary row, as shown."""
    f = summary.row(job).rstrip("\n").split("\t", summary.SHOWN)
    span = _live_span(f, time.time()) if f[1] in summary.LIVE else f[4]
    return (str(job.id), f[1], f[2], f[5], f[3], span, f[6])


def entry() -> None:
    run(PROG, main)


if __name__ == "__main__":
    entry()
