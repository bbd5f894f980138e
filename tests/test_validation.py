"""Values checked once when read (issue 12, items 9 and 10): job types and
the config, by type and range; a bad one is one line naming the file or
variable, the key and what is expected, exit 2, in every command."""

import json

import pytest

pytestmark = pytest.mark.timeout(60)

SCRIPT = "#!/bin/sh\necho hi\n"

BAD_TYPES = {
    "restart_on": "restart_on: [abc]\n",
    "restart_limit": "restart_limit: true\n",
    "hold_signal": "hold_signal: NOPE\n",
    "environment": "environment: [A, B]\n",
    "colour": "colour: blue\n",
}


def write_type(gsat, name: str, text: str) -> None:
    folder = gsat.home / "jobtypes"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(text)


@pytest.mark.parametrize("key", BAD_TYPES)
def test_gqsub_refuses_a_job_type_with_a_bad_key(gsat, key):
    write_type(gsat, "mine", BAD_TYPES[key])
    proc = gsat.run("gqsub", "-T", "mine", input=SCRIPT)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("gqsub: ") and "jobtypes/mine.yaml" in line and key in line, line
    assert not (gsat.home / "jobs").exists() or not any((gsat.home / "jobs").iterdir())


def test_a_job_whose_type_went_bad_after_submission_fails_with_a_reason(running):
    write_type(running, "mine", "restart_on: [75]\n")
    job = running.submit(SCRIPT, "-T", "mine", "-H")
    running.wait_state(job, "held")
    write_type(running, "mine", "restart_on: [abc]\n")
    assert running.run("gqrls", job).returncode == 0
    state = running.wait_state(job, "failed")
    assert state["exit"] == 127
    assert "job type mine is unusable" in state["reason"] and "restart_on" in state["reason"]
    assert "JOB_START" not in running.events(job) and "JOB_FAILED" in running.events(job)
    assert running.run("gqwait", job, "--timeout", "10").returncode == 127
    full = running.run("gqstat", "-f", job, check=True).stdout
    assert any(line.startswith("reason=job type mine is unusable") for line in full.splitlines())
    other = running.submit(SCRIPT)  # the controller carries on
    running.wait_state(other, "finished")
    write_type(running, "mine", "restart_on: [75]\n")  # repaired: hold + release runs it
    assert running.run("gqhold", job).returncode == 0
    assert running.run("gqrls", job).returncode == 0
    assert running.wait_state(job, "finished")["reason"] is None
    assert running.run("gqdel", job).returncode == 0


BAD_CONFIG = {
    "autostart": ('autostart: "no"\n', "true or false"),
    "slots-float": ("slots: 2.7\n", "whole number"),
    "slots-bool": ("slots: true\n", "whole number"),
    "kill_grace": ("kill_grace: true\n", "seconds"),
    "heartbeat_interval": ("heartbeat_interval: .inf\n", "seconds"),
    "mail.smtp_port": ('mail: {smtp_port: "25"}\n', "whole number"),
    "hostname": ('hostname: "a\\tb"\n', "host name"),
    # found by tests/test_fuzz.py: each once a traceback or accepted
    "slots-inf": ("slots: .inf\n", "whole number"),
    "kill_grace-nan": ("kill_grace: .nan\n", "seconds"),
    "timeout-inf": ("timeout: .inf\n", "seconds"),
    "autostart-maybe": ("autostart: maybe\n", "true or false"),
    "unknown-number-key": ("{1: 2, a: 3}\n", "unknown key '1'"),
    "mailgate.allow": ("mailgate: {allow: {1: 2}}\n", "mapping of texts"),
    "mailgate.allow-list": ("mailgate: {allow: {ABCD: [1]}}\n", "mapping of texts"),
}
BAD_ENV = {
    "GSAT_POLL_INTERVAL": ("nan", "poll_interval", "seconds"),
    "GSAT_WATCH": ("fast", "watch", "one of"),
    "GSAT_HOSTNAME": ("a\nb", "hostname", "host name"),
}
COMMANDS = [("gqsub", "-"), ("gqstat",), ("gqstat", "-f"), ("gqdel", "1"), ("gqwait", "1"), ("gqpeek", "1"),
            ("gqnodes",), ("gsatlc", "start"), ("sendcmd", "-c", "ALIVE?"), ("trigger", "--job", "1", "x"),
            ("gsat-mailgate", "keys", "list")]


def assert_refused_by_every_command(gsat, env, *words):
    for command in COMMANDS:
        proc = gsat.run(*command, input=SCRIPT, env=env, timeout=20)
        assert proc.returncode == 2, (command, proc.returncode, proc.stderr)
        (line,) = proc.stderr.splitlines()
        assert line.startswith(f"{command[0]}: ") and all(w in line for w in words), (command, line)
    assert not (gsat.home / "jobs").exists() or not any((gsat.home / "jobs").iterdir())


@pytest.mark.parametrize("case", BAD_CONFIG)
def test_a_bad_config_value_is_refused_by_every_command(gsat, case):
    text, expected = BAD_CONFIG[case]
    (gsat.home / "config.yaml").write_text(text)
    env = {"GSAT_HOSTNAME": ""} if case == "hostname" else None  # else the variable wins
    assert_refused_by_every_command(gsat, env, "config.yaml", case.split("-")[0], expected)


def test_a_config_that_is_not_utf8_is_refused_by_every_command(gsat):
    (gsat.home / "config.yaml").write_bytes(b"hostname: caf\xe9\n")
    assert_refused_by_every_command(gsat, {"GSAT_HOSTNAME": ""}, "config.yaml", "utf-8")


@pytest.mark.parametrize("var", BAD_ENV)
def test_a_bad_environment_override_is_refused_by_every_command(gsat, var):
    value, key, expected = BAD_ENV[var]
    assert_refused_by_every_command(gsat, {var: value}, var, key, expected)


@pytest.mark.parametrize("command", [("gqwait", "--timeout", "nan", "1"), ("gqwait", "--timeout", "-1", "1"),
                                     ("sendcmd", "-c", "ALIVE?", "--timeout", "nan"),
                                     ("sendcmd", "-c", "ALIVE?", "--timeout", "inf"),
                                     ("gsatlc", "start", "--timeout", "nan"), ("gqpeek", "-n", "-5", "1")])
def test_a_bad_number_on_the_command_line_is_a_usage_error(running, command):
    running.submit(SCRIPT)
    proc = running.run(*command, timeout=20)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"{command[0]}: ") and "Traceback" not in proc.stderr


def test_a_job_the_controller_cannot_start_fails_instead_of_staying_running(gsat):
    job = gsat.submit(SCRIPT)  # no controller yet: it reads job.json when it starts
    path = gsat.job_dir(job) / "job.json"
    spec = json.loads(path.read_text())
    del spec["submit_home"]  # well-formed, but the job's environment cannot be made from it
    path.write_text(json.dumps(spec))
    gsat.start()
    state = gsat.wait_state(job, "failed")
    assert state["exit"] == 255 and "cannot start" in state["reason"] and "submit_home" in state["reason"]
    assert gsat.run("gqwait", job, "--timeout", "10").returncode == 255
    other = gsat.submit(SCRIPT)
    gsat.wait_state(other, "finished")
    assert gsat.run("gqdel", job).returncode == 0
