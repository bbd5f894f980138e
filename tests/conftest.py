import os

import pytest

from gsat.channel_sysv import queue_key
from helpers import Gsat, remove_queue


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
