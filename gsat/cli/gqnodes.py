"""gqnodes [--json]: every host sharing this GSAT_HOME and its controller."""

import json
import sys
import time

from gsat import daemon, heartbeat
from gsat.cli.common import parser, printable, readable_config, run
from gsat.layout import Layout

PROG = "gqnodes"
COLUMNS = ("HOST", "STATUS", "PID", "RUNNING", "SLOTS", "LOAD", "MEM_AVAIL", "HEARTBEAT_AGE")


def main(argv: list[str]) -> int:
    p = parser(PROG, "List the hosts sharing this GSAT_HOME: controller up, down or stale.")
    p.add_argument("--json", action="store_true", help="a JSON list")
    args = p.parse_args(argv)
    config = readable_config()
    layout = Layout(config.home, config.host)
    now = time.time()
    nodes = [node(layout, host, config.host, now) for host in heartbeat.hosts(layout)]
    sys.stdout.write(json.dumps(nodes, indent=1) + "\n" if args.json else _table(nodes))
    return 0


def node(layout, host: str, me: str, now: float) -> dict:
    record = heartbeat.read(layout, host) or {}
    lock_held = None
    if host == me:
        lock_held = daemon.running_pid(Layout(layout.home, host)) is not None
    status = heartbeat.status(record, lock_held, now)
    up = status != "down"
    return {
        "host": host, "status": status, "pid": record.get("pid") if up else None,
        "running": record.get("running", []) if up else [], "slots": record.get("slots"),
        "scheduler": record.get("scheduler"), "load": record.get("load"),
        "memory": record.get("memory"),
        "heartbeat_age": round(now - record["time"], 1) if record.get("time") else None,
    }


def _table(nodes: list[dict]) -> str:
    rows = [COLUMNS] + [(
        n["host"], n["status"], str(n["pid"] or "-"), str(len(n["running"])),
        str(n["slots"] or "-"), " ".join(f"{x:.2f}" for x in n["load"] or []) or "-",
        _bytes((n["memory"] or {}).get("available")),
        "-" if n["heartbeat_age"] is None else f"{n['heartbeat_age']:.0f}s") for n in nodes]
    rows = [tuple(map(printable, r)) for r in rows]  # host names come from directory names
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n" for r in rows)


def _bytes(value) -> str:
    if not value:
        return "-"
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024:
            return f"{value:.0f}{unit}"
        value /= 1024
    return f"{value:.0f}P"


def entry() -> None:
    run(PROG, main)


if __name__ == "__main__":
    entry()
