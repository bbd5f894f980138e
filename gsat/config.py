"""Configuration: built-in defaults, the user's GSAT_HOME/config.yaml, and
environment overrides (GSAT_HOME, GSAT_HOSTNAME, GSAT_WATCH, GSAT_CHANNEL,
GSAT_POLL_INTERVAL).

DEFAULTS is the one table of keys; etc/gsat.yaml documents the same values
(a test keeps the two equal).  PyYAML is imported only when a config file
exists, so that the command-line tools start fast without one.
"""

import os

from gsat.errors import UsageError
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
        "max_age": 604800,         # seconds a signature stays acceptable (7 days)
        "future_skew": 300,        # seconds a signature may be dated ahead of this clock
        "require_encryption": False,
        "allow": {},               # FINGERPRINT: reply address, beside mailgate/allowlist
        "reply_to_rejected": None,  # an address told of rejections (None: nobody)
        "from": None,              # the replies' From (None: gsat-mailgate <USER@fqdn>)
        "method": "auto", "smtp_host": "localhost", "smtp_port": 25,
        "passphrase_file": None,   # the gateway key's passphrase, if it has one
        "rejected_folder": "gsat-rejected", "done_folder": "gsat-done",
        "imap_host": "localhost", "imap_port": 993, "imap_security": "tls",  # tls | starttls
        "imap_user": None, "imap_password_file": None, "imap_folder": "INBOX",
        "imap_ca_file": None, "imap_interval": 60,
        "keep_rejected": 500,      # how many rejected mails mailgate/rejected keeps (the newest)
        "address": None,           # what #GSAT-TO must name (None: the address `keys init` recorded)
        "require_to": True,        # signed texts must name this gateway in a #GSAT-TO line
        "max_per_hour": 60,        # accepted mails per key and hour (0: no limit)
    },
}

SCHEDULERS = ("fifo", "nobatch")
WATCHES = ("auto", "inotify", "poll")
CHANNELS = ("file", "sysv")


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
    home = home or gsat_home()
    values = _merge(DEFAULTS, _read_user_file(home / "config.yaml"))
    _apply_env(values)
    if not values["hostname"]:
        values["hostname"] = os.uname().nodename  # = socket.gethostname(), without importing socket
    _validate(values)
    return Config(home=home, values=values)


def _read_user_file(path: Path) -> dict:
    """The user's config.  Parsed YAML is cached as JSON beside it (keyed by
    the file's mtime and size) so that the tools need not import PyYAML."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    key = [info.st_mtime_ns, info.st_size, info.st_ino]
    cache = path.with_name(".config.cache.json")
    from gsat import jsontext
    try:
        cached = jsontext.loads(cache.read_bytes())
        if cached.get("key") == key:
            return cached["values"]
    except (OSError, ValueError, AttributeError):
        pass
    values = _parse_yaml(path)
    tmp = cache.with_name(f".config.cache.{os.getpid()}")
    try:  # a cache only: no fsync; rename so no reader sees half of it
        tmp.write_text(jsontext.dumps({"key": key, "values": values}))
        os.replace(tmp, cache)
    except (OSError, TypeError, ValueError):
        pass
    return values


def _parse_yaml(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    import yaml
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of keys")
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise UsageError(f"{path}: unknown key {unknown[0]!r}")
    return data


def _validate_sections(values: dict) -> None:
    for section in ("mail", "mailgate"):
        if not isinstance(values[section], dict):
            raise UsageError(f"config {section}: expected a mapping of keys")
        unknown = sorted(set(values[section]) - set(DEFAULTS[section]))
        if unknown:
            raise UsageError(f"config {section}: unknown key {unknown[0]!r}")
        for key, default in DEFAULTS[section].items():
            value = values[section][key]
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                try:
                    values[section][key] = type(default)(value)
                except (TypeError, ValueError):
                    raise UsageError(f"config {section}.{key}: {value!r} is not a number") from None
    if values["mailgate"]["imap_security"] not in ("tls", "starttls"):
        raise UsageError("config mailgate.imap_security: must be tls or starttls")
    if not isinstance(values["mailgate"]["require_to"], bool):
        raise UsageError("config mailgate.require_to: must be true or false")
    if values["mailgate"]["max_per_hour"] < 0:
        raise UsageError("config mailgate.max_per_hour: must be 0 (no limit) or more")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(base.get(key), dict) and isinstance(value, dict):
            out[key] = {**base[key], **value}
        else:
            out[key] = value
    return out


def _apply_env(values: dict) -> None:
    env = os.environ
    for key, var in (("hostname", "GSAT_HOSTNAME"), ("watch", "GSAT_WATCH"), ("channel", "GSAT_CHANNEL")):
        if env.get(var):
            values[key] = env[var]
    if env.get("GSAT_POLL_INTERVAL"):
        values["poll_interval"] = env["GSAT_POLL_INTERVAL"]


def _validate(values: dict) -> None:
    for key, allowed in (("scheduler", SCHEDULERS), ("watch", WATCHES), ("channel", CHANNELS)):
        if values[key] not in allowed:
            raise UsageError(f"config {key}: {values[key]!r} is not one of {', '.join(allowed)}")
    for key in ("slots", "kill_grace", "poll_interval", "timeout", "service_timeout", "heartbeat_interval",
                "idle_heartbeat_interval"):
        try:
            values[key] = type(DEFAULTS[key])(values[key])
        except (TypeError, ValueError):
            raise UsageError(f"config {key}: {values[key]!r} is not a number") from None
        if values[key] <= 0:
            raise UsageError(f"config {key}: must be positive")
    _validate_sections(values)
    host = str(values["hostname"])
    if not host or "/" in host or host.startswith("."):
        raise UsageError(f"hostname {host!r} cannot name a spool directory")
    values["hostname"] = host
