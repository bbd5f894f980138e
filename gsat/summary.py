"""The per-host job summary that lets gqstat list 10,000 jobs fast.

    hosts/HOST/summary.tsv     one line per state change, appended by
                               HOST's controller after state.json is saved:

    #zone ZONE                                               (the first line)
    KEY STATE HOST EXIT SPAN NAME TIMES RUN SUBMITTED STARTED ENDED

(tab-separated).  KEY is the job directory's name (the id, zero-padded),
STATE the shown state (suspended included), empty fields are "-", NAME
the first 24 characters of the name with tabs and newlines replaced by
spaces and other control characters escaped (gsat.text: gqstat prints it
as it is), RUN and the times as recorded (Unix seconds; SUBMITTED whole).
SPAN (the last run's length; "" while it runs) and TIMES (submitted,
started and ended as one text, columns aligned) are what gqstat prints,
rendered by gsat.timefmt in the controller's time zone ZONE: a gqstat in
the same zone splits a row into 8 fields and prints them as they are,
which is most of its speed; in another zone they are rendered again.

The last line of a key wins.  It is a cache, not the record: state.json
is the truth, lines are appended without fsync (a step's rows in one
write), and a starting controller rewrites the file from the state.json
files it reads anyway (compacting it).  gqstat reads every host's summary
plus the job directories no line names (submissions nobody has taken on
yet); only a summary.tsv of the user's own in a hosts/HOST/ of the user's own
(gsat.trust) is read; `gqstat -f`, `--json` and `gqstat ID` read the job files themselves.
"""

import os

from gsat import fsutil, states, timefmt, trust
from gsat.text import printable
from gsat.layout import JOB_DIGITS

NAME = "summary.tsv"
SHOWN = 7  # the fields before the raw RUN and times: a reader splits a row into SHOWN + 1
LIVE = (states.RUNNING, states.SUSPENDED)
STAMP = 14  # len("MM-DD HH:MM:SS")
TIMES_HEADING = f"{'SUBMITTED':{STAMP}}  {'STARTED':{STAMP}}  ENDED"


def row(job) -> str:
    st, spec = job.state, job.spec
    name = printable((spec.get("name") or "").replace("\t", " ").replace("\n", " ").replace("\r", " "))[:24]
    return "\t".join(fields(f"{job.id:0{JOB_DIGITS}d}", job.shown_state, st.host or spec.get("host"),
                            st.exit, name, st.run, _second(spec.get("submitted")), st.started, st.ended)) + "\n"


def fields(key, state, host, exit_value, name, run, submitted, started, ended) -> list[str]:
    """A row's fields: what gqstat shows, rendered here, then the raw values."""
    raw = ["-" if f is None else str(f) for f in (run, submitted, started, ended)]
    started, ended = raw[2], raw[3]
    span = "-"
    if state in LIVE:
        span = ""
    elif started != "-" and ended != "-":
        span = timefmt.span_text(int(float(ended) - float(started)))
    times = (f"{timefmt.stamp_text(raw[1]):{STAMP}}  {timefmt.stamp_text(started):{STAMP}}  "
             f"{timefmt.stamp_text(ended)}")
    shown = [key, state, host or "-", "-" if exit_value is None else str(exit_value), span, name, times]
    return shown + raw


def started(row_fields: list[str]) -> str:
    """The raw start time of a row as a reader split it (SHOWN + 1 fields)."""
    return row_fields[SHOWN].split("\t")[2]


def _second(stamp) -> int | None:
    return None if stamp is None else int(stamp)


def append(layout, rows: list[str]) -> None:
    """Append rows (a controller step's changes: one write for all of them)."""
    fsutil.append_line(layout.host_dir() / NAME, "".join(rows).encode(), sync=False)


def rewrite(layout, lines: list[str]) -> None:
    header = f"#zone\t{timefmt.zone()}\n"
    fsutil.atomic_write(layout.host_dir() / NAME, (header + "".join(lines)).encode(), sync=False)


def discard(layout) -> None:
    """Remove the summary (one that could not be rewritten): a cache, rebuilt later."""
    fsutil.unlink_quietly(layout.host_dir() / NAME)


def read_all(layout) -> dict[str, list[str]]:
    """{KEY: its last row, split into SHOWN + 1 fields} over all hosts, rendered in our zone.
    A summary that is not a regular file of ours that only we can write is
    believed by nobody: HomeUnusable (gsat.trust; gqstat exits 6)."""
    out: dict[str, list[str]] = {}
    hosts = layout.home / "hosts"
    try:
        names = os.listdir(hosts)
    except FileNotFoundError:
        return out
    zone = f"#zone\t{timefmt.zone()}"
    for host in names:
        data = trust.read_file(os.path.join(hosts, host, NAME), limit=1 << 30)  # only our own
        lines = (data or b"").decode("utf-8", "replace").split("\n")
        lines.pop()  # "" after the last newline, or a line being appended right now
        if lines and lines[0] == zone:
            rows = [line.split("\t", SHOWN) for line in lines[1:]]
            out.update((f[0], f) for f in rows if len(f) == SHOWN + 1)
        else:  # written in another time zone: render again
            for line in lines:
                f = line.split("\t")
                if len(f) == SHOWN + 4 and f[0].isdigit():
                    again = fields(f[0], f[1], f[2], None if f[3] == "-" else f[3], f[5], *f[SHOWN:])
                    out[f[0]] = again[:SHOWN] + ["\t".join(again[SHOWN:])]
    return out
