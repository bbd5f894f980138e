"""End to end: every command's interface (SPEC §4) and the environment a job
sees (SPEC §5), through the installed commands and a real `gsatlc run`."""

import json
import os
import re
import subprocess

import pytest

from gsat import __version__
from helpers import wait_for

pytestmark = pytest.mark.timeout(60)

COMMANDS = ("gqsub", "gqstat", "gqdel", "gqhold", "gqrls", "gqsig", "gqwait", "gqpeek",
            "gsatlc", "gsatctl", "sendcmd", "gsat-mailgate")
ID_COMMANDS = ("gqdel", "gqhold", "gqrls", "gqsig", "gqwait", "gqpeek", "gqstat")
SH = "#!/bin/sh\n"
GSAT_VARS = ("GSAT_O_JOBID", "GSAT_JOBID", "GSAT_JOBNAME", "GSAT_O_WORKDIR", "GSAT_O_HOME",
             "GSAT_O_LOGNAME", "GSAT_O_HOST", "GSAT_O_PATH", "GSAT_SUBMIT_HOST", "GSAT_SUBMIT_DIR",
             "GSAT_HOME", "GSAT_JOBDIR", "GSAT_JOBTYPE", "GSAT_RUN")


# ---- helpers --------------------------------------------------------------

def one_line_error(proc, prog: str, code: int) -> str:
    """Assert exit `code` and a single `prog: message` line on stderr; return it."""
    assert proc.returncode == code, f"exit {proc.returncode}, stderr {proc.stderr!r}"
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {proc.stderr!r}"
    assert lines[0].startswith(f"{prog}: ") and len(lines[0]) > len(prog) + 3, lines[0]
    return lines[0]


def queued_nothing(g) -> None:
    assert json.loads(g.run("gqstat", "--json").stdout) == []
    assert [p.name for p in (g.home / "jobs").glob("[0-9]*")] == []


def wait_ok(g, *ids) -> None:
    proc = g.run("gqwait", *ids, timeout=30)
    assert proc.returncode == 0, f"gqwait {ids}: {proc.returncode} {proc.stderr}"


def run_job(g, script: str, *options, **kw) -> tuple[int, str]:
    """Submit, wait for success, return (id, stdout of the job)."""
    job = g.submit(script, *options, **kw)
    wait_ok(g, job)
    return job, g.run("gqpeek", job).stdout


def parse_env(text: str) -> dict:
    env = {}
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if eq and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            env.setdefault(key, value)
    return env


def blocker(g, tmp_path) -> tuple[int, object]:
    """A running job that holds the one slot until its gate file appears."""
    gate = tmp_path / "gate"
    job = g.submit(SH + f'while [ ! -e "{gate}" ]; do sleep 0.02; done\n')
    g.wait_state(job, "running")
    return job, gate


def workdir(tmp_path, name: str = "work"):
    path = tmp_path / name
    path.mkdir()
    return path


# ---- --help, --version, usage errors -------------------------------------

