"""Running gpg over one untrusted input, within bounds.

What a mail holds reaches gpg here and nowhere else, so this is where its
cost is bounded: gpg's output is read into memory only up to a cap, and
beyond it gpg is killed and the result says TOO_LARGE (gpg's own
`--max-output`, set above the cap as a backstop, stops the writing but not
the unpacking: gpg would go on, writing nothing, for as long as the bomb
lasts), and the whole run has a deadline
(beyond it gpg is killed: TIMEOUT).  python-gnupg is not used for this: it
gathers all of gpg's output before anyone can look at its size.

gpg's status lines come on a pipe of their own (`--status-fd N`), apart
from its messages on stderr, some of which echo what the mail says (an
unknown armor header, for one); they are split at LF only, where gpg ends
a line.  The result's statuses are (KEYWORD, rest-of-line) pairs in gpg's
order, then GPG_EXIT when gpg exited non-zero, for gsat.sigstatus to judge.
The passphrase, when there is one, goes through a pipe of its own too.
Stdlib only.
"""

import os
import selectors
import subprocess
import time

from gsat.record import Record

MAX_OUTPUT = 4 << 20   # the largest mail gsat reads; a signed text is never larger
MAX_STATUS = 1 << 20
STDERR_TAIL = 4096
TIMEOUT = 20.0
CHUNK = 65536


class GpgResult(Record):
    __slots__ = ()
    FIELDS = {"output": b"", "statuses": [], "returncode": 0, "stderr": ""}


def run(home: str, args: list[str], data: bytes, passphrase: str | None = None,
        max_output: int = MAX_OUTPUT, timeout: float = TIMEOUT) -> GpgResult:
    """gpg `args` over `data` on stdin, in GNUPGHOME `home`; never raises for what gpg does."""
    status_r, status_w = os.pipe()
    fds = [status_w]
    cmd = ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--status-fd", str(status_w),
           "--max-output", str(2 * max_output)]  # a backstop: gsat stops gpg at max_output
    if passphrase is not None:
        pass_r, pass_w = os.pipe()
        os.write(pass_w, passphrase.encode() + b"\n")  # a few bytes: the pipe's buffer holds them
        os.close(pass_w)
        fds.append(pass_r)
        cmd += ["--pinentry-mode", "loopback", "--passphrase-fd", str(pass_r)]
    try:
        proc = subprocess.Popen(cmd + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, pass_fds=fds, cwd=str(home))
    finally:
        for fd in fds:
            os.close(fd)
    with proc:
        return _exchange(proc, status_r, data, max_output, time.monotonic() + timeout)


def _exchange(proc, status_r: int, data: bytes, max_output: int, deadline: float) -> GpgResult:
    """Feed `data`, gather output and statuses, until gpg closes them, the cap or the deadline."""
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray(), status_r: bytearray()}
    caps = {proc.stdout.fileno(): max_output, proc.stderr.fileno(): 1 << 20, status_r: MAX_STATUS}
    trouble = []
    with selectors.DefaultSelector() as sel:
        for fd in buffers:
            sel.register(fd, selectors.EVENT_READ)
        stdin = proc.stdin.fileno()
        os.set_blocking(stdin, False)
        sel.register(stdin, selectors.EVENT_WRITE)
        sent = 0
        while len(sel.get_map()) and not trouble:
            left = deadline - time.monotonic()
            if left <= 0:
                trouble.append(("TIMEOUT", ""))
                break
            for key, _ in sel.select(left):
                if key.fd == stdin:
                    sent = _feed(sel, proc, data, sent)
                    continue
                chunk = os.read(key.fd, CHUNK)
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                buffers[key.fd] += chunk
                if len(buffers[key.fd]) > caps[key.fd]:
                    trouble.append(("TOO_LARGE" if key.fd == proc.stdout.fileno() else "TOO_CHATTY", ""))
                    break
    if trouble:
        proc.kill()
    os.close(status_r)
    returncode = proc.wait()
    statuses = _statuses(bytes(buffers[status_r])) + trouble
    if returncode:
        statuses.append(("GPG_EXIT", str(returncode)))
    stderr = bytes(buffers[proc.stderr.fileno()][-STDERR_TAIL:]).decode("utf-8", "replace")
    return GpgResult(output=bytes(buffers[proc.stdout.fileno()][:max_output]), statuses=statuses,
                     returncode=returncode, stderr=stderr)


def _feed(sel, proc, data: bytes, sent: int) -> int:
    """Write what the pipe takes; close stdin when all is sent or gpg stopped reading."""
    try:
        sent += os.write(proc.stdin.fileno(), data[sent:sent + CHUNK])
    except BlockingIOError:
        return sent
    except BrokenPipeError:  # gpg gave up on the input: its statuses say why
        sent = len(data)
    if sent >= len(data):
        sel.unregister(proc.stdin.fileno())
        proc.stdin.close()
    return sent


def _statuses(raw: bytes) -> list[tuple[str, str]]:
    out = []
    for line in raw.split(b"\n"):
        if line.startswith(b"[GNUPG:] "):
            keyword, _, value = line[9:].decode("utf-8", "replace").partition(" ")
            out.append((keyword, value))
    return out
