"""Job files that parse but hold values the code cannot use (review of wave 2,
findings 3 and 6): times out of range (NaN, infinity, 1e300), lists and
mappings whose elements have the wrong shape, events whose name is not text.
Such a job is damaged: listed with its reason, never started, never a
traceback in a listing or the controller, and the other jobs run."""

import json
import re

import pytest

pytestmark = pytest.mark.timeout(60)

SCRIPT = "#!/bin/sh\necho hi\n"

# (file, key, the value as raw JSON text: NaN and 1e400 are what a careless edit can leave)
BAD = {
    "submitted 1e400": ("job.json", "submitted", "1e400"),
    "submitted NaN": ("job.json", "submitted", "NaN"),
    "submitted 1e300": ("job.json", "submitted", "1e300"),
    "submitted -1e300": ("job.json", "submitted", "-1e300"),
    "started Infinity": ("state.json", "started", "Infinity"),
    "on [1]": ("job.json", "on", "[1]"),
    "on [[\"A\"]]": ("job.json", "on", '[["A"]]'),
    "args [1]": ("job.json", "args", "[1]"),
    "env {A: 1}": ("job.json", "env", '{"A": 1}'),
    "array first text": ("job.json", "array", '{"first": "1", "last": 1, "index": 1, "id": 1}'),
}


def put(path, key: str, raw: str) -> None:
    """Set `key` of the JSON object in `path` to the JSON text `raw`, as an editor would."""
    data = json.loads(path.read_text()) if path.exists() else {"state": "queued"}
    data[key] = "@@"
    path.write_text(json.dumps(data).replace('"@@"', raw))


def table_states(stdout: str) -> dict:
    return {line.split()[0]: line.split()[1] for line in stdout.splitlines()[1:]}


@pytest.mark.parametrize("case", BAD)
def test_a_value_the_code_cannot_use_makes_the_job_damaged(gsat, case):
    name, key, raw = BAD[case]
    ok, bad = gsat.submit(SCRIPT), gsat.submit(SCRIPT)
    put(gsat.job_dir(bad) / name, key, raw)
    for args in (("gqstat",), ("gqstat", bad), ("gqstat", "-f", ok, bad), ("gqstat", "--json")):
        proc = gsat.run(*args)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (args, proc.stderr)
    assert table_states(gsat.run("gqstat", check=True).stdout) == {str(ok): "queued", str(bad): "damaged"}
    full = gsat.run("gqstat", "-f", bad, check=True).stdout.splitlines()
    assert f"reason={name}: {key} is" in "\n".join(full), full

    gsat.start()  # a real controller: the good job runs, the damaged one is left alone
    gsat.wait_state(ok, "finished")
    assert gsat.state(bad)["state"] == "damaged"
    assert "Traceback" not in gsat.log(), gsat.log()
    assert gsat.run("gqdel", bad).returncode == 0
    assert table_states(gsat.run("gqstat", check=True).stdout) == {str(ok): "finished"}


@pytest.mark.parametrize("line", ['{"name": 5, "run": 1}', '{"name": "X", "id": 7}', '{"name": "X", "id": "a", "run": [1]}'])
def test_an_event_line_of_the_wrong_shape_is_skipped(running, line):
    first, second = running.submit(SCRIPT), running.submit(SCRIPT)
    running.wait_state(second, "finished")
    with open(running.job_dir(first) / "events.log", "a") as log:
        log.write(line + "\n")
    for args in (("gqstat", "-f", first, second), ("gqstat", "-f"), ("gqstat", "--json")):
        proc = running.run(*args)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (args, proc.stderr)
    full = running.run("gqstat", "-f", first, check=True).stdout
    assert re.search(r"^events=QSUB,JOB_START,JOB_TERMINATION,JOB_FINISHED$", full, re.M), full
    assert running.run("gqwait", "--event", "JOB_FINISHED", first, timeout=20).returncode == 0