@pytest.mark.parametrize("prog", COMMANDS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_exits_0(gsat, prog, flag):
    proc = gsat.run(prog, flag)
    assert proc.returncode == 0, proc.stderr
    assert "usage" in proc.stdout.lower() and prog in proc.stdout
    assert proc.stderr == ""


@pytest.mark.parametrize("prog", COMMANDS)
def test_version_exits_0_and_prints_the_version(gsat, prog):
    proc = gsat.run(prog, "--version")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1
    assert __version__ in proc.stdout and prog in proc.stdout


# what each command needs besides the unknown option, so that the option is the only error
OTHER_ARGS = {"gqdel": ["1"], "gqhold": ["1"], "gqrls": ["1"], "gqsig": ["1"], "gqwait": ["1"],
              "gqpeek": ["1"], "gsatlc": ["status"], "sendcmd": ["-c", "ALIVE?"], "gsat-mailgate": ["keys", "list"]}


@pytest.mark.parametrize("prog", COMMANDS)
def test_unknown_option_is_a_usage_error(gsat, prog):
    proc = gsat.run(prog, "--no-such-option", *OTHER_ARGS.get(prog, []), input=SH + "true\n")
    line = one_line_error(proc, prog, 2)
    assert "--no-such-option" in line
    queued_nothing(gsat)


def test_unknown_directive_is_a_usage_error_and_queues_nothing(gsat):
    proc = gsat.run("gqsub", input=SH + "#GSAT -N fine\n#GSAT --no-such-directive\ntrue\n")
    line = one_line_error(proc, "gqsub", 2)
    assert "no-such-directive" in line
    assert proc.stdout == ""
    queued_nothing(gsat)


@pytest.mark.parametrize("options", [
    ["-T", "nosuch"], ["-t", "5-1"], ["-t", "1-x"], ["-t", "x"], ["-t", "1-3%0"],
    ["-m", "x"], ["-m", "bz"], ["--on", "nocommand"], ["--on", "=true"], ["--on", "1bad=true"],
    ["-v", "=b"], ["-v", "A B=1"], ["-v", "1A=2"], ["-v", "A-B"],  # a name the job's shell could not read
], ids=lambda o: " ".join(o))
def test_bad_job_option_is_a_usage_error_and_queues_nothing(gsat, options):
    proc = gsat.run("gqsub", *options, input=SH + "true\n")
    line = one_line_error(proc, "gqsub", 2)
    assert options[1] in line
    queued_nothing(gsat)


@pytest.mark.parametrize("directive", ["-T nosuch", "-t 5-1", "-m x", "--on nocommand",
                                       # a NUL: only a script can hold one; no execve or path can
                                       "-d ~nobody\0/x", "-v A\0B=1", "-v A=x\0y", "-N a\0b", "-o /tmp/\0"])
def test_bad_directive_value_is_a_usage_error_and_queues_nothing(gsat, directive):
    proc = gsat.run("gqsub", input=SH + f"#GSAT {directive}\ntrue\n")
    one_line_error(proc, "gqsub", 2)
    queued_nothing(gsat)


# argv and environ bytes that are not UTF-8 (Python holds them as lone surrogates): job.json cannot
NOT_UTF8 = {"name": (["-N", "\udce9"], None), "argument": (["-", "--", "\udce9"], None),
            "-v variable": (["-v", "X"], {"X": "\udce9"})}


@pytest.mark.parametrize("case", NOT_UTF8)
def test_bytes_that_are_not_utf8_are_a_usage_error_and_queue_nothing(gsat, case):
    options, env = NOT_UTF8[case]
    line = one_line_error(gsat.run("gqsub", *options, input=SH + "true\n", env=env), "gqsub", 2)
    assert "not valid UTF-8" in line
    queued_nothing(gsat)


@pytest.mark.parametrize("options, env", [([], {"LC_X": "\udce9"}), (["-V"], {"X": "\udce9"})],
                         ids=["kept variable", "-V variable"])
def test_an_inherited_variable_that_is_not_utf8_is_left_out_with_a_warning(running, tmp_path, options, env):
    out = tmp_path / "env"
    proc = running.run("gqsub", *options, input=SH + f"env > {out}\n", env=env)
    assert proc.returncode == 0, proc.stderr
    name = next(iter(env))
    assert proc.stderr.count("\n") == 1 and "warning" in proc.stderr and name in proc.stderr, proc.stderr
    assert running.wait_state(int(proc.stdout), "finished")
    lines = out.read_text().splitlines()
    assert not [line for line in lines if line.startswith(f"{name}=")] and any(l.startswith("GSAT_JOBID=") for l in lines)


def test_a_trigger_argument_that_is_not_utf8_is_a_usage_error(gsat):
    job = gsat.submit(SH + "true\n", "-H")
    line = one_line_error(gsat.run("trigger", "--job", job, "ev", "\udce9"), "trigger", 2)
    assert "not UTF-8" in line


@pytest.mark.parametrize("prog", ID_COMMANDS)
@pytest.mark.parametrize("bad", ["abc", "0", "1x", "4.2"])
def test_invalid_job_id_is_a_usage_error(gsat, prog, bad):
    gsat.submit(SH + "true\n")  # job 1 exists: the id's form is the only error
    line = one_line_error(gsat.run(prog, bad), prog, 2)
    assert bad in line


# ---- exit 3: no such job ---------------------------------------------------

@pytest.mark.parametrize("prog", ID_COMMANDS)
def test_unknown_job_id_exits_3(gsat, prog):
    assert gsat.submit(SH + "true\n") == 1
    line = one_line_error(gsat.run(prog, "42"), prog, 3)
    assert "42" in line


def test_leading_zeros_name_the_same_job(gsat):
    job = gsat.submit(SH + "true\n")
    rows = json.loads(gsat.run("gqstat", "--json", f"{job:05d}").stdout)
    assert [r["id"] for r in rows] == [job]


def test_deleted_job_is_no_such_job(running):
    job, _ = run_job(running, SH + "true\n")
    assert running.run("gqdel", job).returncode == 0
    for prog in ("gqstat", "gqpeek", "gqdel", "gqrls"):
        one_line_error(running.run(prog, job), prog, 3)


# ---- exit 1: refused --------------------------------------------------------

def test_gqrls_of_a_queued_job_is_refused(running, tmp_path):
    first, gate = blocker(running, tmp_path)
    queued = running.submit(SH + "true\n")
    assert running.state(queued)["state"] == "queued"
    line = one_line_error(running.run("gqrls", queued), "gqrls", 1)
    assert str(queued) in line
    assert running.state(queued)["state"] == "queued"
    gate.touch()
    wait_ok(running, first, queued)


def test_gqrls_of_a_finished_job_is_refused(running):
    job, _ = run_job(running, SH + "true\n")
    one_line_error(running.run("gqrls", job), "gqrls", 1)
    assert running.state(job)["state"] == "finished"


def test_gqsig_of_a_finished_job_is_refused(running):
    job, _ = run_job(running, SH + "true\n")
    one_line_error(running.run("gqsig", "-s", "TERM", job), "gqsig", 1)
    assert running.state(job)["state"] == "finished"


def test_gqhold_of_a_held_job_is_refused(running):
    job = running.submit(SH + "true\n", "-H")
    running.wait_state(job, "held")
    one_line_error(running.run("gqhold", job), "gqhold", 1)
    assert running.state(job)["state"] == "held"


# ---- exit 5: no controller ---------------------------------------------------

def test_sendcmd_without_a_controller_exits_5(gsat):
    gsat.write_config({"autostart": False, "timeout": 1})
    proc = gsat.run("sendcmd", "-c", "ALIVE?", timeout=15)
    one_line_error(proc, "sendcmd", 5)
    assert proc.stdout == ""


def test_gqdel_without_a_controller_exits_5_and_keeps_the_job(gsat):
    gsat.write_config({"autostart": False, "timeout": 1})
    job = gsat.submit(SH + "true\n")
    one_line_error(gsat.run("gqdel", job, timeout=15), "gqdel", 5)
    assert gsat.state(job)["state"] == "queued"
    assert gsat.run("gsatlc", "status").returncode == 5  # and none was started


# ---- exit 6: unusable GSAT_HOME ---------------------------------------------

@pytest.mark.parametrize("where", ["", "spool", "spool/testhost"], ids=["home", "spool", "inbox"])
def test_home_or_spool_writable_by_others_exits_6(gsat, where):
    assert gsat.run("gsatlc", "status").returncode == 5  # creates the layout
    target = gsat.home / where
    assert target.is_dir()
    os.chmod(target, 0o777)
    proc = gsat.run("gqsub", input=SH + "true\n")
    line = one_line_error(proc, "gqsub", 6)
    assert "writable" in line
    assert proc.stdout == ""
    assert [p.name for p in (gsat.home / "jobs").glob("[0-9]*")] == []  # (gqstat refuses such a home too)
    try:
        proc = gsat.run("gsatlc", "run", timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"gsatlc run kept running with {target} mode 0777")
    line = one_line_error(proc, "gsatlc", 6)
    assert "writable" in line


# ---- gqsub output and ids ------------------------------------------------------

def test_gqsub_prints_the_id_alone_and_ids_are_consecutive(gsat):
    proc = gsat.run("gqsub", input=SH + "true\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "1\n"
    proc = gsat.run("gqsub", "--json", input=SH + "true\n")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"jobs": [2]}
    assert [gsat.submit(SH + "true\n") for _ in range(3)] == [3, 4, 5]


def test_ids_are_never_reused_after_gqdel(running):
    finished, _ = run_job(running, SH + "true\n")
    assert running.run("gqdel", finished).returncode == 0
    held = running.submit(SH + "true\n", "-H")
    assert held > finished
    running.wait_state(held, "held")
    assert running.run("gqdel", held).returncode == 0
    again = running.submit(SH + "true\n")
    assert again > held
    wait_ok(running, again)


# ---- the job's environment ------------------------------------------------------

def test_job_sees_every_gsat_variable(running, tmp_path):
    work = workdir(tmp_path)
    job, out = run_job(running, SH + "env\n", "-N", "envjob", cwd=work,
                       env={"USER": "tester", "LOGNAME": "tester"})
    env = parse_env(out)
    missing = [v for v in GSAT_VARS if v not in env]
    assert missing == []
    expected = {
        "GSAT_O_JOBID": str(job), "GSAT_JOBID": str(job), "GSAT_JOBNAME": "envjob",
        "GSAT_O_WORKDIR": os.path.realpath(work), "GSAT_O_HOME": running.env["HOME"],
        "GSAT_O_LOGNAME": "tester", "GSAT_O_HOST": "testhost", "GSAT_O_PATH": env.get("PATH"),
        "GSAT_SUBMIT_HOST": "testhost", "GSAT_SUBMIT_DIR": os.path.realpath(work),
        "GSAT_HOME": str(running.home), "GSAT_JOBDIR": str(running.job_dir(job)),
        "GSAT_JOBTYPE": "default", "GSAT_RUN": "1",
    }
    assert {k: env.get(k) for k in expected} == expected


def test_job_environment_is_clean_by_default(running):
    script = SH + 'echo "MY_SECRET=${MY_SECRET-unset}"\necho "HOME=$HOME"\necho "PATH=$PATH"\n'
    _, out = run_job(running, script, env={"MY_SECRET": "s3cret"})
    env = parse_env(out)
    assert env["MY_SECRET"] == "unset"
    assert env["HOME"] == running.env["HOME"] and env["PATH"] == running.env["PATH"]


def test_capital_v_exports_the_whole_environment(running):
    _, out = run_job(running, SH + 'echo "MY_SECRET=${MY_SECRET-unset} job=$GSAT_JOBID"\n', "-V",
                     env={"MY_SECRET": "s3cret"})
    assert out.startswith("MY_SECRET=s3cret job=")
    assert out.strip() != "MY_SECRET=s3cret job="


def test_v_passes_named_variables(running):
    script = SH + 'echo "${MY_SECRET-unset} ${A-unset} ${B-unset} ${OTHER-unset}"\n'
    _, out = run_job(running, script, "-v", "MY_SECRET", env={"MY_SECRET": "s3cret", "OTHER": "x"})
    assert out == "s3cret unset unset unset\n"
    _, out = run_job(running, script, "-v", "A=1,B=2", env={"MY_SECRET": "s3cret", "OTHER": "x"})
    assert out == "unset 1 2 unset\n"


def test_gtransfer_job_type_sets_its_environment(running):
    script = SH + 'echo "$GSAT_JOBTYPE"\necho "X509_USER_PROXY=${X509_USER_PROXY-unset}"\n'
    job, out = run_job(running, script, "-T", "gtransfer")
    assert out.splitlines() == ["gtransfer", f"X509_USER_PROXY=/tmp/x509up_u{os.getuid()}"]  # $UID expanded
    assert running.state(job)["jobtype"] == "gtransfer"


# ---- directives and options ----------------------------------------------------------

NAME_SCRIPT = SH + "#GSAT -N fromdirective\necho \"$GSAT_JOBNAME\"\n"


def test_directive_gives_the_name(running):
    job, out = run_job(running, NAME_SCRIPT)
    assert out == "fromdirective\n"
    assert running.state(job)["name"] == "fromdirective"


def test_command_line_wins_over_directive(running):
    job, out = run_job(running, NAME_SCRIPT, "-N", "fromcli")
    assert out == "fromcli\n"
    assert running.state(job)["name"] == "fromcli"


def test_directives_after_the_first_command_are_ignored(running):
    script = SH + "# a comment\n\necho \"$GSAT_JOBNAME\"\n#GSAT -N late\n#GSAT --no-such-directive\n"
    job, out = run_job(running, script)  # the unknown directive after the command is no usage error
    assert out == "STDIN\n"  # the default name of a script given on stdin
    assert running.state(job)["name"] == "STDIN"


def test_o_and_e_expand_percent_j(running, tmp_path):
    work = workdir(tmp_path)
    job, out = run_job(running, SH + "echo to-stdout\necho to-stderr >&2\n",
                       "-o", "out.%j", "-e", "err.%j", cwd=work)
    assert (work / f"out.{job}").read_text() == "to-stdout\n"
    assert (work / f"err.{job}").read_text() == "to-stderr\n"
    assert out == "to-stdout\n"
    assert running.run("gqpeek", "-e", job).stdout == "to-stderr\n"


def test_j_oe_joins_stderr_into_stdout(running):
    job, out = run_job(running, SH + "echo out\necho err >&2\necho out2\n", "-j", "oe")
    assert out == "out\nerr\nout2\n"
    stderr = running.job_dir(job) / "stderr"
    assert not stderr.exists() or stderr.read_text() == ""


def test_d_sets_the_working_directory(running, tmp_path):
    work, other = workdir(tmp_path), workdir(tmp_path, "other")
    _, out = run_job(running, SH + "pwd -P\n", "-d", str(other), cwd=work)
    assert out == os.path.realpath(other) + "\n"
    _, out = run_job(running, SH + "pwd -P\n", "-d", "../other", cwd=work)
    assert out == os.path.realpath(other) + "\n"


def test_default_working_directory_is_the_submit_directory(running, tmp_path):
    work = workdir(tmp_path)
    _, out = run_job(running, SH + "pwd -P\n", cwd=work)
    assert out == os.path.realpath(work) + "\n"


def test_arguments_after_double_dash_reach_the_script(running, tmp_path):
    script = SH + "printf '[%s]\\n' \"$@\"\n"
    proc = running.run("gqsub", "-", "--", "one", "two words", "-N", input=script)
    assert proc.returncode == 0, proc.stderr
    job = int(proc.stdout)
    wait_ok(running, job)
    assert running.run("gqpeek", job).stdout == "[one]\n[two words]\n[-N]\n"
    path = tmp_path / "job.sh"
    path.write_text(script)
    proc = running.run("gqsub", path, "--", "a", "b")
    assert proc.returncode == 0, proc.stderr
    job = int(proc.stdout)
    wait_ok(running, job)
    assert running.run("gqpeek", job).stdout == "[a]\n[b]\n"


def test_script_from_stdin_dash(running):
    proc = running.run("gqsub", "-N", "fromstdin", "-", input=SH + "echo from stdin\n")
    assert proc.returncode == 0, proc.stderr
    job = int(proc.stdout)
    wait_ok(running, job)
    assert running.run("gqpeek", job).stdout == "from stdin\n"
    assert running.state(job)["name"] == "fromstdin"


def test_script_is_copied_at_submit_time(running, tmp_path):
    path = tmp_path / "job.sh"
    path.write_text(SH + "echo original\n")
    proc = running.run("gqsub", "-H", path)
    assert proc.returncode == 0, proc.stderr
    job = int(proc.stdout)
    running.wait_state(job, "held")
    path.write_text(SH + "echo changed\n")
    assert running.run("gqrls", job).returncode == 0
    wait_ok(running, job)
    assert running.run("gqpeek", job).stdout == "original\n"


def test_hold_option_submits_held(running):
    for flag in ("-H", "--hold"):
        held = running.submit(SH + "echo ran\n", flag)
        later, _ = run_job(running, SH + "true\n")
        assert later > held
        assert running.state(held)["state"] == "held"
        assert running.run("gqpeek", held).stdout == ""
        assert running.run("gqrls", held).returncode == 0
        wait_ok(running, held)
        assert running.run("gqpeek", held).stdout == "ran\n"


def test_q_pins_a_job_to_its_host(running, tmp_path):
    if running.channel == "sysv":
        pytest.skip("the SysV channel serves one host only (refusing -q OTHER is tested there)")
    marker = tmp_path / "pinned-ran"
    pinned = running.submit(SH + f'touch "{marker}"\n', "-q", "otherhost")
    later, _ = run_job(running, SH + "true\n")
    assert later > pinned
    state = running.state(pinned)
    assert state["state"] == "queued" and state["host"] == "otherhost"
    assert not marker.exists()
    assert not list((running.job_dir(pinned) / "runs").glob("*.start"))  # never started
    assert "JOB_START" not in running.events(pinned)
    rows = json.loads(running.run("gqstat", "--json", "-q", "otherhost").stdout)
    assert [r["id"] for r in rows] == [pinned]
    rows = json.loads(running.run("gqstat", "--json", "-q", "testhost").stdout)
    assert [r["id"] for r in rows] == [later]


# ---- job arrays -------------------------------------------------------------------------

ARRAY_SCRIPT = SH + """\
start=$(date +%s.%N)
sleep 0.4
echo "$GSAT_JOBID $GSAT_ARRAY_ID $start $(date +%s.%N)" > "$GSAT_O_WORKDIR/rec/$GSAT_ARRAY_INDEX"
"""


def max_overlap(intervals) -> int:
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals],
                   key=lambda x: (x[0], x[1]))
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def test_job_array_indexes_and_max_running(gsat, tmp_path):
    gsat.write_config({"autostart": False, "kill_grace": 2, "slots": 5})
    gsat.start()
    work = workdir(tmp_path)
    (work / "rec").mkdir()
    proc = gsat.run("gqsub", "-t", "1-5%2", input=ARRAY_SCRIPT, cwd=work)
    assert proc.returncode == 0, proc.stderr
    ids = [int(line) for line in proc.stdout.splitlines()]
    assert len(ids) == 5 and ids == list(range(ids[0], ids[0] + 5))
    wait_ok(gsat, *ids)
    records = {}
    for index in range(1, 6):
        job, array_id, start, end = (work / "rec" / str(index)).read_text().split()
        records[index] = (int(job), int(array_id), float(start), float(end))
    assert {i: r[0] for i, r in records.items()} == {i: ids[i - 1] for i in range(1, 6)}
    assert {r[1] for r in records.values()} == {ids[0]}
    assert max_overlap([(r[2], r[3]) for r in records.values()]) <= 2  # %2: at most 2 at once


