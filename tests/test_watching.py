"""gqpeek -f, live process figures in gqstat -f, gqnodes up/down/stale."""

import json
import os
import select
import signal
import subprocess
import time

import pytest

from helpers import BIN, read, wait_for

pytestmark = pytest.mark.timeout(60)


def read_line(proc, timeout=10.0) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no output in time"
    return proc.stdout.readline()


def test_gqpeek_follows_live_and_returns_the_exit_value(running, tmp_path):
    barrier = tmp_path / "go"
    job = running.submit(f"#!/bin/sh\necho first\nwhile [ ! -e {barrier} ]; do sleep 0.02; done\n"
                         "echo second\nexit 4\n")
    running.wait_state(job, "running")
    follow = subprocess.Popen([str(BIN / "gqpeek"), "-f", str(job)], env=running.env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert read_line(follow) == "first\n"  # printed while the job still runs
        assert follow.poll() is None
        barrier.touch()
        assert read_line(follow) == "second\n"
        assert follow.wait(timeout=10) == 4
    finally:
        follow.kill()


def test_gqpeek_follows_stderr_sent_elsewhere(running, tmp_path):
    err = tmp_path / "err.%j"
    job = running.submit("#!/bin/sh\necho oops >&2\nexit 0\n", "-e", str(err))
    proc = running.run("gqpeek", "-e", "-f", job, timeout=20)
    assert proc.returncode == 0 and proc.stdout == "oops\n"
    assert (tmp_path / f"err.{job}").read_text() == "oops\n"


def test_gqpeek_of_queued_job_is_empty_and_unknown_is_3(gsat):
    job = gsat.submit("#!/bin/sh\necho x\n")
    proc = gsat.run("gqpeek", job)
    assert proc.returncode == 0 and proc.stdout == ""
    proc = gsat.run("gqpeek", 999)
    assert proc.returncode == 3 and proc.stderr.startswith("gqpeek: ")


def test_gqpeek_last_lines(running):
    job = running.submit("#!/bin/sh\nseq 1 10\n")
    running.run("gqwait", job, timeout=20)
    assert running.run("gqpeek", "-n", 2, job).stdout == "9\n10\n"


def test_gqpeek_interrupted_leaves_the_job_alone(running, tmp_path):
    barrier = tmp_path / "go"
    job = running.submit(f"#!/bin/sh\necho up\nwhile [ ! -e {barrier} ]; do sleep 0.02; done\n")
    # as a terminal starts it: a test run in the background of a shell inherits SIGINT ignored
    follow = subprocess.Popen([str(BIN / "gqpeek"), "-f", str(job)], env=running.env,
                              stdout=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert read_line(follow) == "up\n"
    follow.send_signal(signal.SIGINT)
    assert follow.wait(timeout=10) == 130
    assert running.state(job)["state"] == "running"
    barrier.touch()
    assert running.run("gqwait", job, timeout=20).returncode == 0


def test_gqstat_f_shows_cpu_and_processes_of_the_tree(running, tmp_path):
    job = running.submit("#!/bin/sh\n(while :; do :; done) &\nsleep 60 &\nwhile :; do :; done\n")
    running.wait_state(job, "running")

    def figures():
        out = running.run("gqstat", "-f", job).stdout
        fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        return fields if int(fields.get("processes") or 0) >= 3 else None
    fields = wait_for(figures, 15, "the job's processes to show")
    assert int(fields["processes"]) == 3  # the shell, its busy subshell, sleep
    assert float(fields["cpu_percent"]) > 50
    assert int(fields["rss_bytes"]) > 0 and int(fields["pid"]) > 1
    assert float(fields["elapsed"]) >= 0
    table = running.run("gqstat").stdout.splitlines()
    assert table[0].split()[5] == "ELAPSED" and table[1].split()[5].count(":") == 2
    running.run("gqdel", job, check=True)


def nodes(g):
    return {n["host"]: n for n in json.loads(g.run("gqnodes", "--json", check=True).stdout)}


def test_gqnodes_up_down_stale(gsat):
    gsat.write_config({"autostart": False, "heartbeat_interval": 0.2, "idle_heartbeat_interval": 0.2})
    proc = gsat.start()
    node = wait_for(lambda: nodes(gsat).get("testhost"), what="a heartbeat")
    assert node["status"] == "up" and node["pid"] == proc.pid and node["slots"] == 1
    assert len(node["load"]) == 3 and node["memory"]["total"] > 0
    assert "testhost" in gsat.run("gqnodes").stdout

    os.kill(proc.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: nodes(gsat)["testhost"]["status"] == "stale", 10, "stale")
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    wait_for(lambda: nodes(gsat)["testhost"]["status"] == "up", 10, "up again")

    gsat.run("gsatlc", "stop", check=True)
    assert nodes(gsat)["testhost"]["status"] == "down"


def table_states(g) -> dict[int, str]:
    lines = g.run("gqstat", check=True).stdout.splitlines()[1:]
    return {int(line.split()[0]): line.split()[1] for line in lines}


def test_gqstat_table_comes_from_the_summary_and_agrees_with_the_job_files(gsat, tmp_path):
    go = tmp_path / "go"
    done = gsat.submit("#!/bin/sh\nexit 3\n")
    proc = gsat.start()
    gsat.run("gqwait", done, timeout=20)
    waiting = gsat.submit(f"#!/bin/sh\nwhile [ ! -e {go} ]; do sleep 0.05; done\n")
    held = gsat.submit("#!/bin/sh\ntrue\n", "-H")
    gone = gsat.submit("#!/bin/sh\ntrue\n", "-H")
    gsat.run("gqdel", gone, check=True)
    gsat.wait_state(waiting, "running")
    summary = gsat.home / "hosts" / "testhost" / "summary.tsv"
    wait_for(lambda: table_states(gsat) == {done: "failed", waiting: "running", held: "held"},
             what="the summary to show every job")
    assert f"{done:07d}\tfailed\ttesthost\t3\t" in summary.read_text()
    summary.unlink()  # a cache: without it gqstat reads the job files
    assert table_states(gsat) == {done: "failed", waiting: "running", held: "held"}
    gsat.crash(proc)
    gsat.start()      # a starting controller rewrites it, one line per job of its own
    wait_for(lambda: sorted(int(line.split("\t")[0]) for line in read(summary).splitlines()
                            if not line.startswith("#zone\t")) == [done, waiting, held, gone],
             what="the rewritten summary")
    go.touch()
    gsat.run("gqwait", waiting, timeout=20)
    wait_for(lambda: table_states(gsat)[waiting] == "finished", what="the finished state")


def test_gqstat_shows_a_job_no_summary_names_and_times_in_its_own_zone(gsat):
    """The summary holds the texts gqstat prints, rendered in the controller's
    time zone; a gqstat in another zone renders them again.  A submission no
    controller took on yet has no row: the directory count gives it away."""
    proc = gsat.start()
    done = gsat.submit("#!/bin/sh\ntrue\n")
    gsat.run("gqwait", done, timeout=20, check=True)
    gsat.run("gsatlc", "stop", check=True)
    proc.wait(timeout=20)
    untold = gsat.submit("#!/bin/sh\ntrue\n")  # no controller: nobody writes its row
    assert table_states(gsat) == {done: "finished", untold: "queued"}
    ended = jobs_ended(gsat, done)
    utc = gsat.run("gqstat", check=True, env={"TZ": "UTC"}).stdout
    kathmandu = gsat.run("gqstat", check=True, env={"TZ": "NPT-5:45"}).stdout  # UTC+5:45, no tzdata needed
    assert time.strftime("%m-%d %H:%M:%S", time.gmtime(ended)) in utc
    assert time.strftime("%m-%d %H:%M:%S", time.gmtime(ended + 5 * 3600 + 45 * 60)) in kathmandu


def jobs_ended(g, job_id: int) -> int:
    state = json.loads((g.home / "jobs" / f"{job_id:07d}" / "state.json").read_text())
    return int(state["ended"])
