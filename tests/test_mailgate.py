"""The signed-mail gateway, end to end: real gpg keys made here, the real
`gsat-mailgate` command, a real controller, a real SMTP server (aiosmtpd)
receiving the replies.

Every rejection case checks that nothing ran (no job stored, no reply),
that the mail was kept aside and that the log says why; the same mail
built correctly is accepted (test_accepted_shapes), so each case fails
for the one reason it is about.
"""

import email
import email.policy
import json
import os
import signal
import subprocess

import pytest

import mailkit
from helpers import BIN, wait_for
from mailkit import DAY, JOB, REPLY_TO, TO, Person, configure, deliver, gate_log, stored_jobs

pytestmark = pytest.mark.timeout(120)


def the_reply(g, person: Person, tmp_path) -> str:
    """The one reply: sent to the allowlisted address only, signed by the gateway; its text."""
    wait_for(lambda: g.mails, 20, "the reply")
    assert len(g.mails) == 1, [m["Subject"] for _, m, _ in g.mails]
    rcpts, msg, raw = g.mails[0]
    assert rcpts == [REPLY_TO]
    assert msg["To"] == REPLY_TO
    gateway = g.template["fingerprint"]
    if msg.get_content_type() == "multipart/encrypted":
        armored = msg.get_payload()[1].get_payload(decode=True)
        plain, status = person.open(armored)
        assert f"VALIDSIG {gateway}" in status and "GOODSIG" in status and "DECRYPTION_OKAY" in status, status
        return entity_text(plain)
    assert msg.get_content_type() == "multipart/signed"
    body = raw.partition(b"\r\n\r\n")[2]
    boundary = msg.get_boundary().encode()
    signed = body.split(b"--" + boundary + b"\r\n")[1].rsplit(b"\r\n", 1)[0]
    status = person.verify_detached(signed, msg.get_payload()[1].get_payload(decode=True), tmp_path)
    assert f"VALIDSIG {gateway}" in status, status
    return entity_text(signed)


def entity_text(entity: bytes) -> str:
    return email.message_from_bytes(entity, policy=email.policy.default).get_content().replace("\r\n", "\n")


# ---- accepted ----------------------------------------------------------------

def test_signed_job_runs_and_the_reply_is_signed_encrypted_and_goes_to_the_allowlisted_address(
        gate, people, tmp_path):
    gate.start()
    raw = mailkit.pgp_mime(people["alice"], JOB, frm="mallory@evil.example", subject="forged")
    proc = deliver(gate, raw)
    assert proc.returncode == 0, proc.stderr
    text = the_reply(gate, people["alice"], tmp_path)
    job = int(text.split("jobId:")[1].split()[0])
    state = gate.wait_state(job, "finished")
    assert state["name"] == "fromMail"  # the script's #GSAT directives apply
    spec = json.loads((gate.job_dir(job) / "job.json").read_text())
    assert spec["mail_to"] == [REPLY_TO]  # -m mail goes to the signer's address, not to From
    assert spec["workdir"] == os.path.expanduser("~")
    out = mailkit.crlf((gate.job_dir(job) / "stdout").read_bytes())
    assert out == b"hello from mail\r\n"
    assert "accepted" in gate_log(gate) and people["alice"].fingerprint in gate_log(gate)


def test_inline_clearsigned_commands_run_and_their_output_is_the_reply(gate, people, tmp_path):
    gate.start()
    held = gate.submit("#!/bin/sh\necho released\n", "-H")
    gate.wait_state(held, "held")
    raw = mailkit.inline(people["alice"].clearsign(f"{TO}gqrls {held}\ngqstat {held}\n\ngqpeek {held}\n"))
    assert deliver(gate, raw).returncode == 0
    text = the_reply(gate, people["alice"], tmp_path)
    assert f"$ gqrls {held}\n" in text and f"$ gqstat {held}\n" in text and f"$ gqpeek {held}\n" in text
    stat = text.split(f"$ gqstat {held}\n")[1].split("$ gqpeek")[0].splitlines()
    assert stat[0].startswith("ID  STATE") and stat[1].split()[:2] != [str(held), "held"]  # released
    assert "(exit" not in text
    gate.wait_state(held, "finished")