# ---- gsatctl ----------------------------------------------------------------------------

def test_gsatctl_subcommands_work_like_the_gq_commands(running, tmp_path):
    path = tmp_path / "job.sh"
    path.write_text(SH + "echo via gsatctl\n")
    proc = running.run("gsatctl", "qsub", path)
    assert proc.returncode == 0, proc.stderr
    first = int(proc.stdout)
    proc = running.run("gsatctl", "--qsub", path)
    assert proc.returncode == 0, proc.stderr
    second = int(proc.stdout)
    assert second == first + 1
    wait_ok(running, first, second)
    table = running.run("gsatctl", "qstat")
    assert table.returncode == 0
    listed = {line.split()[0]: line.split()[1] for line in table.stdout.splitlines()[1:]}
    assert listed == {str(first): "finished", str(second): "finished"}
    assert running.run("gsatctl", "qpeek", second).stdout == "via gsatctl\n"
    assert running.run("gsatctl", "qdel", first).returncode == 0
    assert running.run("gqstat", first).returncode == 3
    assert running.run("gqstat", second).returncode == 0


def test_gsatctl_unknown_subcommand_is_a_usage_error(gsat):
    line = one_line_error(gsat.run("gsatctl", "nosuch"), "gsatctl", 2)
    assert "nosuch" in line
    one_line_error(gsat.run("gsatctl", "--nosuch"), "gsatctl", 2)


