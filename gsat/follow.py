"""Following a job's output live (gqpeek -f), like `tail -f` that knows
when to stop: it copies what the job writes until the job has ended, then
exits with the job's exit value.

It wakes on inotify events of the output file's directory and on the job's
waiter FIFO (see gsat.waiting); on a network file system, where inotify
sees no other host's writes, it re-reads every poll interval instead.  It
only reads: interrupting it never touches the job.
"""

import os

from gsat import fifo, waiting, watch


def follow(layout, job_id: int, path: str, out, poll_interval: float, offset: int = 0) -> int:
    """Copy `path` from `offset` to the binary stream `out` until the job ends."""
    folder = os.path.dirname(path)
    network = watch.is_network(folder)
    watcher = watch.make("poll" if network else "inotify", folder, poll_interval)
    fifo_path, fifo_fd = waiting.make_fifo(layout, job_id)
    try:
        while True:
            value = waiting.exit_value(layout, job_id)  # read before copying: no tail is lost
            offset = _copy(path, offset, out)
            if value is not None:
                return value
            fds = [fd for fd in (watcher.fileno(), fifo_fd) if fd is not None]
            for fd in fifo.wait(fds, watcher.interval):
                fifo.read(fd) if fd == fifo_fd else watcher.drain()
    finally:
        fifo.remove(fifo_path, fifo_fd)
        watcher.close()


def _copy(path: str, offset: int, out) -> int:
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size < offset:
                offset = 0  # truncated: a new run started over
            f.seek(offset)
            while chunk := f.read(65536):
                out.write(chunk)
                offset += len(chunk)
    except FileNotFoundError:
        return offset
    out.flush()
    return offset