def test_mailed_commands_never_import_code_from_the_directory_the_gateway_was_started_in(gate, people, tmp_path):
    """A gsat.py or gsat/ planted where deliver or watch runs (a 1777 directory, a checkout) is never run."""
    planted = tmp_path / "planted"
    (planted / "gsat" / "cli").mkdir(parents=True)
    marker = tmp_path / "planted-code-ran"
    payload = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    for path in ("gsat.py", "gsat/__init__.py", "gsat/cli/__init__.py", "gsat/cli/gsatctl.py"):
        (planted / path).write_text(payload)
    job = gate.submit("#!/bin/sh\ntrue\n", "-H")
    proc = deliver(gate, mailkit.inline(people["alice"].clearsign(f"{TO}gqstat {job}\n")), cwd=planted)
    assert proc.returncode == 0, proc.stderr
    text = the_reply(gate, people["alice"], tmp_path)
    assert f"$ gqstat {job}\n" in text and "ImportError" not in text and "(exit" not in text, text
    maildir = tmp_path / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True)
    mailkit.maildir_put(maildir, mailkit.inline(people["alice"].clearsign(TO + "gqstat\n")))
    watched = subprocess.run([str(BIN / "gsat-mailgate"), "watch", str(maildir), "--once"], env=gate.env,
                             cwd=planted, capture_output=True, timeout=60)
    assert watched.stdout == b"1 accepted, 0 rejected\n", watched.stderr
    wait_for(lambda: len(gate.mails) == 2, 20, "the second reply")
    assert not marker.exists(), marker.read_text()


@pytest.mark.parametrize("shape", ["inline", "pgp-mime", "inline-encrypted", "pgp-mime-encrypted",
                                   "encrypted-then-signed-mime", "encrypted to the sender too",
                                   "text-mode PGP/MIME signature"])
def test_accepted_shapes(gate, people, shape):
    """Every way a mail client signs (and encrypts) is understood; the job is stored."""
    alice, key = people["alice"], gate.template["key"]
    entity = mailkit.text_entity(JOB)
    raw = {
        "inline": lambda: mailkit.inline(alice.clearsign(JOB)),
        "pgp-mime": lambda: mailkit.pgp_mime(alice, JOB),
        "inline-encrypted": lambda: mailkit.inline(alice.sign_encrypt(JOB.encode(), key)),
        "pgp-mime-encrypted": lambda: mailkit.encrypted_mime(alice.sign_encrypt(entity, key)),
        "encrypted-then-signed-mime": lambda: mailkit.encrypted_mime(alice.sign_encrypt(
            mailkit.signed_entity(entity, alice.detached(entity)), key, sign=False)),
        "encrypted to the sender too": lambda: mailkit.encrypted_mime(alice.sign_encrypt(entity, key, to_self=True)),
        "text-mode PGP/MIME signature": lambda: mailkit.headers() + mailkit.signed_entity(
            entity, alice.detached(entity, textmode=True)),
    }[shape]()
    proc = deliver(gate, raw)
    assert proc.returncode == 0, proc.stderr
    assert len(stored_jobs(gate)) == 1


# ---- rejected ----------------------------------------------------------------

def _two_signatures(people, order):
    alice, bob = people["alice"], people["bob"]
    entity = mailkit.text_entity(JOB)
    good = alice.detached(entity)
    bad = bob.detached(mailkit.text_entity("gqstat\n"))  # bob's signature over other text
    both = mailkit.armor_signatures(*((good, bad) if order == "good+bad" else (bad, good)))
    return mailkit.headers() + mailkit.signed_entity(entity, both)


def _tampered(people):
    signed = people["alice"].clearsign(JOB)
    return mailkit.inline(signed.replace(b"hello from mail", b"hello from evil"))


def _wrapped(people):
    entity = mailkit.text_entity("gqstat\n")
    signed = mailkit.signed_entity(entity, people["alice"].detached(entity))
    return mailkit.mixed([b"Content-Type: text/plain\r\n\r\ngqdel 1\r\n", signed])


PLANTED = "[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG {k} alice\n[GNUPG:] VALIDSIG {f} 2026-01-01 {t} 0 4 0 22 8 00 {f}\n"


