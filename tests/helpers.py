"""Test helpers: waiting on a condition with a deadline, and driving the
installed commands and a real `gsatlc run` in a GSAT_HOME of the test's own."""

import json
import os
import socket
import signal
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
HOST = "testhost"


def q(path) -> str:
    """`path` quoted for a job script."""
    import shlex
    return shlex.quote(str(path))


def await_file(path, seconds: int = 30) -> str:
    """Shell lines that wait for `path` to exist, and exit 1 after `seconds`."""
    return (f"i=0; while [ ! -e {q(path)} ] && [ $i -lt {seconds * 10} ]; do sleep 0.1; i=$((i+1)); done\n"
            f"[ -e {q(path)} ] || exit 1\n")


def read(path) -> str:
    """The file's text, or "" while it does not exist."""
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        return ""


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    """Poll `predicate` until it returns a true value; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)


ENDED = ("finished", "failed")


def all_states(g, timeout: float = 120) -> dict[int, dict]:
    """Every job as gqstat --json shows it, by id."""
    proc = g.run("gqstat", "--json", timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return {row["id"]: row for row in json.loads(proc.stdout or "[]")}


def wait_all_ended(g, ids, timeout: float) -> dict[int, dict]:
    def ended():
        rows = all_states(g)
        return all(rows.get(i, {}).get("state") in ENDED for i in ids) and rows
    return wait_for(ended, timeout, f"{len(ids)} jobs to end")


class Gsat:
    """One GSAT_HOME with its environment, commands and controller."""

    def __init__(self, home: Path, host: str = HOST, config: dict | None = None):
        self.home = home
        self.host = host
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.env = dict(os.environ, GSAT_HOME=str(home), GSAT_HOSTNAME=host,
                        PATH=f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
        for var in ("GSAT_WATCH", "GSAT_CHANNEL"):
            if os.environ.get(var):
                self.env[var] = os.environ[var]
        self.write_config({"autostart": False, "kill_grace": 2, **(config or {})})
        self.controllers: list[subprocess.Popen] = []

    def write_config(self, values: dict) -> None:
        import yaml
        (self.home / "config.yaml").write_text(yaml.safe_dump(values))

    def run(self, *args, input=None, timeout=60, check=False, env=None, cwd=None):
        """Run a gsat command as a user types it; return CompletedProcess (text)."""
        cmd = [str(BIN / args[0]), *map(str, args[1:])]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                              env={**self.env, **(env or {})}, cwd=cwd)
        if check and proc.returncode != 0:
            raise AssertionError(f"{args} exited {proc.returncode}: {proc.stderr}")
        return proc

    def submit(self, script: str, *options, **kw) -> int:
        """gqsub a script given as text; return the job id."""
        proc = self.run("gqsub", *options, input=script, check=True, **kw)
        return int(proc.stdout.split()[0])

    def start(self, env=None) -> subprocess.Popen:
        """Start `gsatlc run` in the foreground as a child; wait until it serves."""
        log = open(self.home / f"controller-{len(self.controllers)}.log", "ab")
        proc = subprocess.Popen([str(BIN / "gsatlc"), "run"], env={**self.env, **(env or {})},
                                stdout=log, stderr=log, start_new_session=True)
        self.controllers.append(proc)
        wait_for(lambda: self.run("gsatlc", "status").returncode == 0 or proc.poll() is not None,
                 what="controller start")
        assert proc.poll() is None, f"controller exited: {self.log()}"
        return proc

    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.home.glob("controller-*.log")))

    def crash(self, proc: subprocess.Popen) -> None:
        """kill -9 the controller and reap it."""
        proc.kill()
        proc.wait(timeout=10)

    def job_dir(self, job: int) -> Path:
        return self.home / "jobs" / f"{job:07d}"

    def state(self, job: int) -> dict:
        proc = self.run("gqstat", "--json", job)
        rows = json.loads(proc.stdout or "[]")
        return rows[0] if rows else {}

    def wait_state(self, job: int, *states, timeout: float = 20.0) -> dict:
        return wait_for(lambda: (s := self.state(job)) and s.get("state") in states and s,
                        timeout, f"job {job} to be {'/'.join(states)}")

    def events(self, job: int) -> list[str]:
        path = self.job_dir(job) / "events.log"
        if not path.exists():
            return []
        return [json.loads(line)["name"] for line in path.read_text().splitlines() if line.strip()]

    @property
    def channel(self) -> str:
        return self.env.get("GSAT_CHANNEL") or "file"

    def queue_key(self) -> int:
        from gsat.channel_sysv import queue_key
        return queue_key(self.home, os.geteuid(), self.host)

    def cleanup(self) -> None:
        """Kill what the test started: controllers, shepherds and job groups;
        remove the SysV queue its GSAT_HOME used."""
        for proc in self.controllers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        pid_file = self.home / "hosts" / self.host / "pid"
        _kill_pid_file(pid_file)
        for start in self.home.glob("jobs/*/runs/*.start"):
            try:
                record = json.loads(start.read_text())
            except (OSError, ValueError):
                continue
            if record.get("job_pid"):
                _quietly(os.killpg, record["job_pid"], signal.SIGKILL)
            shepherd = (record.get("shepherd") or {}).get("pid")
            if shepherd:
                _quietly(os.kill, shepherd, signal.SIGKILL)
        remove_queue(self.queue_key())


def remove_queue(key: int) -> None:
    import sysv_ipc
    try:
        sysv_ipc.MessageQueue(key).remove()
    except (sysv_ipc.ExistentialError, sysv_ipc.PermissionsError):
        pass


def _kill_pid_file(path: Path) -> None:
    try:
        pid = int(path.read_text())
    except (OSError, ValueError):
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone (ENOENT, or ESRCH between open and read)
        return
    if b"gsatlc" in cmdline:
        _quietly(os.kill, pid, signal.SIGKILL)


def _quietly(fn, *args) -> None:
    try:
        fn(*args)
    except (ProcessLookupError, PermissionError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
