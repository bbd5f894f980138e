"""Times as gsat's tables show them, in the local time zone.

    stamp_text(t)   MM-DD HH:MM:SS, or "-" for no time
    span_text(s)    H:MM:SS

strftime is the cost of a long listing (20,000 distinct seconds in 10,000
jobs), so it runs once per minute: every time zone's offset is whole
minutes.  `zone()` names the time zone the texts are in: the summary
(gsat.summary) stores texts rendered by its controller, and gqstat uses
them only when its own zone is the same.

Stdlib only, and not functools (3 ms of gqstat's start-up): dicts cache.
"""

import os
import time


def zone() -> str:
    """The local time zone: TZ, or the zone file /etc/localtime links to (two
    zones with the same names and offsets can change to summer time on
    different days), and what the time module makes of it."""
    name = os.environ.get("TZ") or os.path.realpath("/etc/localtime")
    return f"{name}|{'/'.join(time.tzname)}|{time.timezone}|{time.altzone}|{time.daylight}"


def stamp_text(stamp) -> str:
    """A Unix time (number, or its text as the summary holds it) as MM-DD HH:MM:SS."""
    if stamp in (None, "-", ""):
        return "-"
    seconds = int(str(stamp).partition(".")[0])
    start = seconds - seconds % 60
    minute = _MINUTES.get(start)
    if minute is None:
        if len(_MINUTES) >= 8192:  # a controller renders for months: stay small
            _MINUTES.clear()
        minute = _MINUTES[start] = time.strftime("%m-%d %H:%M", time.localtime(start))
    return f"{minute}:{seconds % 60:02d}"


_MINUTES: dict[int, str] = {}


def span_text(seconds: int) -> str:
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
