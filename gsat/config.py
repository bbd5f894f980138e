"""Configuration: built-in defaults, the user's GSAT_HOME/config.yaml, and
environment overrides (GSAT_HOME, GSAT_HOSTNAME, GSAT_WATCH, GSAT_CHANNEL,
GSAT_POLL_INTERVAL).

DEFAULTS is the one table of keys; etc/gsat.yaml documents the same values
(a test keeps the two equal).  PyYAML is imported only when a config file
exists, so that the command-line tools start fast without one.
"""

import os

from gsat import configcheck, trust
from gsat.errors import HomeUnusable, UsageError
from gsat.paths import Path
from gsat.record import Record

DEFAULTS = {
    "hostname": None,          # None: socket.gethostname()
    "autostart": True,         # gqsub starts the local controller when none runs
    "scheduler": "fifo",       # fifo | nobatch
    "slots": 1,                # fifo: jobs running at once on this host
    "kill_grace": 10.0,        # seconds between SIGTERM and SIGKILL
    "watch": "auto",           # auto | inotify | poll
    "poll_interval": 0.5,      # seconds, when polling
    "channel": "file",         # file | sysv
    "timeout": 10.0,           # seconds a client waits for a controller's answer
    "service_timeout": 60.0,
    "heartbeat_interval": 10.0,       # seconds between heartbeats while jobs are queued or run
    "idle_heartbeat_interval": 60.0,  # seconds between heartbeats while there are none
    "mail": {"method": "auto", "smtp_host": "localhost", "smtp_port": 25, "from": None, "to": None},
    "mailgate": {
        "max_age": 604800.0,        # seconds a signature stays acceptable (7 days)
        "future_skew": 300.0,       # seconds a signature may be dated ahead of this clock
        "require_encryption": False,
        "allow": {},               # FINGERPRINT: reply address, beside mailgate/allowlist
        "reply_to_rejected": None,  # an address told of rejections (None: nobody)
        "from": None,              # the replies' From (None: gsat-mailgate <USER@fqdn>)
        "method": "auto", "smtp_host": "localhost", "smtp_port": 25,
        "passphrase_file": None,   # the gateway key's passphrase, if it has one
        "rejected_folder": "gsat-rejected", "done_folder": "gsat-done",
        "imap_host": "localhost", "imap_port": 993, "imap_security": "tls",  # tls | starttls
        "imap_user": None, "imap_password_file": None, "imap_folder": "INBOX",
        "imap_ca_file": None, "imap_interval": 60.0,
        "keep_rejected": 500,      # how many rejected mails mailgate/rejected keeps (the newest)
        "address": None,           # what #GSAT-TO must name (None: the address `keys init` recorded)
        "require_to": True,        # signed texts must name this gateway in a #GSAT-TO line
        "max_per_hour": 60,        # accepted mails per key and hour (0: no limit)
    },
}

SCHEDULERS, WATCHES, CHANNELS = configcheck.SCHEDULERS, configcheck.WATCHES, configcheck.CHANNELS


class Config(Record):
    __slots__ = ()
    FIELDS = {"home": None, "values": {}}

    def __getitem__(self, key):
        return self.values[key]

    @property
    def host(self) -> str:
        return self.values["hostname"]


def gsat_home() -> Path:
    home = os.environ.get("GSAT_HOME") or os.path.join(os.path.expanduser("~"), ".gsat")
    return Path(os.path.abspath(home))


_SHARE: list = []