# ---- sendcmd ----------------------------------------------------------------------------

def test_sendcmd_alive_pid_host(running):
    proc = running.run("sendcmd", "-c", "ALIVE?")
    assert (proc.returncode, proc.stdout) == (0, "ALIVE\n")
    proc = running.run("sendcmd", "-c", "PID?")
    assert proc.returncode == 0
    pid = int(proc.stdout)
    assert pid == running.controllers[0].pid
    assert pid == int((running.home / "hosts" / "testhost" / "pid").read_text())
    assert str(pid) in running.run("gsatlc", "status").stdout.split()
    proc = running.run("sendcmd", "-c", "HOST?")
    assert (proc.returncode, proc.stdout) == (0, "testhost\n")


def test_sendcmd_stop_stops_the_controller(running):
    controller = running.controllers[0]
    assert running.run("sendcmd", "-c", "STOP").returncode == 0
    wait_for(lambda: controller.poll() is not None, 10, "the controller to exit")
    assert running.run("gsatlc", "status").returncode == 5


# ---- gqstat ---------------------------------------------------------------------------

def test_gqstat_state_filter(running):
    finished, _ = run_job(running, SH + "true\n")
    failed = running.submit(SH + "exit 3\n")
    assert running.run("gqwait", failed, timeout=30).returncode == 3
    held = running.submit(SH + "true\n", "-H")
    running.wait_state(held, "held")

    def ids(state):
        proc = running.run("gqstat", "-s", state, "--json")
        assert proc.returncode == 0, proc.stderr
        return [r["id"] for r in json.loads(proc.stdout)]
    assert ids("finished") == [finished]
    assert ids("failed") == [failed]
    assert ids("held") == [held]
    assert ids("queued") == [] and ids("running") == []
    table = running.run("gqstat", "-s", "held").stdout.splitlines()
    assert [line.split()[0] for line in table[1:]] == [str(held)]
    one_line_error(running.run("gqstat", "-s", "nosuch"), "gqstat", 2)


def test_gqstat_full_prints_key_value_lines(running):
    job, _ = run_job(running, SH + "true\n", "-N", "fulljob")
    proc = running.run("gqstat", "-f", job)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line]
    assert lines and all(re.match(r"[A-Za-z_][\w.]*=", line) for line in lines), lines
    fields = dict(line.split("=", 1) for line in lines)
    assert fields["id"] == str(job)
    assert fields["state"] == "finished"
    assert fields["name"] == "fulljob"
    assert fields["exit"] == "0"
    assert fields["host"] == "testhost"
