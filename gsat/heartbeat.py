"""Each controller's heartbeat: hosts/HOST/heartbeat.json, rewritten every
`heartbeat_interval` seconds while the host has active jobs, every
`idle_heartbeat_interval` seconds while it has none (atomically, without
fsync: it is news, not state), and once more with "up": false when the
controller stops.  The record says the interval it keeps.

    {"host": "node1", "pid": 4242, "started": 1763755200.0, "time": ...,
     "interval": 10.0, "up": true, "slots": 2, "scheduler": "fifo",
     "running": [41, 42], "load": [0.1, 0.2, 0.3],
     "memory": {"total": 25165824000, "available": 20000000000}}

`status()` classifies a host for gqnodes: up, down (no controller), stale
(the heartbeat is older than 3 intervals: a hung, stopped or dead
controller on a host we cannot look into) or untrusted (a controller that
holds still because it does not trust its directories: the record's
"untrusted" says why; gsat.guard).
"""

import json
import os
import time

from gsat import fsutil

STALE_AFTER = 3  # intervals


def path(layout, host: str | None = None):
    return layout.host_dir(host) / "heartbeat.json"


def write(layout, record: dict) -> None:
    fsutil.atomic_write(path(layout), json.dumps(record, sort_keys=True).encode() + b"\n", sync=False)


def read(layout, host: str) -> dict | None:
    """The host's last heartbeat; None when there is none or it cannot be read
    (torn, garbage, a symlink or a directory: gqnodes shows the host down)."""
    try:
        record = fsutil.read_json(path(layout, host))
    except (ValueError, OSError):
        return None
    return record if isinstance(record, dict) else None


def compose(config, started: float, now: float, up: bool, running: list[int], interval: float) -> dict:
    """The heartbeat record of this process's controller, which beats every `interval` s."""
    return {"host": config.host, "pid": os.getpid(), "started": started, "time": now,
            "interval": interval, "up": up, "slots": config["slots"],
            "scheduler": config["scheduler"], "load": list(os.getloadavg()), "running": running,
            "memory": memory()}


def memory() -> dict:
    """Total and available memory in bytes, from /proc/meminfo."""
    values = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("MemTotal", "MemAvailable"):
                values[key] = int(rest.split()[0]) * 1024
    return {"total": values.get("MemTotal"), "available": values.get("MemAvailable")}


def status(record: dict | None, lock_held: bool | None, now: float | None = None) -> str:
    """up, down or stale.  `lock_held` is known only for this host (None elsewhere)."""
    if lock_held is False or not record or not record.get("up"):
        return "down"
    age = (now or time.time()) - record.get("time", 0)
    if age > STALE_AFTER * record.get("interval", 10.0):
        return "stale"
    return "untrusted" if record.get("untrusted") else "up"


def hosts(layout) -> list[str]:
    try:
        return sorted(n for n in os.listdir(layout.home / "hosts") if not n.startswith("."))
    except FileNotFoundError:
        return []
