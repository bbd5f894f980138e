"""Signal names and numbers as users type them: TERM, SIGTERM, 15."""

import signal

from gsat.errors import UsageError


def parse(text: str) -> int:
    """The signal number for TERM, SIGTERM, sigterm or 15; UsageError otherwise."""
    text = str(text).strip()
    if text.isdigit():
        number = int(text)
        if number in {s.value for s in signal.Signals}:
            return number
    else:
        name = text.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        if name in signal.Signals.__members__:
            return signal.Signals[name].value
    raise UsageError(f"unknown signal {text!r}")


def name(number: int) -> str:
    try:
        return signal.Signals(number).name[3:]
    except ValueError:
        return str(number)


STOPPING = frozenset({signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})
