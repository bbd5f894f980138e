"""The three batch systems under test, behind one small interface.

Each lives in a temporary directory of its own and runs the same job
scripts with 2 slots: gsat (the commands in this virtual environment's bin/,
a controller started with `gsatlc start`), task-spooler (`tsp -S 2`,
TS_SOCKET in the directory) and nq (NQDIR; nq has no slots: its jobs run
one after another, each waiting for the ones queued before it).
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def _run(argv, env, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=True, **kw)


class System:
    name = ""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.env = dict(os.environ)

    def submit(self, script: Path) -> tuple[str, float]:
        """Submit `script`; return (job id, seconds the submit call took)."""
        start = time.perf_counter()
        proc = _run(self.submit_argv(script), self.env)
        return self.parse_id(proc.stdout), time.perf_counter() - start

    def wait_argv(self, job: str) -> list[str]:
        raise NotImplementedError

    def wait(self, job: str) -> None:
        subprocess.run(self.wait_argv(job), env=self.env, capture_output=True, check=False)


class Gsat(System):
    def __init__(self, root: Path, channel: str = "file", watch: str = "auto", poll_interval: float = 0.5):
        super().__init__(root)
        self.name = "gsat" if (channel, watch) == ("file", "auto") else f"gsat-{channel}-{watch}"
        self.env.update(GSAT_HOME=str(root), GSAT_HOSTNAME="bench")
        self.env.pop("GSAT_CHANNEL", None)
        self.env.pop("GSAT_WATCH", None)
        (root / "config.yaml").write_text(json.dumps({
            "slots": 2, "autostart": False, "channel": channel, "watch": watch,
            "poll_interval": poll_interval}))  # JSON is YAML

    def bin(self, name: str) -> str:
        return str(VENV_BIN / name)

    def start(self) -> None:
        _run([self.bin("gsatlc"), "start"], self.env)

    def stop(self) -> None:
        proc = subprocess.run([self.bin("gsatlc"), "stop"], env=self.env, capture_output=True, text=True)
        if proc.returncode:
            print(f"bench: gsatlc stop of {self.root}: {proc.stderr.strip()}", file=sys.stderr)

    def controller_pid(self) -> int:
        return int((self.root / "hosts" / "bench" / "pid").read_text())

    def submit_argv(self, script):
        return [self.bin("gqsub"), str(script)]

    def parse_id(self, out: str) -> str:
        return out.split()[0]

    def wait_argv(self, job):
        return [self.bin("gqwait"), job]

    def submit_array(self, script, count: int) -> list[str]:
        return _run([self.bin("gqsub"), "-t", f"1-{count}", str(script)], self.env).stdout.split()

    def list_argv(self):
        return [self.bin("gqstat")]


class TaskSpooler(System):
    name = "task-spooler"

    def __init__(self, root: Path):
        super().__init__(root)
        self.env.update(TS_SOCKET=str(root / "socket"), TMPDIR=str(root), TS_MAXFINISHED="20000")

    def start(self) -> None:
        _run(["tsp", "-S", "2"], self.env)

    def stop(self) -> None:
        subprocess.run(["tsp", "-K"], env=self.env, capture_output=True)

    def submit_argv(self, script):
        return ["tsp", str(script)]

    def parse_id(self, out: str) -> str:
        return out.strip()

    def wait_argv(self, job):
        return ["tsp", "-w", job]

    def list_argv(self):
        return ["tsp", "-l"]


class Nq(System):
    name = "nq"

    def __init__(self, root: Path):
        super().__init__(root)
        self.env["NQDIR"] = str(root)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        subprocess.run(["pkill", "-f", f"NQDIR={self.root}"], capture_output=True)

    def submit_argv(self, script):
        return ["nq", str(script)]

    def parse_id(self, out: str) -> str:
        return out.strip()

    def wait_argv(self, job):
        return ["nq", "-w", job]

    def list_argv(self):
        return ["ls", "-l", str(self.root)]


def peers_available() -> list[str]:
    return [name for name, exe in (("task-spooler", "tsp"), ("nq", "nq")) if shutil.which(exe)]


def install_peers() -> None:
    """apt-get install task-spooler and nq when missing and we are root."""
    missing = [pkg for pkg, exe in (("task-spooler", "tsp"), ("nq", "nq")) if not shutil.which(exe)]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env, capture_output=True)
        if any(not shutil.which(exe) for exe in ("tsp", "nq")):
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env, capture_output=True)