def share_dir() -> Path:
    """Where etc/ and libexec/ live: the checkout, or sys.prefix/share/gsat."""
    if not _SHARE:
        here = Path(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
        if not (here / "etc" / "jobtypes").is_dir():
            import sys
            here = Path(sys.prefix) / "share" / "gsat"
        _SHARE.append(here)
    return _SHARE[0]


def load(home: Path | None = None) -> Config:
    """Defaults, then the user's file, then the environment; every value checked
    (gsat.configcheck): a wrong one is one line naming its origin, exit 2."""
    home = home or gsat_home()
    path = home / "config.yaml"
    user = _read_user_file(path)
    values = _merge(DEFAULTS, user)
    origins = dict.fromkeys(user, str(path))
    _apply_env(values, origins)
    if not values["hostname"]:
        values["hostname"] = os.uname().nodename  # = socket.gethostname(), without importing socket
        origins["hostname"] = "this machine's name (set GSAT_HOSTNAME)"
    configcheck.check_all(values, lambda key: origins.get(key, "the defaults"))
    return Config(home=home, values=values)


def _read_user_file(path: Path) -> dict:
    """The user's config.  Parsed YAML is cached as JSON beside it (keyed by
    the file's mtime and size) so that the tools need not import PyYAML.
    Both files are read only when they are regular files of ours that others
    cannot write (gsat.trust): HomeUnusable (exit 6) for any other."""
    fd = trust.open_file(path)
    if fd is None:
        return {}
    try:
        info = os.fstat(fd)
        key = [info.st_mtime_ns, info.st_size, info.st_ino]
        cache = path.with_name(".config.cache.json")
        cached = _cached(cache, key)
        if cached is not None:
            return cached
        values = _parse_yaml(path, _read_all(fd, path))
    finally:
        os.close(fd)
    _write_cache(cache, key, values)
    return values


def _cached(cache: Path, key: list) -> dict | None:
    """The values the cache holds for `key`; None when it holds none.
    HomeUnusable for a cache that is not ours alone (it could lie)."""
    from gsat import jsontext
    data = trust.read_file(cache)
    try:
        cached = jsontext.loads(data) if data is not None else None
        if cached.get("key") == key and isinstance(cached.get("values"), dict):
            return cached["values"]
    except (ValueError, AttributeError):
        pass
    return None


def _write_cache(cache: Path, key: list, values: dict) -> None:
    """A cache only: no fsync; a new file (never through a symlink), renamed
    so that no reader sees half of it."""
    from gsat import jsontext
    tmp = cache.with_name(f".config.cache.{os.getpid()}.{os.urandom(4).hex()}")
    try:
        data = jsontext.dumps({"key": key, "values": values}).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, cache)
    except (OSError, TypeError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _read_all(fd: int, path: Path) -> str:
    chunks = []
    try:
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks).decode()
    except (OSError, UnicodeDecodeError) as exc:
        raise _unreadable(path, exc) from None


def _parse_yaml(path: Path, text: str) -> dict:
    import yaml
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of keys")
    unknown = sorted(map(str, set(data) - set(DEFAULTS)))
    if unknown:
        raise UsageError(f"{path}: unknown key {unknown[0]!r}")
    return data


def _unreadable(path: Path, exc: Exception) -> Exception:
    """A config that exists but cannot be read: someone else's GSAT_HOME (or
    a mode that locks us out) is unusable (exit 6); anything else is ours to fix."""
    if isinstance(exc, PermissionError):
        return HomeUnusable(f"cannot read {path}: {exc.strerror}")
    return UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}")


def _merge(base: dict, over: dict) -> dict:
    out = {key: dict(value) if isinstance(value, dict) else value for key, value in base.items()}
    for key, value in over.items():
        if isinstance(base.get(key), dict) and isinstance(value, dict):
            out[key] = {**base[key], **value}
        else:
            out[key] = value
    return out


ENVIRONMENT = (("hostname", "GSAT_HOSTNAME"), ("watch", "GSAT_WATCH"), ("channel", "GSAT_CHANNEL"),
               ("poll_interval", "GSAT_POLL_INTERVAL"))


def _apply_env(values: dict, origins: dict) -> None:
    """The environment overrides; `origins` notes which variable set a key."""
    for key, var in ENVIRONMENT:
        text = os.environ.get(var)
        if text:
            values[key], origins[key] = _from_env(key, text), var


def _from_env(key: str, text: str):
    if key != "poll_interval":
        return text
    try:
        return float(text)  # "nan" and "inf" parse: configcheck refuses them
    except ValueError:
        return text
