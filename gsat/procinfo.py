"""Process identity that survives pid reuse: (pid, start ticks, boot id).

Linux /proc only: field 22 of /proc/PID/stat is the start time in clock
ticks since boot, and /proc/sys/kernel/random/boot_id changes every boot.
A record from another boot is dead by definition.
"""



def boot_id() -> str:
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


def start_ticks(pid: int) -> int | None:
    """The process's start time in ticks since boot, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(b")") + 2:].split()
    if fields[0] == b"Z":  # a zombie has ended; only its parent's wait is left
        return None
    return int(fields[19])


def identity(pid: int) -> dict:
    return {"pid": pid, "ticks": start_ticks(pid), "boot": boot_id()}


def alive(ident: dict | None) -> bool:
    """True when the process the record names still runs (not a reused pid)."""
    if not ident or ident.get("boot") != boot_id():
        return False
    return start_ticks(ident["pid"]) == ident.get("ticks")