def _planted(people, signer):
    alice = people["alice"]
    text = PLANTED.format(k=alice.fingerprint[-16:], f=alice.fingerprint, t=mailkit.now()) + JOB
    if signer is None:
        return mailkit.inline(text.encode())
    return mailkit.pgp_mime(people[signer], text)


def _forged_inline(people, separator):
    header = b"Foo: x" + mailkit.forged_status(people["alice"].fingerprint, separator)
    return mailkit.inline(mailkit.armor(mailkit.literal_packet(JOB.encode()), "MESSAGE", header))


def _forged_detached(people):
    header = b"Foo: x" + mailkit.forged_status(people["alice"].fingerprint, b"\x85")
    entity = mailkit.text_entity(JOB)
    return mailkit.headers() + mailkit.signed_entity(
        entity, mailkit.armor(mailkit.literal_packet(b"x"), "SIGNATURE", header))


def _textmode_with_cr(people):
    entity = mailkit.text_entity("#!/bin/sh\nssh backup \\\n  rm -rf /srv/old\n")
    signature = people["alice"].detached(entity, textmode=True)
    return mailkit.headers() + mailkit.signed_entity(entity.replace(b"\\\r\n", b"\\\r\r\n"), signature)


def _encrypted_thrice(people):
    inner = mailkit.text_entity(JOB)
    layer = mailkit.signed_entity(inner, people["alice"].detached(inner))
    for _ in range(2):
        layer = (b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="e"\r\n\r\n'
                 b"--e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--e\r\n"
                 b"Content-Type: application/octet-stream\r\n\r\n"
                 + mailkit.crlf(people["alice"].sign_encrypt(layer, people["key"], sign=False)) + b"\r\n--e--\r\n")
    return mailkit.headers() + layer


def _signed_by_alice(entity: bytes, people) -> bytes:
    return mailkit.headers() + mailkit.signed_entity(entity, people["alice"].detached(entity))


