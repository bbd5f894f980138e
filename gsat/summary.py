"""The per-host job summary that lets gqstat list 10,000 jobs fast.

    hosts/HOST/summary.tsv     one line per state change, appended by
                               HOST's controller after state.json is saved:

    ID  STATE  HOST  EXIT  RUN  SUBMITTED  STARTED  ENDED  NAME     (tab-separated)

A controller appends the rows of one step's changes together, at the end of
the step.  STATE is the shown state (suspended included), empty fields are "-",
times are Unix seconds (SUBMITTED whole, as the table shows it; STARTED and
ENDED as recorded, so that a run's length is not rounded twice), NAME has
tabs and newlines replaced by spaces.
The last line of an id wins.  It is a cache, not the record: state.json is
the truth, lines are appended without fsync, and a starting controller
rewrites the file from the state.json files it reads anyway (compacting
it).  gqstat reads every host's summary plus the job directories no line
names (submissions nobody has taken on yet); `gqstat -f`, `--json` and
`gqstat ID` read the job files themselves.
"""

import os

from gsat import fsutil

NAME = "summary.tsv"


def row(job) -> str:
    st, spec = job.state, job.spec
    name = (spec.get("name") or "").replace("\t", " ").replace("\n", " ").replace("\r", " ")
    fields = (job.id, job.shown_state, st.host or spec.get("host"), st.exit, st.run,
              _second(spec.get("submitted")), st.started, st.ended)
    return "\t".join("-" if f is None else str(f) for f in fields) + "\t" + name + "\n"


def _second(stamp) -> int | None:
    return None if stamp is None else int(stamp)


def append(layout, rows: list[str]) -> None:
    """Append rows (a controller step's changes: one write for all of them)."""
    fsutil.append_line(layout.host_dir() / NAME, "".join(rows).encode(), sync=False)


def rewrite(layout, lines: list[str]) -> None:
    fsutil.atomic_write(layout.host_dir() / NAME, "".join(lines).encode(), sync=False)


def read_all(layout) -> dict[int, list[str]]:
    """{id: [id, state, host, exit, run, submitted, started, ended, name]} over all hosts."""
    out: dict[int, list[str]] = {}
    hosts = layout.home / "hosts"
    try:
        names = os.listdir(hosts)
    except FileNotFoundError:
        return out
    for host in names:
        data = fsutil.read_bytes(os.path.join(hosts, host, NAME), limit=1 << 30)
        rows = [line.split("\t") for line in (data or b"").decode("utf-8", "replace").splitlines()]
        out.update((int(f[0]), f) for f in rows if len(f) == 9 and f[0].isdigit())
    return out
