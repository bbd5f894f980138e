import email
import email.policy
import os

import pytest

from gsat.channel_sysv import queue_key
from helpers import Gsat, free_port, remove_queue


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
def smtp():
    """A real SMTP server on 127.0.0.1; yields (port, list of (rcpt_tos, message, raw bytes))."""
    from aiosmtpd.controller import Controller as SMTPController

    class Handler:
        def __init__(self):
            self.mails = []

        async def handle_DATA(self, server, session, envelope):
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.mails.append((list(envelope.rcpt_tos), msg, envelope.content))
            return "250 OK"

    handler = Handler()
    port = free_port()
    server = SMTPController(handler, hostname="127.0.0.1", port=port)
    server.start()
    yield port, handler.mails
    server.stop()
