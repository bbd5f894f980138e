"""The gateway's rules in-process: the command grammar, the verdict on gpg's
status lines, the age window.  (What gpg really prints for each case is
exercised end to end in test_mailgate.py.)"""

import pytest

from gsat import mailactions, mailparse, sigstatus
from gsat.errors import Rejected

FPR = "71D37A436F37C2ADF6986BFBABA925D0BEB9CAF0"
VALID = f"{FPR} 2026-11-21 1795300443 0 4 0 22 8 01 {FPR}"
GOOD = [("NEWSIG", ""), ("SIG_ID", "x 2026-11-21 1795300443"), ("GOODSIG", "ABA925D0BEB9CAF0 Alice"),
        ("VALIDSIG", VALID), ("TRUST_UNDEFINED", "0 pgp")]


def test_one_good_signature_gives_the_primary_fingerprint_and_time():
    sig = sigstatus.verdict(GOOD)
    assert (sig.fingerprint, sig.time, sig.hash) == (FPR, 1795300443, "SHA256")


@pytest.mark.parametrize("statuses, reason", [
    ([], "not signed"),
    (GOOD + GOOD, "2 signatures"),
    (GOOD[:3] + [("EXPKEYSIG", "ABA925D0BEB9CAF0 Alice")] + GOOD[3:], "expired"),  # VALIDSIG is no proof
    ([("NEWSIG", ""), ("BADSIG", "K A")] + GOOD, "bad signature"),
    (GOOD + [("NEWSIG", ""), ("ERRSIG", "K 22 8 01 1795300443 9")], "unknown key"),
    ([(k, v.replace(" 8 01 ", " 2 01 ")) for k, v in GOOD], "weak hash SHA1"),
    ([(k, v.replace(" 8 01 ", " 11 01 ")) for k, v in GOOD], "weak hash SHA224"),
    ([(k, " ".join(v.split()[:5])) if k == "VALIDSIG" else (k, v) for k, v in GOOD], "incomplete"),
    (GOOD + [("HANDLER_ERROR", "BADSIG")], "unreadable"),
])
def test_everything_but_one_good_strong_signature_is_rejected(statuses, reason):
    with pytest.raises(Rejected, match=reason):
        sigstatus.verdict(statuses)


@pytest.mark.parametrize("text, argvs", [
    ("gqstat\n", [["gqstat"]]),
    ("  gqdel   12 13 \n\ngqhold 5\n", [["gqdel", "12", "13"], ["gqhold", "5"]]),
    ("gqsig -s TERM 7\ngqsig -s 9 7\ngqsig 7\ngqpeek 7\ngqrls 7\n",
     [["gqsig", "-s", "TERM", "7"], ["gqsig", "-s", "9", "7"], ["gqsig", "7"], ["gqpeek", "7"], ["gqrls", "7"]]),
    ("gqstat 007\r\n\tgqsig -s SIGKILL 10\r\n", [["gqstat", "007"], ["gqsig", "-s", "SIGKILL", "10"]]),
])
def test_command_lines_become_fixed_argvs(text, argvs):
    assert mailactions.parse(text) == mailactions.Commands(argvs=argvs)


@pytest.mark.parametrize("text", ["gqdel 1; reboot\n", "gqdel\n", "gqpeek -f 1\n", "gqsub x\n", "gqstat -f\n",
                                  "gqsig -s 'TERM' 1\n", "gqdel $(id)\n", "gqstat\nhello\n", "", "\n\n",
                                  " #!/bin/sh\n", "gqdel 1 --\n",
                                  # digits are ASCII, ids at least 1, signals known
                                  "gqdel \u0661\n", "gqstat \uff11\n", "gqstat 0\n", "gqdel 00 1\n",
                                  "gqsig -s 99 1\n", "gqsig -s NOSUCH 1\n", "gqdel\u00a01\n",
                                  # lines end at LF only: a reader splitting elsewhere sees other lines
                                  "gqstat\u2028gqdel 1\n", "gqstat\x0bgqdel 1\n", "gqstat\x0cgqdel 1\n",
                                  "gqstat\x1cgqdel 1\n", "gqstat\x1dgqdel 1\n", "gqstat\x1egqdel 1\n",
                                  "gqstat\x85gqdel 1\n", "gqstat\u2029gqdel 1\n", "gqstat\rgqdel 1\n"])
def test_anything_else_rejects_the_whole_mail(text):
    with pytest.raises(Rejected):
        mailactions.parse(text)


def test_a_script_is_a_job_only_from_its_first_character():
    assert mailactions.parse("#!/bin/sh\necho hi") == mailactions.JobScript(script=b"#!/bin/sh\necho hi\n")


@pytest.mark.parametrize("age, ok", [(0, True), (-299, True), (-301, False), (86400 * 7 - 1, True),
                                     (86400 * 7 + 1, False)])
def test_age_window(age, ok):
    now = 1_800_000_000
    if ok:
        mailactions.check_age(now - age, now, 86400 * 7, 300)
    else:
        with pytest.raises(Rejected):
            mailactions.check_age(now - age, now, 86400 * 7, 300)


def test_format_flowed_lines_are_joined_as_the_sender_wrote_them():
    entity = (b'Content-Type: text/plain; charset=utf-8; format=flowed; delsp=no\r\n\r\n'
              b'#!/bin/sh\r\necho a very long line that the client \r\nwrapped\r\n From stuffed\r\n')
    assert mailparse.text_of_entity(entity) == "#!/bin/sh\necho a very long line that the client wrapped\nFrom stuffed\n"
    delsp = entity.replace(b"delsp=no", b"delsp=yes").replace(b"client \r\nwrapped", b"clientwr \r\napped")
    assert mailparse.text_of_entity(delsp).splitlines()[1] == "echo a very long line that the clientwrapped"


def test_a_mail_over_the_size_cap_is_refused_before_anything_parses_it():
    with pytest.raises(Rejected, match="larger than"):
        mailparse.seal_of(b"Content-Type: text/plain\r\n\r\n" + b"x" * mailparse.MAX_MAIL)
