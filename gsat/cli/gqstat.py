"""gqstat [-s STATE] [-q HOST] [-f] [--json] [ID...]: show jobs.

Reads the job store directly: works while no controller runs."""

import functools
import sys
import time

from gsat import __version__, config as configmod, eventlog, jobs, options, states, summary
from gsat.cli.common import job_ids, run, say
from gsat.errors import NO_SUCH_JOB, NoSuchJob, UsageError
from gsat.layout import Layout

PROG = "gqstat"
COLUMNS = ("ID", "STATE", "HOST", "NAME", "EXIT", "ELAPSED", "SUBMITTED", "STARTED", "ENDED")


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
    config = configmod.load()
    layout = Layout(config.home, config.host)
    if not (args.ids or args.full or args.json):
        sys.stdout.write(_table(_fast_rows(layout, args)))
        return 0
    wanted = job_ids(args.ids) if args.ids else jobs.job_ids(layout)
    found, code = [], 0
    for job_id in wanted:
        try:
            found.append(jobs.load(layout, job_id))
        except NoSuchJob as exc:
            if args.ids:
                say(PROG, str(exc))
                code = NO_SUCH_JOB
    found = [j for j in found if _matches(j, args)]
    out = _json(found) if args.json else _full(layout, found) if args.full else _table(map(_row, found))
    sys.stdout.write(out)
    return code


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
            "pending": st.pending}


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
        lines = [f"{k}={_flat(v)}" for k, v in fields.items()]
        lines += [f"spec.{k}={_flat(v)}" for k, v in sorted(job.spec.items()) if k != "env"]
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
    gqstat with 10,000 jobs: it calls no function per row that a dict
    lookup can replace."""
    known = summary.read_all(layout)
    rows, stamps, spans, now = [], {"-": "-"}, {}, time.time()
    active = (states.RUNNING, states.SUSPENDED)
    for job_id in jobs.job_ids(layout):
        fields = known.get(job_id)
        if fields is None:
            try:
                job = jobs.load(layout, job_id)
            except NoSuchJob:
                continue
            if _matches(job, args):
                rows.append(_row(job))
            continue
        ident, state, host, exit_value, _, submitted, started, ended, name = fields
        if state == states.DELETED or (args.state and state != args.state) or (args.host and host != args.host):
            continue
        texts = []
        for stamp in (submitted, started, ended):
            text = stamps.get(stamp)
            if text is None:
                text = stamps[stamp] = _time(stamp)
            texts.append(text)
        if state in active:
            span = _span(state, started, ended, now)
        else:
            span = spans.get((started, ended))
            if span is None:
                span = spans[started, ended] = _span(state, started, ended, now)
        rows.append((ident, state, host, name[:24], exit_value, span, *texts))
    return rows


def _span(state: str, started: str, ended: str, now: float | None = None) -> str:
    """H:MM:SS a running job has run so far, or its last run took."""
    if started == "-" or (state not in (states.RUNNING, states.SUSPENDED) and ended == "-"):
        return "-"
    end = (now or time.time()) if state in (states.RUNNING, states.SUSPENDED) else float(ended)
    return _hms(int(end - float(started)))


@functools.lru_cache(maxsize=4096)
def _hms(seconds: int) -> str:
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _table(rows) -> str:
    rows = [COLUMNS, *rows]
    widths = [max(map(len, column)) for column in zip(*rows)]  # C-speed for 10,000 rows
    line = "  ".join(f"%-{w}s" for w in widths)
    return "".join((line % row).rstrip() + "\n" for row in rows)


def _row(job) -> tuple:
    st = job.state
    return (str(job.id), job.shown_state, st.host or job.spec.get("host") or "-",
            (job.spec.get("name") or "")[:24], "-" if st.exit is None else str(st.exit),
            _duration(st), _time(job.spec.get("submitted")), _time(st.started), _time(st.ended))


def _duration(st) -> str:
    """Elapsed time of a running job, or the length of the last run."""
    return _span(st.state, str(st.started or "-"), str(st.ended or "-"))


def _time(stamp) -> str:
    """A Unix time (number or summary text) as MM-DD HH:MM:SS."""
    if stamp in (None, "-", ""):
        return "-"
    return _second(str(stamp).partition(".")[0])


def _second(stamp: str) -> str:
    """strftime is the cost of a long listing (20,000 distinct seconds in 10,000
    jobs), so it runs once per minute: every time zone's offset is whole minutes."""
    seconds = int(stamp)
    return f"{_minute(seconds - seconds % 60)}:{seconds % 60:02d}"


@functools.lru_cache(maxsize=8192)
def _minute(start: int) -> str:
    return time.strftime("%m-%d %H:%M", time.localtime(start))


def entry() -> None:
    run(PROG, main)


if __name__ == "__main__":
    entry()
