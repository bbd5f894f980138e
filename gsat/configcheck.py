"""The type and range of every config key, checked once when the config is
loaded (gsat.config.load), whichever command loads it.

Booleans are booleans (`autostart: "no"` is refused, not true), integers are
not floats or booleans (`slots: 2.7`, `slots: true`), durations are finite
numbers of seconds in a range (`.inf` and NaN would kill the controller's
poll()), choices are one of their words, host names match
[A-Za-z0-9][A-Za-z0-9._-]{0,63}.  A wrong value is a UsageError (exit 2)
of one line: where it came from (the config file or the environment
variable), the key, and what is expected.  Stdlib only.
"""

from gsat.errors import UsageError

MAX_SECONDS = 10 * 365 * 86400.0  # beyond this a timeout is a typo (and poll() refuses it)
HOST_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
HOST_CHARS = HOST_FIRST | frozenset("._-")


def valid_host(name) -> bool:
    """[A-Za-z0-9][A-Za-z0-9._-]{0,63}: names a spool directory, prints in one column."""
    return isinstance(name, str) and 0 < len(name) <= 64 and name[0] in HOST_FIRST and set(name) <= HOST_CHARS


class Bad(ValueError):
    """A value that is not what a key expects; the text says what is."""


def flag(value) -> bool:
    if type(value) is not bool:
        raise Bad("expected true or false")
    return value


def whole(low: int, high: int):
    def check(value) -> int:
        if type(value) is not int or not low <= value <= high:
            raise Bad(f"expected a whole number from {low} to {high}")
        return value
    return check


def seconds(low: float = 0.0):
    """A duration > low (>= 0 when low is None), finite, at most MAX_SECONDS."""
    def check(value) -> float:
        number = type(value) in (int, float)
        if not number or value != value or not (value > low if low is not None else value >= 0) \
                or value > MAX_SECONDS:
            floor = "> 0" if low is not None else ">= 0"
            raise Bad(f"expected a number of seconds {floor}, at most {MAX_SECONDS:.0f}")
        return float(value)
    return check


def one_of(*words: str):
    def check(value) -> str:
        if value not in words:
            raise Bad(f"expected one of {', '.join(words)}")
        return value
    return check


def text(value) -> str:
    if not isinstance(value, str) or not value:
        raise Bad("expected a text")
    return value


def text_or_null(value):
    return None if value is None else text(value)


def texts_or_null(value):
    """One text, a list of texts, or null (mail.to)."""
    if isinstance(value, list):
        return [text(v) for v in value]
    return text_or_null(value)


def text_map(value) -> dict:
    """mailgate.allow: fingerprint -> reply address, both texts (gsat.mailstate
    checks what they say; a number there would crash it)."""
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) and k and v
                                              for k, v in value.items()):
        raise Bad("expected a mapping of texts (FINGERPRINT: reply address)")
    return value


def host_or_null(value):
    if value is not None and not valid_host(value):
        raise Bad("expected a host name: [A-Za-z0-9][A-Za-z0-9._-]{0,63}")
    return value


def port(value) -> int:
    return whole(1, 65535)(value)


SCHEDULERS = ("fifo", "nobatch")
WATCHES = ("auto", "inotify", "poll")
CHANNELS = ("file", "sysv")
CHECKS = {
    "hostname": host_or_null, "autostart": flag, "scheduler": one_of(*SCHEDULERS),
    "slots": whole(1, 1_000_000), "kill_grace": seconds(), "watch": one_of(*WATCHES),
    "poll_interval": seconds(), "channel": one_of(*CHANNELS), "timeout": seconds(),
    "service_timeout": seconds(), "heartbeat_interval": seconds(), "idle_heartbeat_interval": seconds(),
    "mail": {"method": one_of("auto", "sendmail", "smtp"), "smtp_host": text, "smtp_port": port,
             "from": text_or_null, "to": texts_or_null},
    "mailgate": {
        "max_age": seconds(), "future_skew": seconds(None), "require_encryption": flag, "allow": text_map,
        "reply_to_rejected": text_or_null, "from": text_or_null, "method": one_of("auto", "sendmail", "smtp"),
        "smtp_host": text, "smtp_port": port, "passphrase_file": text_or_null, "rejected_folder": text,
        "done_folder": text, "imap_host": text, "imap_port": port, "imap_security": one_of("tls", "starttls"),
        "imap_user": text_or_null, "imap_password_file": text_or_null, "imap_folder": text,
        "imap_ca_file": text_or_null, "imap_interval": seconds(),
        "keep_rejected": whole(0, 1_000_000), "address": texts_or_null, "require_to": flag,
        "max_per_hour": whole(0, 1_000_000),
    },
}


def check_all(values: dict, origin_of) -> None:
    """Check (and normalise: durations become floats) every key of `values`
    in place; origin_of(key) names where a value came from."""
    for key, check in CHECKS.items():
        if isinstance(check, dict):
            section = values[key]
            if not isinstance(section, dict):
                raise UsageError(f"{origin_of(key)}: {key}: expected a mapping of keys")
            unknown = sorted(map(str, set(section) - set(check)))
            if unknown:
                raise UsageError(f"{origin_of(key)}: {key}: unknown key {unknown[0]!r}")
            for sub, sub_check in check.items():
                section[sub] = _checked(sub_check, section[sub], f"{key}.{sub}", origin_of(key))
        else:
            values[key] = _checked(check, values[key], key, origin_of(key))


def _checked(check, value, key: str, origin: str):
    try:
        return check(value)
    except Bad as exc:
        raise UsageError(f"{origin}: {key}: {exc}, not {_show(value)}") from None


def _show(value) -> str:
    if value is True or value is False or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."
