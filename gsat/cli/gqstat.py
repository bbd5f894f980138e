"""gqstat [-s STATE] [-q HOST] [-f] [--json] [ID...]: show jobs.

Reads the job store directly: works while no controller runs."""

import json
import sys
import time

from gsat import config as configmod, eventlog, jobs, states
from gsat.cli.common import job_ids, parser, run, say
from gsat.errors import NO_SUCH_JOB, NoSuchJob
from gsat.layout import Layout

PROG = "gqstat"
COLUMNS = ("ID", "STATE", "HOST", "NAME", "EXIT", "ELAPSED", "SUBMITTED", "STARTED", "ENDED")


def main(argv: list[str]) -> int:
    p = parser(PROG, "Show jobs: a table, every field (-f) or JSON.")
    p.add_argument("-s", dest="state", choices=states.SHOWN, help="only jobs in this state")
    p.add_argument("-q", dest="host", help="only jobs of this host")
    p.add_argument("-f", dest="full", action="store_true", help="every field as key=value lines")
    p.add_argument("--json", action="store_true", help="a JSON list of jobs")
    p.add_argument("ids", nargs="*", metavar="ID")
    args = p.parse_args(argv)
    config = configmod.load()
    layout = Layout(config.home, config.host)
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
    out = _json(found) if args.json else _full(layout, found) if args.full else _table(found)
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
        return json.dumps(value, sort_keys=True)
    return str(value)


def _table(found) -> str:
    rows = [COLUMNS] + [_row(j) for j in found]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n" for r in rows)


def _row(job) -> tuple:
    st = job.state
    return (str(job.id), job.shown_state, st.host or job.spec.get("host") or "-",
            (job.spec.get("name") or "")[:24], "-" if st.exit is None else str(st.exit),
            _duration(st), _time(job.spec.get("submitted")), _time(st.started), _time(st.ended))


def _duration(st) -> str:
    """Elapsed time of a running job, or the length of the last run."""
    if not st.started or (st.state != states.RUNNING and not st.ended):
        return "-"
    seconds = int((st.ended if st.state != states.RUNNING else time.time()) - st.started)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _time(stamp) -> str:
    return time.strftime("%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def entry() -> None:
    run(PROG, main)


if __name__ == "__main__":
    entry()
