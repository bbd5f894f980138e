import contextlib
import email
import email.policy
import os
import shutil
import subprocess

import pytest

from gsat.channel_sysv import queue_key
import mailkit
from helpers import Gsat, free_port, remove_queue
from mailkit import Person


@pytest.fixture
def gsat(tmp_path):
    """A fresh GSAT_HOME (autostart off) with helpers; no controller yet."""
    g = Gsat(tmp_path / "home")
    yield g
    g.cleanup()


@pytest.fixture
def running(gsat):
    """A GSAT_HOME with its controller running (`gsatlc run` subprocess)."""
    gsat.start()
    return gsat


@pytest.fixture
def home_env(tmp_path, monkeypatch):
    """For in-process tests: GSAT_HOME and GSAT_HOSTNAME set in os.environ."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("GSAT_HOME", str(home))
    monkeypatch.setenv("GSAT_HOSTNAME", "testhost")
    yield home
    remove_queue(queue_key(home, os.geteuid(), "testhost"))


def pytest_configure(config):
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")


@pytest.fixture
def ctrl(home_env):
    """A controller in-process, driven by step(now): `now` can be past a grace
    without waiting.  Teardown kills its running jobs and closes its pipe."""
    from gsat import config
    from gsat.controller import Controller
    c = Controller(config.load())
    c.open()
    yield c
    for job in c.jobs.values():
        if job.state.state == "running":
            c._kill_quietly(job, 9)
    c.pool.close()  # its shepherds exit
    os.close(c.ended_r)
    os.close(c.ended_w)


@pytest.fixture
def smtp():
    """A real SMTP server on 127.0.0.1; yields (port, list of (rcpt_tos, message, raw bytes))."""
    with smtp_server() as (port, handler):
        yield port, handler.mails


@pytest.fixture
def smtp_starttls(tmp_path):
    """The same, offering STARTTLS (and requiring it) with a certificate made here;
    yields (port, mails, how many sessions had switched to TLS when their mail came)."""
    import ssl
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", tmp_path / "smtp.key", "-out", tmp_path / "smtp.crt"],
                   check=True, capture_output=True, timeout=60)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "smtp.crt", tmp_path / "smtp.key")
    with smtp_server(tls_context=context, require_starttls=True) as (port, handler):
        yield port, handler.mails, handler.tls


@contextlib.contextmanager
def smtp_server(**options):
    from aiosmtpd.controller import Controller as SMTPController

    class Handler:
        def __init__(self):
            self.mails, self.tls = [], []

        async def handle_DATA(self, server, session, envelope):
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.mails.append((list(envelope.rcpt_tos), msg, envelope.content))
            self.tls.append(session.ssl is not None)
            return "250 OK"

    handler = Handler()
    server = SMTPController(handler, hostname="127.0.0.1", port=free_port(), **options)
    server.start()
    try:
        yield server.port, handler
    finally:
        server.stop()


# ---- the signed-mail gateway (tests/test_mailgate*.py) ----

@pytest.fixture(scope="session")
def people(tmp_path_factory):
    """Real OpenPGP keys: alice (allowlisted), bob (known, not allowlisted), mallory
    (unknown), rev (allowlisted, then revoked), old (allowlisted, expired yesterday)."""
    root = tmp_path_factory.mktemp("people")
    past = mailkit.now() - 30 * mailkit.DAY
    folks = {"alice": Person(root, "alice", created=past), "bob": Person(root, "bob"),
             "mallory": Person(root, "mallory"), "rev": Person(root, "rev"),
             "old": Person(root, "old", expire="1d", created=mailkit.now() - 2 * mailkit.DAY)}
    yield folks
    for person in folks.values():
        person.stop()


@pytest.fixture(scope="session")
def template(tmp_path_factory, people):
    """A gateway set up once with the real `gsat-mailgate keys` commands; copied per test."""
    root = tmp_path_factory.mktemp("gate")
    g = Gsat(root / "home")
    for person in people.values():
        (root / f"{person.name}.asc").write_bytes(person.public_key())
    (root / "rev.rev").write_bytes(people["rev"].revocation())
    g.run("gsat-mailgate", "keys", "init", "--email", "gate@example.org", check=True)
    for name in ("alice", "rev", "old"):
        g.run("gsat-mailgate", "keys", "allow", root / f"{name}.asc", "--reply-to",
              mailkit.REPLY_TO if name == "alice" else f"{name}@example.org", check=True)
    g.run("gsat-mailgate", "keys", "import", root / "bob.asc", check=True)
    g.run("gsat-mailgate", "keys", "import", root / "rev.rev", check=True)
    exported = g.run("gsat-mailgate", "keys", "export", check=True).stdout
    (root / "gateway.asc").write_text(exported)
    people["alice"].gpg("--import", data=exported.encode())
    fpr = g.run("gsat-mailgate", "keys", "list", check=True).stdout.split("gateway")[0].split()[-2]
    yield {"mailgate": g.home / "mailgate", "key": root / "gateway.asc", "fingerprint": fpr}
    mailkit.stop_agent(g.home / "mailgate" / "gnupg")


@pytest.fixture
def gate(gsat, template, smtp):
    """A GSAT_HOME with its own copy of the gateway, replies going to the test's SMTP server."""
    shutil.copytree(template["mailgate"], gsat.home / "mailgate",
                    ignore=shutil.ignore_patterns("S.*", "*.lock", "log", "seen", "rejected"))
    gsat.mail_port, gsat.mails = smtp
    gsat.template = template
    mailkit.configure(gsat)
    yield gsat
    mailkit.stop_agent(gsat.home / "mailgate" / "gnupg")