REJECTIONS = {
    "unsigned": (lambda p: mailkit.inline(JOB.encode()), "not signed"),
    "bad signature": (_tampered, "bad signature"),
    "unknown key": (lambda p: mailkit.pgp_mime(p["mallory"], JOB), "unknown key"),
    "known, not allowlisted": (lambda p: mailkit.pgp_mime(p["bob"], JOB), "not on the allowlist"),
    "expired key": (lambda p: mailkit.inline(p["old"].clearsign(JOB, at=mailkit.now() - 36 * 3600)),
                    "signing key has expired"),
    "revoked key": (lambda p: mailkit.inline(p["rev"].clearsign(JOB)), "revoked"),
    "good + bad signatures": (lambda p: _two_signatures(p, "good+bad"), "signature"),
    "bad + good signatures": (lambda p: _two_signatures(p, "bad+good"), "signature"),
    "two good signatures": (lambda p: mailkit.inline(p["alice"].clearsign(JOB, also=p["bob"])), "2 signatures"),
    "SHA-1": (lambda p: mailkit.inline(p["alice"].clearsign(JOB, digest="SHA1")), "weak hash SHA1"),
    "MD5": (lambda p: mailkit.inline(p["alice"].clearsign(JOB, digest="MD5")), "weak hash MD5"),
    "an edited Hash: header": (lambda p: mailkit.inline(p["alice"].clearsign(JOB).replace(
        b"Hash: SHA256", b"Hash: SHA512")), "Hash: header that does not name"),
    "too old": (lambda p: mailkit.inline(p["alice"].clearsign(JOB, at=mailkit.now() - 8 * DAY)), "days old"),
    "from the future": (lambda p: mailkit.inline(p["alice"].clearsign(JOB, at=mailkit.now() + DAY)), "future"),
    "signed part inside multipart/mixed": (_wrapped, "not signed: PGP/MIME or an inline signed text body is "
                                                     "needed (multipart/mixed)"),
    "unsigned text before a signed block": (
        lambda p: mailkit.inline(b"gqdel 1\n" + p["alice"].clearsign("gqstat\n")), "text outside"),
    "unsigned text after a signed block": (
        lambda p: mailkit.inline(p["alice"].clearsign("gqstat\n") + b"gqdel 1\n"), "text outside"),
    "encrypted, not signed": (lambda p: mailkit.inline(p["alice"].sign_encrypt(JOB.encode(), p["key"], sign=False)),
                              "not signed"),
    "encrypted, signed by an unknown key": (
        lambda p: mailkit.inline(p["mallory"].sign_encrypt(JOB.encode(), p["key"])), "unknown key"),
    "planted GOODSIG, unsigned": (lambda p: _planted(p, None), "not signed"),
    "planted GOODSIG, unknown signer": (lambda p: _planted(p, "mallory"), "unknown key"),
    **{f"forged status lines behind {sep!r}": ((lambda sep: lambda p: _forged_inline(p, sep))(sep), reason)
       for sep, reason in ((b"\x85", "not signed"), (b"\x0b", "not signed"), (b"\x1c", "not signed"),
                           (b"\r", "no OpenPGP data"))},  # gpg cannot read an armor header with a CR
    "forged status lines in a PGP/MIME signature part": (_forged_detached, "no OpenPGP data"),
    "a CR added where a text-mode signature does not look": (_textmode_with_cr, "bare CR"),
    "encrypted twice": (_encrypted_thrice, "encrypted twice"),
    "an RFC 2231 protocol parameter": (lambda p: mailkit.headers() + b"Content-Type: multipart/signed; "
                                       b"protocol*=''a; boundary=b\r\n\r\n--b\r\nx\r\n--b--\r\n",
                                       "not OpenPGP"),
    # the email package's own exceptions on parameters the sender chose (found by tests/test_fuzz.py)
    "an RFC 2231 protocol in the idna charset": (lambda p: mailkit.headers() + b"Content-Type: multipart/signed; "
                                                 b"protocol*=idna''x; boundary=b\r\n\r\n--b\r\nx\r\n--b--\r\n",
                                                 "unreadable MIME headers (UnicodeError"),
    "RFC 2231 sections mixed with a whole value": (
        lambda p: mailkit.headers() + b"Content-Type: multipart/signed; protocol*=utf-8''x; protocol*0=app; "
        b"boundary=b\r\n\r\n--b\r\nx\r\n--b--\r\n", "unreadable MIME headers (TypeError"),
    "an idna parameter in the signed part": (lambda p: _signed_by_alice(
        b"Content-Type: text/plain; format*=idna''x\r\n\r\ngqstat\r\n", p),
        "unreadable MIME headers in the signed part (UnicodeError"),
    "a bare CR in a signed and encrypted script": (lambda p: mailkit.inline(p["alice"].sign_encrypt(
        JOB.replace("echo hello", "echo a\rtrue").encode(), p["key"])), "bare CR in the signed text"),
    "not a command": (lambda p: mailkit.inline(p["alice"].clearsign("gqstat\nrm -rf ~\n")),
                      "not a gsat command"),
    "an option the gateway does not allow": (
        lambda p: mailkit.inline(p["alice"].clearsign("gqpeek -f 1\n")), "not a gsat command"),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_rejected_with_nothing_run_and_no_reply(gate, people, case):
    build, reason = REJECTIONS[case]
    raw = build({**people, "key": gate.template["key"]})
    proc = deliver(gate, raw)
    assert proc.returncode == 4, proc.stderr
    assert reason in proc.stderr.decode()
    assert stored_jobs(gate) == []
    kept = list((gate.home / "mailgate" / "rejected" / "new").iterdir())
    assert [p.read_bytes() for p in kept] == [raw]
    assert reason in gate_log(gate) and "Traceback" not in gate_log(gate)
    assert gate.mails == []  # nothing was answered: a reply would have reached the SMTP server by now


def deep_mime(depth: int = 3000) -> str:
    """A MIME entity nested `depth` multiparts deep: Python's email package recurses that deep."""
    head = "".join(f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n" for i in range(depth))
    return head + "Content-Type: text/plain\r\n\r\ngqstat\r\n" + "".join(
        f"\r\n--b{i}--\r\n" for i in reversed(range(depth)))


def test_the_signed_mime_of_a_key_not_allowlisted_is_never_parsed(gate, people):
    """The allowlist is consulted before the signed part's MIME is looked at."""
    entity = deep_mime().encode()
    raw = mailkit.headers() + mailkit.signed_entity(entity, people["bob"].detached(entity))
    proc = deliver(gate, raw)
    assert proc.returncode == 4 and b"not on the allowlist" in proc.stderr, proc.stderr
    assert "Traceback" not in gate_log(gate)
    allowed = mailkit.headers() + mailkit.signed_entity(entity, people["alice"].detached(entity))
    proc = deliver(gate, allowed)  # from an allowed key: rejected, and the gateway stays up
    assert proc.returncode == 4 and b"unreadable signed text (RecursionError)" in proc.stderr, proc.stderr


def test_mta_mode_exits_zero_on_rejection_so_nothing_bounces(gate):
    proc = deliver(gate, mailkit.inline(JOB.encode()), "--mta")
    assert proc.returncode == 0 and b"rejected: not signed" in proc.stderr


def test_rejections_are_told_only_to_reply_to_rejected(gate, people, tmp_path):
    configure(gate, reply_to_rejected=REPLY_TO)
    assert deliver(gate, mailkit.inline(JOB.encode(), frm="someone@example.org")).returncode == 4
    text = the_reply(gate, people["alice"], tmp_path)
    assert "not signed" in text
    # a rejected auto-reply is never answered: no mail loops, also when the header is folded
    for marked in (b"Auto-Submitted: auto-replied\r\n", b"Auto-Submitted:\r\n auto-replied\r\n",
                   b"Auto-Submitted: no\r\nAuto-Submitted: auto-generated\r\n"):
        loop = mailkit.headers() + marked + b"Content-Type: text/plain\r\n\r\nx\r\n"
        assert deliver(gate, loop).returncode == 4
    assert len(gate.mails) == 1


def test_a_rejection_note_quotes_nothing_the_sender_chose(gate, people, tmp_path):
    """The gateway signs its notes: words of the sender's in them would be words it vouches for."""
    configure(gate, reply_to_rejected=REPLY_TO)
    raw = mailkit.headers(msgid="<PAY-ATTENTION-wire-money@evil.example>") + \
        b"Content-Type: multipart/x-wire-money-now; boundary=b\r\n\r\n--b\r\nx\r\n--b--\r\n"
    proc = deliver(gate, raw)
    assert proc.returncode == 4 and b"x-wire-money-now" in proc.stderr  # the local log and stderr say it
    text = the_reply(gate, people["alice"], tmp_path)
    assert "not signed" in text and "wire" not in text.lower() and "evil" not in text, text
    assert "x-wire-money-now" in gate_log(gate)


def test_require_encryption_rejects_plaintext_and_accepts_encrypted(gate, people):
    configure(gate, require_encryption=True)
    alice = people["alice"]
    proc = deliver(gate, mailkit.pgp_mime(alice, JOB))
    assert proc.returncode == 4 and b"require_encryption" in proc.stderr
    assert stored_jobs(gate) == []
    encrypted = mailkit.inline(alice.sign_encrypt(JOB.encode(), gate.template["key"]))
    assert deliver(gate, encrypted).returncode == 0
    assert len(stored_jobs(gate)) == 1


# ---- replay --------------------------------------------------------------------

def test_replay_is_rejected_with_new_headers_and_after_a_restart(gate, people, tmp_path):
    alice = people["alice"]
    entity = mailkit.text_entity(JOB)
    signature = alice.detached(entity)
    first = mailkit.headers(msgid="<one@example.org>") + mailkit.signed_entity(entity, signature)
    assert deliver(gate, first).returncode == 0
    assert len(stored_jobs(gate)) == 1
    again = deliver(gate, first)  # the same bytes, from a new process: the record is on disk
    assert again.returncode == 4 and b"replay" in again.stderr
    fresh_headers = mailkit.headers(frm="alice@example.org", msgid="<two@example.org>",
                                    date="Mon, 23 Nov 2026 10:00:00 +0000") + mailkit.signed_entity(entity, signature)
    assert deliver(gate, fresh_headers).returncode == 4
    # the same signed text as an inline mail, through the Maildir watcher after a restart of it
    maildir = tmp_path / "Maildir"
    watcher = start_watch(gate, maildir)
    stop_watch(watcher)
    watcher = start_watch(gate, maildir)
    name = mailkit.maildir_put(maildir, fresh_headers)
    wait_for(lambda: (maildir / ".gsat-rejected" / "cur" / f"{name}:2,S").exists(), 20, "the replay to be set aside")
    stop_watch(watcher)
    assert len(stored_jobs(gate)) == 1
    assert len(list((gate.home / "mailgate" / "seen").glob("[0-9a-f]*"))) == 1


# ---- ingestion -----------------------------------------------------------------

def start_watch(g, maildir) -> subprocess.Popen:
    started = gate_log(g).count(f"ready: watching the Maildir {maildir}")
    proc = subprocess.Popen([str(BIN / "gsat-mailgate"), "watch", str(maildir)], env=g.env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for(lambda: gate_log(g).count(f"ready: watching the Maildir {maildir}") > started, 20,
             "the watcher to start")
    return proc


def stop_watch(proc) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, proc.stdout.read()


def test_watch_maildir_moves_accepted_mail_to_cur_and_rejected_aside(gate, people, tmp_path):
    gate.start()
    maildir = tmp_path / "Maildir"
    watcher = start_watch(gate, maildir)
    good = mailkit.maildir_put(maildir, mailkit.pgp_mime(people["alice"], JOB))
    bad = mailkit.maildir_put(maildir, mailkit.inline(JOB.encode()))
    wait_for(lambda: (maildir / "cur" / f"{good}:2,S").exists(), 20, "the accepted mail in cur/")
    wait_for(lambda: (maildir / ".gsat-rejected" / "cur" / f"{bad}:2,S").exists(), 20, "the rejected one aside")
    stop_watch(watcher)
    assert os.listdir(maildir / "new") == []
    (job,) = stored_jobs(gate)
    gate.wait_state(int(job), "finished")


def test_watch_once_handles_what_is_there_and_exits(gate, people, tmp_path):
    maildir = tmp_path / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True)
    mailkit.maildir_put(maildir, mailkit.inline(people["alice"].clearsign(JOB)))
    proc = gate.run("gsat-mailgate", "watch", maildir, "--once")
    assert proc.returncode == 0 and proc.stdout == "1 accepted, 0 rejected\n", proc.stderr
    assert len(stored_jobs(gate)) == 1


# ---- keys ------------------------------------------------------------------------

def test_keys_list_revoke_and_their_errors(gate, people, tmp_path):
    listing = gate.run("gsat-mailgate", "keys", "list", check=True).stdout
    lines = {line.split()[0]: line for line in listing.splitlines()}
    assert f"allowed -> {REPLY_TO}" in lines[people["alice"].fingerprint]
    assert "not allowed" in lines[people["bob"].fingerprint]
    assert "revoked" in lines[people["rev"].fingerprint] and "expired" in lines[people["old"].fingerprint]
    assert "gateway" in lines[gate.template["fingerprint"]]
    revoked = gate.run("gsat-mailgate", "keys", "revoke", people["alice"].fingerprint)
    assert revoked.returncode == 0 and people["alice"].fingerprint in revoked.stdout
    proc = deliver(gate, mailkit.pgp_mime(people["alice"], JOB))  # her key is gone: unknown now
    assert proc.returncode == 4 and b"unknown key" in proc.stderr
    again = gate.run("gsat-mailgate", "keys", "revoke", people["alice"].fingerprint)
    assert again.returncode == 2 and "not on the allowlist" in again.stderr
    assert gate.run("gsat-mailgate", "keys", "revoke", "nonsense").returncode == 2
    (tmp_path / "junk.asc").write_text("not a key\n")
    junk = gate.run("gsat-mailgate", "keys", "allow", tmp_path / "junk.asc", "--reply-to", "a@b.example")
    assert junk.returncode == 2 and "no new OpenPGP key" in junk.stderr
    (tmp_path / "two.asc").write_bytes(people["bob"].public_key() + people["mallory"].public_key())
    two = gate.run("gsat-mailgate", "keys", "allow", tmp_path / "two.asc", "--reply-to", "a@b.example")
    assert two.returncode == 2 and "--fingerprint" in two.stderr
    init = gate.run("gsat-mailgate", "keys", "init")
    assert init.returncode == 2 and "already holds a gateway key" in init.stderr


def test_allowlist_in_config_yaml_counts_too(gate, people):
    gate.run("gsat-mailgate", "keys", "import", gate.template["key"].parent / "bob.asc")
    configure(gate, allow={people["bob"].fingerprint: "bob-replies@example.org"})
    assert deliver(gate, mailkit.pgp_mime(people["bob"], JOB)).returncode == 0
    wait_for(lambda: gate.mails, 20, "the reply")
    assert gate.mails[0][0] == ["bob-replies@example.org"]


def test_mta_mode_turns_a_broken_home_into_a_temporary_failure(gate):
    (gate.home / "mailgate" / "seen").write_text("a file where a directory belongs")
    proc = deliver(gate, mailkit.inline(JOB.encode()), "--mta")
    assert proc.returncode == 75 and b"temporary failure" in proc.stderr
    assert deliver(gate, mailkit.inline(JOB.encode())).returncode not in (0, 4, 75)


def test_a_gateway_key_with_a_passphrase_signs_replies_once_config_names_its_file(gsat, smtp, people, tmp_path):
    gsat.mail_port, gsat.mails = smtp
    secret = tmp_path / "gate.pass"
    secret.write_text("correct horse\n")
    gsat.run("gsat-mailgate", "keys", "init", "--passphrase-file", secret, "--email", mailkit.GATEWAY, check=True)
    (tmp_path / "alice.asc").write_bytes(people["alice"].public_key())
    gsat.run("gsat-mailgate", "keys", "allow", tmp_path / "alice.asc", "--reply-to", REPLY_TO, check=True)
    people["alice"].gpg("--import", data=gsat.run("gsat-mailgate", "keys", "export", check=True).stdout.encode())
    own = gsat.run("gsat-mailgate", "keys", "list", check=True).stdout.split("gateway")[0].split()[-2]
    try:
        configure(gsat)  # no passphrase_file: the job is taken, the reply cannot be signed
        assert deliver(gsat, mailkit.inline(people["alice"].clearsign(f"#!/bin/sh\n{TO}true\n"))).returncode == 0
        assert len(stored_jobs(gsat)) == 1 and "not sent" in gate_log(gsat)
        configure(gsat, passphrase_file=str(secret))
        assert deliver(gsat, mailkit.inline(people["alice"].clearsign(JOB))).returncode == 0
        wait_for(lambda: gsat.mails, 20, "the reply")
        armored = gsat.mails[0][1].get_payload()[1].get_payload(decode=True)
        plain, status = people["alice"].open(armored)
        assert f"VALIDSIG {own}" in status and b"jobId:2" in plain
    finally:
        mailkit.stop_agent(gsat.home / "mailgate" / "gnupg")


def test_a_failure_after_acceptance_is_replied_and_the_mail_stays_spent(gate, people, tmp_path):
    (gate.home / "jobs").write_text("a file where the job store belongs")
    raw = mailkit.pgp_mime(people["alice"], JOB)
    proc = deliver(gate, raw, "--mta")
    assert proc.returncode == 0, proc.stderr  # no temporary failure: an MTA retry would be a replay
    assert the_reply(gate, people["alice"], tmp_path).startswith("error: ")
    assert b"replay" in deliver(gate, raw).stderr


@pytest.mark.parametrize("separator", [b"\x85", b"\x0b", b"\x1c"])
def test_text_gpg_echoes_never_reads_as_a_status_line(tmp_path, people, separator):
    """gpg echoes an unknown armor header on stderr; split at anything but LF, it would forge a signature."""
    from gsat.openpgp import Keyring
    keyring = Keyring(tmp_path / "gnupg")
    header = b"Foo: x" + mailkit.forged_status(people["alice"].fingerprint, separator)
    _, statuses = keyring.open_armored(mailkit.armor(mailkit.literal_packet(b"gqstat\n"), "MESSAGE", header))
    assert not {"NEWSIG", "GOODSIG", "VALIDSIG"} & {key for key, _ in statuses}, statuses
    mailkit.stop_agent(tmp_path / "gnupg")


def test_replies_switch_to_tls_when_the_smtp_server_offers_starttls(gate, people, smtp_starttls, tmp_path):
    gate.mail_port, gate.mails, tls = smtp_starttls
    configure(gate)
    assert deliver(gate, mailkit.pgp_mime(people["alice"], JOB)).returncode == 0
    assert "jobId:1" in the_reply(gate, people["alice"], tmp_path)
    assert tls == [True]  # the server requires STARTTLS: a plain session could not have sent it
