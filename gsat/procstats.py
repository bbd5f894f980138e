"""Live figures of a running job's process tree (psutil): pid, process
count, CPU %, RSS, elapsed time.  Imported only by `gqstat -f`, so that the
other tools never load psutil."""

import time

SAMPLE = 0.2  # seconds over which CPU % is measured


def tree_figures(pid: int, started: float | None) -> dict:
    """Figures for process `pid` and all its descendants; {} when it is gone."""
    import psutil
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return {}
    for proc in procs:
        _quietly(proc.cpu_percent, None)
    time.sleep(SAMPLE)
    cpu = rss = count = 0
    for proc in procs:
        try:
            with proc.oneshot():
                cpu += proc.cpu_percent(None)
                rss += proc.memory_info().rss
                count += 1
        except psutil.Error:
            continue
    return {"pid": pid, "processes": count, "cpu_percent": round(cpu, 1), "rss_bytes": rss,
            "elapsed": round(time.time() - started, 1) if started else None}


def _quietly(fn, *args):
    import psutil
    try:
        return fn(*args)
    except psutil.Error:
        return None
