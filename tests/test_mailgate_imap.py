"""`gsat-mailgate imap` against a real IMAP server: Dovecot (Debian's
dovecot-imapd, which `make test` installs when run as root) started here on
loopback with a certificate made here, over IMAPS and over STARTTLS.
"""

import imaplib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest

import mailkit
from helpers import BIN, free_port, wait_for
from mailkit import JOB, REPLY_TO, stored_jobs

pytestmark = pytest.mark.timeout(120)

USER, PASSWORD = "gsatuser", "imap-secret"

DOVECOT_CONF = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
auth_mechanisms = plain
default_internal_user = dovecot
default_login_user = dovenull
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/mail/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


@pytest.fixture(scope="module")
def dovecot():
    if not shutil.which("dovecot") or os.geteuid() != 0:
        pytest.skip("needs Debian's dovecot-imapd and root (make test installs it as root)")
    d = Path(tempfile.mkdtemp(prefix="gsat-dovecot-"))  # not under pytest's 0700 tree: nobody reads mail here
    d.chmod(0o755)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", d / "key.pem",
                    "-out", d / "cert.pem"], check=True, capture_output=True, timeout=60)
    (d / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::\n")
    (d / "mail").mkdir()
    shutil.chown(d / "mail", "nobody", "nogroup")
    ports = {"imap": free_port(), "imaps": free_port()}
    (d / "dovecot.conf").write_text(DOVECOT_CONF.format(d=d, **ports))
    proc = subprocess.Popen(["dovecot", "-F", "-c", d / "dovecot.conf"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    wait_for(lambda: _listening(ports["imaps"]) or proc.poll() is not None, 20, "dovecot to listen")
    assert proc.poll() is None, proc.stderr.read()
    yield {"dir": d, **ports}
    proc.terminate()
    proc.wait(timeout=20)
    shutil.rmtree(d, ignore_errors=True)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def mailbox(dovecot) -> imaplib.IMAP4_SSL:
    context = ssl.create_default_context(cafile=dovecot["dir"] / "cert.pem")
    imap = imaplib.IMAP4_SSL("127.0.0.1", dovecot["imaps"], ssl_context=context)
    imap.login(USER, PASSWORD)
    return imap


def count(imap, folder: str) -> int:
    status, data = imap.select(f'"{folder}"', readonly=True)
    return int(data[0]) if status == "OK" else -1


def empty_folders(imap) -> None:
    for folder in ("INBOX", "gsat-done", "gsat-rejected"):
        if count(imap, folder) > 0:
            imap.select(f'"{folder}"')
            imap.store("1:*", "+FLAGS", "\\Deleted")
            imap.expunge()


def use_imap(gate, dovecot, security: str, **extra) -> None:
    secret = gate.home / "imap.password"
    secret.write_text(PASSWORD + "\n")
    port = dovecot["imaps"] if security == "tls" else dovecot["imap"]
    gate.write_config({"autostart": False, "kill_grace": 2, "mailgate": {
        "method": "smtp", "smtp_host": "127.0.0.1", "smtp_port": gate.mail_port,
        "imap_host": "127.0.0.1", "imap_port": port, "imap_security": security, "imap_user": USER,
        "imap_password_file": str(secret), "imap_ca_file": str(dovecot["dir"] / "cert.pem"), **extra}})


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_imap_poll_submits_signed_mail_and_files_both_kinds_away(gate, people, dovecot, security):
    use_imap(gate, dovecot, security)
    imap = mailbox(dovecot)
    empty_folders(imap)  # each case starts from empty folders
    imap.append("INBOX", None, None, mailkit.pgp_mime(people["alice"], JOB))
    imap.append("INBOX", None, None, mailkit.inline(JOB.encode()))
    proc = gate.run("gsat-mailgate", "imap", "--once")
    assert proc.returncode == 0, proc.stderr
    assert len(stored_jobs(gate)) == 1
    assert (count(imap, "INBOX"), count(imap, "gsat-done"), count(imap, "gsat-rejected")) == (0, 1, 1)
    wait_for(lambda: gate.mails, 20, "the reply")
    assert [rcpts for rcpts, _, _ in gate.mails] == [[REPLY_TO]]
    imap.logout()


def test_imap_refuses_a_certificate_it_cannot_verify(gate, dovecot):
    use_imap(gate, dovecot, "tls")
    config = (gate.home / "config.yaml").read_text().replace(str(dovecot["dir"] / "cert.pem"), "null")
    (gate.home / "config.yaml").write_text(config)
    proc = gate.run("gsat-mailgate", "imap", "--once")
    assert proc.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in proc.stderr, proc.stderr
    assert stored_jobs(gate) == []


def test_imap_daemon_polls_until_sigterm(gate, people, dovecot):
    use_imap(gate, dovecot, "tls", imap_interval=0.2)
    imap = mailbox(dovecot)
    empty_folders(imap)
    daemon = subprocess.Popen([str(BIN / "gsat-mailgate"), "imap"], env=gate.env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        imap.append("INBOX", None, None, mailkit.inline(people["alice"].clearsign(JOB)))
        wait_for(lambda: len(stored_jobs(gate)) == 1, 30, "the polled mail to become a job")
        wait_for(lambda: count(imap, "gsat-done") == 1, 30, "the mail to be filed as done")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0, daemon.stderr.read()
    finally:
        if daemon.poll() is None:
            daemon.kill()
    imap.logout()
