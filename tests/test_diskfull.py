"""A full disk (SPEC §9): a clear one-line error with exit 6, and no corrupt
state.  GSAT_HOME is a real tmpfs mounted here with few inodes, so that it
fills up partway through a submission (root only: mount(2))."""

import os
import subprocess

import pytest

from helpers import Gsat

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def small_home(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,nr_inodes=64,mode=0700", "tmpfs", str(home)],
                   check=True, capture_output=True, timeout=30)
    g = Gsat(home)
    yield g
    g.cleanup()
    subprocess.run(["umount", "-l", str(home)], capture_output=True, timeout=30)


def job_dirs(g) -> list[str]:
    return sorted(os.listdir(g.home / "jobs")) if (g.home / "jobs").is_dir() else []


def state_of(g, name: str) -> str | None:
    path = g.home / "jobs" / name / "state.json"
    return path.read_text() if path.exists() else None


def test_an_array_that_fills_the_disk_is_withdrawn_whole(small_home):
    g = small_home
    proc = g.run("gqsub", "-t", "1-50", input="#!/bin/sh\ntrue\n")
    assert proc.returncode == 6, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("gqsub: ")
    assert proc.stdout == ""  # no id was given out
    names = job_dirs(g)
    assert not [n for n in names if n.startswith(".")]  # no temporary directory left behind
    # what was renamed into place before the disk filled is a tombstone: nothing of it will run
    assert names and all('"deleted"' in (state_of(g, n) or "") for n in names), \
        {n: state_of(g, n) for n in names}
    listing = g.run("gqstat", check=True).stdout
    assert listing.count("\n") <= 1, listing  # the header at most


def test_a_full_disk_refuses_a_submission_cleanly_and_space_brings_it_back(small_home):
    g = small_home
    filler = []
    while True:  # use up the inodes the way another program would
        path = g.home / f"filler{len(filler)}"
        try:
            path.write_text("x")
        except OSError:
            break
        filler.append(path)
    proc = g.run("gqsub", input="#!/bin/sh\ntrue\n")
    assert proc.returncode == 6 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert not [n for n in job_dirs(g) if n.startswith(".")]
    for path in filler:
        path.unlink()
    g.start()
    job = g.submit("#!/bin/sh\necho back\n")
    assert g.wait_state(job, "finished")["exit"] == 0


def test_an_array_is_stored_whole_by_a_python_without_ctypes(gsat, tmp_path):
    """Without ctypes there is no syncfs: every element is fsynced on its own instead."""
    blocker = tmp_path / "noctypes"
    blocker.mkdir()
    (blocker / "ctypes.py").write_text("raise ImportError('this Python was built without libffi')\n")
    proc = gsat.run("gqsub", "-t", "1-5", input="#!/bin/sh\ntrue\n", env={"PYTHONPATH": str(blocker)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "2", "3", "4", "5"]
    assert all((gsat.job_dir(i) / "job.json").is_file() for i in range(1, 6))
