"""What a signature is for: a signed text runs only where it says it is
meant to run (#GSAT-TO), a key's mails are rate limited, and a mailed job
gets nothing of the gateway's environment.  Real keys, the real gateway.
"""

import json
import subprocess

import pytest

import mailkit
from helpers import BIN
from mailkit import GATEWAY, TO, configure, deliver, gate_log, stored_jobs

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("text, reason", [
    ("#!/bin/sh\necho signed for something else\n", "no line #GSAT-TO: naming this gateway"),
    ("#!/bin/sh\n#GSAT-TO: other-gateway@example.org\ntrue\n", "names another gateway"),
    (f"#!/bin/sh\necho first\n{TO}", "no line #GSAT-TO: naming this gateway"),  # not in the leading block
    ("gqstat\n", "no line #GSAT-TO: naming this gateway"),
    ("#GSAT-TO: other-gateway@example.org\ngqstat\n", "names another gateway"),
])
def test_a_text_that_does_not_name_this_gateway_never_runs(gate, people, text, reason):
    proc = deliver(gate, mailkit.inline(people["alice"].clearsign(text)))
    assert proc.returncode == 4 and reason.encode() in proc.stderr, proc.stderr
    assert stored_jobs(gate) == [] and gate.mails == []


def test_the_line_may_be_spelled_in_any_case_and_config_may_name_other_addresses(gate, people):
    assert deliver(gate, mailkit.inline(people["alice"].clearsign(
        f"#!/bin/sh\n#  GSAT-TO is read with blanks around it:\n  #GSAT-TO:  {GATEWAY.upper()}  \ntrue\n"))).returncode == 0
    configure(gate, address=["jobs@example.org", "gsat@example.net"])
    assert deliver(gate, mailkit.inline(people["alice"].clearsign("#GSAT-TO: gsat@example.net\ngqstat\n"))).returncode == 0
    assert deliver(gate, mailkit.inline(people["alice"].clearsign(f"{TO}gqstat 1\n"))).returncode == 4


def test_set_ups_from_before_need_no_line_until_they_name_an_address(gate, people):
    (gate.home / "mailgate" / "address").unlink()  # what `keys init` of older versions left
    assert deliver(gate, mailkit.inline(people["alice"].clearsign("#!/bin/sh\ntrue\n"))).returncode == 0
    assert "set mailgate.address to require it" in gate_log(gate)
    configure(gate, address=GATEWAY)
    assert deliver(gate, mailkit.inline(people["alice"].clearsign("#!/bin/sh\necho x\n"))).returncode == 4
    configure(gate, address=GATEWAY, require_to=False)
    assert deliver(gate, mailkit.inline(people["alice"].clearsign("#!/bin/sh\necho y\n"))).returncode == 0


def test_keys_init_records_the_address_that_signed_texts_must_name(gsat):
    proc = gsat.run("gsat-mailgate", "keys", "init", "--email", "jobs@example.org", check=True)
    assert "#GSAT-TO: jobs@example.org" in proc.stdout
    assert (gsat.home / "mailgate" / "address").read_text() == "jobs@example.org\n"
    mailkit.stop_agent(gsat.home / "mailgate" / "gnupg")


def test_a_key_may_have_max_per_hour_mails_accepted(gate, people):
    configure(gate, max_per_hour=2)
    alice = people["alice"]
    for i in range(2):
        assert deliver(gate, mailkit.inline(alice.clearsign(f"{TO}gqstat {i + 1}\n"))).returncode == 0
    third = mailkit.inline(alice.clearsign(f"{TO}gqstat 3\n"))
    proc = deliver(gate, third)
    assert proc.returncode == 4 and b"rate limit: 2 mails" in proc.stderr, proc.stderr
    configure(gate, max_per_hour=3)  # the refused mail was not spent: it is taken once there is room
    assert deliver(gate, third).returncode == 0


def test_minus_V_in_a_mailed_job_exports_nothing_of_the_gateways_environment(gate, people):
    (gate.home / "mailgate" / "address").unlink(missing_ok=True)  # no #GSAT-TO needed: the same test ran before it
    script = "#!/bin/sh\n#GSAT -V\n#GSAT -v MAIL_SECRET\ntrue\n"
    env = {**gate.env, "MAIL_SECRET": "the MTA's", "GATEWAY_TOKEN": "s3cret"}
    proc = subprocess.run([str(BIN / "gsat-mailgate"), "deliver"], input=mailkit.inline(
        people["alice"].clearsign(script)), capture_output=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    (job,) = stored_jobs(gate)
    spec = json.loads((gate.job_dir(int(job)) / "job.json").read_text())
    assert "GATEWAY_TOKEN" not in spec["env"] and "MAIL_SECRET" not in spec["env"], spec["env"]
    assert set(spec["env"]) <= {"HOME", "USER", "LOGNAME", "SHELL", "PATH", "LANG", "LANGUAGE"} | {
        k for k in spec["env"] if k.startswith("LC_")}
